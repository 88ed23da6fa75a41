/* test_http.c - http_send answers a request that cannot start, later and only once; more
 * requests to one origin than may run wait at its gate, in order; origins of URLs and the
 * rule for next links and redirects. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/url.h"
#include "io/http.h"
#include "io/http_req.h"

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

/* The server of test_gate holds every request until told to answer. */
static struct evhttp_request	*held[64];
static int			 nheld, maxheld, nreq;
static int			 arrival[64];	/* the request numbers, in the order they came */
static int			 gate_answers;

static void
hold_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	if (nreq < 64)
		arrival[nreq] = atoi(evhttp_request_get_uri(req) + 1);
	nreq++;
	held[nheld++] = req;
	if (nheld > maxheld)
		maxheld = nheld;
}

static void
gate_answered(struct http_response *resp, void *arg)
{
	(void)arg;
	if (resp->status == 200)
		gate_answers++;
}

static void
run_for(struct event_base *base, long ms)
{
	struct timeval tv = { 0, ms * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/*
 * 40 requests to one origin where HTTP_MAX_HOST_CONNECTIONS (16) may run: 16 reach the
 * server, the others wait at the gate (not in libcurl's own queue) and go in the order they
 * came as answers free their places; a waiting request that is cancelled never goes.
 */
static void
test_gate(void **state)
{
	struct event_base *base = event_base_new();
	struct evhttp *srv = evhttp_new(base);
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	struct http_call *calls[40];
	char url[64];
	int port, rounds;

	(void)state;
	bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
	assert_non_null(bs);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl), 0);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	evhttp_set_gencb(srv, hold_cb, NULL);
	assert_int_equal(http_init(base), 0);
	for (int i = 0; i < 40; i++) {
		struct http_request rq = { .method = "GET", .url = url, .timeout_ms = 20000 };

		snprintf(url, sizeof url, "http://127.0.0.1:%d/%d", port, i);
		calls[i] = http_send(&rq, gate_answered, NULL);
	}
	assert_int_equal(http_gate_waiting(url), 24);
	for (rounds = 0; rounds < 100 && nheld < 16; rounds++)
		run_for(base, 20);
	run_for(base, 200);		/* what would go wrongly has the time to */
	assert_int_equal(nheld, 16);
	assert_int_equal(nreq, 16);
	http_cancel(calls[39]);		/* waiting: it never goes */
	assert_int_equal(http_gate_waiting(url), 23);
	for (rounds = 0; rounds < 200 && gate_answers < 39; rounds++) {
		for (int i = 0; i < nheld; i++)
			evhttp_send_reply(held[i], 200, "OK", NULL);
		nheld = 0;
		run_for(base, 20);
	}
	run_for(base, 100);
	assert_int_equal(gate_answers, 39);
	assert_int_equal(nreq, 39);
	assert_int_equal(maxheld, 16);
	for (int i = 16; i < 39; i++)
		assert_int_equal(arrival[i], i);	/* the waiting ones, in order */
	assert_int_equal(http_gate_waiting(url), -1);	/* the gate is gone once idle */
	http_shutdown();
	evhttp_free(srv);
	event_base_free(base);
}

/* Origins as libcurl reads the URL: case, default ports, user information, odd hosts. */
static void
test_origin(void **state)
{
	static const struct {
		const char	*url, *origin;
	} cases[] = {
		{ "http://h/x", "http://h:80" },
		{ "HTTP://H.Example.COM:80/x?y#z", "http://h.example.com:80" },
		{ "https://h", "https://h:443" },
		{ "https://h:443/", "https://h:443" },
		{ "https://h:8443/a", "https://h:8443" },
		{ "http://u:p@h:81/", "http://h:81" },
		{ "http://[::1]:8080/", "http://[::1]:8080" },
		{ "http://evil.com#@h/", "http://evil.com:80" },
		{ "http://h?@evil.com/", "http://h:80" },
		{ "ftp://h/x", NULL },
		{ "/relative", NULL },
		/* what libcurl would connect to: it reads http:///x as host x */
		{ "http:///x", "http://x:80" },
	};
	static const struct {
		const char	*url, *origin;
		size_t		 nallow;
		const char	*why;	/* NULL: allowed */
	} rules[] = {
		/* the configured origin, case and default port aside */
		{ "HTTPS://API.example.com:443/p?page=2", "https://api.example.com:443", 0, NULL },
		/* another port or host */
		{ "https://api.example.com:444/p", "https://api.example.com:443", 0,
		  "its origin https://api.example.com:444 is not" },
		{ "https://api.example.com.evil.com/p", "https://api.example.com:443", 0,
		  "is not the origin" },
		/* allowed explicitly */
		{ "https://CDN.example.com/p", "https://api.example.com:443", 2, NULL },
		/* never from https to http, not even to the same host or an allowed origin */
		{ "http://api.example.com/p", "https://api.example.com:443", 0, "from https to http" },
		{ "http://h:8080/p", "https://api.example.com:443", 2, "from https to http" },
		/* from http, an allowed http origin is fine */
		{ "http://h:8080/p", "http://api.example.com:80", 2, NULL },
		{ "file:///etc/passwd", "http://h:80", 0, "not an absolute http or https URL" },
	};
	char *o, *why, *allow[] = { "https://cdn.example.com:443", "http://h:8080" };

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		o = url_origin(cases[i].url);
		if (cases[i].origin == NULL) {
			if (o != NULL)
				fail_msg("%s: origin %s, want none", cases[i].url, o);
		} else {
			if (o == NULL)
				fail_msg("%s: no origin, want %s", cases[i].url, cases[i].origin);
			assert_string_equal(o, cases[i].origin);
		}
		free(o);
	}
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		int r = http_origin_allowed(rules[i].url, rules[i].origin, allow,
		    rules[i].nallow, &why);

		if (r != (rules[i].why == NULL ? 0 : -1) || (why == NULL) !=
		    (rules[i].why == NULL) || (why != NULL && strstr(why, rules[i].why) == NULL))
			fail_msg("%s from %s: %d '%s', want '%s'", rules[i].url, rules[i].origin,
			    r, why != NULL ? why : "", rules[i].why != NULL ? rules[i].why : "");
		free(why);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_started),
		cmocka_unit_test(test_gate),
		cmocka_unit_test(test_origin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
