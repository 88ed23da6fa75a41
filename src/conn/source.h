/* source.h - reading one page of records from a source. */
#ifndef ONESYNC_SOURCE_H
#define ONESYNC_SOURCE_H

#include <jansson.h>
#include "config/model.h"

struct source_page {
	json_t	*records;	/* JSON array, owned */
	char	*next_url;	/* absolute URL of the next page (Link header or next field) */
	char	*cursor;	/* next page token (style next, when not a URL) */
	char	*date;		/* the source's Date header */
	char	*log_url;	/* redacted URL of the request */
};

/* A read in flight; every implementation's struct starts with `int kind` (enum conn_type),
 * by which source_cancel dispatches. */
struct source_req;
/* rc 0: page is set (caller owns it: source_page_free). rc -1: err says what and where. */
typedef void (*source_cb)(void *arg, int rc, struct source_page *page, const char *err);

/*
 * Fetch a page: url (when not NULL, e.g. a next link) or the job's rendered URL and query.
 * The callback never runs before this returns; NULL and *err when nothing could be sent.
 */
struct source_req *source_http_fetch(const struct job_conf *, const struct tmpl_vals *,
    const char *url, source_cb, void *arg, char **err);
/* Fetch one record by key with source.fetch; page->records holds it as a 1-element array. */
struct source_req *source_http_fetch_key(const struct job_conf *, const char *key,
    source_cb, void *arg, char **err);
/* Stop a read (no callback after this) and free it; not after its callback has run. */
void source_cancel(struct source_req *);
void source_pg_cancel(struct source_req *);	/* source_cancel for CONN_POSTGRESQL */
void source_page_free(struct source_page *);

/*
 * A read from a PostgreSQL source (source.type = "postgresql"): keyset paging, values as
 * parameters, identifiers quoted. Records are the rows as JSON objects (row_to_json), so
 * they flow through the same strategies as an API's records.
 */
enum source_pg_mode {
	SPG_MODIFIED,	/* modified.field >= from (or (field, key) > (from, after_key)), by (field, key) */
	SPG_PENDING,	/* strategy flag: rows matching source.pending, key > after_key, by key */
	SPG_ALL,	/* every row, key > after_key, by key (capture) */
};

struct source_pg_read {
	enum source_pg_mode mode;
	const char	*from;		/* SPG_MODIFIED: lower bound (text of the column's value), NULL = none */
	const char	*after_key;	/* keyset position (text of the key), NULL = from the start */
	int64_t		 settle_ms;	/* SPG_MODIFIED: only rows with field <= now() - settle */
	long long	 limit;		/* page size */
};

struct daemon;
/* page->date is set to the source database's now() (RFC 3339). */
struct source_req *source_pg_fetch(struct daemon *, const struct job_conf *,
    const struct source_pg_read *, source_cb, void *arg, char **err);

/*
 * A file snapshot (source.type = "file": CSV, NDJSON or a JSON array over file://, ftp://,
 * ftps://, sftp:// or http(s)://, gzip optional), streamed through libcurl multi and parsed
 * as the bytes arrive: memory holds a few records, never the file.
 */
struct file_reader;
/* One record (borrowed; incref to keep). `line` is where it starts in the file. */
typedef void (*file_rec_cb)(void *arg, json_t *rec, long line);
/* A malformed record; the reader goes on with the next one. msg names the file and line. */
typedef void (*file_bad_cb)(void *arg, long line, const char *msg);
/* The end: rc 0 = the whole file was read; -1 = transfer failed or the file is truncated;
 * SOURCE_FILE_MISMATCH = the file does not match the job (a CSV header without a field the
 * job reads), found before any record. */
typedef void (*file_done_cb)(void *arg, int rc, const char *err);
#define SOURCE_FILE_MISMATCH	(-2)

/* No callback runs before this returns; NULL and *err when nothing could start. */
struct file_reader *source_file_open(struct daemon *, const struct job_conf *, file_rec_cb,
    file_bad_cb, file_done_cb, void *arg, char **err);
/* Hold records back (the transfer pauses) until resumed; resume continues on a later
 * loop turn, never inside the call. */
void source_file_pause(struct file_reader *);
void source_file_resume(struct file_reader *);
void source_file_cancel(struct file_reader *);	/* no callback after this; frees it */
/* The redacted URL, for messages. */
const char *source_file_where(const struct file_reader *);

/* Marking records done at the source (strategy flag). */
enum mark_outcome {
	MARK_PENDING,
	MARK_OK,		/* marked */
	MARK_CONFLICT,		/* the record changed since it was read (compare-and-set failed) or is gone */
	MARK_FAILED,		/* could not mark now (error); retried at the next run */
};

struct source_mark {
	const char	*key;
	json_t		*rec;		/* the record as read (borrowed) */
	json_t		*dest;		/* the destination's answer for {{dest.PATH}} (borrowed, may be NULL) */
	enum mark_outcome outcome;
	char		*error;		/* malloced, for MARK_FAILED / MARK_CONFLICT */
};

/* The common head of a marker; each implementation embeds it first. */
struct source_marker {
	int	kind;		/* enum conn_type of the source */
};

/* rc 0: every mark has an outcome; rc -1: nothing could be tried (err). */
typedef void (*source_mark_cb)(void *arg, int rc, const char *err);

/* Mark n records (HTTP: one templated request each, bounded concurrency; PostgreSQL: one
 * UPDATE ... FROM json_populate_recordset(...) RETURNING key). The callback never runs
 * before this returns. */
struct source_marker *source_mark(struct daemon *, const struct job_conf *,
    struct source_mark *, size_t n, source_mark_cb, void *arg);
/* Stop (no callback after this) and free; also how a marker is freed after its callback. */
void source_mark_cancel(struct source_marker *);
struct source_marker *source_http_mark(struct daemon *, const struct job_conf *,
    struct source_mark *, size_t n, source_mark_cb, void *arg);
struct source_marker *source_pg_mark(struct daemon *, const struct job_conf *,
    struct source_mark *, size_t n, source_mark_cb, void *arg);
void source_http_mark_cancel(struct source_marker *);
void source_pg_mark_cancel(struct source_marker *);

#endif
