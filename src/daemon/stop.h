/* stop.h - the daemon's way out: no new run, runs cut, leases released, the instance left. */
#ifndef ONESYNC_STOP_H
#define ONESYNC_STOP_H

#include <event2/util.h>

struct daemon;

/* --once: a selected job did not run (lease held elsewhere, paused, or disabled). */
#define DAEMON_ONCE_NOT_RUN	75	/* EX_TEMPFAIL */

/* Runs still in flight this long after their cut are left behind (leases not released). */
#define STOP_GRACE_MS		5000

/* Stopping: tell systemd, start no run any more (timers off, the queue emptied). */
void stop_scheduling(struct daemon *);
/* Cut every run in flight (event callback; arg: the daemon). */
void stop_cut(evutil_socket_t, short, void *);
/* Leave the loop at once, leases unreleased (event callback; arg: the daemon). */
void stop_hard(evutil_socket_t, short, void *);
/* When stopping (or --once is done) and no run is left: release leases and leave. */
void stop_maybe_exit(struct daemon *);

#endif
