/* test_http.c - http_send answers a request that cannot start, later and only once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static int	answers;
static long	last_status;
static bool	last_not_started;
static char	last_error[512];

static void
answered(struct http_response *resp, void *arg)
{
	(void)arg;
	answers++;
	last_status = resp->status;
	last_not_started = resp->not_started;
	snprintf(last_error, sizeof last_error, "%s", resp->error);
}

/* An URL longer than libcurl accepts (8,000,000 bytes): the handle refuses the option. */
static char *
huge_url(void)
{
	size_t n = 8 * 1000 * 1000 + 100;
	char *u = malloc(n + 1);

	memcpy(u, "http://127.0.0.1:9/", 19);
	memset(u + 19, 'x', n - 19);
	u[n] = '\0';
	return u;
}

static void
test_not_started(void **state)
{
	struct event_base *base = event_base_new();
	struct http_request rq = { .method = "GET", .log_url = "http://127.0.0.1:9/(long)",
	    .retries = 3 };
	char *url = huge_url();
	struct http_call *c;

	(void)state;
	assert_int_equal(http_init(base), 0);
	answers = 0;
	rq.url = url;
	c = http_send(&rq, answered, NULL);
	assert_non_null(c);			/* never NULL: the caller counts it in flight */
	assert_int_equal(answers, 0);		/* never before http_send returns */
	for (int i = 0; i < 10 && answers == 0; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(answers, 1);
	assert_int_equal(last_status, 0);
	assert_true(last_not_started);
	assert_non_null(strstr(last_error, "cannot set up the request"));
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(answers, 1);		/* once, never retried */

	/* cancelled before its answer: no callback */
	answers = 0;
	c = http_send(&rq, answered, NULL);
	http_cancel(c);
	for (int i = 0; i < 5; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(answers, 0);
	http_shutdown();
	event_base_free(base);
	free(url);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_started),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
