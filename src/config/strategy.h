/* strategy.h - the strategy groups of a job (strategy.c). */
#ifndef ONESYNC_CONFIG_STRATEGY_H
#define ONESYNC_CONFIG_STRATEGY_H

#include "config/ctx.h"

/* The modified, flag and capture groups of job into j (j->strategy already read). */
void config_strategy_parse(struct ctx *c, config_setting_t *job, struct job_conf *j);
/* Strategy flag / a supported one other than flag / capture (false when unsupported). */
bool config_strategy_is_flag(const struct ctx *c, const struct job_conf *j);
bool config_strategy_not_flag(const struct ctx *c, const struct job_conf *j);
bool config_strategy_is_capture(const struct ctx *c, const struct job_conf *j);

#endif
