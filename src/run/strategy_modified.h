/* strategy_modified.h - the strategy "modified" as the run engine calls it. */
#ifndef ONESYNC_STRATEGY_MODIFIED_H
#define ONESYNC_STRATEGY_MODIFIED_H

#include "run/run.h"

extern const struct strategy_ops strategy_modified_ops;

#endif
