/* mark_http.h - marking records done at an HTTP source (strategy flag). */
#ifndef ONESYNC_MARK_HTTP_H
#define ONESYNC_MARK_HTTP_H

#include "conn/conn.h"

/* source_mark for an HTTP source: one templated source.mark request per record. */
struct source_marker *mark_http_start(const struct conn_env *, const struct job_conf *,
    struct source_mark_item *, size_t n, source_mark_cb, void *arg);
void mark_http_cancel(struct source_marker *);	/* source_mark_cancel for CONN_HTTP */

#endif
