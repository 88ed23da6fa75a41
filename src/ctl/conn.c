/*
 * conn.c - onesyncctl's connection to the state database and everything it prints: one
 * synchronous libpq connection (one statement or one transaction per command, every value
 * a parameter, the schema quoted as an identifier, "@S@" in a statement standing for it),
 * and the output helpers: aligned tables, --json, and the redaction of every cell, JSON
 * value and error a user sees. It knows no command: show.c and steer.c say what to ask.
 *
 * Queries build their answer as JSON in the database (timestamps come out in ISO 8601,
 * ages are computed with the database clock); --json prints it, the text mode lays the
 * same fields out in aligned columns. Fields whose name starts with '_' are for the text
 * mode only and are dropped from the JSON output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "config/load.h"
#include "core/escape.h"
#include "config/model.h"
#include "core/redact.h"
#include "core/util.h"
#include "ctl/conn.h"

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
char *
ctl_cell_text(const char *text, size_t max)
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

void
ctl_table_add(struct ctl_table *t, char *cell)
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

void
ctl_table_print(struct ctl_table *t)
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
char *
ctl_fmt_age(double secs)
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
char *
ctl_fmt_duration(double secs)
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

const char *
ctl_jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

bool
ctl_jnull(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return v == NULL || json_is_null(v);
}

double
ctl_jnum(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

/* The text of a scalar field: strings as they are, numbers and booleans printed, null "-". */
char *
ctl_jtext(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (v == NULL || json_is_null(v))
		return xstrdup("-");
	if (json_is_string(v))
		return ctl_cell_text(json_string_value(v), 0);
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

void
ctl_print_json(json_t *v)
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
	fprintf(stderr, "%s: %s: %s\n", CTL_PROG, what, msg);
	free(msg);
	return PQstatus(ctl->pg) == CONNECTION_OK ? CTL_EX_FAILED : EX_UNAVAILABLE;
}

/*
 * Run one statement ("@S@" = the schema); NULL on failure with *rc set (and the error
 * printed). Text parameters, text results.
 */
PGresult *
ctl_q(struct ctl *ctl, const char *what, const char *sql, int n, const char *const *v, int *rc)
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
json_t *
ctl_q_json(struct ctl *ctl, const char *what, const char *sql, int n, const char *const *v,
    int *rc)
{
	PGresult *res = ctl_q(ctl, what, sql, n, v, rc);
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
		    CTL_PROG, what, jerr.text);
		*rc = CTL_EX_FAILED;
	}
	return j;
}

/* Statements without parameters or results (BEGIN, COMMIT, SET). */
bool
ctl_tx(struct ctl *ctl, const char *sql, int *rc)
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

void
ctl_rollback(struct ctl *ctl)
{
	PQclear(PQexec(ctl->pg, "ROLLBACK"));
}

int
ctl_connect(struct ctl *ctl)
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
		fprintf(stderr, "%s: cannot connect to the state database (%s): %s\n", CTL_PROG,
		    red, msg);
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
	if (!ctl_tx(ctl, "SET lock_timeout = '10s'; SET statement_timeout = '60s'", &rc))
		return rc;
	res = ctl_q(ctl, "looking for the state schema",
	    "SELECT to_regclass('@S@.jobs') IS NOT NULL", 0, NULL, &rc);
	if (res == NULL)
		return rc;
	ctl->have_schema = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return 0;
}

/* Write commands need the tables, which only onesyncd creates. */
int
ctl_need_schema(const struct ctl *ctl)
{
	if (ctl->have_schema)
		return 0;
	fprintf(stderr, "%s: the state schema %s does not exist yet in the state database "
	    "(onesyncd creates it when it first starts)\n", CTL_PROG, ctl->schema);
	return CTL_EX_FAILED;
}

/* The job is configured, or known to the state database; otherwise say which are. */
bool
ctl_has_table(struct ctl *ctl, const char *table)
{
	char *name = xasprintf("%s.%s", ctl->schema, table);
	const char *v[] = { name };
	PGresult *res;
	bool yes;
	int rc = 0;

	res = ctl_q(ctl, "looking for a table", "SELECT to_regclass($1) IS NOT NULL", 1, v, &rc);
	free(name);
	yes = res != NULL && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return yes;
}

int
ctl_check_job(struct ctl *ctl, const char *job)
{
	const char *v[] = { job };
	PGresult *res;
	struct buf b;
	int rc = 0;

	if (config_job(ctl->cfg, job) != NULL)
		return 0;
	if (ctl->have_schema) {
		res = ctl_q(ctl, "looking up the job", "SELECT 1 FROM @S@.jobs WHERE name = $1",
		    1, v, &rc);
		if (res == NULL)
			return rc;
		rc = PQntuples(res) > 0 ? 0 : CTL_EX_FAILED;
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
		fprintf(stderr, "%s: no job named %s (no jobs configured in %s)\n", CTL_PROG, job,
		    ctl->path);
	else
		fprintf(stderr, "%s: no job named %s (configured jobs: %s)\n", CTL_PROG, job,
		    b.data);
	buf_free(&b);
	return CTL_EX_FAILED;
}

