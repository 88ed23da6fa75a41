/* source.h - a job's source group (source.c, source_file.c). */
#ifndef ONESYNC_CONFIG_SOURCE_H
#define ONESYNC_CONFIG_SOURCE_H

#include "config/ctx.h"

/* The source group of job into j->src (the strategy groups already read). */
void config_source_parse(struct ctx *c, config_setting_t *job, struct job_conf *j);

#endif
