/*
 * show.c - the commands of onesyncctl that only read: jobs, runs, failures. Each asks the
 * state database one statement whose answer is JSON, then prints it (--json) or lays it
 * out as a table. Never writes to the state database; a state schema that does not exist
 * yet reads as empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/load.h"
#include "config/identity.h"
#include "config/model.h"
#include "core/util.h"
#include "ctl/conn.h"
#include "ctl/show.h"

/* ---- jobs ---- */


static const char jobs_sql[] =
"SELECT COALESCE(json_agg(json_build_object(\n"
"    'name', n.name,\n"
"    'paused', COALESCE(j.paused, false),\n"
"    'lease_owner', j.owner,\n"
"    'lease_until', j.lease_until,\n"
"    'lease_live', COALESCE(j.owner IS NOT NULL AND j.lease_until > now(), false),\n"
"    'epoch', COALESCE(j.epoch, 0),\n"
"    'watermark', j.watermark,\n"
"    'watermark_key', j.watermark_key,\n"
"    'run_requested_at', j.run_requested_at,\n"
"    'last_run', CASE WHEN lr.id IS NULL THEN NULL ELSE json_build_object(\n"
"        'id', lr.id, 'result', lr.result, 'instance', lr.instance,\n"
"        'started_at', lr.started_at, 'finished_at', lr.finished_at, 'error', lr.error) END,\n"
"    'retry_queue', (SELECT count(*) FROM @S@.failures f WHERE f.job = n.name AND NOT f.dead),\n"
"    'dead', (SELECT count(*) FROM @S@.failures f WHERE f.job = n.name AND f.dead),\n"
"    'unmarked', (SELECT count(*) FROM @S@.unmarked u WHERE u.job = n.name),\n"
"    '_last_ago', extract(epoch FROM now() - COALESCE(lr.finished_at, lr.started_at))::float8,\n"
"    '_identity', to_jsonb(j) -> 'identity', '_definition', to_jsonb(j) -> 'definition',\n"
"    '_last_finished', lf.result)\n"
"  ORDER BY n.ord, n.name), '[]'::json)\n"
"FROM (SELECT c.name, c.ord FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY c(name, ord)\n"
"      UNION ALL\n"
"      SELECT s.name, 9223372036854775807 FROM @S@.jobs s WHERE NOT ($1::jsonb ? s.name)) n\n"
"LEFT JOIN @S@.jobs j ON j.name = n.name\n"
"LEFT JOIN LATERAL (SELECT * FROM @S@.runs r WHERE r.job = n.name ORDER BY r.id DESC LIMIT 1)\n"
"  lr ON true\n"
"LEFT JOIN LATERAL (SELECT r.result FROM @S@.runs r WHERE r.job = n.name\n"
"                     AND r.result NOT IN ('running', 'reset') ORDER BY r.id DESC LIMIT 1)\n"
"  lf ON true";

/* A job object as the database would answer it, for a state without tables. */
static json_t *
job_empty(const char *name)
{
	return json_pack("{s:s, s:b, s:n, s:n, s:b, s:i, s:n, s:n, s:n, s:n, s:i, s:i, s:i, s:n}",
	    "name", name, "paused", 0, "lease_owner", "lease_until", "lease_live", 0,
	    "epoch", 0, "watermark", "watermark_key", "run_requested_at", "last_run",
	    "retry_queue", 0, "dead", 0, "unmarked", 0, "_last_finished");
}

/* name, configured, strategy, enabled, state first; then what the database said. */
static json_t *
job_complete(const struct ctl *ctl, json_t *o)
{
	const struct job_conf *jc = config_job(ctl->cfg, ctl_jstr(o, "name"));
	const char *last = ctl_jstr(o, "_last_finished"), *state;
	json_t *n = json_object();
	const char *k, *stored = ctl_jstr(o, "_identity");
	json_t *v;
	char *what = NULL;

	if (jc != NULL && stored != NULL && strcmp(stored, jc->identity) != 0) {
		char *def = json_dumps(json_object_get(o, "_definition"), JSON_COMPACT |
		    JSON_SORT_KEYS | JSON_ENCODE_ANY);

		/* the daemon refuses to run it until it is restored or reset */
		what = config_identity_diff(def, jc->definition);
		state = "definition_changed";
		free(def);
	} else if (json_is_true(json_object_get(o, "paused")))
		state = "paused";
	else if (jc != NULL && !jc->enabled)
		state = "disabled";
	else if (last == NULL)
		state = "never_run";
	else if (strcmp(last, "failed") == 0 || strcmp(last, "abandoned") == 0)
		state = "failing";
	else if (strcmp(last, "throttled") == 0)
		state = "throttled";	/* a request budget refused; it runs again at T */
	else
		state = "ok";
	json_object_set(n, "name", json_object_get(o, "name"));
	json_object_set_new(n, "configured", json_boolean(jc != NULL));
	json_object_set_new(n, "strategy", jc != NULL ? json_string(config_strategy_name(jc->strategy)) :
	    json_null());
	json_object_set_new(n, "enabled", jc != NULL ? json_boolean(jc->enabled) : json_null());
	json_object_set_new(n, "state", json_string(state));
	if (what != NULL)	/* the members of the definition that changed */
		json_object_set_new(n, "definition_changed", json_string(what));
	free(what);
	json_object_foreach(o, k, v)
		if (json_object_get(n, k) == NULL)
			json_object_set(n, k, v);
	return n;
}

/* "throttled until 10:42:05" from the run's error ("... throttled until T by budget B"). */
static char *
throttled_cell(json_t *lr)
{
	const char *e = json_is_object(lr) ? ctl_jstr(lr, "error") : NULL;
	const char *p = e != NULL ? strstr(e, "throttled until ") : NULL;
	size_t n;

	if (p == NULL)
		return xstrdup("throttled");
	p += strlen("throttled until ");
	n = strspn(p, "0123456789:");
	return xasprintf("throttled until %.*s", (int)(n < 8 ? n : 8), p);
}

static int
cmd_jobs(struct ctl *ctl, const struct ctl_args *args)
{
	static const char *const hdr[] = { "JOB", "STRATEGY", "STATE", "LEASE", "EPOCH",
	    "WATERMARK", "LAST RUN", "QUEUE", "DEAD", "UNMARKED" };
	json_t *names = json_array(), *arr, *out, *o;
	char *namesj;
	size_t i;
	int rc = 0;

	for (i = 0; i < ctl->cfg->njobs; i++)
		json_array_append_new(names, json_string(ctl->cfg->jobs[i].name));
	if (ctl->have_schema) {
		const char *v[1];

		namesj = json_dumps(names, JSON_COMPACT);
		v[0] = namesj;
		arr = ctl_q_json(ctl, "reading the jobs", jobs_sql, 1, v, &rc);
		free(namesj);
		if (arr == NULL) {
			json_decref(names);
			return rc;
		}
	} else {
		fprintf(stderr, "%s: note: the state schema %s does not exist yet (onesyncd "
		    "creates it when it first starts)\n", CTL_PROG, ctl->schema);
		arr = json_array();
		for (i = 0; i < ctl->cfg->njobs; i++)
			json_array_append_new(arr, job_empty(ctl->cfg->jobs[i].name));
	}
	json_decref(names);
	out = json_array();
	json_array_foreach(arr, i, o)
		json_array_append_new(out, job_complete(ctl, o));
	json_decref(arr);
	if (ctl->json) {
		ctl_print_json(out);
		json_decref(out);
		return 0;
	}
	struct ctl_table t = { NELEM(hdr), hdr, "llllrllrrr", { 0 } };

	json_array_foreach(out, i, o) {
		json_t *lr = json_object_get(o, "last_run");
		const char *st = ctl_jstr(o, "state");

		ctl_table_add(&t, ctl_jtext(o, "name"));
		ctl_table_add(&t, ctl_jtext(o, "strategy"));
		if (strcmp(st, "definition_changed") == 0)
			ctl_table_add(&t, xasprintf("definition changed (%s)", ctl_jstr(o,
			    "definition_changed")));
		else if (strcmp(st, "throttled") == 0)
			ctl_table_add(&t, throttled_cell(json_object_get(o, "last_run")));
		else
			ctl_table_add(&t, xstrdup(strcmp(st, "never_run") == 0 ? "never run" :
			    st));
		if (ctl_jnull(o, "lease_owner"))
			ctl_table_add(&t, xstrdup("-"));
		else
			ctl_table_add(&t, xasprintf("%s (%s)", ctl_jstr(o, "lease_owner"),
			    json_is_true(json_object_get(o, "lease_live")) ? "live" : "expired"));
		ctl_table_add(&t, ctl_jtext(o, "epoch"));
		ctl_table_add(&t, ctl_jtext(o, "watermark"));
		if (json_is_object(lr)) {
			char *age = ctl_fmt_age(ctl_jnum(o, "_last_ago"));
			char *res = ctl_cell_text(ctl_jstr(lr, "result"), 0);

			ctl_table_add(&t, xasprintf("#%lld %s %s ago", (long long)
			    json_integer_value(json_object_get(lr, "id")), res, age));
			free(age);
			free(res);
		} else
			ctl_table_add(&t, xstrdup("-"));
		ctl_table_add(&t, ctl_jtext(o, "retry_queue"));
		ctl_table_add(&t, ctl_jtext(o, "dead"));
		ctl_table_add(&t, ctl_jtext(o, "unmarked"));
	}
	ctl_table_print(&t);
	json_decref(out);
	return 0;
}

/*
 * The answer of a statement with two parameters that reads a job's rows: a JSON array, empty
 * while the state schema does not exist; NULL on error (*rc set).
 */
static json_t *
show_array(struct ctl *ctl, const char *what, const char *sql, const char *const *v,
    int *rc)
{
	if (!ctl->have_schema)
		return json_array();
	return ctl_q_json(ctl, what, sql, 2, v, rc);
}

/* ---- runs ---- */

static const char runs_sql[] =
"SELECT COALESCE(json_agg(json_build_object(\n"
"    'id', id, 'instance', instance, 'epoch', epoch,\n"
"    'started_at', started_at, 'finished_at', finished_at,\n"
"    'duration_s', extract(epoch FROM finished_at - started_at)::float8,\n"
"    'result', result, 'read', records_read, 'delivered', delivered, 'skipped', skipped,\n"
"    'failed', failed, 'deleted', to_jsonb(r) -> 'deleted',\n"
"    'watermark_before', watermark_before,\n"
"    'watermark_after', watermark_after, 'error', error,\n"
"    '_started', to_char(started_at, 'YYYY-MM-DD HH24:MI:SS'),\n"
"    '_running_for', extract(epoch FROM now() - started_at)::float8)\n"
"  ORDER BY id DESC), '[]'::json)\n"
"FROM (SELECT * FROM @S@.runs WHERE job = $1 ORDER BY id DESC LIMIT $2::bigint) r";

static int
cmd_runs(struct ctl *ctl, const struct ctl_args *args)
{
	static const char *const hdr[] = { "ID", "INSTANCE", "EPOCH", "STARTED", "DURATION",
	    "RESULT", "READ", "DELIVERED", "SKIPPED", "FAILED", "WATERMARK AFTER", "ERROR" };
	static const char *const hdr_del[] = { "ID", "INSTANCE", "EPOCH", "STARTED",
	    "DURATION", "RESULT", "READ", "DELIVERED", "SKIPPED", "FAILED", "DELETED",
	    "WATERMARK AFTER", "ERROR" };
	const char *job = args->job;
	bool show_del = false;
	char nbuf[32];
	const char *v[] = { job, nbuf };
	json_t *arr, *o;
	size_t i;
	int rc = 0;

	snprintf(nbuf, sizeof(nbuf), "%ld", args->n);
	if ((arr = show_array(ctl, "reading the runs", runs_sql, v, &rc)) == NULL)
		return rc;
	if (ctl->json) {
		ctl_print_json(arr);
		json_decref(arr);
		return 0;
	}
	/* the DELETED column only for jobs that delete (strategy capture) */
	json_array_foreach(arr, i, o)
		if (ctl_jnum(o, "deleted") > 0)
			show_del = true;
	struct ctl_table t = { NELEM(hdr), hdr, "rlrlrlrrrrll", { 0 } };

	if (show_del) {
		t.ncol = NELEM(hdr_del);
		t.hdr = hdr_del;
		t.right = "rlrlrlrrrrrll";
	}
	json_array_foreach(arr, i, o) {
		ctl_table_add(&t, ctl_jtext(o, "id"));
		ctl_table_add(&t, ctl_jtext(o, "instance"));
		ctl_table_add(&t, ctl_jtext(o, "epoch"));
		ctl_table_add(&t, ctl_jtext(o, "_started"));
		if (!ctl_jnull(o, "duration_s"))
			ctl_table_add(&t, ctl_fmt_duration(ctl_jnum(o, "duration_s")));
		else if (strcmp(ctl_jstr(o, "result"), "running") == 0) {
			char *d = ctl_fmt_duration(ctl_jnum(o, "_running_for"));

			ctl_table_add(&t, xasprintf("%s+", d));
			free(d);
		} else
			ctl_table_add(&t, xstrdup("-"));
		ctl_table_add(&t, ctl_jtext(o, "result"));
		ctl_table_add(&t, ctl_jtext(o, "read"));
		ctl_table_add(&t, ctl_jtext(o, "delivered"));
		ctl_table_add(&t, ctl_jtext(o, "skipped"));
		ctl_table_add(&t, ctl_jtext(o, "failed"));
		if (show_del)
			ctl_table_add(&t, ctl_jtext(o, "deleted"));
		ctl_table_add(&t, ctl_jtext(o, "watermark_after"));
		ctl_table_add(&t, ctl_cell_text(ctl_jstr(o, "error"), 60));
	}
	if (json_array_size(arr) == 0)
		printf("job %s has no runs yet\n", job);
	else
		ctl_table_print(&t);
	strlist_free(&t.cells);
	json_decref(arr);
	return 0;
}

/* ---- failures ---- */

static const char failures_sql[] =
"SELECT COALESCE(json_agg(json_build_object(\n"
"    'key', key, 'attempts', attempts, 'dead', dead,\n"
"    'first_failed_at', first_failed_at, 'last_failed_at', last_failed_at,\n"
"    'next_retry_at', next_retry_at, 'last_error', last_error, 'payload', payload,\n"
"    '_first', to_char(first_failed_at, 'YYYY-MM-DD HH24:MI:SS'),\n"
"    '_last', to_char(last_failed_at, 'YYYY-MM-DD HH24:MI:SS'),\n"
"    '_next_in', extract(epoch FROM next_retry_at - now())::float8)\n"
"  ORDER BY first_failed_at, key), '[]'::json)\n"
"FROM @S@.failures WHERE job = $1 AND (dead OR NOT $2::boolean)";

static int
cmd_failures(struct ctl *ctl, const struct ctl_args *args)
{
	static const char *const hdr[] = { "KEY", "ATTEMPTS", "DEAD", "FIRST FAILED",
	    "LAST FAILED", "NEXT RETRY", "LAST ERROR" };
	const char *job = args->job;
	bool dead = args->dead;
	const char *v[] = { job, dead ? "true" : "false" };
	json_t *arr, *o;
	size_t i;
	int rc = 0;

	if ((arr = show_array(ctl, "reading the retry queue", failures_sql, v, &rc)) == NULL)
		return rc;
	if (ctl->json) {
		ctl_print_json(arr);
		json_decref(arr);
		return 0;
	}
	struct ctl_table t = { NELEM(hdr), hdr, "lrllll", { 0 } };

	json_array_foreach(arr, i, o) {
		ctl_table_add(&t, ctl_cell_text(ctl_jstr(o, "key"), 40));
		ctl_table_add(&t, ctl_jtext(o, "attempts"));
		ctl_table_add(&t, ctl_jtext(o, "dead"));
		ctl_table_add(&t, ctl_jtext(o, "_first"));
		ctl_table_add(&t, ctl_jtext(o, "_last"));
		if (json_is_true(json_object_get(o, "dead")) || ctl_jnull(o, "next_retry_at"))
			ctl_table_add(&t, xstrdup("-"));
		else if (ctl_jnum(o, "_next_in") <= 0)
			ctl_table_add(&t, xstrdup("due"));
		else {
			char *a = ctl_fmt_age(ctl_jnum(o, "_next_in"));

			ctl_table_add(&t, xasprintf("in %s", a));
			free(a);
		}
		ctl_table_add(&t, ctl_cell_text(ctl_jstr(o, "last_error"), 70));
	}
	if (json_array_size(arr) == 0)
		printf("job %s has no %s\n", job, dead ? "dead records" :
		    "records in its retry queue");
	else
		ctl_table_print(&t);
	strlist_free(&t.cells);
	json_decref(arr);
	return 0;
}


const struct ctl_cmd ctl_show_jobs = {
	"jobs", "jobs", "every job: state, lease, watermark, last run, queue sizes",
	0, 0, 0, cmd_jobs
};

const struct ctl_cmd ctl_show_runs = {
	"runs", "runs JOB [-n N]", "the job's last N runs, newest first (default 20)",
	1, 1, CTL_OPT_N, cmd_runs
};

const struct ctl_cmd ctl_show_failures = {
	"failures", "failures JOB [--dead]", "the job's retry queue (--dead: only dead records)",
	1, 1, CTL_OPT_DEAD, cmd_failures
};
