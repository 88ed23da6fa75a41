/*
 * http.c - the curl multi driver of every HTTP transfer of the process: one multi handle
 * driven by libevent (the hiperfifo.c pattern: one event per socket, one timer,
 * completions only from curl_multi_info_read), the live calls and the queue of finished
 * ones, keep-alive connection reuse; and which origins a request may go to
 * (http_origin_allowed, on core/url.c's url_origin). It never blocks the loop and never calls a callback from inside a
 * curl callback; a call is freed only once nothing on the stack refers to it. What a
 * finished transfer means is its kind's business: requests and retries in http_req.c,
 * streams in http_stream.c, called through the call's `finish`. http_shutdown must not be
 * called from an http callback.
 */
#include <curl/curl.h>
#include <ctype.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io/http.h"
#include "io/http_int.h"
#include "core/log.h"
#include "core/url.h"
#include "core/util.h"

#define HTTP_MAX_HOST_CONNECTIONS	16L

/* One watched socket (curl_multi_assign'ed to curl's socket). */
struct http_sock {
	struct http_sock	*prev, *next;
	curl_socket_t		 fd;
	struct event		*ev;
};

struct event_base	*http_base;
CURLM			*http_multi;
static struct event		*http_timer;
static struct http_call		*http_calls;
static struct http_sock		*http_socks;
static struct http_call		*done_head, *done_tail;
static struct http_call		*http_current;	/* call whose callback is running */

static struct event		*http_kick;	/* reports calls that could not start */

/*
 * At most HTTP_MAX_HOST_CONNECTIONS requests per origin are in libcurl at once; the others
 * wait here, in the order they came. libcurl would hold them too (the same limit is set on
 * it, for streams), but its pending queue is walked again and again as transfers end: with
 * 32 requests for one host, where 16 may run, onesyncd's CPU grew by a third
 * (tests/bench/README.md). A gate lives while a request of its origin runs or waits.
 */
struct http_gate {
	struct http_gate	*next;
	char			*origin;
	int			 running;
	struct http_call	*head, *tail;	/* waiting */
};
static struct http_gate		*http_gates;

static struct http_gate *
gate_get(const char *url)
{
	struct http_gate *g;
	char *o;

	if ((o = url_origin(url)) == NULL)
		return NULL;
	for (g = http_gates; g != NULL; g = g->next)
		if (strcmp(g->origin, o) == 0) {
			free(o);
			return g;
		}
	g = xcalloc(1, sizeof *g);
	g->origin = o;
	g->next = http_gates;
	http_gates = g;
	return g;
}

/* Forget a gate nothing runs nor waits at. */
static void
gate_drop_idle(struct http_gate *g)
{
	struct http_gate **pp;

	if (g == NULL || g->running > 0 || g->head != NULL)
		return;
	for (pp = &http_gates; *pp != NULL; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	free(g->origin);
	free(g);
}

static int
gate_start(struct http_call *c, struct http_gate *g)
{
	CURLMcode mr;

	if ((mr = curl_multi_add_handle(http_multi, c->easy)) != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mr));
		c->gate = NULL;
		return -1;
	}
	c->in_multi = true;
	c->gate = g;
	if (g != NULL)
		g->running++;
	return 0;
}

/* Start the transfer, or queue it at its origin's gate. */
static int
gate_add(struct http_call *c)
{
	struct http_gate *g = gate_get(c->url);

	if (g != NULL && g->running >= HTTP_MAX_HOST_CONNECTIONS) {
		c->gate = g;
		c->gated = true;
		c->gate_next = NULL;
		if (g->tail != NULL)
			g->tail->gate_next = c;
		else
			g->head = c;
		g->tail = c;
		return 0;
	}
	if (gate_start(c, g) == -1) {
		gate_drop_idle(g);
		return -1;
	}
	return 0;
}

static void	(*hook_ended)(struct http_call *);
static void	(*hook_freed)(struct http_call *);

void
http_set_call_hooks(void (*ended)(struct http_call *), void (*freed)(struct http_call *))
{
	hook_ended = ended;
	hook_freed = freed;
}

int
http_call_start(struct http_call *c)
{
	return c->start != NULL ? c->start(c) : gate_add(c);
}


int
http_gate_waiting(const char *url)
{
	struct http_gate *g;
	char *o = url_origin(url);
	int n = -1;

	for (g = http_gates; o != NULL && g != NULL; g = g->next)
		if (strcmp(g->origin, o) == 0) {
			n = 0;
			for (struct http_call *c = g->head; c != NULL; c = c->gate_next)
				n++;
		}
	free(o);
	return n;
}

/* A request leaves libcurl (ended or cancelled) or the gate's queue: the next one waiting
 * at its origin starts. */
static void
gate_leave(struct http_call *c)
{
	struct http_gate *g = c->gate;
	struct http_call **pp, *prev = NULL;

	c->gate = NULL;
	if (g == NULL)
		return;
	if (c->gated) {
		for (pp = &g->head; *pp != NULL; prev = *pp, pp = &(*pp)->gate_next)
			if (*pp == c) {
				*pp = c->gate_next;
				if (g->tail == c)
					g->tail = prev;
				break;
			}
		c->gated = false;
		c->gate_next = NULL;
		gate_drop_idle(g);
		return;
	}
	g->running--;
	while (g->running < HTTP_MAX_HOST_CONNECTIONS && g->head != NULL) {
		struct http_call *n = g->head;

		if ((g->head = n->gate_next) == NULL)
			g->tail = NULL;
		n->gate_next = NULL;
		n->gated = false;
		if (gate_start(n, g) == -1)
			http_call_not_started(n);	/* answered on the next loop turn */
	}
	gate_drop_idle(g);
}

/* Unlink a call from the list of finished transfers. */
static void
done_unlink(struct http_call *c)
{
	struct http_call **pp, *prev = NULL;

	for (pp = &done_head; *pp != NULL; prev = *pp, pp = &(*pp)->done_next) {
		if (*pp != c)
			continue;
		*pp = c->done_next;
		if (done_tail == c)
			done_tail = prev;
		break;
	}
	c->done_next = NULL;
	c->in_done = false;
}

void
http_done_push(struct http_call *c)
{
	c->in_done = true;
	c->done_next = NULL;
	if (done_tail != NULL)
		done_tail->done_next = c;
	else
		done_head = c;
	done_tail = c;
}

void
http_call_reset(struct http_call *c)
{
	buf_reset(&c->resp);
	free(c->date);
	free(c->location);
	free(c->link_next);
	free(c->encoding);
	c->date = c->location = c->link_next = c->encoding = NULL;
	c->retry_after_ms = c->rl_remaining = c->rl_reset_ms = -1;
	c->framed = false;
	c->too_large = false;
	c->result = CURLE_OK;
	c->errbuf[0] = '\0';
}

void
http_call_free(struct http_call *c)
{
	free(c->origin);
	for (size_t i = 0; i < c->nallow; i++)
		free(c->allow[i]);
	free(c->allow);
	free(c->redirect_refused);
	c->origin = c->redirect_refused = NULL;
	c->allow = NULL;
	c->nallow = 0;
	if (c->in_multi) {
		curl_multi_remove_handle(http_multi, c->easy);
		c->in_multi = false;
	}
	gate_leave(c);
	if (hook_freed != NULL)
		hook_freed(c);
	if (c->auth_token != NULL)
		explicit_bzero(c->auth_token, strlen(c->auth_token));
	free(c->auth_token);
	free(c->auth);
	free(c->refusal);
	if (c->in_done)
		done_unlink(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (http_calls == c)
		http_calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->retry_ev != NULL)
		event_free(c->retry_ev);
	if (c->resume_ev != NULL)
		event_free(c->resume_ev);
	if (c->stall_ev != NULL)
		event_free(c->stall_ev);
	if (c->nudge_ev != NULL)
		event_free(c->nudge_ev);
	if (c->file_ev != NULL)
		event_free(c->file_ev);
	if (c->on_data != NULL && c->fd >= 0)
		close(c->fd);
	free(c->fbuf);
	if (c->easy != NULL)
		curl_easy_cleanup(c->easy);
	curl_slist_free_all(c->hdrs);
	http_call_reset(c);
	buf_free(&c->resp);
	free(c->method);
	free(c->url);
	free(c->log_url);
	free(c->body);
	free(c);
}

/* A new call joins the live ones (http_shutdown frees them). */
void
http_call_link(struct http_call *c)
{
	c->next = http_calls;
	if (http_calls != NULL)
		http_calls->prev = c;
	http_calls = c;
}

/* The final answer of a call: http_cancel from the callback frees nothing meanwhile. */
void
http_call_answer(struct http_call *c, struct http_response *resp)
{
	http_current = c;
	if (c->cb != NULL)
		c->cb(resp, c->arg);
	http_current = NULL;
}

/* Timer from CURLMOPT_TIMERFUNCTION fired: let curl handle its timeouts. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd; (void)what; (void)arg;
	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_done_check();
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the single timer. */
static int
multi_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct timeval tv;

	(void)multi; (void)arg;
	if (timeout_ms < 0) {
		evtimer_del(http_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(http_timer, &tv);
	return 0;
}

/* A watched socket is ready. */
static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
	int flags = 0, running;

	(void)arg;
	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(http_multi, fd, flags, &running);
	http_done_check();
}

static void
sock_free(struct http_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		http_socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch a socket for what curl wants, or stop watching it. */
static int
multi_sock_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct http_sock *s = sockp;
	short kind;

	(void)easy; (void)arg;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(http_multi, fd, NULL);
			sock_free(s);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->next = http_socks;
		if (http_socks != NULL)
			http_socks->prev = s;
		http_socks = s;
		curl_multi_assign(http_multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(http_base, fd, kind, sock_event_cb, NULL);
	event_add(s->ev, NULL);
	return 0;
}

/* CURLOPT_WRITEFUNCTION: accumulate the body up to max_bytes (a stream: hand it over). */
static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_call *c = arg;
	size_t len = size * n;

	if (c->on_data != NULL)
		return c->deliver(c, p, len) == 0 ? len : 0;

	if ((long long)(c->resp.len + len) > c->max_bytes) {
		c->too_large = true;
		return 0;	/* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_add(&c->resp, p, len);
	return len;
}

int
http_call_setup(struct http_call *c, const char *protocols, long ctimeout, bool tls_verify,
    const char *ca_file)
{
	CURL *e = c->easy;
	CURLcode r = CURLE_OK;

#define SET(opt, val) do { if (r == CURLE_OK) r = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_URL, c->url);
	SET(CURLOPT_PRIVATE, c);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, protocols);
	SET(CURLOPT_CONNECTTIMEOUT_MS, ctimeout);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_WRITEFUNCTION, write_cb);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_SSL_VERIFYPEER, tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, tls_verify ? 2L : 0L);
	if (ca_file != NULL && *ca_file != '\0')
		SET(CURLOPT_CAINFO, ca_file);
#undef SET
	return r;
}

/*
 * Collect every finished transfer first, then process them one by one from the list:
 * a callback may cancel or start other calls, and a cancelled call leaves the list.
 */
void
http_done_check(void)
{
	struct http_call *c;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(http_multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		c = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
		if (c == NULL || c->in_done)
			continue;
		c->result = msg->data.result;
		curl_multi_remove_handle(http_multi, c->easy);
		c->in_multi = false;
		gate_leave(c);
		if (hook_ended != NULL)
			hook_ended(c);
		http_done_push(c);
	}
	/* A callback below may end in a nested check_multi_info: it drains the same list. */
	while ((c = done_head) != NULL) {
		done_head = c->done_next;
		if (done_head == NULL)
			done_tail = NULL;
		c->done_next = NULL;
		c->in_done = false;
		c->finish(c);
	}
}

/* The deferred report of requests that could not start. */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	http_done_check();
}

int
http_init(struct event_base *base)
{
	const curl_version_info_data *vi;
	CURLcode r;

	if ((r = curl_global_init(CURL_GLOBAL_DEFAULT)) != CURLE_OK) {
		log_warnx("cannot initialise libcurl: %s", curl_easy_strerror(r));
		return -1;
	}
	vi = curl_version_info(CURLVERSION_NOW);
	if (!(vi->features & CURL_VERSION_ASYNCHDNS))
		log_warnx("libcurl %s resolves names synchronously: DNS lookups will block the "
		    "event loop; install a libcurl built with the threaded resolver", vi->version);
	if ((http_multi = curl_multi_init()) == NULL) {
		log_warnx("cannot create a libcurl multi handle");
		curl_global_cleanup();
		return -1;
	}
	http_base = base;
	http_timer = evtimer_new(base, timer_cb, NULL);
	http_kick = event_new(base, -1, 0, kick_cb, NULL);
	curl_multi_setopt(http_multi, CURLMOPT_SOCKETFUNCTION, multi_sock_cb);
	curl_multi_setopt(http_multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(http_multi, CURLMOPT_MAX_HOST_CONNECTIONS, HTTP_MAX_HOST_CONNECTIONS);
	return 0;
}

void
http_shutdown(void)
{
	struct http_sock *s;

	if (http_multi == NULL)
		return;
	while (http_calls != NULL)
		http_call_free(http_calls);
	done_head = done_tail = NULL;
	curl_multi_cleanup(http_multi);	/* may still call multi_sock_cb / multi_timer_cb */
	http_multi = NULL;
	while ((s = http_socks) != NULL)
		sock_free(s);
	event_free(http_timer);
	http_timer = NULL;
	event_free(http_kick);
	http_kick = NULL;
	http_base = NULL;
	curl_global_cleanup();
}

enum http_encoding
http_encoding_kind(const char *ce)
{
	size_t n;

	if (ce == NULL)
		return HTTP_ENC_NONE;
	ce += strspn(ce, " \t");
	n = strcspn(ce, " \t");
	if (ce[n + strspn(ce + n, " \t")] != '\0')
		return HTTP_ENC_UNKNOWN;	/* a list of codings, or junk */
	if (n == 0 || (n == 8 && strncasecmp(ce, "identity", 8) == 0))
		return HTTP_ENC_NONE;
	if ((n == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
	    (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0) ||
	    (n == 7 && strncasecmp(ce, "deflate", 7) == 0))
		return HTTP_ENC_ZLIB;
	return HTTP_ENC_UNKNOWN;
}

int
http_origin_allowed(const char *url, const char *origin, char *const *allow, size_t nallow,
    char **why)
{
	char *o;
	size_t i;

	*why = NULL;
	if ((o = url_origin(url)) == NULL) {
		*why = xstrdup("it is not an absolute http or https URL");
		return -1;
	}
	if (strncmp(origin, "https:", 6) == 0 && strncmp(o, "http:", 5) == 0) {
		*why = xstrdup("it would go from https to http (never followed)");
		free(o);
		return -1;
	}
	if (strcmp(o, origin) == 0) {
		free(o);
		return 0;
	}
	for (i = 0; i < nallow; i++) {
		if (strcmp(o, allow[i]) == 0) {
			free(o);
			return 0;
		}
	}
	*why = xasprintf("its origin %s is not the origin of source.url, nor one of "
	    "source.allow_origins", o);
	free(o);
	return -1;
}

/*
 * A request that cannot start (no handle, an option refused, the multi handle refused it)
 * is answered like a transfer that failed at once, never retried, through its callback on
 * a later loop turn: the caller counted it in flight and waits for that answer.
 */
void
http_call_not_started(struct http_call *c)
{
	if (c->errbuf[0] == '\0')
		snprintf(c->errbuf, sizeof c->errbuf, "the request could not be started");
	c->not_started = true;
	c->result = CURLE_FAILED_INIT;
	c->retries = 0;
	http_done_push(c);
	event_active(http_kick, EV_TIMEOUT, 0);
}

void
http_cancel(struct http_call *c)
{
	if (c == NULL)
		return;
	if (c == http_current)
		return;		/* its callback is running: freed when it returns */
	if (c->in_data) {
		c->cancelled = true;	/* inside curl: freed once the transfer stops */
		return;
	}
	http_call_free(c);
}
