/*
 * budgets_block.c - what stops a request budget (doc/design.md §7.6): a server's answer
 * that blocks it (a 429 or 503, a limit header saying none is left), here and through the
 * state store on every instance; and the refusals that a wait past park_after, or past a
 * run's run_timeout, gives, each named by a random number that only this process knows.
 * It never lets a request pass nor refuses one itself: daemon/budgets.c does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

#include "daemon/budgets_block.h"
#include "daemon/budgets_int.h"
#include "core/log.h"
#include "core/util.h"
#include "io/http_permit.h"
#include "store/state_budget.h"

/* "15:42:10" in local time. */
void
budgets_clock_text(int64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL || strftime(out, len, "%H:%M:%S", &tm) == 0)
		snprintf(out, len, "%lld", (long long)(ms / 1000));
}

/*
 * "throttled until HH:MM:SS by budget NAME (refusal ID)". The message carries a number
 * nobody outside this process can know: only a run that met this refusal can show it (a
 * source's words cannot); budgets_throttled finds it among the last BUD_REFUSALS.
 */
char *
budgets_refusal(struct budgets *e, const char *name, int64_t until)
{
	char when[32];
	uint64_t id = 0;

	budgets_clock_text(until, when, sizeof when);
	if (getrandom(&id, sizeof id, 0) != sizeof id || id == 0)
		id = rand64() | 1;
	e->refusals[e->nrefusal].id = id;
	e->refusals[e->nrefusal].until = until;
	e->nrefusal = (e->nrefusal + 1) % BUD_REFUSALS;
	return xasprintf("throttled until %s by budget %s (refusal %016llx)", when, name,
	    (unsigned long long)id);
}

/* Block b until `until` here and, through the store, on every instance. */
void
budgets_block(struct bud *b, int64_t until, long status)
{
	char when[32];

	b->probing = true;
	if (until <= b->blocked_until)
		return;
	b->blocked_until = until;
	budgets_clock_text(until, when, sizeof when);
	log_info("budget %s: blocked until %s (the server answered %s)", b->conf.name, when,
	    status == 0 ? "that no request is left" : status == 429 ? "HTTP 429" : "HTTP 503");
	state_budget_block(b->e->state, b->conf.name, until, NULL, NULL);
}

/*
 * What a finished transfer says of the server's limits: how long b is blocked. A 429 or
 * 503 that gives no time ("Retry-After: 0", a date already past: a server's clock behind
 * ours, or nothing) blocks it 1 s, doubling with each such block in a row up to 64 s.
 */
int64_t
budgets_block_for(struct bud *b, const struct http_limit_info *li, long *status)
{
	int64_t w;

	*status = li->status;
	if (li->status == 429 || li->status == 503) {
		w = li->retry_after_ms >= 0 ? li->retry_after_ms : li->reset_ms;
		if (w >= BUD_DEFAULT_BLOCK_MS) {
			b->streak = 0;
			return w;
		}
		w = (int64_t)BUD_DEFAULT_BLOCK_MS << (b->streak < 6 ? b->streak : 6);
		b->streak++;
		return w;
	}
	*status = 0;
	b->streak = 0;
	if (li->remaining == 0 && li->reset_ms > 0)
		return li->reset_ms;
	if (li->status != 0 && b->probe != NULL)
		b->probing = false;	/* the server answers again: everyone goes */
	return 0;
}

int64_t
budgets_throttled(const struct budgets *e, const char *msg)
{
	const char *p = msg;

	if (e == NULL || msg == NULL)
		return 0;
	while ((p = strstr(p, "(refusal ")) != NULL) {
		char *end;
		unsigned long long id;

		p += strlen("(refusal ");
		id = strtoull(p, &end, 16);
		if (end - p != 16 || *end != ')' || id == 0)
			continue;
		for (size_t i = 0; i < BUD_REFUSALS; i++)
			if (e->refusals[i].id == id)
				return e->refusals[i].until;
	}
	return 0;
}
