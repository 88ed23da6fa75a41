/*
 * source.h - reading one page of records from a source and marking records done there,
 * whatever the source's type (source.type): source.c chooses the implementation.
 */
#ifndef ONESYNC_SOURCE_H
#define ONESYNC_SOURCE_H

#include "conn/conn.h"
#include "conn/source_page.h"

/*
 * Fetch a page: HTTP: read->url (when not NULL, e.g. a next link) or the job's URL and
 * query rendered with read->vals; PostgreSQL: read->pg (page->date is then the source
 * database's now(), RFC 3339). The callback never runs before this returns; NULL and *err
 * when nothing could be sent.
 */
struct source_req *source_fetch(const struct conn_env *, const struct job_conf *,
    const struct source_read *, source_cb, void *arg, char **err);
/* Stop a read (no callback after this) and free it; not after its callback has run. */
void source_cancel(struct source_req *);

/* Mark n records (HTTP: one templated request each, bounded concurrency; PostgreSQL: one
 * UPDATE ... FROM json_populate_recordset(...) RETURNING key). The callback never runs
 * before this returns. */
struct source_marker *source_mark(const struct conn_env *, const struct job_conf *,
    struct source_mark_item *, size_t n, source_mark_cb, void *arg);
/* Stop (no callback after this) and free; also how a marker is freed after its callback. */
void source_mark_cancel(struct source_marker *);

#endif
