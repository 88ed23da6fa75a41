/* source_file.h - a file source, and the flat fields of a CSV file (source_file.c). */
#ifndef ONESYNC_CONFIG_SOURCE_FILE_H
#define ONESYNC_CONFIG_SOURCE_FILE_H

#include "config/ctx.h"

/* The source group g of a file source into j->src. */
void config_source_file_parse(struct ctx *c, config_setting_t *g, struct job_conf *j);
/* A CSV file's fields are flat strings: a dotted record path (key names it) never matches. */
void config_source_file_flat(struct ctx *c, int line, const struct job_conf *j,
    const char *key, const char *path);
/* The same for each {{record.PATH}} of template t, set at g's member name. */
void config_source_file_flat_tmpl(struct ctx *c, config_setting_t *g, const char *name,
    const struct job_conf *j, const char *key, const struct tmpl *t);

#endif
