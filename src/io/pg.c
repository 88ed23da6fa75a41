/*
 * pg.c - asynchronous libpq on libevent: per conninfo a pool of connections, each a
 * small state machine (connecting, idle, busy), and a FIFO of queued statements.
 * It never blocks the loop (no PQexec, no PQconnectdb) and never logs the conninfo
 * unredacted. Callbacks run from event handlers; a query queued from a callback is
 * only enqueued, and the queue is served on the next loop turn. pg_free must not be
 * called from one of the pool's own callbacks. The pools of the sources' and destinations'
 * databases (pg_pools) are kept here too, one per conninfo and timeout.
 * It stays one file: the connection's states, the queue and the reconnect are one state
 * machine, read best in one piece (tests/structure names it so).
 */
#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/pg.h"
#include "core/strmap.h"
#include "core/util.h"

#define PG_DEFAULT_CONNECT_MS	10000L
#define PG_BACKOFF_FIRST_MS	200L
#define PG_BACKOFF_MAX_MS	10000L

enum pgc_state { PGC_CONNECTING, PGC_IDLE, PGC_BUSY };

struct pg_query {
	struct pg_query	*next;
	char		*sql;
	int		 nparams;
	char		**values;
	int		*lengths;
	int		*formats;
	pg_cb		 cb;
	void		*arg;
	pg_row_cb	 row_cb;	/* pg_query_rows: each row as it arrives, else NULL */
	bool		 copying;	/* pg_copy: a simple-protocol string with a COPY FROM STDIN */
	char		*data;		/* ...the COPY's data, sent when the server asks */
	size_t		 datalen;
	char		*tag;		/* ...its session setup's name, NULL for none */
	char		*setup;		/* ...run first on a session that has not run it */
};

struct pg_conn {
	struct pg_conn	*next;
	struct pg	*pg;
	PGconn		*conn;
	enum pgc_state	 state;
	struct event	*ev;		/* socket */
	int		 ev_fd;
	short		 ev_what;
	struct event	*timer;		/* connect timeout, then the running query's answer timeout */
	struct pg_query	*q;		/* running query */
	PGresult	*last;		/* last result of the running query */
	char		*err;		/* first error of the running query */
	char		 sqlstate[6];
	struct strmap	 tags;		/* the pg_copy setups this session ran (committed) */
	bool		 tagging;	/* the running query runs its setup */
	bool		 copied;	/* the running query's COPY data is sent */
};

struct pg {
	struct event_base *base;
	char		*conninfo;
	char		*name;
	int		 size;
	long		 connect_timeout_ms;
	long		 statement_ms;	/* statement_timeout and lock_timeout of its sessions */
	long		 answer_ms;	/* a query unanswered this long: connection dropped */
	struct pg_query	*cancelled;	/* answered "cancelled" on the next turn */
	struct pg_conn	*conns;
	int		 nconns;
	struct pg_query	*qhead, *qtail;
	int		 nqueued;
	int		 nrunning;
	struct event	*kick;		/* serve the queue on the next turn */
	struct event	*retry;		/* connect backoff */
	long		 backoff_ms;
	uint64_t	 next_connect_at;
	bool		 last_connect_ok;
	bool		 warned_down;	/* a failure was logged; say so when it recovers */
	bool		 freeing;
	pg_notify_cb	 notify_cb;
	void		*notify_arg;
};

static void	conn_event(evutil_socket_t, short, void *);
static void	conn_send(struct pg_conn *, struct pg_query *);
static void	conn_watch(struct pg_conn *, short);

/* One line out of a libpq message: trailing newline gone, inner newlines as spaces. */
static char *
clean_msg(const char *m)
{
	char *s = xstrdup(m != NULL && *m != '\0' ? m : "unknown error"), *p, *e;

	for (p = s; *p != '\0'; p++)
		if (*p == '\n' || *p == '\t' || *p == '\r')
			*p = ' ';
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
	/* Collapse runs of spaces left by "\n\t". */
	for (p = e = s; *p != '\0'; p++)
		if (!(*p == ' ' && e > s && e[-1] == ' '))
			*e++ = *p;
	*e = '\0';
	return s;
}

static void
query_free(struct pg_query *q)
{
	int i;

	for (i = 0; i < q->nparams; i++)
		free(q->values[i]);
	free(q->values);
	free(q->lengths);
	free(q->formats);
	free(q->sql);
	free(q->data);
	free(q->tag);
	free(q->setup);
	free(q);
}

/* Call the query's callback once, then free the query. */
static void
query_done(struct pg_query *q, PGresult *res, const char *err, const char *sqlstate,
    bool conn_lost)
{
	struct pg_result_info info;

	info.res = err == NULL ? res : NULL;
	info.err = err;
	info.sqlstate = sqlstate != NULL ? sqlstate : "";
	info.conn_lost = conn_lost;
	if (q->cb != NULL)
		q->cb(&info, q->arg);
	query_free(q);
}

/* Take the whole queue out of the pool (new queries go to a fresh queue). */
static struct pg_query *
queue_take(struct pg *pg)
{
	struct pg_query *q = pg->qhead;

	pg->qhead = pg->qtail = NULL;
	pg->nqueued = 0;
	return q;
}

static void
queue_fail(struct pg_query *q, const char *err, bool conn_lost)
{
	struct pg_query *next;

	for (; q != NULL; q = next) {
		next = q->next;
		query_done(q, NULL, err, "", conn_lost);
	}
}

static void
pg_kick(struct pg *pg)
{
	if (!pg->freeing)
		event_active(pg->kick, EV_TIMEOUT, 0);
}

static int
count_open(const struct pg *pg)
{
	const struct pg_conn *c;
	int n = 0;

	for (c = pg->conns; c != NULL; c = c->next)
		if (c->state != PGC_CONNECTING)
			n++;
	return n;
}

/* Unlink and free a connection; its running query (if any) is handed back. */
static struct pg_query *
conn_close(struct pg_conn *c)
{
	struct pg *pg = c->pg;
	struct pg_conn **pp;
	struct pg_query *q = c->q;

	for (pp = &pg->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pg->nconns--;
	if (q != NULL)
		pg->nrunning--;
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->timer != NULL)
		event_free(c->timer);
	PQclear(c->last);
	free(c->err);
	strmap_free(&c->tags, NULL);
	PQfinish(c->conn);
	free(c);
	return q;
}

/* A connection died while open: fail its query (if any) with conn_lost. */
static void
conn_lost(struct pg_conn *c, const char *why)
{
	struct pg *pg = c->pg;
	char *msg = clean_msg(why), *err;
	struct pg_query *q;

	if (!pg->warned_down)
		log_warnx("lost connection to %s: %s; reconnecting on demand", pg->name, msg);
	pg->warned_down = true;
	pg->last_connect_ok = false;	/* up again only once a connect succeeds */
	q = conn_close(c);
	if (q != NULL) {
		err = xasprintf("lost connection to %s: %s", pg->name, msg);
		query_done(q, NULL, err, "", true);
		free(err);
	}
	free(msg);
	pg_kick(pg);
}

/* Connecting failed (or timed out): back off; fail the queue if nothing is open. */
static void
connect_failed(struct pg_conn *c, const char *why)
{
	struct pg *pg = c->pg;
	char *msg = clean_msg(why), *err;
	long jitter;

	conn_close(c);
	pg->last_connect_ok = false;
	pg->backoff_ms = pg->backoff_ms == 0 ? PG_BACKOFF_FIRST_MS : pg->backoff_ms * 2;
	if (pg->backoff_ms > PG_BACKOFF_MAX_MS)
		pg->backoff_ms = PG_BACKOFF_MAX_MS;
	jitter = (long)(rand64() % (uint64_t)(pg->backoff_ms / 2 + 1)) - pg->backoff_ms / 4;
	pg->next_connect_at = now_mono_ms() + (uint64_t)(pg->backoff_ms + jitter);
	err = xasprintf("cannot connect to %s: %s", pg->name, msg);
	if (!pg->warned_down)
		log_warnx("%s; retrying with backoff", err);
	else
		log_debug("%s; next attempt in %ld ms", err, pg->backoff_ms + jitter);
	pg->warned_down = true;
	if (count_open(pg) == 0)
		queue_fail(queue_take(pg), err, true);
	free(err);
	free(msg);
	pg_kick(pg);
}

/* Route NOTICE/WARNING messages to the log instead of libpq's stderr default. */
static void
notice_cb(void *arg, const char *message)
{
	struct pg *pg = arg;
	char *m = clean_msg(message);

	log_debug("%s: %s", pg->name, m);
	free(m);
}

/* The session setup's answer: only an error is worth a line. */
static void
setup_done(const struct pg_result_info *ri, void *arg)
{
	struct pg *pg = arg;

	if (ri->err != NULL && !ri->conn_lost)
		log_warnx("%s: cannot set the session's timeouts: %s", pg->name, ri->err);
}

/* The connection is up: switch to non-blocking queries and watch it for input. */
static void
connect_ok(struct pg_conn *c)
{
	struct pg *pg = c->pg;

	evtimer_del(c->timer);
	if (PQsetnonblocking(c->conn, 1) == -1) {
		connect_failed(c, PQerrorMessage(c->conn));
		return;
	}
	PQsetNoticeProcessor(c->conn, notice_cb, pg);
	c->state = PGC_IDLE;
	pg->last_connect_ok = true;
	pg->backoff_ms = 0;
	pg->next_connect_at = 0;
	if (pg->warned_down)
		log_info("connected to %s again", pg->name);
	else
		log_debug("connected to %s (server %d)", pg->name, PQserverVersion(c->conn));
	pg->warned_down = false;
	conn_watch(c, EV_READ);
	if (pg->statement_ms > 0) {
		/* The session's timeouts, as the first statement (not startup options,
		 * which a pooler such as PgBouncer may refuse). On PostgreSQL 14+ the
		 * server also notices a dropped client during a statement (a lock wait
		 * included) and ends it, instead of finishing a cancelled write once its
		 * lock is free. The connection serves queries once this is answered. */
		struct pg_query *q = xcalloc(1, sizeof(*q));

		q->sql = xasprintf("SELECT set_config('statement_timeout', '%ld', false), "
		    "set_config('lock_timeout', '%ld', false)%s", pg->statement_ms,
		    pg->statement_ms, PQserverVersion(c->conn) >= 140000 ?
		    ", set_config('client_connection_check_interval', '1000', false)" : "");
		q->cb = setup_done;
		q->arg = pg;
		conn_send(c, q);
		return;
	}
	pg_kick(pg);
}

/* Watch the connection's current socket for `what` (persistent once open). */
static void
conn_watch(struct pg_conn *c, short what)
{
	int fd = PQsocket(c->conn);
	short flags = what | (c->state == PGC_CONNECTING ? 0 : EV_PERSIST);

	if (c->ev != NULL && c->ev_fd == fd && c->ev_what == flags) {
		if (!event_pending(c->ev, EV_READ | EV_WRITE, NULL))
			event_add(c->ev, NULL);
		return;
	}
	if (c->ev != NULL)
		event_free(c->ev);
	c->ev = event_new(c->pg->base, fd, flags, conn_event, c);
	c->ev_fd = fd;
	c->ev_what = flags;
	event_add(c->ev, NULL);
}

/* One PQconnectPoll step; re-reads PQsocket since libpq may switch sockets. */
static void
connect_step(struct pg_conn *c)
{
	switch (PQconnectPoll(c->conn)) {
	case PGRES_POLLING_OK:
		connect_ok(c);
		break;
	case PGRES_POLLING_READING:
		conn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		conn_watch(c, EV_WRITE);
		break;
	default:
		connect_failed(c, PQerrorMessage(c->conn));
		break;
	}
}

static void
connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	char why[96];

	(void)fd; (void)what;
	if (c->state == PGC_BUSY) {
		/* No answer in time: a hung server or a half-open connection. Dropping the
		 * connection frees the pool slot; the server ends the statement by its own
		 * statement_timeout at the latest. */
		snprintf(why, sizeof(why), "no answer within %ld ms; connection dropped",
		    c->pg->answer_ms);
		conn_lost(c, why);
		return;
	}
	snprintf(why, sizeof(why), "timeout after %ld ms", c->pg->connect_timeout_ms);
	connect_failed(c, why);
}

/*
 * Start connecting with the conninfo's own parameters plus, unless it sets them, TCP
 * keepalives and tcp_user_timeout (a half-open connection fails instead of hanging).
 */
static PGconn *
connect_start(const struct pg *pg)
{
	static const char *const tcp[][2] = {
		{ "keepalives", "1" }, { "keepalives_idle", "15" }, { "keepalives_interval", "5" },
		{ "keepalives_count", "3" }, { "tcp_user_timeout", "30000" },
	};
	PQconninfoOption *opts, *o;
	const char **kw, **val;
	char *err = NULL;
	size_t n = 0, cap;
	PGconn *conn;

	if ((opts = PQconninfoParse(pg->conninfo, &err)) == NULL) {
		PQfreemem(err);
		return PQconnectStart(pg->conninfo);	/* reports the error itself */
	}
	for (o = opts, cap = NELEM(tcp) + 2; o->keyword != NULL; o++)
		cap++;
	kw = xcalloc(cap, sizeof *kw);
	val = xcalloc(cap, sizeof *val);
	for (size_t i = 0; i < NELEM(tcp); i++) {
		for (o = opts; o->keyword != NULL; o++)
			if (strcmp(o->keyword, tcp[i][0]) == 0 && o->val != NULL)
				break;
		if (o->keyword == NULL) {
			kw[n] = tcp[i][0];
			val[n++] = tcp[i][1];
		}
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		kw[n] = o->keyword;
		val[n++] = o->val;
	}
	kw[n] = NULL;
	val[n] = NULL;
	conn = PQconnectStartParams(kw, val, 0);
	free(kw);
	free(val);
	PQconninfoFree(opts);
	return conn;
}

/* Open one more connection. */
static void
conn_open(struct pg *pg)
{
	struct pg_conn *c = xcalloc(1, sizeof(*c));
	struct timeval tv;

	c->pg = pg;
	c->state = PGC_CONNECTING;
	c->ev_fd = -1;
	strmap_init(&c->tags);
	c->next = pg->conns;
	pg->conns = c;
	pg->nconns++;
	c->timer = evtimer_new(pg->base, connect_timeout, c);
	tv.tv_sec = pg->connect_timeout_ms / 1000;
	tv.tv_usec = (pg->connect_timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	c->conn = connect_start(pg);
	if (c->conn == NULL) {
		connect_failed(c, "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		connect_failed(c, PQerrorMessage(c->conn));
		return;
	}
	/* PQconnectStart acts as if the last poll said "writing". */
	conn_watch(c, EV_WRITE);
}

/* Hand a query to an idle connection. */
static void
conn_send(struct pg_conn *c, struct pg_query *q)
{
	const char *const *values = (const char *const *)q->values;
	struct pg *pg = c->pg;
	char *msg, *err;
	int ok;

	c->q = q;
	c->state = PGC_BUSY;
	pg->nrunning++;
	c->sqlstate[0] = '\0';
	c->copied = false;
	c->tagging = q->tag != NULL && strmap_get(&c->tags, q->tag) == NULL;
	if (pg->answer_ms > 0) {
		struct timeval tv = { pg->answer_ms / 1000, (pg->answer_ms % 1000) * 1000 };

		evtimer_add(c->timer, &tv);
	}
	if (c->tagging) {
		/* One string: the setup commits with the first statement that uses it. */
		char *sql = xasprintf("%s; %s", q->setup, q->sql);

		ok = PQsendQuery(c->conn, sql);
		free(sql);
	} else if (q->nparams == 0)
		ok = PQsendQuery(c->conn, q->sql);
	else
		ok = PQsendQueryParams(c->conn, q->sql, q->nparams, NULL, values, q->lengths,
		    q->formats, 0);
	if (ok && q->row_cb != NULL && !PQsetSingleRowMode(c->conn) && c->err == NULL)
		/* never seen (it is asked right after the send): the query ends in an error
		 * rather than with rows that nobody was handed */
		c->err = xstrdup("libpq refused single-row mode");
	if (!ok) {
		if (PQstatus(c->conn) == CONNECTION_BAD) {
			conn_lost(c, PQerrorMessage(c->conn));
			return;
		}
		c->q = NULL;
		c->state = PGC_IDLE;
		evtimer_del(c->timer);
		pg->nrunning--;
		msg = clean_msg(PQerrorMessage(c->conn));
		err = xasprintf("%s: %s", pg->name, msg);
		query_done(q, NULL, err, "", false);
		free(err);
		free(msg);
		pg_kick(pg);
		return;
	}
	switch (PQflush(c->conn)) {
	case 0:
		conn_watch(c, EV_READ);
		break;
	case 1:
		conn_watch(c, EV_READ | EV_WRITE);
		break;
	default:
		conn_lost(c, PQerrorMessage(c->conn));
		break;
	}
}

/* Hand pending notifications to the notify callback. */
static void
conn_notifies(struct pg_conn *c)
{
	PGnotify *n;

	while ((n = PQnotifies(c->conn)) != NULL) {
		if (c->pg->notify_cb != NULL)
			c->pg->notify_cb(n->relname, n->extra, c->pg->notify_arg);
		PQfreemem(n);
	}
}

/*
 * The server asks for pg_copy's data: hand it to libpq at once (it is in memory already)
 * and end it; whatever the socket does not take now goes when it is writable. Returns
 * false when the connection was lost (c is gone).
 */
static bool
conn_copy_in(struct pg_conn *c)
{
	struct pg_query *q = c->q;
	size_t off = 0, n;
	int r = 1;

	if (!q->copying || c->copied) {
		PQputCopyEnd(c->conn, "COPY FROM STDIN is not supported by onesyncd");
		return true;
	}
	c->copied = true;
	while (r == 1 && off < q->datalen) {
		n = q->datalen - off < 65536 ? q->datalen - off : 65536;
		r = PQputCopyData(c->conn, q->data + off, (int)n);
		off += n;
	}
	if (r == 1)
		r = PQputCopyEnd(c->conn, NULL);
	if (r == 1)
		r = PQflush(c->conn);
	if (r == -1) {
		conn_lost(c, PQerrorMessage(c->conn));
		return false;
	}
	if (r == 1)
		conn_watch(c, EV_READ | EV_WRITE);	/* conn_event flushes, then reads */
	return true;
}

/* Collect results while they are complete; finish the query at the NULL result. */
static void
conn_results(struct pg_conn *c)
{
	struct pg *pg = c->pg;
	struct pg_query *q;
	PGresult *res, *last;
	char *err;
	const char *ss;
	char sqlstate[6];

	while (!PQisBusy(c->conn)) {
		if ((res = PQgetResult(c->conn)) == NULL)
			break;
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
			/* pg_query_rows: one row, handed over and freed (none after an error) */
			if (c->err == NULL && c->q->row_cb != NULL)
				c->q->row_cb(res, c->q->arg);
			PQclear(res);
			continue;
		case PGRES_FATAL_ERROR:
			if (c->err == NULL) {
				c->err = clean_msg(PQresultErrorMessage(res));
				ss = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", ss ? ss : "");
			}
			break;
		case PGRES_COPY_IN:
			PQclear(res);
			if (!conn_copy_in(c))
				return;
			if (c->ev_what & EV_WRITE)
				return;
			continue;
		case PGRES_COPY_OUT:
		case PGRES_COPY_BOTH:
			PQclear(res);
			conn_lost(c, "COPY TO STDOUT is not supported by onesyncd");
			return;
		default:
			break;
		}
		PQclear(c->last);
		c->last = res;
	}
	if (PQisBusy(c->conn))
		return;
	/* All results are in: the query is complete. */
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		conn_lost(c, c->err != NULL ? c->err : PQerrorMessage(c->conn));
		return;
	}
	q = c->q;
	last = c->last;
	err = c->err;
	if (err == NULL && c->tagging)
		strmap_put(&c->tags, q->tag, c);
	else if (err != NULL && q->tag != NULL && !c->tagging)
		(void)strmap_del(&c->tags, q->tag);	/* gone? (dropped, DISCARD): run it again */
	snprintf(sqlstate, sizeof(sqlstate), "%s", c->sqlstate);
	c->q = NULL;
	c->last = NULL;
	c->err = NULL;
	c->state = PGC_IDLE;
	evtimer_del(c->timer);
	pg->nrunning--;
	pg_kick(pg);
	query_done(q, last, err, sqlstate, false);
	PQclear(last);
	free(err);
}

/* Socket event of a connection in any state. */
static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct pg_conn *c = arg;
	int r;

	(void)fd;
	if (c->state == PGC_CONNECTING) {
		connect_step(c);
		return;
	}
	if (what & EV_READ) {
		if (!PQconsumeInput(c->conn)) {
			conn_lost(c, PQerrorMessage(c->conn));
			return;
		}
		conn_notifies(c);
	}
	if (c->state == PGC_BUSY && (c->ev_what & EV_WRITE)) {
		if ((r = PQflush(c->conn)) == -1) {
			conn_lost(c, PQerrorMessage(c->conn));
			return;
		}
		if (r == 0)
			conn_watch(c, EV_READ);
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		conn_lost(c, PQerrorMessage(c->conn));
		return;
	}
	if (c->state == PGC_BUSY && !(c->ev_what & EV_WRITE))
		conn_results(c);
}

/* The first idle connection, or NULL. */
static struct pg_conn *
idle_conn(struct pg *pg)
{
	struct pg_conn *c;

	for (c = pg->conns; c != NULL; c = c->next)
		if (c->state == PGC_IDLE)
			return c;
	return NULL;
}

/* Serve the queue: idle connections take queries; open more while allowed. */
static void
dispatch(struct pg *pg)
{
	struct pg_conn *c;
	struct pg_query *q;
	struct timeval tv;
	uint64_t now;
	int connecting;

	/* Each send leaves c busy or closed, so the queue shrinks every round. */
	while (pg->qhead != NULL && (c = idle_conn(pg)) != NULL) {
		q = pg->qhead;
		if ((pg->qhead = q->next) == NULL)
			pg->qtail = NULL;
		pg->nqueued--;
		q->next = NULL;
		conn_send(c, q);
	}
	for (;;) {
		if (pg->qhead == NULL || pg->nconns >= pg->size)
			return;
		connecting = 0;
		for (c = pg->conns; c != NULL; c = c->next)
			if (c->state == PGC_CONNECTING)
				connecting++;
		if (connecting >= pg->nqueued)
			return;
		now = now_mono_ms();
		if (now < pg->next_connect_at) {
			if (connecting == 0 && !evtimer_pending(pg->retry, NULL)) {
				tv.tv_sec = (long)((pg->next_connect_at - now) / 1000);
				tv.tv_usec = (long)((pg->next_connect_at - now) % 1000) * 1000;
				evtimer_add(pg->retry, &tv);
			}
			return;
		}
		log_debug("opening connection %d of %d to %s", pg->nconns + 1, pg->size,
		    pg->name);
		conn_open(pg);	/* a synchronous failure sets next_connect_at */
	}
}

static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pg *pg = arg;
	struct pg_query *q = pg->cancelled;

	(void)fd; (void)what;
	pg->cancelled = NULL;
	queue_fail(q, "cancelled", false);
	dispatch(pg);
}

struct pg *
pg_new(struct event_base *base, const char *conninfo, const char *name, int size,
    long connect_timeout_ms)
{
	struct pg *pg = xcalloc(1, sizeof(*pg));
	char *red = redact_conninfo(conninfo);

	pg->base = base;
	pg->conninfo = xstrdup(conninfo);
	pg->name = xstrdup(name != NULL ? name : "postgresql");
	pg->size = size > 0 ? size : 1;
	pg->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms :
	    PG_DEFAULT_CONNECT_MS;
	pg->kick = event_new(base, -1, 0, kick_cb, pg);
	pg->retry = evtimer_new(base, kick_cb, pg);
	log_debug("%s: pool of %d connection(s) to %s", pg->name, pg->size, red);
	free(red);
	return pg;
}

void
pg_free(struct pg *pg)
{
	struct pg_query *q, *running = NULL;

	if (pg == NULL)
		return;
	pg->freeing = true;
	while (pg->conns != NULL) {
		if ((q = conn_close(pg->conns)) != NULL) {
			q->next = running;
			running = q;
		}
	}
	queue_fail(running, "shutting down", false);
	queue_fail(pg->cancelled, "shutting down", false);
	pg->cancelled = NULL;
	while (pg->qhead != NULL)
		queue_fail(queue_take(pg), "shutting down", false);
	event_free(pg->kick);
	event_free(pg->retry);
	free(pg->conninfo);
	free(pg->name);
	free(pg);
}

void
pg_set_timeouts(struct pg *pg, long statement_ms, long answer_ms)
{
	pg->statement_ms = statement_ms > 0 ? statement_ms : 0;
	pg->answer_ms = answer_ms > 0 ? answer_ms : 0;
}

/* The pools of the sources' and destinations' databases, one per conninfo and timeout. */
struct pg_pools {
	struct event_base	*base;
	long			 connect_timeout_ms;
	struct strmap		 pools;		/* "timeout\x1fconninfo" -> struct pg * */
};

struct pg_pools *
pg_pools_new(struct event_base *base, long connect_timeout_ms)
{
	struct pg_pools *pp = xcalloc(1, sizeof *pp);

	pp->base = base;
	pp->connect_timeout_ms = connect_timeout_ms;
	strmap_init(&pp->pools);
	return pp;
}

struct pg *
pg_pools_get(struct pg_pools *pp, const char *conninfo, int64_t timeout_ms)
{
	char *k = xasprintf("%lld\x1f%s", (long long)timeout_ms, conninfo);
	struct pg *pg = strmap_get(&pp->pools, k);

	if (pg == NULL) {
		pg = pg_new(pp->base, conninfo, "user database", 4, pp->connect_timeout_ms);
		pg_set_timeouts(pg, (long)timeout_ms, (long)(timeout_ms + PG_ANSWER_MARGIN_MS));
		strmap_put(&pp->pools, k, pg);
	}
	free(k);
	return pg;
}

void
pg_pools_free(struct pg_pools *pp)
{
	size_t it = 0;
	const char *k;
	void *v;

	if (pp == NULL)
		return;
	while (strmap_next(&pp->pools, &it, &k, &v))
		pg_free(v);
	strmap_free(&pp->pools, NULL);
	free(pp);
}

void
pg_cancel(struct pg *pg, pg_cb cb, bool (*match)(void *arg, void *ctx), void *ctx)
{
	struct pg_query **pp, *q;
	struct pg_conn *c, *next;

	if (pg == NULL || pg->freeing)
		return;
	pg->qtail = NULL;
	for (pp = &pg->qhead; (q = *pp) != NULL; ) {
		if (q->cb == cb && match(q->arg, ctx)) {
			*pp = q->next;
			pg->nqueued--;
			q->next = pg->cancelled;
			pg->cancelled = q;
			continue;
		}
		pg->qtail = q;
		pp = &q->next;
	}
	for (c = pg->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state != PGC_BUSY || c->q == NULL || c->q->cb != cb || !match(c->q->arg, ctx))
			continue;
		/* libpq 15 has no non-blocking cancel request: drop the connection instead;
		 * the server ends the statement by its statement_timeout at the latest. */
		log_debug("%s: dropping a connection to cancel its statement", pg->name);
		q = conn_close(c);
		q->next = pg->cancelled;
		pg->cancelled = q;
	}
	if (pg->cancelled != NULL)
		pg_kick(pg);
}

void
pg_set_notify(struct pg *pg, pg_notify_cb cb, void *arg)
{
	pg->notify_cb = cb;
	pg->notify_arg = arg;
}

void
pg_query_params(struct pg *pg, const char *sql, int nparams, const char *const *values,
    const int *lengths, const int *formats, pg_cb cb, void *arg)
{
	struct pg_query *q;
	size_t len;
	int i;

	if (pg->freeing) {
		q = xcalloc(1, sizeof(*q));
		q->cb = cb;
		q->arg = arg;
		query_done(q, NULL, "shutting down", "", false);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->sql = xstrdup(sql);
	q->cb = cb;
	q->arg = arg;
	q->nparams = nparams > 0 ? nparams : 0;
	if (q->nparams > 0) {
		q->values = xcalloc((size_t)nparams, sizeof(*q->values));
		q->lengths = xcalloc((size_t)nparams, sizeof(*q->lengths));
		q->formats = xcalloc((size_t)nparams, sizeof(*q->formats));
		for (i = 0; i < nparams; i++) {
			q->formats[i] = formats != NULL ? formats[i] : 0;
			if (values == NULL || values[i] == NULL)
				continue;
			len = q->formats[i] == 1 && lengths != NULL ? (size_t)lengths[i] :
			    strlen(values[i]);
			q->values[i] = xmalloc(len + 1);
			memcpy(q->values[i], values[i], len);
			q->values[i][len] = '\0';
			q->lengths[i] = (int)len;
		}
	}
	if (pg->qtail != NULL)
		pg->qtail->next = q;
	else
		pg->qhead = q;
	pg->qtail = q;
	pg->nqueued++;
	pg_kick(pg);
}

void
pg_query(struct pg *pg, const char *sql, int nparams, const char *const *values, pg_cb cb,
    void *arg)
{
	pg_query_params(pg, sql, nparams, values, NULL, NULL, cb, arg);
}

void
pg_query_rows(struct pg *pg, const char *sql, int nparams, const char *const *values,
    pg_row_cb row_cb, pg_cb cb, void *arg)
{
	pg_query_params(pg, sql, nparams, values, NULL, NULL, cb, arg);
	if (pg->freeing)
		return;	/* answered already */
	pg->qtail->row_cb = row_cb;
}

void
pg_copy(struct pg *pg, const char *tag, const char *setup, const char *sql, const char *data,
    size_t len, pg_cb cb, void *arg)
{
	struct pg_query *q;

	pg_query_params(pg, sql, 0, NULL, NULL, NULL, cb, arg);
	if (pg->freeing)
		return;	/* answered already */
	q = pg->qtail;
	q->copying = true;
	q->data = xmalloc(len + 1);
	memcpy(q->data, data, len);
	q->datalen = len;
	if (tag != NULL && setup != NULL) {
		q->tag = xstrdup(tag);
		q->setup = xstrdup(setup);
	}
}

bool
pg_is_up(const struct pg *pg)
{
	return count_open(pg) > 0 || pg->last_connect_ok;
}

int
pg_queued(const struct pg *pg)
{
	return pg->nqueued + pg->nrunning;
}

char *
pg_quote_ident(const char *s, bool split_dots)
{
	struct buf b;

	buf_init(&b);
	buf_addc(&b, '"');
	for (; *s != '\0'; s++) {
		if (*s == '"')
			buf_addc(&b, '"');
		if (*s == '.' && split_dots) {
			buf_adds(&b, "\".\"");
			continue;
		}
		buf_addc(&b, *s);
	}
	buf_addc(&b, '"');
	return buf_steal(&b);
}

/*
 * SQLSTATEs that one row can cause, so that a batch failing with one is sent again row by
 * row: cardinality (21: two rows of the batch are one destination row, e.g. keys 1 and 01
 * into an int column), data (22), constraints (23), what a trigger or a routine it calls
 * raises (09 triggered action, 27 triggered data change, 2F SQL routine, 38/39 external
 * routine, P0 PL/pgSQL: RAISE EXCEPTION is P0001), 44 WITH CHECK OPTION of a view, 54000
 * (a value too large for an index), and any class PostgreSQL does not define (a trigger's
 * own RAISE ... USING ERRCODE). Also the ambiguous ones of pg_row_error_ambiguous (42501,
 * 55 but 55P03): the caller narrows, and takes them for the table's when every row fails
 * alike. Never the others: connection (08), undefined table or column and syntax (the rest
 * of 42), resources (53), a lock wait that timed out (55P03), statement timeout and
 * shutdown (57), serialization and deadlock (40), internal errors (XX, 58)...: those fail
 * the batch, and the run.
 */
bool
pg_row_error(const char *sqlstate)
{
	static const char *const row_classes[] = {
		"09", "21", "22", "23", "27", "2F", "38", "39", "44", "P0",
	};
	static const char *const pg_classes[] = {	/* every other class PostgreSQL uses */
		"00", "01", "02", "03", "08", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "24",
		"25", "26", "28", "2B", "2D", "34", "3B", "3D", "3F", "40", "42", "53", "54",
		"55", "57", "58", "72", "F0", "HV", "XX",
	};

	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return false;
	if (strcmp(sqlstate, "54000") == 0 || pg_row_error_ambiguous(sqlstate))
		return true;
	for (size_t i = 0; i < NELEM(row_classes); i++)
		if (strncmp(sqlstate, row_classes[i], 2) == 0)
			return true;
	for (size_t i = 0; i < NELEM(pg_classes); i++)
		if (strncmp(sqlstate, pg_classes[i], 2) == 0)
			return false;
	return true;
}

/*
 * SQLSTATEs that may be one row's or the whole table's: insufficient_privilege (42501: a
 * row-level security policy's WITH CHECK refusing one row, a trigger raising it, or
 * "permission denied for table") and object state (55: a trigger raising
 * object_not_in_prerequisite_state for one row, or a table that refuses every row); not
 * 55P03 (lock_not_available: a lock wait that timed out is the table's, and sending the
 * rows one by one would wait for it once per row). The
 * batch is sent row by row; when every row of it (more than one) then fails with the same
 * SQLSTATE, it is the table's: the batch fails, and the run, instead of queueing them all.
 */
bool
pg_row_error_ambiguous(const char *sqlstate)
{
	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return false;
	return strcmp(sqlstate, "42501") == 0 || (strncmp(sqlstate, "55", 2) == 0 &&
	    strcmp(sqlstate, "55P03") != 0);
}
