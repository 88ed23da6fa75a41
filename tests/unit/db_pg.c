/*
 * db_pg.c - io/pg.c against a real PostgreSQL: a pool of 3 serving 1000 queued queries,
 * errors with SQLSTATE, multi-statement strings, binary and NULL parameters, re-entrant
 * queries, pg_copy (COPY data sent without blocking, its session setup run once),
 * pg_query_rows (rows streamed one at a time, an error mid-stream),
 * LISTEN/NOTIFY, connect timeout and refusal, and (given --stop/--start
 * commands) a server restart with conn_lost and reconnection.
 * A unit test of `make check` that needs a PostgreSQL: ONESYNC_TEST_CONNINFO names one
 * ('host=... port=... user=...'); without it the test is skipped (exit 77).
 * tests/integ/38-db-unit-tests.sh runs it against the test server. Waits are checked from
 * below only: a loaded machine makes them longer, never shorter.
 * Usage: db_pg [--stop CMD --start CMD] [-v]
 * Prints one line per check and exits 0 only if all passed.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "io/pg.h"
#include "core/util.h"

static struct event_base	*base;
static struct pg		*P, *L, *T;
static char			*conninfo;
static const char		*stop_cmd, *start_cmd;
static int			 failures, step, pending, okcount, lostcount, chain;
static int			 hang_fd = -1;
static uint64_t			 t0;
static char			*notified;
static char			 appname[32];

static void	next_step(void);

#define CHECK(cond, ...) do {						\
	if (cond)							\
		printf("ok   ");					\
	else {								\
		printf("FAIL ");					\
		failures++;						\
	}								\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

static const char *
val(const struct pg_result_info *r)
{
	if (r->res == NULL || PQntuples(r->res) < 1 || PQnfields(r->res) < 1)
		return "(none)";
	return PQgetvalue(r->res, 0, 0);
}

static void
after(long ms, event_callback_fn fn)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_once(base, -1, EV_TIMEOUT, fn, NULL, &tv);
}

static void
done_first(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err == NULL && strcmp(val(r), "1") == 0 && strcmp(r->sqlstate, "") == 0,
	    "SELECT 1 -> %s", r->err ? r->err : val(r));
	CHECK(pg_is_up(P), "pg_is_up after the first query");
	next_step();
}

static void
done_many(const struct pg_result_info *r, void *arg)
{
	char want[32];

	snprintf(want, sizeof(want), "%ld", (long)(intptr_t)arg * 2);
	if (r->err == NULL && strcmp(val(r), want) == 0)
		okcount++;
	if (--pending == 0) {
		CHECK(okcount == 1000, "1000 queued queries on a pool of 3: %d right (%llu ms)",
		    okcount, (unsigned long long)(now_mono_ms() - t0));
		next_step();
	}
}

static void
done_count_conns(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err == NULL && strcmp(val(r), "3") == 0, "pool holds %s connection(s) (want 3)",
	    r->err ? r->err : val(r));
	next_step();
}

static void
done_err(const struct pg_result_info *r, void *arg)
{
	const char *want = arg;

	CHECK(r->res == NULL && r->err != NULL && strcmp(r->sqlstate, want) == 0 &&
	    !r->conn_lost && strchr(r->err, '\n') == NULL,
	    "error %s: \"%s\"", r->sqlstate, r->err ? r->err : "(null)");
	next_step();
}

static void
done_val(const struct pg_result_info *r, void *arg)
{
	const char *want = arg;

	CHECK(r->err == NULL && strcmp(val(r), want) == 0, "result %s (want %s)",
	    r->err ? r->err : val(r), want);
	next_step();
}

static long long nrows, rowsum;

static void
count_row(PGresult *row, void *arg)
{
	(void)arg;
	if (PQntuples(row) == 1)
		nrows++;
	rowsum += strtoll(PQgetvalue(row, 0, 0), NULL, 10);
}

/* The end of a streamed read: want is the row count expected, or an SQLSTATE. */
static void
done_rows(const struct pg_result_info *r, void *arg)
{
	const char *want = arg;

	if (strcmp(want, "22012") == 0)
		CHECK(r->res == NULL && strcmp(r->sqlstate, want) == 0 && nrows == 4999,
		    "pg_query_rows: %lld rows then error %s (want 4999, %s)", nrows,
		    r->sqlstate, want);
	else
		CHECK(r->err == NULL && r->res != NULL && PQntuples(r->res) == 0 &&
		    nrows == atoll(want) && rowsum == atoll(want) * (atoll(want) + 1) / 2,
		    "pg_query_rows: %lld rows streamed, sum %lld, end %s (want %s)", nrows,
		    rowsum, r->err != NULL ? r->err : "empty", want);
	next_step();
}

static void
done_chain(const struct pg_result_info *r, void *arg)
{
	char v[16];
	const char *vals[1] = { v };

	(void)arg;
	if (r->err == NULL && ++chain < 50) {
		snprintf(v, sizeof(v), "%d", chain);
		pg_query(P, "SELECT $1::int", 1, vals, done_chain, NULL);
		return;
	}
	CHECK(chain == 50 && r->err == NULL && strcmp(val(r), "49") == 0,
	    "50 queries chained from callbacks");
	next_step();
}

static void
on_notify(const char *channel, const char *payload, void *arg)
{
	(void)arg;
	free(notified);
	notified = xasprintf("%s:%s", channel, payload);
}

static void
check_notify(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	CHECK(notified != NULL && strcmp(notified, "chan:hello") == 0, "NOTIFY delivered: %s",
	    notified ? notified : "(nothing)");
	next_step();
}

static void
done_listen(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err == NULL, "LISTEN on a pool of 1");
	pg_query(P, "NOTIFY chan, 'hello'", 0, NULL, NULL, NULL);
	after(500, check_notify);
}

/* ---- restart ---- */

static void
done_sleep(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err != NULL && r->conn_lost && strcmp(r->sqlstate, "") == 0,
	    "query running during the stop: conn_lost, \"%s\"", r->err ? r->err : "(null)");
}

static void
done_down(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	if (r->err != NULL && r->conn_lost)
		lostcount++;
	else
		printf("     unexpected: %s\n", r->err ? r->err : val(r));
	if (--pending == 0) {
		CHECK(lostcount == 5, "5 queries while the server is down fail with conn_lost "
		    "(last: \"%s\")", r->err ? r->err : "");
		CHECK(!pg_is_up(P), "pg_is_up false while down");
		next_step();
	}
}

static void
done_up_again(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err == NULL && strcmp(val(r), "42") == 0, "after restart: %s in %llu ms",
	    r->err ? r->err : val(r), (unsigned long long)(now_mono_ms() - t0));
	CHECK(pg_is_up(P), "pg_is_up true again");
	next_step();
}

static void
do_stop(evutil_socket_t fd, short what, void *arg)
{
	int i;

	(void)fd; (void)what; (void)arg;
	if (system(stop_cmd) != 0)
		CHECK(0, "stop command");
	pending = 5;
	lostcount = 0;
	for (i = 0; i < 5; i++)
		pg_query(P, "SELECT 1", 0, NULL, done_down, NULL);
}

static void
do_start(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	if (system(start_cmd) != 0)
		CHECK(0, "start command");
	t0 = now_mono_ms();
	pg_query(P, "SELECT 42", 0, NULL, done_up_again, NULL);
}

/* ---- connect failures ---- */

static void
done_timeout(const struct pg_result_info *r, void *arg)
{
	uint64_t ms = now_mono_ms() - t0;
	long lo = (long)(intptr_t)arg;

	CHECK(r->err != NULL && r->conn_lost && strstr(r->err, "cannot connect to hang: timeout "
	    "after 500 ms") != NULL && ms >= (uint64_t)lo,
	    "connect timeout after %llu ms (>= %ld): \"%s\"", (unsigned long long)ms, lo,
	    r->err ? r->err : "");
	CHECK(!pg_is_up(T), "pg_is_up false");
	next_step();
}

static void
done_refused(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	CHECK(r->err != NULL && r->conn_lost && strstr(r->err, "cannot connect to refused: ") &&
	    strstr(r->err, "refused") != NULL,
	    "refused: \"%s\"", r->err ? r->err : "");
	next_step();
}

/* ---- shutdown ---- */

static void
done_shutdown(const struct pg_result_info *r, void *arg)
{
	(void)arg;
	if (r->err != NULL && strcmp(r->err, "shutting down") == 0)
		okcount++;
}

static void
do_free(evutil_socket_t fd, short what, void *arg)
{
	int i;

	(void)fd; (void)what; (void)arg;
	okcount = 0;
	for (i = 0; i < 10; i++)
		pg_query(P, "SELECT 1", 0, NULL, done_shutdown, NULL);
	pg_free(P);
	P = NULL;
	CHECK(okcount == 11, "pg_free fails running and queued queries: %d of 11", okcount);
	next_step();
}

static int
listen_port(bool keep)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || (keep && listen(fd, 8) == -1))
		return -1;
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	if (keep)
		hang_fd = fd;	/* accepts connections (backlog), never answers */
	else
		close(fd);
	return port;
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
	static const char bin[3] = { 'a', '\0', 'b' };
	const char *vals[2];
	int lens[2], fmts[2];
	char ci[256], *q;
	long i;

	(void)fd; (void)what; (void)arg;
	switch (step++) {
	case 0:
		CHECK(!pg_is_up(P), "pg_is_up false before any connection");
		pg_query(P, "SELECT 1", 0, NULL, done_first, NULL);
		break;
	case 1:
		pending = 1000;
		okcount = 0;
		t0 = now_mono_ms();
		for (i = 0; i < 1000; i++) {
			char v[16];

			snprintf(v, sizeof(v), "%ld", i);
			vals[0] = v;
			pg_query(P, "SELECT $1::int * 2", 1, vals, done_many, (void *)(intptr_t)i);
		}
		CHECK(pg_queued(P) == 1000, "pg_queued = %d", pg_queued(P));
		break;
	case 2:
		vals[0] = appname;
		pg_query(P, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
		    1, vals, done_count_conns, NULL);
		break;
	case 3: pg_query(P, "SELECT 1/0", 0, NULL, done_err, "22012"); break;
	case 4: pg_query(P, "SELEC 1", 0, NULL, done_err, "42601"); break;
	case 5:
		vals[0] = "x";
		pg_query(P, "SELECT $1::int", 1, vals, done_err, "22P02");
		break;
	case 6:
		pg_query(P, "DROP TABLE IF EXISTS drive_pg_t; CREATE TABLE drive_pg_t (a int); "
		    "INSERT INTO drive_pg_t VALUES (1), (2); SELECT count(*) FROM drive_pg_t", 0,
		    NULL, done_val, "2");
		break;
	case 7:
		pg_query(P, "SELECT 1; SELECT 1/0; SELECT 3", 0, NULL, done_err, "22012");
		break;
	case 8:
		vals[0] = bin;
		lens[0] = 3;
		fmts[0] = 1;
		vals[1] = "it's";
		lens[1] = 0;
		fmts[1] = 0;
		pg_query_params(P, "SELECT length($1::bytea) || $2::text", 2, vals, lens, fmts,
		    done_val, "3it's");
		break;
	case 9:
		vals[0] = NULL;
		pg_query(P, "SELECT $1::text IS NULL", 1, vals, done_val, "t");
		break;
	case 10:
		chain = 0;
		pg_query(P, "SELECT 0", 0, NULL, done_chain, NULL);
		break;
	case 11:
		pg_set_notify(L, on_notify, NULL);
		pg_query(L, "LISTEN chan", 0, NULL, done_listen, NULL);
		break;
	case 12:
		/* 8 MB up (PQflush returns 1 and the write side is waited for), 8 MB down. */
		q = xmalloc(8 << 20);
		memset(q, 'y', 8 << 20);
		q[(8 << 20) - 1] = '\0';
		vals[0] = q;
		pg_query(P, "SELECT length($1) + length(repeat('x', 8 << 20))", 1, vals, done_val,
		    "16777215");
		free(q);
		break;
	case 13:
		q = pg_quote_ident("a.b\"c", true);
		CHECK(strcmp(q, "\"a\".\"b\"\"c\"") == 0, "pg_quote_ident split: %s", q);
		free(q);
		q = pg_quote_ident("a.b", false);
		CHECK(strcmp(q, "\"a.b\"") == 0, "pg_quote_ident whole: %s", q);
		free(q);
		next_step();
		break;
	case 14:
		/* pg_copy on a pool of one: 8.5 MB of COPY data (flushed when writable), the
		 * setup creating the session's table first. */
		{
			struct buf b;

			buf_init(&b);
			for (i = 1; i <= 100000; i++)
				buf_printf(&b, "%075ld\\\\\t%ld\n", i, i);
			pg_copy(L, "cp", "CREATE TEMP TABLE cp (a text, n int) ON COMMIT DELETE ROWS",
			    "COPY cp FROM STDIN; SELECT count(*) || '/' || sum(n) || '/' || "
			    "max(length(a)) || '/' || bool_and(right(a, 1) = chr(92)) FROM cp", b.data,
			    b.len, done_val, "100000/5000050000/76/true");
			buf_free(&b);
		}
		break;
	case 15:
		/* The same session: the setup (not idempotent here) is not run again. */
		pg_copy(L, "cp", "CREATE TEMP TABLE cp (a text, n int) ON COMMIT DELETE ROWS",
		    "COPY cp FROM STDIN; SELECT count(*) || '/' || sum(n) FROM cp", "a\t1\nb\t2\n", 8,
		    done_val, "2/3");
		break;
	case 16:
		pg_copy(L, "cp", "CREATE TEMP TABLE cp (a text, n int) ON COMMIT DELETE ROWS",
		    "COPY cp FROM STDIN; SELECT 1", "a\tx\n", 4, done_err, "22P02");
		break;
	case 17:
		/* A statement that relied on the setup failed: the setup runs again. */
		pg_copy(L, "cp", "CREATE TEMP TABLE cp (a text, n int) ON COMMIT DELETE ROWS",
		    "COPY cp FROM STDIN; SELECT 1", "a\t1\n", 4, done_err, "42P07");
		break;
	case 18:
		/* pg_query_rows: 100,000 rows streamed one at a time, then an empty end. */
		nrows = 0;
		rowsum = 0;
		pg_query(P, "SELECT 1", 0, NULL, NULL, NULL);	/* another query meanwhile */
		pg_query_rows(P, "SELECT i, repeat('x', i % 50) FROM generate_series(1, $1::int) i",
		    1, (const char *[]){ "100000" }, count_row, done_rows, "100000");
		break;
	case 19:
		/* An error after 4,999 rows: the rows came, the end is the error. */
		nrows = 0;
		rowsum = 0;
		pg_query_rows(P, "SELECT 1 / (5000 - i) FROM generate_series(1, 10000) i", 0, NULL,
		    count_row, done_rows, "22012");
		break;
	case 20:
		if (stop_cmd == NULL || start_cmd == NULL) {
			printf("skip restart (no --stop/--start)\n");
			next_step();
			break;
		}
		pg_query(P, "SELECT pg_sleep(10)", 0, NULL, done_sleep, NULL);
		after(300, do_stop);
		break;
	case 21:
		if (stop_cmd != NULL && start_cmd != NULL) {
			after(300, do_start);
			break;
		}
		next_step();
		break;
	case 22:
		snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x", listen_port(true));
		T = pg_new(base, ci, "hang", 2, 500);
		t0 = now_mono_ms();
		pg_query(T, "SELECT 1", 0, NULL, done_timeout, (void *)(intptr_t)490);
		break;
	case 23:
		/* Right after a failure: waits for the backoff (200 ms +-25%) then 500 ms. */
		t0 = now_mono_ms();
		pg_query(T, "SELECT 1", 0, NULL, done_timeout, (void *)(intptr_t)640);
		break;
	case 24:
		pg_free(T);
		snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d dbname=x user=x",
		    listen_port(false));
		T = pg_new(base, ci, "refused", 2, 500);
		t0 = now_mono_ms();
		pg_query(T, "SELECT 1", 0, NULL, done_refused, NULL);
		break;
	case 25:
		pg_query(P, "SELECT pg_sleep(5)", 0, NULL, done_shutdown, NULL);
		after(300, do_free);
		break;
	default:
		pg_free(T);
		pg_free(L);
		event_base_loopexit(base, NULL);
		break;
	}
}

static void
next_step(void)
{
	event_base_once(base, -1, EV_TIMEOUT, step_cb, NULL, NULL);
}

int
main(int argc, char **argv)
{
	const char *server = getenv("ONESYNC_TEST_CONNINFO");
	int i, verbose = 0;

	if (server == NULL || *server == '\0') {
		printf("skipped: ONESYNC_TEST_CONNINFO names no PostgreSQL\n");
		return 77;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stop") == 0 && i + 1 < argc)
			stop_cmd = argv[++i];
		else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc)
			start_cmd = argv[++i];
		else if (strcmp(argv[i], "-v") == 0)
			verbose = 2;
	}
	log_init(verbose, "db_pg");
	/* A name of our own: backends of earlier runs may still be finishing. */
	snprintf(appname, sizeof(appname), "db_pg_%ld", (long)getpid());
	conninfo = xasprintf("%s application_name=%s", server, appname);
	base = event_base_new();
	P = pg_new(base, conninfo, "test", 3, 2000);
	L = pg_new(base, conninfo, "listen", 1, 2000);
	next_step();
	event_base_dispatch(base);
	free(conninfo);
	free(notified);
	if (hang_fd != -1)
		close(hang_fd);
	event_base_free(base);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
