/* dest.h - a job's destination group (dest.c). */
#ifndef ONESYNC_CONFIG_DEST_H
#define ONESYNC_CONFIG_DEST_H

#include "config/ctx.h"

/* The destination group of job into j->dst (the key and the source already read). */
void config_dest_parse(struct ctx *c, config_setting_t *job, struct job_conf *j);

#endif
