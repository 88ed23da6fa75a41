/*
 * db_cred.c - store/state_cred.c against a real PostgreSQL, with two state schemas in one
 * database (two deployments): a fresh credential's row, the refresh's single flight (a
 * second instance busy while the first holds the lease, free once it runs out), stores
 * fenced by the lease's holder and the generation, a failure that ends the lease or marks
 * the credential, an operator's refresh token that clears the mark, concurrent begins of
 * which only one gets the lease, the schemas not seeing each other's credentials, and bad
 * arguments (a token in clear above all) refused with a message naming them and never
 * quoting the token.
 * Needs ONESYNC_TEST_CONNINFO ('host=... port=... user=...'); skipped without it (exit 77).
 * tests/integ/38-db-unit-tests.sh runs it against the test server.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "db_common.h"

#define AEAD_SEED_LEN	32
#include "core/log.h"
#include "core/util.h"
#include "store/state.h"
#include "store/state_cred.h"

/* Let the database clock move ms milliseconds on (no call is in flight meanwhile). */
static void
pause_ms(long ms)
{
	usleep((useconds_t)ms * 1000);
}

/* A key check and an origin as the daemon computes them (32 hex digits). */
#define KC	"0123456789abcdef0123456789abcdef"
#define SEED	"00000000000000000000000000000abc"
#define OR	"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static void
get(struct state *st, const char *name, struct answer *a)
{
	answer_clear(a);
	state_cred_get(st, name, answered, a);
	wait_answer(a);
}

static void
begin(struct state *st, const char *name, const char *inst, int64_t lease, struct answer *a)
{
	answer_clear(a);
	state_cred_begin(st, name, inst, lease, OR, answered, a);
	wait_answer(a);
}

static void
store(struct state *st, const char *name, const char *inst, int64_t gen, const char *acc,
    int64_t exp, const char *ref, struct answer *a)
{
	answer_clear(a);
	state_cred_store(st, name, inst, gen, acc, exp, ref, KC, OR, NULL, answered, a);
	wait_answer(a);
}

static void
fail(struct state *st, const char *name, const char *inst, int64_t gen, const char *why,
    struct answer *a)
{
	answer_clear(a);
	state_cred_fail(st, name, inst, gen, why, OR, answered, a);
	wait_answer(a);
}

static void
set_refresh(struct state *st, const char *name, const char *ref, struct answer *a)
{
	answer_clear(a);
	state_cred_set_refresh(st, name, ref, KC, OR, SEED, answered, a);
	wait_answer(a);
}

static void
expect_error(const struct answer *x, const char *want, const char *what)
{
	CHECK(x->rc == STATE_ERROR && x->err != NULL && strstr(x->err, want) != NULL &&
	    strstr(x->err, "ya29") == NULL, "%s: %s", what, err(x));
}

/* Single flight and fencing: begin, busy, store, stale stores, a lease that runs out. */
static void
test_flight(struct state *a, const char *cred)
{
	struct answer x = { 0 };

	get(a, cred, &x);
	CHECK(x.rc == STATE_OK && num(&x, "generation") == 0 && !has(&x, "access_sealed") &&
	    !has(&x, "refresh_sealed") && !has(&x, "needs_reauth") &&
	    !has(&x, "access_expires_ms") && num(&x, "refreshing_until_ms") == 0,
	    "a fresh credential reads empty, generation 0 (%s)", err(&x));
	begin(a, cred, "i1", 1500, &x);
	CHECK(x.rc == STATE_OK && json_is_integer(json_object_get(x.res, "token")) &&
	    num(&x, "token") == 0 && num(&x, "refreshing_until_ms") > 0 && !has(&x, "busy"),
	    "the first begin holds the lease, token 0 (%s)", err(&x));
	begin(a, cred, "i1", 1500, &x);
	CHECK(num(&x, "token") == 0, "its own lease is taken again by the same instance");
	begin(a, cred, "i2", 1500, &x);
	CHECK(json_is_true(json_object_get(x.res, "busy")) && !has(&x, "token") &&
	    num(&x, "wait_ms") > 1000 && num(&x, "wait_ms") <= 1500,
	    "a second instance's begin meanwhile is busy, waiting %lld ms",
	    (long long)num(&x, "wait_ms"));
	store(a, cred, "i2", 0, "v1:QUFB", 4102444800000, "v1:UjE=", &x);
	CHECK(x.rc == STATE_OK && json_is_true(json_object_get(x.res, "stored")) &&
	    json_is_true(json_object_get(x.res, "lease_lost")) && num(&x, "generation") == 1,
	    "a store by an instance without the lease, nothing newer stored: kept, generation 1, "
	    "lease_lost (%s)", err(&x));
	store(a, cred, "i1", 0, "v1:QkJC", 4102444800000, "v1:UjI=", &x);
	CHECK(json_is_false(json_object_get(x.res, "stored")) && num(&x, "generation") == 1 &&
	    strstr(str(&x, "why"), "newer") != NULL,
	    "which fences off the lease's holder: its store is refused (%s)", str(&x, "why"));
	get(a, cred, &x);
	CHECK(strcmp(str(&x, "access_sealed"), "v1:QUFB") == 0 &&
	    num(&x, "access_expires_ms") == 4102444800000 &&
	    strcmp(str(&x, "refresh_sealed"), "v1:UjE=") == 0 && num(&x, "generation") == 1 &&
	    num(&x, "refreshing_until_ms") == 0 && strcmp(str(&x, "key_check"), KC) == 0 &&
	    strcmp(str(&x, "origin"), OR) == 0 && strcmp(str(&x, "updated_by"), "i2") == 0,
	    "the row holds what was stored, its key check and origin, no lease");
	store(a, cred, "i1", 0, "v1:QkJC", 4102444800000, "v1:UjI=", &x);
	CHECK(json_is_false(json_object_get(x.res, "stored")),
	    "the same store again is refused: its lease ended");
	begin(a, cred, "i1", 1500, &x);
	CHECK(num(&x, "token") == 1 && strcmp(str(&x, "access_sealed"), "v1:QUFB") == 0,
	    "the next begin answers token 1 and the current token");
	store(a, cred, "i1", 0, "v1:QkJC", 4102444800000, "v1:UjI=", &x);
	CHECK(json_is_false(json_object_get(x.res, "stored")) &&
	    strstr(str(&x, "why"), "newer") != NULL && num(&x, "generation") == 1,
	    "a store with a stale generation is refused (%s)", str(&x, "why"));
	store(a, cred, "i1", 1, "v1:QkJC", -1, NULL, &x);
	CHECK(json_is_true(json_object_get(x.res, "stored")) && num(&x, "generation") == 2,
	    "with the right generation it is stored: generation 2");
	get(a, cred, &x);
	CHECK(strcmp(str(&x, "access_sealed"), "v1:QkJC") == 0 &&
	    !has(&x, "access_expires_ms") && !has(&x, "refresh_sealed"),
	    "the refresh token given is kept (here none); no expiry given reads null");

	begin(a, cred, "i1", 300, &x);
	CHECK(num(&x, "token") == 2, "i1 begins with a short lease");
	pause_ms(450);
	begin(a, cred, "i2", 5000, &x);
	CHECK(num(&x, "token") == 2 && !has(&x, "busy"),
	    "once the lease ran out another instance begins (%s)", err(&x));
	store(a, cred, "i1", 2, "v1:Q0ND", 4102444800000, "v1:UjM=", &x);
	CHECK(json_is_true(json_object_get(x.res, "stored")) && num(&x, "generation") == 3 &&
	    json_is_true(json_object_get(x.res, "lease_lost")),
	    "the late store of the instance whose lease ran out is kept, nothing newer being "
	    "stored (its answer holds the newest refresh token): generation 3");
	store(a, cred, "i2", 2, "v1:RERE", 4102444800000, "v1:UjQ=", &x);
	CHECK(json_is_false(json_object_get(x.res, "stored")),
	    "the new holder's store, begun from generation 2, is refused");
	get(a, cred, &x);
	CHECK(strcmp(str(&x, "refresh_sealed"), "v1:UjM=") == 0 &&
	    num(&x, "refreshing_until_ms") == 0,
	    "the refresh token is the first one's, the lease ended");
	answer_clear(&x);
}

/* Failures: the lease ended, the mark, set_refresh clearing it. */
static void
test_fail(struct state *a, const char *cred)
{
	struct answer x = { 0 };

	begin(a, cred, "i1", 60000, &x);
	fail(a, cred, "i1", 3, NULL, &x);
	CHECK(x.rc == STATE_OK && json_is_true(json_object_get(x.res, "ended")) &&
	    json_is_false(json_object_get(x.res, "marked")),
	    "a failure without a reason ends the lease (%s)", err(&x));
	begin(a, cred, "i2", 60000, &x);
	CHECK(num(&x, "token") == 3, "so another instance begins at once");
	fail(a, cred, "i1", 3, NULL, &x);
	CHECK(json_is_false(json_object_get(x.res, "ended")),
	    "a failure does not end another instance's lease");
	fail(a, cred, "i2", 2, "invalid_grant: stale", &x);
	CHECK(json_is_false(json_object_get(x.res, "marked")) &&
	    json_is_false(json_object_get(x.res, "ended")),
	    "invalid_grant for a refresh token already replaced does not mark");
	fail(a, cred, "i2", 3, "invalid_grant: the refresh token was revoked", &x);
	CHECK(json_is_true(json_object_get(x.res, "marked")) &&
	    json_is_true(json_object_get(x.res, "ended")), "invalid_grant marks the credential");
	begin(a, cred, "i1", 60000, &x);
	CHECK(x.rc == STATE_OK && strcmp(str(&x, "needs_reauth"),
	    "invalid_grant: the refresh token was revoked") == 0 && !has(&x, "token") &&
	    !has(&x, "busy"), "then begin answers needs_reauth, no token");
	get(a, cred, &x);
	CHECK(has(&x, "needs_reauth") && num(&x, "refreshing_until_ms") == 0,
	    "and the row shows it, no lease taken");
	set_refresh(a, cred, "v1:TjEyMw==", &x);
	CHECK(x.rc == STATE_OK && num(&x, "generation") == 4,
	    "an operator's refresh token: generation 4 (%s)", err(&x));
	get(a, cred, &x);
	CHECK(!has(&x, "needs_reauth") && !has(&x, "access_sealed") &&
	    strcmp(str(&x, "refresh_sealed"), "v1:TjEyMw==") == 0,
	    "clears the mark and the access token, keeps the new refresh token");
	begin(a, cred, "i1", 60000, &x);
	CHECK(num(&x, "token") == 4, "and begin gives a token again");
	set_refresh(a, cred, "v1:TjQ1Ng==", &x);
	store(a, cred, "i1", 4, "v1:RkZG", 4102444800000, "v1:Tjc4OQ==", &x);
	CHECK(json_is_false(json_object_get(x.res, "stored")),
	    "a refresh in flight when the operator set a token is fenced off");
	begin(a, cred, "i1", 60000, &x);
	fail(a, cred, "i1", 5, "invalid_grant: late", &x);
	CHECK(json_is_true(json_object_get(x.res, "marked")), "marked at generation 5");
	store(a, cred, "i2", 5, "v1:R0dH", 4102444800000, "v1:UjU=", &x);
	CHECK(json_is_true(json_object_get(x.res, "stored")) && num(&x, "generation") == 6,
	    "a store begun from that generation is kept (%s)", err(&x));
	get(a, cred, &x);
	CHECK(!has(&x, "needs_reauth"), "and clears the mark: a grant that worked needs none");
	begin(a, cred, "i1", 60000, &x);
	fail(a, cred, "i1", 6, "invalid_grant: gone", &x);
	answer_clear(&x);
	state_cred_begin(a, cred, "i1", 60000, "00000000000000000000000000000000"
	    "fedcba9876543210fedcba9876543210", answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_OK && num(&x, "token") == 6 && !has(&x, "needs_reauth"),
	    "a mark made for one origin lets another begin (a new refresh_token configured)");
	get(a, cred, &x);
	CHECK(num(&x, "refreshing_until_ms") > now_wall_ms(), "and holds the lease");
	answer_clear(&x);
	state_cred_renew(a, cred, "i1", 6, 3600000, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_OK && json_is_true(json_object_get(x.res, "renewed")),
	    "the holder renews its lease (%s)", err(&x));
	get(a, cred, &x);
	CHECK(num(&x, "refreshing_until_ms") > now_wall_ms() + 3000000, "to an hour from now");
	answer_clear(&x);
	state_cred_renew(a, cred, "i2", 6, 60000, answered, &x);
	wait_answer(&x);
	CHECK(json_is_false(json_object_get(x.res, "renewed")), "another instance cannot");
	answer_clear(&x);
	state_cred_renew(a, cred, "i1", 5, 60000, answered, &x);
	wait_answer(&x);
	CHECK(json_is_false(json_object_get(x.res, "renewed")), "nor a stale generation");
	fail(a, cred, "i1", 6, NULL, &x);
	get(a, cred, &x);
	CHECK(strcmp(str(&x, "mark_origin"), OR) == 0 && strcmp(str(&x, "origin"), OR) == 0,
	    "the mark keeps the origin it was made for apart from the row's");
	answer_clear(&x);
	for (int i = 0; i < 20; i++) {
		char seed[AEAD_SEED_LEN + 1];

		snprintf(seed, sizeof seed, "%032x", i < 18 ? i : 3);
		answer_clear(&x);
		state_cred_set_refresh(a, "seeded", "v1:UjE=", KC, OR, seed, answered, &x);
		wait_answer(&x);
	}
	get(a, "seeded", &x);
	CHECK(json_array_size(json_object_get(x.res, "seeds")) == 16 &&
	    strcmp(json_string_value(json_array_get(json_object_get(x.res, "seeds"), 15)),
	    "00000000000000000000000000000011") == 0,
	    "the refresh tokens given: the last 16 kept once each (%zu)",
	    json_array_size(json_object_get(x.res, "seeds")));
	answer_clear(&x);
	state_cred_set_refresh(a, "seeded", "v1:UjE=", KC, OR, "not-a-mac", answered, &x);
	wait_answer(&x);
	expect_error(&x, "seed must be 32", "a seed that is not a MAC");
	answer_clear(&x);
	state_cred_renew(a, cred, "i1", 6, 60000, answered, &x);
	wait_answer(&x);
	CHECK(json_is_false(json_object_get(x.res, "renewed")), "nor a lease that ended");
	answer_clear(&x);
}

/* Six instances on two processes' pools asking at once: the row lock lets one through. */
static void
test_race(struct state *a, struct state *a2, const char *cred)
{
	static const char *inst[] = { "r1", "r2", "r3", "r4", "r5", "r6" };
	struct answer x[6] = { 0 };
	int tokens = 0, busy = 0;

	for (int i = 0; i < 6; i++)
		state_cred_begin(i % 2 ? a2 : a, cred, inst[i], 60000, OR, answered, &x[i]);
	for (int i = 0; i < 6; i++) {
		wait_answer(&x[i]);
		tokens += json_is_integer(json_object_get(x[i].res, "token"));
		busy += json_is_true(json_object_get(x[i].res, "busy"));
		answer_clear(&x[i]);
	}
	CHECK(tokens == 1 && busy == 5, "six begins at once: one token (%d), five busy (%d)",
	    tokens, busy);
}

static void
test_bad(struct state *st)
{
	struct answer x = { 0 };

	store(st, "c", "i1", 0, "ya29.a0-clear-token", 1, NULL, &x);
	expect_error(&x, "must be sealed by onesyncd", "an access token in clear");
	store(st, "c", "i1", 0, "v1:QUFB", 1, "ya29.refresh", &x);
	expect_error(&x, "refresh token must be sealed", "a refresh token in clear");
	store(st, "c", "i1", 0, "v1:ya29 clear", 1, NULL, &x);
	expect_error(&x, "must be sealed", "a prefix alone is not sealed");
	store(st, "c", "i1", 0, NULL, 1, NULL, &x);
	expect_error(&x, "no access token", "no access token");
	store(st, "c", "i1", -1, "v1:QUFB", 1, NULL, &x);
	expect_error(&x, "generation must be", "a negative generation");
	set_refresh(st, "c", "ya29.refresh", &x);
	expect_error(&x, "must be sealed", "an operator's refresh token in clear");
	set_refresh(st, "c", NULL, &x);
	expect_error(&x, "no refresh token", "an operator's empty refresh token");
	answer_clear(&x);
	state_cred_store(st, "c", "i1", 0, "v1:QUFB", 1, NULL, "0123", OR, NULL, answered, &x);
	wait_answer(&x);
	expect_error(&x, "key check must be 32", "a short key check");
	answer_clear(&x);
	state_cred_store(st, "c", "i1", 0, "v1:QUFB", 1, NULL, KC, NULL, NULL, answered, &x);
	wait_answer(&x);
	expect_error(&x, "origin must be 64", "no origin");
	answer_clear(&x);
	state_cred_set_refresh(st, "c", "v1:QUFB", "0123456789ABCDEF0123456789ABCDEF", OR,
	    SEED, answered, &x);
	wait_answer(&x);
	expect_error(&x, "key check must be 32", "an upper-case key check");
	get(st, "", &x);
	expect_error(&x, "credential name must be 1 to 1000", "an empty name");
	begin(st, "c", "", 1000, &x);
	expect_error(&x, "the instance must be", "an empty instance");
	begin(st, "c", "i1", 0, &x);
	expect_error(&x, "lease must be 1 ms to 1 hour", "a zero lease");
	begin(st, "c", "i1", 3600001, &x);
	expect_error(&x, "lease must be 1 ms to 1 hour", "a lease over an hour");
	fail(st, "c", "i1", 0, "", &x);
	expect_error(&x, "the reason must be", "an empty reason");
	get(st, "c", &x);
	CHECK(num(&x, "generation") == 0 && !has(&x, "access_sealed") &&
	    !has(&x, "refresh_sealed"), "nothing refused was stored");
	answer_clear(&x);
}

/* Even a statement around the functions cannot put a token in clear in a row. */
static void
test_check(const char *conninfo, const char *cred)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQexecParams(c, "UPDATE \"deploy a\".credentials SET refresh_sealed = "
	    "'clear-refresh-token' WHERE name = $1", 1, NULL, &cred, NULL, NULL, 0);

	CHECK(PQresultStatus(r) == PGRES_FATAL_ERROR &&
	    strstr(PQresultErrorMessage(r), "check constraint") != NULL,
	    "the table refuses a token in clear (%s)", PQresultErrorMessage(r));
	PQclear(r);
	PQfinish(c);
}

int
main(int argc, char **argv)
{
	const char *cred = "erp.eu-1 x'y";
	struct db_scratch d;
	struct answer x = { 0 };
	struct state *a, *a2, *b;
	int rc;

	if ((rc = db_scratch_create(&d, "onesync_cred")) != 0)
		return rc;
	log_init(argc > 1 && strcmp(argv[1], "-v") == 0 ? 2 : 0, "db_cred");
	base = event_base_new();
	a = db_open_state(d.conninfo, "deploy a", "db_cred");
	b = db_open_state(d.conninfo, "deploy_b", "db_cred");
	test_flight(a, cred);
	test_fail(a, cred);
	a2 = db_open_state(d.conninfo, "deploy a", "db_cred");
	test_race(a, a2, "raced");
	state_free(a2);
	get(b, cred, &x);
	CHECK(x.rc == STATE_OK && num(&x, "generation") == 0 && !has(&x, "refresh_sealed"),
	    "the other schema's credential of the same name is its own (%s)", err(&x));
	begin(b, cred, "i1", 60000, &x);
	CHECK(num(&x, "token") == 0, "and not leased by the first schema's refreshes");
	answer_clear(&x);
	test_bad(a);
	test_check(d.conninfo, cred);
	state_free(a);
	state_free(b);
	event_base_free(base);
	db_scratch_drop(&d);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
