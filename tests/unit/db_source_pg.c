/*
 * db_source_pg.c - source_pg.c (and the source.c dispatch) against a real PostgreSQL:
 * keyset paging of SPG_MODIFIED through a 2,000-row tie, exact round trips of timestamptz /
 * timestamp / integer watermarks, SPG_PENDING paging while every page is marked,
 * compare-and-set marking (MARK_CONFLICT), settle, values that look like SQL, a
 * schema-qualified table with a quote in a column name, errors that name the table and
 * never the password, and cancels with late answers. It creates its own database and drops
 * it at the end.
 * A unit test of `make check` that needs a PostgreSQL: ONESYNC_TEST_CONNINFO names one
 * ('host=... port=... user=...', a role that may create databases); without it the test
 * is skipped (exit 77). tests/integ/38-db-unit-tests.sh runs it against the test server.
 * Prints one line per check and exits 0 only if all passed. -v: debug log lines.
 */
#include <event2/event.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/tmpl_compile.h"
#include "core/log.h"
#include "io/pg.h"
#include "conn/source.h"
#include "conn/source_pg.h"
#include "core/util.h"

static struct event_base	*base;
static struct conn_env		 E;	/* the connectors' context */
static struct pg		*P;
static PGconn			*admin;
static char			*conninfo, *bad_conninfo;
static int			 failures;
static bool			 in_call;

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

/* Run a statement on the admin connection (setup and checks only: blocking is fine here). */
static void
sql(const char *q)
{
	PGresult *res = PQexec(admin, q);

	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		fprintf(stderr, "setup failed: %s: %s", q, PQerrorMessage(admin));
		exit(1);
	}
	PQclear(res);
}

/* First value of a query's first row (malloced). */
static char *
sql_val(const char *q)
{
	PGresult *res = PQexec(admin, q);
	char *v;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
		fprintf(stderr, "check failed: %s: %s", q, PQerrorMessage(admin));
		exit(1);
	}
	v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

static long long
sql_int(const char *q)
{
	char *v = sql_val(q);
	long long n = atoll(v);

	free(v);
	return n;
}

/* ---- synchronous wrappers over the async API ---- */

struct fetch_result {
	bool			 called;
	bool			 early;
	int			 rc;
	struct source_page	*page;
	char			*err;
};

static void
fetched(void *arg, int rc, struct source_page *page, const char *err)
{
	struct fetch_result *fr = arg;

	fr->called = true;
	fr->early = in_call;
	fr->rc = rc;
	fr->page = page;
	fr->err = err != NULL ? xstrdup(err) : NULL;
	event_base_loopbreak(base);
}

static void
fetch(const struct job_conf *job, const struct source_pg_read *rd, struct fetch_result *fr)
{
	struct source_req *sr;
	char *err = NULL;

	memset(fr, 0, sizeof *fr);
	in_call = true;
	sr = source_fetch(&E, job, &(struct source_read){ .pg = rd }, fetched, fr, &err);
	in_call = false;
	if (sr == NULL) {
		fr->called = true;
		fr->rc = -1;
		fr->err = err;
		return;
	}
	while (!fr->called)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
fetch_clear(struct fetch_result *fr)
{
	source_page_free(fr->page);
	free(fr->err);
	memset(fr, 0, sizeof *fr);
}

struct mark_result {
	bool			 called;
	bool			 early;
	int			 rc;
	struct source_marker	*marker;
};

static void
marked(void *arg, int rc, const char *err)
{
	struct mark_result *mr = arg;

	(void)err;
	mr->called = true;
	mr->early = in_call;
	mr->rc = rc;
	source_mark_cancel(mr->marker);	/* the caller frees it from its callback */
	event_base_loopbreak(base);
}

static int
mark(const struct job_conf *job, struct source_mark_item *marks, size_t n)
{
	struct mark_result mr = { 0 };

	in_call = true;
	mr.marker = source_mark(&E, job, marks, n, marked, &mr);
	in_call = false;
	while (!mr.called)
		event_base_loop(base, EVLOOP_ONCE);
	if (mr.early)
		return -2;
	return mr.rc;
}

static void
marks_clear(struct source_mark_item *marks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)marks[i].key);
		json_decref(marks[i].dest);
		free(marks[i].error);
	}
	free(marks);
}

/* Let the pool answer everything queued (for cancel tests). */
static void
drain(struct pg *pg)
{
	while (pg_queued(pg) > 0)
		event_base_loop(base, EVLOOP_ONCE);
	event_base_loop(base, EVLOOP_NONBLOCK);
}

static struct tmpl *
text_tmpl(const char *src)
{
	char *err = NULL;
	struct tmpl *t = tmpl_compile(src, TMPL_TEXT, TV_MARK, NULL, &err);

	if (t == NULL) {
		fprintf(stderr, "template %s: %s\n", src, err);
		exit(1);
	}
	return t;
}

/* Text of a record's field as the strategies would take it (string raw, number as written). */
static char *
field_text(json_t *rec, const char *f)
{
	json_t *v = json_object_get(rec, f);

	if (json_is_string(v))
		return xstrdup(json_string_value(v));
	if (json_is_integer(v))
		return xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
	return xstrdup("(none)");
}

static char *key_id[] = { "id" };

static void
job_init(struct job_conf *j, const char *table)
{
	memset(j, 0, sizeof *j);
	j->name = "test";
	j->key = key_id;
	j->nkey = 1;
	j->src.type = CONN_POSTGRESQL;
	j->src.conninfo = conninfo;
	j->src.table = (char *)table;
}

/* ---- the checks ---- */

static void
test_modified_paging(void)
{
	struct job_conf j;
	struct source_pg_read rd = { .mode = SPG_MODIFIED, .limit = 300 };
	struct fetch_result fr;
	char *from = NULL, *after = NULL, *prev_ts = NULL;
	unsigned char *seen = xcalloc(2501, 1);
	int pages = 0, total = 0, dups = 0, disorder = 0, early = 0;
	bool err = false;

	job_init(&j, "orders");
	j.modified.field = "updated_at";
	for (;;) {
		size_t i;
		json_t *rec;

		rd.from = from;
		rd.after_key = after;
		fetch(&j, &rd, &fr);
		early += fr.early;
		if (fr.rc != 0) {
			printf("     error: %s\n", fr.err);
			err = true;
			fetch_clear(&fr);
			break;
		}
		pages++;
		if (pages == 1)
			CHECK(fr.page->date != NULL && strchr(fr.page->date, 'T') != NULL &&
			    strlen(fr.page->date) >= 25 &&
			    strchr("+-", fr.page->date[strlen(fr.page->date) - 6]) != NULL,
			    "page->date is the database's now() in RFC 3339: %s", fr.page->date);
		json_array_foreach(fr.page->records, i, rec) {
			json_int_t id = json_integer_value(json_object_get(rec, "id"));
			const char *ts = json_string_value(json_object_get(rec, "updated_at"));

			if (id < 1 || id > 2500 || seen[id]++)
				dups++;
			if (prev_ts != NULL && ts != NULL && strcmp(prev_ts, ts) > 0)
				disorder++;
			free(prev_ts);
			prev_ts = xstrdup(ts != NULL ? ts : "");
			total++;
		}
		if (json_array_size(fr.page->records) < 300) {
			fetch_clear(&fr);
			break;
		}
		rec = json_array_get(fr.page->records, json_array_size(fr.page->records) - 1);
		free(from);
		free(after);
		from = field_text(rec, "updated_at");
		after = field_text(rec, "id");
		fetch_clear(&fr);
	}
	CHECK(!err && total == 2500 && dups == 0 && disorder == 0,
	    "SPG_MODIFIED keyset through a 2,000-row tie: %d rows in %d pages, %d seen twice, "
	    "%d out of order", total, pages, dups, disorder);
	CHECK(early == 0, "no fetch callback before source_pg_fetch returned");

	/* Inclusive >= when only from is given: the rows at the watermark come again. */
	rd.from = "2026-01-01T00:00:00.123456+00:00";
	rd.after_key = NULL;
	rd.limit = 5000;
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == 0 && json_array_size(fr.page->records) ==
	    (size_t)sql_int("SELECT count(*) FROM orders WHERE updated_at >= "
	    "'2026-01-01 00:00:00.123456+00'"),
	    "from alone is inclusive (>=): %zu rows", fr.rc == 0 ?
	    json_array_size(fr.page->records) : 0);
	fetch_clear(&fr);
	free(from);
	free(after);
	free(prev_ts);
	free(seen);
}

/* A column's value read as JSON, given back as from, finds exactly that row first. */
static void
test_roundtrip(void)
{
	static const char *fields[] = { "tz", "ts", "n" };
	struct job_conf j;
	struct fetch_result fr, one;

	job_init(&j, "rt");
	for (size_t f = 0; f < NELEM(fields); f++) {
		struct source_pg_read rd = { .mode = SPG_MODIFIED, .limit = 100 };
		size_t i, exact = 0, n = 0;
		json_t *rec;

		j.modified.field = (char *)fields[f];
		fetch(&j, &rd, &fr);
		if (fr.rc != 0) {
			CHECK(false, "round trip of %s: %s", fields[f], fr.err);
			fetch_clear(&fr);
			continue;
		}
		json_array_foreach(fr.page->records, i, rec) {
			char *from = field_text(rec, fields[f]), *back;
			struct source_pg_read r1 = { .mode = SPG_MODIFIED, .from = from,
			    .limit = 1 };

			n++;
			fetch(&j, &r1, &one);
			back = one.rc == 0 && json_array_size(one.page->records) == 1 ?
			    field_text(json_array_get(one.page->records, 0), fields[f]) : NULL;
			if (back != NULL && strcmp(back, from) == 0 && json_integer_value(
			    json_object_get(json_array_get(one.page->records, 0), "id")) ==
			    json_integer_value(json_object_get(rec, "id")))
				exact++;
			else
				printf("     %s: %s came back as %s\n", fields[f], from,
				    back != NULL ? back : one.err);
			free(back);
			free(from);
			fetch_clear(&one);
		}
		CHECK(n > 0 && exact == n, "%s values re-used as from find their own row: "
		    "%zu of %zu", fields[f], exact, n);
		fetch_clear(&fr);
	}
}

static void
test_pending_with_marking(void)
{
	struct job_conf j;
	struct mark_set ms[2];
	struct source_pg_read rd = { .mode = SPG_PENDING, .limit = 250 };
	struct fetch_result fr;
	char *after = NULL;
	unsigned char *seen = xcalloc(2501, 1);
	int total = 0, dups = 0, ok = 0, failed = 0, other = 0, earlym = 0, pages = 0;
	bool err = false;

	job_init(&j, "orders");
	j.src.pending = "NOT synced";
	j.src.where = "total >= 0";
	ms[0].column = "synced";
	ms[0].value = text_tmpl("true");
	ms[1].column = "erp_id";
	ms[1].value = text_tmpl("{{dest.erpId}}");
	j.src.mark_set = ms;
	j.src.nmark_set = 2;
	for (;;) {
		size_t i, n;
		json_t *rec;
		struct source_mark_item *marks;
		int rc;

		rd.after_key = after;
		fetch(&j, &rd, &fr);
		if (fr.rc != 0) {
			printf("     error: %s\n", fr.err);
			err = true;
			fetch_clear(&fr);
			break;
		}
		pages++;
		n = json_array_size(fr.page->records);
		marks = xcalloc(n + 1, sizeof *marks);
		json_array_foreach(fr.page->records, i, rec) {
			json_int_t id = json_integer_value(json_object_get(rec, "id"));

			if (id < 1 || id > 2500 || seen[id]++)
				dups++;
			total++;
			marks[i].key = field_text(rec, "id");
			marks[i].rec = rec;
			/* Every 97th answer lacks erpId: that record cannot be marked. */
			marks[i].dest = id % 97 == 0 ? json_pack("{si}", "other", 1) :
			    json_pack("{sI}", "erpId", (json_int_t)id * 10);
		}
		rc = mark(&j, marks, n);
		if (rc == -2)
			earlym++;
		for (i = 0; i < n; i++) {
			if (marks[i].outcome == MARK_OK)
				ok++;
			else if (marks[i].outcome == MARK_FAILED && marks[i].error != NULL &&
			    strstr(marks[i].error, "dest.erpId") != NULL)
				failed++;
			else {
				other++;
				printf("     record %s: outcome %d %s\n", marks[i].key,
				    marks[i].outcome, marks[i].error ? marks[i].error : "");
			}
		}
		free(after);
		after = n > 0 ? field_text(json_array_get(fr.page->records, n - 1), "id") : NULL;
		marks_clear(marks, n);
		if (n < 250) {
			fetch_clear(&fr);
			break;
		}
		fetch_clear(&fr);
	}
	CHECK(!err && total == 2500 && dups == 0,
	    "SPG_PENDING keyset while marking each page: %d rows in %d pages, %d seen twice",
	    total, pages, dups);
	CHECK(ok == 2500 - 25 && failed == 25 && other == 0,
	    "marks: %d MARK_OK, %d MARK_FAILED for a missing {{dest.erpId}}, %d other",
	    ok, failed, other);
	CHECK(earlym == 0, "no mark callback before source_mark returned");
	CHECK(sql_int("SELECT count(*) FROM orders WHERE synced AND erp_id = id * 10") == 2475 &&
	    sql_int("SELECT count(*) FROM orders WHERE NOT synced AND id % 97 = 0 AND "
	    "erp_id IS NULL") == 25,
	    "the table: 2,475 rows synced with erp_id = id * 10; the 25 unrenderable ones "
	    "untouched");
	/* One more read: only the 25 unmarked rows are still pending. */
	rd.after_key = NULL;
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == 0 && json_array_size(fr.page->records) == 25,
	    "pending afterwards: %zu rows", fr.rc == 0 ? json_array_size(fr.page->records) : 0);
	fetch_clear(&fr);
	free(after);
	free(seen);
	tmpl_free(ms[0].value);
	tmpl_free(ms[1].value);
}

static void
test_version_conflict(void)
{
	struct job_conf j;
	struct mark_set ms[1];
	struct source_pg_read rd = { .mode = SPG_PENDING, .limit = 100 };
	struct fetch_result fr;
	struct source_mark_item *marks;
	size_t i, n, ok = 0, conflict = 0;
	json_t *rec;
	int rc;

	sql("UPDATE orders SET synced = false WHERE id <= 20");
	job_init(&j, "orders");
	j.src.pending = "NOT synced AND id <= 20";
	j.src.columns = (char *[]){ "total", "synced" };	/* id and updated_at added */
	j.src.ncolumns = 2;
	j.flag.version = "updated_at";
	ms[0].column = "synced";
	ms[0].value = text_tmpl("true");
	j.src.mark_set = ms;
	j.src.nmark_set = 1;
	fetch(&j, &rd, &fr);
	n = fr.rc == 0 ? json_array_size(fr.page->records) : 0;
	CHECK(n == 20 && json_object_size(json_array_get(fr.page->records, 0)) == 4 &&
	    json_object_get(json_array_get(fr.page->records, 0), "updated_at") != NULL,
	    "columns list gets the key and the version column added: %zu rows, %zu fields", n,
	    json_object_size(json_array_get(fr.page->records, 0)));
	/* Edited while in flight: 3 and 7 (a new updated_at), 11 deleted. */
	sql("UPDATE orders SET updated_at = updated_at + interval '1 microsecond', total = 1 "
	    "WHERE id IN (3, 7)");
	sql("DELETE FROM orders WHERE id = 11");
	marks = xcalloc(n + 1, sizeof *marks);
	json_array_foreach(fr.page->records, i, rec) {
		marks[i].key = field_text(rec, "id");
		marks[i].rec = rec;
	}
	rc = mark(&j, marks, n);
	for (i = 0; i < n; i++) {
		bool want_conflict = strcmp(marks[i].key, "3") == 0 ||
		    strcmp(marks[i].key, "7") == 0 || strcmp(marks[i].key, "11") == 0;

		if (marks[i].outcome == MARK_OK && !want_conflict)
			ok++;
		else if (marks[i].outcome == MARK_CONFLICT && want_conflict &&
		    strstr(marks[i].error, "updated_at differs") != NULL)
			conflict++;
		else
			printf("     record %s: outcome %d %s\n", marks[i].key, marks[i].outcome,
			    marks[i].error ? marks[i].error : "");
	}
	CHECK(rc == 0 && ok == 17 && conflict == 3,
	    "compare-and-set on updated_at: %zu MARK_OK, %zu MARK_CONFLICT (3, 7 edited; 11 gone)",
	    ok, conflict);
	CHECK(sql_int("SELECT count(*) FROM orders WHERE id <= 20 AND NOT synced") == 2,
	    "rows 3 and 7 stay pending");
	marks_clear(marks, n);
	fetch_clear(&fr);
	tmpl_free(ms[0].value);
}

static void
test_settle(void)
{
	struct job_conf j;
	struct source_pg_read rd = { .mode = SPG_MODIFIED, .limit = 100 };
	struct fetch_result fr;

	sql("CREATE TABLE recent (id int PRIMARY KEY, updated_at timestamptz)");
	sql("INSERT INTO recent VALUES (1, now() - interval '1 hour'), (2, now() - "
	    "interval '2 seconds'), (3, now())");
	job_init(&j, "recent");
	j.modified.field = "updated_at";
	rd.from = sql_val("SELECT to_json(now() - interval '2 hours') #>> '{}'");
	rd.settle_ms = 60000;
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == 0 && json_array_size(fr.page->records) == 1,
	    "settle 60s hides the rows of the last minute: %zu of 3",
	    fr.rc == 0 ? json_array_size(fr.page->records) : 0);
	fetch_clear(&fr);
	rd.settle_ms = 0;
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == 0 && json_array_size(fr.page->records) == 3, "settle 0: %zu of 3",
	    fr.rc == 0 ? json_array_size(fr.page->records) : 0);
	fetch_clear(&fr);
	free((char *)rd.from);
}

static void
test_injection(void)
{
	struct job_conf j;
	struct mark_set ms[2];
	struct source_pg_read rd = { .mode = SPG_MODIFIED, .limit = 10 };
	struct fetch_result fr;
	struct source_mark_item mk[2];
	json_t *rec;
	char *note;
	int rc;

	job_init(&j, "orders");
	j.modified.field = "updated_at";
	rd.from = "2026-01-01'; DROP TABLE orders; --";
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == -1 && strstr(fr.err, "source database (table orders): ") == fr.err &&
	    strstr(fr.err, "invalid input syntax") != NULL,
	    "a quote in from is a value, not SQL: %s", fr.err);
	fetch_clear(&fr);
	rd.mode = SPG_ALL;
	rd.after_key = "0 OR 1=1";
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == -1 && strstr(fr.err, "invalid input syntax for type integer") != NULL,
	    "after_key \"0 OR 1=1\" is a value: %s", fr.err);
	fetch_clear(&fr);
	CHECK(sql_int("SELECT count(*) FROM orders") == 2499, "orders still has its 2,499 rows");

	/* Marking: rendered values go in as data. */
	ms[0].column = "note";
	ms[0].value = text_tmpl("{{dest.note}}");
	ms[1].column = "erp_id";
	ms[1].value = text_tmpl("{{dest.erpId}}");
	j.src.mark_set = ms;
	j.src.nmark_set = 2;
	rec = json_pack("{si}", "id", 1);
	memset(mk, 0, sizeof mk);
	mk[0].key = "1";
	mk[0].rec = rec;
	mk[0].dest = json_pack("{ss si}", "note", "x'); DROP TABLE orders; --\" \\ {{key}}",
	    "erpId", 5);
	rc = mark(&j, mk, 1);
	note = sql_val("SELECT note FROM orders WHERE id = 1");
	CHECK(rc == 0 && mk[0].outcome == MARK_OK &&
	    strcmp(note, "x'); DROP TABLE orders; --\" \\ {{key}}") == 0,
	    "a marking value with quotes and SQL is stored as text: %s", note);
	free(note);
	json_decref(mk[0].dest);
	free(mk[0].error);
	memset(mk, 0, sizeof mk);
	mk[0].key = "1";
	mk[0].rec = rec;
	mk[0].dest = json_pack("{ss ss}", "note", "n", "erpId", "1; DELETE FROM orders");
	rc = mark(&j, mk, 1);
	CHECK(rc == 0 && mk[0].outcome == MARK_FAILED && mk[0].error != NULL &&
	    strstr(mk[0].error, "source database (table orders)") != NULL &&
	    sql_int("SELECT count(*) FROM orders") == 2499,
	    "a non-integer erp_id fails the mark, nothing else: %s", mk[0].error);
	json_decref(mk[0].dest);
	free(mk[0].error);
	json_decref(rec);
	tmpl_free(ms[0].value);
	tmpl_free(ms[1].value);
}

static void
test_odd_names(void)
{
	struct job_conf j;
	struct mark_set ms[1];
	struct source_pg_read rd = { .mode = SPG_ALL, .limit = 2 };
	struct fetch_result fr;
	struct source_mark_item *marks;
	size_t n, i, ok = 0;
	json_t *rec;
	char *v;
	int rc;

	sql("CREATE SCHEMA \"Sales\"");
	sql("CREATE TABLE \"Sales\".\"Line Items\" (\"Id\" text PRIMARY KEY, \"we\"\"ird\" text, "
	    "other int)");
	sql("INSERT INTO \"Sales\".\"Line Items\" VALUES ('a', 'x', 1), ('b''c', 'y', 2), "
	    "('d', 'z', 3)");
	job_init(&j, "Sales.Line Items");
	j.key = (char *[]){ "Id" };
	j.src.columns = (char *[]){ "we\"ird" };
	j.src.ncolumns = 1;
	fetch(&j, &rd, &fr);
	rec = fr.rc == 0 ? json_array_get(fr.page->records, 1) : NULL;
	CHECK(fr.rc == 0 && json_array_size(fr.page->records) == 2 &&
	    json_object_size(rec) == 2 &&
	    strcmp(json_string_value(json_object_get(rec, "Id")), "b'c") == 0 &&
	    strcmp(json_string_value(json_object_get(rec, "we\"ird")), "y") == 0,
	    "schema.table \"Sales.Line Items\", a quote in a column name and in a key: %s",
	    fr.rc == 0 ? "read" : fr.err);
	/* Page 2 after the key b'c. */
	if (fr.rc == 0) {
		struct fetch_result f2;

		rd.after_key = "b'c";
		fetch(&j, &rd, &f2);
		CHECK(f2.rc == 0 && json_array_size(f2.page->records) == 1 &&
		    strcmp(json_string_value(json_object_get(json_array_get(f2.page->records, 0),
		    "Id")), "d") == 0, "text key with a quote as after_key");
		fetch_clear(&f2);
	}
	ms[0].column = "we\"ird";
	ms[0].value = text_tmpl("done {{key}} {{record.we\"ird}}");
	j.src.mark_set = ms;
	j.src.nmark_set = 1;
	n = fr.rc == 0 ? json_array_size(fr.page->records) : 0;
	marks = xcalloc(n + 1, sizeof *marks);
	json_array_foreach(fr.page->records, i, rec) {
		marks[i].key = field_text(rec, "Id");
		marks[i].rec = rec;
	}
	rc = mark(&j, marks, n);
	for (i = 0; i < n; i++)
		ok += marks[i].outcome == MARK_OK;
	v = sql_val("SELECT string_agg(\"we\"\"ird\", '|' ORDER BY \"Id\") FROM "
	    "\"Sales\".\"Line Items\"");
	CHECK(rc == 0 && ok == 2 && strcmp(v, "done a x|done b'c y|z") == 0,
	    "marking by a text key with a quote into a quoted column: %s", v);
	free(v);
	marks_clear(marks, n);
	fetch_clear(&fr);
	tmpl_free(ms[0].value);
}

static void
test_errors(void)
{
	struct job_conf j;
	struct source_pg_read rd = { .mode = SPG_ALL, .limit = 10 };
	struct fetch_result fr;
	struct mark_set ms[1];
	struct source_mark_item mk[1];
	json_t *rec;
	int rc;

	job_init(&j, "nope");
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == -1 && strstr(fr.err, "source database (table nope): ") == fr.err &&
	    strstr(fr.err, "does not exist") != NULL, "a missing table: %s", fr.err);
	fetch_clear(&fr);
	job_init(&j, "orders");
	j.src.conninfo = bad_conninfo;
	fetch(&j, &rd, &fr);
	CHECK(fr.rc == -1 && strstr(fr.err, "source database (table orders): ") == fr.err &&
	    strstr(fr.err, "s3cr3t") == NULL, "an unreachable database, password not shown: %s",
	    fr.err);
	fetch_clear(&fr);
	ms[0].column = "synced";
	ms[0].value = text_tmpl("true");
	j.src.mark_set = ms;
	j.src.nmark_set = 1;
	rec = json_pack("{si}", "id", 2);
	memset(mk, 0, sizeof mk);
	mk[0].key = "2";
	mk[0].rec = rec;
	rc = mark(&j, mk, 1);
	CHECK(rc == 0 && mk[0].outcome == MARK_FAILED && strstr(mk[0].error, "s3cr3t") == NULL,
	    "marking with the database down: rc 0, MARK_FAILED: %s", mk[0].error);
	free(mk[0].error);
	/* Nothing to send: the callback still comes, later. */
	rc = mark(&j, mk, 0);
	CHECK(rc == 0, "marking 0 records calls back on a later turn");
	json_decref(rec);
	tmpl_free(ms[0].value);
}

static void
never(void *arg, int rc, struct source_page *page, const char *err)
{
	(void)rc; (void)err;
	(*(int *)arg)++;
	source_page_free(page);
}

static void
never_mark(void *arg, int rc, const char *err)
{
	(void)rc; (void)err;
	(*(int *)arg)++;
}

static struct source_req *self_sr;

/* A callback that cancels its own read (the caller forgot to clear its pointer). */
static void
cancel_self(void *arg, int rc, struct source_page *page, const char *err)
{
	(void)rc; (void)err;
	(*(int *)arg)++;
	source_page_free(page);
	source_cancel(self_sr);
}

static void
test_cancel(void)
{
	struct job_conf j;
	struct source_pg_read rd = { .mode = SPG_ALL, .limit = 3000 };
	struct mark_set ms[1];
	struct source_mark_item *marks;
	struct source_marker *mk[3];
	struct source_req *sr[5];
	struct conn_env bad;
	char *err = NULL;
	int calls = 0;

	job_init(&j, "orders");
	for (size_t i = 0; i < NELEM(sr); i++)
		sr[i] = source_fetch(&E, &j, &(struct source_read){ .pg = &rd }, never, &calls, &err);
	for (size_t i = 0; i < NELEM(sr); i++)
		source_cancel(sr[i]);	/* through source.c's dispatch */
	drain(P);
	CHECK(calls == 0, "5 reads cancelled in flight: no callback, late answers ignored");
	self_sr = source_fetch(&E, &j, &(struct source_read){ .pg = &rd }, cancel_self, &calls, &err);
	drain(P);
	CHECK(calls == 1, "source_cancel from inside the read's own callback is safe");
	calls = 0;

	ms[0].column = "note";
	ms[0].value = text_tmpl("cancelled {{key}}");
	j.src.mark_set = ms;
	j.src.nmark_set = 1;
	marks = xcalloc(2, sizeof *marks);
	marks[0].key = xstrdup("5");
	marks[0].rec = json_pack("{si}", "id", 5);
	mk[0] = source_mark(&E, &j, marks, 1, never_mark, &calls);
	mk[1] = source_mark(&E, &j, marks, 0, never_mark, &calls);	/* deferred report */
	mk[2] = source_mark(&E, &j, marks, 1, never_mark, &calls);
	source_mark_cancel(mk[0]);
	source_mark_cancel(mk[1]);
	drain(P);
	source_mark_cancel(NULL);
	CHECK(calls == 1, "marks cancelled before their answer: no callback (%d from the one "
	    "not cancelled)", calls);
	source_mark_cancel(mk[2]);
	json_decref(marks[0].rec);
	marks_clear(marks, 1);
	tmpl_free(ms[0].value);

	/* Cancel with the pools being shut down: the answers come from pg_free. */
	calls = 0;
	j.src.conninfo = bad_conninfo;
	bad.base = base;
	bad.pools = pg_pools_new(base, 2000);
	sr[0] = source_fetch(&bad, &j, &(struct source_read){ .pg = &rd }, never, &calls, &err);
	source_cancel(sr[0]);
	pg_pools_free(bad.pools);
	CHECK(calls == 0, "a cancelled read answered by pg_free: no callback");
}

int
main(int argc, char **argv)
{
	const char *server = getenv("ONESYNC_TEST_CONNINFO");
	char *dbname, *ci, *q;

	if (server == NULL || *server == '\0') {
		printf("skipped: ONESYNC_TEST_CONNINFO names no PostgreSQL\n");
		return 77;
	}
	log_init(argc > 1 && strcmp(argv[1], "-v") == 0 ? 2 : 0, "db_source_pg");
	dbname = xasprintf("onesync_spg_%ld", (long)getpid());
	ci = xasprintf("%s dbname=postgres", server);
	admin = PQconnectdb(ci);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(admin));
		return 1;
	}
	q = xasprintf("CREATE DATABASE %s", dbname);
	sql(q);
	free(q);
	PQfinish(admin);
	free(ci);
	conninfo = xasprintf("%s dbname=%s", server, dbname);
	bad_conninfo = xasprintf("host=127.0.0.1 port=1 password=s3cr3t dbname=%s", dbname);
	admin = PQconnectdb(conninfo);
	sql("SET TimeZone = 'UTC'");
	sql("CREATE TABLE orders (id int PRIMARY KEY, total numeric, synced bool DEFAULT false, "
	    "erp_id int, updated_at timestamptz, note text)");
	/* 2,000 rows share one updated_at; the other 500 are spread around it. */
	sql("INSERT INTO orders (id, total, updated_at) SELECT g, g / 100.0, CASE WHEN g % 5 = 0 "
	    "THEN timestamptz '2026-01-01 00:00:00.123456+00' + ((g * 37) % 997 - 498) * "
	    "interval '1 millisecond' ELSE timestamptz '2026-01-01 00:00:00.123456+00' END "
	    "FROM generate_series(2500, 1, -1) g");
	sql("CREATE TABLE rt (id int PRIMARY KEY, tz timestamptz, ts timestamp, n bigint)");
	sql("INSERT INTO rt VALUES (1, '2026-01-01 00:00:00.123456+00', "
	    "'2026-01-01 00:00:00.123456', 1), "
	    "(2, '2026-01-01 00:00:00.5+00', '2026-01-01 00:00:00.5', 9007199254740993), "
	    "(3, '2026-01-01 00:00:01+00', '2026-01-01 00:00:01', -5), "
	    "(4, '1999-12-31 23:59:59.999999-05', '1999-12-31 23:59:59.999999', 0), "
	    "(5, '2026-06-01 12:00:00.000001+02', '2026-06-01 12:00:00.000001', 2)");

	base = event_base_new();
	E.base = base;
	E.pools = pg_pools_new(base, 2000);
	P = pg_pools_get(E.pools, conninfo, 0);	/* the pool of every job here (timeout 0) */

	test_modified_paging();
	test_roundtrip();
	test_pending_with_marking();
	test_version_conflict();
	test_settle();
	test_injection();
	test_odd_names();
	test_errors();
	test_cancel();

	pg_pools_free(E.pools);
	event_base_free(base);
	PQfinish(admin);
	ci = xasprintf("%s dbname=postgres", server);
	admin = PQconnectdb(ci);
	q = xasprintf("DROP DATABASE %s WITH (FORCE)", dbname);
	sql(q);
	free(q);
	PQfinish(admin);
	free(ci);
	free(dbname);
	free(conninfo);
	free(bad_conninfo);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
