/* global.h - the state, daemon and defaults groups (global.c). */
#ifndef ONESYNC_GLOBAL_H
#define ONESYNC_GLOBAL_H

#include "config/ctx.h"

/* daemon, then state, then defaults (into c->d and c->d_jitter). */
void config_global_parse(struct ctx *c, config_setting_t *root);

#endif
