/*
 * test_identity.c - job identity (config/identity.c): the keys that change what a job's state
 * means change it, every other key does not, places and secrets never show in the stored
 * definition; and the balance over instances that have a job with its definition.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "daemon/balance.h"
#include "config/model.h"
#include "config/identity.h"
#include "config/load.h"

static char	tmpdir[] = "/tmp/onesync-identity-XXXXXX";

/* A config with one job "j" from the given pieces; returns it loaded. */
static struct config *
job(const char *strategy, const char *key, const char *extra, const char *src,
    const char *dst)
{
	char *path = xasprintf("%s/c.conf", tmpdir);
	FILE *f = fopen(path, "w");
	struct config *cfg = NULL;
	struct strlist errs = { 0 };

	assert_non_null(f);
	fprintf(f, "state = { conninfo = \"host=/tmp dbname=s\"; };\n"
	    "jobs = ( { name = \"j\"; strategy = \"%s\"; key = %s; %s\n"
	    "  source = { %s };\n  destination = { %s }; } );\n", strategy, key, extra, src, dst);
	fclose(f);
	if (config_load(path, &cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("config did not load");
	}
	strlist_free(&errs);
	free(path);
	return cfg;
}

#define MOD	"modified = { field = \"t\"; };"
#define SRC	"url = \"https://user:pw@api.example/v1/items?token=abc\"; " \
		"query = [ \"since=2020\" ]; headers = [ \"X-Key: k1\" ];"
#define DST	"type = \"postgresql\"; conninfo = \"host=db.example port=5432 dbname=crm " \
		"user=u password=hunter2\"; table = \"items\"; columns = { id = \"id\"; sku = \"sku\"; };"

/* Which members of the definition differ between two variants ("" = none). */
static void
expect_diff(struct config *a, struct config *b, const char *what)
{
	char *d = config_identity_diff(a->jobs[0].definition, b->jobs[0].definition);

	if (*what == '\0') {
		assert_string_equal(a->jobs[0].identity, b->jobs[0].identity);
	} else {
		assert_string_not_equal(a->jobs[0].identity, b->jobs[0].identity);
		assert_string_equal(d, what);
	}
	free(d);
	config_free(b);
}

static void
test_identity_keys(void **state)
{
	struct config *a = job("modified", "\"id\"", MOD, SRC, DST);

	(void)state;
	/* harmless: tuning, credentials, query, headers */
	expect_diff(a, job("modified", "\"id\"", MOD " interval = \"5m\"; batch = 3; "
	    "run_timeout = \"1m\"; max_attempts = 2; jitter = \"1s\";", SRC, DST), "");
	expect_diff(a, job("modified", "\"id\"", MOD,
	    "url = \"https://other:pw2@api.example/v1/items?token=zzz\"; "
	    "query = [ \"updated=1\" ]; headers = [ \"X-Key: k2\" ];",
	    "type = \"postgresql\"; conninfo = \"host=db.example port=5432 dbname=crm "
	    "user=v password=rotated\"; table = \"items\"; columns = { id = \"id\"; sku = \"sku\"; };"), "");
	/* identity */
	expect_diff(a, job("modified", "\"sku\"", MOD, SRC, DST), "key");
	expect_diff(a, job("modified", "\"id\"", "modified = { field = \"u\"; };", SRC, DST),
	    "modified.field");
	expect_diff(a, job("modified", "\"id\"", MOD,
	    "url = \"https://api.example/v2/items\";", DST), "source");
	expect_diff(a, job("modified", "\"id\"", MOD, SRC,
	    "type = \"postgresql\"; conninfo = \"host=db.example port=5432 dbname=crm\"; "
	    "table = \"items2\"; columns = { id = \"id\"; sku = \"sku\"; };"), "destination");
	expect_diff(a, job("modified", "\"id\"", MOD, SRC,
	    "type = \"postgresql\"; conninfo = \"host=db2.example port=5432 dbname=crm\"; "
	    "table = \"items\"; columns = { id = \"id\"; sku = \"sku\"; };"), "destination");
	expect_diff(a, job("capture", "\"id\"", "", SRC, DST), "capture.fields, modified.field, "
	    "strategy");
	config_free(a);
}

static void
test_capture_fields(void **state)
{
	struct config *a = job("capture", "\"id\"", "", SRC, DST);

	(void)state;
	expect_diff(a, job("capture", "\"id\"", "capture = { exclude = [ \"seen_at\" ]; };", SRC,
	    DST), "capture.fields");
	expect_diff(a, job("capture", "\"id\"", "capture = { max_delete_ratio = 0.5; };", SRC,
	    DST), "");
	config_free(a);
}

static void
test_no_secrets(void **state)
{
	struct config *a = job("modified", "\"id\"", MOD, SRC, DST);
	const char *d = a->jobs[0].definition;
	static const char *const never[] = { "hunter2", "pw", "user", "abc", "token",
	    "api.example", "db.example", "crm", "items", "X-Key", "k1" };

	(void)state;
	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
		if (strstr(d, never[i]) != NULL)
			fail_msg("the definition shows '%s': %s", never[i], d);
	assert_non_null(strstr(d, "\"strategy\":\"modified\""));
	config_free(a);
}

/* Every job goes to an instance that has it; none when no instance does; all agree. */
static void
test_balance_eligible(void **state)
{
	char *jobs[] = { "a", "b", "c", "d", "e", "f" };
	char *inst[] = { "x", "y" };
	int cap[] = { 1, 1 };
	/* x has a..d, y has a, e; nobody has f */
	const bool el[] = { 1, 1,  1, 0,  1, 0,  1, 0,  0, 1,  0, 0 };
	size_t owner[6], again[6];

	(void)state;
	balance_assign(jobs, 6, inst, cap, 2, el, owner);
	for (size_t j = 0; j < 5; j++) {
		assert_true(owner[j] < 2);
		assert_true(el[j * 2 + owner[j]]);
	}
	assert_int_equal(owner[5], SIZE_MAX);
	balance_assign(jobs, 6, inst, cap, 2, el, again);
	assert_memory_equal(owner, again, sizeof owner);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identity_keys),
		cmocka_unit_test(test_capture_fields),
		cmocka_unit_test(test_no_secrets),
		cmocka_unit_test(test_balance_eligible),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
