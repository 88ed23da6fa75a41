/*
 * schedule.c - when each job runs: its timer (interval + jitter), the queue of due jobs,
 * the max_runs slots, and what follows a run's end (the next run, the lease of a job that
 * left this instance). It owns every jobrt's timer and place in the queue; it never frees
 * a run (run.c does, before it calls back here) and never talks to other instances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core/log.h"
#include "daemon/budgets.h"
#include "daemon/budgets_block.h"
#include "daemon/daemon_int.h"
#include "daemon/notify.h"
#include "daemon/schedule.h"
#include "daemon/stop.h"
#include "run/run.h"
#include "run/strategy.h"
#include "store/state.h"

static void start_due(struct daemon *);

static bool
wanted_once(struct daemon *d, const char *name)
{
	if (d->once_jobs == NULL || d->once_jobs[0] == NULL)
		return true;
	for (char **p = d->once_jobs; *p != NULL; p++)
		if (strcmp(*p, name) == 0)
			return true;
	return false;
}

void
schedule_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct jobrt *jr = arg;
	struct daemon *d = jr->d;

	if (d->stopping || jr->removed || !jr->conf->enabled || jr->run != NULL || jr->queued)
		return;
	if (!d->once && (!d->balanced || !jr->mine))
		return;		/* another instance's share; rebalance() schedules it if it moves */
	jr->queued = true;
	jr->qnext = NULL;
	if (d->qtail != NULL)
		d->qtail->qnext = jr;
	else
		d->qhead = jr;
	d->qtail = jr;
	start_due(d);
}

struct jobrt *
schedule_jobrt_new(struct daemon *d, const struct job_conf *jc)
{
	struct jobrt *jr = xcalloc(1, sizeof *jr);

	jr->d = d;
	jr->name = xstrdup(jc->name);
	jr->ref = d->ref;
	jr->ref->refs++;
	jr->conf = jc;
	jr->timer = evtimer_new(d->base, schedule_timer, jr);
	if (jc->strategy == STRAT_MODIFIED && !jc->modified.sorted &&
	    jc->src.type == CONN_HTTP &&
	    (jc->src.page_style == PAGE_PAGE || jc->src.page_style == PAGE_OFFSET))
		log_job(LOG_WARNING, jc->name, 0, NULL, "modified.sorted = false with page.style "
		    "'%s': a record that moves onto a page already read while a run pages (others "
		    "deleted before it, or an order that is not stable) is missed until it changes "
		    "again; sort the source by (modified field, key) and set modified.sorted = true",
		    jc->src.page_style == PAGE_PAGE ? "page" : "offset");
	if (jc->src.fetch != NULL)
		log_job(LOG_WARNING, jc->name, 0, NULL, "source.fetch is not used by this version: "
		    "a retry sends the record as it was stored with its failure, not a fresh read");
	return jr;
}

void
schedule_jobrt_free(struct jobrt *jr)
{
	event_free(jr->timer);
	daemon_cfgref_drop(jr->ref);
	free(jr->name);
	free(jr->mismatch);
	free(jr->held_identity);
	free(jr);
}

void
schedule_in(struct jobrt *jr, int64_t delay_ms)
{
	struct timeval tv = daemon_tv_ms(delay_ms < 0 ? 0 : delay_ms);

	if (jr->d->once || jr->d->stopping || jr->removed || !jr->conf->enabled)
		return;
	evtimer_add(jr->timer, &tv);
}

/* The next run: interval plus a random part of the jitter. */
int64_t
schedule_next_delay(const struct job_conf *jc)
{
	int64_t jitter = jc->jitter_ms >= 0 ? jc->jitter_ms : jc->interval_ms / 10;

	return jc->interval_ms + (jitter > 0 ? (int64_t)(rand64() % (uint64_t)jitter) : 0);
}

void
schedule_status_line(struct daemon *d)
{
	size_t failing = 0;
	char rejected[96] = "";

	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->last_failed)
			failing++;
	if (d->reload_errors > 0)
		snprintf(rejected, sizeof rejected, "; last reload rejected (%zu errors), the "
		    "previous configuration is in force", d->reload_errors);
	notify_status("%zu jobs, %d running, %zu failing; state store %s%s", d->njobs,
	    d->running, failing, daemon_state_reachable(d) ? "reachable" : "unreachable",
	    rejected);
}

/*
 * A lease claimed for one definition is not kept for another: when the job's identity
 * changed on reload, its next run claims again, and the claim checks the definition.
 */
static void
lease_identity(struct jobrt *jr)
{
	if (jr->epoch != 0 && (jr->held_identity == NULL ||
	    strcmp(jr->held_identity, jr->conf->identity) != 0))
		jr->epoch = 0;
	free(jr->held_identity);
	jr->held_identity = xstrdup(jr->conf->identity);
}


static void job_run_ended(void *, const struct run_outcome *);

/* Whether the job stays ours after its run (else its last write hands the lease back). */
static bool
job_keeps_lease(void *arg)
{
	struct jobrt *jr = arg;
	struct daemon *d = jr->d;

	return !(d->stopping || (!d->once && !jr->mine) || jr->removed || !jr->conf->enabled);
}

static void
cfgref_release(void *ref)
{
	daemon_cfgref_drop(ref);
}

/* Whether a failed run's message is a budget's refusal (daemon/budgets.c). */
static int64_t
job_throttled(const char *msg, void *arg)
{
	struct jobrt *jr = arg;

	return budgets_throttled(jr->d->budgets, msg);
}

/* Around a timed-out run's cancel: a budget's wait past its time (daemon/budgets.c). */
static char *
job_budget_waits(bool begin, void *arg)
{
	struct jobrt *jr = arg;
	char *why, *msg;

	if (begin) {
		budgets_cut_begin(jr->d->budgets);
		return NULL;
	}
	if ((why = budgets_cut_end(jr->d->budgets)) == NULL)
		return NULL;
	msg = xasprintf("%s: a wait longer than what was left of its run_timeout of %lld ms",
	    why, (long long)jr->conf->timeout_ms);
	free(why);
	return msg;
}

/* Start a run of jr: it gets what it needs of the daemon, never the daemon. */
static void
job_run_start(struct jobrt *jr)
{
	struct daemon *d = jr->d;
	struct run_env env = {
		.base = d->base, .state = d->state, .conn = &d->conn,
		.lease = { &jr->epoch, &jr->lease_deadline, d->ref->cfg->daemon.lease_ms },
		.once = d->once, .keeps_lease = job_keeps_lease, .ended = job_run_ended,
		.arg = jr, .cfg = jr->ref, .cfg_drop = cfgref_release,
		.throttled = d->budgets != NULL ? job_throttled : NULL,
		.budget_waits = d->budgets != NULL ? job_budget_waits : NULL,
	};

	jr->ref->refs++;	/* the run's hold, dropped by cfgref_release */
	jr->run = run_start(jr->conf, strategy_lookup(jr->conf->strategy), &env);
}

/* Start queued jobs while run slots are free. */
static void
start_due(struct daemon *d)
{
	int max = d->ref->cfg->daemon.max_runs;

	while (d->qhead != NULL && d->running < max && d->migrated && !d->stopping) {
		struct jobrt *jr = d->qhead;

		d->qhead = jr->qnext;
		if (d->qhead == NULL)
			d->qtail = NULL;
		jr->queued = false;
		jr->qnext = NULL;
		if (jr->removed || jr->run != NULL)
			continue;
		d->running++;
		lease_identity(jr);
		job_run_start(jr);
	}
}

/* A run has ended (after its last state write): free its slot, schedule the job's next run,
 * start due ones. */
static void
job_run_ended(void *arg, const struct run_outcome *o)
{
	struct jobrt *jr = arg;
	struct daemon *d = jr->d;
	bool ok = o->ok, lost = o->lease_lost, throttled = o->throttled_until != 0;

	jr->run = NULL;
	jr->claim_failed = o->claim_failed;
	jr->not_run = o->not_run;
	jr->throttled_until = o->throttled_until;

	d->running--;
	jr->last_failed = !ok && !throttled;
	if (ok)
		d->runs_ok++;
	else if (!throttled)
		d->runs_failed++;
	if (d->once) {
		jr->once_done = true;
		if (throttled)
			d->once_not_run++;	/* exit 75: try again later */
		else if (!ok)
			d->once_failed++;
		else if (jr->not_run)
			d->once_not_run++;
	}
	jr->not_run = false;
	if (jr->epoch != 0 && !d->stopping && (jr->removed || !jr->conf->enabled ||
	    (!d->once && !jr->mine))) {
		/* Removed, disabled, or its share moved while it ran, and its last write did
		 * not hand the lease back (a failed run): release it now. */
		char *n = jr->name;

		log_job(LOG_INFO, jr->name, 0, NULL, "%s", jr->removed ? "releasing the lease of "
		    "the removed job" : !jr->conf->enabled ? "releasing the lease of the disabled "
		    "job" : "handing the job over to instance of its share");
		state_release(d->state, &n, &jr->epoch, 1, NULL, NULL);
		jr->epoch = 0;
	}
	if (jr->removed) {
		for (size_t i = 0; i < d->njobs; i++)
			if (d->jobs[i] == jr) {
				d->jobs[i] = d->jobs[--d->njobs];
				break;
			}
		schedule_jobrt_free(jr);
	} else if (jr->run_again) {
		jr->run_again = false;
		schedule_in(jr, 0);
	} else if (jr->claim_failed) {
		/* Another instance still holds it (e.g. its lease has not run out yet). */
		jr->claim_failed = false;
		schedule_in(jr, d->ref->cfg->daemon.lease_ms / 3 < jr->conf->interval_ms ?
		    d->ref->cfg->daemon.lease_ms / 3 : jr->conf->interval_ms);
	} else if (throttled) {
		/* At the time the budget gives, with jitter: the jobs it refused do not all
		 * come back at once. */
		int64_t wait = o->throttled_until - now_wall_ms();

		schedule_in(jr, (wait > 0 ? wait : 0) + (int64_t)(rand64() % 1000));
	} else
		schedule_in(jr, lost ? jr->conf->interval_ms : schedule_next_delay(jr->conf));
	schedule_status_line(d);
	start_due(d);
	stop_maybe_exit(d);
}

/* Take a job out of the queue of due jobs, if it is there. */
void
schedule_unqueue(struct daemon *d, struct jobrt *jr)
{
	struct jobrt **pp = &d->qhead, *prev = NULL;

	if (!jr->queued)
		return;
	while (*pp != NULL && *pp != jr) {
		prev = *pp;
		pp = &(*pp)->qnext;
	}
	if (*pp == jr) {
		*pp = jr->qnext;
		if (d->qtail == jr)
			d->qtail = prev;
	}
	jr->queued = false;
	jr->qnext = NULL;
}

/* Put every job (or the --once ones) on the schedule. */
void
schedule_all(struct daemon *d)
{
	for (size_t i = 0; i < d->njobs; i++) {
		struct jobrt *jr = d->jobs[i];

		if (!jr->conf->enabled) {
			if (d->once && d->once_jobs != NULL && d->once_jobs[0] != NULL &&
			    wanted_once(d, jr->name)) {
				log_job(LOG_NOTICE, jr->name, 0, NULL, "disabled (enabled = false): "
				    "no run (--once)");
				d->once_not_run++;
			}
			continue;
		}
		if (d->once) {
			if (!wanted_once(d, jr->name)) {
				jr->once_done = true;
				continue;
			}
			schedule_timer(-1, 0, jr);
		} else {
			int64_t j = jr->conf->jitter_ms >= 0 ? jr->conf->jitter_ms : 0;

			schedule_in(jr, j > 0 ? (int64_t)(rand64() % (uint64_t)(j < 1000 ? j : 1000)) : 0);
		}
	}
	if (d->once)
		stop_maybe_exit(d);
}
