/*
 * steer.c - the commands of onesyncctl that change the state of a job: retry, reset, run,
 * pause, resume. Each is one statement or one transaction on the state database, which
 * the daemon reads on its next claim or run (run also wakes the instances with a NOTIFY);
 * nothing here talks to a daemon directly. A reset fences out a run in flight (a new
 * epoch) rather than waiting for it; it never drops the lease. All need the state tables,
 * which only onesyncd creates.
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config/load.h"
#include "config/model.h"
#include "core/util.h"
#include "ctl/conn.h"
#include "ctl/steer.h"

#define RUN_CHANNEL	"onesync_run"

/* ---- retry ---- */

static int
cmd_retry(struct ctl *ctl, const struct ctl_args *args)
{
	const char *job = args->job;
	char **keys = args->keys;
	int nkeys = args->nkeys;
	json_t *given = json_array(), *found, *missing = json_array(), *out, *e;
	char *givenj;
	const char *v[2];
	size_t i;
	int rc = 0;

	if ((rc = ctl_need_schema(ctl)) != 0)
		return rc;
	for (int k = 0; k < nkeys; k++)
		json_array_append_new(given, json_string(keys[k]));
	givenj = json_dumps(given, JSON_COMPACT);
	v[0] = job;
	v[1] = nkeys > 0 ? givenj : NULL;
	found = ctl_q_json(ctl, "retrying",
	    "WITH u AS (UPDATE @S@.failures SET dead = false, next_retry_at = now()\n"
	    "  WHERE job = $1 AND ($2::jsonb IS NULL OR key IN\n"
	    "        (SELECT jsonb_array_elements_text($2::jsonb)))\n"
	    "  RETURNING key)\n"
	    "SELECT COALESCE(json_agg(key ORDER BY key), '[]'::json) FROM u", 2, v, &rc);
	free(givenj);
	if (found == NULL) {
		json_decref(given);
		json_decref(missing);
		return rc;
	}
	json_array_foreach(given, i, e) {
		bool hit = false;
		size_t j;
		json_t *f;

		json_array_foreach(found, j, f)
			if (json_equal(f, e))
				hit = true;
		json_array_foreach(missing, j, f)
			if (json_equal(f, e))
				hit = true;
		if (!hit)
			json_array_append(missing, e);
	}
	json_decref(given);
	json_array_foreach(missing, i, e)
		fprintf(stderr, "%s: no record with key %s in the retry queue of job %s\n",
		    CTL_PROG, json_string_value(e), job);
	if (ctl->json) {
		out = json_pack("{s:s, s:I, s:O, s:O}", "job", job,
		    "retried", (json_int_t)json_array_size(found), "keys", found,
		    "missing", missing);
		ctl_print_json(out);
		json_decref(out);
	} else if (json_array_size(found) == 1)
		printf("1 record of job %s is due now\n", job);
	else
		printf("%zu records of job %s are due now\n", json_array_size(found), job);
	rc = json_array_size(missing) > 0 ? CTL_EX_FAILED : 0;
	json_decref(found);
	json_decref(missing);
	return rc;
}

/* ---- reset ---- */

/* Who is asking: the sudo user if any, else the effective user. */
static char *
who(void)
{
	const char *u = getenv("SUDO_USER");
	struct passwd *pw;

	if (u == NULL || *u == '\0') {
		pw = getpwuid(geteuid());
		u = pw != NULL ? pw->pw_name : NULL;
	}
	return u != NULL ? xstrdup(u) : xasprintf("uid%ld", (long)geteuid());
}

static char *
host_name(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	return xstrdup(host);
}

/* On a terminal, ask for the job name; true when it was typed. */
static bool
confirm(const char *job)
{
	char line[1024];

	fprintf(stderr, "reset job %s: the next run reads everything again. "
	    "Type the job name to confirm: ", job);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, job) == 0;
}

static long long
affected(PGresult *res)
{
	return strtoll(PQcmdTuples(res), NULL, 10);
}

/*
 * Forget the definition the job's state was written with (the next claim stores the one
 * it runs with): 1 when it differed from the configured one, 0 if not (or the job is not
 * configured), -1 on error.
 */
static int
reset_identity(struct ctl *ctl, const char *job, int *rc)
{
	const struct job_conf *jc = config_job(ctl->cfg, job);
	const char *v[] = { job };
	PGresult *res;
	int changed;

	res = ctl_q(ctl, "looking for job identities", "SELECT EXISTS (SELECT 1 FROM pg_attribute "
	    "WHERE attrelid = '@S@.jobs'::regclass AND attname = 'identity' AND NOT attisdropped)",
	    0, NULL, rc);
	if (res == NULL)
		return -1;
	changed = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : -2;
	PQclear(res);
	if (changed == -2)
		return 0;	/* a state schema older than job identities */
	res = ctl_q(ctl, "forgetting the job's definition",
	    "UPDATE @S@.jobs j SET identity = NULL, definition = NULL "
	    "FROM (SELECT identity FROM @S@.jobs WHERE name = $1) o "
	    "WHERE j.name = $1 RETURNING o.identity", 1, v, rc);
	if (res == NULL)
		return -1;
	changed = jc != NULL && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) &&
	    strcmp(PQgetvalue(res, 0, 0), jc->identity) != 0;
	PQclear(res);
	return changed;
}

/* What one reset did, for its report. */
struct reset {
	const char	*job;
	bool		 failures;	/* the retry queue is emptied too */
	char		*user;
	char		*instance;	/* its runs row: "onesyncctl:USER@HOST" */
	char		*error;
	char		*fence_err;	/* for the row of a run in flight */
	char		*wm_before;	/* the watermark cleared, or NULL */
	long long	 fenced;	/* the run in flight fenced out, or 0 */
	char		*fenced_inst;
	int		 changed;	/* the definition had changed */
	long long	 seen, unmarked;	/* rows forgotten */
	long long	 records, failed;	/* rows forgotten, -1 when not touched */
	long long	 run;		/* the id of its runs row */
};

/* Without --yes, the job name typed on a terminal: 0, or the exit code. */
static int
reset_confirm(const char *job, bool yes)
{
	if (yes)
		return 0;
	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr, "%s: reset job %s: standard input is not a terminal; "
		    "confirm with --yes\n", CTL_PROG, job);
		return EX_USAGE;
	}
	if (!confirm(job)) {
		fprintf(stderr, "%s: the name did not match; job %s is not reset\n", CTL_PROG,
		    job);
		return CTL_EX_FAILED;
	}
	return 0;
}

/* Who resets, and the texts its rows carry. */
static void
reset_init(struct reset *r, const char *job, bool failures)
{
	char *h;

	memset(r, 0, sizeof(*r));
	r->job = job;
	r->failures = failures;
	r->records = r->failed = -1;
	r->user = who();
	h = host_name();
	r->instance = xasprintf("onesyncctl:%s@%s", r->user, h);
	free(h);
	r->error = xasprintf("reset by %s", r->user);
	r->fence_err = xasprintf("fenced out: job reset by %s while this run was in flight",
	    r->user);
}

static void
reset_free(struct reset *r)
{
	free(r->user);
	free(r->instance);
	free(r->error);
	free(r->fence_err);
	free(r->wm_before);
	free(r->fenced_inst);
}

/*
 * In the transaction: lock the job's row, fence out a run in flight with a new epoch and
 * forget the definition the state was written with. False on error (*rc set).
 */
static bool
reset_fence(struct ctl *ctl, struct reset *r, int *rc)
{
	const char *v[] = { r->job };
	PGresult *res;

	/* the lease row, locked: fenced writes of a run in flight wait behind us */
	res = ctl_q(ctl, "locking the job", "SELECT watermark FROM @S@.jobs WHERE name = $1 "
	    "FOR UPDATE", 1, v, rc);
	if (res == NULL)
		return false;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		r->wm_before = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	/*
	 * A run in flight would put its watermark back at its next checkpoint: a new
	 * epoch fences it out (its writes fail with "lease lost"), and its row says so.
	 */
	res = ctl_q(ctl, "looking for a run in flight",
	    "SELECT id, instance FROM @S@.runs WHERE job = $1 AND result = 'running' "
	    "ORDER BY id DESC LIMIT 1", 1, v, rc);
	if (res == NULL)
		return false;
	if (PQntuples(res) > 0) {
		r->fenced = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		r->fenced_inst = xstrdup(PQgetvalue(res, 0, 1));
	}
	PQclear(res);
	/*
	 * A new epoch fences the holder out, but the lease itself stays until it lapses:
	 * the run in flight stops at its next write or renewal, before its lease ends,
	 * and no other process may start one meanwhile. The holder itself may claim
	 * again at once (one run per job in a process), and that claim stores the
	 * definition the state is written with from now on.
	 */
	res = ctl_q(ctl, "fencing out the lease holder",
	    "UPDATE @S@.jobs SET epoch = epoch + 1 WHERE name = $1", 1, v, rc);
	if (res == NULL)
		return false;
	PQclear(res);
	if ((r->changed = reset_identity(ctl, r->job, rc)) < 0)
		return false;
	if (r->changed > 0)
		r->failures = true;	/* queued payloads of the old definition */
	if (r->fenced != 0) {
		const char *v2[] = { r->job, r->fence_err };

		/* Its row stays 'running' (it is still running, fenced): the next run
		 * start closes it, so the history shows no overlap that was not there. */
		res = ctl_q(ctl, "marking the run in flight",
		    "UPDATE @S@.runs SET error = $2 WHERE job = $1 AND result = 'running'",
		    2, v2, rc);
		if (res == NULL)
			return false;
		PQclear(res);
	}
	return true;
}

/* One DELETE of the job's rows: how many went, or -1 on error (*rc set). */
static long long
reset_delete(struct ctl *ctl, const char *what, const char *sql, const char *job, int *rc)
{
	const char *v[] = { job };
	PGresult *res = ctl_q(ctl, what, sql, 1, v, rc);
	long long n;

	if (res == NULL)
		return -1;
	n = affected(res);
	PQclear(res);
	return n;
}

/*
 * In the transaction, after reset_fence: forget the watermark, the seen, unmarked and
 * captured records (and the retry queue when asked). False on error (*rc set).
 */
static bool
reset_forget(struct ctl *ctl, struct reset *r, int *rc)
{
	const char *v[] = { r->job };
	PGresult *res;
	bool have_records;

	res = ctl_q(ctl, "clearing the watermark",
	    "UPDATE @S@.jobs SET watermark = NULL, watermark_ns = NULL, watermark_key = NULL, "
	    "updated_at = now() WHERE name = $1", 1, v, rc);
	if (res == NULL)
		return false;
	PQclear(res);
	if ((r->seen = reset_delete(ctl, "forgetting the seen records",
	    "DELETE FROM @S@.seen WHERE job = $1", r->job, rc)) < 0)
		return false;
	if ((r->unmarked = reset_delete(ctl, "forgetting the unmarked records",
	    "DELETE FROM @S@.unmarked WHERE job = $1", r->job, rc)) < 0)
		return false;
	res = ctl_q(ctl, "looking for the records table",
	    "SELECT to_regclass('@S@.records') IS NOT NULL", 0, NULL, rc);
	if (res == NULL)
		return false;
	have_records = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (have_records && (r->records = reset_delete(ctl, "forgetting the captured records",
	    "DELETE FROM @S@.records WHERE job = $1", r->job, rc)) < 0)
		return false;
	if (r->failures && (r->failed = reset_delete(ctl, "emptying the retry queue",
	    "DELETE FROM @S@.failures WHERE job = $1", r->job, rc)) < 0)
		return false;
	return true;
}

/* In the transaction: the reset's own row in the job's history. */
static bool
reset_record(struct ctl *ctl, struct reset *r, int *rc)
{
	const char *v[] = { r->job, r->instance, r->wm_before, r->error };
	PGresult *res;

	res = ctl_q(ctl, "recording the reset",
	    "INSERT INTO @S@.runs (job, instance, epoch, started_at, finished_at, result, "
	    "watermark_before, watermark_after, error) "
	    "VALUES ($1, $2, 0, now(), now(), 'reset', $3, NULL, $4) RETURNING id",
	    4, v, rc);
	if (res == NULL)
		return false;
	r->run = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

static void
reset_print(const struct ctl *ctl, const struct reset *r)
{
	const char *job = r->job, *wm_before = r->wm_before;

	if (ctl->json) {
		json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s?, s:I, s:I}", "job", job,
		    "run", (json_int_t)r->run, "by", r->user, "instance", r->instance,
		    "watermark_before", wm_before,
		    "seen_deleted", (json_int_t)r->seen,
		    "unmarked_deleted", (json_int_t)r->unmarked);

		json_object_set_new(o, "records_deleted", r->records >= 0 ?
		    json_integer(r->records) : json_null());
		json_object_set_new(o, "failures_deleted", r->failed >= 0 ?
		    json_integer(r->failed) : json_null());
		json_object_set_new(o, "fenced_run", r->fenced != 0 ? json_integer(r->fenced) :
		    json_null());
		json_object_set_new(o, "definition_changed", json_boolean(r->changed > 0));
		ctl_print_json(o);
		json_decref(o);
		return;
	}
	printf("job %s reset (run #%lld): watermark cleared%s%s%s, %lld seen and %lld "
	    "unmarked rows forgotten", job, r->run, wm_before != NULL ? " (was " : "",
	    wm_before != NULL ? wm_before : "", wm_before != NULL ? ")" : "", r->seen,
	    r->unmarked);
	if (r->records >= 0)
		printf(", %lld captured records forgotten", r->records);
	if (r->failed >= 0)
		printf(", %lld records removed from the retry queue", r->failed);
	printf("; the next run reads everything again\n");
	if (r->fenced != 0)
		printf("run #%lld in flight on %s was fenced out\n", r->fenced, r->fenced_inst);
	if (r->changed > 0)
		printf("its definition had changed: the retry queue of the old one was "
		    "emptied too; the next run stores the new definition\n");
}

/*
 * Forget the job's watermark and memory in one transaction that holds its row: a run in
 * flight is fenced out, the reset has its own row in the history.
 */
static int
cmd_reset(struct ctl *ctl, const struct ctl_args *args)
{
	struct reset r;
	int rc;

	if ((rc = ctl_need_schema(ctl)) != 0)
		return rc;
	if ((rc = reset_confirm(args->job, args->yes)) != 0)
		return rc;
	reset_init(&r, args->job, args->failures);
	if (!ctl_tx(ctl, "BEGIN", &rc))
		goto out;
	if (!reset_fence(ctl, &r, &rc) || !reset_forget(ctl, &r, &rc) ||
	    !reset_record(ctl, &r, &rc)) {
		ctl_rollback(ctl);
		goto out;
	}
	if (!ctl_tx(ctl, "COMMIT", &rc))
		goto out;
	reset_print(ctl, &r);
	rc = 0;
out:
	reset_free(&r);
	return rc;
}

/* ---- run, pause, resume ---- */

/* In a transaction: the job's row, for a job no instance has claimed yet. */
static bool
add_job(struct ctl *ctl, const char *job, int *rc)
{
	const char *v[] = { job };
	PGresult *res = ctl_q(ctl, "adding the job",
	    "INSERT INTO @S@.jobs (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, v, rc);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

static int
cmd_run(struct ctl *ctl, const struct ctl_args *args)
{
	const char *job = args->job;
	const char *v[] = { job };
	json_t *o;
	int rc = 0;

	if ((rc = ctl_need_schema(ctl)) != 0)
		return rc;
	if (!ctl_tx(ctl, "BEGIN", &rc))
		return rc;
	if (!add_job(ctl, job, &rc))
		goto fail;
	o = ctl_q_json(ctl, "requesting the run",
	    "UPDATE @S@.jobs SET run_requested_at = now() WHERE name = $1 RETURNING "
	    "json_build_object('job', name, 'run_requested_at', run_requested_at, "
	    "'paused', paused, 'lease_owner', owner, "
	    "'lease_live', COALESCE(owner IS NOT NULL AND lease_until > now(), false))",
	    1, v, &rc);
	if (o == NULL)
		goto fail;
	{
		PGresult *res = ctl_q(ctl, "notifying the instances",
		    "SELECT pg_notify('" RUN_CHANNEL "', $1)", 1, v, &rc);

		if (res == NULL) {
			json_decref(o);
			goto fail;
		}
		PQclear(res);
	}
	if (!ctl_tx(ctl, "COMMIT", &rc)) {
		json_decref(o);
		return rc;
	}
	if (config_job(ctl->cfg, job) == NULL)
		fprintf(stderr, "%s: warning: job %s is not in %s: only an instance whose "
		    "configuration has it will run it\n", CTL_PROG, job, ctl->path);
	if (json_is_true(json_object_get(o, "paused")))
		fprintf(stderr, "%s: warning: job %s is paused: no run starts until "
		    "'onesyncctl resume %s'\n", CTL_PROG, job, job);
	if (ctl->json)
		ctl_print_json(o);
	else if (json_is_true(json_object_get(o, "lease_live")))
		printf("run of job %s requested: %s, which holds its lease, starts it\n", job,
		    ctl_jstr(o, "lease_owner"));
	else
		printf("run of job %s requested: the instance that takes its lease starts it\n",
		    job);
	json_decref(o);
	return 0;
fail:
	ctl_rollback(ctl);
	return rc;
}

/* Pause or resume the job. */
static int
pause_set(struct ctl *ctl, const char *job, bool pause)
{
	const char *v[] = { job, pause ? "true" : "false" };
	json_t *o;
	bool was;
	int rc = 0;

	if ((rc = ctl_need_schema(ctl)) != 0)
		return rc;
	if (!ctl_tx(ctl, "BEGIN", &rc))
		return rc;
	if (!add_job(ctl, job, &rc))
		goto fail;
	o = ctl_q_json(ctl, pause ? "pausing the job" : "resuming the job",
	    "UPDATE @S@.jobs j SET paused = $2::boolean FROM "
	    "(SELECT paused FROM @S@.jobs WHERE name = $1 FOR UPDATE) old "
	    "WHERE j.name = $1 RETURNING json_build_object('job', j.name, 'paused', j.paused, "
	    "'changed', old.paused <> j.paused)", 2, v, &rc);
	if (o == NULL)
		goto fail;
	if (!ctl_tx(ctl, "COMMIT", &rc)) {
		json_decref(o);
		return rc;
	}
	was = !json_is_true(json_object_get(o, "changed"));
	if (ctl->json)
		ctl_print_json(o);
	else if (was)
		printf("job %s was %s\n", job, pause ? "already paused" : "not paused");
	else if (pause)
		printf("job %s paused: no instance starts it until 'onesyncctl resume %s' "
		    "(a run in flight finishes)\n", job, job);
	else
		printf("job %s resumed\n", job);
	json_decref(o);
	return 0;
fail:
	ctl_rollback(ctl);
	return rc;
}

static int
cmd_pause(struct ctl *ctl, const struct ctl_args *args)
{
	return pause_set(ctl, args->job, true);
}

static int
cmd_resume(struct ctl *ctl, const struct ctl_args *args)
{
	return pause_set(ctl, args->job, false);
}

const struct ctl_cmd ctl_steer_retry = {
	"retry", "retry JOB [KEY...]",
	"make the job's failed records (or the given keys) due now",
	1, -1, 0, cmd_retry
};

const struct ctl_cmd ctl_steer_reset = {
	"reset", "reset JOB [--failures] [--yes]",
	"forget the job's watermark and memory: the next run\n"
	"reads everything again (--failures: the queue too)",
	1, 1, CTL_OPT_RESET, cmd_reset
};

const struct ctl_cmd ctl_steer_run = {
	"run", "run JOB", "ask the instance holding the job to run it now",
	1, 1, 0, cmd_run
};

/* One line of the usage for both. */
const struct ctl_cmd ctl_steer_pause = {
	"pause", "pause JOB | resume JOB", "stop or restart scheduling the job",
	1, 1, 0, cmd_pause
};

const struct ctl_cmd ctl_steer_resume = {
	"resume", NULL, NULL, 1, 1, 0, cmd_resume
};
