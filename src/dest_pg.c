/*
 * dest_pg.c - a PostgreSQL table as destination: one batched upsert per batch,
 * INSERT ... SELECT FROM jsonb_populate_recordset(NULL::table, $1) ON CONFLICT (key)
 * DO UPDATE, so column types are the table's own and values always travel as one
 * parameter. A data or constraint error (SQLSTATE class 22/23) is narrowed down by
 * sending the batch's rows one by one, so only the bad rows are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "canon.h"
#include "dest.h"
#include "log.h"
#include "pg.h"
#include "strmap.h"

struct dest_pg {
	struct dest		 base;
	struct pg		*pg;
	char			*sql;	/* the upsert */
	struct dest_item	*items;
	size_t			 n;
	size_t			 pending;	/* single-row statements in flight */
	bool			 failed;
	char			*error;
	dest_cb			 cb;
	void			*arg;
	unsigned		 gen;	/* bumped by cancel: late answers are ignored */
	size_t			 outstanding;	/* statements not yet answered */
	bool			 dead;	/* freed once the last answer is in */
};

struct dp_req {
	struct dest_pg	*dp;
	unsigned	 gen;
	ssize_t		 i;	/* -1 = the whole batch */
};

/* Build the upsert statement from the column mapping. */
static char *
upsert_sql(const struct dest_conf *c)
{
	struct buf b;
	char *t = pg_quote_ident(c->table, true);
	size_t nset = 0;

	buf_init(&b);
	buf_printf(&b, "INSERT INTO %s (", t);
	for (size_t i = 0; i < c->ncolumns; i++) {
		char *q = pg_quote_ident(c->columns[i].column, false);

		buf_printf(&b, "%s%s", i ? ", " : "", q);
		free(q);
	}
	buf_adds(&b, ") SELECT ");
	for (size_t i = 0; i < c->ncolumns; i++) {
		char *q = pg_quote_ident(c->columns[i].column, false);

		buf_printf(&b, "%s%s", i ? ", " : "", q);
		free(q);
	}
	buf_printf(&b, " FROM json_populate_recordset(NULL::%s, $1::json) ON CONFLICT (", t);
	for (size_t i = 0; i < c->nkey_columns; i++) {
		char *q = pg_quote_ident(c->key_columns[i], false);

		buf_printf(&b, "%s%s", i ? ", " : "", q);
		free(q);
	}
	buf_adds(&b, ") DO UPDATE SET ");
	for (size_t i = 0; i < c->ncolumns; i++) {
		bool key = false;
		char *q;

		for (size_t k = 0; k < c->nkey_columns; k++)
			if (strcmp(c->key_columns[k], c->columns[i].column) == 0)
				key = true;
		if (key)
			continue;
		q = pg_quote_ident(c->columns[i].column, false);
		buf_printf(&b, "%s%s = EXCLUDED.%s", nset++ ? ", " : "", q, q);
		free(q);
	}
	if (nset == 0) {
		/* Every column is part of the key: nothing to update. */
		char *p = strstr(b.data, " DO UPDATE SET ");

		b.len = (size_t)(p - b.data);
		b.data[b.len] = '\0';
		buf_adds(&b, " DO NOTHING");
	}
	free(t);
	return buf_steal(&b);
}

/* Append the row for one record: {"column": value at field path}, null when absent. */
static void
row_append(struct buf *b, const struct dest_conf *c, json_t *rec)
{
	buf_addc(b, '{');
	for (size_t i = 0; i < c->ncolumns; i++) {
		json_t *v = json_path_get(rec, c->columns[i].field);

		if (i > 0)
			buf_addc(b, ',');
		json_append_str(b, c->columns[i].column);
		buf_addc(b, ':');
		if (v != NULL)
			json_append(b, v);
		else
			buf_adds(b, "null");
	}
	buf_addc(b, '}');
}

static void dp_answer(const struct pg_result_info *, void *);

/* Send the rows (a JSON array's text) as one upsert; i is the item, or -1 for the batch. */
static void
dp_send(struct dest_pg *dp, const char *text, ssize_t i)
{
	struct dp_req *r = xmalloc(sizeof *r);
	const char *v[] = { text };

	r->dp = dp;
	r->gen = dp->gen;
	r->i = i;
	dp->outstanding++;
	pg_query(dp->pg, dp->sql, 1, v, dp_answer, r);
}

static void
dp_finish(struct dest_pg *dp)
{
	dest_cb cb = dp->cb;

	dp->cb = NULL;
	if (cb != NULL)
		cb(dp->arg, dp->failed ? -1 : 0, dp->error);
}

/* SQLSTATE classes that a row's content can cause: data exceptions, constraints. */
static bool
row_error(const char *sqlstate)
{
	return sqlstate != NULL && (strncmp(sqlstate, "22", 2) == 0 ||
	    strncmp(sqlstate, "23", 2) == 0);
}

static void
dp_answer(const struct pg_result_info *ri, void *arg)
{
	struct dp_req *r = arg;
	struct dest_pg *dp = r->dp;
	ssize_t i = r->i;
	bool stale = r->gen != dp->gen;

	free(r);
	dp->outstanding--;
	if (dp->dead && dp->outstanding == 0) {
		free(dp->sql);
		free(dp->error);
		free(dp);
		return;
	}
	if (stale)
		return;
	if (i == -2) {
		for (size_t k = 0; k < dp->n; k++) {
			if (ri->res != NULL)
				dp->items[k].outcome = DEST_OK;
		}
		if (ri->res == NULL) {
			dp->failed = true;
			dp->error = xasprintf("destination database: delete failed: %s", ri->err);
		}
		dp_finish(dp);
		return;
	}
	if (i < 0) {
		if (ri->res != NULL) {
			for (size_t k = 0; k < dp->n; k++)
				dp->items[k].outcome = DEST_OK;
			dp_finish(dp);
		} else if (row_error(ri->sqlstate) && dp->n > 1) {
			/* Find the rows at fault: every row on its own. */
			dp->pending = dp->n;
			for (size_t k = 0; k < dp->n; k++) {
				struct buf b;

				buf_init(&b);
				buf_addc(&b, '[');
				row_append(&b, &dp->base.job->dst, dp->items[k].rec);
				buf_addc(&b, ']');
				dp_send(dp, b.data, (ssize_t)k);
				buf_free(&b);
			}
		} else if (row_error(ri->sqlstate)) {
			dp->items[0].outcome = DEST_REFUSED;
			dp->items[0].error = xasprintf("destination table refused the row: %s", ri->err);
			dp_finish(dp);
		} else {
			dp->failed = true;
			dp->error = xasprintf("destination database: %s", ri->err);
			dp_finish(dp);
		}
		return;
	}
	if (ri->res != NULL)
		dp->items[i].outcome = DEST_OK;
	else if (row_error(ri->sqlstate)) {
		dp->items[i].outcome = DEST_REFUSED;
		dp->items[i].error = xasprintf("destination table refused the row: %s", ri->err);
	} else if (!dp->failed) {
		dp->failed = true;
		dp->error = xasprintf("destination database: %s", ri->err);
	}
	if (--dp->pending == 0)
		dp_finish(dp);
}

static void
dp_deliver(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	struct dest_pg *dp = (struct dest_pg *)ds;
	struct strmap last;
	struct buf rows;
	bool first = true;

	free(dp->error);
	dp->error = NULL;
	dp->failed = false;
	dp->items = items;
	dp->n = n;
	dp->cb = cb;
	dp->arg = arg;
	if (n == 0) {
		dp_finish(dp);
		return;
	}
	/* ON CONFLICT cannot touch a row twice in one statement: the last version of a key wins. */
	strmap_init(&last);
	for (size_t i = 0; i < n; i++)
		strmap_put(&last, items[i].key, &items[i]);
	buf_init(&rows);
	buf_addc(&rows, '[');
	for (size_t i = 0; i < n; i++) {
		if (strmap_get(&last, items[i].key) != &items[i])
			continue;
		if (!first)
			buf_addc(&rows, ',');
		first = false;
		row_append(&rows, &ds->job->dst, items[i].rec);
	}
	buf_addc(&rows, ']');
	strmap_free(&last, NULL);
	dp_send(dp, rows.data, -1);
	buf_free(&rows);
}

/* Whether a pool query's arg is a request of this destination. */
static bool
dp_owns(void *arg, void *ctx)
{
	return ((struct dp_req *)arg)->dp == ctx;
}

static void
dp_cancel(struct dest *ds)
{
	struct dest_pg *dp = (struct dest_pg *)ds;

	dp->gen++;
	dp->cb = NULL;
	pg_cancel(dp->pg, dp_answer, dp_owns, dp);	/* answers come, stale */
}

static void
dp_free(struct dest *ds)
{
	struct dest_pg *dp = (struct dest_pg *)ds;

	dp->gen++;
	dp->cb = NULL;
	if (dp->outstanding > 0) {
		dp->dead = true;
		return;
	}
	free(dp->sql);
	free(dp->error);
	free(dp);
}

/*
 * The row identifying one record for a DELETE: {key column: the value of the key field it
 * is mapped from}, from the stored key text (a composite key's text is its JSON array).
 * The configuration guarantees that every key column is mapped from a key field
 * (dst.key_fields) and that every key field has one: a row is addressed by the key alone.
 */
static int
delete_row(struct buf *b, const struct job_conf *job, const char *key)
{
	const struct dest_conf *c = &job->dst;
	json_t *parts = NULL;

	if (job->nkey > 1 && ((parts = json_loads(key, 0, NULL)) == NULL ||
	    !json_is_array(parts) || json_array_size(parts) != job->nkey)) {
		json_decref(parts);
		return -1;
	}
	buf_addc(b, '{');
	for (size_t k = 0; k < c->nkey_columns; k++) {
		if (k > 0)
			buf_addc(b, ',');
		json_append_str(b, c->key_columns[k]);
		buf_addc(b, ':');
		if (parts != NULL)
			json_append(b, json_array_get(parts, c->key_fields[k]));
		else
			json_append_str(b, key);
	}
	buf_addc(b, '}');
	json_decref(parts);
	return 0;
}

/* Delete a batch by key in one statement; a row already gone counts as deleted. */
static void
dp_delete(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	struct dest_pg *dp = (struct dest_pg *)ds;
	const struct dest_conf *c = &ds->job->dst;
	char *t = pg_quote_ident(c->table, true);
	struct buf rows, sql;

	free(dp->error);
	dp->error = NULL;
	dp->failed = false;
	dp->items = items;
	dp->n = n;
	dp->cb = cb;
	dp->arg = arg;
	buf_init(&rows);
	buf_init(&sql);
	buf_addc(&rows, '[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(&rows, ',');
		if (delete_row(&rows, ds->job, items[i].key) != 0) {
			buf_free(&rows);
			buf_free(&sql);
			free(t);
			dp->failed = true;
			dp->error = xasprintf("key %s is not a composite key's JSON array", items[i].key);
			dp_finish(dp);
			return;
		}
	}
	buf_addc(&rows, ']');
	buf_printf(&sql, "DELETE FROM %s AS t USING json_populate_recordset(NULL::%s, $1::json) AS m "
	    "WHERE ", t, t);
	for (size_t k = 0; k < c->nkey_columns; k++) {
		char *q = pg_quote_ident(c->key_columns[k], false);

		buf_printf(&sql, "%st.%s = m.%s", k > 0 ? " AND " : "", q, q);
		free(q);
	}
	{
		struct dp_req *r = xmalloc(sizeof *r);
		const char *v[] = { rows.data };

		r->dp = dp;
		r->gen = dp->gen;
		r->i = -2;	/* a delete batch */
		dp->outstanding++;
		pg_query(dp->pg, sql.data, 1, v, dp_answer, r);
	}
	buf_free(&rows);
	buf_free(&sql);
	free(t);
}

/* ---- the alias guard of capture's deletions ---- */

struct dp_alias_req {
	struct dest_pg	*dp;
	unsigned	 gen;
	size_t		 n;
	dest_alias_cb	 cb;
	void		*arg;
};

static void
dp_alias_answer(const struct pg_result_info *ri, void *arg)
{
	struct dp_alias_req *q = arg;
	struct dest_pg *dp = q->dp;
	bool *hit = NULL;
	char *err = NULL;

	dp->outstanding--;
	if (q->gen != dp->gen) {
		if (dp->dead && dp->outstanding == 0) {
			free(dp->sql);
			free(dp->error);
			free(dp);
		}
		free(q);
		return;
	}
	if (ri->res == NULL)
		err = xasprintf("destination database: the alias check of the deletions failed: %s",
		    ri->err);
	else {
		hit = xcalloc(q->n + 1, sizeof *hit);
		for (int i = 0; i < PQntuples(ri->res); i++) {
			long k = strtol(PQgetvalue(ri->res, i, 0), NULL, 10);

			if (k >= 1 && (size_t)k <= q->n)
				hit[k - 1] = true;
		}
	}
	q->cb(q->arg, err != NULL ? -1 : 0, err, hit);
	free(err);
	free(hit);
	free(q);
}

/*
 * Which deletion candidates name a row that a key of the snapshot names too, as the
 * destination compares them: both sides go through json_populate_recordset like the
 * DELETE, so each key column casts them with its own type ("5" and "05" for int, uuid
 * letter case, a citext column), and the candidates that meet a kept key are answered.
 * Candidates and kept keys are few (capture sends only kept keys that fold like a
 * candidate, key_fold), so one small SELECT.
 */
void
dest_pg_aliases(struct dest *ds, char *const *cands, size_t ncands, char *const *keep,
    size_t nkeep, dest_alias_cb cb, void *arg)
{
	struct dest_pg *dp = (struct dest_pg *)ds;
	const struct dest_conf *c = &ds->job->dst;
	char *t = pg_quote_ident(c->table, true);
	struct dp_alias_req *q;
	struct buf a, b, sql;
	const char *v[2];

	buf_init(&a);
	buf_init(&b);
	buf_init(&sql);
	buf_addc(&a, '[');
	for (size_t i = 0; i < ncands; i++) {
		if (i > 0)
			buf_addc(&a, ',');
		if (delete_row(&a, ds->job, cands[i]) != 0)
			buf_adds(&a, "{}");	/* matches nothing; the DELETE reports it */
	}
	buf_addc(&a, ']');
	buf_addc(&b, '[');
	for (size_t i = 0; i < nkeep; i++) {
		size_t mark = b.len;

		if (mark > 1)
			buf_addc(&b, ',');
		if (delete_row(&b, ds->job, keep[i]) != 0)
			b.len = mark;	/* not a key of this job's form: names no row */
	}
	buf_addc(&b, ']');
	buf_printf(&sql, "SELECT c.n FROM json_array_elements($1::json) WITH ORDINALITY AS c(e, n), "
	    "LATERAL json_populate_record(NULL::%s, c.e) AS m WHERE EXISTS (SELECT 1 FROM "
	    "json_populate_recordset(NULL::%s, $2::json) AS s WHERE ", t, t);
	for (size_t k = 0; k < c->nkey_columns; k++) {
		char *qc = pg_quote_ident(c->key_columns[k], false);

		buf_printf(&sql, "%ss.%s = m.%s", k > 0 ? " AND " : "", qc, qc);
		free(qc);
	}
	buf_addc(&sql, ')');
	q = xcalloc(1, sizeof *q);
	q->dp = dp;
	q->gen = dp->gen;
	q->n = ncands;
	q->cb = cb;
	q->arg = arg;
	dp->outstanding++;
	v[0] = a.data;
	v[1] = b.data;
	pg_query(dp->pg, sql.data, 2, v, dp_alias_answer, q);
	buf_free(&a);
	buf_free(&b);
	buf_free(&sql);
	free(t);
}

static const struct dest_ops dp_ops = { dp_deliver, dp_cancel, dp_free, dp_delete };

struct dest *
dest_pg_new(struct daemon *d, const struct job_conf *job)
{
	struct dest_pg *dp = xcalloc(1, sizeof *dp);

	dp->base.ops = &dp_ops;
	dp->base.d = d;
	dp->base.job = job;
	dp->pg = daemon_pg(d, job->dst.conninfo, job->dst.http.timeout_ms);
	dp->sql = upsert_sql(&job->dst);
	return &dp->base;
}
