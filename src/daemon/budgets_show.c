/*
 * budgets_show.c - what the request budgets show (onesyncd(8), METRICS and /budgets): this
 * instance's tokens, waits, refusals, requests in flight and waiting, and blocks.
 */
#include <jansson.h>
#include <stdio.h>

#include "daemon/budgets_show.h"
#include "daemon/budgets_int.h"
#include "core/util.h"

/* One sample line per budget of a family (HELP and TYPE once). */
static void
family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
budgets_render(const struct budgets *e, struct buf *out)
{
	const struct bud *b;
	int64_t now = now_wall_ms();
	uint64_t mono = now_mono_ms();

	if (e == NULL)
		return;
	family(out, "onesync_budget_tokens", "gauge", "Tokens of the request budget this "
	    "instance holds, taken from the state store and not yet spent.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_tokens{budget=\"%s\"} %lld\n", b->conf.name,
			    (long long)(mono < b->tokens_until ? b->tokens : 0));
	family(out, "onesync_budget_wait_seconds", "summary", "Time requests waited for the "
	    "budget's permit on this instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_wait_seconds_sum{budget=\"%s\"} %.3f\n"
			    "onesync_budget_wait_seconds_count{budget=\"%s\"} %lld\n", b->conf.name,
			    b->waited_s, b->conf.name, b->waited_n);
	family(out, "onesync_budget_throttled_total", "counter", "Requests the budget refused "
	    "on this instance because the wait was longer than park_after (their runs ended "
	    "throttled).");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_throttled_total{budget=\"%s\"} %lld\n",
			    b->conf.name, b->throttled);
	family(out, "onesync_budget_in_flight", "gauge", "Requests under the budget in flight "
	    "on this instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_in_flight{budget=\"%s\"} %d\n", b->conf.name,
			    b->in_flight);
	family(out, "onesync_budget_waiting", "gauge", "Requests waiting for the budget's "
	    "permit on this instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_waiting{budget=\"%s\"} %zu\n", b->conf.name,
			    b->waiting);
	family(out, "onesync_budget_blocked_seconds", "gauge", "Seconds left of the budget's "
	    "block (a 429 or 503 from its server, on any instance), 0 when not blocked.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			buf_printf(out, "onesync_budget_blocked_seconds{budget=\"%s\"} %.3f\n",
			    b->conf.name, b->blocked_until > now ?
			    (double)(b->blocked_until - now) / 1000.0 : 0.0);
}

json_t *
budgets_json(const struct budgets *e)
{
	json_t *a = json_array();
	int64_t now = now_wall_ms();
	uint64_t mono = now_mono_ms();

	for (const struct bud *b = e != NULL ? e->list : NULL; b != NULL; b = b->next) {
		json_t *w = json_array();

		if (b->gone)
			continue;
		for (size_t i = 0; i < b->nw; i++)
			json_array_append_new(w, json_pack("{sI sI}", "window_ms",
			    (json_int_t)b->win[i], "limit", (json_int_t)b->lim[i]));
		json_array_append_new(a, json_pack("{ss so si si sI sI sI sI sI}",
		    "name", b->conf.name, "rate", w,
		    "in_flight", b->in_flight, "concurrency", b->conf.concurrency,
		    "waiting", (json_int_t)b->waiting,
		    "tokens", (json_int_t)(mono < b->tokens_until ? b->tokens : 0),
		    "throttled", (json_int_t)b->throttled,
		    "blocked_until_ms", (json_int_t)(b->blocked_until > now ? b->blocked_until : 0),
		    "refused_until_ms", (json_int_t)(b->refused_until > now ? b->refused_until :
		    0)));
	}
	return a;
}
