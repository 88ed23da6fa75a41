/*
 * db_common.c - what the unit tests against a real PostgreSQL share (db_common.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db_common.h"
#include "core/util.h"
#include "store/state.h"

#define SCHEMA_VERSION	5	/* store/sql_schema.h's STATE_SCHEMA_VERSION */

struct event_base	*base;
int			 failures;

void
db_sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
	PQclear(r);
}

/* Run q on the server's postgres database. */
static int
admin_sql(const struct db_scratch *d, const char *q)
{
	PGconn *admin = PQconnectdb(d->admin_ci);

	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(admin));
		PQfinish(admin);
		return 1;
	}
	db_sql(admin, q);
	PQfinish(admin);
	return 0;
}

int
db_scratch_create(struct db_scratch *d, const char *prefix)
{
	const char *server = getenv("ONESYNC_TEST_CONNINFO");
	char *q;
	int rc;

	memset(d, 0, sizeof *d);
	if (server == NULL || *server == '\0') {
		printf("skipped: ONESYNC_TEST_CONNINFO names no PostgreSQL\n");
		return 77;
	}
	d->name = xasprintf("%s_%ld", prefix, (long)getpid());
	d->admin_ci = xasprintf("%s dbname=postgres", server);
	d->conninfo = xasprintf("%s dbname=%s", server, d->name);
	q = xasprintf("CREATE DATABASE %s", d->name);
	rc = admin_sql(d, q);
	free(q);
	return rc;
}

void
db_scratch_drop(struct db_scratch *d)
{
	char *q = xasprintf("DROP DATABASE %s WITH (FORCE)", d->name);

	(void)admin_sql(d, q);
	free(q);
	free(d->name);
	free(d->admin_ci);
	free(d->conninfo);
	memset(d, 0, sizeof *d);
}

void
answered(void *arg, int rc, json_t *res, const char *err)
{
	struct answer *a = arg;

	a->called = true;
	a->rc = rc;
	a->res = json_incref(res);
	a->err = err != NULL ? xstrdup(err) : NULL;
	event_base_loopbreak(base);
}

void
wait_answer(struct answer *a)
{
	while (!a->called)
		event_base_loop(base, EVLOOP_ONCE);
}

void
answer_clear(struct answer *a)
{
	json_decref(a->res);
	free(a->err);
	memset(a, 0, sizeof *a);
}

json_int_t
num(const struct answer *a, const char *k)
{
	return json_integer_value(json_object_get(a->res, k));
}

const char *
str(const struct answer *a, const char *k)
{
	const char *s = json_string_value(json_object_get(a->res, k));

	return s != NULL ? s : "(null)";
}

bool
has(const struct answer *a, const char *k)
{
	json_t *v = json_object_get(a->res, k);

	return v != NULL && !json_is_null(v);
}

const char *
err(const struct answer *a)
{
	return a->err != NULL ? a->err : "";
}

struct state *
db_open_state(const char *conninfo, const char *schema, const char *who)
{
	struct state *st = state_new(base, conninfo, schema, 2, 5000, who);
	struct answer x = { 0 };

	state_set_lease(st, 10000);
	state_migrate(st, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_OK && num(&x, "version") == SCHEMA_VERSION,
	    "schema %s migrated to version %d (%s)", schema, SCHEMA_VERSION, err(&x));
	answer_clear(&x);
	return st;
}
