/* state.h - the shared state in PostgreSQL: schema, leases, runs, checkpoints. */
#ifndef ONESYNC_STATE_H
#define ONESYNC_STATE_H

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "config/model.h"
#include "core/util.h"
#include "store/state_ck.h"

enum {
	STATE_OK = 0,
	STATE_ERROR = -1,	/* database unreachable or a statement failed */
	STATE_LEASE_LOST = -2,	/* the fence refused the write */
	STATE_REFUSED = -3,	/* claim: the job's state belongs to another definition */
	STATE_CONN_LOST = -4,	/* the connection was lost, or could not be opened: the
				 * statement's outcome is unknown (it may have committed) */
};

struct state;

/* Timeouts of the state store's statements, from daemon.lease (again on reload). */
void state_set_lease(struct state *, int64_t lease_ms);

/* rc is STATE_*; res (borrowed, may be NULL) is the function's JSON answer. */
typedef void (*state_cb)(void *arg, int rc, json_t *res, const char *err);
typedef void (*state_claim_cb)(void *arg, int rc, int64_t epoch, const char *err);

struct state *state_new(struct event_base *, const char *conninfo, const char *schema,
    int connections, int64_t connect_timeout_ms, const char *instance);
void state_free(struct state *);
bool state_up(const struct state *);
const char *state_schema(const struct state *);	/* quoted */

/* This process's incarnation token (random; instances.incarnation, jobs.incarnation). */
const char *state_incarnation(const struct state *);
/* Where claims find a job's identity (hash) and definition (JSON text, *definition);
 * NULL when the job is unknown. */
typedef const char *(*state_identity_fn)(const char *job, const char **definition, void *arg);
void state_set_identity(struct state *, state_identity_fn, void *arg);

/* Create or migrate the schema (advisory lock); res = {"version": N}. */
void state_migrate(struct state *, state_cb, void *);
/* LISTEN on the coordination connection: run-now requests (onesyncctl run) call run_cb
 * with the job's name; instances joining or leaving call rebalance_cb. */
void state_listen(struct state *, void (*run_cb)(const char *job, void *),
    void (*rebalance_cb)(void *), void *arg);
/*
 * Called for every onesync_budget notification (a block by any instance, this one
 * included) with the block now in force, once this schema's row confirms it: the channel
 * is shared by every schema in the database, so a block another deployment (another
 * state.schema) sent for a budget of the same name is not taken for ours. LISTENs on the
 * coordination connection; state_listen sends the LISTEN again after reconnects.
 */
void state_listen_budgets(struct state *, void (*cb)(const char *name, int64_t until_ms,
    void *), void *);
/* Jobs with a pending run-now request (polling, for when NOTIFY cannot reach us);
 * res = JSON array of names. */
void state_requests(struct state *, state_cb, void *);
/*
 * Register this process (once: an --once run, which sends no heartbeats) under its
 * instance name: res = {"live": true, "age_s", "version"} when another live process holds
 * the name (its coordination connection open and, unless an --once run, its heartbeat
 * within live_ms); else {"live": false, "took_over": the previous incarnation or null,
 * "released": leases of it released}.
 */
void state_register(struct state *, int capacity, int64_t live_ms, bool once, state_cb,
    void *);
/*
 * Heartbeat this instance (registering it the first time, with NOTIFY onesync_rebalance),
 * publishing its jobs (jobs: JSON object name -> identity), forget instances silent for
 * more than reap_ms, and answer {"me": false when another process took the name over,
 * "live": [[id, capacity, {job: identity}], ...] sorted by id (heartbeat within live_ms,
 * by the database clock), "stored": {job: identity of its state}, "differs": {job:
 * stored definition} for this instance's jobs whose identity differs}.
 */
void state_heartbeat(struct state *, int capacity, const char *jobs, int64_t live_ms,
    int64_t reap_ms, bool first, state_cb, void *);
/* Leave: delete this instance's row and NOTIFY onesync_rebalance (at a clean stop). */
void state_leave(struct state *, state_cb, void *);
/* Claim a job's lease (known: the epoch we hold, or 0) for its current identity; epoch 0
 * in the callback when another process holds it; STATE_REFUSED (err names what changed)
 * when the job's state was written with another definition. */
void state_claim(struct state *, const char *job, int64_t known, int64_t lease_ms,
    state_claim_cb, void *);
/* Renew many leases at once (by name and epoch); res = [[name, epoch], ...] still held. */
void state_renew(struct state *, char *const *jobs, const int64_t *epochs, size_t n,
    int64_t lease_ms, state_cb, void *);
/* Give leases back: only those held by this process with these epochs. */
void state_release(struct state *, char *const *jobs, const int64_t *epochs, size_t n,
    state_cb, void *);
/* Start a run (fenced): res = {run, watermark, watermark_ns, watermark_key, failures,
 * dead_records, seen_rows (whether the seen set has rows), retry (due, at most `retries`)}. */
void state_run_start(struct state *, const char *job, int64_t epoch, int retries,
    state_cb, void *);
/* A read answered as rows: res (borrowed, NULL on error). */
typedef void (*state_rows_cb)(void *arg, int rc, PGresult *res, const char *err);
/* How many rows one paged read of the state asks for. */
#define STATE_PAGE	10000
/*
 * Strategy capture: the stored key -> hash map, streamed in one statement in the table's
 * order (no ORDER BY: an index scan by key would visit the heap at random): row gets each
 * row (columns key, hash; borrowed for the call), then done the end (res empty) or the
 * error, after which the rows handed over must be thrown away. One row, usually the
 * first, has a NULL key and, in place of the hash, how many records the job's last ok run
 * read (or NULL): a hint that sizes the map once instead of growing it step by step. (An
 * exact count(*) scanned the table a second time, and cost more time than it saved.)
 */
typedef void (*state_row_cb)(void *arg, PGresult *row);
void state_records(struct state *, const char *job, state_row_cb row, state_rows_cb done,
    void *);
/* Strategy modified: one page of the seen set (key, hash, ts_ns), in key order. */
void state_seen(struct state *, const char *job, const char *after, int limit,
    state_rows_cb, void *);
/* Strategy capture: one page of the retry queue by key: key, hash, and "true" when the
 * entry waits (dead, or its retry not due yet). */
void state_queue(struct state *, const char *job, const char *after, int limit,
    state_rows_cb, void *);
/* Strategy flag: what the state knows of these n keys, one row each: kind 'f' (retry
 * queue: key, hash, waiting 'true'/'false') or 'u' (unmarked: key, hash, -, answer as JSON
 * text). */
void state_lookup(struct state *, const char *job, char *const *keys, size_t n,
    state_rows_cb, void *);
/*
 * For the statements of store/state_budget.c: "SELECT ..." with "@S@" standing for the
 * schema and text parameters, on the coordination connection (coord) or the pool; res is
 * the first column of the first row as JSON.
 */
void state_call(struct state *, bool coord, const char *what, const char *sql, int n,
    const char *const *v, state_cb, void *);
/* A PostgreSQL bigint[] literal of n values (to free). */
char *state_int_array(const int64_t *, size_t n);
/* One fenced checkpoint. With "seq" in ck->d (its number within the run) it is applied
 * once however often it is sent. */
void state_checkpoint(struct state *, const char *job, int64_t epoch, long long run,
    struct state_ck *, state_cb, void *);

#endif
