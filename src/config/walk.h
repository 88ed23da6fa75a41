/* walk.h - every setting of a group checked against the key table (walk.c). */
#ifndef ONESYNC_WALK_H
#define ONESYNC_WALK_H

#include "config/ctx.h"

/* Walk group g, whose table path is tpath ("jobs.*") and whose name for users is dpath
 * ("jobs[2]"): unknown keys and wrong types, recursively. */
void walk_group(struct ctx *c, config_setting_t *g, const char *tpath, const char *dpath);

#endif
