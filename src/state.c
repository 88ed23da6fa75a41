/*
 * state.c - the state store: migrations, leases, run start and fenced checkpoints, all
 * as single statements on a small libpq pool (so a statement is its own transaction and
 * two jobs never share one). It never compares local time with database time: every
 * expiry is computed by the database clock inside the functions of sql_schema.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "sql_schema.h"
#include "state.h"

struct state {
	struct pg	*pg;		/* runs: run start, checkpoints, claims */
	struct pg	*coord;		/* coordination: leases, heartbeats, requests, LISTEN */
	void		(*req_cb)(const char *, void *);
	void		(*rebalance_cb)(void *);
	void		*req_arg;
	char		*schema;	/* quoted */
	char		*instance;
};

struct state_req {
	struct state	*st;
	state_cb	 cb;
	state_claim_cb	 claim_cb;
	void		*arg;
	const char	*what;
};

struct state *
state_new(struct event_base *base, const char *conninfo, const char *schema,
    int connections, int64_t connect_timeout_ms, const char *instance)
{
	struct state *st = xcalloc(1, sizeof *st);

	st->pg = pg_new(base, conninfo, "state database", connections, (long)connect_timeout_ms);
	st->coord = pg_new(base, conninfo, "state database (coordination)", 1,
	    (long)connect_timeout_ms);
	st->schema = pg_quote_ident(schema, false);
	st->instance = xstrdup(instance);
	return st;
}

void
state_set_lease(struct state *st, int64_t lease_ms)
{
	long third = (long)(lease_ms / 3 > 1000 ? lease_ms / 3 : 1000);

	/* A run's statements: within the lease. The coordination connection answers within
	 * a renewal tick, or is dropped and opened again (a half-open connection would
	 * otherwise hold every heartbeat and renewal behind it); no statement_timeout there,
	 * its statements are small. */
	pg_set_timeouts(st->pg, (long)lease_ms, (long)lease_ms + 5000);
	pg_set_timeouts(st->coord, 0, third);
}

void
state_free(struct state *st)
{
	if (st == NULL)
		return;
	pg_free(st->pg);
	pg_free(st->coord);
	free(st->schema);
	free(st->instance);
	free(st);
}

bool
state_up(const struct state *st)
{
	return pg_is_up(st->pg);
}

const char *
state_schema(const struct state *st)
{
	return st->schema;
}

/* Replace every "@S@" in sql with the quoted schema. */
static char *
subst_schema(const struct state *st, const char *sql)
{
	struct buf b;
	const char *p;

	buf_init(&b);
	while ((p = strstr(sql, "@S@")) != NULL) {
		buf_add(&b, sql, (size_t)(p - sql));
		buf_adds(&b, st->schema);
		sql = p + 3;
	}
	buf_adds(&b, sql);
	return buf_steal(&b);
}

static struct state_req *
req_new(struct state *st, const char *what, state_cb cb, void *arg)
{
	struct state_req *r = xcalloc(1, sizeof *r);

	r->st = st;
	r->cb = cb;
	r->arg = arg;
	r->what = what;
	return r;
}

/* Map a pg completion to STATE_* and the first column of the first row as JSON. */
static int
pg_outcome(const struct pg_result_info *ri, const char *what, json_t **json, char **err)
{
	*json = NULL;
	*err = NULL;
	if (ri->res == NULL) {
		if (ri->sqlstate != NULL && strcmp(ri->sqlstate, STATE_FENCE_SQLSTATE) == 0) {
			*err = xstrdup(ri->err);
			return STATE_LEASE_LOST;
		}
		*err = xasprintf("state database: %s failed: %s", what, ri->err);
		return ri->conn_lost ? STATE_CONN_LOST : STATE_ERROR;
	}
	if (PQntuples(ri->res) > 0 && PQnfields(ri->res) > 0 && !PQgetisnull(ri->res, 0, 0)) {
		json_error_t je;
		const char *v = PQgetvalue(ri->res, 0, 0);

		*json = json_loads(v, JSON_DECODE_ANY, &je);
		if (*json == NULL)
			*json = json_string(v);
	}
	return STATE_OK;
}

static void
req_done(const struct pg_result_info *ri, void *arg)
{
	struct state_req *r = arg;
	json_t *j;
	char *err;
	int rc = pg_outcome(ri, r->what, &j, &err);

	if (r->cb != NULL)
		r->cb(r->arg, rc, j, err);
	else if (rc != STATE_OK)
		log_warnx("%s", err);
	json_decref(j);
	free(err);
	free(r);
}

static void
migrated(void *arg, int rc, json_t *res, const char *err)
{
	struct state_req *r = arg;
	json_t *out;
	long long v;

	if (rc != STATE_OK) {
		r->cb(r->arg, rc, NULL, err);
		free(r);
		return;
	}
	v = json_is_integer(res) ? json_integer_value(res) : -1;
	if (v > STATE_SCHEMA_VERSION) {
		char *e = xasprintf("state schema %s has version %lld, newer than this onesyncd "
		    "understands (%d): upgrade onesyncd on this server", r->st->schema, v,
		    STATE_SCHEMA_VERSION);

		r->cb(r->arg, STATE_ERROR, NULL, e);
		free(e);
		free(r);
		return;
	}
	out = json_pack("{sI}", "version", (json_int_t)v);
	r->cb(r->arg, STATE_OK, out, NULL);
	json_decref(out);
	free(r);
}

void
state_migrate(struct state *st, state_cb cb, void *arg)
{
	struct buf b;
	char *sql;

	buf_init(&b);
	buf_adds(&b, "SELECT pg_advisory_xact_lock(" STATE_LOCK_KEY ");\n"
	    "CREATE SCHEMA IF NOT EXISTS @S@;\n"
	    "CREATE TABLE IF NOT EXISTS @S@.meta (key text PRIMARY KEY, value text NOT NULL);\n"
	    "INSERT INTO @S@.meta VALUES ('schema_version', '0') ON CONFLICT DO NOTHING;\n");
	for (size_t i = 0; i < NELEM(state_migrations); i++) {
		buf_printf(&b, "DO $mig$ BEGIN\n"
		    "IF (SELECT value::int FROM @S@.meta WHERE key = 'schema_version') < %zu THEN\n",
		    i + 1);
		buf_adds(&b, state_migrations[i]);
		buf_printf(&b, "UPDATE @S@.meta SET value = '%zu' WHERE key = 'schema_version';\n"
		    "END IF; END $mig$;\n", i + 1);
	}
	buf_adds(&b, "SELECT value::int FROM @S@.meta WHERE key = 'schema_version';\n");
	sql = subst_schema(st, b.data);
	buf_free(&b);
	pg_query(st->pg, sql, 0, NULL, req_done,
	    req_new(st, "schema migration", migrated, req_new(st, "schema migration", cb, arg)));
	free(sql);
}

/* Run "SELECT schema.fn($1...)" with text parameters. */
static void
call(struct state *st, const char *what, const char *fn_sql, int n, const char *const *v,
    state_cb cb, void *arg)
{
	char *sql = subst_schema(st, fn_sql);

	pg_query(st->pg, sql, n, v, req_done, req_new(st, what, cb, arg));
	free(sql);
}

/* The same on the coordination connection, never busy with a run's work. */
static void
coord_call(struct state *st, const char *what, const char *fn_sql, int n,
    const char *const *v, state_cb cb, void *arg)
{
	char *sql = subst_schema(st, fn_sql);

	pg_query(st->coord, sql, n, v, req_done, req_new(st, what, cb, arg));
	free(sql);
}

static void
notified(const char *channel, const char *payload, void *arg)
{
	struct state *st = arg;

	if (st->req_cb != NULL && strcmp(channel, "onesync_run") == 0 && payload != NULL)
		st->req_cb(payload, st->req_arg);
	else if (st->rebalance_cb != NULL && strcmp(channel, "onesync_rebalance") == 0)
		st->rebalance_cb(st->req_arg);
}

void
state_listen(struct state *st, void (*run_cb)(const char *, void *),
    void (*rebalance_cb)(void *), void *arg)
{
	st->req_cb = run_cb;
	st->rebalance_cb = rebalance_cb;
	st->req_arg = arg;
	pg_set_notify(st->coord, notified, st);
	/* Idempotent: sent again after reconnects by the caller's periodic tick. */
	coord_call(st, "listen", "LISTEN onesync_run; LISTEN onesync_rebalance", 0, NULL,
	    NULL, NULL);
}

void
state_requests(struct state *st, state_cb cb, void *arg)
{
	coord_call(st, "run requests", "SELECT COALESCE(jsonb_agg(name), '[]') FROM @S@.jobs "
	    "WHERE run_requested_at IS NOT NULL", 0, NULL, cb, arg);
}

void
state_heartbeat(struct state *st, int capacity, int64_t live_ms, int64_t reap_ms, bool first,
    state_cb cb, void *arg)
{
	char cap[16], live[32], reap[32];
	const char *v[] = { st->instance, PACKAGE_VERSION, cap, live, reap };

	snprintf(cap, sizeof cap, "%d", capacity);
	snprintf(live, sizeof live, "%lld", (long long)live_ms);
	snprintf(reap, sizeof reap, "%lld", (long long)reap_ms);
	coord_call(st, "heartbeat", first ?
	    "WITH hb AS (INSERT INTO @S@.instances (id, version, capacity) VALUES ($1, $2, $3) "
	    "  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), version = $2, capacity = $3 "
	    "  RETURNING id), "
	    "gone AS (DELETE FROM @S@.instances WHERE heartbeat_at < now() - $5 * interval '1 ms' "
	    "  AND id <> $1 RETURNING id), "
	    "n AS (SELECT pg_notify('onesync_rebalance', $1)) "
	    "SELECT COALESCE(jsonb_agg(jsonb_build_array(id, capacity) ORDER BY id), '[]') "
	    "FROM (SELECT id, capacity FROM @S@.instances WHERE id <> $1 "
	    "  AND heartbeat_at > now() - $4 * interval '1 ms' "
	    "  UNION ALL SELECT $1, $3::int FROM n) l" :
	    "WITH hb AS (INSERT INTO @S@.instances (id, version, capacity) VALUES ($1, $2, $3) "
	    "  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), version = $2, capacity = $3 "
	    "  RETURNING id), "
	    "gone AS (DELETE FROM @S@.instances WHERE heartbeat_at < now() - $5 * interval '1 ms' "
	    "  AND id <> $1 RETURNING id) "
	    "SELECT COALESCE(jsonb_agg(jsonb_build_array(id, capacity) ORDER BY id), '[]') "
	    "FROM (SELECT id, capacity FROM @S@.instances WHERE id <> $1 "
	    "  AND heartbeat_at > now() - $4 * interval '1 ms' "
	    "  UNION ALL SELECT $1, $3::int) l", 5, v, cb, arg);
}

void
state_leave(struct state *st, state_cb cb, void *arg)
{
	const char *v[] = { st->instance };

	coord_call(st, "leave", "WITH d AS (DELETE FROM @S@.instances WHERE id = $1 RETURNING id) "
	    "SELECT pg_notify('onesync_rebalance', $1)", 1, v, cb, arg);
}

static void
claimed(void *arg, int rc, json_t *res, const char *err)
{
	struct state_req *r = arg;
	int64_t epoch = json_is_integer(res) ? json_integer_value(res) : 0;

	r->claim_cb(r->arg, rc, epoch, err);
	free(r);
}

void
state_claim(struct state *st, const char *job, int64_t known, int64_t lease_ms,
    state_claim_cb cb, void *arg)
{
	struct state_req *r = req_new(st, "lease claim", NULL, arg);
	char ms[32], kn[32];
	const char *v[] = { job, st->instance, kn, ms };

	r->claim_cb = cb;
	snprintf(ms, sizeof ms, "%lld", (long long)lease_ms);
	snprintf(kn, sizeof kn, "%lld", (long long)known);
	call(st, "lease claim", "SELECT @S@.claim($1, $2, $3, $4)", 4, v, claimed, r);
}

/* A PostgreSQL text[] literal of names. */
static char *
text_array(char *const *names, size_t n)
{
	struct buf b;

	buf_init(&b);
	buf_addc(&b, '{');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(&b, ',');
		buf_addc(&b, '"');
		for (const char *p = names[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_addc(&b, '\\');
			buf_addc(&b, *p);
		}
		buf_addc(&b, '"');
	}
	buf_addc(&b, '}');
	return buf_steal(&b);
}

void
state_renew(struct state *st, char *const *jobs, const int64_t *epochs, size_t n,
    int64_t lease_ms, state_cb cb, void *arg)
{
	struct buf e;
	char ms[32];
	char *names = text_array(jobs, n);

	buf_init(&e);
	buf_addc(&e, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&e, "%s%lld", i > 0 ? "," : "", (long long)epochs[i]);
	buf_addc(&e, '}');
	snprintf(ms, sizeof ms, "%lld", (long long)lease_ms);
	{
		const char *v[] = { st->instance, names, e.data, ms };

		coord_call(st, "lease renewal", "SELECT COALESCE(jsonb_agg(n), '[]') FROM "
		    "@S@.renew($1, $2::text[], $3::bigint[], $4) AS n", 4, v, cb, arg);
	}
	free(names);
	buf_free(&e);
}

void
state_release(struct state *st, char *const *jobs, size_t n, state_cb cb, void *arg)
{
	char *names = text_array(jobs, n);
	const char *v[] = { st->instance, names };

	coord_call(st, "lease release", "SELECT @S@.release($1, $2::text[])", 2, v, cb, arg);
	free(names);
}

void
state_run_start(struct state *st, const char *job, int64_t epoch, int retries,
    state_cb cb, void *arg)
{
	char e[32], r[32];
	const char *v[] = { job, st->instance, e, r };

	snprintf(e, sizeof e, "%lld", (long long)epoch);
	snprintf(r, sizeof r, "%d", retries);
	call(st, "run start", "SELECT @S@.run_start($1, $2, $3, $4)", 4, v, cb, arg);
}

void
state_checkpoint(struct state *st, const char *job, int64_t epoch, long long run,
    json_t *doc, state_cb cb, void *arg)
{
	char e[32], r[32];
	char *d = json_dumps(doc, JSON_COMPACT);
	const char *v[] = { job, st->instance, e, r, d };

	snprintf(e, sizeof e, "%lld", (long long)epoch);
	snprintf(r, sizeof r, "%lld", run);
	call(st, "checkpoint", "SELECT @S@.checkpoint_once($1, $2, $3, $4, $5::jsonb)", 5, v, cb,
	    arg);
	free(d);
}

struct rows_req {
	state_rows_cb	 cb;
	void		*arg;
};

static void
rows_done(const struct pg_result_info *ri, void *arg)
{
	struct rows_req *q = arg;
	char *err = ri->res == NULL ? xasprintf("state database: reading stored hashes failed: %s",
	    ri->err) : NULL;

	q->cb(q->arg, ri->res != NULL ? STATE_OK : STATE_ERROR, ri->res, err);
	free(err);
	free(q);
}

void
state_records(struct state *st, const char *job, const char *after, int limit,
    state_rows_cb cb, void *arg)
{
	struct rows_req *q = xmalloc(sizeof *q);
	char lim[32], *sql;
	const char *v[] = { job, after != NULL ? after : "", lim };

	snprintf(lim, sizeof lim, "%d", limit);
	q->cb = cb;
	q->arg = arg;
	sql = subst_schema(st, "SELECT key, hash FROM @S@.records WHERE job = $1 AND key > $2 "
	    "ORDER BY key LIMIT $3");
	pg_query(st->pg, sql, 3, v, rows_done, q);
	free(sql);
}
