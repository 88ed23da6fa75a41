/*
 * state.c - the state store: migrations, leases, run start and fenced checkpoints, all
 * as single statements on a small libpq pool (so a statement is its own transaction and
 * two jobs never share one). It never compares local time with database time: every
 * expiry is computed by the database clock inside the functions of sql_schema.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "record/canon.h"
#include "config/identity.h"
#include "record/json.h"
#include "core/log.h"
#include "io/pg.h"
#include "store/sql_schema.h"
#include "store/state.h"

struct state {
	struct pg	*pg;		/* runs: run start, checkpoints, claims */
	struct pg	*coord;		/* coordination: leases, heartbeats, requests, LISTEN */
	void		(*req_cb)(const char *, void *);
	void		(*rebalance_cb)(void *);
	void		*req_arg;
	void		(*budget_cb)(const char *, int64_t, void *);
	void		*budget_arg;
	char		*schema;	/* quoted */
	char		*instance;
	char		 incarnation[33];	/* this process, random */
	state_identity_fn identity_fn;	/* a job's identity and definition, for claims */
	void		*identity_arg;
};

struct state_req {
	struct state	*st;
	state_cb	 cb;
	state_claim_cb	 claim_cb;
	void		*arg;
	const char	*what;
	char		*job;		/* claims: the job, for a refusal's message */
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
	{
		uint64_t r[2];

		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
			r[0] = rand64();
			r[1] = rand64();
		}
		snprintf(st->incarnation, sizeof st->incarnation, "%016llx%016llx",
		    (unsigned long long)r[0], (unsigned long long)r[1]);
	}
	return st;
}

const char *
state_incarnation(const struct state *st)
{
	return st->incarnation;
}

void
state_set_identity(struct state *st, state_identity_fn fn, void *arg)
{
	st->identity_fn = fn;
	st->identity_arg = arg;
}

void
state_set_lease(struct state *st, int64_t lease_ms)
{
	long third = (long)(lease_ms / 3 > 1000 ? lease_ms / 3 : 1000);

	/* A run's statements: within the lease. The coordination connection answers within
	 * a renewal tick, or is dropped and opened again (a half-open connection would
	 * otherwise hold every heartbeat and renewal behind it). Its statements are small, but
	 * may wait on a lock (VACUUM FULL, a migration): they carry a statement_timeout of half
	 * a tick, so the server ends such a wait itself; a dropped connection would otherwise
	 * leave its backend waiting, one more every tick, until the server is full. */
	pg_set_timeouts(st->pg, (long)lease_ms, (long)lease_ms + 5000);
	pg_set_timeouts(st->coord, third / 2, third);
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
migrate_answered(void *arg, int rc, json_t *res, const char *err)
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
	    req_new(st, "schema migration", migrate_answered, req_new(st, "schema migration", cb, arg)));
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

void
state_call(struct state *st, bool coord, const char *what, const char *sql, int n,
    const char *const *v, state_cb cb, void *arg)
{
	(coord ? coord_call : call)(st, what, sql, n, v, cb, arg);
}

/* A budget's block notified, waiting for this schema's row to confirm it. */
struct budget_note {
	void		(*cb)(const char *, int64_t, void *);
	void		*arg;
	int64_t		 until;
	char		 name[];
};

/* This schema's block of the budget a notification named: passed on when it is (at
 * least) the one notified, so a block of another schema's budget of the same name is not. */
static void
budget_confirmed(void *arg, int rc, json_t *res, const char *err)
{
	struct budget_note *b = arg;

	if (rc != STATE_OK)
		log_warnx("%s", err);
	else if (json_is_integer(res) && json_integer_value(res) >= b->until)
		b->cb(b->name, json_integer_value(res), b->arg);
	free(b);
}

/* "<until_ms> <name>" (budget_block in sql_budget.h); anything else is not ours. */
static void
budget_notified(struct state *st, const char *payload)
{
	struct budget_note *b;
	char *end, ms[32];
	long long until;
	const char *v[2];
	size_t len;

	errno = 0;
	until = strtoll(payload, &end, 10);
	if (errno != 0 || end == payload || *end != ' ' || end[1] == '\0')
		return;
	len = strlen(end + 1);
	b = xmalloc(sizeof *b + len + 1);
	b->cb = st->budget_cb;
	b->arg = st->budget_arg;
	b->until = until;
	memcpy(b->name, end + 1, len + 1);
	snprintf(ms, sizeof ms, "%lld", until);
	v[0] = b->name;
	v[1] = ms;
	coord_call(st, "reading a budget's block", "SELECT @S@.budget_ms(blocked_until) "
	    "FROM @S@.budgets WHERE name = $1 AND blocked_until >= "
	    "timestamptz 'epoch' + $2::bigint * interval '1 millisecond'", 2, v,
	    budget_confirmed, b);
}

static void
notified(const char *channel, const char *payload, void *arg)
{
	struct state *st = arg;

	if (st->req_cb != NULL && strcmp(channel, "onesync_run") == 0 && payload != NULL)
		st->req_cb(payload, st->req_arg);
	else if (st->rebalance_cb != NULL && strcmp(channel, "onesync_rebalance") == 0)
		st->rebalance_cb(st->req_arg);
	else if (st->budget_cb != NULL && strcmp(channel, "onesync_budget") == 0 &&
	    payload != NULL)
		budget_notified(st, payload);
}

void
state_listen_budgets(struct state *st, void (*cb)(const char *, int64_t, void *), void *arg)
{
	st->budget_cb = cb;
	st->budget_arg = arg;
	pg_set_notify(st->coord, notified, st);
	coord_call(st, "listen", "LISTEN onesync_budget", 0, NULL, NULL, NULL);
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
	coord_call(st, "listen", st->budget_cb != NULL ?
	    "LISTEN onesync_run; LISTEN onesync_rebalance; LISTEN onesync_budget" :
	    "LISTEN onesync_run; LISTEN onesync_rebalance", 0, NULL, NULL, NULL);
}

void
state_requests(struct state *st, state_cb cb, void *arg)
{
	coord_call(st, "run requests", "SELECT COALESCE(jsonb_agg(name), '[]') FROM @S@.jobs "
	    "WHERE run_requested_at IS NOT NULL", 0, NULL, cb, arg);
}

void
state_register(struct state *st, int capacity, int64_t live_ms, bool once, state_cb cb,
    void *arg)
{
	char cap[16], live[32];
	const char *v[] = { st->instance, st->incarnation, PACKAGE_VERSION, cap, live,
	    once ? "true" : "false" };

	snprintf(cap, sizeof cap, "%d", capacity);
	snprintf(live, sizeof live, "%lld", (long long)live_ms);
	coord_call(st, "instance registration",
	    "SELECT @S@.instance_register($1, $2, $3, $4, $5, $6)", 6, v, cb, arg);
}

/*
 * The upsert keeps the row only while it is this process's (incarnation): "me" is false
 * when another process has taken the name over. The live list holds this instance as it
 * is now ($1, $3, $6): the statement's snapshot does not see its own upsert.
 */
#define HEARTBEAT_SQL(notify, me) \
	"WITH hb AS (INSERT INTO @S@.instances AS o (id, version, capacity, incarnation, jobs, " \
	"    backend_pid, backend_start) VALUES ($1, $2, $3, $7, $6::jsonb, pg_backend_pid(), " \
	"    (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())) " \
	"  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), version = $2, capacity = $3, " \
	"    jobs = $6::jsonb, backend_pid = EXCLUDED.backend_pid, " \
	"    backend_start = EXCLUDED.backend_start WHERE o.incarnation = $7 RETURNING id), " \
	"gone AS (DELETE FROM @S@.instances WHERE heartbeat_at < now() - $5 * interval '1 ms' " \
	"  AND id <> $1 RETURNING id)" notify " " \
	"SELECT jsonb_build_object('me', EXISTS (SELECT 1 FROM hb), " \
	"  'live', (SELECT COALESCE(jsonb_agg(jsonb_build_array(id, capacity, jobs) ORDER BY id), " \
	"      '[]') FROM (SELECT id, capacity, jobs FROM @S@.instances WHERE id <> $1 " \
	"    AND heartbeat_at > now() - $4 * interval '1 ms' " \
	"    UNION ALL SELECT $1, $3::int, $6::jsonb" me ") l), " \
	"  'stored', (SELECT COALESCE(jsonb_object_agg(name, identity), '{}') FROM @S@.jobs " \
	"    WHERE identity IS NOT NULL), " \
	"  'differs', (SELECT COALESCE(jsonb_object_agg(name, definition), '{}') FROM @S@.jobs " \
	"    WHERE identity IS NOT NULL AND $6::jsonb ? name AND identity <> $6::jsonb ->> name))"

void
state_heartbeat(struct state *st, int capacity, const char *jobs, int64_t live_ms,
    int64_t reap_ms, bool first, state_cb cb, void *arg)
{
	char cap[16], live[32], reap[32];
	const char *v[] = { st->instance, PACKAGE_VERSION, cap, live, reap, jobs,
	    st->incarnation };

	snprintf(cap, sizeof cap, "%d", capacity);
	snprintf(live, sizeof live, "%lld", (long long)live_ms);
	snprintf(reap, sizeof reap, "%lld", (long long)reap_ms);
	coord_call(st, "heartbeat", first ?
	    HEARTBEAT_SQL(", n AS (SELECT pg_notify('onesync_rebalance', $1))", " FROM n") :
	    HEARTBEAT_SQL("", ""), 7, v, cb, arg);
}

void
state_leave(struct state *st, state_cb cb, void *arg)
{
	const char *v[] = { st->instance, st->incarnation };

	/* only this process's row: a process that took the name over keeps it */
	coord_call(st, "leave", "WITH d AS (DELETE FROM @S@.instances WHERE id = $1 "
	    "AND incarnation = $2 RETURNING id) SELECT pg_notify('onesync_rebalance', $1)", 2, v,
	    cb, arg);
}

static void
claimed(void *arg, int rc, json_t *res, const char *err)
{
	struct state_req *r = arg;
	json_t *e = json_object_get(res, "epoch");
	int64_t epoch = json_is_integer(e) ? json_integer_value(e) : 0;

	if (rc == STATE_OK && json_object_get(res, "refused") != NULL) {
		char *def = json_dumps(json_object_get(res, "refused"), JSON_COMPACT | JSON_SORT_KEYS);
		const char *cur = NULL;
		char *what, *msg;

		if (r->st->identity_fn != NULL)
			(void)r->st->identity_fn(r->job, &cur, r->st->identity_arg);
		what = config_identity_diff(def, cur);
		msg = xasprintf("job %s: its definition differs from the one its state was "
		    "written with (changed: %s); restore it, or run 'onesyncctl reset %s' to start "
		    "over with the new one", r->job, what, r->job);
		r->claim_cb(r->arg, STATE_REFUSED, 0, msg);
		free(msg);
		free(what);
		free(def);
	} else
		r->claim_cb(r->arg, rc, epoch, err);
	free(r->job);
	free(r);
}

void
state_claim(struct state *st, const char *job, int64_t known, int64_t lease_ms,
    state_claim_cb cb, void *arg)
{
	struct state_req *r = req_new(st, "lease claim", NULL, arg);
	char ms[32], kn[32];
	const char *def = "{}", *id = "";
	const char *v[] = { job, st->instance, st->incarnation, kn, ms, NULL, NULL };

	if (st->identity_fn != NULL && (id = st->identity_fn(job, &def, st->identity_arg)) == NULL) {
		id = "";
		def = "{}";
	}
	v[5] = id;
	v[6] = def;
	r->claim_cb = cb;
	r->job = xstrdup(job);
	snprintf(ms, sizeof ms, "%lld", (long long)lease_ms);
	snprintf(kn, sizeof kn, "%lld", (long long)known);
	call(st, "lease claim", "SELECT @S@.claim_job($1, $2, $3, $4, $5, $6, $7::jsonb)", 7, v,
	    claimed, r);
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
		state_arr_text(&b, names[i]);
	}
	buf_addc(&b, '}');
	return buf_steal(&b);
}

char *
state_int_array(const int64_t *v, size_t n)
{
	struct buf b;

	buf_init(&b);
	buf_addc(&b, '{');
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%lld", i > 0 ? "," : "", (long long)v[i]);
	buf_addc(&b, '}');
	return buf_steal(&b);
}

void
state_renew(struct state *st, char *const *jobs, const int64_t *epochs, size_t n,
    int64_t lease_ms, state_cb cb, void *arg)
{
	char ms[32];
	char *names = text_array(jobs, n), *e = state_int_array(epochs, n);
	const char *v[] = { st->instance, st->incarnation, names, e, ms };

	snprintf(ms, sizeof ms, "%lld", (long long)lease_ms);
	coord_call(st, "lease renewal", "SELECT COALESCE(jsonb_agg(jsonb_build_array(name, epoch)), "
	    "'[]') FROM @S@.renew_leases($1, $2, $3::text[], $4::bigint[], $5)", 5, v, cb, arg);
	free(names);
	free(e);
}

void
state_release(struct state *st, char *const *jobs, const int64_t *epochs, size_t n,
    state_cb cb, void *arg)
{
	char *names = text_array(jobs, n), *e = state_int_array(epochs, n);
	const char *v[] = { st->instance, st->incarnation, names, e };

	coord_call(st, "lease release", "SELECT @S@.release_leases($1, $2, $3::text[], "
	    "$4::bigint[])", 4, v, cb, arg);
	free(names);
	free(e);
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
    struct state_ck *ck, state_cb cb, void *arg)
{
	char e[32], r[32], q[32];
	const char *v[6 + CK_NCOLS] = { job, st->instance, e, r, NULL, NULL };
	json_t *seq = json_object_get(ck->d, "seq");
	/* The scalars: an error text, a watermark or key PostgreSQL cannot store must not
	 * fail the checkpoint either. */
	json_t *ok = jsonx_storable(ck->d) ? json_incref(ck->d) : jsonx_storable_copy(ck->d);
	char *d = json_dumps(ok, JSON_COMPACT);

	json_decref(ok);
	snprintf(e, sizeof e, "%lld", (long long)epoch);
	snprintf(r, sizeof r, "%lld", run);
	if (json_is_integer(seq)) {
		snprintf(q, sizeof q, "%lld", (long long)json_integer_value(seq));
		v[4] = q;
	}
	v[5] = d;
	state_ck_close(ck, v + 6);
	call(st, "checkpoint", "SELECT @S@.checkpoint_lists($1, $2, $3, $4, $5, $6::jsonb, "
	    "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
	    6 + CK_NCOLS, v, cb, arg);
	state_ck_reopen(ck);
	free(d);
}

struct rows_req {
	state_rows_cb	 cb;
	state_row_cb	 row;	/* a streamed read: each row */
	void		*arg;
	const char	*what;
};

static void
rows_row(PGresult *row, void *arg)
{
	struct rows_req *q = arg;

	q->row(q->arg, row);
}

static void
rows_done(const struct pg_result_info *ri, void *arg)
{
	struct rows_req *q = arg;
	char *err = ri->res == NULL ? xasprintf("state database: reading %s failed: %s",
	    q->what, ri->err) : NULL;

	q->cb(q->arg, ri->res != NULL ? STATE_OK : STATE_ERROR, ri->res, err);
	free(err);
	free(q);
}

/* A read answered as rows (no fence: what a run reads was fenced by its run start); with
 * row, streamed: each row to row, then cb the end. */
static void
rows_query(struct state *st, const char *what, const char *fn_sql, int n,
    const char *const *v, state_row_cb row, state_rows_cb cb, void *arg)
{
	struct rows_req *q = xmalloc(sizeof *q);
	char *sql = subst_schema(st, fn_sql);

	q->cb = cb;
	q->row = row;
	q->arg = arg;
	q->what = what;
	if (row != NULL)
		pg_query_rows(st->pg, sql, n, v, rows_row, rows_done, q);
	else
		pg_query(st->pg, sql, n, v, rows_done, q);
	free(sql);
}

/* One page of a job's rows of `table`, keys after `after` (NULL: from the first, the
 * empty key included). */
static void
keyed_page(struct state *st, const char *what, const char *sql, const char *job,
    const char *after, int limit, state_rows_cb cb, void *arg)
{
	char lim[32];
	const char *v[] = { job, after, lim };

	snprintf(lim, sizeof lim, "%d", limit);
	rows_query(st, what, sql, 3, v, NULL, cb, arg);
}

void
state_records(struct state *st, const char *job, state_row_cb row, state_rows_cb done,
    void *arg)
{
	const char *v[] = { job };

	rows_query(st, "stored hashes", "SELECT NULL, (SELECT records_read FROM @S@.runs WHERE "
	    "job = $1 AND result = 'ok' ORDER BY id DESC LIMIT 1)::text UNION ALL "
	    "SELECT key, hash FROM @S@.records WHERE job = $1", 1, v, row, done, arg);
}

void
state_seen(struct state *st, const char *job, const char *after, int limit,
    state_rows_cb cb, void *arg)
{
	keyed_page(st, "the seen set", "SELECT key, hash, ts_ns FROM @S@.seen WHERE job = $1 "
	    "AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3", job, after, limit, cb, arg);
}

void
state_queue(struct state *st, const char *job, const char *after, int limit,
    state_rows_cb cb, void *arg)
{
	keyed_page(st, "the retry queue", "SELECT key, COALESCE(hash, ''), "
	    "(dead OR NOT COALESCE(next_retry_at <= now(), false))::text FROM @S@.failures "
	    "WHERE job = $1 AND ($2::text IS NULL OR key > $2) ORDER BY key LIMIT $3",
	    job, after, limit, cb, arg);
}

void
state_lookup(struct state *st, const char *job, char *const *keys, size_t n,
    state_rows_cb cb, void *arg)
{
	char *k = text_array(keys, n);
	const char *v[] = { job, k };

	rows_query(st, "the retry queue and unmarked records",
	    "WITH k AS (SELECT unnest($2::text[]) AS key) "
	    "SELECT 'f', f.key, COALESCE(f.hash, ''), "
	    "  (f.dead OR NOT COALESCE(f.next_retry_at <= now(), false))::text, NULL "
	    "  FROM @S@.failures f JOIN k USING (key) WHERE f.job = $1 "
	    "UNION ALL "
	    "SELECT 'u', u.key, u.hash, NULL, u.answer::text "
	    "  FROM @S@.unmarked u JOIN k USING (key) WHERE u.job = $1", 2, v, NULL, cb, arg);
	free(k);
}
