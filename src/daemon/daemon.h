/* daemon.h - the process: event loop, configuration, jobs, scheduling, leases, signals. */
#ifndef ONESYNC_DAEMON_H
#define ONESYNC_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The daemon's own types (struct daemon, struct jobrt), for the files below it that still
 * reach up to them: the runs (r->jr) and the connectors (daemon_pg, d->base). They go when
 * runs get their own context and the pools move into io/pg.
 */
#include "daemon/daemon_int.h"

/*
 * A PostgreSQL pool for a source or destination conninfo, shared by the jobs that name it
 * with the same timeout: the sessions' statement_timeout and lock_timeout; a statement not
 * answered PG_ANSWER_MARGIN_MS after it has its connection dropped.
 */
#define PG_ANSWER_MARGIN_MS	5000
struct pg *daemon_pg(struct daemon *, const char *conninfo, int64_t timeout_ms);
/* Called by run.c when a run has ended (after its last state write). */
void daemon_run_ended(struct jobrt *, bool ok, bool lease_lost);

int daemon_main(const char *cfg_path, bool once, char **once_jobs, int verbose);

#endif
