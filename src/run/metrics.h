/* metrics.h - what this instance saw of each job's runs: Prometheus counters, gauges, a
 * run duration histogram, and the last run (for the status endpoint's /jobs). */
#ifndef ONESYNC_METRICS_H
#define ONESYNC_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

enum run_result { RESULT_OK, RESULT_FAILED, RESULT_CUT, RESULT_THROTTLED, RESULT_N };

#define METRICS_NBUCKETS	8	/* finite buckets of onesync_run_duration_seconds */

/* One job, as this instance saw it. Counters only grow while the process lives. */
struct job_stats {
	long long	 read, delivered, skipped, failed, deleted;
	long long	 runs[RESULT_N];
	long long	 buckets[METRICS_NBUCKETS + 1];	/* per bucket, not cumulative; last: +Inf */
	double		 dur_sum;
	long long	 dur_count;
	bool		 have_queue;		/* a state answer told the queue sizes */
	long long	 queue, dead;		/* retry queue waiting / dead-lettered */
	bool		 paused;		/* the last attempt found the job paused */
	/* the last run that ended here */
	long long	 last_id;		/* 0: none, or one that never started in the store */
	int		 last_result;		/* enum run_result, -1 = none yet */
	int64_t		 last_started_ms, last_finished_ms;	/* wall clock, for display only */
	int64_t		 last_end_ms[RESULT_N];	/* wall clock: the last run of each result ended */
	long long	 last_read, last_delivered, last_skipped, last_failed, last_deleted;
	char		*last_error;
	char		*watermark, *watermark_key;	/* as the last run left it */
};

extern const double metrics_buckets[METRICS_NBUCKETS];

/* One run as it ended, in values: run.c fills it from its struct run. */
struct metrics_run {
	const char	*job;
	long long	 id;		/* 0: no run in the store (paused, held elsewhere, failed early) */
	bool		 ok;
	bool		 cut;		/* stopped from outside */
	bool		 lease_lost;
	bool		 claim_failed;	/* another instance held the job's lease */
	uint64_t	 ms;		/* how long it took */
	long long	 read, delivered, skipped, failed, deleted;
	const char	*error;		/* why it failed, or NULL */
	bool		 throttled;	/* a budget refused a request: not counted as failed */
	const char	*watermark, *watermark_key;	/* as it left them */
};

/* A run ended (called once per run, from run_end, before it is freed). */
void metrics_run_ended(const struct metrics_run *);
/* The state store answered a run start or a checkpoint of the job: queue sizes. */
void metrics_state_answer(const char *job, json_t *res);
/* What this instance saw of the job; NULL when nothing yet. */
const struct job_stats *metrics_job(const char *job);
/*
 * What the daemon knows at scrape time, for the gauges that are not counted here: the
 * configuration's jobs in its order, and for each whether this instance holds its lease,
 * whether its definition differs from the one it runs with, and its schedule.
 */
struct metrics_job_view {
	const char	*name;
	bool		 lease_held;
	bool		 mismatch;
	bool		 enabled;	/* scheduled at all (jobs.*.enabled) */
	int64_t		 interval_ms;
};
struct metrics_view {
	const struct metrics_job_view *jobs;
	size_t		 njobs;
	bool		 state_up;	/* the state store answers */
	size_t		 instance_jobs;	/* assigned to this instance (0 before the first balance) */
	int64_t		 start_ms;	/* wall clock: when the daemon started */
};

/* The Prometheus text format (0.0.4) of every metric, for the jobs of the view. */
void metrics_render(const struct metrics_view *, struct buf *);
const char *metrics_result_name(int);
void metrics_free(void);
/* For the other metrics of the process (budgets, credentials): a family's HELP and TYPE
 * lines, then its samples NAME[SUFFIX]{LABEL="VALUE"} FORMATTED (VALUE escaped). */
void metrics_header(struct buf *, const char *name, const char *type, const char *help);
void metrics_labelled(struct buf *, const char *name, const char *suffix, const char *label,
    const char *value, const char *fmt, ...) PRINTF(6, 7);

#endif
