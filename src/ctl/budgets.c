/*
 * budgets.c - onesyncctl budgets: the request budgets of the configuration with what every
 * instance on the state database has used of each window (onesyncd(8), REQUEST BUDGETS),
 * and whether a 429 or 503 blocks one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/budgets.h"
#include "ctl/conn.h"
#include "core/util.h"

/* Per budget: until when it is blocked, and per window (ms) what counts in it now. */
static const char budgets_sql[] =
"SELECT COALESCE(json_object_agg(b.name, json_build_object(\n"
"    'blocked_until', CASE WHEN b.blocked_until > clock_timestamp()\n"
"        THEN to_char(b.blocked_until, 'HH24:MI:SS') END,\n"
"    'windows', (SELECT COALESCE(json_object_agg(w.window_ms, w.used), '{}')\n"
"        FROM (SELECT x.window_ms, sum(x.n) AS used FROM @S@.budget_windows x\n"
"              WHERE x.name = b.name AND x.bucket > (extract(epoch FROM clock_timestamp())\n"
"                * 1000)::bigint - x.window_ms - greatest(1, x.window_ms / 20)\n"
"              GROUP BY x.window_ms) w))), '{}')\n"
"FROM @S@.budgets b";

/* "500ms", "10s", "1m", "1d": the largest unit that divides the window. */
static char *
window_text(int64_t ms)
{
	static const struct { int64_t ms; const char *unit; } u[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" } };

	for (size_t i = 0; i < NELEM(u); i++)
		if (ms % u[i].ms == 0)
			return xasprintf("%lld%s", (long long)(ms / u[i].ms), u[i].unit);
	return xasprintf("%lldms", (long long)ms);
}

/* One budget's row: name, rate, used now, concurrency, blocked, what it matches. */
static void
budget_row(struct ctl_table *t, const struct budget_conf *bc, json_t *shared)
{
	json_t *w = json_object_get(shared, "windows");
	struct buf rate, used;

	buf_init(&rate);
	buf_init(&used);
	buf_adds(&rate, "");
	buf_adds(&used, "");
	for (size_t i = 0; i < bc->nrate; i++) {
		char *wt = window_text(bc->rate[i].window_ms), key[32];

		snprintf(key, sizeof key, "%lld", (long long)bc->rate[i].window_ms);
		buf_printf(&rate, "%s%lld/%s", i > 0 ? ", " : "", (long long)bc->rate[i].limit, wt);
		buf_printf(&used, "%s%lld/%s", i > 0 ? ", " : "",
		    (long long)json_integer_value(json_object_get(w, key)), wt);
		free(wt);
	}
	ctl_table_add(t, xstrdup(bc->name));
	ctl_table_add(t, buf_steal(&rate));
	ctl_table_add(t, buf_steal(&used));
	ctl_table_add(t, bc->concurrency > 0 ? xasprintf("%d", bc->concurrency) : xstrdup("-"));
	ctl_table_add(t, ctl_jnull(shared, "blocked_until") ? xstrdup("-") :
	    xasprintf("until %s", ctl_jstr(shared, "blocked_until")));
	ctl_table_add(t, bc->nmatch > 1 ? xasprintf("%s (+%zu)", bc->match[0], bc->nmatch - 1) :
	    xstrdup(bc->nmatch > 0 ? bc->match[0] : "-"));
}

static int
cmd_budgets(struct ctl *ctl, const struct ctl_args *args)
{
	static const char *const hdr[] = { "BUDGET", "RATE", "USED NOW", "CONCURRENCY",
	    "BLOCKED", "MATCH" };
	struct ctl_table t = { NELEM(hdr), hdr, "llllll", { 0 } };
	json_t *shared, *out;
	int rc = 0;

	(void)args;
	if (ctl->cfg->nbudgets == 0) {
		if (ctl->json)
			printf("[]\n");
		else
			printf("no request budget is configured\n");
		return 0;
	}
	shared = ctl->have_schema && ctl_has_table(ctl, "budgets") ? ctl_q_json(ctl,
	    "reading the budgets", budgets_sql, 0, NULL, &rc) : json_object();
	if (shared == NULL)
		return rc;
	if (ctl->json) {
		out = json_array();
		for (size_t i = 0; i < ctl->cfg->nbudgets; i++) {
			const struct budget_conf *bc = &ctl->cfg->budgets[i];
			json_t *s = json_object_get(shared, bc->name);

			json_array_append_new(out, json_pack("{ss sO* sO*}", "name", bc->name,
			    "blocked_until", json_object_get(s, "blocked_until"),
			    "used", json_object_get(s, "windows")));
		}
		ctl_print_json(out);
		json_decref(out);
	} else {
		for (size_t i = 0; i < ctl->cfg->nbudgets; i++)
			budget_row(&t, &ctl->cfg->budgets[i],
			    json_object_get(shared, ctl->cfg->budgets[i].name));
		ctl_table_print(&t);
	}
	json_decref(shared);
	return 0;
}

const struct ctl_cmd ctl_show_budgets = {
	"budgets", "budgets", "the request budgets: rate, what every instance used of each "
	"window, blocks", 0, 0, 0, cmd_budgets
};
