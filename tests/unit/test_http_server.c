/*
 * test_http_server.c - io/http.c and http_req.c against a real HTTP server: an evhttp
 * server on 127.0.0.1 inside the same event loop (retries, Retry-After, timeouts, size
 * limits, Link/Location/Date, gzip, keep-alive reuse, cancel from callbacks, shutdown).
 * Waits are checked from below only (a retry waits at least its backoff or Retry-After):
 * a loaded machine makes them longer, never shorter.
 * Prints one line per check, then the counts as cmocka does (tests/run reads them); exits
 * 0 only if all passed. -v: debug log lines.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/http_req.h"
#include "core/log.h"
#include "core/util.h"

static struct event_base	*base;
static char			 srv[64];	/* http://127.0.0.1:PORT */
static int			 failures, passes, step;
static uint64_t			 t0;
static int			 ports[4096], nports, ports_before;
static int			 flaky_count;
static int			 pending, cb_after_cancel;
static struct http_call		*victim;

static void	next_step(void);

#define CHECK(cond, ...) do {						\
	if (cond)							\
		printf("ok   "), passes++;				\
	else {								\
		printf("FAIL ");					\
		failures++;						\
	}								\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

/* ---- the server ---- */

static const char *
qparam(struct evhttp_request *r, const char *name)
{
	static char val[256];
	struct evkeyvalq q;
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r)), *v;

	val[0] = '\0';
	if (query == NULL || evhttp_parse_query_str(query, &q) != 0)
		return NULL;
	if ((v = evhttp_find_header(&q, name)) != NULL)
		snprintf(val, sizeof(val), "%s", v);
	evhttp_clear_headers(&q);
	return v != NULL ? val : NULL;
}

static const char *
hdr(struct evkeyvalq *h, const char *name)
{
	const char *v = evhttp_find_header(h, name);

	return v != NULL ? v : "-";
}

static void
note_port(struct evhttp_request *r)
{
	char *addr;
	ev_uint16_t port;
	int i;

	evhttp_connection_get_peer(evhttp_request_get_connection(r), &addr, &port);
	for (i = 0; i < nports; i++)
		if (ports[i] == port)
			return;
	if (nports < (int)NELEM(ports))
		ports[nports++] = port;
}

static void
slow_reply(evutil_socket_t fd, short what, void *arg)
{
	struct evhttp_request *r = arg;
	struct evbuffer *b = evbuffer_new();

	(void)fd; (void)what;
	evbuffer_add_printf(b, "slow");
	evhttp_send_reply(r, 200, "OK", b);
	evbuffer_free(b);
}

/* gzip of {"gz":true} */
static const unsigned char gz[] = {
	0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0x4a, 0xaf,
	0x52, 0xb2, 0x2a, 0x29, 0x2a, 0x4d, 0xad, 0x05, 0x00, 0x3d, 0xcc, 0x1d, 0xac, 0x0b,
	0x00, 0x00, 0x00,
};

static void
serve(struct evhttp_request *r, void *arg)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(r));
	struct evkeyvalq *in = evhttp_request_get_input_headers(r);
	struct evkeyvalq *out = evhttp_request_get_output_headers(r);
	struct evbuffer *b = evbuffer_new(), *body = evhttp_request_get_input_buffer(r);
	const char *v, *m;
	int code = 200;
	struct timeval tv;
	char date[64];
	time_t t;

	(void)arg;
	note_port(r);
	switch (evhttp_request_get_command(r)) {
	case EVHTTP_REQ_GET: m = "GET"; break;
	case EVHTTP_REQ_POST: m = "POST"; break;
	case EVHTTP_REQ_PUT: m = "PUT"; break;
	case EVHTTP_REQ_DELETE: m = "DELETE"; break;
	case EVHTTP_REQ_PATCH: m = "PATCH"; break;
	default: m = "?"; break;
	}
	if (strcmp(path, "/echo") == 0) {
		evbuffer_add_printf(b, "method=%s\naccept=%s\nctype=%s\nexpect=%s\nauth=%s\nbody=",
		    m, hdr(in, "Accept"), hdr(in, "Content-Type"), hdr(in, "Expect"),
		    hdr(in, "Authorization"));
		evbuffer_add_buffer(b, body);
		evhttp_add_header(out, "Link", "<http://elsewhere/prev>; rel=\"prev\"");
		evhttp_add_header(out, "Link",
		    "<http://elsewhere/first>; rel=\"first\", <page2?a=1,2>; rel=next; title=\"x, y\"");
	} else if (strcmp(path, "/link") == 0) {
		evhttp_add_header(out, "Link", qparam(r, "v"));
	} else if (strncmp(path, "/status/", 8) == 0) {
		code = atoi(path + 8);
		if ((v = qparam(r, "ra")) != NULL)
			evhttp_add_header(out, "Retry-After", v);
		if ((v = qparam(r, "radate")) != NULL) {
			t = time(NULL) + atoi(v);
			strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", gmtime(&t));
			evhttp_add_header(out, "Retry-After", date);
		}
		if ((v = qparam(r, "ok_after")) != NULL && ++flaky_count > atoi(v))
			code = 200;
		evbuffer_add_printf(b, "status %d", code);
	} else if (strcmp(path, "/slow") == 0) {
		v = qparam(r, "ms");
		tv.tv_sec = atoi(v) / 1000;
		tv.tv_usec = (atoi(v) % 1000) * 1000;
		event_base_once(base, -1, EV_TIMEOUT, slow_reply, r, &tv);
		evbuffer_free(b);
		return;
	} else if (strcmp(path, "/big") == 0) {
		int n = atoi(qparam(r, "n"));
		char chunk[1000];

		memset(chunk, 'x', sizeof(chunk));
		if (qparam(r, "chunked") != NULL) {
			evhttp_send_reply_start(r, 200, "OK");
			for (; n > 0; n -= 1000) {
				evbuffer_add(b, chunk, n < 1000 ? (size_t)n : 1000);
				evhttp_send_reply_chunk(r, b);
			}
			evhttp_send_reply_end(r);
			evbuffer_free(b);
			return;
		}
		for (; n > 0; n -= 1000)
			evbuffer_add(b, chunk, n < 1000 ? (size_t)n : 1000);
	} else if (strcmp(path, "/created") == 0) {
		code = 201;
		evhttp_add_header(out, "Location", "/items/42");
	} else if (strcmp(path, "/gzip") == 0) {
		evhttp_add_header(out, "Content-Encoding", "gzip");
		evbuffer_add(b, gz, sizeof(gz));
	} else if (strcmp(path, "/gzipcut") == 0) {
		/* Without the trailer (CRC and size): libcurl's decoder would take it. */
		evhttp_add_header(out, "Content-Encoding", "gzip");
		evbuffer_add(b, gz, sizeof(gz) - 8);
	} else if (strcmp(path, "/br") == 0) {
		evhttp_add_header(out, "Content-Encoding", "br");
		evbuffer_add(b, "{}", 2);
	} else
		code = 404;
	evhttp_send_reply(r, code, code == 200 ? "OK" : "X", b);
	evbuffer_free(b);
}

/* ---- the client checks ---- */

static void
send_req(const char *method, const char *path, const char *body, int retries, long timeout_ms,
    long long max_bytes, http_cb cb, void *arg)
{
	static const char *const hdrs[] = { "Authorization: Bearer s3cret", NULL };
	struct http_request req;
	char url[512];

	memset(&req, 0, sizeof(req));
	if (strncmp(path, "http", 4) == 0)
		snprintf(url, sizeof(url), "%s", path);
	else
		snprintf(url, sizeof(url), "%s%s", srv, path);
	req.method = method;
	req.url = url;
	req.headers = hdrs;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.timeout_ms = timeout_ms;
	req.max_bytes = max_bytes;
	req.tls_verify = true;
	req.retries = retries;
	req.backoff_ms = 100;
	t0 = now_mono_ms();
	if (http_send(&req, cb, arg) == NULL) {
		CHECK(0, "http_send %s", url);
		next_step();
	}
}

static void
done_echo(struct http_response *r, void *arg)
{
	char want[128];

	(void)arg;
	CHECK(r->status == 200 && r->attempts == 1, "GET /echo -> %ld after %d attempt(s)",
	    r->status, r->attempts);
	CHECK(strstr(r->body, "accept=application/json\n") != NULL, "Accept: application/json sent");
	CHECK(strstr(r->body, "auth=Bearer s3cret\n") != NULL, "caller headers sent");
	CHECK(r->date != NULL && strstr(r->date, "GMT") != NULL, "Date captured: %s",
	    r->date ? r->date : "(null)");
	snprintf(want, sizeof(want), "%s/page2?a=1,2", srv);
	CHECK(r->link_next != NULL && strcmp(r->link_next, want) == 0,
	    "Link rel=next across several Link headers, resolved: %s",
	    r->link_next ? r->link_next : "(null)");
	CHECK(r->len == strlen(r->body), "len matches body");
	next_step();
}

static void
done_post(struct http_response *r, void *arg)
{
	const char *m = arg;
	char want[128];

	snprintf(want, sizeof(want), "method=%s\n", m);
	CHECK(r->status == 200 && strstr(r->body, want) != NULL, "%s with body reaches server as %s",
	    m, m);
	CHECK(strstr(r->body, "ctype=application/json\n") != NULL,
	    "Content-Type: application/json added");
	CHECK(strstr(r->body, "expect=-\n") != NULL, "no Expect: 100-continue");
	CHECK(strstr(r->body, "body={\"a\":1}") != NULL, "body arrives intact");
	next_step();
}

static void
done_delete(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 200 && strstr(r->body, "method=DELETE\n") != NULL &&
	    strstr(r->body, "ctype=-\n") != NULL, "DELETE without body, no Content-Type");
	next_step();
}

static void
done_link(struct http_response *r, void *arg)
{
	const char *want = arg;

	if (want == NULL)
		CHECK(r->link_next == NULL, "no rel=next -> link_next NULL (got %s)",
		    r->link_next ? r->link_next : "NULL");
	else
		CHECK(r->link_next != NULL && strcmp(r->link_next, want) == 0,
		    "Link parsed: %s", r->link_next ? r->link_next : "NULL");
	next_step();
}

static void
done_500(struct http_response *r, void *arg)
{
	uint64_t ms = now_mono_ms() - t0;

	(void)arg;
	/* backoff 100, then 200 (+-20%): at least 80 + 160 ms */
	CHECK(r->status == 500 && r->attempts == 3 && ms >= 240,
	    "500 retried twice: status %ld, %d attempts, %llu ms", r->status, r->attempts,
	    (unsigned long long)ms);
	next_step();
}

static void
done_flaky(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 200 && r->attempts == 3, "503,503,200 -> %ld after %d attempts",
	    r->status, r->attempts);
	next_step();
}

static void
done_ra(struct http_response *r, void *arg)
{
	uint64_t ms = now_mono_ms() - t0;
	long lo = (long)(intptr_t)arg;

	CHECK(r->status == 200 && r->attempts == 2 && ms >= (uint64_t)lo,
	    "429 with Retry-After waited %llu ms (>= %ld), then %ld", (unsigned long long)ms, lo,
	    r->status);
	next_step();
}

static void
done_404(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 404 && r->attempts == 1, "404 not retried (%d attempt)", r->attempts);
	next_step();
}

static void
done_timeout(struct http_response *r, void *arg)
{
	uint64_t ms = now_mono_ms() - t0;

	(void)arg;
	CHECK(r->status == 0 && strstr(r->error, "Timeout") != NULL &&
	    strstr(r->error, "curl error 28") != NULL && strstr(r->error, "milliseconds") != NULL &&
	    ms >= 290, "timeout after %llu ms: %s", (unsigned long long)ms, r->error);
	next_step();
}

static void
done_refused(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 0 && r->attempts == 2 && strstr(r->error, "onnect") != NULL &&
	    strstr(r->error, "127.0.0.1") != NULL, "refused, %d attempts: %s", r->attempts,
	    r->error);
	next_step();
}

static void
done_big(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 0 && strcmp(r->error, "response larger than 5000 bytes") == 0 &&
	    r->attempts == 1, "%s: status %ld, \"%s\"", (const char *)arg, r->status, r->error);
	next_step();
}

static void
done_big_ok(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 200 && r->len == 5000 && strlen(r->body) == 5000,
	    "exactly max_bytes is accepted (%zu bytes)", r->len);
	next_step();
}

static void
done_created(struct http_response *r, void *arg)
{
	char want[128];

	(void)arg;
	snprintf(want, sizeof(want), "%s/items/42", srv);
	CHECK(r->status == 201 && r->location != NULL && strcmp(r->location, want) == 0,
	    "201 Location: %s", r->location ? r->location : "NULL");
	next_step();
}

static void
done_br(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 0 && r->undecodable && strstr(r->error, "'br'") != NULL,
	    "unknown Content-Encoding refused: %ld %s", r->status, r->error);
	next_step();
}

static void
done_gzipcut(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 0 && r->undecodable && r->len == 0 &&
	    strstr(r->error, "ends early") != NULL, "gzip without trailer refused: %ld %s",
	    r->status, r->error);
	send_req("GET", "/br", NULL, 0, 0, 0, done_br, NULL);
}

static void
done_gzip(struct http_response *r, void *arg)
{
	(void)arg;
	CHECK(r->status == 200 && strcmp(r->body, "{\"gz\":true}") == 0, "gzip decoded: %s",
	    r->body);
	send_req("GET", "/gzipcut", NULL, 0, 0, 0, done_gzipcut, NULL);
}

static void
done_many(struct http_response *r, void *arg)
{
	static int ok;

	(void)arg;
	if (r->status == 200)
		ok++;
	if (--pending > 0)
		return;
	CHECK(ok == 300, "300 concurrent GETs: %d ok", ok);
	CHECK(nports - ports_before <= 16, "connections used: %d (max 16 per host)",
	    nports - ports_before);
	next_step();
}

static void
done_seq(struct http_response *r, void *arg)
{
	long n = (long)(intptr_t)arg;

	if (n < 20 && r->status == 200) {
		send_req("GET", "/echo", NULL, 0, 0, 0, done_seq, (void *)(intptr_t)(n + 1));
		return;
	}
	CHECK(n == 20 && nports == ports_before, "20 sequential GETs from callbacks reuse "
	    "connections: %d new", nports - ports_before);
	next_step();
}

static void
done_never(struct http_response *r, void *arg)
{
	(void)r; (void)arg;
	cb_after_cancel++;
}

static void
cancel_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	http_cancel(victim);
	victim = NULL;
}

static void
after_cancel(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	CHECK(cb_after_cancel == 0, "cancelled call never called back");
	next_step();
}

/* Two slow calls finish together; the first callback cancels the other. */
static struct http_call *pair[2];
static int pair_cbs;

static void
done_pair(struct http_response *r, void *arg)
{
	int i = (int)(intptr_t)arg;

	(void)r;
	pair_cbs++;
	http_cancel(pair[1 - i]);
	http_cancel(pair[i]);	/* own call: must be harmless */
	pair[0] = pair[1] = NULL;
}

static void
after_pair(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	CHECK(pair_cbs == 1, "cancel of a sibling (and self) inside a callback: %d callback(s)",
	    pair_cbs);
	next_step();
}

static int
closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
next_step_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval tv = { 1, 500000 };
	char url[256];
	static char want[256];
	int i;

	(void)fd; (void)what; (void)arg;
	switch (step++) {
	case 0: send_req("GET", "/echo", NULL, 0, 0, 0, done_echo, NULL); break;
	case 1: send_req("POST", "/echo", "{\"a\":1}", 0, 0, 0, done_post, "POST"); break;
	case 2: send_req("PUT", "/echo", "{\"a\":1}", 0, 0, 0, done_post, "PUT"); break;
	case 3: send_req("PATCH", "/echo", "{\"a\":1}", 0, 0, 0, done_post, "PATCH"); break;
	case 4: send_req("DELETE", "/echo", NULL, 0, 0, 0, done_delete, NULL); break;
	case 5:
		snprintf(want, sizeof(want), "http://h/x?p=2");
		send_req("GET", "/link?v=%3Chttp%3A%2F%2Fh%2Fx%3Fp%3D2%3E%3B%20REL%3D%22last%20next%22",
		    NULL, 0, 0, 0, done_link, want);
		break;
	case 6:
		send_req("GET", "/link?v=%3Chttp%3A%2F%2Fh%2Fx%3E%3B%20rel%3D%22nextpage%22",
		    NULL, 0, 0, 0, done_link, NULL);
		break;
	case 7: send_req("GET", "/status/500", NULL, 2, 0, 0, done_500, NULL); break;
	case 8:
		flaky_count = 0;
		send_req("GET", "/status/503?ok_after=2", NULL, 5, 0, 0, done_flaky, NULL);
		break;
	case 9:
		flaky_count = 0;
		send_req("GET", "/status/429?ra=1&ok_after=1", NULL, 3, 0, 0, done_ra,
		    (void *)(intptr_t)990);
		break;
	case 10:
		flaky_count = 0;
		send_req("GET", "/status/429?radate=2&ok_after=1", NULL, 3, 0, 0, done_ra,
		    (void *)(intptr_t)900);
		break;
	case 11: send_req("GET", "/status/404", NULL, 3, 0, 0, done_404, NULL); break;
	case 12: send_req("GET", "/slow?ms=2000", NULL, 0, 300, 0, done_timeout, NULL); break;
	case 13:
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", closed_port());
		send_req("GET", url, NULL, 1, 0, 0, done_refused, NULL);
		break;
	case 14: send_req("GET", "/big?n=100000", NULL, 3, 0, 5000, done_big, "Content-Length"); break;
	case 15:
		send_req("GET", "/big?n=100000&chunked=1", NULL, 3, 0, 5000, done_big, "chunked");
		break;
	case 16: send_req("GET", "/big?n=5000&chunked=1", NULL, 0, 0, 5000, done_big_ok, NULL); break;
	case 17: send_req("POST", "/created", "{}", 0, 0, 0, done_created, NULL); break;
	case 18: send_req("GET", "/gzip", NULL, 0, 0, 0, done_gzip, NULL); break;
	case 19:
		ports_before = nports;
		pending = 300;
		for (i = 0; i < 300; i++)
			send_req("GET", "/echo", NULL, 0, 0, 0, done_many, NULL);
		break;
	case 20:
		ports_before = nports;
		send_req("GET", "/echo", NULL, 0, 0, 0, done_seq, (void *)(intptr_t)1); break;
	case 21: {
		struct timeval c = { 0, 100000 };
		struct http_request req;

		memset(&req, 0, sizeof(req));
		snprintf(url, sizeof(url), "%s/slow?ms=1000", srv);
		req.url = url;
		victim = http_send(&req, done_never, NULL);
		event_base_once(base, -1, EV_TIMEOUT, cancel_timer, NULL, &c);
		event_base_once(base, -1, EV_TIMEOUT, after_cancel, NULL, &tv);
		break;
	}
	case 22: {
		struct http_request req;

		memset(&req, 0, sizeof(req));
		snprintf(url, sizeof(url), "%s/slow?ms=300", srv);
		req.url = url;
		pair[0] = http_send(&req, done_pair, (void *)(intptr_t)0);
		pair[1] = http_send(&req, done_pair, (void *)(intptr_t)1);
		event_base_once(base, -1, EV_TIMEOUT, after_pair, NULL, &tv);
		break;
	}
	default: {
		struct http_request req;

		/* Shut down with a call in flight and one waiting for a retry. */
		memset(&req, 0, sizeof(req));
		snprintf(url, sizeof(url), "%s/slow?ms=5000", srv);
		req.url = url;
		(void)http_send(&req, done_never, NULL);
		snprintf(url, sizeof(url), "%s/status/503", srv);
		req.retries = 3;
		req.backoff_ms = 10000;
		(void)http_send(&req, done_never, NULL);
		event_base_once(base, -1, EV_TIMEOUT, after_cancel, NULL, &tv);
		step = 1000;
		break;
	}
	case 1000:
		http_shutdown();
		CHECK(cb_after_cancel == 0, "http_shutdown with calls in flight: no callbacks");
		event_base_loopexit(base, NULL);
		break;
	}
}

/* Start the next check on a fresh loop turn (never from inside a callback chain). */
static void
next_step(void)
{
	event_base_once(base, -1, EV_TIMEOUT, next_step_cb, NULL, NULL);
}

int
main(int argc, char **argv)
{
	struct evhttp *h;
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	log_init(argc > 1 && strcmp(argv[1], "-v") == 0 ? 2 : 0, "test_http_server");
	base = event_base_new();
	h = evhttp_new(base);
	evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h, serve, NULL);
	if ((bs = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0)) == NULL) {
		fprintf(stderr, "cannot bind\n");
		return 1;
	}
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
	snprintf(srv, sizeof(srv), "http://127.0.0.1:%d", ntohs(sin.sin_port));
	if (http_init(base) == -1)
		return 1;
	next_step();
	event_base_dispatch(base);
	evhttp_free(h);
	event_base_free(base);
	printf("[  PASSED  ] %d test(s).\n", passes);
	if (failures)
		printf("[  FAILED  ] %d test(s).\n", failures);
	return failures ? 1 : 0;
}
