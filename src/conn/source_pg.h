/* source_pg.h - a PostgreSQL table or view as source (source.type = "postgresql"). */
#ifndef ONESYNC_SOURCE_PG_H
#define ONESYNC_SOURCE_PG_H

#include "conn/conn.h"

/* source_fetch for a PostgreSQL source (read->pg); page->date is the database's now(). */
struct source_req *source_pg_fetch(const struct conn_env *, const struct job_conf *,
    const struct source_read *, source_cb, void *arg, char **err);
void source_pg_cancel(struct source_req *);	/* source_cancel for CONN_POSTGRESQL */
/* source_mark for a PostgreSQL source: one UPDATE per call. */
struct source_marker *source_pg_mark(const struct conn_env *, const struct job_conf *,
    struct source_mark_item *, size_t n, source_mark_cb, void *arg);
void source_pg_mark_cancel(struct source_marker *);

#endif
