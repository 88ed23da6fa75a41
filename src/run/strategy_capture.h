/* strategy_capture.h - the strategy "capture" as the run engine calls it. */
#ifndef ONESYNC_STRATEGY_CAPTURE_H
#define ONESYNC_STRATEGY_CAPTURE_H

#include "run/run.h"

extern const struct strategy_ops strategy_capture_ops;

#endif
