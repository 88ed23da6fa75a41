/*
 * budgets_show.c - what the request budgets show (onesyncd(8), METRICS and /budgets): this
 * instance's tokens, waits, refusals, requests in flight and waiting, and blocks.
 */
#include <jansson.h>
#include <stdio.h>

#include "daemon/budgets_show.h"
#include "daemon/budgets_int.h"
#include "core/util.h"
#include "run/metrics.h"

void
budgets_render(const struct budgets *e, struct buf *out)
{
	static const char *const tokens = "onesync_budget_tokens", *wait =
	    "onesync_budget_wait_seconds", *throttled = "onesync_budget_throttled_total",
	    *in_flight = "onesync_budget_in_flight", *waiting = "onesync_budget_waiting",
	    *blocked = "onesync_budget_blocked_seconds";
	const struct bud *b;
	int64_t now = now_wall_ms();
	uint64_t mono = now_mono_ms();

	if (e == NULL)
		return;
	metrics_header(out, tokens, "gauge", "Tokens of the request budget this instance "
	    "holds, taken from the state store and not yet spent.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			metrics_labelled(out, tokens, "", "budget", b->conf.name, "%lld",
			    (long long)(mono < b->tokens_until ? b->tokens : 0));
	metrics_header(out, wait, "summary", "Time requests waited for the budget's permit "
	    "on this instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone) {
			metrics_labelled(out, wait, "_sum", "budget", b->conf.name, "%.3f",
			    b->waited_s);
			metrics_labelled(out, wait, "_count", "budget", b->conf.name, "%lld",
			    b->waited_n);
		}
	metrics_header(out, throttled, "counter", "Requests the budget refused on this "
	    "instance because the wait was longer than park_after (their runs ended "
	    "throttled).");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			metrics_labelled(out, throttled, "", "budget", b->conf.name, "%lld",
			    b->throttled);
	metrics_header(out, in_flight, "gauge", "Requests under the budget in flight on this "
	    "instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			metrics_labelled(out, in_flight, "", "budget", b->conf.name, "%d",
			    b->in_flight);
	metrics_header(out, waiting, "gauge", "Requests waiting for the budget's permit on "
	    "this instance.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			metrics_labelled(out, waiting, "", "budget", b->conf.name, "%zu", b->waiting);
	metrics_header(out, blocked, "gauge", "Seconds left of the budget's block (a 429 or 503 "
	    "from its server, on any instance), 0 when not blocked.");
	for (b = e->list; b != NULL; b = b->next)
		if (!b->gone)
			metrics_labelled(out, blocked, "", "budget", b->conf.name, "%.3f",
			    b->blocked_until > now ? (double)(b->blocked_until - now) / 1000.0 : 0.0);
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
