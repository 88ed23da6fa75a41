/* state.h - the shared state in PostgreSQL: schema, leases, runs, checkpoints. */
#ifndef ONESYNC_STATE_H
#define ONESYNC_STATE_H

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "config.h"
#include "util.h"

enum {
	STATE_OK = 0,
	STATE_ERROR = -1,	/* database unreachable or a statement failed */
	STATE_LEASE_LOST = -2,	/* the fence refused the write */
	STATE_CONN_LOST = -3,	/* the connection was lost, or could not be opened: the
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

/* Create or migrate the schema (advisory lock); res = {"version": N}. */
void state_migrate(struct state *, state_cb, void *);
/* LISTEN on the coordination connection: run-now requests (onesyncctl run) call run_cb
 * with the job's name; instances joining or leaving call rebalance_cb. */
void state_listen(struct state *, void (*run_cb)(const char *job, void *),
    void (*rebalance_cb)(void *), void *arg);
/* Jobs with a pending run-now request (polling, for when NOTIFY cannot reach us);
 * res = JSON array of names. */
void state_requests(struct state *, state_cb, void *);
/*
 * Heartbeat this instance (registering it the first time, with NOTIFY onesync_rebalance),
 * forget instances silent for more than reap_ms, and answer the live ones (heartbeat
 * within live_ms, by the database clock): res = [[id, capacity], ...] sorted by id.
 */
void state_heartbeat(struct state *, int capacity, int64_t live_ms, int64_t reap_ms,
    bool first, state_cb, void *);
/* Leave: delete this instance's row and NOTIFY onesync_rebalance (at a clean stop). */
void state_leave(struct state *, state_cb, void *);
/* Claim a job's lease (known: the epoch we hold, or 0); epoch 0 in the callback when
 * another instance holds it. */
void state_claim(struct state *, const char *job, int64_t known, int64_t lease_ms,
    state_claim_cb, void *);
/* Renew many leases at once; res = JSON array of the job names still held. */
void state_renew(struct state *, char *const *jobs, const int64_t *epochs, size_t n,
    int64_t lease_ms, state_cb, void *);
void state_release(struct state *, char *const *jobs, size_t n, state_cb, void *);
/* Start a run (fenced): res = {run, watermark, watermark_ns, seen, failures, retry}. */
void state_run_start(struct state *, const char *job, int64_t epoch, int retries,
    state_cb, void *);
/* Strategy capture: one page of the stored key -> hash map, keys after `after` (NULL =
 * from the start) in key order; res (borrowed, NULL on error) has columns key, hash. */
typedef void (*state_rows_cb)(void *arg, int rc, PGresult *res, const char *err);
void state_records(struct state *, const char *job, const char *after, int limit,
    state_rows_cb, void *);
/* One fenced checkpoint (see sql_schema.h for the document's fields). With "seq" (its
 * number within the run) it is applied once however often it is sent. */
void state_checkpoint(struct state *, const char *job, int64_t epoch, long long run,
    json_t *doc, state_cb, void *);

#endif
