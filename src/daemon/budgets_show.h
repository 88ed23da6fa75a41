/* budgets_show.h - the budgets' metrics and /budgets (budgets_show.c). */
#ifndef ONESYNC_BUDGETS_SHOW_H
#define ONESYNC_BUDGETS_SHOW_H

#include <jansson.h>
#include "core/util.h"

struct budgets;

/* The Prometheus lines of the budgets (onesyncd(8), METRICS); nothing for NULL. */
void budgets_render(const struct budgets *, struct buf *);
/* This instance's view of the budgets, for the status endpoint's /budgets. */
json_t *budgets_json(const struct budgets *);

#endif
