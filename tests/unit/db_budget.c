/*
 * db_budget.c - store/state_budget.c against a real PostgreSQL, with two state schemas in
 * one database (two deployments): takes within a window's limit and refused with a wait,
 * a block that stops takes, reaches this schema's listener with the block in force and not
 * the other schema's (the NOTIFY channel is shared by the database), is never shortened,
 * the budgets' status, and bad arguments refused with a message naming them.
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
#include "core/log.h"
#include "core/util.h"
#include "store/state.h"
#include "store/state_budget.h"

static PGconn	*admin;		/* the scratch database, for a NOTIFY of no one's */

/* What a listener was called with. */
struct heard {
	int	 n;
	char	*name;
	int64_t	 until;
};

static void
heard_cb(const char *name, int64_t until, void *arg)
{
	struct heard *h = arg;

	h->n++;
	free(h->name);
	h->name = xstrdup(name);
	h->until = until;
}

static void
timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
	event_base_loopbreak(base);
}

/* Run the loop for ms milliseconds (notifications and their checks arrive meanwhile). */
static void
spin(long ms)
{
	struct event *t = evtimer_new(base, timeout_cb, NULL);
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(t, &tv);
	event_base_dispatch(base);
	event_free(t);
}

static void
take(struct state *st, const char *name, int64_t want, struct answer *a)
{
	const int64_t w[] = { 1000 }, l[] = { 5 };

	state_budget_take(st, name, w, l, 1, want, 100, answered, a);
	wait_answer(a);
}

static void
test_budgets(struct state *a, struct state *b, struct heard *ha, struct heard *hb)
{
	const char *odd = "crm.eu-1_x y";
	struct answer x = { 0 };
	int64_t until;
	json_t *bud;

	take(a, odd, 3, &x);
	CHECK(x.rc == STATE_OK && num(&x, "granted") == 3 && num(&x, "wait_ms") == 0,
	    "a take of 3 from 5 free is granted (%s)", x.err ? x.err : "");
	answer_clear(&x);
	take(a, odd, 3, &x);
	CHECK(num(&x, "granted") == 2, "the next take of 3 gets the 2 left");
	answer_clear(&x);
	take(a, odd, 1, &x);
	CHECK(num(&x, "granted") == 0 && num(&x, "wait_ms") > 900 && num(&x, "wait_ms") <= 1150,
	    "a full window refuses with a wait of 1 s + hold (%lld)", (long long)num(&x, "wait_ms"));
	until = num(&x, "at_ms") + 5000;
	answer_clear(&x);
	state_budgets(a, answered, &x);
	wait_answer(&x);
	bud = json_object_get(x.res, odd);
	CHECK(json_integer_value(json_object_get(json_object_get(bud, "windows"), "1000")) == 5 &&
	    json_integer_value(json_object_get(bud, "blocked_until_ms")) == 0,
	    "the status shows the 5 used in the 1 s window, no block");
	answer_clear(&x);
	take(b, odd, 3, &x);
	CHECK(num(&x, "granted") == 3, "the other schema's budget of the same name is its own");
	answer_clear(&x);

	state_budget_block(a, odd, until, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_OK && json_is_true(json_object_get(x.res, "moved")) &&
	    num(&x, "blocked_until_ms") == until, "a block moves the budget's block");
	answer_clear(&x);
	spin(1000);
	CHECK(ha->n == 1 && ha->name != NULL && strcmp(ha->name, odd) == 0 && ha->until == until,
	    "this schema's listener hears the block (%d, %s)", ha->n, ha->name ? ha->name : "-");
	CHECK(hb->n == 0, "the other schema's listener does not (%d)", hb->n);
	take(b, odd, 1, &x);
	CHECK(num(&x, "granted") == 1, "the other schema's budget is not blocked");
	answer_clear(&x);

	state_budget_block(a, odd, until - 3000, answered, &x);
	wait_answer(&x);
	CHECK(json_is_false(json_object_get(x.res, "moved")) &&
	    num(&x, "blocked_until_ms") == until, "an earlier block does not shorten it");
	answer_clear(&x);
	spin(500);
	CHECK(ha->n == 1, "and is not notified (%d)", ha->n);
	take(a, odd, 1, &x);
	CHECK(num(&x, "granted") == 0 && num(&x, "blocked_until_ms") == until &&
	    num(&x, "wait_ms") > 3000, "a take during the block waits for its end");
	answer_clear(&x);

	state_budgets(a, answered, &x);
	wait_answer(&x);
	bud = json_object_get(x.res, odd);
	CHECK(json_integer_value(json_object_get(bud, "blocked_until_ms")) == until,
	    "the status shows the block");
	answer_clear(&x);

	/* a NOTIFY on the channel that is not a block of ours */
	db_sql(admin, "NOTIFY onesync_budget, 'garbage'");
	db_sql(admin, "NOTIFY onesync_budget, '99999999999999999999 x'");
	spin(500);
	CHECK(ha->n == 1 && hb->n == 0, "a payload that is no block of ours is ignored");
}

static void
test_bad(struct state *st)
{
	const int64_t w[] = { 1000, 0 }, l[] = { 5, 5 };
	struct answer x = { 0 };

	state_budget_take(st, "b", w, l, 0, 1, 0, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_ERROR && x.err != NULL && strstr(x.err, "1 to 8 values") != NULL,
	    "no window: %s", x.err ? x.err : "(none)");
	answer_clear(&x);
	state_budget_take(st, "b", w, l, 2, 1, 0, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_ERROR && x.err != NULL && strstr(x.err, "every window") != NULL,
	    "a zero window: %s", x.err ? x.err : "(none)");
	answer_clear(&x);
	state_budget_take(st, "b", w, l, 1, 0, 0, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_ERROR && x.err != NULL && strstr(x.err, "want must be") != NULL,
	    "want 0: %s", x.err ? x.err : "(none)");
	answer_clear(&x);
	state_budget_block(st, "", 1, answered, &x);
	wait_answer(&x);
	CHECK(x.rc == STATE_ERROR && x.err != NULL && strstr(x.err, "budget name") != NULL,
	    "an empty name: %s", x.err ? x.err : "(none)");
	answer_clear(&x);
}

int
main(int argc, char **argv)
{
	struct heard ha = { 0 }, hb = { 0 };
	struct db_scratch d;
	struct state *a, *b;
	int rc;

	if ((rc = db_scratch_create(&d, "onesync_budget")) != 0)
		return rc;
	log_init(argc > 1 && strcmp(argv[1], "-v") == 0 ? 2 : 0, "db_budget");
	admin = PQconnectdb(d.conninfo);
	base = event_base_new();
	a = db_open_state(d.conninfo, "deploy a", "db_budget");
	b = db_open_state(d.conninfo, "deploy_b", "db_budget");
	state_listen_budgets(a, heard_cb, &ha);
	state_listen_budgets(b, heard_cb, &hb);
	spin(300);
	test_budgets(a, b, &ha, &hb);
	test_bad(a);
	state_free(a);
	state_free(b);
	event_base_free(base);
	PQfinish(admin);
	db_scratch_drop(&d);
	free(ha.name);
	free(hb.name);
	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
