/*
 * daemon.c - the process around the jobs: one libevent loop, signals through evsignal,
 * the configuration and its reloads, the schedule (interval + jitter, max_runs), the
 * leases (claimed by runs, renewed here in one batch, released at stop), sd_notify, and
 * --once. It owns every jobrt; a run belongs to its jobrt and is never freed from here
 * while a callback of its own is on the stack.
 */
#include <sys/prctl.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>
#include <unistd.h>

#include "daemon/balance.h"
#include "config/identity.h"
#include "config/load.h"
#include "daemon/daemon.h"
#include "io/http.h"
#include "core/log.h"
#include "run/metrics.h"
#include "daemon/notify.h"
#include "io/pg.h"
#include "run/run.h"
#include "store/state.h"
#include "daemon/status.h"

#define MIGRATE_RETRY_MS	2000
#define STOP_GRACE_MS		5000
#define REGISTER_TRIES		10	/* a name held by a live process: asked again ... */
#define REGISTER_RETRY_MS	200	/* ... this often before refusing */

static void schedule(struct jobrt *, int64_t delay_ms);
static void start_due(struct daemon *);
static void maybe_exit(struct daemon *);

static struct timeval
tv_ms(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	return tv;
}

struct pg *
daemon_pg(struct daemon *d, const char *conninfo, int64_t timeout_ms)
{
	char *k = xasprintf("%lld\x1f%s", (long long)timeout_ms, conninfo);
	struct pg *pg = strmap_get(&d->dest_pgs, k);

	if (pg == NULL) {
		pg = pg_new(d->base, conninfo, "user database", 4,
		    (long)d->ref->cfg->state.connect_timeout_ms);
		pg_set_timeouts(pg, (long)timeout_ms, (long)(timeout_ms + PG_ANSWER_MARGIN_MS));
		strmap_put(&d->dest_pgs, k, pg);
	}
	free(k);
	return pg;
}

static void
cfgref_drop(struct cfgref *ref)
{
	if (--ref->refs == 0) {
		config_free(ref->cfg);
		free(ref);
	}
}

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

static void
job_timer(evutil_socket_t fd, short ev, void *arg)
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

static struct jobrt *
jobrt_new(struct daemon *d, const struct job_conf *jc)
{
	struct jobrt *jr = xcalloc(1, sizeof *jr);

	jr->d = d;
	jr->name = xstrdup(jc->name);
	jr->ref = d->ref;
	jr->ref->refs++;
	jr->conf = jc;
	jr->timer = evtimer_new(d->base, job_timer, jr);
	if (jc->strategy == STRAT_MODIFIED && !jc->modified.sorted &&
	    jc->src.type == CONN_HTTP &&
	    (jc->src.page_style == PAGE_PAGE || jc->src.page_style == PAGE_OFFSET))
		log_job(LOG_WARNING, jc->name, 0, NULL, "modified.sorted = false with page.style "
		    "'%s': a record that moves onto a page already read while a run pages (others "
		    "deleted before it, or an order that is not stable) is missed until it changes "
		    "again; sort the source by (modified field, key) and set modified.sorted = true",
		    jc->src.page_style == PAGE_PAGE ? "page" : "offset");
	return jr;
}

static void
jobrt_free(struct jobrt *jr)
{
	event_free(jr->timer);
	cfgref_drop(jr->ref);
	free(jr->name);
	free(jr->mismatch);
	free(jr->held_identity);
	free(jr);
}

static void
schedule(struct jobrt *jr, int64_t delay_ms)
{
	struct timeval tv = tv_ms(delay_ms < 0 ? 0 : delay_ms);

	if (jr->d->once || jr->d->stopping || jr->removed || !jr->conf->enabled)
		return;
	evtimer_add(jr->timer, &tv);
}

/* The next run: interval plus a random part of the jitter. */
static int64_t
next_delay(const struct job_conf *jc)
{
	int64_t jitter = jc->jitter_ms >= 0 ? jc->jitter_ms : jc->interval_ms / 10;

	return jc->interval_ms + (jitter > 0 ? (int64_t)(rand64() % (uint64_t)jitter) : 0);
}

/* status: the last heartbeat tells; before the first one, whether the pool is up. */
bool
daemon_state_reachable(const struct daemon *d)
{
	if (d->hb_failed)
		return false;
	return d->hb_answered || state_up(d->state);
}

static void
status_line(struct daemon *d)
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
		run_start(jr);
	}
}

void
daemon_run_ended(struct jobrt *jr, bool ok, bool lost)
{
	struct daemon *d = jr->d;

	d->running--;
	jr->last_failed = !ok;
	if (ok)
		d->runs_ok++;
	else
		d->runs_failed++;
	if (d->once) {
		jr->once_done = true;
		if (!ok)
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
		jobrt_free(jr);
	} else if (jr->run_again) {
		jr->run_again = false;
		schedule(jr, 0);
	} else if (jr->claim_failed) {
		/* Another instance still holds it (e.g. its lease has not run out yet). */
		jr->claim_failed = false;
		schedule(jr, d->ref->cfg->daemon.lease_ms / 3 < jr->conf->interval_ms ?
		    d->ref->cfg->daemon.lease_ms / 3 : jr->conf->interval_ms);
	} else
		schedule(jr, lost ? jr->conf->interval_ms : next_delay(jr->conf));
	status_line(d);
	start_due(d);
	maybe_exit(d);
}

/* Put every job (or the --once ones) on the schedule. */
static void
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
			job_timer(-1, 0, jr);
		} else {
			int64_t j = jr->conf->jitter_ms >= 0 ? jr->conf->jitter_ms : 0;

			schedule(jr, j > 0 ? (int64_t)(rand64() % (uint64_t)(j < 1000 ? j : 1000)) : 0);
		}
	}
	if (d->once)
		maybe_exit(d);
}

static void migrate(struct daemon *);
static void beat(struct daemon *, bool first);

/* Sorted copy of the enabled jobs' names. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The definition each job runs with (target): the one its state holds, or, for a job
 * without one yet, the smallest identity a live instance publishes (every instance picks
 * the same). Fills names (sorted union of the live instances' jobs), targets, and
 * eligible[j * ninst + i]: instance i has job j with that definition.
 */
static size_t
job_targets(json_t *live, json_t *stored, char ***names_out, const char ***targets_out,
    bool **eligible_out)
{
	size_t ninst = json_array_size(live), njobs = 0, i, j;
	struct strmap seen;
	char **names = NULL;
	const char **targets;
	bool *eligible;
	const char *k;
	json_t *v;

	strmap_init(&seen);
	for (i = 0; i < ninst; i++)
		json_object_foreach(json_array_get(json_array_get(live, i), 2), k, v)
			if (json_is_string(v) && strmap_get(&seen, k) == NULL) {
				strmap_put(&seen, k, (void *)k);
				names = xreallocarray(names, njobs + 1, sizeof *names);
				names[njobs++] = (char *)k;
			}
	strmap_free(&seen, NULL);
	if (njobs > 0)
		qsort(names, njobs, sizeof *names, cmp_str);
	targets = xcalloc(njobs + 1, sizeof *targets);
	eligible = xcalloc(njobs * ninst + 1, sizeof *eligible);
	for (j = 0; j < njobs; j++) {
		targets[j] = json_string_value(json_object_get(stored, names[j]));
		if (targets[j] == NULL)
			for (i = 0; i < ninst; i++) {
				const char *id = json_string_value(json_object_get(json_array_get(
				    json_array_get(live, i), 2), names[j]));

				if (id != NULL && (targets[j] == NULL || strcmp(id, targets[j]) < 0))
					targets[j] = id;
			}
		for (i = 0; i < ninst; i++) {
			const char *id = json_string_value(json_object_get(json_array_get(
			    json_array_get(live, i), 2), names[j]));

			eligible[j * ninst + i] = id != NULL && strcmp(id, targets[j]) == 0;
		}
	}
	*names_out = names;
	*targets_out = targets;
	*eligible_out = eligible;
	return njobs;
}

/*
 * A job whose definition here differs from the one it runs with: this instance does not
 * run it. Logged at warning once per change (and when it agrees again).
 */
static bool
job_mismatch(struct jobrt *jr, const char *target, json_t *res, json_t *live)
{
	char *key, *what = NULL, *others = NULL;
	json_t *stored_def;
	struct buf b;

	if (target == NULL || strcmp(target, jr->conf->identity) == 0) {
		if (jr->mismatch != NULL)
			log_job(LOG_NOTICE, jr->name, 0, NULL, "its definition agrees again with "
			    "the one its state holds; this instance may run it");
		free(jr->mismatch);
		jr->mismatch = NULL;
		return false;
	}
	key = xasprintf("%s %s", target, jr->conf->identity);
	if (jr->mismatch != NULL && strcmp(jr->mismatch, key) == 0) {
		free(key);
		return true;
	}
	free(jr->mismatch);
	jr->mismatch = key;
	stored_def = json_object_get(json_object_get(res, "differs"), jr->name);
	if (json_string_value(json_object_get(json_object_get(res, "stored"), jr->name)) != NULL) {
		char *def = json_dumps(stored_def != NULL ? stored_def : json_null(),
		    JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

		what = config_identity_diff(def, jr->conf->definition);
		log_job(LOG_WARNING, jr->name, 0, NULL, "its definition differs from the one its "
		    "state was written with (changed: %s): this instance does not run it; restore "
		    "the definition, or run 'onesyncctl reset %s' to start over with the new one",
		    what, jr->name);
		free(def);
	} else {
		size_t i;
		json_t *e;

		buf_init(&b);
		json_array_foreach(live, i, e) {
			const char *id = json_string_value(json_object_get(json_array_get(e, 2),
			    jr->name));

			if (id != NULL && strcmp(id, target) == 0)
				buf_printf(&b, "%s%s", b.len > 0 ? ", " : "",
				    json_string_value(json_array_get(e, 0)));
		}
		others = buf_steal(&b);
		log_job(LOG_WARNING, jr->name, 0, NULL, "live instance(s) %s have another "
		    "definition of this job (identity %.12s there, %.12s here): it runs only "
		    "where the definition is the same; make the definitions agree", others,
		    target, jr->conf->identity);
	}
	free(what);
	free(others);
	return true;
}

/*
 * Apply the assignment of jobs to the live instances (res: the heartbeat's answer): jobs
 * that became ours are scheduled now; jobs that are no longer ours are released as soon as
 * they are not running. A job goes only to an instance that has it with the definition it
 * runs with, so every instance computes the same assignment over the union of the jobs.
 */
static void
rebalance(struct daemon *d, json_t *res)
{
	json_t *live = json_array(), *ie;
	size_t ninst, njobs, me = SIZE_MAX, nmine = 0, k;
	char **inst, **names;
	const char **targets;
	bool *eligible;
	int *cap;
	size_t *owner;
	struct strlist give = { 0 };
	int64_t *gave;

	/* instances without jobs (an --once run, a daemon with none enabled) take no share */
	json_array_foreach(json_object_get(res, "live"), k, ie)
		if (json_is_string(json_array_get(ie, 0)) &&
		    (json_object_size(json_array_get(ie, 2)) > 0 ||
		    strcmp(json_string_value(json_array_get(ie, 0)), d->instance) == 0))
			json_array_append(live, ie);
	if ((ninst = json_array_size(live)) == 0) {
		json_decref(live);
		return;
	}
	inst = xcalloc(ninst, sizeof *inst);
	cap = xcalloc(ninst, sizeof *cap);
	for (size_t i = 0; i < ninst; i++) {
		json_t *e = json_array_get(live, i);

		inst[i] = (char *)json_string_value(json_array_get(e, 0));
		cap[i] = (int)json_integer_value(json_array_get(e, 1));
		if (inst[i] != NULL && strcmp(inst[i], d->instance) == 0)
			me = i;
	}
	njobs = job_targets(live, json_object_get(res, "stored"), &names, &targets, &eligible);
	owner = xcalloc(njobs + 1, sizeof *owner);
	balance_assign(names, njobs, inst, cap, ninst, eligible, owner);
	gave = xcalloc(d->njobs + 1, sizeof *gave);
	for (size_t i = 0; i < d->njobs; i++) {
		struct jobrt *jr = d->jobs[i];
		const char *target = NULL;
		bool was = jr->mine, bad;
		size_t j;

		if (jr->removed || !jr->conf->enabled) {
			free(jr->mismatch);
			jr->mismatch = NULL;
			continue;
		}
		for (j = 0; j < njobs && strcmp(names[j], jr->name) != 0; j++)
			;
		if (j < njobs)
			target = targets[j];
		bad = job_mismatch(jr, target, res, live);
		jr->mine = !bad && j < njobs && me != SIZE_MAX && owner[j] == me;
		nmine += jr->mine;
		if (jr->mine && (!was || !d->balanced) && jr->run == NULL && !jr->queued) {
			evtimer_del(jr->timer);
			schedule(jr, d->balanced ? 0 : (int64_t)(rand64() % 1000));
		} else if (!jr->mine && was) {
			evtimer_del(jr->timer);
			if (jr->epoch != 0 && jr->run == NULL) {
				gave[give.n] = jr->epoch;
				strlist_add(&give, xstrdup(jr->name));
				jr->epoch = 0;
			}
		}
	}
	if (give.n > 0) {
		log_info("%zu jobs now belong to other instances: releasing their leases", give.n);
		state_release(d->state, give.v, gave, give.n, NULL, NULL);
	}
	if (nmine != d->nmine || !d->balanced)
		log_info("%zu live instances; this one runs %zu of %zu jobs", ninst, nmine, njobs);
	d->nmine = nmine;
	d->balanced = true;
	strlist_free(&give);
	free(gave);
	free(owner);
	free(names);
	free(targets);
	free(eligible);
	free(cap);
	free(inst);
	json_decref(live);
}

static void stop_hard(evutil_socket_t, short, void *);
static void stop_cut(evutil_socket_t, short, void *);

/* Stopping: tell systemd, start no run any more (timers off, the queue emptied). */
static void
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

/* Another process took this instance's name over (it found this one dead): stop. */
static void
step_aside(struct daemon *d)
{
	struct timeval tv = tv_ms(STOP_GRACE_MS);

	log_job(LOG_ERR, NULL, 0, NULL, "another onesyncd process took over the instance name "
	    "%s (this one was silent and its coordination connection closed): stopping; its "
	    "leases already belong to the new process", d->instance);
	d->exit_code = EX_CONFIG;
	stop_scheduling(d);
	stop_cut(-1, 0, d);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_hard, d, &tv);
	maybe_exit(d);
}

static void
beaten(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	d->hb_failed = rc != STATE_OK;	/* status: /healthz, STATUS= */
	d->hb_answered = rc == STATE_OK;
	if (rc != STATE_OK) {
		log_warnx("heartbeat failed: %s", err);
		return;
	}
	if (d->stopping)
		return;
	if (json_is_false(json_object_get(res, "me")))
		step_aside(d);
	else
		rebalance(d, res);
}

/* Heartbeat, publishing our jobs and their identities; the answer drives the balance. */
static void
beat(struct daemon *d, bool first)
{
	const struct config *cfg = d->ref->cfg;
	int64_t lease = cfg->daemon.lease_ms;
	json_t *jobs = json_object();
	char *j;

	for (size_t i = 0; i < d->njobs; i++)
		if (!d->jobs[i]->removed && d->jobs[i]->conf->enabled)
			json_object_set_new(jobs, d->jobs[i]->name,
			    json_string(d->jobs[i]->conf->identity));
	j = json_dumps(jobs, JSON_COMPACT);
	state_heartbeat(d->state, cfg->daemon.max_runs, j, lease * 2 / 3,
	    lease * 10 > 60000 ? lease * 10 : 60000, first, beaten, d);
	free(j);
	json_decref(jobs);
}

/* An instance joined or left (NOTIFY onesync_rebalance): look again now. */
static void
rebalance_requested(void *arg)
{
	struct daemon *d = arg;

	if (d->migrated && d->registered && !d->stopping && !d->once)
		beat(d, false);
}

/* A run-now request (onesyncctl run): start the job now if it is ours or nobody's. */
static void
run_requested(const char *name, void *arg)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->njobs; i++) {
		struct jobrt *jr = d->jobs[i];

		if (strcmp(jr->name, name) != 0 || jr->removed || !jr->conf->enabled)
			continue;
		if (d->once || jr->queued || !jr->mine)
			return;		/* the instance that owns it starts it */
		if (jr->run != NULL) {
			jr->run_again = true;	/* right after the run in flight */
			return;
		}
		log_job(LOG_INFO, jr->name, 0, NULL, "run requested");
		evtimer_del(jr->timer);
		job_timer(-1, 0, jr);
		return;
	}
}

/* Polled requests, for when NOTIFY cannot reach this instance (e.g. behind PgBouncer). */
static void
requests_polled(void *arg, int rc, json_t *res, const char *err)
{
	size_t i;
	json_t *v;

	if (rc != STATE_OK)
		return;
	json_array_foreach(res, i, v)
		if (json_is_string(v))
			run_requested(json_string_value(v), arg);
}

static void
migrate_retry(evutil_socket_t fd, short ev, void *arg)
{
	migrate(arg);
}

static void register_instance(struct daemon *);

static void
register_retry(evutil_socket_t fd, short ev, void *arg)
{
	register_instance(arg);
}

/*
 * The instance name is this process's now, or another live process has it: then this one
 * refuses to run (exit 78). A process found dead is taken over, its leases fenced out.
 */
static void
registered(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	if (d->stopping)
		return;
	if (rc != STATE_OK) {
		struct timeval tv = tv_ms(MIGRATE_RETRY_MS);

		log_warnx("%s", err);
		if (d->once) {
			d->exit_code = 1;
			event_base_loopexit(d->base, NULL);
			return;
		}
		event_base_once(d->base, -1, EV_TIMEOUT, register_retry, d, &tv);
		return;
	}
	if (json_is_true(json_object_get(res, "live")) && ++d->register_tries < REGISTER_TRIES) {
		/* a process killed a moment ago: its connection may take a moment to close */
		struct timeval tv = tv_ms(REGISTER_RETRY_MS);

		event_base_once(d->base, -1, EV_TIMEOUT, register_retry, d, &tv);
		return;
	}
	if (json_is_true(json_object_get(res, "live"))) {
		log_job(LOG_ERR, NULL, 0, NULL, "another onesyncd process (version %s, heartbeat "
		    "%.1f s ago) runs as instance %s on this state store; two processes of one "
		    "name would run the same jobs: give each its own daemon.instance, or stop the "
		    "other one", json_string_value(json_object_get(res, "version")) != NULL ?
		    json_string_value(json_object_get(res, "version")) : "?",
		    json_number_value(json_object_get(res, "age_s")), d->instance);
		d->exit_code = EX_CONFIG;
		d->stopping = true;
		d->migrated = false;	/* nothing to release: leave without a word */
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->registered = true;
	if (json_is_string(json_object_get(res, "took_over")))
		log_job(LOG_NOTICE, NULL, 0, NULL, "took over instance name %s from a process that "
		    "is gone (%lld leases of it released and fenced)", d->instance,
		    (long long)json_integer_value(json_object_get(res, "released")));
	if (d->once)
		schedule_all(d);
	else
		beat(d, true);
}

static void
register_instance(struct daemon *d)
{
	int64_t lease = d->ref->cfg->daemon.lease_ms;

	if (!d->stopping)
		state_register(d->state, d->ref->cfg->daemon.max_runs,
		    lease * 10 > 60000 ? lease * 10 : 60000, d->once, registered, d);
}

static void
migrated(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	if (rc != STATE_OK) {
		log_warnx("%s", err);
		if (strstr(err, "newer than this onesyncd") != NULL || d->once) {
			d->exit_code = d->once ? 1 : EX_CONFIG;
			event_base_loopexit(d->base, NULL);
			return;
		}
		{
			struct timeval tv = tv_ms(MIGRATE_RETRY_MS);

			event_base_once(d->base, -1, EV_TIMEOUT, migrate_retry, d, &tv);
		}
		return;
	}
	log_info("state schema %s ready (version %lld)", state_schema(d->state),
	    (long long)json_integer_value(json_object_get(res, "version")));
	d->migrated = true;
	state_listen(d->state, run_requested, rebalance_requested, d);
	status_line(d);
	register_instance(d);
}

static void
migrate(struct daemon *d)
{
	if (!d->stopping)
		state_migrate(d->state, migrated, d);
}

struct renew_ctx {
	struct daemon	*d;
	uint64_t	 sent;
	struct strlist	 names;
	int64_t		*epochs;	/* asked, by name */
};

/* The margin by which a run is cut before its lease may lapse. */
static int64_t
cut_margin(const struct daemon *d)
{
	return d->ref->cfg->daemon.lease_ms / 6;
}

/*
 * Cut the runs whose lease may lapse within the margin, by the monotonic clock, and arm
 * the timer for the next deadline: the check does not wait for the next renewal tick, so
 * a run never outlives its lease by the tick's period.
 */
static void
lease_cut(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	uint64_t now = now_mono_ms(), next = UINT64_MAX, margin = (uint64_t)cut_margin(d);

	for (size_t i = 0; i < d->njobs; i++) {
		struct jobrt *jr = d->jobs[i];

		if (jr->epoch == 0)
			continue;
		if (now + margin >= jr->lease_deadline) {
			jr->epoch = 0;
			if (jr->run != NULL) {
				log_job(LOG_ERR, jr->name, jr->run->id, MSGID_LEASE_LOST,
				    "lease lost: could not renew it in time; stopping the run");
				run_cut(jr->run, "lease lost (not renewed in time)");
			}
		} else if (jr->lease_deadline - margin < next)
			next = jr->lease_deadline - margin;
	}
	if (d->ev_cut != NULL && next != UINT64_MAX) {
		struct timeval tv = tv_ms((int64_t)(next - now));

		evtimer_add(d->ev_cut, &tv);
	}
}

static void
renewed(void *arg, int rc, json_t *res, const char *err)
{
	struct renew_ctx *c = arg;
	struct daemon *d = c->d;

	if (rc == STATE_OK) {
		for (size_t k = 0; k < c->names.n; k++) {
			struct jobrt *jr = NULL;
			bool held = false;
			size_t i;
			json_t *v;

			for (i = 0; i < d->njobs && jr == NULL; i++)
				if (!d->jobs[i]->removed && strcmp(d->jobs[i]->name, c->names.v[k]) == 0)
					jr = d->jobs[i];
			/* an answer about an older claim says nothing of the current one */
			if (jr == NULL || jr->epoch == 0 || jr->epoch != c->epochs[k])
				continue;
			json_array_foreach(res, i, v)
				if (strcmp(json_string_value(json_array_get(v, 0)), jr->name) == 0 &&
				    json_integer_value(json_array_get(v, 1)) == jr->epoch)
					held = true;
			if (held)
				jr->lease_deadline = c->sent + (uint64_t)d->ref->cfg->daemon.lease_ms;
			else {
				log_job(LOG_ERR, jr->name, jr->run != NULL ? jr->run->id : 0,
				    MSGID_LEASE_LOST, "lease lost: another instance took the job");
				jr->epoch = 0;
				if (jr->run != NULL)
					run_cut(jr->run, "lease lost");
			}
		}
		lease_cut(-1, 0, d);
	} else
		log_warnx("lease renewal failed: %s", err);
	strlist_free(&c->names);
	free(c->epochs);
	free(c);
}

/* Renew every held lease in one statement; cut runs whose lease may have lapsed. */
static void
lease_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct renew_ctx *c;
	uint64_t now = now_mono_ms();
	size_t n = 0;

	if (!d->migrated)
		return;
	lease_cut(-1, 0, d);
	c = xcalloc(1, sizeof *c);
	c->d = d;
	c->sent = now;
	c->epochs = xcalloc(d->njobs + 1, sizeof *c->epochs);
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->epoch != 0) {
			strlist_add(&c->names, xstrdup(d->jobs[i]->name));
			c->epochs[n++] = d->jobs[i]->epoch;
		}
	if (n > 0)
		state_renew(d->state, c->names.v, c->epochs, n, d->ref->cfg->daemon.lease_ms,
		    renewed, c);
	else {
		strlist_free(&c->names);
		free(c->epochs);
		free(c);
	}
	if (!d->once && d->registered)
		beat(d, !d->balanced);
	state_listen(d->state, run_requested, rebalance_requested, d);	/* again after a reconnect */
	state_requests(d->state, requests_polled, d);
	status_line(d);
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
released(void *arg, int rc, json_t *res, const char *err)
{
	struct daemon *d = arg;

	if (rc != STATE_OK)
		log_warnx("could not release the leases: %s", err);
	/* Tell the others at once, so that they take the jobs without waiting for a tick
	 * (and free the instance name, which --once registered too). */
	state_leave(d->state, left, d);
}

/* When stopping (or --once is done) and no run is left: release leases and leave. */
static void
maybe_exit(struct daemon *d)
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
			    "not run (paused, disabled, or held by another instance)",
			    d->once_not_run);
	}
	if (!d->stopping || d->running > 0)
		return;
	epochs = xcalloc(d->njobs + 1, sizeof *epochs);
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->epoch != 0) {
			strlist_add(&names, xstrdup(d->jobs[i]->name));
			epochs[n++] = d->jobs[i]->epoch;
			d->jobs[i]->epoch = 0;
		}
	if (d->migrated)
		state_release(d->state, names.v, epochs, names.n, released, d);
	else
		event_base_loopexit(d->base, NULL);
	strlist_free(&names);
	free(epochs);
}

static void
stop_cut(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->run != NULL)
			run_cut(d->jobs[i]->run, "stopped: the daemon is shutting down");
}

static void
stop_hard(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	log_warnx("runs did not end in time; exiting without releasing their leases");
	event_base_loopbreak(d->base);
}

static void
on_term(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = tv_ms(d->ref->cfg->daemon.stop_timeout_ms);
	struct timeval hard = tv_ms(d->ref->cfg->daemon.stop_timeout_ms + STOP_GRACE_MS);

	if (d->stopping)
		return;
	log_info("received %s: stopping (%d runs in flight)", sig == SIGINT ? "SIGINT" :
	    "SIGTERM", d->running);
	stop_scheduling(d);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_cut, d, &tv);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_hard, d, &hard);
	maybe_exit(d);
}

static struct jobrt *
find_job(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->njobs; i++)
		if (strcmp(d->jobs[i]->name, name) == 0 && !d->jobs[i]->removed)
			return d->jobs[i];
	return NULL;
}

/* Take a job out of the queue of due jobs, if it is there. */
static void
queue_unlink(struct daemon *d, struct jobrt *jr)
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

/*
 * A job left this instance's work (removed or disabled): no further run; its lease goes
 * back now when idle, else with its run's last checkpoint (run_checkpoint), so the run
 * keeps writing under its lease until it ends.
 */
static void
job_retire(struct daemon *d, struct jobrt *jr, const char *what)
{
	evtimer_del(jr->timer);
	queue_unlink(d, jr);
	jr->run_again = false;
	log_job(LOG_INFO, jr->name, 0, NULL, "job %s%s", what, jr->run != NULL ?
	    "; it stops after its current run, which hands its lease back" : "");
	if (jr->epoch != 0 && jr->run == NULL) {
		char *n = jr->name;

		state_release(d->state, &n, &jr->epoch, 1, NULL, NULL);
		jr->epoch = 0;
	}
}

/* Settings of the daemon that a reload cannot change, or changes by re-arming. */
static void
apply_daemon_keys(struct daemon *d, const struct config *old, const struct config *cfg)
{
	if (strcmp(old->state.conninfo, cfg->state.conninfo) != 0 ||
	    strcmp(old->state.schema, cfg->state.schema) != 0)
		log_warnx("state.* changed: it takes effect only after a restart");
	if (strcmp(old->daemon.instance, cfg->daemon.instance) != 0)
		log_warnx("daemon.instance changed: it takes effect only after a restart; this "
		    "process stays instance %s", d->instance);
	if (strcmp(old->daemon.status_listen, cfg->daemon.status_listen) != 0)	/* status */
		log_warnx("daemon.status_listen changed: it takes effect only after a restart");
	if (old->daemon.lease_ms != cfg->daemon.lease_ms) {
		struct timeval tv = tv_ms(cfg->daemon.lease_ms / 3);

		/* Re-arm the tick at the new third, and renew now: a longer lease would
		 * otherwise lapse before the next (later) renewal. */
		log_info("daemon.lease changed from %lld to %lld ms: leases are renewed every "
		    "%lld ms from now", (long long)old->daemon.lease_ms,
		    (long long)cfg->daemon.lease_ms, (long long)cfg->daemon.lease_ms / 3);
		state_set_lease(d->state, cfg->daemon.lease_ms);
		evtimer_del(d->ev_lease);
		evtimer_add(d->ev_lease, &tv);
		event_active(d->ev_lease, EV_TIMEOUT, 0);
	}
}

/* Apply a new valid configuration: add, change, enable, disable and remove jobs. */
static void
apply_config(struct daemon *d, struct config *cfg)
{
	struct cfgref *old = d->ref, *ref = xcalloc(1, sizeof *ref);
	size_t added = 0, changed = 0, removed = 0;
	bool enabled_some = false;

	ref->cfg = cfg;
	ref->refs = 1;
	d->ref = ref;
	apply_daemon_keys(d, old->cfg, cfg);
	for (size_t i = 0; i < d->njobs; i++) {
		struct jobrt *jr = d->jobs[i];
		const struct job_conf *jc = config_job(cfg, jr->name);
		bool was_enabled = jr->conf->enabled;

		if (jr->removed)
			continue;
		if (jc == NULL) {
			removed++;
			jr->removed = true;
			job_retire(d, jr, "removed from the configuration");
			continue;
		}
		if (strcmp(jc->fingerprint, jr->conf->fingerprint) != 0) {
			changed++;
			log_job(LOG_INFO, jr->name, 0, NULL, "job changed; the change applies from "
			    "its next run");
			if (jc->interval_ms != jr->conf->interval_ms && jr->run == NULL &&
			    !jr->queued && jc->enabled) {
				evtimer_del(jr->timer);
				jr->conf = jc;
				schedule(jr, next_delay(jc));
			}
		}
		cfgref_drop(jr->ref);
		jr->ref = ref;
		ref->refs++;
		jr->conf = jc;
		if (was_enabled && !jc->enabled) {
			job_retire(d, jr, "disabled");
			jr->mine = false;	/* the balance assigns it again once enabled */
		} else if (!was_enabled && jc->enabled) {
			log_job(LOG_INFO, jr->name, 0, NULL, "job enabled");
			enabled_some = true;
		}
	}
	/* Free removed idle jobs now. */
	for (size_t i = 0; i < d->njobs; ) {
		struct jobrt *jr = d->jobs[i];

		if (jr->removed && jr->run == NULL) {
			d->jobs[i] = d->jobs[--d->njobs];
			queue_unlink(d, jr);
			jobrt_free(jr);
		} else
			i++;
	}
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct jobrt *jr;

		if (find_job(d, cfg->jobs[i].name) != NULL)
			continue;
		added++;
		jr = jobrt_new(d, &cfg->jobs[i]);
		d->jobs = xreallocarray(d->jobs, d->njobs + 1, sizeof *d->jobs);
		d->jobs[d->njobs++] = jr;
		log_job(LOG_INFO, jr->name, 0, NULL, "job added");
		if (d->migrated && jr->conf->enabled)
			schedule(jr, 0);
	}
	/* An enabled job runs where the balance puts it: ask now rather than at the next tick. */
	if (enabled_some && d->migrated && !d->once && !d->stopping)
		beat(d, false);
	cfgref_drop(old);
	log_job(LOG_INFO, NULL, 0, MSGID_CONFIG_RELOADED, "configuration reloaded from %s: "
	    "%zu jobs added, %zu changed, %zu removed", d->cfg_path, added, changed, removed);
}

static void
on_hup(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	struct strlist errs = { 0 };
	struct config *cfg;

	notify_reloading();
	log_info("received SIGHUP: reloading %s", d->cfg_path);
	if (config_load(d->cfg_path, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_job(LOG_ERR, NULL, 0, MSGID_CONFIG_REJECTED, "%s", errs.v[i]);
		log_job(LOG_ERR, NULL, 0, MSGID_CONFIG_REJECTED, "configuration rejected (%zu "
		    "errors); the running configuration stays in force", errs.n);
		d->reload_errors = errs.n > 0 ? errs.n : 1;
		strlist_free(&errs);
	} else if (!d->stopping) {
		d->reload_errors = 0;
		apply_config(d, cfg);
	} else
		config_free(cfg);
	status_line(d);
	notify_ready();
}

static void
on_started(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	notify_ready();
	status_line(d);
	migrate(d);
}

static void
on_watchdog(evutil_socket_t fd, short ev, void *arg)
{
	notify_watchdog();
}

/* The identity and definition a claim of the job is made for (state.c asks). */
static const char *
job_identity(const char *name, const char **definition, void *arg)
{
	struct jobrt *jr = find_job(arg, name);

	if (jr == NULL)
		return NULL;
	*definition = jr->conf->definition;
	return jr->conf->identity;
}

static char *
default_instance(void)
{
	char host[256];

	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	return xasprintf("%s:%ld", host, (long)getpid());
}

int
daemon_main(const char *cfg_path, bool once, char **once_jobs, int verbose)
{
	struct daemon d;
	struct strlist errs = { 0 };
	struct config *cfg;
	uint64_t wd;
	struct timeval tv;

	memset(&d, 0, sizeof d);
	/*
	 * Before any credential is read: no core dump, and no other process of the same
	 * user may ptrace this one or read its memory (/proc/PID/mem, environ): the
	 * process holds every secret of the configuration.
	 */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (config_load(cfg_path, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		strlist_free(&errs);
		return EX_CONFIG;
	}
	if (once_jobs != NULL)
		for (char **p = once_jobs; *p != NULL; p++)
			if (config_job(cfg, *p) == NULL) {
				fprintf(stderr, "onesyncd: --once: no job named '%s' in %s\n", *p,
				    cfg_path);
				config_free(cfg);
				return EX_USAGE;
			}
	signal(SIGPIPE, SIG_IGN);
	d.cfg_path = xstrdup(cfg_path);
	d.once = once;
	d.once_jobs = once_jobs;
	d.ref = xcalloc(1, sizeof *d.ref);
	d.ref->cfg = cfg;
	d.ref->refs = 1;
	strmap_init(&d.dest_pgs);
	if ((d.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if (http_init(d.base) != 0)
		fatalx("cannot initialise libcurl");
	d.instance = cfg->daemon.instance[0] != '\0' ? xstrdup(cfg->daemon.instance) :
	    default_instance();
	d.state = state_new(d.base, cfg->state.conninfo, cfg->state.schema,
	    cfg->state.connections, cfg->state.connect_timeout_ms, d.instance);
	state_set_lease(d.state, cfg->daemon.lease_ms);
	for (size_t i = 0; i < cfg->njobs; i++) {
		d.jobs = xreallocarray(d.jobs, d.njobs + 1, sizeof *d.jobs);
		d.jobs[d.njobs++] = jobrt_new(&d, &cfg->jobs[i]);
	}
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	d.ev_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_term, &d);
	evsignal_add(d.ev_hup, NULL);
	evsignal_add(d.ev_term, NULL);
	evsignal_add(d.ev_int, NULL);
	state_set_identity(d.state, job_identity, &d);
	d.ev_cut = evtimer_new(d.base, lease_cut, &d);
	d.ev_lease = event_new(d.base, -1, EV_PERSIST, lease_tick, &d);
	tv = tv_ms(cfg->daemon.lease_ms / 3);
	evtimer_add(d.ev_lease, &tv);
	if ((wd = notify_watchdog_usec()) > 0) {
		struct timeval wtv = { (time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000) };

		d.ev_watchdog = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
		evtimer_add(d.ev_watchdog, &wtv);
	}
	tv = tv_ms(0);
	event_base_once(d.base, -1, EV_TIMEOUT, on_started, &d, &tv);
	log_info("onesyncd %s starting as instance %s with %zu jobs%s", PACKAGE_VERSION,
	    d.instance, d.njobs, once ? " (--once)" : "");
	{
		char *warn = config_exposed(cfg_path);

		if (warn != NULL)
			log_warnx("%s", warn);
		free(warn);
	}
	(void)verbose;
	if (!once)
		d.status = status_start(&d);	/* status endpoint; logs and carries on if it cannot */

	event_base_dispatch(d.base);

	if (d.once && !d.stopping)
		d.exit_code = 1;
	log_info("onesyncd stopped");
	status_free(d.status);	/* status: before the event base */
	http_shutdown();
	state_free(d.state);
	{
		size_t it = 0;
		const char *k;
		void *v;

		while (strmap_next(&d.dest_pgs, &it, &k, &v))
			pg_free(v);
		strmap_free(&d.dest_pgs, NULL);
	}
	event_free(d.ev_hup);
	event_free(d.ev_term);
	event_free(d.ev_int);
	event_free(d.ev_lease);
	event_free(d.ev_cut);
	if (d.ev_watchdog != NULL)
		event_free(d.ev_watchdog);
	for (size_t i = 0; i < d.njobs; i++)
		if (d.jobs[i]->run == NULL)
			jobrt_free(d.jobs[i]);
	free(d.jobs);
	cfgref_drop(d.ref);
	event_base_free(d.base);
	metrics_free();	/* status */
	free(d.instance);
	free(d.cfg_path);
	return d.exit_code;
}
