/*
 * state_budget.c - the budgets' statements. Every rule (windows, holds, blocks, the
 * NOTIFY) is in the functions of sql_budget.h, by the database clock; this file only
 * passes values as parameters.
 */
#include <stdio.h>
#include <stdlib.h>

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

void
state_budget_define(struct state *st, const char *name, const char *fingerprint,
    const char *definition, state_cb cb, void *arg)
{
	const char *v[] = { name, state_incarnation(st), fingerprint, definition };

	state_call(st, false, "budget definition", "SELECT @S@.budget_define($1, $2, $3, "
	    "$4::jsonb)", 4, v, cb, arg);
}
