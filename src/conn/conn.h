/*
 * conn.h - what the engine (run/) and every connector (conn/) share: the narrow context a
 * connector works in, and the shapes of what goes between them: a page read from a source,
 * marks at a source, records delivered to a destination. Types only: the dispatch is in
 * source.c and dest.c, each connector in a file of its own. A connector gets conn_env and
 * the job, never the daemon or the run.
 */
#ifndef ONESYNC_CONN_H
#define ONESYNC_CONN_H

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "config/model.h"
#include "record/tmpl.h"

struct pg_pools;

/* Where connectors do their I/O: the process's loop and its PostgreSQL pools (io/pg.h). */
struct conn_env {
	struct event_base	*base;
	struct pg_pools		*pools;
};

struct source_page;

/* A read in flight; every implementation's struct starts with `int kind` (enum conn_type),
 * by which source_cancel dispatches. */
struct source_req;
/* rc 0: page is set (caller owns it: source_page_free). rc -1: err says what and where. */
typedef void (*source_cb)(void *arg, int rc, struct source_page *page, const char *err);

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

/* Which page to read; each kind of source reads its part. */
struct source_read {
	const struct tmpl_vals		*vals;	/* HTTP: the URL's and query's placeholders */
	const char			*url;	/* HTTP: a next link to follow instead, or NULL */
	const struct source_pg_read	*pg;	/* PostgreSQL: the keyset position */
};

/* Marking records done at the source (strategy flag). */
enum mark_outcome {
	MARK_PENDING,
	MARK_OK,		/* marked */
	MARK_CONFLICT,		/* the record changed since it was read (compare-and-set failed) or is gone */
	MARK_FAILED,		/* could not mark now (error); retried at the next run */
};

/* One record to mark. */
struct source_mark_item {
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

enum dest_outcome {
	DEST_PENDING,
	DEST_OK,	/* accepted */
	DEST_REFUSED,	/* refused (4xx, constraint); goes to the retry queue with `error` */
};

struct dest_item {
	const char	*key;
	json_t		*rec;		/* borrowed */
	enum dest_outcome outcome;
	char		*error;		/* malloced, when refused */
	json_t		*answer;	/* the destination's JSON answer, when any (owned) */
};

struct dest;

/* rc 0: every item has an outcome. rc -1: the batch failed as a whole (err says why). */
typedef void (*dest_cb)(void *arg, int rc, const char *err);
/* cb of dest_aliases: rc 0 and hit[i] for cands[i], or rc -1 and err. */
typedef void (*dest_alias_cb)(void *arg, int rc, const char *err, const bool *hit);

/* What a destination does; dest.c calls it through these. */
struct dest_ops {
	void	(*deliver)(struct dest *, struct dest_item *, size_t, dest_cb, void *);
	void	(*cancel)(struct dest *);
	void	(*free)(struct dest *);
	void	(*delete)(struct dest *, struct dest_item *, size_t, dest_cb, void *);
	/* PostgreSQL only (NULL elsewhere): see dest_aliases. */
	void	(*aliases)(struct dest *, char *const *, size_t, char *const *, size_t,
		    dest_alias_cb, void *);
};

/* The common head of a destination; each implementation embeds it first. */
struct dest {
	const struct dest_ops	*ops;
	const struct conn_env	*env;
	const struct job_conf	*job;
};

#endif
