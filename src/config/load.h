/* load.h - load, free and look up a configuration; the key table for --dump-keys (load.c). */
#ifndef ONESYNC_LOAD_H
#define ONESYNC_LOAD_H

#include <stdio.h>

#include "config/model.h"

/*
 * Parse and validate a file. On success returns 0 and *out. On failure returns -1 and
 * appends every error as "FILE:LINE: message" to errs; *out is NULL.
 */
int config_load(const char *path, struct config **out, struct strlist *errs) WUR;
/* After a load: a warning (caller frees) when the file is readable by every user and holds
 * credentials written literally, or NULL. */
char *config_exposed(const char *path);
void config_free(struct config *);
const struct job_conf *config_job(const struct config *, const char *name);

/* Print every key of the table with type, default, reloadable and doc (for --dump-keys). */
void config_dump_keys(FILE *);

#endif
