/*
 * metrics.c - per job counters, gauges and the run duration histogram, kept in memory by
 * this instance and rendered in the Prometheus text format 0.0.4. Counters move once per
 * run, at its end, by that run's own counts (the numbers of its "run finished/failed" log
 * line). Gauges come from the state store's answers and from the values the daemon hands
 * in at scrape time (struct metrics_view): it knows no daemon and no job but by name. It
 * never does I/O and never touches the state store.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/redact.h"
#include "core/strmap.h"
#include "run/metrics.h"

const double metrics_buckets[METRICS_NBUCKETS] = { 0.1, 0.5, 1, 5, 10, 30, 60, 300 };

static const char *const result_names[RESULT_N] = { "ok", "failed", "cut",
    "throttled" };

/* The metric families, in the order /metrics shows them; onesyncd(8) documents each. */
enum family {
	F_READ, F_DELIVERED, F_SKIPPED, F_FAILED, F_DELETED, F_QUEUE, F_DEAD, F_RUNS,
	F_DURATION, F_LAST_RUN, F_LEASE, F_MISMATCH, F_INTERVAL, F_PAUSED, F_STATE_UP,
	F_INSTANCE_JOBS, F_START, F_N
};
static const struct {
	const char	*name, *type, *help;
} families[F_N] = {
	[F_READ] = { "onesync_records_read_total", "counter",
	    "Records read from the source by this instance's runs of the job." },
	[F_DELIVERED] = { "onesync_records_delivered_total", "counter",
	    "Records the destination accepted." },
	[F_SKIPPED] = { "onesync_records_skipped_total", "counter",
	    "Records read but not delivered because they were unchanged (already delivered)." },
	[F_FAILED] = { "onesync_records_failed_total", "counter",
	    "Records refused or not deliverable, put in the retry queue." },
	[F_DELETED] = { "onesync_records_deleted_total", "counter",
	    "Records deleted at the destination (strategy capture with deletes)." },
	[F_QUEUE] = { "onesync_retry_queue_records", "gauge",
	    "Records waiting in the job's retry queue (dead ones not included), as of the "
	    "state store's last answer to this instance." },
	[F_DEAD] = { "onesync_dead_records", "gauge",
	    "Dead-lettered records of the job (no longer retried), as of the state store's "
	    "last answer to this instance." },
	[F_RUNS] = { "onesync_runs_total", "counter",
	    "Runs of the job that ended on this instance, by result (ok, failed, cut, "
	    "throttled: a request budget refused a request, see onesyncd(8))." },
	[F_DURATION] = { "onesync_run_duration_seconds", "histogram",
	    "Duration of the job's runs on this instance." },
	[F_LAST_RUN] = { "onesync_last_run_timestamp_seconds", "gauge",
	    "When the job's last run of this result ended on this instance (Unix time)." },
	[F_LEASE] = { "onesync_lease_held", "gauge",
	    "1 when this instance holds the job's lease, 0 otherwise." },
	[F_MISMATCH] = { "onesync_job_definition_mismatch", "gauge",
	    "1 when the job's definition here differs from the one it runs with (the one its "
	    "state was written with, or another live instance's): this instance does not run it." },
	[F_INTERVAL] = { "onesync_job_interval_seconds", "gauge",
	    "The job's interval as configured (absent while the job is disabled)." },
	[F_PAUSED] = { "onesync_job_paused", "gauge",
	    "1 when this instance's last attempt to run the job found it paused, 0 otherwise." },
	[F_STATE_UP] = { "onesync_state_store_up", "gauge",
	    "1 when the state store answers, 0 otherwise." },
	[F_INSTANCE_JOBS] = { "onesync_instance_jobs", "gauge",
	    "Jobs assigned to this instance by the balance over the live instances." },
	[F_START] = { "process_start_time_seconds", "gauge",
	    "When the daemon started (Unix time)." },
};

static struct strmap	 stats;		/* job name -> struct job_stats */
static bool		 stats_ready;

static struct job_stats *
stats_get(const char *job)
{
	struct job_stats *s;

	if (!stats_ready) {
		strmap_init(&stats);
		stats_ready = true;
	}
	if ((s = strmap_get(&stats, job)) == NULL) {
		s = xcalloc(1, sizeof *s);
		s->last_result = -1;
		strmap_put(&stats, job, s);
	}
	return s;
}

const struct job_stats *
metrics_job(const char *job)
{
	return stats_ready ? strmap_get(&stats, job) : NULL;
}

const char *
metrics_result_name(int r)
{
	return r >= 0 && r < RESULT_N ? result_names[r] : NULL;
}


static void
set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL ? xstrdup(src) : NULL;
}

void
metrics_run_ended(const struct metrics_run *m)
{
	struct job_stats *s = stats_get(m->job);
	double secs = (double)m->ms / 1000.0;
	enum run_result res;
	size_t b;

	/* Not a run: the job was paused, or another instance holds its lease. */
	if (m->id == 0 && m->error == NULL) {
		if (m->ok && !m->lease_lost && !m->claim_failed)
			s->paused = true;
		return;
	}
	s->paused = false;
	res = m->ok ? RESULT_OK : (m->cut || m->lease_lost) ? RESULT_CUT : m->throttled ?
	    RESULT_THROTTLED : RESULT_FAILED;
	s->read += m->read;
	s->delivered += m->delivered;
	s->skipped += m->skipped;
	s->failed += m->failed;
	s->deleted += m->deleted;
	s->runs[res]++;
	for (b = 0; b < METRICS_NBUCKETS && secs > metrics_buckets[b]; b++)
		;
	s->buckets[b]++;
	s->dur_sum += secs;
	s->dur_count++;
	s->last_id = m->id;
	s->last_result = (int)res;
	s->last_finished_ms = now_wall_ms();
	s->last_end_ms[res] = s->last_finished_ms;
	s->last_started_ms = s->last_finished_ms - (int64_t)m->ms;
	s->last_read = m->read;
	s->last_delivered = m->delivered;
	s->last_skipped = m->skipped;
	s->last_failed = m->failed;
	s->last_deleted = m->deleted;
	set_str(&s->last_error, m->ok ? NULL : m->error != NULL ? m->error : "lease lost");
	if (m->id != 0) {
		set_str(&s->watermark, m->watermark);
		set_str(&s->watermark_key, m->watermark_key);
	}
}

/*
 * Queue sizes from onesync.run_start (failures: all queued, failing: [key, hash, dead, due])
 * or onesync.checkpoint (failures, dead: the keys dead-lettered now, and dead_records when
 * the schema returns it). Without dead_records the dead count between two run starts is
 * the one at run start plus the records dead-lettered since.
 */
void
metrics_state_answer(const char *job, json_t *res)
{
	struct job_stats *s;
	json_t *failures = json_object_get(res, "failures"), *failing, *dead, *e;
	long long total, ndead;
	size_t i;

	if (!json_is_integer(failures))
		return;
	s = stats_get(job);
	total = (long long)json_integer_value(failures);
	failing = json_object_get(res, "failing");
	dead = json_object_get(res, "dead_records");
	if (json_is_integer(dead))
		ndead = (long long)json_integer_value(dead);
	else if (json_is_array(failing)) {
		ndead = 0;
		json_array_foreach(failing, i, e)
			ndead += json_is_true(json_array_get(e, 2));
	} else
		ndead = (s->have_queue ? s->dead : 0) +
		    (long long)json_array_size(json_object_get(res, "dead"));
	if (ndead > total)
		ndead = total;
	s->dead = ndead;
	s->queue = total - ndead;
	s->have_queue = true;
}

/* A label value or HELP text, escaped as the text format wants. */
static void
esc(struct buf *b, const char *text, bool label)
{
	/* a label value is what a user sees: redacted, the sample stays one line */
	char *red = label ? redact_text(text) : NULL;
	const char *s = red != NULL ? red : text;

	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_adds(b, "\\\\");
		else if (*s == '\n')
			buf_adds(b, "\\n");
		else if (*s == '"' && label)
			buf_adds(b, "\\\"");
		else
			buf_addc(b, *s);
	}
	free(red);
}

void
metrics_header(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s ", name);
	esc(b, help, false);
	buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

void
metrics_labelled(struct buf *b, const char *name, const char *suffix, const char *label,
    const char *value, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	v = xvasprintf(fmt, ap);
	va_end(ap);
	buf_printf(b, "%s%s{%s=\"", name, suffix, label);
	esc(b, value, true);
	buf_printf(b, "\"} %s\n", v);
	free(v);
}

static void
header(struct buf *b, enum family f)
{
	metrics_header(b, families[f].name, families[f].type, families[f].help);
}

/* One sample: NAME{job="JOB"[,EXTRA]} VALUE */
static void
sample(struct buf *b, const char *name, const char *suffix, const char *job,
    const char *extra, const char *value)
{
	buf_printf(b, "%s%s{job=\"", name, suffix);
	esc(b, job, true);
	buf_printf(b, "\"%s%s} %s\n", extra != NULL ? "," : "", extra != NULL ? extra : "", value);
}

static void
sample_ll(struct buf *b, enum family f, const char *job, long long v)
{
	char val[32];

	snprintf(val, sizeof val, "%lld", v);
	sample(b, families[f].name, "", job, NULL, val);
}

/* A time or a duration in milliseconds, as seconds. */
static void
sample_secs(struct buf *b, enum family f, const char *job, const char *extra, int64_t ms)
{
	char val[64];

	snprintf(val, sizeof val, "%.3f", (double)ms / 1000.0);
	sample(b, families[f].name, "", job, extra, val);
}

static void
render_family(const struct metrics_view *v, struct buf *b, enum family f)
{
	static const struct job_stats zero = { .last_result = -1 };

	header(b, f);
	if (f == F_STATE_UP) {
		buf_printf(b, "%s %d\n", families[f].name, v->state_up ? 1 : 0);
		return;
	}
	if (f == F_INSTANCE_JOBS) {
		buf_printf(b, "%s %zu\n", families[f].name, v->instance_jobs);
		return;
	}
	if (f == F_START) {
		buf_printf(b, "%s %.3f\n", families[f].name, (double)v->start_ms / 1000.0);
		return;
	}
	for (size_t i = 0; i < v->njobs; i++) {
		const char *job = v->jobs[i].name;
		const struct job_stats *s = metrics_job(job);
		char extra[64], val[64];
		long long cum = 0;

		if (s == NULL)
			s = &zero;
		switch (f) {
		case F_READ:
			sample_ll(b, f, job, s->read);
			break;
		case F_DELIVERED:
			sample_ll(b, f, job, s->delivered);
			break;
		case F_SKIPPED:
			sample_ll(b, f, job, s->skipped);
			break;
		case F_FAILED:
			sample_ll(b, f, job, s->failed);
			break;
		case F_DELETED:
			sample_ll(b, f, job, s->deleted);
			break;
		case F_QUEUE:
			if (s->have_queue)	/* unknown until the state store told */
				sample_ll(b, f, job, s->queue);
			break;
		case F_DEAD:
			if (s->have_queue)
				sample_ll(b, f, job, s->dead);
			break;
		case F_RUNS:
			for (int r = 0; r < RESULT_N; r++) {
				snprintf(extra, sizeof extra, "result=\"%s\"", result_names[r]);
				snprintf(val, sizeof val, "%lld", s->runs[r]);
				sample(b, families[f].name, "", job, extra, val);
			}
			break;
		case F_DURATION:
			for (size_t k = 0; k <= METRICS_NBUCKETS; k++) {
				cum += s->buckets[k];
				if (k < METRICS_NBUCKETS)
					snprintf(extra, sizeof extra, "le=\"%g\"", metrics_buckets[k]);
				else
					snprintf(extra, sizeof extra, "le=\"+Inf\"");
				snprintf(val, sizeof val, "%lld", cum);
				sample(b, families[f].name, "_bucket", job, extra, val);
			}
			snprintf(val, sizeof val, "%.3f", s->dur_sum);
			sample(b, families[f].name, "_sum", job, NULL, val);
			snprintf(val, sizeof val, "%lld", s->dur_count);
			sample(b, families[f].name, "_count", job, NULL, val);
			break;
		case F_LAST_RUN:
			/* a result never seen here has no time to show */
			for (int r = 0; r < RESULT_N; r++) {
				if (s->last_end_ms[r] == 0)
					continue;
				snprintf(extra, sizeof extra, "result=\"%s\"", result_names[r]);
				sample_secs(b, f, job, extra, s->last_end_ms[r]);
			}
			break;
		case F_LEASE:
			sample_ll(b, f, job, v->jobs[i].lease_held);
			break;
		case F_MISMATCH:
			sample_ll(b, f, job, v->jobs[i].mismatch);
			break;
		case F_INTERVAL:
			/* a disabled job has no schedule: "not run for a while" is no news */
			if (v->jobs[i].enabled)
				sample_secs(b, f, job, NULL, v->jobs[i].interval_ms);
			break;
		case F_PAUSED:
			sample_ll(b, f, job, s->paused);
			break;
		default:
			break;
		}
	}
}

void
metrics_render(const struct metrics_view *v, struct buf *b)
{
	for (int f = 0; f < F_N; f++)
		render_family(v, b, (enum family)f);
}

static void
stats_free(void *v)
{
	struct job_stats *s = v;

	free(s->last_error);
	free(s->watermark);
	free(s->watermark_key);
	free(s);
}

void
metrics_free(void)
{
	if (stats_ready)
		strmap_free(&stats, stats_free);
	stats_ready = false;
}
