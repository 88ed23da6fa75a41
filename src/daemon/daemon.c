/*
 * daemon.c - the process around the jobs: one libevent loop, signals through evsignal,
 * the configuration and its reloads, sd_notify, and --once. It owns every jobrt; a run
 * belongs to its jobrt and is never freed from here while a callback of its own is on the
 * stack. When jobs run is schedule.c's; the other instances and the leases are coord.c's;
 * the way out is stop.c's.
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

#include "config/cred.h"
#include "config/load.h"
#include "core/log.h"
#include "daemon/coord.h"
#include "daemon/daemon.h"
#include "daemon/budgets.h"
#include "daemon/creds.h"
#include "daemon/daemon_int.h"
#include "daemon/notify.h"
#include "daemon/schedule.h"
#include "daemon/status.h"
#include "daemon/stop.h"
#include "io/http.h"
#include "io/pg.h"
#include "run/metrics.h"
#include "store/state.h"

static void
on_term(evutil_socket_t sig, short ev, void *arg)
{
	struct daemon *d = arg;
	struct timeval tv = daemon_tv_ms(d->ref->cfg->daemon.stop_timeout_ms);
	struct timeval hard = daemon_tv_ms(d->ref->cfg->daemon.stop_timeout_ms + STOP_GRACE_MS);

	if (d->stopping)
		return;
	log_info("received %s: stopping (%d runs in flight)", sig == SIGINT ? "SIGINT" :
	    "SIGTERM", d->running);
	stop_scheduling(d);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_cut, d, &tv);
	event_base_once(d->base, -1, EV_TIMEOUT, stop_hard, d, &hard);
	stop_maybe_exit(d);
}

static struct jobrt *
find_job(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->njobs; i++)
		if (strcmp(d->jobs[i]->name, name) == 0 && !d->jobs[i]->removed)
			return d->jobs[i];
	return NULL;
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
	schedule_unqueue(d, jr);
	jr->run_again = false;
	log_job(LOG_INFO, jr->name, 0, NULL, "job %s%s", what, jr->run != NULL ?
	    "; it stops after its current run, which hands its lease back" : "");
	if (jr->epoch != 0 && jr->run == NULL) {
		char *n = jr->name;

		state_release(d->state, &n, &jr->epoch, 1, NULL, NULL);
		jr->epoch = 0;
	}
}

/* What a loaded configuration warns about (a token_url in clear over the network). */
static void
log_config_warnings(const struct config *cfg)
{
	struct strlist	warns = { 0 };

	config_creds_warnings(cfg, &warns);
	for (size_t i = 0; i < warns.n; i++)
		log_warnx("%s", warns.v[i]);
	strlist_free(&warns);
}

/* Settings of the daemon that a reload cannot change, or changes by re-arming. */
static void
apply_daemon_keys(struct daemon *d, const struct config *old, const struct config *cfg)
{
	/* state.connect_timeout also holds for the pools of sources and destinations
	 * (io/pg.c's pg_pools), made once at start like the state store's */
	if (strcmp(old->state.conninfo, cfg->state.conninfo) != 0 ||
	    strcmp(old->state.schema, cfg->state.schema) != 0 ||
	    old->state.connections != cfg->state.connections ||
	    old->state.connect_timeout_ms != cfg->state.connect_timeout_ms)
		log_warnx("state.* changed: it takes effect only after a restart");
	if (strcmp(old->daemon.instance, cfg->daemon.instance) != 0)
		log_warnx("daemon.instance changed: it takes effect only after a restart; this "
		    "process stays instance %s", d->instance);
	if (strcmp(old->daemon.status_listen, cfg->daemon.status_listen) != 0)	/* status */
		log_warnx("daemon.status_listen changed: it takes effect only after a restart");
	if (old->daemon.lease_ms != cfg->daemon.lease_ms) {
		struct timeval tv = daemon_tv_ms(cfg->daemon.lease_ms / 3);

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
	d->budgets = budgets_reload(d->budgets, d->base, d->state, cfg);
	d->creds = creds_reload(d->creds, d->base, d->state, d->instance, cfg);
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
				schedule_in(jr, schedule_next_delay(jc));
			}
		}
		daemon_cfgref_drop(jr->ref);
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
			schedule_unqueue(d, jr);
			schedule_jobrt_free(jr);
		} else
			i++;
	}
	for (size_t i = 0; i < cfg->njobs; i++) {
		struct jobrt *jr;

		if (find_job(d, cfg->jobs[i].name) != NULL)
			continue;
		added++;
		jr = schedule_jobrt_new(d, &cfg->jobs[i]);
		d->jobs = xreallocarray(d->jobs, d->njobs + 1, sizeof *d->jobs);
		d->jobs[d->njobs++] = jr;
		log_job(LOG_INFO, jr->name, 0, NULL, "job added");
		if (d->migrated && jr->conf->enabled)
			schedule_in(jr, 0);
	}
	/* An enabled job runs where the balance puts it: ask now rather than at the next tick. */
	if (enabled_some && d->migrated && !d->once && !d->stopping)
		coord_beat(d, false);
	daemon_cfgref_drop(old);
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
		log_config_warnings(cfg);
		apply_config(d, cfg);
	} else
		config_free(cfg);
	schedule_status_line(d);
	notify_ready();
}

static void
on_started(evutil_socket_t fd, short ev, void *arg)
{
	struct daemon *d = arg;

	notify_ready();
	schedule_status_line(d);
	coord_migrate(d);
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
	log_config_warnings(cfg);
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
	if ((d.base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	d.conn.base = d.base;
	d.conn.pools = pg_pools_new(d.base, (long)cfg->state.connect_timeout_ms);
	if (http_init(d.base) != 0)
		fatalx("cannot initialise libcurl");
	d.instance = cfg->daemon.instance[0] != '\0' ? xstrdup(cfg->daemon.instance) :
	    default_instance();
	d.state = state_new(d.base, cfg->state.conninfo, cfg->state.schema,
	    cfg->state.connections, cfg->state.connect_timeout_ms, d.instance);
	state_set_lease(d.state, cfg->daemon.lease_ms);
	d.budgets = budgets_new(d.base, d.state, cfg);
	d.creds = creds_new(d.base, d.state, d.instance, cfg);
	for (size_t i = 0; i < cfg->njobs; i++) {
		d.jobs = xreallocarray(d.jobs, d.njobs + 1, sizeof *d.jobs);
		d.jobs[d.njobs++] = schedule_jobrt_new(&d, &cfg->jobs[i]);
	}
	d.ev_hup = evsignal_new(d.base, SIGHUP, on_hup, &d);
	d.ev_term = evsignal_new(d.base, SIGTERM, on_term, &d);
	d.ev_int = evsignal_new(d.base, SIGINT, on_term, &d);
	evsignal_add(d.ev_hup, NULL);
	evsignal_add(d.ev_term, NULL);
	evsignal_add(d.ev_int, NULL);
	state_set_identity(d.state, job_identity, &d);
	d.ev_cut = evtimer_new(d.base, coord_lease_cut, &d);
	d.ev_lease = event_new(d.base, -1, EV_PERSIST, coord_lease_tick, &d);
	tv = daemon_tv_ms(cfg->daemon.lease_ms / 3);
	evtimer_add(d.ev_lease, &tv);
	if ((wd = notify_watchdog_usec()) > 0) {
		struct timeval wtv = { (time_t)(wd / 2 / 1000000), (suseconds_t)(wd / 2 % 1000000) };

		d.ev_watchdog = event_new(d.base, -1, EV_PERSIST, on_watchdog, &d);
		evtimer_add(d.ev_watchdog, &wtv);
	}
	tv = daemon_tv_ms(0);
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
	budgets_close(d.budgets);	/* no permit is answered while requests are freed */
	creds_close(d.creds);
	status_free(d.status);	/* status: before the event base */
	http_shutdown();
	state_free(d.state);
	budgets_free(d.budgets);	/* after the store: its calls may answer as it goes */
	creds_free(d.creds);
	pg_pools_free(d.conn.pools);
	event_free(d.ev_hup);
	event_free(d.ev_term);
	event_free(d.ev_int);
	event_free(d.ev_lease);
	event_free(d.ev_cut);
	if (d.ev_watchdog != NULL)
		event_free(d.ev_watchdog);
	for (size_t i = 0; i < d.njobs; i++)
		if (d.jobs[i]->run == NULL)
			schedule_jobrt_free(d.jobs[i]);
	free(d.jobs);
	daemon_cfgref_drop(d.ref);
	event_base_free(d.base);
	metrics_free();	/* status */
	free(d.instance);
	free(d.cfg_path);
	return d.exit_code;
}
