/*
 * stop.c - the daemon's way out, on SIGTERM, when another process took the instance name,
 * or when --once is done: no run starts any more, the runs in flight are cut after
 * daemon.stop_timeout, and once none is left the leases go back and the instance leaves
 * (the others take its jobs at once). It never waits on the loop: each step is a callback.
 */
#include <stdlib.h>
#include <syslog.h>

#include "core/log.h"
#include "daemon/creds.h"
#include "daemon/daemon_int.h"
#include "daemon/notify.h"
#include "daemon/stop.h"
#include "run/run.h"
#include "store/state.h"

/* Stopping: tell systemd, start no run any more (timers off, the queue emptied). */
void
stop_scheduling(struct daemon *d)
{
	notify_stopping();
	d->stopping = true;
	for (size_t i = 0; i < d->njobs; i++)
		evtimer_del(d->jobs[i]->timer);
	while (d->qhead != NULL) {
		d->qhead->queued = false;
		d->qhead = d->qhead->qnext;
	}
	d->qtail = NULL;
}

static void
left(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	if (rc != STATE_OK)
		log_warnx("could not unregister the instance: %s", err);
	event_base_loopexit(d->base, NULL);
}

static void
release_answered(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	if (rc != STATE_OK)
		log_warnx("could not release the leases: %s", err);
	/* Tell the others at once, so that they take the jobs without waiting for a tick
	 * (and free the instance name, which --once registered too). */
	state_leave(d->state, left, d);
}

static void
creds_flushed(void *arg)
{
	stop_maybe_exit(arg);
}

/* When stopping (or --once is done) and no run is left: release leases and leave. */
void
stop_maybe_exit(struct daemon *d)
{
	struct strlist names = { 0 };
	int64_t *epochs;
	size_t n = 0;

	if (d->once && !d->stopping) {
		for (size_t i = 0; i < d->njobs; i++)
			if (!d->jobs[i]->once_done && d->jobs[i]->conf->enabled)
				return;
		d->stopping = true;
		d->exit_code = d->once_failed > 0 ? 1 : d->once_not_run > 0 ?
		    DAEMON_ONCE_NOT_RUN : 0;
		if (d->once_not_run > 0)
			log_job(LOG_NOTICE, NULL, 0, NULL, "--once: %d of the selected jobs did "
			    "not run (paused, disabled, held by another instance, or throttled "
			    "by a request budget)", d->once_not_run);
	}
	if (!d->stopping || d->running > 0)
		return;
	if (!d->creds_flushed) {	/* a rotated refresh token is not left unstored */
		d->creds_flushed = true;
		if (creds_stop(d->creds, creds_flushed, d))
			return;
	}
	epochs = xcalloc(d->njobs + 1, sizeof *epochs);
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->epoch != 0) {
			strlist_add(&names, xstrdup(d->jobs[i]->name));
			epochs[n++] = d->jobs[i]->epoch;
			d->jobs[i]->epoch = 0;
		}
	if (d->migrated)
		state_release(d->state, names.v, epochs, names.n, release_answered, d);
	else
		event_base_loopexit(d->base, NULL);
	strlist_free(&names);
	free(epochs);
}

void
stop_cut(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->run != NULL)
			run_cut(d->jobs[i]->run, "stopped: the daemon is shutting down");
}

void
stop_hard(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	log_warnx("runs did not end in time; exiting without releasing their leases");
	event_base_loopbreak(d->base);
}
