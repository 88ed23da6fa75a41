/*
 * budgets_block.h - what stops a request budget (budgets_block.c): blocks from a server's
 * answers, and the refusals of requests that would wait too long. For daemon/budgets.c,
 * and budgets_throttled for the daemon's runs.
 */
#ifndef ONESYNC_BUDGETS_BLOCK_H
#define ONESYNC_BUDGETS_BLOCK_H

#include <stddef.h>
#include <stdint.h>

struct bud;
struct budgets;
struct http_limit_info;

/* "15:42:10": ms (wall) in local time. */
void budgets_clock_text(int64_t ms, char *out, size_t len);
/*
 * A refusal's message, "throttled until HH:MM:SS by budget NAME (refusal ID)": ID is a
 * random number remembered with `until` among the last BUD_REFUSALS, for budgets_throttled.
 * The caller frees it.
 */
char *budgets_refusal(struct budgets *, const char *name, int64_t until);
/*
 * When a run failed with msg: the time (wall ms) a budget's refusal that msg names
 * ("throttled until ... by budget NAME (refusal ID)", ID a random number of this process,
 * one of its last 64 refusals) lets requests go again; 0 when msg names none (the run
 * failed for another reason, or a source wrote those words).
 */
int64_t budgets_throttled(const struct budgets *, const char *msg);
/* How long (ms) what a finished transfer says of the server's limits blocks b (0: not at
 * all); *status: the answer's 429 or 503, else 0 (no request left). */
int64_t budgets_block_for(struct bud *, const struct http_limit_info *, long *status);
/* Block b until `until` (wall ms) here and, through the store, on every instance. */
void budgets_block(struct bud *, int64_t until, long status);

#endif
