/* pg.h - asynchronous libpq on libevent: a small pool per conninfo, queued single statements. */
#ifndef ONESYNC_PG_H
#define ONESYNC_PG_H

#include <event2/event.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include "core/util.h"

struct pg;

/*
 * Called once per query. On success res is the last PGresult (freed after the callback)
 * and err is NULL. On failure res is NULL, err says why and sqlstate is the 5-char code
 * ("" for connection-level failures, then `conn_lost` is true).
 */
struct pg_result_info {
	PGresult	*res;
	const char	*err;
	const char	*sqlstate;
	bool		 conn_lost;
};
typedef void (*pg_cb)(const struct pg_result_info *, void *arg);
typedef void (*pg_notify_cb)(const char *channel, const char *payload, void *arg);
typedef void (*pg_row_cb)(PGresult *row, void *arg);

/*
 * A pool of up to `size` connections to conninfo, opened on demand with a connect
 * timeout; a lost connection fails its query and is reopened with backoff and jitter.
 * `name` is used in log lines (the conninfo itself is logged only redacted).
 */
struct pg *pg_new(struct event_base *, const char *conninfo, const char *name, int size,
    long connect_timeout_ms);
void pg_free(struct pg *);	/* fails pending queries (callbacks run) */

/* Queue one statement (may be several ';'-separated when nparams == 0). */
void pg_query(struct pg *, const char *sql, int nparams, const char *const *values,
    pg_cb, void *arg);
/*
 * One statement whose rows are streamed (libpq's single-row mode): row_cb gets each row as
 * it arrives (a result of one row, freed when row_cb returns), then cb the end: an empty
 * result, or the error. Rows handed over before an error (a lost connection, a failure
 * mid-scan) stand: the caller discards them when cb reports the error. Memory holds a
 * row at a time, whatever the size of the answer, and the statement needs no ORDER BY.
 */
void pg_query_rows(struct pg *, const char *sql, int nparams, const char *const *values,
    pg_row_cb row_cb, pg_cb cb, void *arg);
/* Same, with binary/text formats and lengths (for bytea); formats NULL = all text. */
void pg_query_params(struct pg *, const char *sql, int nparams, const char *const *values,
    const int *lengths, const int *formats, pg_cb, void *arg);
/*
 * COPY FROM STDIN in one round trip: sql is a simple-protocol string (';'-separated, no
 * parameters, one transaction unless it says otherwise) with one COPY ... FROM STDIN; when
 * the server asks, data (len bytes in the COPY's format, copied) goes without blocking the
 * loop, and the statements after the COPY run. setup (with tag, both may be NULL) is what a
 * session needs first, such as a temporary table: it is put in front of sql on a connection
 * whose session has not run it under tag with success (a new connection after a reconnect
 * has not), and again after a statement that relied on it failed (so it must be idempotent). The callback gets the last result, or the first error, as for pg_query.
 */
void pg_copy(struct pg *, const char *tag, const char *setup, const char *sql,
    const char *data, size_t len, pg_cb, void *arg);
/*
 * Timeouts of the pool's statements (statement_ms for connections opened afterwards,
 * answer_ms at once): statement_ms becomes the sessions' statement_timeout and
 * lock_timeout, set by their first statement (the server ends a statement that runs or
 * waits for a lock longer); a statement unanswered after answer_ms has its connection
 * dropped and fails with conn_lost (a hung server, a half-open connection). 0 = none.
 * Every connection also gets TCP keepalives and tcp_user_timeout unless its conninfo
 * sets them.
 */
void pg_set_timeouts(struct pg *, long statement_ms, long answer_ms);
/*
 * Cancel the statements whose callback is cb and whose arg match() accepts: a queued one
 * leaves the queue, a running one has its connection dropped (freeing the pool's slot at
 * once). Their callbacks still come, on a later loop turn, with err "cancelled".
 */
void pg_cancel(struct pg *, pg_cb cb, bool (*match)(void *arg, void *ctx), void *ctx);
/* A connection is open, or none is but the last connect attempt succeeded. */
bool pg_is_up(const struct pg *);
int pg_queued(const struct pg *);	/* queries not yet answered: waiting or running */
/*
 * NOTIFY messages received on any connection of the pool go to cb (NULL: dropped).
 * For LISTEN use a pool of size 1, so that the LISTEN and the session stay together.
 */
void pg_set_notify(struct pg *, pg_notify_cb, void *arg);
/*
 * The pools of the sources' and destinations' databases: one per conninfo and timeout,
 * shared by the jobs that name them, of 4 connections each, opened on demand. The timeout
 * becomes the sessions' statement_timeout and lock_timeout; a statement not answered
 * PG_ANSWER_MARGIN_MS after it has its connection dropped. pg_pools_free frees every pool
 * (pg_free: their pending queries fail).
 */
#define PG_ANSWER_MARGIN_MS	5000
struct pg_pools;
struct pg_pools *pg_pools_new(struct event_base *, long connect_timeout_ms);
struct pg *pg_pools_get(struct pg_pools *, const char *conninfo, int64_t timeout_ms);
void pg_pools_free(struct pg_pools *);
/* Quote an identifier ("a.b" -> "a"."b" when split_dots); result malloced. */
char *pg_quote_ident(const char *, bool split_dots);

/*
 * Can this error (SQLSTATE) belong to one row of a many-row statement (data, constraint,
 * cardinality, what a trigger or function raises), so that the rows are worth sending one by
 * one? Never for connection loss, permissions, undefined objects, resources, locks, timeouts.
 */
bool pg_row_error(const char *sqlstate);
bool pg_row_error_ambiguous(const char *sqlstate);

#endif
