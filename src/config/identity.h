/* identity.h - a job's fingerprint and identity (identity.c). */
#ifndef ONESYNC_IDENTITY_H
#define ONESYNC_IDENTITY_H

#include "config/model.h"

struct ctx;
struct config_setting_t;

/* j->fingerprint, then j->identity and j->definition, of job (a group of root). */
void config_identity_job(struct ctx *c, struct config_setting_t *root,
    struct config_setting_t *job, struct job_conf *j);
/* The members of two job definitions (JSON text) that differ, as "key, source" (malloc'd). */
char *config_identity_diff(const char *stored, const char *current);

#endif
