/* endpoint.h - checks of what a source and a destination name (endpoint.c). */
#ifndef ONESYNC_ENDPOINT_H
#define ONESYNC_ENDPOINT_H

#include "config/ctx.h"

/* A conninfo (key = its name for users) libpq can parse; its password learnt by secrets.c. */
void endpoint_conninfo(struct ctx *c, config_setting_t *g, const char *key,
    const char *conninfo);
/* HTTP options of a source or destination (prefix "jobs.*.source"), defaults inherited. */
void endpoint_http_opts(struct ctx *c, config_setting_t *g, const char *prefix,
    struct http_opts *h);
/* An HTTP method of a destination or a marking request. */
void endpoint_method(struct ctx *c, config_setting_t *g, const char *key, const char *m);
/* A table: name or schema.name. */
bool endpoint_is_table(const char *t);
/* Keys of a source or destination group (and its subgroups) that belong to another
 * connector type: "'source.url' is not valid for a postgresql source". */
void endpoint_keys(struct ctx *c, config_setting_t *g, const char *tpath,
    enum conn_type type, const char *tname, const char *what);
/* A URL's literal text up to the first placeholder: a scheme of `schemes`, a host. */
void endpoint_url(struct ctx *c, config_setting_t *at, const char *key, const char *url,
    const char *schemes);
/* source.allow_origins, stored as url_origin writes them. */
void endpoint_allow_origins(struct ctx *c, config_setting_t *g, struct source_conf *s);
/* An HTTP URL template (member name of g, key for users): endpoint_url, an origin the
 * configuration fixes (*origin when not NULL), and the whole URL when a secret or an
 * environment value supplies its scheme or host. */
void endpoint_http_url(struct ctx *c, config_setting_t *g, const char *name, const char *key,
    const struct tmpl *t, char **origin);

#endif
