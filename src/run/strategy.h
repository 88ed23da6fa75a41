/* strategy.h - the strategies a run can follow, chosen by name. */
#ifndef ONESYNC_STRATEGY_H
#define ONESYNC_STRATEGY_H

#include "run/run.h"

/* The ops of the strategy named name ("flag", "modified", "capture"), NULL when none. */
const struct strategy_ops *strategy_find(const char *name);
/* The same for a job's configured strategy. */
const struct strategy_ops *strategy_lookup(enum strategy);

#endif
