/* source_http.h - an HTTP/JSON API as source (source.type = "http"). */
#ifndef ONESYNC_SOURCE_HTTP_H
#define ONESYNC_SOURCE_HTTP_H

#include "conn/conn.h"

/* source_fetch for an HTTP source (read->vals, read->url). */
struct source_req *source_http_fetch(const struct conn_env *, const struct job_conf *,
    const struct source_read *, source_cb, void *arg, char **err);
/* Fetch one record by key with source.fetch; page->records holds it as a 1-element array.
 * Nothing calls it in this version (source.fetch is accepted and checked, not used). */
struct source_req *source_http_fetch_key(const struct job_conf *, const char *key,
    source_cb, void *arg, char **err);
void source_http_cancel(struct source_req *);	/* source_cancel for CONN_HTTP */

#endif
