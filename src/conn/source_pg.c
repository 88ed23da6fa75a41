/*
 * source_pg.c - a PostgreSQL table (or view) as source: one keyset-paged SELECT per page
 * that answers the whole page as one JSON array (json_agg of the rows, plus the database's
 * now()), and the flag strategy's marking as one UPDATE ... FROM json_populate_recordset
 * per batch, compare-and-set on the version field when the job names one. Values always
 * travel as parameters and identifiers are always quoted; the only SQL taken from the
 * configuration as is are the `where` and `pending` conditions. It never logs the conninfo,
 * never frees an object that a query still in the shared pool will answer to, and never
 * calls back before the function that started the work has returned.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"
#include "record/canon.h"
#include "core/log.h"
#include "record/parse.h"
#include "io/pg.h"
#include "conn/source_pg.h"
#include "conn/source_page.h"
#include "core/strmap.h"

/* A page read; struct source_req's head (kind) is what source.c dispatches by. */
struct source_req {
	int		 kind;		/* CONN_POSTGRESQL */
	char		*place;		/* "table orders", for messages (the job may go away) */
	source_cb	 cb;		/* NULL once cancelled */
	void		*arg;
	bool		 starting;	/* inside source_pg_fetch: an answer now is too early */
	char		*early_err;	/* the pool failed the query synchronously */
	bool		 outstanding;	/* the query is in the pool */
	bool		 dead;		/* cancelled while outstanding: the answer frees it */
	bool		 in_cb;		/* calling back: a cancel now only stops the callback */
	struct pg	*pool;
};

struct pg_marker {
	struct source_marker	 base;	/* kind = CONN_POSTGRESQL */
	char			*place;
	struct source_mark_item	*marks;
	size_t			 n;
	source_mark_cb		 cb;	/* NULL once cancelled or called */
	void			*arg;
	struct event		*ev;	/* reports on a fresh loop turn when nothing was sent */
	bool			 starting;
	int			 outstanding;	/* statements in the pool */
	bool			 dead;
	char			*version;	/* flag.version column, for conflict messages */
	char			*sql;
	struct pg		*pool;
	char			**rowtext;	/* per mark: its JSON row, NULL when not sent */
	struct pm_one {
		struct pg_marker *pm;
		ssize_t		  i;	/* the mark, or -1 for the whole batch */
	}			*ones;
};

/* "table orders" */
static char *
place_of(const struct job_conf *job)
{
	return xasprintf("table %s", job->src.table != NULL ? job->src.table : "(none)");
}

/* Append a quoted column name. */
static void
add_ident(struct buf *b, const char *name)
{
	char *q = pg_quote_ident(name, false);

	buf_adds(b, q);
	free(q);
}

/* Whether name is among the configured columns (all columns when none are listed). */
static bool
has_column(const struct source_conf *sc, const char *name)
{
	if (sc->columns == NULL)
		return true;
	for (size_t i = 0; i < sc->ncolumns; i++)
		if (strcmp(sc->columns[i], name) == 0)
			return true;
	return false;
}

/* The select list: the configured columns plus the ones paging and marking need. */
static void
add_select_list(struct buf *b, const struct job_conf *job, const char *field)
{
	const struct source_conf *sc = &job->src;
	const char *extra[3] = { job->key[0], field, job->flag.version };

	if (sc->columns == NULL) {
		buf_adds(b, "*");
		return;
	}
	for (size_t i = 0; i < sc->ncolumns; i++) {
		if (i > 0)
			buf_adds(b, ", ");
		add_ident(b, sc->columns[i]);
	}
	for (size_t i = 0; i < NELEM(extra); i++) {
		bool dup = false;

		if (extra[i] == NULL || has_column(sc, extra[i]))
			continue;
		for (size_t k = 0; k < i; k++)
			if (extra[k] != NULL && strcmp(extra[k], extra[i]) == 0)
				dup = true;
		if (dup)
			continue;
		buf_adds(b, sc->ncolumns > 0 ? ", " : "");
		add_ident(b, extra[i]);
	}
}

/*
 * Build the page statement and its parameters (pointers into rd; the limit and settle
 * texts go to the caller's buffers). Returns the number of parameters.
 */
static int
fetch_sql(const struct job_conf *job, const struct source_pg_read *rd, struct buf *b,
    const char **params, char *settle, size_t settlesz, char *limit, size_t limitsz)
{
	const struct source_conf *sc = &job->src;
	const char *key = job->key[0];
	const char *field = rd->mode == SPG_MODIFIED ? job->modified.field : NULL;
	char *table = pg_quote_ident(sc->table, true), *qkey, *qfield = NULL;
	const char *sep = " WHERE ";
	int np = 0;

	qkey = pg_quote_ident(key, false);
	if (field != NULL)
		qfield = pg_quote_ident(field, false);
	buf_adds(b, "SELECT COALESCE(json_agg(onesync_r.* ORDER BY ");
	if (qfield != NULL)
		buf_printf(b, "onesync_r.%s, ", qfield);
	buf_printf(b, "onesync_r.%s), '[]')::text, to_json(now()) #>> '{}' FROM (SELECT ", qkey);
	add_select_list(b, job, field);
	buf_printf(b, " FROM %s", table);
	if (rd->mode == SPG_MODIFIED) {
		if (rd->from != NULL && rd->after_key != NULL) {
			params[np++] = rd->from;
			params[np++] = rd->after_key;
			buf_printf(b, "%s(%s, %s) > ($%d, $%d)", sep, qfield, qkey, np - 1, np);
			sep = " AND ";
		} else if (rd->from != NULL) {
			params[np++] = rd->from;
			buf_printf(b, "%s%s >= $%d", sep, qfield, np);
			sep = " AND ";
		}
		if (rd->settle_ms > 0) {
			snprintf(settle, settlesz, "%lld", (long long)rd->settle_ms);
			params[np++] = settle;
			buf_printf(b, "%s%s <= now() - $%d::bigint * interval '1 millisecond'", sep,
			    qfield, np);
			sep = " AND ";
		}
	} else if (rd->mode == SPG_PENDING && sc->pending != NULL) {
		buf_printf(b, "%s(%s)", sep, sc->pending);
		sep = " AND ";
	}
	if (sc->where != NULL) {
		buf_printf(b, "%s(%s)", sep, sc->where);
		sep = " AND ";
	}
	if (rd->mode != SPG_MODIFIED && rd->after_key != NULL) {
		params[np++] = rd->after_key;
		buf_printf(b, "%s%s > $%d", sep, qkey, np);
	}
	buf_adds(b, " ORDER BY ");
	if (qfield != NULL)
		buf_printf(b, "%s, ", qfield);
	snprintf(limit, limitsz, "%lld", rd->limit > 0 ? rd->limit : 500LL);
	params[np++] = limit;
	buf_printf(b, "%s LIMIT $%d::bigint) onesync_r", qkey, np);
	free(table);
	free(qkey);
	free(qfield);
	return np;
}

static void
req_free(struct source_req *r)
{
	free(r->place);
	free(r->early_err);
	free(r);
}

/* The page's answer: one row (JSON array text, now() as RFC 3339). */
static void
fetch_answered(const struct pg_result_info *ri, void *arg)
{
	struct source_req *r = arg;
	struct source_page *p = NULL;
	json_error_t je;
	json_t *recs;
	char *err = NULL;

	r->outstanding = false;
	if (r->dead) {
		req_free(r);
		return;
	}
	if (ri->res == NULL)
		err = xasprintf("source database (%s): %s", r->place, ri->err);
	else if (PQntuples(ri->res) != 1 || PQnfields(ri->res) != 2)
		err = xasprintf("source database (%s): the page query answered %d rows of %d "
		    "columns, expected 1 of 2", r->place, PQntuples(ri->res), PQnfields(ri->res));
	else if ((recs = json_load_mended(PQgetvalue(ri->res, 0, 0),
	    strlen(PQgetvalue(ri->res, 0, 0)), 0, &je)) == NULL)
		err = xasprintf("source database (%s): the rows could not be read as JSON: %s",
		    r->place, je.text);
	else {
		p = xcalloc(1, sizeof *p);
		p->records = recs;
		p->date = xstrdup(PQgetvalue(ri->res, 0, 1));
		p->log_url = xstrdup(r->place);
	}
	if (r->starting) {
		/* Only when the pool is shutting down: reported by source_pg_fetch itself. */
		r->early_err = err != NULL ? err : xstrdup("answered too early");
		source_page_free(p);
		return;
	}
	if (r->cb != NULL) {
		r->in_cb = true;
		r->cb(r->arg, err != NULL ? -1 : 0, p, err);
	} else
		source_page_free(p);
	free(err);
	req_free(r);
}

struct source_req *
source_pg_fetch(const struct conn_env *env, const struct job_conf *job,
    const struct source_read *read, source_cb cb, void *arg, char **errp)
{
	const struct source_pg_read *rd = read->pg;
	const char *params[4];
	char settle[32], limit[32];
	struct source_req *r;
	struct buf sql;
	int np;

	if (job->nkey != 1) {
		*errp = xasprintf("source database (table %s): a PostgreSQL source needs exactly "
		    "one key column, the job names %zu", job->src.table, job->nkey);
		return NULL;
	}
	if (rd->mode == SPG_MODIFIED && job->modified.field == NULL) {
		*errp = xasprintf("source database (table %s): modified.field is not set",
		    job->src.table);
		return NULL;
	}
	r = xcalloc(1, sizeof *r);
	r->kind = CONN_POSTGRESQL;
	r->place = place_of(job);
	r->cb = cb;
	r->arg = arg;
	buf_init(&sql);
	np = fetch_sql(job, rd, &sql, params, settle, sizeof settle, limit, sizeof limit);
	log_debug("source database (%s): %s", r->place, sql.data);
	r->starting = true;
	r->outstanding = true;
	r->pool = pg_pools_get(env->pools, job->src.conninfo, job->src.http.timeout_ms);
	pg_query(r->pool, sql.data, np, params, fetch_answered, r);
	r->starting = false;
	buf_free(&sql);
	if (r->early_err != NULL) {
		*errp = r->early_err;
		r->early_err = NULL;
		req_free(r);
		return NULL;
	}
	return r;
}

static bool
same_arg(void *arg, void *ctx)
{
	return arg == ctx;
}

/* Called by source_cancel for a PostgreSQL read: no callback after this. */
void
source_pg_cancel(struct source_req *r)
{
	r->cb = NULL;
	if (r->in_cb)
		return;		/* fetch_answered frees it when the callback returns */
	if (r->outstanding) {
		r->dead = true;
		pg_cancel(r->pool, fetch_answered, same_arg, r);	/* its answer frees it */
		return;
	}
	req_free(r);
}

/* ---- marking ---- */

static void
marker_free(struct pg_marker *pm)
{
	for (size_t i = 0; pm->rowtext != NULL && i < pm->n; i++)
		free(pm->rowtext[i]);
	free(pm->rowtext);
	free(pm->ones);
	free(pm->sql);
	if (pm->ev != NULL)
		event_free(pm->ev);
	free(pm->place);
	free(pm->version);
	free(pm);
}

/* Call back (last thing: the callback may free the marker through source_mark_cancel). */
static void
marker_report(struct pg_marker *pm, int rc, const char *err)
{
	source_mark_cb cb = pm->cb;

	pm->cb = NULL;
	if (cb != NULL)
		cb(pm->arg, rc, err);
}

static void
marker_deferred(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	marker_report(arg, 0, NULL);
}

/* Report on the next loop turn (nothing was sent, or the pool answered synchronously). */
static void
marker_defer(struct pg_marker *pm, struct event_base *base)
{
	static const struct timeval zero = { 0, 0 };

	pm->ev = evtimer_new(base, marker_deferred, pm);
	evtimer_add(pm->ev, &zero);
}

/* Build the marking UPDATE. */
static char *
mark_sql(const struct job_conf *job)
{
	const struct source_conf *sc = &job->src;
	char *table = pg_quote_ident(sc->table, true), *qkey = pg_quote_ident(job->key[0], false);
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "UPDATE %s AS t SET ", table);
	for (size_t i = 0; i < sc->nmark_set; i++) {
		char *q = pg_quote_ident(sc->mark_set[i].column, false);

		buf_printf(&b, "%s%s = m.%s", i > 0 ? ", " : "", q, q);
		free(q);
	}
	buf_printf(&b, " FROM json_populate_recordset(NULL::%s, $1::json) AS m WHERE t.%s = m.%s",
	    table, qkey, qkey);
	if (job->flag.version != NULL) {
		char *q = pg_quote_ident(job->flag.version, false);

		buf_printf(&b, " AND t.%s IS NOT DISTINCT FROM m.%s", q, q);
		free(q);
	}
	/* The key as row_to_json writes it: the same text as the record's key. */
	buf_printf(&b, " RETURNING to_json(t.%s) #>> '{}'", qkey);
	free(table);
	free(qkey);
	return buf_steal(&b);
}

/* Append the JSON row for one mark; -1 and *err when a value cannot be rendered. */
static int
mark_row(struct buf *rows, const struct job_conf *job, struct source_mark_item *m, char **err)
{
	const struct source_conf *sc = &job->src;
	struct tmpl_vals v = { .have = TV_KEY | TV_RECORD, .key = m->key, .record = m->rec,
	    .dest = m->dest };
	struct buf row, val;
	json_t *kv;
	char *e = NULL;
	int rc = 0;

	if (m->dest != NULL)
		v.have |= TV_DEST;
	buf_init(&row);
	buf_init(&val);
	buf_addc(&row, '{');
	jsonx_append_str(&row, job->key[0]);
	buf_addc(&row, ':');
	kv = m->rec != NULL ? json_object_get(m->rec, job->key[0]) : NULL;
	if (kv != NULL && !json_is_null(kv) && (json_is_string(kv) || json_is_integer(kv)))
		jsonx_append(&row, kv);
	else
		jsonx_append_str(&row, m->key);
	for (size_t i = 0; i < sc->nmark_set; i++) {
		buf_reset(&val);
		if (tmpl_render(sc->mark_set[i].value, &v, false, &val, &e) != 0) {
			*err = xasprintf("column %s: %s", sc->mark_set[i].column,
			    e != NULL ? e : "cannot render");
			free(e);
			rc = -1;
			goto out;
		}
		buf_addc(&row, ',');
		jsonx_append_str(&row, sc->mark_set[i].column);
		buf_addc(&row, ':');
		jsonx_append_str(&row, val.data != NULL ? val.data : "");
	}
	if (job->flag.version != NULL) {
		json_t *ver = m->rec != NULL ? json_object_get(m->rec, job->flag.version) : NULL;

		if (ver == NULL) {
			*err = xasprintf("the record has no field '%s' (flag.version) to compare",
			    job->flag.version);
			rc = -1;
			goto out;
		}
		buf_addc(&row, ',');
		jsonx_append_str(&row, job->flag.version);
		buf_addc(&row, ':');
		jsonx_append(&row, ver);
	}
	buf_addc(&row, '}');
	buf_add(rows, row.data, row.len);
out:
	buf_free(&row);
	buf_free(&val);
	return rc;
}


/* Outcome of mark i from an answer that returned the keys marked in `done`. */
static void
mark_outcome(struct pg_marker *pm, size_t i, const struct pg_result_info *ri,
    const struct strmap *done)
{
	struct source_mark_item *m = &pm->marks[i];

	if (ri->res == NULL) {
		m->outcome = MARK_FAILED;
		m->error = xasprintf("cannot mark record %s: source database (%s): %s",
		    m->key, pm->place, ri->err);
	} else if (strmap_get(done, m->key) != NULL)
		m->outcome = MARK_OK;
	else {
		m->outcome = MARK_CONFLICT;
		m->error = pm->version != NULL ? xasprintf("the row changed since it was "
		    "read (%s differs) or is gone", pm->version) :
		    xstrdup("the row is gone (no row with this key)");
	}
}

static void mark_answered(const struct pg_result_info *, void *);

static void
mark_send(struct pg_marker *pm, struct pg *pool, const char *rows, ssize_t i)
{
	struct pm_one *one = &pm->ones[i < 0 ? pm->n : (size_t)i];

	one->pm = pm;
	one->i = i;
	pm->outstanding++;
	pg_query(pool, pm->sql, 1, (const char *[]){ rows }, mark_answered, one);
}

static void
mark_answered(const struct pg_result_info *ri, void *arg)
{
	struct pm_one *one = arg;
	struct pg_marker *pm = one->pm;
	struct strmap done;
	size_t nsent = 0;

	pm->outstanding--;
	if (pm->dead) {
		if (pm->outstanding == 0)
			marker_free(pm);
		return;
	}
	strmap_init(&done);
	if (ri->res != NULL)
		for (int i = 0; i < PQntuples(ri->res); i++)
			if (!PQgetisnull(ri->res, i, 0))
				strmap_put(&done, PQgetvalue(ri->res, i, 0), pm);
	if (one->i >= 0)
		mark_outcome(pm, (size_t)one->i, ri, &done);
	else {
		for (size_t i = 0; i < pm->n; i++)
			nsent += pm->rowtext[i] != NULL;
		if (ri->res == NULL && pg_row_error(ri->sqlstate) && nsent > 1 && pm->pool != NULL) {
			/* One row's values broke the batch: mark row by row to find it. */
			log_debug("source database (%s): marking failed (%s); retrying row by row",
			    pm->place, ri->err);
			for (size_t i = 0; i < pm->n; i++) {
				struct buf b;

				if (pm->rowtext[i] == NULL)
					continue;
				buf_init(&b);
				buf_addc(&b, '[');
				buf_adds(&b, pm->rowtext[i]);
				buf_addc(&b, ']');
				mark_send(pm, pm->pool, b.data, (ssize_t)i);
				buf_free(&b);
			}
			strmap_free(&done, NULL);
			return;
		}
		for (size_t i = 0; i < pm->n; i++)
			if (pm->marks[i].outcome == MARK_PENDING)
				mark_outcome(pm, i, ri, &done);
	}
	strmap_free(&done, NULL);
	if (pm->outstanding > 0)
		return;
	if (pm->starting)
		return;		/* the pool is shutting down: source_pg_mark defers the report */
	marker_report(pm, 0, NULL);
}

struct source_marker *
source_pg_mark(const struct conn_env *env, const struct job_conf *job,
    struct source_mark_item *marks, size_t n, source_mark_cb cb, void *arg)
{
	struct pg_marker *pm = xcalloc(1, sizeof *pm);
	struct buf rows;
	size_t nsend = 0;

	pm->base.kind = CONN_POSTGRESQL;
	pm->place = place_of(job);
	pm->marks = marks;
	pm->n = n;
	pm->cb = cb;
	pm->arg = arg;
	pm->version = job->flag.version != NULL ? xstrdup(job->flag.version) : NULL;
	pm->rowtext = xcalloc(n + 1, sizeof *pm->rowtext);
	pm->ones = xcalloc(n + 1, sizeof *pm->ones);
	buf_init(&rows);
	buf_addc(&rows, '[');
	for (size_t i = 0; i < n; i++) {
		struct source_mark_item *m = &marks[i];
		char *err = NULL;
		size_t before = rows.len;

		m->outcome = MARK_PENDING;
		if (nsend > 0)
			buf_addc(&rows, ',');
		if (job->nkey != 1)
			err = xasprintf("a PostgreSQL source needs exactly one key column");
		else if (job->src.nmark_set == 0)
			err = xasprintf("source.mark_set names no column to set");
		else if (mark_row(&rows, job, m, &err) == 0) {
			nsend++;
			pm->rowtext[i] = xstrndup(rows.data + before + (nsend > 1),
			    rows.len - before - (nsend > 1));
			continue;
		}
		rows.len = before;
		rows.data[before] = '\0';
		m->outcome = MARK_FAILED;
		m->error = xasprintf("cannot mark record %s: %s", m->key, err);
		free(err);
	}
	buf_addc(&rows, ']');
	if (nsend == 0) {
		buf_free(&rows);
		marker_defer(pm, env->base);
		return &pm->base;
	}
	pm->sql = mark_sql(job);
	log_debug("source database (%s): marking %zu rows: %s", pm->place, nsend, pm->sql);
	pm->pool = pg_pools_get(env->pools, job->src.conninfo, job->src.http.timeout_ms);
	pm->starting = true;
	mark_send(pm, pm->pool, rows.data, -1);
	pm->starting = false;
	if (pm->outstanding == 0)
		marker_defer(pm, env->base);	/* answered synchronously (pool shutting down) */
	buf_free(&rows);
	return &pm->base;
}

/* Whether a pool query's arg is a statement of this marker. */
static bool
pm_owns(void *arg, void *ctx)
{
	return ((struct pm_one *)arg)->pm == ctx;
}

void
source_pg_mark_cancel(struct source_marker *m)
{
	struct pg_marker *pm = (struct pg_marker *)m;

	pm->cb = NULL;
	if (pm->outstanding) {
		if (pm->ev != NULL) {
			event_free(pm->ev);
			pm->ev = NULL;
		}
		pm->dead = true;	/* mark_answered frees it */
		pg_cancel(pm->pool, mark_answered, pm_owns, pm);
		return;
	}
	marker_free(pm);
}
