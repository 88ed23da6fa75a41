/*
 * db_common.h - what the unit tests against a real PostgreSQL share (tests/unit/db_*.c): the
 * CHECK macro and its count, a scratch database on the test server, answers of the state
 * store's calls waited for on the loop, a state schema opened and migrated.
 */
#ifndef ONESYNC_DB_COMMON_H
#define ONESYNC_DB_COMMON_H

#include <stdbool.h>
#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>

struct state;

extern struct event_base	*base;		/* the tests' loop (db_common.c makes none) */
extern int			 failures;

#define CHECK(cond, ...) do {						\
	printf((cond) ? "ok   " : "FAIL ");				\
	if (!(cond))							\
		failures++;						\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

/* A database of its own on ONESYNC_TEST_CONNINFO's server, named prefix_PID. */
struct db_scratch {
	char	*name;
	char	*admin_ci;	/* the server's postgres database */
	char	*conninfo;	/* the scratch database */
};
/* Create it: 0; 77 when ONESYNC_TEST_CONNINFO names no server (the test is skipped);
 * 1 when the server cannot be reached. */
int db_scratch_create(struct db_scratch *, const char *prefix);
/* Drop it (WITH FORCE) and free the names. */
void db_scratch_drop(struct db_scratch *);
/* Run a statement (setup and checks only: blocking is fine here); errors to stderr. */
void db_sql(PGconn *, const char *q);

/* A state store call's answer, waited for on base. */
struct answer {
	bool	 called;
	int	 rc;
	json_t	*res;
	char	*err;
};
void answered(void *arg, int rc, json_t *res, const char *err);	/* a state_cb */
void wait_answer(struct answer *);
void answer_clear(struct answer *);
json_int_t num(const struct answer *, const char *k);
const char *str(const struct answer *, const char *k);	/* "(null)" when none */
bool has(const struct answer *, const char *k);		/* present and not null */
const char *err(const struct answer *);			/* "" when none */

/* The state store of schema on conninfo, migrated to this binary's version (CHECKed). */
struct state *db_open_state(const char *conninfo, const char *schema, const char *who);

#endif
