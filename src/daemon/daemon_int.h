/*
 * daemon_int.h - what the daemon's own files share (daemon.c: the loop, signals and
 * reloads; schedule.c: timers, the due queue and the run slots; coord.c: the instance,
 * heartbeat, balance and leases; stop.c: the way out; status.c: what /jobs and /metrics
 * show of the jobs). Nothing outside src/daemon includes it, daemon.h neither: a run gets
 * a struct run_env (run/run.h), a connector a struct conn_env (conn/conn.h).
 */
#ifndef ONESYNC_DAEMON_INT_H
#define ONESYNC_DAEMON_INT_H

#include <sys/time.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>
#include "config/model.h"
#include "config/load.h"
#include "conn/conn.h"
#include "core/strmap.h"
#include "core/util.h"
#include "store/state.h"

struct run;
struct state;
struct status;

/* A configuration shared by the jobs and the runs that still use it. */
struct cfgref {
	struct config	*cfg;
	int		 refs;
};

/* A job as the daemon runs it; its configuration may be replaced on reload. */
struct jobrt {
	struct daemon		*d;
	char			*name;
	struct cfgref		*ref;
	const struct job_conf	*conf;	/* inside ref->cfg */
	int64_t			 epoch;	/* lease epoch, 0 = not held */
	uint64_t		 lease_deadline;	/* monotonic ms after which it may have lapsed */
	struct event		*timer;
	struct run		*run;	/* in flight, or NULL */
	bool			 removed;	/* gone from the config: free after its run */
	bool			 queued;	/* waiting for a run slot */
	bool			 once_done;
	bool			 last_failed;	/* its last run failed */
	bool			 mine;		/* assigned to this instance by the balance */
	bool			 claim_failed;	/* its last run found the lease held elsewhere */
	bool			 run_again;	/* a run-now request came during a run */
	bool			 not_run;	/* its last run found it paused or held elsewhere */
	struct jobrt		*qnext;
	char			*mismatch;	/* its definition differs from the one that runs
						 * it (what, for logging once per change), or NULL */
	char			*held_identity;	/* identity its lease was claimed for */
	int64_t			 throttled_until;	/* its last run was throttled: wall ms
						 * it runs again at, else 0 */
};

struct daemon {
	struct event_base	*base;
	char			*cfg_path;
	struct cfgref		*ref;	/* current configuration */
	char			*instance;
	struct state		*state;
	struct budgets		*budgets;	/* NULL: no request budget configured */
	struct creds		*creds;		/* NULL: no credential configured */
	struct jobrt		**jobs;
	size_t			 njobs;
	int			 running;
	struct jobrt		*qhead, *qtail;	/* due jobs waiting for a slot */
	bool			 once;
	char			**once_jobs;	/* --once JOB... (NULL = all) */
	int			 once_failed;
	int			 once_not_run;	/* --once: jobs paused, held elsewhere or disabled */
	bool			 stopping;
	bool			 creds_flushed;	/* stopping: creds_stop was asked */
	size_t			 reload_errors;	/* the last reload was rejected with so many */
	bool			 migrated;
	bool			 balanced;	/* the first assignment is known */
	int			 register_tries;	/* the instance name was found held */
	bool			 registered;	/* the instance name is this process's */
	size_t			 nmine;		/* jobs assigned to this instance */
	int			 exit_code;
	struct conn_env		 conn;	/* the connectors' loop and PostgreSQL pools */
	struct event		*ev_cut;	/* cuts runs before their lease may lapse */
	struct event		*ev_hup, *ev_term, *ev_int, *ev_lease, *ev_watchdog,
				*ev_stop, *ev_start, *ev_status;
	uint64_t		 runs_ok, runs_failed;
	struct status		*status;	/* status endpoint (status.c), NULL when off */
	bool			 hb_answered, hb_failed;	/* status: the last heartbeat's outcome */
};

static inline struct timeval
daemon_tv_ms(int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };

	return tv;
}

/* A job or a run lets go of its configuration: the last one frees it. */
static inline void
daemon_cfgref_drop(struct cfgref *ref)
{
	if (--ref->refs == 0) {
		config_free(ref->cfg);
		free(ref);
	}
}

/* status: the last heartbeat tells; before the first one, whether the pool is up. */
static inline bool
daemon_state_reachable(const struct daemon *d)
{
	if (d->hb_failed)
		return false;
	return d->hb_answered || state_up(d->state);
}

#endif
