/*
 * state_budget.c - the budgets' statements. Every rule (windows, holds, blocks, the
 * NOTIFY) is in the functions of sql_budget.h, by the database clock; this file only
 * passes values as parameters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "store/state_budget.h"

void
state_budget_take(struct state *st, const char *name, const int64_t *window_ms,
    const int64_t *limit, size_t n, int64_t want, int64_t hold_ms, state_cb cb, void *arg)
{
	char w[32], h[32];
	char *wa = state_int_array(window_ms, n), *la = state_int_array(limit, n);
	const char *v[] = { name, wa, la, w, h };

	snprintf(w, sizeof w, "%lld", (long long)want);
	snprintf(h, sizeof h, "%lld", (long long)hold_ms);
	state_call(st, false, "budget take", "SELECT @S@.budget_take($1, $2::bigint[], "
	    "$3::bigint[], $4, $5)", 5, v, cb, arg);
	free(wa);
	free(la);
}

void
state_budget_block(struct state *st, const char *name, int64_t until_ms, state_cb cb,
    void *arg)
{
	char u[32];
	const char *v[] = { name, u };

	snprintf(u, sizeof u, "%lld", (long long)until_ms);
	state_call(st, true, "budget block", "SELECT @S@.budget_block($1, $2)", 2, v, cb, arg);
}

void
state_budgets(struct state *st, state_cb cb, void *arg)
{
	state_call(st, false, "budgets", "SELECT @S@.budget_status(NULL)", 0, NULL, cb, arg);
}

/* A budget's block notified, waiting for this schema's row to confirm it. */
struct budget_note {
	void		(*cb)(const char *, int64_t, void *);
	void		*arg;
	int64_t		 until;
	char		 name[];
};

/* This schema's block of the budget a notification named: passed on when it is (at
 * least) the one notified, so a block of another schema's budget of the same name is not. */
static void
budget_confirmed(void *arg, int rc, json_t *res, const char *err)
{
	struct budget_note *b = arg;

	if (rc != STATE_OK)
		log_warnx("%s", err);
	else if (json_is_integer(res) && json_integer_value(res) >= b->until)
		b->cb(b->name, json_integer_value(res), b->arg);
	free(b);
}

/* "<until_ms> <name>" (budget_block in sql_budget.h); anything else is not ours. */
void
state_budget_notified(struct state *st, const char *payload,
    void (*cb)(const char *, int64_t, void *), void *arg)
{
	struct budget_note *b;
	char *end, ms[32];
	long long until;
	const char *v[2];
	size_t len;

	errno = 0;
	until = strtoll(payload, &end, 10);
	if (errno != 0 || end == payload || *end != ' ' || end[1] == '\0')
		return;
	len = strlen(end + 1);
	b = xmalloc(sizeof *b + len + 1);
	b->cb = cb;
	b->arg = arg;
	b->until = until;
	memcpy(b->name, end + 1, len + 1);
	snprintf(ms, sizeof ms, "%lld", until);
	v[0] = b->name;
	v[1] = ms;
	state_call(st, true, "reading a budget's block", "SELECT @S@.budget_ms(blocked_until) "
	    "FROM @S@.budgets WHERE name = $1 AND blocked_until >= "
	    "timestamptz 'epoch' + $2::bigint * interval '1 millisecond'", 2, v,
	    budget_confirmed, b);
}
