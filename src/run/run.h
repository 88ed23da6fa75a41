/* run.h - one execution of a job: lease, run start, strategy, checkpoints, result. */
#ifndef ONESYNC_RUN_H
#define ONESYNC_RUN_H

#include <jansson.h>
#include "record/canon.h"
#include "config/model.h"
#include "conn/conn.h"
#include "conn/dest.h"
#include "conn/source.h"
#include "core/strmap.h"
#include "record/ts.h"
#include "store/state.h"
#include "core/util.h"

/* A record remembered at or below the watermark (tie set, lookback window). */
struct seen {
	char	hash[CANON_HASH_LEN];
	int64_t	ts_ns;
};

struct run;
struct state;
struct event_base;
typedef void (*run_step_cb)(struct run *, int rc);

/*
 * The job's lease as the daemon keeps it: the daemon's renewals move the deadline and may
 * drop it; the run reads both, and sets them when it claims, loses or hands back the lease.
 */
struct run_lease {
	int64_t		*epoch;		/* 0 = not held */
	uint64_t	*deadline;	/* monotonic ms after which it may have lapsed */
	int64_t		 ms;		/* daemon.lease: how long a claim holds it */
};

/* How a run ended, told to the daemon once its last state write is done. */
struct run_outcome {
	bool	ok;
	bool	lease_lost;
	bool	not_run;	/* paused, or the lease is held elsewhere: no run */
	bool	claim_failed;	/* another instance holds the lease */
	int64_t	throttled_until;	/* a budget refused a request: the run ended at its last
				 * checkpoint and runs again at this time (wall ms); 0 */
};

/*
 * What a run needs of the process around it, lent by the daemon for the run's life: the
 * run never sees the daemon. `conn` is what the connectors take (dest_new, source_fetch,
 * source_file_open, source_mark): the event base and the PostgreSQL pools (conn/conn.h).
 */
struct run_env {
	struct event_base	*base;
	struct state		*state;
	const struct conn_env	*conn;		/* the connectors' context (see above) */
	struct run_lease	 lease;
	bool			 once;		/* --once: "no run" is a notice, not a debug line */
	/* Whether the job stays this instance's after the run (false: rebalanced away,
	 * removed or disabled by a reload, or the daemon stops): when not, the run's last
	 * write hands the lease back in its transaction. */
	bool			(*keeps_lease)(void *arg);
	/* The run is over (after its last state write) and freed. */
	void			(*ended)(void *arg, const struct run_outcome *);
	/* When the run fails with msg: the time a budget that msg names refuses requests
	 * until (daemon/budgets.c), 0 when it is no such refusal. NULL: no budgets. */
	int64_t			(*throttled)(const char *msg, void *arg);
	/* Around the cancel of a run cut by its run_timeout (NULL: no budgets): begin true
	 * starts noting the requests a budget holds for a known time; begin false stops and
	 * answers the run's message for the latest of those times, a budget's refusal that
	 * `throttled` knows (the caller frees it), or NULL. */
	char			*(*budget_waits)(bool begin, void *arg);
	void			*arg;
	/* The configuration the job points into, held for the run: dropped once at its end. */
	void			*cfg;
	void			(*cfg_drop)(void *cfg);
};

/*
 * A strategy as the engine sees it: one table per strategy (strategy_*.c), chosen by
 * strategy_lookup() (strategy.c). The engine calls it only through these pointers; the
 * strategy calls the engine by name (run_*).
 */
struct strategy_ops {
	const char	*name;
	bool		 shows_watermark;	/* its "run failed" line tells where it stays */
	/* The run started in the state store (started: its answer). */
	void		(*begin)(struct run *, json_t *started);
	/* Stop what the strategy has in flight itself (the run fails); NULL: nothing. */
	void		(*cancel)(struct run *);
	/* Free its own state (at the run's end, begun or not). */
	void		(*free)(struct run *);
	/* Log the "run finished" line (ms: the run's duration). */
	void		(*log_finished)(struct run *, unsigned long long ms);
};

/*
 * One run. The engine's fields are shared by every strategy; each strategy keeps its own
 * state behind its pointer (fl, cs, md). The paging fields under "paging" stay here: the
 * engine's paging helpers (run_page.c: run_fetch_page, run_next_unseen, run_page_stale,
 * run_page_more) keep them for flag, capture and modified alike; what only `modified` pages
 * with (ties, seek position, pages in flight) is in its struct modified_state.
 */
struct run {
	struct run_env		 env;
	const struct strategy_ops *ops;
	const struct job_conf	*job;
	long long		 id;
	int64_t			 epoch;
	struct dest		*dest;
	struct source_req	*sreq;
	struct event		*ev_timeout;
	uint64_t		 started;	/* monotonic ms */
	bool			 finishing;
	bool			 cut;		/* stopped from outside */
	bool			 timed_out;	/* its run_timeout fired */
	bool			 claim_failed;	/* another instance holds the lease: no run */
	bool			 not_run;	/* paused, or claim_failed: no run */
	bool			 state_busy;	/* a state call is in flight */
	char			*fail_msg;	/* set when failing: written once state is idle */
	int64_t			 throttled_until;	/* the failure is a budget's refusal:
						 * result "throttled", runs again then */
	long long		 c_read, c_delivered, c_skipped, c_failed, c_deleted;	/* checkpointed */
	long long		 ck_seq;	/* checkpoints sent: each carries its number */

	/* counters of this run */
	long long		 nread, ndelivered, nskipped, nfailed, ndeleted;
	int			 logged_failures;
	long long		 nduplicates;	/* earlier occurrences of a key in one page/batch */
	int			 logged_dups;

	/* state loaded at run start */
	bool			 have_failures;
	bool			 have_seen;	/* the seen set has rows: read it (modified) */
	char			*wm_text;	/* the source's own text, NULL before the first run */
	char			*wm_done;	/* the watermark as last written to the state store */
	int64_t			 wm_ns;
	char			*wm_key;	/* PostgreSQL source: key of the watermark row */
	struct strmap		 seen;		/* key -> struct seen */
	json_t			*retry;		/* due retries */
	struct strmap		 failing;	/* the retry queue: key -> struct queued */
	struct state_ck		*retry_failed;	/* retries that failed before delivery */

	/* the batch being delivered */
	struct dest_item	*items;
	size_t			 nitems, cap_items, next_item, batch_end;
	run_step_cb		 delivered_cb;
	json_t			*recs;		/* the records the items point into */
	struct state_ck		*ck;		/* the checkpoint being built */
	bool			 last_page;	/* ... is the run's last */

	/* paging (run_page.c) */
	char			*next_url;
	char			*cursor;
	struct strmap		 followed;	/* next links and cursors followed since the read
						 * last started from the job's URL (hashes) */
	struct strmap		 pages_read;	/* fingerprints of this read's pages */
	int			 pages_stale;	/* pages in a row that brought nothing new */

	struct flag_state	*fl;		/* strategy flag's own state */
	struct capture_state	*cs;		/* strategy capture's own state */
	struct modified_state	*md;		/* strategy modified's own state */
};

/* Items, checkpoint and last-page flag of a page inspected ahead while the previous one is
 * delivered (run_set_swap exchanges them with the run's). */
struct pageset {
	struct dest_item *items;
	size_t		  nitems, cap_items;
	struct state_ck	 *ck;
	bool		  last;
};

/*
 * Start a run of a job now (the daemon checked the slot), with the strategy ops chosen for
 * it (strategy_lookup; NULL: the run fails, the strategy is not supported) and what the
 * daemon lends it (copied). The run ends through env->ended, never before this returns.
 */
struct run *run_start(const struct job_conf *, const struct strategy_ops *,
    const struct run_env *);
/* Cut a run short (stop, job removed, lease lost): no further state writes but the result. */
void run_cut(struct run *, const char *why);

/* Used by the strategies. */
void run_fail(struct run *, const char *fmt, ...) PRINTF(2, 3);
void run_finish_ok(struct run *);
/* Write ck (taken: freed once written), then next. */
void run_checkpoint(struct run *, struct state_ck *ck, run_step_cb next);
void run_deliver(struct run *, run_step_cb next);	/* r->items[0..nitems) in batches */
struct dest_item *run_add_item(struct run *, const char *key, json_t *rec);
#define RUN_ERROR_MAX	2000
/* An error text as every column of the state database holds one (runs.error,
 * failures.last_error, unmarked.last_error): redacted, then valid UTF-8 without NUL and at
 * most RUN_ERROR_MAX bytes. The only way an error text reaches the state database. */
char *run_error_text(const char *);
void run_items_reset(struct run *);	/* drop the items of the last delivery */
/* Drop item i (not yet delivered); the last item takes its place. */
void run_drop_item(struct run *, size_t i);
/* Exchange the run's current items, checkpoint and last-page flag with a page set. */
void run_set_swap(struct run *, struct pageset *);
/* Move the run's items (a delivered batch, with their outcomes) into ps, which must hold
 * none, and leave the run without items; the checkpoint and last-page flag stay. */
void run_items_take(struct run *, struct pageset *);
/* Free what a page set holds (its items, its checkpoint) and empty it. */
void run_pageset_free(struct pageset *);
/* A strategy's own state call came back: true when the run is failing and must stop
 * (its result is then being written). */
bool run_state_returned(struct run *);
/* The same for a state call whose answer the caller reads: true when it can be used; false
 * when the run was failing, or fails now with err, and the caller must stop. */
bool run_state_usable(struct run *, int rc, const char *err);

#endif
