/*
 * coord.c - this instance among the others, through the state store (doc/design.md §7): the
 * schema migration, the instance name (registered, taken over from a dead process, or
 * refused), the heartbeat that publishes our jobs and brings back the live instances, the
 * balance that follows from it, run-now requests, and the leases (renewed in one batch,
 * runs cut before theirs may lapse). It never starts a run itself: it puts jobs on the
 * schedule (schedule.c).
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sysexits.h>

#include "config/identity.h"
#include "core/log.h"
#include "daemon/balance.h"
#include "daemon/coord.h"
#include "daemon/daemon_int.h"
#include "daemon/schedule.h"
#include "daemon/stop.h"
#include "run/run.h"
#include "store/state.h"

#define MIGRATE_RETRY_MS	2000
#define REGISTER_TRIES		10	/* a name held by a live process: asked again ... */
#define REGISTER_RETRY_MS	200	/* ... this often before refusing */

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
	stored_def = json_object_get(json_object_get(res, "differs"), jr->name);
	if (stored_def == NULL &&
	    json_string_value(json_object_get(json_object_get(res, "stored"), jr->name)) != NULL) {
		/* The answer is to a heartbeat that published the definition of before a
		 * reload: not run, and judged (and logged) by the next heartbeat. */
		free(key);
		return true;
	}
	free(jr->mismatch);
	jr->mismatch = key;
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
			schedule_in(jr, d->balanced ? 0 : (int64_t)(rand64() % 1000));
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

/* Another process took this instance's name over (it found this one dead): stop. */
static void
step_aside(struct daemon *d)
{
	struct timeval tv = daemon_tv_ms(STOP_GRACE_MS);

	log_job(LOG_ERR, NULL, 0, NULL, "another onesyncd process took over the instance name "
	    "%s (this one was silent and its coordination connection closed): stopping; its "
	    "leases already belong to the new process", d->instance);
	d->exit_code = EX_CONFIG;
	stop_scheduling(d);
	stop_cut(-1, 0, d);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_hard, d, &tv);
	stop_maybe_exit(d);
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
void
coord_beat(struct daemon *d, bool first)
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
		coord_beat(d, false);
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
		schedule_timer(-1, 0, jr);
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
	coord_migrate(arg);
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
		struct timeval tv = daemon_tv_ms(MIGRATE_RETRY_MS);

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
		struct timeval tv = daemon_tv_ms(REGISTER_RETRY_MS);

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
		coord_beat(d, true);
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
migrate_answered(void *arg, int rc, json_t *res, const char *err)
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
			struct timeval tv = daemon_tv_ms(MIGRATE_RETRY_MS);

			event_base_once(d->base, -1, EV_TIMEOUT, migrate_retry, d, &tv);
		}
		return;
	}
	log_info("state schema %s ready (version %lld)", state_schema(d->state),
	    (long long)json_integer_value(json_object_get(res, "version")));
	d->migrated = true;
	state_listen(d->state, run_requested, rebalance_requested, d);
	schedule_status_line(d);
	register_instance(d);
}

void
coord_migrate(struct daemon *d)
{
	if (!d->stopping)
		state_migrate(d->state, migrate_answered, d);
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
void
coord_lease_cut(evutil_socket_t fd, short ev, void *arg)
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
		struct timeval tv = daemon_tv_ms((int64_t)(next - now));

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
		coord_lease_cut(-1, 0, d);
	} else
		log_warnx("lease renewal failed: %s", err);
	strlist_free(&c->names);
	free(c->epochs);
	free(c);
}

/* Renew every held lease in one statement; cut runs whose lease may have lapsed. */
void
coord_lease_tick(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;
	struct renew_ctx *c;
	uint64_t now = now_mono_ms();
	size_t n = 0;

	if (!d->migrated)
		return;
	coord_lease_cut(-1, 0, d);
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
		coord_beat(d, !d->balanced);
	state_listen(d->state, run_requested, rebalance_requested, d);	/* again after a reconnect */
	state_requests(d->state, requests_polled, d);
	schedule_status_line(d);
}
