/*
 * state_budget.h - the budgets' shared state (sql_budget.h): takes, blocks and what they
 * look like, asynchronous like every call of store/state.h. A block's notification is
 * state_listen_budgets in state.h (it shares the coordination connection's LISTEN).
 */
#ifndef ONESYNC_STATE_BUDGET_H
#define ONESYNC_STATE_BUDGET_H

#include <stddef.h>
#include <stdint.h>
#include "store/state.h"

/*
 * Take up to want units of budget `name` ([window_ms, limit] pairs as configured, the
 * longest window's limit already reduced by `reserve`), to be spent within hold_ms.
 * res: {"granted": g, "wait_ms": w (0 when g > 0), "at_ms": the grant's time by the
 * database clock, "blocked_until_ms": a block in force or 0}. On the pool: a run's work,
 * kept off the coordination connection whose renewals must not queue behind it.
 */
void state_budget_take(struct state *, const char *name, const int64_t *window_ms,
    const int64_t *limit, size_t n, int64_t want, int64_t hold_ms, state_cb, void *);
/* Block budget `name` for every instance until until_ms (ms since epoch); NOTIFY the
 * others. res: {"blocked_until_ms": the block now in force, "moved": whether this call
 * moved it later}. On the coordination connection: it reaches the others at once. */
void state_budget_block(struct state *, const char *name, int64_t until_ms, state_cb,
    void *);
/* Budgets' shared state: res {"NAME": {"blocked_until_ms": b|0, "windows": {"W": used}}},
 * used: the units granted in the last W ms (bucket-rounded). */
void state_budgets(struct state *, state_cb, void *);
/*
 * Record this instance's definition of budget `name` (a JSON object, as text, and its
 * fingerprint) and answer the other registered instances' differing ones: res [{"instance":
 * id, "definition": object}, ...], at most 20. On the pool.
 */
void state_budget_define(struct state *, const char *name, const char *fingerprint,
    const char *definition, state_cb, void *);
#endif
