/* test_budget.c - budgets (config/budget.c): URL normalisation, matching, costs, rate
 * windows, and a file's budgets as the daemon gets them. */
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/budget.h"
#include "config/load.h"
#include "core/util.h"

/* budget_url_norm(in) is want (NULL: refused). */
static void
norm_is(const char *in, const char *want)
{
	char		*got = budget_url_norm(in);
	const char	*shown = in != NULL ? in : "(null)";

	if (want == NULL && got != NULL)
		fail_msg("'%s' normalised to '%s', expected refused", shown, got);
	if (want != NULL && (got == NULL || strcmp(got, want) != 0))
		fail_msg("'%s' normalised to '%s', expected '%s'", shown,
		    got != NULL ? got : "(refused)", want);
	free(got);
}

static void
test_url_norm(void **state)
{
	(void)state;
	/* scheme and host in lower case; path and query as written */
	norm_is("HTTPS://API.Example.COM/V1/Items?Q=A", "https://api.example.com/V1/Items?Q=A");
	/* default ports dropped, others kept */
	norm_is("http://h.example:80/x", "http://h.example/x");
	norm_is("https://h.example:443/x", "https://h.example/x");
	norm_is("https://h.example:0443/x", "https://h.example/x");
	norm_is("http://h.example:443/x", "http://h.example:443/x");
	norm_is("https://h.example:80/x", "https://h.example:80/x");
	norm_is("https://h.example:8443/x", "https://h.example:8443/x");
	norm_is("https://h.example:/x", "https://h.example/x");
	/* userinfo dropped, wherever its '@' */
	norm_is("https://bob:s3cret@h.example/x", "https://h.example/x");
	norm_is("https://a@b:c@h.example:443/x@y", "https://h.example/x@y");
	/* no path: "/"; a query straight after the authority keeps its place */
	norm_is("https://h.example", "https://h.example/");
	norm_is("https://h.example:443", "https://h.example/");
	norm_is("https://h.example?x=1", "https://h.example/?x=1");
	/* a fragment is never sent */
	norm_is("https://h.example/a?b=1#frag", "https://h.example/a?b=1");
	norm_is("https://h.example#frag", "https://h.example/");
	/* a fully qualified name is the same host */
	norm_is("https://A.Example./x", "https://a.example/x");
	norm_is("https://a.example.:443", "https://a.example/");
	norm_is("https://./x", "https://./x");
	/* IPv6 literals */
	norm_is("https://[::1]:443/x", "https://[::1]/x");
	norm_is("HTTP://[FE80::1]:8080", "http://[fe80::1]:8080/");
	norm_is("https://[::1]x/", NULL);
	norm_is("https://[::1/", NULL);
	norm_is("https://[]/", NULL);
	/* not an absolute http(s) URL */
	norm_is("ftp://h.example/x", NULL);
	norm_is("file:///etc/passwd", NULL);
	norm_is("h.example/x", NULL);
	norm_is("/api/x", NULL);
	norm_is("https://", NULL);
	norm_is("https:///x", NULL);
	norm_is("https://bob@/x", NULL);
	norm_is("https://h.example:99999/", NULL);
	norm_is("https://h.example:0/", NULL);
	norm_is("https://h.example:8o/", NULL);
	norm_is("https://h.example/a b", NULL);
	norm_is("https://h.example/a\r\nX: y", NULL);
	norm_is("", NULL);
	norm_is(NULL, NULL);
}

/* Does a budget with these prefixes (written as a user would) cover url? */
static bool
covers(const char *prefix, const char *url)
{
	struct budget_conf	 b = { 0 };
	char			*p = budget_url_norm(prefix), *u = budget_url_norm(url);
	bool			 r;

	assert_non_null(p);
	b.match = &p;
	b.nmatch = 1;
	r = budget_match(&b, u);
	free(p);
	free(u);
	return r;
}

static void
test_match(void **state)
{
	(void)state;
	/* a host alone covers that host, not one whose name only starts the same */
	assert_true(covers("https://a.example", "https://a.example/x"));
	assert_true(covers("https://a.example", "https://A.EXAMPLE:443"));
	assert_false(covers("https://a.example", "https://a.example.evil/x"));
	assert_false(covers("https://a.example", "https://a.example.evil"));
	assert_false(covers("https://a.example", "https://a.example:8443/x"));
	assert_false(covers("https://a.example", "https://a.examplex/"));
	assert_true(covers("https://a.example", "https://a.example./x"));
	assert_true(covers("https://a.example./", "https://a.example/x"));
	/* nor the same host by another scheme, nor behind userinfo naming it */
	assert_false(covers("https://a.example", "http://a.example/x"));
	assert_false(covers("https://a.example", "https://a.example@evil.example/x"));
	assert_true(covers("https://a.example", "https://evil.example@a.example/x"));
	/* a path prefix */
	assert_true(covers("https://a.example/api/", "https://a.example/api/items?x=1"));
	assert_true(covers("https://a.example/api/", "https://a.example:443/api/"));
	assert_false(covers("https://a.example/api/", "https://a.example/api"));
	assert_false(covers("https://a.example/api/", "https://a.example/apiv2/x"));
	assert_false(covers("https://a.example/api/", "https://a.example/API/x"));
	assert_false(covers("https://a.example/api/", "https://a.example/other/api/"));
	/* a prefix without its trailing slash is a prefix of text, as documented */
	assert_true(covers("https://a.example/api", "https://a.example/apiv2"));
	/* what is not a URL is covered by nothing */
	assert_false(covers("https://a.example/", "ftp://a.example/"));
	assert_false(covers("https://a.example/", "/x"));
}

/* A rule: method (or NULL), path expression, cost. */
static void
rule(struct budget_cost *r, const char *method, const char *path, int64_t cost)
{
	r->method = method != NULL ? xstrdup(method) : NULL;
	r->path = xstrdup(path);
	assert_int_equal(regcomp(&r->re, path, REG_EXTENDED | REG_NOSUB), 0);
	r->cost = cost;
}

static void
test_cost(void **state)
{
	struct budget_conf	 b = { 0 };

	(void)state;
	b.name = xstrdup("t");
	b.costs = xcalloc(4, sizeof *b.costs);
	rule(&b.costs[0], "POST", "^/api/batch", 10);
	rule(&b.costs[1], NULL, "^/api/batch", 3);
	rule(&b.costs[2], "GET", "[?&]expand=", 0);
	rule(&b.costs[3], "DELETE", "^/api/", 7);
	b.ncosts = 4;
	/* method and path; the method compared without case */
	assert_int_equal(budget_cost(&b, "POST", "https://h/api/batch/1"), 10);
	assert_int_equal(budget_cost(&b, "post", "https://h/api/batch"), 10);
	/* first match wins: a GET to the batch path takes rule 2, not rule 3 */
	assert_int_equal(budget_cost(&b, "GET", "https://h/api/batch?expand=all"), 3);
	assert_int_equal(budget_cost(&b, "PUT", "https://h/api/batch"), 3);
	/* the expression sees the query; the host never */
	assert_int_equal(budget_cost(&b, "GET", "https://h/api/items?a=1&expand=x"), 0);
	assert_int_equal(budget_cost(&b, "GET", "https://api.example/x"), 1);
	assert_int_equal(budget_cost(&b, "GET", "https://h:8443/api/batch"), 3);
	/* anchored on the path, not on the URL */
	assert_int_equal(budget_cost(&b, "POST", "https://h/v2/api/batch"), 1);
	assert_int_equal(budget_cost(&b, "DELETE", "https://h/api/x"), 7);
	/* none matches: 1 */
	assert_int_equal(budget_cost(&b, "GET", "https://h/api/items"), 1);
	assert_int_equal(budget_cost(&b, "POST", "https://h/"), 1);
	/* no method known: only the rules without one apply */
	assert_int_equal(budget_cost(&b, NULL, "https://h/api/batch"), 3);
	assert_int_equal(budget_cost(&b, NULL, "https://h/api/x"), 1);
	budget_conf_free(&b);
	assert_null(b.costs);
}

/* s parses to limit per window_ms. */
static void
rate_ok(const char *s, int64_t limit, int64_t window_ms)
{
	struct budget_window	 w = { 0 };
	char			*why;

	if (budget_rate_parse(s, &w, &why) != 0)
		fail_msg("'%s' refused: %s", s, why);
	assert_null(why);
	assert_int_equal(w.limit, limit);
	assert_int_equal(w.window_ms, window_ms);
}

/* s is refused, the message quoting it and saying what. */
static void
rate_bad(const char *s, const char *what)
{
	struct budget_window	 w = { 7, 7 };
	char			*why = NULL;

	if (budget_rate_parse(s, &w, &why) == 0)
		fail_msg("'%s' accepted as %" PRId64 "/%" PRId64 "ms", s, w.limit, w.window_ms);
	assert_non_null(why);
	if (strstr(why, s) == NULL || strstr(why, what) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", s, why, what);
	assert_int_equal(w.limit, 7);
	free(why);
}

static void
test_rate_parse(void **state)
{
	(void)state;
	rate_ok("100/10s", 100, 10000);
	rate_ok("250000/1d", 250000, 86400000);
	rate_ok("5/500ms", 5, 500);
	rate_ok("1/1ms", 1, 1);
	rate_ok("10/s", 10, 1000);
	rate_ok("10/m", 10, 60000);
	rate_ok("10/h", 10, 3600000);
	rate_ok("10/d", 10, 86400000);
	rate_ok("3/90m", 3, 5400000);
	rate_ok("1000000000/31d", 1000000000, INT64_C(31) * 86400000);
	rate_ok("007/1s", 7, 1000);
	rate_bad("0/1s", "limit must be between 1 and 1000000000");
	rate_bad("1000000001/1s", "limit must be between 1 and 1000000000");
	rate_bad("99999999999999999999/1s", "limit must be between 1 and 1000000000");
	rate_bad("10/0s", "window must be between 1ms and 31d");
	rate_bad("10/0ms", "window must be between 1ms and 31d");
	rate_bad("10/32d", "window must be between 1ms and 31d");
	rate_bad("10/745h", "window must be between 1ms and 31d");
	rate_bad("10/99999999999999999999s", "bad window");
	rate_bad("x/1s", "is not N/W");
	rate_bad("/1s", "is not N/W");
	rate_bad("-1/1s", "is not N/W");
	rate_bad("10", "is not N/W");
	rate_bad("", "is not N/W");
	rate_bad("10/1x", "bad window '1x'");
	rate_bad("10/", "bad window ''");
	rate_bad("10/10", "bad window '10'");
	rate_bad("10/ms", "bad window 'ms'");
	rate_bad("10/1 s", "bad window");
	rate_bad("10 /1s", "expected '/'");
	rate_bad("10/1s/2", "bad window");
	rate_bad("1e3/1s", "expected '/'");
}

/* tests/configs/good/budgets.conf as the daemon gets it, twice (a reload loads the same
 * budgets again beside the ones in use). */
static void
test_load(void **state)
{
	const char		*s = getenv("srcdir");
	char			*path = xasprintf("%s/tests/configs/good/budgets.conf",
				    s != NULL ? s : ".");
	struct config		*cfg = NULL, *again = NULL;
	struct strlist		 errs = { 0 };
	const struct budget_conf *b;
	char			*u;

	(void)state;
	if (config_load(path, &cfg, &errs) != 0)
		fail_msg("%s: %s", path, errs.n > 0 ? errs.v[0] : "?");
	assert_int_equal(cfg->nbudgets, 2);
	b = &cfg->budgets[0];
	assert_string_equal(b->name, "crm");
	assert_int_equal(b->line, 14);
	assert_int_equal(b->nmatch, 2);
	assert_string_equal(b->match[0], "https://crm.example.com/api/");
	assert_string_equal(b->match[1], "http://crm.example.com:8080/");
	/* windows sorted shortest first */
	assert_int_equal(b->nrate, 3);
	assert_int_equal(b->rate[0].limit, 5);
	assert_int_equal(b->rate[0].window_ms, 1000);
	assert_int_equal(b->rate[1].limit, 100);
	assert_int_equal(b->rate[1].window_ms, 10000);
	assert_int_equal(b->rate[2].limit, 250000);
	assert_int_equal(b->rate[2].window_ms, 86400000);
	assert_int_equal(b->concurrency, 8);
	assert_true(b->reserve > 0.0999 && b->reserve < 0.1001);
	assert_int_equal(b->park_after_ms, 60000);
	assert_int_equal(b->ncosts, 3);
	assert_string_equal(b->costs[0].method, "POST");
	assert_string_equal(b->costs[0].path, "^/api/batch");
	assert_null(b->costs[1].method);
	u = budget_url_norm("https://crm.example.com/api/batch?x=1");
	assert_true(budget_match(b, u));
	assert_int_equal(budget_cost(b, "POST", u), 5);
	assert_int_equal(budget_cost(b, "PUT", u), 2);
	assert_true(budget_match(&cfg->budgets[1], u));
	free(u);
	u = budget_url_norm("http://CRM.example.com:8080");
	assert_true(budget_match(b, u));
	assert_false(budget_match(&cfg->budgets[1], u));
	free(u);
	/* the defaults */
	b = &cfg->budgets[1];
	assert_string_equal(b->name, "crm-batch");
	assert_int_equal(b->concurrency, 0);
	assert_true(b->reserve == 0.0);
	assert_int_equal(b->park_after_ms, 0);
	assert_int_equal(b->ncosts, 0);
	assert_int_equal(budget_cost(b, "POST", "https://crm.example.com/api/batch"), 1);
	if (config_load(path, &again, &errs) != 0)
		fail_msg("%s again: %s", path, errs.n > 0 ? errs.v[0] : "?");
	assert_int_equal(again->nbudgets, 2);
	assert_string_equal(again->budgets[1].name, "crm-batch");
	config_free(cfg);
	config_free(again);
	free(path);
}

/* A budget is part of no job: adding one, or changing it, leaves the job's fingerprint and
 * identity as they were (the daemon would otherwise restart or refuse the job). */
static void
test_not_in_identity(void **state)
{
	static const char job[] =
	    "state = { conninfo = \"dbname=test\"; };\n"
	    "jobs = ( { name = \"items\"; strategy = \"modified\"; key = \"id\";\n"
	    "  modified = { field = \"updatedAt\"; };\n"
	    "  source = { url = \"https://crm.example.com/api/items\"; };\n"
	    "  destination = { type = \"http\"; url = \"http://127.0.0.1:8081/i/{{key}}\"; };"
	    " } );\n";
	static const char *budgets[] = {
		"",
		"budgets = ( { name = \"crm\"; match = [ \"https://crm.example.com/\" ];\n"
		"  rate = [ \"10/1s\" ]; } );\n",
		"budgets = ( { name = \"crm\"; match = [ \"https://crm.example.com/api/\" ];\n"
		"  rate = [ \"5/1s\", \"100/1h\" ]; concurrency = 2; reserve = 0.5;\n"
		"  costs = ( { path = \"^/api/items\"; cost = 2; } ); } );\n",
	};
	char		 path[] = "/tmp/test_budget.XXXXXX";
	char		*fp = NULL, *id = NULL;
	struct config	*cfg;
	struct strlist	 errs = { 0 };
	FILE		*f;
	int		 fd;

	(void)state;
	for (size_t i = 0; i < NELEM(budgets); i++) {
		assert_true((fd = mkstemp(path)) >= 0);
		assert_non_null(f = fdopen(fd, "w"));
		fprintf(f, "%s%s", job, budgets[i]);
		fclose(f);
		if (config_load(path, &cfg, &errs) != 0)
			fail_msg("budgets[%zu]: %s", i, errs.n > 0 ? errs.v[0] : "?");
		unlink(path);
		memcpy(path + strlen(path) - 6, "XXXXXX", 6);
		assert_int_equal(cfg->nbudgets, i > 0 ? 1 : 0);
		if (fp == NULL) {
			fp = xstrdup(cfg->jobs[0].fingerprint);
			id = xstrdup(cfg->jobs[0].identity);
		}
		assert_string_equal(cfg->jobs[0].fingerprint, fp);
		assert_string_equal(cfg->jobs[0].identity, id);
		config_free(cfg);
	}
	free(fp);
	free(id);
}

/* What reserve leaves: rounded down, exactly where the product is a whole number. */
static void
test_share(void **state)
{
	(void)state;
	assert_int_equal(budget_share(10, 0.9), 1);
	assert_int_equal(budget_share(250000, 0.1), 225000);
	assert_int_equal(budget_share(100, 0.9), 10);
	assert_int_equal(budget_share(7, 0.5), 3);
	assert_int_equal(budget_share(50, 0), 50);
	assert_int_equal(budget_share(1, 0.5), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_norm),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_cost),
		cmocka_unit_test(test_rate_parse),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_not_in_identity),
		cmocka_unit_test(test_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
