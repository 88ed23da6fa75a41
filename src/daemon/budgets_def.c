/*
 * budgets_def.c - whether the instances on one state database define a budget alike
 * (doc/design.md §7.6). They share its windows by name, each taking within the limits it
 * defines, so two definitions of one name make a shared limit that neither states. What
 * counts is what the shared windows are counted by: the rates, the reserve, the match
 * prefixes and the costs; not concurrency nor park_after, which are each instance's own.
 * That part and its fingerprint go to the state store (budget_define) when a budget is
 * first used and again every BUD_DEF_CHECK_MS; the other instances' differing definitions
 * come back and are logged once each (the budget, what differs, the other instance). It
 * never changes how a budget counts, and trusts nothing of what another instance wrote.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/budgets_def.h"
#include "daemon/budgets_int.h"
#include "core/escape.h"
#include "core/log.h"
#include "core/util.h"
#include "store/state.h"
#include "store/state_budget.h"

#define DEF_SHOWN	200	/* bytes of another instance's value shown, at most */
#define DEF_DUMP	(JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9))

static const char *const def_keys[] = { "rate", "reserve", "match", "costs" };

/* A rate as written in the configuration: "100/10s". */
static json_t *
rate_json(const struct budget_window *w)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };

	for (size_t i = 0; i < NELEM(units); i++)
		if (w->window_ms % units[i].ms == 0)
			return json_sprintf("%lld/%lld%s", (long long)w->limit,
			    (long long)(w->window_ms / units[i].ms), units[i].unit);
	return json_sprintf("%lld/%lldms", (long long)w->limit, (long long)w->window_ms);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The part of bc the instances must agree on, as they compare it. */
static json_t *
def_json(const struct budget_conf *bc)
{
	json_t *rate = json_array(), *match = json_array(), *costs = json_array();
	char **m = xcalloc(bc->nmatch + 1, sizeof *m);

	for (size_t i = 0; i < bc->nrate; i++)
		json_array_append_new(rate, rate_json(&bc->rate[i]));
	memcpy(m, bc->match, bc->nmatch * sizeof *m);
	qsort(m, bc->nmatch, sizeof *m, str_cmp);	/* the order of prefixes means nothing */
	for (size_t i = 0; i < bc->nmatch; i++)
		json_array_append_new(match, json_string(m[i]));
	free(m);
	for (size_t i = 0; i < bc->ncosts; i++)	/* in order: the first that matches counts */
		json_array_append_new(costs, json_pack("{s:s? s:s s:I}", "method",
		    bc->costs[i].method, "path", bc->costs[i].path,
		    "cost", (json_int_t)bc->costs[i].cost));
	return json_pack("{s:o s:f s:o s:o}", "rate", rate, "reserve", bc->reserve,
	    "match", match, "costs", costs);
}

/* At most max bytes of s (not inside a UTF-8 character), escaped for a log line. */
static void
clipped(struct buf *out, const char *s, size_t max)
{
	size_t n = strlen(s);
	char *c;

	if (n <= max) {
		escape_controls(out, s);
		return;
	}
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	c = xstrndup(s, n);
	escape_controls(out, c);
	buf_adds(out, "...");
	free(c);
}

/* v for a log line: compact, at most DEF_SHOWN bytes, control characters escaped. */
static void
shown(struct buf *out, const json_t *v)
{
	char *s = v != NULL ? json_dumps(v, DEF_DUMP | JSON_ENCODE_ANY) : NULL;

	if (s == NULL) {
		buf_adds(out, "(none)");
		return;
	}
	clipped(out, s, DEF_SHOWN);
	free(s);
}

/* One other instance's definition (as it wrote it: anything) against ours. */
static void
warn_one(const struct bud *b, const json_t *ours, const json_t *row)
{
	const json_t *inst = json_object_get(row, "instance");
	const json_t *theirs = json_object_get(row, "definition");
	struct buf who, what;

	buf_init(&who);
	buf_init(&what);
	clipped(&who, json_is_string(inst) ? json_string_value(inst) : "(unknown)", 100);
	for (size_t i = 0; i < NELEM(def_keys) && json_is_object(theirs); i++) {
		const json_t *a = json_object_get(ours, def_keys[i]);
		const json_t *t = json_object_get(theirs, def_keys[i]);

		if (json_equal(a, t))
			continue;
		buf_printf(&what, "%s%s ", what.len > 0 ? "; " : "", def_keys[i]);
		shown(&what, a);
		buf_adds(&what, " here, ");
		shown(&what, t);
		buf_adds(&what, " there");
	}
	if (what.len == 0)
		buf_adds(&what, "a definition this onesyncd cannot read");
	log_warnx("budget %s: instance %s defines it otherwise (%s): the instances share its "
	    "windows, each taking within the limits it defines, so neither definition holds; "
	    "define it the same on every instance of the state database", b->conf.name,
	    who.data, what.data);
	buf_free(&who);
	buf_free(&what);
}

struct def_check {
	struct bud	*b;
	json_t		*def;
};

/* The other instances' differing definitions: each new set is logged once. */
static void
defined(void *arg, int rc, json_t *res, const char *err)
{
	struct def_check *dc = arg;
	struct bud *b = dc->b;
	char *text;
	uint64_t h;

	b->refs--;
	if (b->e->closing)
		goto out;
	if (rc != STATE_OK || !json_is_array(res)) {
		if (!b->def_err_logged)
			log_warnx("budget %s: cannot compare its definition with the other "
			    "instances': %s", b->conf.name, err != NULL ? err : "unexpected answer");
		b->def_err_logged = true;	/* asked again in BUD_DEF_CHECK_MS */
		goto out;
	}
	text = json_dumps(res, DEF_DUMP);
	h = text != NULL ? XXH3_64bits(text, strlen(text)) : 0;
	free(text);
	if (h != b->def_warned)
		for (size_t i = 0; i < json_array_size(res) && i < 20; i++)
			warn_one(b, dc->def, json_array_get(res, i));
	b->def_warned = h;
out:
	json_decref(dc->def);
	free(dc);
}

void
budgets_def_check(struct bud *b)
{
	struct budgets *e = b->e;
	struct def_check *dc;
	char *text, fp[17];

	if (now_mono_ms() < b->def_next)
		return;
	b->def_next = now_mono_ms() + BUD_DEF_CHECK_MS;
	dc = xcalloc(1, sizeof *dc);
	dc->b = b;
	dc->def = def_json(&b->conf);
	if ((text = json_dumps(dc->def, DEF_DUMP)) == NULL) {
		json_decref(dc->def);
		free(dc);
		return;
	}
	snprintf(fp, sizeof fp, "%016llx", (unsigned long long)XXH3_64bits(text, strlen(text)));
	b->refs++;	/* the answer refers to it */
	state_budget_define(e->state, b->conf.name, fp, text, defined, dc);
	free(text);
}
