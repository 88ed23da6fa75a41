/*
 * dest_pg.c - a PostgreSQL table as destination: per batch one round trip that COPYs the
 * rows into the session's staging table and upserts them from there (INSERT ... SELECT ...
 * ON CONFLICT (key) DO UPDATE, statements and rows by dest_pg_copy.c), so column types are
 * the table's own and no value is ever in SQL text; deletions by key the same way (DELETE
 * ... USING the staging table). The column types are read from the catalog once per
 * destination (a run), before its first batch.
 * A batch that fails with an error one row can cause (row_error: data, constraint,
 * cardinality, a trigger's exception) is narrowed down by sending its rows one by one, in
 * order, so only the rows at fault are refused, each with its key and the database's error.
 * It never fails a batch for one row, and never narrows an error of the database itself.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/json.h"
#include "record/canon.h"
#include "conn/dest_pg.h"
#include "conn/dest_pg_copy.h"
#include "core/log.h"
#include "io/pg.h"
#include "core/strmap.h"

struct dest_pg {
	struct dest		 base;
	struct pg		*pg;
	struct dpc		*dpc;	/* the staging table and statements; NULL: read the catalog */
	struct dest_item	*items;
	size_t			 n;
	size_t			*last;	/* per item: the last item with its key (the one sent) */
	bool			 deleting;	/* this batch deletes */
	size_t			 next;	/* narrowing: the next item to send alone */
	size_t			 namb;	/* narrowing: rows refused with amb_state */
	bool			 amb_mixed;	/* ...or some with another ambiguous one */
	char			 amb_state[6];	/* pg_row_error_ambiguous SQLSTATE seen */
	char			*amb_err;	/* its first error */
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
	ssize_t		 i;	/* -1 = the whole batch, -2 = the catalog */
};

/* Free it (no statement of it is in flight). */
static void
dp_release(struct dest_pg *dp)
{
	dpc_free(dp->dpc);
	free(dp->last);
	free(dp->error);
	free(dp->amb_err);
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
		jsonx_append_str(b, c->key_columns[k]);
		buf_addc(b, ':');
		if (parts != NULL)
			jsonx_append(b, json_array_get(parts, c->key_fields[k]));
		else
			jsonx_append_str(b, key);
	}
	buf_addc(b, '}');
	json_decref(parts);
	return 0;
}

/* Append item k's COPY line: the mapped columns to write, or the key columns to delete by. */
static int
item_row(struct dest_pg *dp, size_t k, struct buf *b, const char **why)
{
	return dpc_row(dp->dpc, dp->base.job, dp->deleting, dp->items[k].rec, dp->items[k].key,
	    b, why);
}

static void dp_answer(const struct pg_result_info *, void *);
static void catalog_answer(struct dest_pg *, const struct pg_result_info *);

/* A request of this destination: i is the item, -1 the batch, -2 the catalog query. */
static struct dp_req *
dp_req(struct dest_pg *dp, ssize_t i)
{
	struct dp_req *r = xmalloc(sizeof *r);

	r->dp = dp;
	r->gen = dp->gen;
	r->i = i;
	dp->outstanding++;
	return r;
}

/* Send COPY lines as one transaction; i is the item, or -1 for the batch. */
static void
dp_send(struct dest_pg *dp, const struct buf *rows, ssize_t i)
{
	struct dp_req *r = dp_req(dp, i);

	pg_copy(dp->pg, dp->dpc->tag, dp->dpc->setup, dp->deleting ? dp->dpc->del :
	    dp->dpc->upsert, rows->data, rows->len, dp_answer, r);
}

static void
dp_finish(struct dest_pg *dp)
{
	dest_cb cb = dp->cb;

	dp->cb = NULL;
	if (cb != NULL)
		cb(dp->arg, dp->failed ? -1 : 0, dp->error);
}


/* Refuse item k with the database's error, naming its key. */
static void
refuse(struct dest_pg *dp, size_t k, const char *err)
{
	struct dest_item *it = &dp->items[k];

	it->outcome = DEST_REFUSED;
	free(it->error);
	it->error = xasprintf(dp->deleting ? "destination table refused the deletion of key %s: "
	    "%s" : "destination table refused the row of key %s: %s", it->key, err);
}

/* Narrowing is over: earlier items of a key take the outcome of the one sent. */
static void
narrow_done(struct dest_pg *dp)
{
	size_t nrefused = 0, nsent = 0;
	const char *first = NULL;

	for (size_t k = 0; k < dp->n; k++) {
		struct dest_item *it = &dp->items[k], *sent = &dp->items[dp->last[k]];

		if (dp->last[k] != k) {
			it->outcome = sent->outcome;
			free(it->error);
			it->error = sent->error != NULL ? xstrdup(sent->error) : NULL;
			continue;
		}
		nsent++;
		if (it->outcome == DEST_REFUSED) {
			nrefused++;
			if (first == NULL)
				first = it->error;
		}
	}
	/* Every row sent alone refused with the same SQLSTATE that may be the table's
	 * (pg_row_error_ambiguous: permission denied for the table, its state): it is the
	 * table's, the batch fails (and the run), its rows stay where they were. */
	if (nsent > 1 && nrefused == nsent && dp->namb == nsent && !dp->amb_mixed) {
		dp->failed = true;
		free(dp->error);
		dp->error = xasprintf(dp->deleting ? "destination database: delete failed: %s "
		    "(every one of the %zu deletions of the batch, sent alone, failed with "
		    "SQLSTATE %s: the table's fault, not a row's)" : "destination database: %s "
		    "(every one of the %zu rows of the batch, sent alone, failed with SQLSTATE "
		    "%s: the table's fault, not a row's)", dp->amb_err, nsent, dp->amb_state);
		dp_finish(dp);
		return;
	}
	/* Every row refused alone: they go to the retry queue like any refused record (a
	 * batch of bad rows must not stop the job), but a table that refuses everything is
	 * worth a warning of its own. */
	if (nsent > 1 && nrefused == nsent)
		log_job(LOG_WARNING, dp->base.job->name, 0, NULL, "destination table %s refused "
		    "every one of the %zu rows of a batch (%s); they wait in the retry queue: if "
		    "the table refuses every row, fix it, then `onesyncctl retry`",
		    dp->base.job->dst.table, nsent, first);
	dp_finish(dp);
}

/* Send the next item alone (one at a time, in batch order: the later of two rows that the
 * table takes for one is written last, as it would be in a later batch). */
static void
narrow_next(struct dest_pg *dp)
{
	const char *why;
	struct buf b;

	while (dp->next < dp->n && (dp->last[dp->next] != dp->next ||
	    dp->items[dp->next].outcome != DEST_PENDING))
		dp->next++;
	if (dp->next >= dp->n) {
		narrow_done(dp);
		return;
	}
	buf_init(&b);
	(void)item_row(dp, dp->next, &b, &why);	/* it did in dp_batch: not refused */
	dp_send(dp, &b, (ssize_t)dp->next);
	dp->next++;
	buf_free(&b);
}

/* The whole batch failed with err: fail it, or find the rows at fault. */
static void
batch_failed(struct dest_pg *dp, const struct pg_result_info *ri)
{
	size_t nsent = 0, one = 0;

	for (size_t k = 0; k < dp->n; k++)
		if (dp->last[k] == k && dp->items[k].outcome == DEST_PENDING) {
			nsent++;
			one = k;
		}
	if (!pg_row_error(ri->sqlstate)) {
		/* The table may have changed: its columns are read again before the next. */
		dpc_free(dp->dpc);
		dp->dpc = NULL;
		dp->failed = true;
		dp->error = xasprintf(dp->deleting ? "destination database: delete failed: %s" :
		    "destination database: %s", ri->err);
		dp_finish(dp);
		return;
	}
	if (nsent == 1) {
		refuse(dp, one, ri->err);
		narrow_done(dp);
		return;
	}
	if (strncmp(ri->sqlstate, "21", 2) == 0)
		log_job(LOG_WARNING, dp->base.job->name, 0, NULL, "destination table %s: two "
		    "rows of one batch are one row of the table (keys that its key column's type "
		    "makes equal, such as 1 and 01, or a UUID in two cases): they are written one "
		    "by one, the later in the batch last", dp->base.job->dst.table);
	else
		log_job(LOG_INFO, dp->base.job->name, 0, NULL, "destination table %s refused a "
		    "batch of %zu %s (%s): sending them one by one", dp->base.job->dst.table, nsent,
		    dp->deleting ? "deletions" : "rows", ri->err);
	dp->next = 0;
	dp->namb = 0;
	dp->amb_mixed = false;
	dp->amb_state[0] = '\0';
	free(dp->amb_err);
	dp->amb_err = NULL;
	narrow_next(dp);
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
		dp_release(dp);
		return;
	}
	if (stale)
		return;
	if (i == -2) {
		catalog_answer(dp, ri);
		return;
	}
	if (i < 0) {
		if (ri->res == NULL) {
			batch_failed(dp, ri);
			return;
		}
		for (size_t k = 0; k < dp->n; k++)
			if (dp->items[k].outcome == DEST_PENDING)
				dp->items[k].outcome = DEST_OK;
		dp_finish(dp);
		return;
	}
	if (ri->res != NULL)
		dp->items[i].outcome = DEST_OK;
	else if (pg_row_error(ri->sqlstate)) {
		refuse(dp, (size_t)i, ri->err);
		if (pg_row_error_ambiguous(ri->sqlstate)) {
			if (dp->namb == 0) {
				snprintf(dp->amb_state, sizeof dp->amb_state, "%s", ri->sqlstate);
				free(dp->amb_err);
				dp->amb_err = xstrdup(ri->err);
			} else if (strcmp(dp->amb_state, ri->sqlstate) != 0)
				dp->amb_mixed = true;
			dp->namb++;
		}
	} else {
		dp->failed = true;
		dp->error = xasprintf(dp->deleting ? "destination database: delete failed: %s" :
		    "destination database: %s", ri->err);
		dp_finish(dp);
		return;
	}
	narrow_next(dp);
}

/*
 * Send the batch: each key is sent once, its last item (ON CONFLICT cannot touch a row
 * twice in one statement; a deletion needs no repeat), as one COPY; items whose row cannot
 * travel (a NUL character, a stored composite key that is not its JSON array) are refused
 * alone.
 */
static void
dp_batch(struct dest_pg *dp)
{
	struct buf rows;
	size_t nrows = 0;
	const char *why;

	buf_init(&rows);
	for (size_t i = 0; i < dp->n; i++) {
		if (dp->last[i] != i)
			continue;
		if (item_row(dp, i, &rows, &why) != 0) {
			refuse(dp, i, why);
			continue;
		}
		nrows++;
	}
	if (nrows == 0)
		narrow_done(dp);
	else
		dp_send(dp, &rows, -1);
	buf_free(&rows);
}

/* The table's columns are known (or not: the batch fails as the upsert would). */
static void
catalog_answer(struct dest_pg *dp, const struct pg_result_info *ri)
{
	if (ri->res == NULL) {
		dp->failed = true;
		dp->error = xasprintf("destination database: cannot read the columns of %s: %s",
		    dp->base.job->dst.table, ri->err);
		dp_finish(dp);
		return;
	}
	dp->dpc = dpc_new(&dp->base.job->dst, ri->res);
	dp_batch(dp);
}

/* Start a batch, reading the table's columns first when they are not known yet. */
static void
dp_start(struct dest *ds, struct dest_item *items, size_t n, bool deleting, dest_cb cb,
    void *arg)
{
	struct dest_pg *dp = (struct dest_pg *)ds;
	struct strmap last;

	free(dp->error);
	dp->error = NULL;
	dp->failed = false;
	dp->items = items;
	dp->n = n;
	dp->deleting = deleting;
	dp->cb = cb;
	dp->arg = arg;
	free(dp->last);
	dp->last = xreallocarray(NULL, n > 0 ? n : 1, sizeof *dp->last);
	strmap_init(&last);
	for (size_t i = 0; i < n; i++)
		strmap_put(&last, items[i].key, (void *)(uintptr_t)(i + 1));
	for (size_t i = 0; i < n; i++)
		dp->last[i] = (size_t)(uintptr_t)strmap_get(&last, items[i].key) - 1;
	strmap_free(&last, NULL);
	if (dp->dpc == NULL && n > 0) {
		char *t = pg_quote_ident(ds->job->dst.table, true);
		const char *v[] = { t };

		pg_query(dp->pg, dpc_catalog_sql, 1, v, dp_answer, dp_req(dp, -2));
		free(t);
		return;
	}
	if (n == 0) {
		narrow_done(dp);
		return;
	}
	dp_batch(dp);
}

static void
dp_deliver(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	dp_start(ds, items, n, false, cb, arg);
}

/* Delete a batch by key in one statement; a row already gone counts as deleted. */
static void
dp_delete(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	dp_start(ds, items, n, true, cb, arg);
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
	dp_release(dp);
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
		if (dp->dead && dp->outstanding == 0)
			dp_release(dp);
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
 * The candidates are few; capture sends the kept keys (the keys accepted in its run, and
 * the unchanged ones that fold like a candidate) in bounded chunks, one SELECT each.
 */
static void
dp_aliases(struct dest *ds, char *const *cands, size_t ncands, char *const *keep,
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

static const struct dest_ops dp_ops = { dp_deliver, dp_cancel, dp_free, dp_delete,
    dp_aliases };

struct dest *
dest_pg_new(const struct conn_env *env, const struct job_conf *job)
{
	struct dest_pg *dp = xcalloc(1, sizeof *dp);

	dp->base.ops = &dp_ops;
	dp->base.env = env;
	dp->base.job = job;
	dp->pg = pg_pools_get(env->pools, job->dst.conninfo, job->dst.http.timeout_ms);
	return &dp->base;
}
