/*
 * test_metrics.c - the /metrics text (run/metrics.c) for given values: every family with
 * its HELP and TYPE, the counters a run's end moves, the cumulative histogram, queue
 * gauges only once the state store told them, the daemon's gauges as handed in, the times
 * of the last runs by result next to the job's interval (what "a job not run for three
 * intervals" is computed from), and label values escaped as the Prometheus text format 0.0.4
 * wants (backslash, double quote, line feed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "core/util.h"
#include "run/metrics.h"

static char *
render(const struct metrics_job_view *jobs, size_t njobs, bool up, size_t mine)
{
	struct metrics_view v = { .jobs = jobs, .njobs = njobs, .state_up = up,
	    .instance_jobs = mine, .start_ms = 1700000000250 };
	struct buf b;

	buf_init(&b);
	metrics_render(&v, &b);
	return buf_steal(&b);
}

/* The text holds this line, whole. */
static void
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line '%s' in:\n%s", line, text);
}

static void
lacks(const char *text, const char *what)
{
	const char *p = strstr(text, what);

	if (p != NULL)
		fail_msg("'%s' should not be in the text, found at byte %td", what, p - text);
}

static int
reset(void **state)
{
	(void)state;
	metrics_free();
	return 0;
}

/* A job nothing happened to yet: the whole text, byte for byte. */
static void
test_fresh_job(void **state)
{
	const struct metrics_job_view jobs[] = { { "a", true, false, true, 90000 } };
	char *t;

	(void)state;
	t = render(jobs, 1, true, 3);
	assert_string_equal(t,
	    "# HELP onesync_records_read_total Records read from the source by this instance's "
	    "runs of the job.\n"
	    "# TYPE onesync_records_read_total counter\n"
	    "onesync_records_read_total{job=\"a\"} 0\n"
	    "# HELP onesync_records_delivered_total Records the destination accepted.\n"
	    "# TYPE onesync_records_delivered_total counter\n"
	    "onesync_records_delivered_total{job=\"a\"} 0\n"
	    "# HELP onesync_records_skipped_total Records read but not delivered because they "
	    "were unchanged (already delivered).\n"
	    "# TYPE onesync_records_skipped_total counter\n"
	    "onesync_records_skipped_total{job=\"a\"} 0\n"
	    "# HELP onesync_records_failed_total Records refused or not deliverable, put in the "
	    "retry queue.\n"
	    "# TYPE onesync_records_failed_total counter\n"
	    "onesync_records_failed_total{job=\"a\"} 0\n"
	    "# HELP onesync_records_deleted_total Records deleted at the destination (strategy "
	    "capture with deletes).\n"
	    "# TYPE onesync_records_deleted_total counter\n"
	    "onesync_records_deleted_total{job=\"a\"} 0\n"
	    "# HELP onesync_retry_queue_records Records waiting in the job's retry queue (dead "
	    "ones not included), as of the state store's last answer to this instance.\n"
	    "# TYPE onesync_retry_queue_records gauge\n"
	    "# HELP onesync_dead_records Dead-lettered records of the job (no longer retried), "
	    "as of the state store's last answer to this instance.\n"
	    "# TYPE onesync_dead_records gauge\n"
	    "# HELP onesync_runs_total Runs of the job that ended on this instance, by result "
	    "(ok, failed, cut, throttled: a request budget refused a request, see onesyncd(8)).\n"
	    "# TYPE onesync_runs_total counter\n"
	    "onesync_runs_total{job=\"a\",result=\"ok\"} 0\n"
	    "onesync_runs_total{job=\"a\",result=\"failed\"} 0\n"
	    "onesync_runs_total{job=\"a\",result=\"cut\"} 0\n"
	    "onesync_runs_total{job=\"a\",result=\"throttled\"} 0\n"
	    "# HELP onesync_run_duration_seconds Duration of the job's runs on this instance.\n"
	    "# TYPE onesync_run_duration_seconds histogram\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"0.1\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"0.5\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"1\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"5\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"10\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"30\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"60\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"300\"} 0\n"
	    "onesync_run_duration_seconds_bucket{job=\"a\",le=\"+Inf\"} 0\n"
	    "onesync_run_duration_seconds_sum{job=\"a\"} 0.000\n"
	    "onesync_run_duration_seconds_count{job=\"a\"} 0\n"
	    "# HELP onesync_last_run_timestamp_seconds When the job's last run of this result "
	    "ended on this instance (Unix time).\n"
	    "# TYPE onesync_last_run_timestamp_seconds gauge\n"
	    "# HELP onesync_lease_held 1 when this instance holds the job's lease, 0 otherwise.\n"
	    "# TYPE onesync_lease_held gauge\n"
	    "onesync_lease_held{job=\"a\"} 1\n"
	    "# HELP onesync_job_definition_mismatch 1 when the job's definition here differs "
	    "from the one it runs with (the one its state was written with, or another live "
	    "instance's): this instance does not run it.\n"
	    "# TYPE onesync_job_definition_mismatch gauge\n"
	    "onesync_job_definition_mismatch{job=\"a\"} 0\n"
	    "# HELP onesync_job_interval_seconds The job's interval as configured (absent while "
	    "the job is disabled).\n"
	    "# TYPE onesync_job_interval_seconds gauge\n"
	    "onesync_job_interval_seconds{job=\"a\"} 90.000\n"
	    "# HELP onesync_job_paused 1 when this instance's last attempt to run the job found "
	    "it paused, 0 otherwise.\n"
	    "# TYPE onesync_job_paused gauge\n"
	    "onesync_job_paused{job=\"a\"} 0\n"
	    "# HELP onesync_state_store_up 1 when the state store answers, 0 otherwise.\n"
	    "# TYPE onesync_state_store_up gauge\n"
	    "onesync_state_store_up 1\n"
	    "# HELP onesync_instance_jobs Jobs assigned to this instance by the balance over the "
	    "live instances.\n"
	    "# TYPE onesync_instance_jobs gauge\n"
	    "onesync_instance_jobs 3\n"
	    "# HELP process_start_time_seconds When the daemon started (Unix time).\n"
	    "# TYPE process_start_time_seconds gauge\n"
	    "process_start_time_seconds 1700000000.250\n");
	free(t);
}

/* Runs' ends move the counters by their counts; the histogram is cumulative. */
static void
test_runs(void **state)
{
	const struct metrics_job_view jobs[] = { { "a", false, false, true, 60000 },
	    { "b", false, true, true, 60000 } };
	struct metrics_run ok = { .job = "a", .id = 7, .ok = true, .ms = 2500,
	    .read = 10, .delivered = 6, .skipped = 3, .failed = 1, .watermark = "2024-01-01",
	    .watermark_key = "k9" };
	struct metrics_run bad = { .job = "a", .id = 8, .ms = 50, .read = 4,
	    .failed = 4, .error = "HTTP 500", .watermark = "2024-01-01" };
	struct metrics_run cut = { .job = "a", .id = 9, .cut = true,
	    .ms = 400000, .deleted = 2, .error = "stopped", .watermark = "2024-01-02" };
	const struct job_stats *s;
	char *t;

	(void)state;
	metrics_run_ended(&ok);
	metrics_run_ended(&bad);
	metrics_run_ended(&cut);
	t = render(jobs, 2, false, 0);
	has_line(t, "onesync_records_read_total{job=\"a\"} 14");
	has_line(t, "onesync_records_delivered_total{job=\"a\"} 6");
	has_line(t, "onesync_records_skipped_total{job=\"a\"} 3");
	has_line(t, "onesync_records_failed_total{job=\"a\"} 5");
	has_line(t, "onesync_records_deleted_total{job=\"a\"} 2");
	has_line(t, "onesync_runs_total{job=\"a\",result=\"ok\"} 1");
	has_line(t, "onesync_runs_total{job=\"a\",result=\"failed\"} 1");
	has_line(t, "onesync_runs_total{job=\"a\",result=\"cut\"} 1");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"a\",le=\"0.1\"} 1");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"a\",le=\"1\"} 1");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"a\",le=\"5\"} 2");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"a\",le=\"300\"} 2");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"a\",le=\"+Inf\"} 3");
	has_line(t, "onesync_run_duration_seconds_sum{job=\"a\"} 402.550");
	has_line(t, "onesync_run_duration_seconds_count{job=\"a\"} 3");
	has_line(t, "onesync_records_read_total{job=\"b\"} 0");
	has_line(t, "onesync_job_definition_mismatch{job=\"b\"} 1");
	has_line(t, "onesync_lease_held{job=\"a\"} 0");
	has_line(t, "onesync_state_store_up 0");
	has_line(t, "onesync_instance_jobs 0");
	free(t);
	/* the last run, for /jobs */
	s = metrics_job("a");
	assert_non_null(s);
	assert_int_equal(s->last_id, 9);
	assert_string_equal(metrics_result_name(s->last_result), "cut");
	assert_string_equal(s->last_error, "stopped");
	assert_string_equal(s->watermark, "2024-01-02");
	assert_null(s->watermark_key);
	assert_int_equal(s->last_finished_ms - s->last_started_ms, 400000);
	assert_null(metrics_job("b"));
}

/* A "run" that never was: paused (it had the lease), or the lease held elsewhere. */
static void
test_not_runs(void **state)
{
	struct metrics_run paused = { .job = "p", .ok = true };
	struct metrics_run elsewhere = { .job = "e", .ok = true, .claim_failed = true };
	struct metrics_run real = { .job = "p", .id = 3, .ok = true };

	(void)state;
	metrics_run_ended(&paused);
	metrics_run_ended(&elsewhere);
	assert_true(metrics_job("p")->paused);
	assert_false(metrics_job("e")->paused);
	assert_int_equal(metrics_job("p")->runs[RESULT_OK], 0);
	assert_int_equal(metrics_job("p")->last_result, -1);
	metrics_run_ended(&real);
	assert_false(metrics_job("p")->paused);
	assert_int_equal(metrics_job("p")->runs[RESULT_OK], 1);
}

/* The value of the sample that starts with this text, or -1 when there is none. */
static double
value_of(const char *text, const char *series)
{
	size_t n = strlen(series);

	for (const char *p = text; (p = strstr(p, series)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return -1;
}

/*
 * The clock the metrics read, to the millisecond they render (time() reads the coarse
 * clock, which can stand a second ahead of it just after a second begins).
 */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

/*
 * When the last run of each result ended, next to the interval: what "not run for three
 * intervals" is computed from. A result never seen has no sample, nor a disabled job an
 * interval; a paused job says so (until a run happens).
 */
static void
test_schedule(void **state)
{
	const struct metrics_job_view jobs[] = { { "a", false, false, true, 60000 },
	    { "off", false, false, false, 60000 }, { "p", false, false, true, 1500 } };
	struct metrics_run ok = { .job = "a", .id = 1, .ok = true, .ms = 10 };
	struct metrics_run bad = { .job = "a", .id = 2, .ms = 10, .error = "HTTP 500" };
	struct metrics_run paused = { .job = "p", .ok = true };
	double before, after, v;
	char *t;

	(void)state;
	before = now_s();
	metrics_run_ended(&ok);
	metrics_run_ended(&bad);
	metrics_run_ended(&paused);
	after = now_s() + 0.001;
	t = render(jobs, 3, true, 2);
	v = value_of(t, "onesync_last_run_timestamp_seconds{job=\"a\",result=\"ok\"}");
	assert_true(v >= before && v <= after);
	v = value_of(t, "onesync_last_run_timestamp_seconds{job=\"a\",result=\"failed\"}");
	assert_true(v >= before && v <= after);
	lacks(t, "onesync_last_run_timestamp_seconds{job=\"a\",result=\"cut\"}");
	lacks(t, "onesync_last_run_timestamp_seconds{job=\"p\"");	/* paused: no run */
	lacks(t, "onesync_last_run_timestamp_seconds{job=\"off\"");
	has_line(t, "onesync_job_interval_seconds{job=\"a\"} 60.000");
	has_line(t, "onesync_job_interval_seconds{job=\"p\"} 1.500");
	lacks(t, "onesync_job_interval_seconds{job=\"off\"}");
	has_line(t, "onesync_job_paused{job=\"a\"} 0");
	has_line(t, "onesync_job_paused{job=\"off\"} 0");
	has_line(t, "onesync_job_paused{job=\"p\"} 1");
	has_line(t, "process_start_time_seconds 1700000000.250");
	free(t);
}

/* Queue sizes once the state store told them: waiting ones apart from dead ones. */
static void
test_queue(void **state)
{
	const struct metrics_job_view jobs[] = { { "q", false, false, true, 60000 } };
	json_t *start = json_pack("{s:i, s:[[s,s,b,n],[s,s,b,n],[s,s,b,n]]}", "failures", 3,
	    "failing", "k1", "h", 1, "k2", "h", 0, "k3", "h", 0);
	json_t *ck = json_pack("{s:i, s:[s]}", "failures", 5, "dead", "k4");
	json_t *junk = json_pack("{s:s}", "failures", "3");
	char *t;

	(void)state;
	t = render(jobs, 1, true, 1);
	lacks(t, "onesync_retry_queue_records{");	/* unknown yet: no sample */
	lacks(t, "onesync_dead_records{");
	free(t);
	metrics_state_answer("q", start);
	t = render(jobs, 1, true, 1);
	has_line(t, "onesync_retry_queue_records{job=\"q\"} 2");
	has_line(t, "onesync_dead_records{job=\"q\"} 1");
	free(t);
	metrics_state_answer("q", ck);	/* a checkpoint: one more dead since */
	metrics_state_answer("q", junk);	/* not an answer with sizes: ignored */
	t = render(jobs, 1, true, 1);
	has_line(t, "onesync_retry_queue_records{job=\"q\"} 3");
	has_line(t, "onesync_dead_records{job=\"q\"} 2");
	free(t);
	json_decref(start);
	json_decref(ck);
	json_decref(junk);
}

/* Label values: backslash, double quote and line feed escaped; the sample one line. */
static void
test_label_escapes(void **state)
{
	const struct metrics_job_view jobs[] = {
		{ "say \"hi\"", false, false, false, 0 }, { "c:\\dir\\", false, false, false, 0 },
		{ "two\nlines", false, false, false, 0 }, { "tab\there", false, false, false, 0 },
	};
	struct metrics_run r = { .job = "two\nlines", .id = 1, .ok = true,
	    .read = 5 };
	char *t;

	(void)state;
	metrics_run_ended(&r);
	t = render(jobs, 4, true, 0);
	has_line(t, "onesync_records_read_total{job=\"say \\\"hi\\\"\"} 0");
	has_line(t, "onesync_records_read_total{job=\"c:\\\\dir\\\\\"} 0");
	has_line(t, "onesync_records_read_total{job=\"two\\nlines\"} 5");
	has_line(t, "onesync_records_read_total{job=\"tab\there\"} 0");
	has_line(t, "onesync_runs_total{job=\"say \\\"hi\\\"\",result=\"ok\"} 0");
	has_line(t, "onesync_run_duration_seconds_bucket{job=\"c:\\\\dir\\\\\",le=\"+Inf\"} 0");
	/* every line is a comment or a sample: no raw line feed split one */
	for (char *p = t, *e; *p != '\0'; p = e + 1) {
		e = strchr(p, '\n');
		assert_non_null(e);
		assert_true(*p == '#' || strncmp(p, "onesync_", 8) == 0 ||
		    strncmp(p, "process_", 8) == 0);
	}
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_fresh_job, reset),
		cmocka_unit_test_setup(test_runs, reset),
		cmocka_unit_test_setup(test_not_runs, reset),
		cmocka_unit_test_setup(test_schedule, reset),
		cmocka_unit_test_setup(test_queue, reset),
		cmocka_unit_test_setup(test_label_escapes, reset),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);

	metrics_free();
	return rc;
}
