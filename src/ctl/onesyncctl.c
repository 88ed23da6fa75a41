/*
 * onesyncctl.c - the admin tool: look at and steer the jobs of onesyncd through the state
 * database (DESIGN.md §10). It reads the daemon's configuration file for state.conninfo,
 * state.schema and the job names, and talks to PostgreSQL with plain synchronous libpq:
 * one connection, one statement or one transaction per command. Every value goes in as a
 * parameter; the schema name is quoted as an identifier.
 *
 * Queries build their answer as JSON in the database (timestamps come out in ISO 8601,
 * ages are computed with the database clock); --json prints it, the text mode lays the
 * same fields out in aligned columns. Fields whose name starts with '_' are for the text
 * mode only and are dropped from the JSON output.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config/model.h"
#include "config/identity.h"
#include "config/load.h"
#include "core/escape.h"
#include "core/redact.h"
#include "core/util.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/onesyncd/onesyncd.conf"
#define RUN_CHANNEL	"onesync_run"
#define EX_FAILED	1

struct ctl {
	const char	*path;
	struct config	*cfg;
	PGconn		*pg;
	char		*schema;	/* quoted identifier */
	bool		 have_schema;	/* the state tables exist */
	bool		 json;
};

static const char *prog = "onesyncctl";

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: onesyncctl [-c FILE] [--json] COMMAND [ARGS]\n"
	    "commands:\n"
	    "  jobs                    every job: state, lease, watermark, last run, queue sizes\n"
	    "  runs JOB [-n N]         the job's last N runs, newest first (default 20)\n"
	    "  failures JOB [--dead]   the job's retry queue (--dead: only dead records)\n"
	    "  retry JOB [KEY...]      make the job's failed records (or the given keys) due now\n"
	    "  reset JOB [--failures] [--yes]\n"
	    "                          forget the job's watermark and memory: the next run\n"
	    "                          reads everything again (--failures: the queue too)\n"
	    "  run JOB                 ask the instance holding the job to run it now\n"
	    "  pause JOB | resume JOB  stop or restart scheduling the job\n"
	    "options:\n"
	    "  -c, --config FILE       configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -j, --json              machine-readable output\n"
	    "      --version           print the version and exit\n"
	    "  -h, --help              this text\n"
	    "exit: 0 ok, 1 failed or not found, 64 usage, 69 state database unreachable,\n"
	    "      78 configuration error. See onesyncctl(1).\n");
}

/* ---- output helpers ---- */

/* Display width of UTF-8 text: code points (no wide-character table). */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* A copy fit for one cell: redacted, control characters become spaces, cut to max code
 * points (after the redaction: a secret cut in two would escape the registry). */
static char *
cell_text(const char *text, size_t max)
{
	struct buf b;
	size_t w = 0;
	char *red = redact_text(text != NULL ? text : "-");
	const char *s;

	buf_init(&b);
	buf_adds(&b, "");
	for (s = red; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c & 0xc0) != 0x80) {
			if (max > 0 && w == max) {
				/* drop the rest; keep the last three places for "..." */
				size_t cut = b.len, n = 0;

				while (cut > 0 && n < 3) {
					cut--;
					if (((unsigned char)b.data[cut] & 0xc0) != 0x80)
						n++;
				}
				b.len = cut;
				b.data[cut] = '\0';
				buf_adds(&b, "...");
				break;
			}
			w++;
		}
		buf_addc(&b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	free(red);
	return buf_steal(&b);
}

struct table {
	size_t		 ncol;
	const char	*const *hdr;
	const char	*right;		/* per column: 'r' right-aligned, else left */
	struct strlist	 cells;
};

static void
table_add(struct table *t, char *cell)
{
	struct buf b;

	/* every cell a user sees: redacted, one line */
	cell = redact_text_free(cell);
	buf_init(&b);
	buf_adds(&b, "");
	escape_controls(&b, cell);
	free(cell);
	strlist_add(&t->cells, buf_steal(&b));
}

static void
table_print(struct table *t)
{
	size_t *w = xcalloc(t->ncol, sizeof(*w));
	size_t nrows = t->cells.n / t->ncol;

	for (size_t c = 0; c < t->ncol; c++)
		w[c] = text_width(t->hdr[c]);
	for (size_t i = 0; i < t->cells.n; i++) {
		size_t cw = text_width(t->cells.v[i]);

		if (cw > w[i % t->ncol])
			w[i % t->ncol] = cw;
	}
	for (size_t r = 0; r <= nrows; r++) {
		struct buf line;

		buf_init(&line);
		buf_adds(&line, "");
		for (size_t c = 0; c < t->ncol; c++) {
			const char *s = r == 0 ? t->hdr[c] : t->cells.v[(r - 1) * t->ncol + c];
			size_t pad = w[c] - text_width(s);
			bool right = t->right != NULL && t->right[c] == 'r';

			if (c > 0)
				buf_adds(&line, "  ");
			if (right)
				for (size_t i = 0; i < pad; i++)
					buf_addc(&line, ' ');
			buf_adds(&line, s);
			if (!right && c + 1 < t->ncol)
				for (size_t i = 0; i < pad; i++)
					buf_addc(&line, ' ');
		}
		while (line.len > 0 && line.data[line.len - 1] == ' ')
			line.data[--line.len] = '\0';
		puts(line.data);
		buf_free(&line);
	}
	free(w);
	strlist_free(&t->cells);
}

/* "42s", "5m", "3h", "2d" */
static char *
fmt_age(double secs)
{
	long s = secs < 0 ? 0 : (long)secs;

	if (s < 60)
		return xasprintf("%lds", s);
	if (s < 3600)
		return xasprintf("%ldm", s / 60);
	if (s < 86400)
		return xasprintf("%ldh", s / 3600);
	return xasprintf("%ldd", s / 86400);
}

/* "850ms", "12.3s", "3m04s", "1h02m" */
static char *
fmt_duration(double secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 1)
		return xasprintf("%ldms", (long)(secs * 1000 + 0.5));
	if (secs < 60)
		return xasprintf("%.1fs", secs);
	if (secs < 3600)
		return xasprintf("%ldm%02lds", (long)secs / 60, (long)secs % 60);
	return xasprintf("%ldh%02ldm", (long)secs / 3600, ((long)secs % 3600) / 60);
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool
jnull(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v == NULL || json_is_null(v);
}

static double
jnum(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* The text of a scalar field: strings as they are, numbers and booleans printed, null "-". */
static char *
jtext(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return cell_text(json_string_value(v), 0);
	if (json_is_integer(v))
		return xasprintf("%lld", (long long)json_integer_value(v));
	if (json_is_real(v))
		return xasprintf("%g", json_real_value(v));
	if (json_is_boolean(v))
		return xstrdup(json_is_true(v) ? "yes" : "no");
	return json_dumps(v, JSON_COMPACT);
}

/*
 * Drop the text-only fields ("_name") of the answer: the keys of the top-level object, or
 * of the objects of the top-level array. Values are not entered: a stored record (payload)
 * keeps its own "_id".
 */
static void
strip_private(json_t *v)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;

		json_array_foreach(v, i, e)
			if (json_is_object(e))
				strip_private(e);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		void *tmp;

		json_object_foreach_safe(v, tmp, k, e)
			if (k[0] == '_')
				json_object_del(v, k);
	}
}

static void
print_json(json_t *v)
{
	char *s;

	strip_private(v);
	/* the values redacted, never the text: keys and numbers stay, the output stays JSON */
	redact_json(v);
	/* JSON escapes control characters itself */
	s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(12));
	puts(s);
	free(s);
}

/* ---- the state database ---- */

/* Replace every "@S@" with the quoted schema name. */
static char *
subst(const struct ctl *ctl, const char *sql)
{
	struct buf b;
	const char *p;

	buf_init(&b);
	buf_adds(&b, "");
	while ((p = strstr(sql, "@S@")) != NULL) {
		buf_add(&b, sql, (size_t)(p - sql));
		buf_adds(&b, ctl->schema);
		sql = p + 3;
	}
	buf_adds(&b, sql);
	return buf_steal(&b);
}

static void
trim_nl(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

/* The exit code for a failed statement: the connection is gone, or the statement failed. */
static int
db_fail(const struct ctl *ctl, const char *what, const PGresult *res)
{
	char *msg = xstrdup(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(ctl->pg));

	trim_nl(msg);
	if (*msg == '\0') {
		free(msg);
		msg = xstrdup(PQerrorMessage(ctl->pg));
		trim_nl(msg);
	}
	msg = redact_text_free(msg);
	fprintf(stderr, "%s: %s: %s\n", prog, what, msg);
	free(msg);
	return PQstatus(ctl->pg) == CONNECTION_OK ? EX_FAILED : EX_UNAVAILABLE;
}

/*
 * Run one statement ("@S@" = the schema); NULL on failure with *rc set (and the error
 * printed). Text parameters, text results.
 */
static PGresult *
q(struct ctl *ctl, const char *what, const char *sql, int n, const char *const *v, int *rc)
{
	char *s = subst(ctl, sql);
	PGresult *res = PQexecParams(ctl->pg, s, n, NULL, v, NULL, NULL, 0);

	free(s);
	if (res == NULL || (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK)) {
		*rc = db_fail(ctl, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* One statement whose first row's first column is JSON: parsed, or NULL with *rc set. */
static json_t *
q_json(struct ctl *ctl, const char *what, const char *sql, int n, const char *const *v,
    int *rc)
{
	PGresult *res = q(ctl, what, sql, n, v, rc);
	json_error_t jerr;
	json_t *j;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0)) {
		PQclear(res);
		return json_null();
	}
	j = json_loads(PQgetvalue(res, 0, 0), JSON_DECODE_ANY, &jerr);
	PQclear(res);
	if (j == NULL) {
		fprintf(stderr, "%s: %s: the database answered JSON that does not parse: %s\n",
		    prog, what, jerr.text);
		*rc = EX_FAILED;
	}
	return j;
}

/* Statements without parameters or results (BEGIN, COMMIT, SET). */
static bool
tx(struct ctl *ctl, const char *sql, int *rc)
{
	PGresult *res = PQexec(ctl->pg, sql);

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
		*rc = db_fail(ctl, sql, res);
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

static void
rollback(struct ctl *ctl)
{
	PQclear(PQexec(ctl->pg, "ROLLBACK"));
}

static int
connect_state(struct ctl *ctl)
{
	char timeout[32];
	int64_t ms = ctl->cfg->state.connect_timeout_ms;
	const char *kw[] = { "connect_timeout", "dbname", "fallback_application_name", NULL };
	const char *val[] = { timeout, ctl->cfg->state.conninfo, "onesyncctl", NULL };
	char *e;
	PGresult *res;
	int rc = 0;

	/* seconds, rounded up; libpq takes at least 2 */
	snprintf(timeout, sizeof(timeout), "%lld", (long long)((ms + 999) / 1000 < 2 ? 2 :
	    (ms + 999) / 1000));
	ctl->pg = PQconnectdbParams(kw, val, 1);
	if (ctl->pg == NULL || PQstatus(ctl->pg) != CONNECTION_OK) {
		char *red = redact_conninfo(ctl->cfg->state.conninfo);
		char *msg = xstrdup(ctl->pg != NULL ? PQerrorMessage(ctl->pg) : "out of memory");

		trim_nl(msg);
		/* libpq may quote the conninfo */
		msg = redact_text_free(msg);
		fprintf(stderr, "%s: cannot connect to the state database (%s): %s\n", prog, red,
		    msg);
		free(red);
		free(msg);
		return EX_UNAVAILABLE;
	}
	e = PQescapeIdentifier(ctl->pg, ctl->cfg->state.schema,
	    strlen(ctl->cfg->state.schema));
	if (e == NULL)
		return db_fail(ctl, "quoting the schema name", NULL);
	ctl->schema = xstrdup(e);
	PQfreemem(e);
	/* never wait long behind a daemon's lock, never hang on a statement */
	if (!tx(ctl, "SET lock_timeout = '10s'; SET statement_timeout = '60s'", &rc))
		return rc;
	res = q(ctl, "looking for the state schema", "SELECT to_regclass('@S@.jobs') IS NOT NULL",
	    0, NULL, &rc);
	if (res == NULL)
		return rc;
	ctl->have_schema = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

/* Write commands need the tables, which only onesyncd creates. */
static int
need_schema(const struct ctl *ctl)
{
	if (ctl->have_schema)
		return 0;
	fprintf(stderr, "%s: the state schema %s does not exist yet in the state database "
	    "(onesyncd creates it when it first starts)\n", prog, ctl->schema);
	return EX_FAILED;
}

/* The job is configured, or known to the state database; otherwise say which are. */
static int
check_job(struct ctl *ctl, const char *job)
{
	const char *v[] = { job };
	PGresult *res;
	struct buf b;
	int rc = 0;

	if (config_job(ctl->cfg, job) != NULL)
		return 0;
	if (ctl->have_schema) {
		res = q(ctl, "looking up the job", "SELECT 1 FROM @S@.jobs WHERE name = $1", 1, v,
		    &rc);
		if (res == NULL)
			return rc;
		rc = PQntuples(res) > 0 ? 0 : EX_FAILED;
		PQclear(res);
		if (rc == 0)
			return 0;
	}
	buf_init(&b);
	buf_adds(&b, "");
	for (size_t i = 0; i < ctl->cfg->njobs; i++) {
		if (i == 20) {
			buf_printf(&b, " and %zu more", ctl->cfg->njobs - 20);
			break;
		}
		buf_printf(&b, "%s%s", i > 0 ? ", " : "", ctl->cfg->jobs[i].name);
	}
	if (ctl->cfg->njobs == 0)
		fprintf(stderr, "%s: no job named %s (no jobs configured in %s)\n", prog, job,
		    ctl->path);
	else
		fprintf(stderr, "%s: no job named %s (configured jobs: %s)\n", prog, job, b.data);
	buf_free(&b);
	return EX_FAILED;
}

static const char *
strategy_name(enum strategy s)
{
	switch (s) {
	case STRAT_FLAG:
		return "flag";
	case STRAT_MODIFIED:
		return "modified";
	case STRAT_CAPTURE:
		return "capture";
	}
	return "?";
}

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
	const struct job_conf *jc = config_job(ctl->cfg, jstr(o, "name"));
	const char *last = jstr(o, "_last_finished"), *state;
	json_t *n = json_object();
	const char *k, *stored = jstr(o, "_identity");
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
	else
		state = "ok";
	json_object_set(n, "name", json_object_get(o, "name"));
	json_object_set_new(n, "configured", json_boolean(jc != NULL));
	json_object_set_new(n, "strategy", jc != NULL ? json_string(strategy_name(jc->strategy)) :
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

static int
cmd_jobs(struct ctl *ctl)
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
		arr = q_json(ctl, "reading the jobs", jobs_sql, 1, v, &rc);
		free(namesj);
		if (arr == NULL) {
			json_decref(names);
			return rc;
		}
	} else {
		fprintf(stderr, "%s: note: the state schema %s does not exist yet (onesyncd "
		    "creates it when it first starts)\n", prog, ctl->schema);
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
		print_json(out);
		json_decref(out);
		return 0;
	}
	struct table t = { NELEM(hdr), hdr, "llllrllrrr", { 0 } };

	json_array_foreach(out, i, o) {
		json_t *lr = json_object_get(o, "last_run");
		const char *st = jstr(o, "state");

		table_add(&t, jtext(o, "name"));
		table_add(&t, jtext(o, "strategy"));
		if (strcmp(st, "definition_changed") == 0)
			table_add(&t, xasprintf("definition changed (%s)", jstr(o,
			    "definition_changed")));
		else
			table_add(&t, xstrdup(strcmp(st, "never_run") == 0 ? "never run" : st));
		if (jnull(o, "lease_owner"))
			table_add(&t, xstrdup("-"));
		else
			table_add(&t, xasprintf("%s (%s)", jstr(o, "lease_owner"),
			    json_is_true(json_object_get(o, "lease_live")) ? "live" : "expired"));
		table_add(&t, jtext(o, "epoch"));
		table_add(&t, jtext(o, "watermark"));
		if (json_is_object(lr)) {
			char *age = fmt_age(jnum(o, "_last_ago"));
			char *res = cell_text(jstr(lr, "result"), 0);

			table_add(&t, xasprintf("#%lld %s %s ago", (long long)json_integer_value(
			    json_object_get(lr, "id")), res, age));
			free(age);
			free(res);
		} else
			table_add(&t, xstrdup("-"));
		table_add(&t, jtext(o, "retry_queue"));
		table_add(&t, jtext(o, "dead"));
		table_add(&t, jtext(o, "unmarked"));
	}
	table_print(&t);
	json_decref(out);
	return 0;
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
cmd_runs(struct ctl *ctl, const char *job, long n)
{
	static const char *const hdr[] = { "ID", "INSTANCE", "EPOCH", "STARTED", "DURATION",
	    "RESULT", "READ", "DELIVERED", "SKIPPED", "FAILED", "WATERMARK AFTER", "ERROR" };
	static const char *const hdr_del[] = { "ID", "INSTANCE", "EPOCH", "STARTED",
	    "DURATION", "RESULT", "READ", "DELIVERED", "SKIPPED", "FAILED", "DELETED",
	    "WATERMARK AFTER", "ERROR" };
	bool show_del = false;
	char nbuf[32];
	const char *v[] = { job, nbuf };
	json_t *arr, *o;
	size_t i;
	int rc = 0;

	snprintf(nbuf, sizeof(nbuf), "%ld", n);
	if (ctl->have_schema) {
		arr = q_json(ctl, "reading the runs", runs_sql, 2, v, &rc);
		if (arr == NULL)
			return rc;
	} else
		arr = json_array();
	if (ctl->json) {
		print_json(arr);
		json_decref(arr);
		return 0;
	}
	/* the DELETED column only for jobs that delete (strategy capture) */
	json_array_foreach(arr, i, o)
		if (jnum(o, "deleted") > 0)
			show_del = true;
	struct table t = { NELEM(hdr), hdr, "rlrlrlrrrrll", { 0 } };

	if (show_del) {
		t.ncol = NELEM(hdr_del);
		t.hdr = hdr_del;
		t.right = "rlrlrlrrrrrll";
	}
	json_array_foreach(arr, i, o) {
		table_add(&t, jtext(o, "id"));
		table_add(&t, jtext(o, "instance"));
		table_add(&t, jtext(o, "epoch"));
		table_add(&t, jtext(o, "_started"));
		if (!jnull(o, "duration_s"))
			table_add(&t, fmt_duration(jnum(o, "duration_s")));
		else if (strcmp(jstr(o, "result"), "running") == 0) {
			char *d = fmt_duration(jnum(o, "_running_for"));

			table_add(&t, xasprintf("%s+", d));
			free(d);
		} else
			table_add(&t, xstrdup("-"));
		table_add(&t, jtext(o, "result"));
		table_add(&t, jtext(o, "read"));
		table_add(&t, jtext(o, "delivered"));
		table_add(&t, jtext(o, "skipped"));
		table_add(&t, jtext(o, "failed"));
		if (show_del)
			table_add(&t, jtext(o, "deleted"));
		table_add(&t, jtext(o, "watermark_after"));
		table_add(&t, cell_text(jstr(o, "error"), 60));
	}
	if (json_array_size(arr) == 0)
		printf("job %s has no runs yet\n", job);
	else
		table_print(&t);
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
cmd_failures(struct ctl *ctl, const char *job, bool dead)
{
	static const char *const hdr[] = { "KEY", "ATTEMPTS", "DEAD", "FIRST FAILED",
	    "LAST FAILED", "NEXT RETRY", "LAST ERROR" };
	const char *v[] = { job, dead ? "true" : "false" };
	json_t *arr, *o;
	size_t i;
	int rc = 0;

	if (ctl->have_schema) {
		arr = q_json(ctl, "reading the retry queue", failures_sql, 2, v, &rc);
		if (arr == NULL)
			return rc;
	} else
		arr = json_array();
	if (ctl->json) {
		print_json(arr);
		json_decref(arr);
		return 0;
	}
	struct table t = { NELEM(hdr), hdr, "lrllll", { 0 } };

	json_array_foreach(arr, i, o) {
		table_add(&t, cell_text(jstr(o, "key"), 40));
		table_add(&t, jtext(o, "attempts"));
		table_add(&t, jtext(o, "dead"));
		table_add(&t, jtext(o, "_first"));
		table_add(&t, jtext(o, "_last"));
		if (json_is_true(json_object_get(o, "dead")) || jnull(o, "next_retry_at"))
			table_add(&t, xstrdup("-"));
		else if (jnum(o, "_next_in") <= 0)
			table_add(&t, xstrdup("due"));
		else {
			char *a = fmt_age(jnum(o, "_next_in"));

			table_add(&t, xasprintf("in %s", a));
			free(a);
		}
		table_add(&t, cell_text(jstr(o, "last_error"), 70));
	}
	if (json_array_size(arr) == 0)
		printf("job %s has no %s\n", job, dead ? "dead records" :
		    "records in its retry queue");
	else
		table_print(&t);
	strlist_free(&t.cells);
	json_decref(arr);
	return 0;
}

/* ---- retry ---- */

static int
cmd_retry(struct ctl *ctl, const char *job, char **keys, int nkeys)
{
	json_t *given = json_array(), *found, *missing = json_array(), *out, *e;
	char *givenj;
	const char *v[2];
	size_t i;
	int rc = 0;

	if ((rc = need_schema(ctl)) != 0)
		return rc;
	for (int k = 0; k < nkeys; k++)
		json_array_append_new(given, json_string(keys[k]));
	givenj = json_dumps(given, JSON_COMPACT);
	v[0] = job;
	v[1] = nkeys > 0 ? givenj : NULL;
	found = q_json(ctl, "retrying",
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
		fprintf(stderr, "%s: no record with key %s in the retry queue of job %s\n", prog,
		    json_string_value(e), job);
	if (ctl->json) {
		out = json_pack("{s:s, s:I, s:O, s:O}", "job", job,
		    "retried", (json_int_t)json_array_size(found), "keys", found,
		    "missing", missing);
		print_json(out);
		json_decref(out);
	} else if (json_array_size(found) == 1)
		printf("1 record of job %s is due now\n", job);
	else
		printf("%zu records of job %s are due now\n", json_array_size(found), job);
	rc = json_array_size(missing) > 0 ? EX_FAILED : 0;
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

	res = q(ctl, "looking for job identities", "SELECT EXISTS (SELECT 1 FROM pg_attribute "
	    "WHERE attrelid = '@S@.jobs'::regclass AND attname = 'identity' AND NOT attisdropped)",
	    0, NULL, rc);
	if (res == NULL)
		return -1;
	changed = strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 0 : -2;
	PQclear(res);
	if (changed == -2)
		return 0;	/* a state schema older than job identities */
	res = q(ctl, "forgetting the job's definition", "UPDATE @S@.jobs j SET identity = NULL, "
	    "definition = NULL FROM (SELECT identity FROM @S@.jobs WHERE name = $1) o "
	    "WHERE j.name = $1 RETURNING o.identity", 1, v, rc);
	if (res == NULL)
		return -1;
	changed = jc != NULL && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) &&
	    strcmp(PQgetvalue(res, 0, 0), jc->identity) != 0;
	PQclear(res);
	return changed;
}

static int
cmd_reset(struct ctl *ctl, const char *job, bool failures, bool yes)
{
	char *user = NULL, *instance = NULL, *error = NULL, *fence_err = NULL;
	long long seen, unmarked, records = -1, failed = -1, run = 0, fenced = 0;
	char *wm_before = NULL, *fenced_inst = NULL;
	bool have_records;
	PGresult *res;
	int rc, changed = 0;

	if ((rc = need_schema(ctl)) != 0)
		return rc;
	if (!yes) {
		if (!isatty(STDIN_FILENO)) {
			fprintf(stderr, "%s: reset job %s: standard input is not a terminal; "
			    "confirm with --yes\n", prog, job);
			return EX_USAGE;
		}
		if (!confirm(job)) {
			fprintf(stderr, "%s: the name did not match; job %s is not reset\n", prog,
			    job);
			return EX_FAILED;
		}
	}
	user = who();
	{
		char *h = host_name();

		instance = xasprintf("onesyncctl:%s@%s", user, h);
		free(h);
	}
	error = xasprintf("reset by %s", user);
	fence_err = xasprintf("fenced out: job reset by %s while this run was in flight", user);
	if (!tx(ctl, "BEGIN", &rc))
		goto out;
	{
		const char *v[] = { job };

		/* the lease row, locked: fenced writes of a run in flight wait behind us */
		res = q(ctl, "locking the job", "SELECT watermark FROM @S@.jobs WHERE name = $1 "
		    "FOR UPDATE", 1, v, &rc);
		if (res == NULL)
			goto fail;
		if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
			wm_before = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		/*
		 * A run in flight would put its watermark back at its next checkpoint: a new
		 * epoch fences it out (its writes fail with "lease lost"), and its row says so.
		 */
		res = q(ctl, "looking for a run in flight",
		    "SELECT id, instance FROM @S@.runs WHERE job = $1 AND result = 'running' "
		    "ORDER BY id DESC LIMIT 1", 1, v, &rc);
		if (res == NULL)
			goto fail;
		if (PQntuples(res) > 0) {
			fenced = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			fenced_inst = xstrdup(PQgetvalue(res, 0, 1));
		}
		PQclear(res);
		/*
		 * A new epoch fences the holder out, but the lease itself stays until it lapses:
		 * the run in flight stops at its next write or renewal, before its lease ends,
		 * and no other process may start one meanwhile. The holder itself may claim
		 * again at once (one run per job in a process), and that claim stores the
		 * definition the state is written with from now on.
		 */
		res = q(ctl, "fencing out the lease holder",
		    "UPDATE @S@.jobs SET epoch = epoch + 1 WHERE name = $1", 1, v, &rc);
		if (res == NULL)
			goto fail;
		PQclear(res);
		if ((changed = reset_identity(ctl, job, &rc)) < 0)
			goto fail;
		if (changed > 0)
			failures = true;	/* queued payloads of the old definition */
		if (fenced != 0) {
			const char *v2[] = { job, fence_err };

			/* Its row stays 'running' (it is still running, fenced): the next run
			 * start closes it, so the history shows no overlap that was not there. */
			res = q(ctl, "marking the run in flight",
			    "UPDATE @S@.runs SET error = $2 WHERE job = $1 AND result = 'running'",
			    2, v2, &rc);
			if (res == NULL)
				goto fail;
			PQclear(res);
		}
		res = q(ctl, "clearing the watermark",
		    "UPDATE @S@.jobs SET watermark = NULL, watermark_ns = NULL, watermark_key = NULL, "
		    "updated_at = now() WHERE name = $1", 1, v, &rc);
		if (res == NULL)
			goto fail;
		PQclear(res);
		res = q(ctl, "forgetting the seen records", "DELETE FROM @S@.seen WHERE job = $1",
		    1, v, &rc);
		if (res == NULL)
			goto fail;
		seen = affected(res);
		PQclear(res);
		res = q(ctl, "forgetting the unmarked records",
		    "DELETE FROM @S@.unmarked WHERE job = $1", 1, v, &rc);
		if (res == NULL)
			goto fail;
		unmarked = affected(res);
		PQclear(res);
		res = q(ctl, "looking for the records table",
		    "SELECT to_regclass('@S@.records') IS NOT NULL", 0, NULL, &rc);
		if (res == NULL)
			goto fail;
		have_records = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		PQclear(res);
		if (have_records) {
			res = q(ctl, "forgetting the captured records",
			    "DELETE FROM @S@.records WHERE job = $1", 1, v, &rc);
			if (res == NULL)
				goto fail;
			records = affected(res);
			PQclear(res);
		}
		if (failures) {
			res = q(ctl, "emptying the retry queue",
			    "DELETE FROM @S@.failures WHERE job = $1", 1, v, &rc);
			if (res == NULL)
				goto fail;
			failed = affected(res);
			PQclear(res);
		}
	}
	{
		const char *v[] = { job, instance, wm_before, error };

		res = q(ctl, "recording the reset",
		    "INSERT INTO @S@.runs (job, instance, epoch, started_at, finished_at, result, "
		    "watermark_before, watermark_after, error) "
		    "VALUES ($1, $2, 0, now(), now(), 'reset', $3, NULL, $4) RETURNING id",
		    4, v, &rc);
		if (res == NULL)
			goto fail;
		run = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	}
	if (!tx(ctl, "COMMIT", &rc))
		goto out;
	if (ctl->json) {
		json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:s?, s:I, s:I}", "job", job,
		    "run", (json_int_t)run, "by", user, "instance", instance,
		    "watermark_before", wm_before,
		    "seen_deleted", (json_int_t)seen, "unmarked_deleted", (json_int_t)unmarked);

		json_object_set_new(o, "records_deleted", records >= 0 ?
		    json_integer(records) : json_null());
		json_object_set_new(o, "failures_deleted", failed >= 0 ?
		    json_integer(failed) : json_null());
		json_object_set_new(o, "fenced_run", fenced != 0 ? json_integer(fenced) :
		    json_null());
		json_object_set_new(o, "definition_changed", json_boolean(changed > 0));
		print_json(o);
		json_decref(o);
	} else {
		printf("job %s reset (run #%lld): watermark cleared%s%s%s, %lld seen and %lld "
		    "unmarked rows forgotten", job, run, wm_before != NULL ? " (was " : "",
		    wm_before != NULL ? wm_before : "", wm_before != NULL ? ")" : "", seen,
		    unmarked);
		if (records >= 0)
			printf(", %lld captured records forgotten", records);
		if (failed >= 0)
			printf(", %lld records removed from the retry queue", failed);
		printf("; the next run reads everything again\n");
		if (fenced != 0)
			printf("run #%lld in flight on %s was fenced out\n", fenced, fenced_inst);
		if (changed > 0)
			printf("its definition had changed: the retry queue of the old one was "
			    "emptied too; the next run stores the new definition\n");
	}
	rc = 0;
	goto out;
fail:
	rollback(ctl);
out:
	free(user);
	free(instance);
	free(error);
	free(fence_err);
	free(wm_before);
	free(fenced_inst);
	return rc;
}

/* ---- run, pause, resume ---- */

static int
cmd_run(struct ctl *ctl, const char *job)
{
	const char *v[] = { job };
	json_t *o;
	int rc = 0;

	if ((rc = need_schema(ctl)) != 0)
		return rc;
	if (!tx(ctl, "BEGIN", &rc))
		return rc;
	{
		PGresult *res = q(ctl, "adding the job",
		    "INSERT INTO @S@.jobs (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, v, &rc);

		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	o = q_json(ctl, "requesting the run",
	    "UPDATE @S@.jobs SET run_requested_at = now() WHERE name = $1 RETURNING "
	    "json_build_object('job', name, 'run_requested_at', run_requested_at, "
	    "'paused', paused, 'lease_owner', owner, "
	    "'lease_live', COALESCE(owner IS NOT NULL AND lease_until > now(), false))",
	    1, v, &rc);
	if (o == NULL)
		goto fail;
	{
		PGresult *res = q(ctl, "notifying the instances",
		    "SELECT pg_notify('" RUN_CHANNEL "', $1)", 1, v, &rc);

		if (res == NULL) {
			json_decref(o);
			goto fail;
		}
		PQclear(res);
	}
	if (!tx(ctl, "COMMIT", &rc)) {
		json_decref(o);
		return rc;
	}
	if (config_job(ctl->cfg, job) == NULL)
		fprintf(stderr, "%s: warning: job %s is not in %s: only an instance whose "
		    "configuration has it will run it\n", prog, job, ctl->path);
	if (json_is_true(json_object_get(o, "paused")))
		fprintf(stderr, "%s: warning: job %s is paused: no run starts until "
		    "'onesyncctl resume %s'\n", prog, job, job);
	if (ctl->json)
		print_json(o);
	else if (json_is_true(json_object_get(o, "lease_live")))
		printf("run of job %s requested: %s, which holds its lease, starts it\n", job,
		    jstr(o, "lease_owner"));
	else
		printf("run of job %s requested: the instance that takes its lease starts it\n",
		    job);
	json_decref(o);
	return 0;
fail:
	rollback(ctl);
	return rc;
}

static int
cmd_pause(struct ctl *ctl, const char *job, bool pause)
{
	const char *v[] = { job, pause ? "true" : "false" };
	json_t *o;
	bool was;
	int rc = 0;

	if ((rc = need_schema(ctl)) != 0)
		return rc;
	if (!tx(ctl, "BEGIN", &rc))
		return rc;
	{
		PGresult *res = q(ctl, "adding the job",
		    "INSERT INTO @S@.jobs (name) VALUES ($1) ON CONFLICT DO NOTHING", 1, v, &rc);

		if (res == NULL)
			goto fail;
		PQclear(res);
	}
	o = q_json(ctl, pause ? "pausing the job" : "resuming the job",
	    "UPDATE @S@.jobs j SET paused = $2::boolean FROM "
	    "(SELECT paused FROM @S@.jobs WHERE name = $1 FOR UPDATE) old "
	    "WHERE j.name = $1 RETURNING json_build_object('job', j.name, 'paused', j.paused, "
	    "'changed', old.paused <> j.paused)", 2, v, &rc);
	if (o == NULL)
		goto fail;
	if (!tx(ctl, "COMMIT", &rc)) {
		json_decref(o);
		return rc;
	}
	was = !json_is_true(json_object_get(o, "changed"));
	if (ctl->json)
		print_json(o);
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
	rollback(ctl);
	return rc;
}

/* ---- command line ---- */

enum cmd { C_JOBS, C_RUNS, C_FAILURES, C_RETRY, C_RESET, C_RUN, C_PAUSE, C_RESUME };

static const struct {
	const char	*name;
	enum cmd	 cmd;
	int		 min, max;	/* arguments after the command; -1 = any */
} commands[] = {
	{ "jobs", C_JOBS, 0, 0 },
	{ "runs", C_RUNS, 1, 1 },
	{ "failures", C_FAILURES, 1, 1 },
	{ "retry", C_RETRY, 1, -1 },
	{ "reset", C_RESET, 1, 1 },
	{ "run", C_RUN, 1, 1 },
	{ "pause", C_PAUSE, 1, 1 },
	{ "resume", C_RESUME, 1, 1 },
};

static int bad_usage(const char *, ...) PRINTF(1, 2);
static int
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'onesyncctl --help'.\n");
	return EX_USAGE;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "dead", no_argument, NULL, 'D' },
		{ "failures", no_argument, NULL, 'F' },
		{ "yes", no_argument, NULL, 'y' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl ctl = { .path = DEFAULT_CONFIG };
	struct strlist errs = { 0 };
	bool dead = false, failures = false, yes = false;
	const char *nopt = NULL, *job;
	long n = 20;
	size_t ci;
	int ch, nargs, rc;

	while ((ch = getopt_long(argc, argv, "c:jn:yh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl.path = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'n':
			nopt = optarg;
			break;
		case 'D':
			dead = true;
			break;
		case 'F':
			failures = true;
			break;
		case 'y':
			yes = true;
			break;
		case 'V':
			printf("onesyncctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'onesyncctl --help'.\n");
			return EX_USAGE;
		}
	}
	if (optind >= argc)
		return bad_usage("a command is missing");
	for (ci = 0; ci < NELEM(commands); ci++)
		if (strcmp(commands[ci].name, argv[optind]) == 0)
			break;
	if (ci == NELEM(commands))
		return bad_usage("unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < commands[ci].min)
		return bad_usage("%s: the job name is missing", commands[ci].name);
	if (commands[ci].max >= 0 && nargs > commands[ci].max)
		return bad_usage("unexpected argument '%s'", argv[optind + 1 + commands[ci].max]);
	if (nopt != NULL && commands[ci].cmd != C_RUNS)
		return bad_usage("-n goes only with the command runs");
	if (dead && commands[ci].cmd != C_FAILURES)
		return bad_usage("--dead goes only with the command failures");
	if ((failures || yes) && commands[ci].cmd != C_RESET)
		return bad_usage("--failures and --yes go only with the command reset");
	if (nopt != NULL) {
		char *end;

		errno = 0;
		n = strtol(nopt, &end, 10);
		if (errno != 0 || end == nopt || *end != '\0' || n < 1 || n > 1000000)
			return bad_usage("-n '%s': a number of runs from 1 to 1000000 is expected",
			    nopt);
	}
	job = nargs > 0 ? argv[optind + 1] : NULL;
	if (job != NULL && *job == '\0')
		return bad_usage("the job name is empty");

	if (config_load(ctl.path, &ctl.cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		strlist_free(&errs);
		return EX_CONFIG;
	}
	rc = connect_state(&ctl);
	if (rc == 0 && job != NULL)
		rc = check_job(&ctl, job);
	if (rc == 0) {
		switch (commands[ci].cmd) {
		case C_JOBS:
			rc = cmd_jobs(&ctl);
			break;
		case C_RUNS:
			rc = cmd_runs(&ctl, job, n);
			break;
		case C_FAILURES:
			rc = cmd_failures(&ctl, job, dead);
			break;
		case C_RETRY:
			rc = cmd_retry(&ctl, job, argv + optind + 2, nargs - 1);
			break;
		case C_RESET:
			rc = cmd_reset(&ctl, job, failures, yes);
			break;
		case C_RUN:
			rc = cmd_run(&ctl, job);
			break;
		case C_PAUSE:
		case C_RESUME:
			rc = cmd_pause(&ctl, job, commands[ci].cmd == C_PAUSE);
			break;
		}
	}
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
		rc = EX_FAILED;
	}
	PQfinish(ctl.pg);
	free(ctl.schema);
	config_free(ctl.cfg);
	return rc;
}
