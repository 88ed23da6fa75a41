/* strategy_flag.h - the strategy "flag" as the run engine calls it. */
#ifndef ONESYNC_STRATEGY_FLAG_H
#define ONESYNC_STRATEGY_FLAG_H

#include "run/run.h"

extern const struct strategy_ops strategy_flag_ops;

#endif
