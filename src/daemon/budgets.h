/*
 * budgets.h - the request budgets shared by the jobs of this instance and, through the
 * state store, by every instance on it (doc/design.md §7.6): every HTTP attempt whose URL
 * a budget matches waits for its permit (io/http.h's permit hook).
 */
#ifndef ONESYNC_BUDGETS_H
#define ONESYNC_BUDGETS_H

#include <jansson.h>
#include <stdint.h>
#include <event2/event.h>
#include "config/model.h"
#include "core/util.h"

struct budgets;
struct state;

/* The engine of cfg's budgets; NULL when it has none (no permit is then asked). */
struct budgets *budgets_new(struct event_base *, struct state *, const struct config *cfg);
/*
 * A reload: the budgets of cfg from now on. A budget kept by name keeps what it holds and
 * its waiting requests; a removed one lets its waiting requests go on. Returns the engine
 * (a new one when there was none, NULL when cfg has no budget and none was running).
 */
struct budgets *budgets_reload(struct budgets *, struct event_base *, struct state *,
    const struct config *cfg);
/* Stop asking and answering (before http_shutdown); then budgets_free (after state_free). */
void budgets_close(struct budgets *);
void budgets_free(struct budgets *);
/*
 * Around the cancel of a run whose run_timeout fired: budgets_cut_begin starts noting the
 * requests freed while a budget held them for a time whose end is known (a block, full
 * windows); budgets_cut_end stops and answers, for the latest such end, a refusal's
 * message as budgets_refusal (daemon/budgets_block.h) makes it (the caller frees it), or
 * NULL when no freed request waited so.
 */
void budgets_cut_begin(struct budgets *);
char *budgets_cut_end(struct budgets *);

#endif
