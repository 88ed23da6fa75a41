/*
 * http.c - every HTTP request of the process: one curl multi handle driven by libevent
 * (the hiperfifo.c pattern: one event per socket, one timer, completions only from
 * curl_multi_info_read), keep-alive connection reuse, response limits, and retries
 * with backoff on an evtimer. It never blocks the loop and never calls a callback from
 * inside a curl callback; a call is freed only once nothing on the stack refers to it.
 * Redirects are not followed (Location is reported). http_shutdown must not be called
 * from an http callback.
 * Streams (http_stream, for file sources) hand the bytes to the reader as they arrive
 * instead, can be paused, are never retried, and follow HTTP redirects. file:// is read
 * here, one chunk per loop turn, because libcurl reads a local file in one go and cannot
 * pause it.
 */
#include <sys/stat.h>
#include <curl/curl.h>
#include <zlib.h>
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "io/http.h"
#include "core/url.h"
#include "core/log.h"
#include "core/util.h"

#define HTTP_DEFAULT_TIMEOUT_MS		30000L
#define HTTP_DEFAULT_CONNECT_MS		10000L
#define HTTP_DEFAULT_MAX_BYTES		(64LL * 1024 * 1024)
#define HTTP_DEFAULT_BACKOFF_MS		500L
#define HTTP_BACKOFF_CAP_MS		30000L
#define HTTP_RETRY_AFTER_CAP_MS		120000L
#define HTTP_MAX_HOST_CONNECTIONS	16L
#define HTTP_STREAM_STALL_MS		30000L
#define HTTP_STREAM_BUFFER		65536L	/* curl's receive buffer; file:// chunk */
#define HTTP_NUDGE_MS			50L
#define HTTP_STREAM_PROTOCOLS		"ftp,ftps,sftp,http,https"	/* + file, by hand */

struct http_call {
	struct http_call	*prev, *next;	/* all live calls */
	struct http_call	*done_next;	/* finished transfers awaiting processing */
	bool			 in_done;
	bool			 in_multi;

	CURL			*easy;
	struct curl_slist	*hdrs;
	char			*method;
	char			*url;
	char			*log_url;	/* redacted, for log lines */
	char			*body;
	size_t			 body_len;
	long long		 max_bytes;
	int			 retries;
	long			 backoff_ms;
	http_cb			 cb;
	void			*arg;
	struct event		*retry_ev;

	/* Per attempt. */
	int			 attempts;
	CURLcode		 result;
	bool			 too_large;
	struct buf		 resp;
	char			*date;
	char			*location;
	char			*link_next;
	char			*encoding;	/* Content-Encoding of the answer, or NULL */
	long			 retry_after_ms;	/* -1: no Retry-After */
	bool			 framed;	/* Content-Length or chunked: the end is known */
	bool			 bad_url;	/* refused before it was sent */
	char			 errbuf[CURL_ERROR_SIZE];
	bool			 not_started;	/* it could not start: reported, never retried */

	/* Streams only. */
	http_data_cb		 on_data;	/* non-NULL: this is a stream */
	long long		 nbytes;	/* delivered so far */
	long			 stall_ms;
	bool			 paused;	/* receiving is paused */
	bool			 in_data;	/* on_data is on the stack */
	bool			 cancelled;	/* http_cancel from on_data: freed at the end */
	bool			 aborted;	/* on_data returned -1 */
	bool			 stalled;	/* no byte for stall_ms */
	struct event		*resume_ev;	/* deferred unpause */
	struct event		*stall_ev;
	struct event		*nudge_ev;	/* ftps: drives the data connection's TLS handshake */
	int			 fd;		/* file://: the open file, else -1 */
	struct stat		 st;		/* file://: the file as the read began */
	struct event		*file_ev;	/* file://: reads the next chunk */
	char			*fbuf;
	/* http(s): redirects stay on these origins (http_origin_allowed) */
	char			*origin;
	char			**allow;
	size_t			 nallow;
	long			 hstatus;	/* status of the answer whose headers come */
	char			*redirect_refused;	/* why a redirect was not followed */
};

/* One watched socket (curl_multi_assign'ed to curl's socket). */
struct http_sock {
	struct http_sock	*prev, *next;
	curl_socket_t		 fd;
	struct event		*ev;
};

static struct event_base	*http_base;
static CURLM			*http_multi;
static struct event		*http_timer;
static struct http_call		*http_calls;
static struct http_sock		*http_socks;
static struct http_call		*done_head, *done_tail;
static struct http_call		*http_current;	/* call whose callback is running */

static struct event		*http_kick;	/* reports calls that could not start */

static void	check_multi_info(void);
static void	not_started(struct http_call *);

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

/* Queue a finished call for check_multi_info. */
static void
done_push(struct http_call *c)
{
	c->in_done = true;
	c->done_next = NULL;
	if (done_tail != NULL)
		done_tail->done_next = c;
	else
		done_head = c;
	done_tail = c;
}

/* Forget what one attempt received. */
static void
attempt_reset(struct http_call *c)
{
	buf_reset(&c->resp);
	free(c->date);
	free(c->location);
	free(c->link_next);
	free(c->encoding);
	c->date = c->location = c->link_next = c->encoding = NULL;
	c->retry_after_ms = -1;
	c->framed = false;
	c->too_large = false;
	c->result = CURLE_OK;
	c->errbuf[0] = '\0';
}

static void
call_free(struct http_call *c)
{
	free(c->origin);
	for (size_t i = 0; i < c->nallow; i++)
		free(c->allow[i]);
	free(c->allow);
	free(c->redirect_refused);
	c->origin = c->redirect_refused = NULL;
	c->allow = NULL;
	c->nallow = 0;
	if (c->in_multi)
		curl_multi_remove_handle(http_multi, c->easy);
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
	attempt_reset(c);
	buf_free(&c->resp);
	free(c->method);
	free(c->url);
	free(c->log_url);
	free(c->body);
	free(c);
}

bool
http_retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599);
}

/* Timer from CURLMOPT_TIMERFUNCTION fired: let curl handle its timeouts. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd; (void)what; (void)arg;
	curl_multi_socket_action(http_multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi_info();
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
	check_multi_info();
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

static int	stream_deliver(struct http_call *, const char *, size_t);

/* CURLOPT_WRITEFUNCTION: accumulate the body up to max_bytes (a stream: hand it over). */
static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_call *c = arg;
	size_t len = size * n;

	if (c->on_data != NULL)
		return stream_deliver(c, p, len) == 0 ? len : 0;

	if ((long long)(c->resp.len + len) > c->max_bytes) {
		c->too_large = true;
		return 0;	/* aborts the transfer with CURLE_WRITE_ERROR */
	}
	buf_add(&c->resp, p, len);
	return len;
}

/* Resolve a URL reference (Link, Location) against the URL of the answer that sent it. */
static char *
resolve_url(struct http_call *c, const char *ref)
{
	CURLU *u = curl_url();
	char *out = NULL, *res = NULL, *base = NULL;

	if (u == NULL)
		return xstrdup(ref);
	/* After a redirect, the answer came from another URL than the one asked. */
	if (c->easy == NULL || curl_easy_getinfo(c->easy, CURLINFO_EFFECTIVE_URL, &base) !=
	    CURLE_OK || base == NULL)
		base = c->url;
	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &out, 0) == CURLUE_OK)
		res = xstrdup(out);
	curl_free(out);
	curl_url_cleanup(u);
	return res != NULL ? res : xstrdup(ref);
}

/* True if a rel parameter value (space-separated relation types) contains "next". */
static bool
rel_has_next(const char *v, size_t n)
{
	size_t i = 0, start;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		start = i;
		while (i < n && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == 4 && strncasecmp(v + start, "next", 4) == 0)
			return true;
	}
	return false;
}

/*
 * Find the rel="next" target in one Link header value (RFC 8288):
 * `<url>; rel="next"`, `<url>; rel=next`, several links separated by commas.
 * Written by hand: libcurl has no Link header parser.
 */
static char *
link_find_next(const char *v)
{
	const char *p = v, *url, *urlend, *name, *val;
	size_t namelen, vallen;
	bool next;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p != '<')
			return NULL;
		url = ++p;
		if ((urlend = strchr(p, '>')) == NULL)
			return NULL;
		p = urlend + 1;
		next = false;
		/* Parameters up to the next comma outside quotes. */
		for (;;) {
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p != ';')
				break;
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
			name = p;
			while (*p != '\0' && *p != '=' && *p != ';' && *p != ',' && *p != ' ')
				p++;
			namelen = (size_t)(p - name);
			while (*p == ' ' || *p == '\t')
				p++;
			val = NULL;
			vallen = 0;
			if (*p == '=') {
				p++;
				while (*p == ' ' || *p == '\t')
					p++;
				if (*p == '"') {
					val = ++p;
					while (*p != '\0' && *p != '"') {
						if (*p == '\\' && p[1] != '\0')
							p++;
						p++;
					}
					vallen = (size_t)(p - val);
					if (*p == '"')
						p++;
				} else {
					val = p;
					while (*p != '\0' && *p != ';' && *p != ',' && *p != ' ')
						p++;
					vallen = (size_t)(p - val);
				}
			}
			if (namelen == 3 && strncasecmp(name, "rel", 3) == 0 && val != NULL &&
			    rel_has_next(val, vallen))
				next = true;
		}
		if (next)
			return xstrndup(url, (size_t)(urlend - url));
		/* Skip anything unparsable up to the next link. */
		while (*p != '\0' && *p != ',')
			p++;
		if (*p == '\0')
			return NULL;
	}
}

/* Retry-After: delay-seconds or an HTTP date; -1 if unparsable. */
static long
parse_retry_after(const char *v)
{
	char *end;
	long long secs;
	time_t t;

	if (*v >= '0' && *v <= '9') {
		secs = strtoll(v, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end != '\0' || secs < 0)
			return -1;
		if (secs > HTTP_RETRY_AFTER_CAP_MS / 1000)
			return HTTP_RETRY_AFTER_CAP_MS;
		return (long)(secs * 1000);
	}
	if ((t = curl_getdate(v, NULL)) == -1)
		return -1;
	secs = (long long)(t - time(NULL));
	if (secs < 0)
		secs = 0;
	if (secs > HTTP_RETRY_AFTER_CAP_MS / 1000)
		return HTTP_RETRY_AFTER_CAP_MS;
	return (long)(secs * 1000);
}

/* CURLOPT_HEADERFUNCTION: keep Date, Location, Link rel=next and Retry-After. */
static size_t
header_cb(char *p, size_t size, size_t n, void *arg)
{
	struct http_call *c = arg;
	size_t len = size * n, namelen;
	char *line, *colon, *v, *e, *next, *why = NULL;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		const char *sp = memchr(p, ' ', len);

		/* The line is not NUL-terminated: read the digits within it. */
		c->hstatus = 0;
		for (sp = sp != NULL ? sp + 1 : p + len; sp < p + len && *sp >= '0' && *sp <= '9' &&
		    c->hstatus < 1000; sp++)
			c->hstatus = c->hstatus * 10 + (*sp - '0');
		/* A new response (after 100 Continue or a proxy): drop what came before. */
		free(c->date);
		free(c->location);
		free(c->link_next);
		free(c->encoding);
		c->date = c->location = c->link_next = c->encoding = NULL;
		c->retry_after_ms = -1;
		c->framed = false;
		return len;
	}
	line = xstrndup(p, len);
	if ((colon = strchr(line, ':')) == NULL)
		goto out;
	namelen = (size_t)(colon - line);
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (e = v + strlen(v); e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' ||
	    e[-1] == '\t'); e--)
		;
	*e = '\0';
	if (namelen == 4 && strncasecmp(line, "date", 4) == 0) {
		free(c->date);
		c->date = xstrdup(v);
	} else if (namelen == 8 && strncasecmp(line, "location", 8) == 0) {
		free(c->location);
		c->location = resolve_url(c, v);
		/* A stream follows redirects: only to the origins the job names. libcurl
		 * keeps its login for the first host, but a redirect would still choose
		 * where the file comes from, and http after https. */
		if (c->origin != NULL && c->hstatus >= 300 && c->hstatus <= 399 &&
		    c->location != NULL && http_origin_allowed(c->location, c->origin,
		    c->allow, c->nallow, &why) != 0) {
			char *shown = redact_url(c->location);

			free(c->redirect_refused);
			c->redirect_refused = xasprintf("a redirect to %.300s is not "
			    "followed: %s (a redirect stays on the origin of source.url or "
			    "one in source.allow_origins, and never goes from https to "
			    "http)", shown, why);
			free(shown);
			free(why);
			free(line);
			return 0;	/* aborts the transfer */
		}
	} else if (namelen == 4 && strncasecmp(line, "link", 4) == 0) {
		if (c->link_next == NULL && (next = link_find_next(v)) != NULL) {
			c->link_next = resolve_url(c, next);
			free(next);
		}
	} else if (namelen == 16 && strncasecmp(line, "content-encoding", 16) == 0) {
		free(c->encoding);
		c->encoding = xstrdup(v);
	} else if (namelen == 11 && strncasecmp(line, "retry-after", 11) == 0)
		c->retry_after_ms = parse_retry_after(v);
	else if ((namelen == 14 && strncasecmp(line, "content-length", 14) == 0) ||
	    (namelen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0 &&
	    strcasestr(v, "chunked") != NULL))
		c->framed = true;
out:
	free(line);
	return len;
}

/* Build the header list: the caller's, plus Accept, Content-Type and no Expect. */
static struct curl_slist *
make_headers(const struct http_request *req)
{
	struct curl_slist *l = NULL;
	bool accept = false, ctype = false, expect = false;
	const char *const *h;

	for (h = req->headers; h != NULL && *h != NULL; h++) {
		if (strncasecmp(*h, "accept:", 7) == 0)
			accept = true;
		else if (strncasecmp(*h, "content-type:", 13) == 0)
			ctype = true;
		else if (strncasecmp(*h, "expect:", 7) == 0)
			expect = true;
		l = curl_slist_append(l, *h);
	}
	if (!accept)
		l = curl_slist_append(l, "Accept: application/json");
	if (req->body != NULL && !ctype)
		l = curl_slist_append(l, "Content-Type: application/json");
	if (!expect)
		l = curl_slist_append(l, "Expect:");
	return l;
}

/* The options every transfer has: URL, callbacks, timeouts, TLS verification. */
static CURLcode
setup_base(struct http_call *c, const char *protocols, long ctimeout, bool tls_verify,
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

/* Set every option of the easy handle; they stay for all attempts. */
static int
setup_easy(struct http_call *c, const struct http_request *req)
{
	CURL *e = c->easy;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms :
	    HTTP_DEFAULT_CONNECT_MS;
	CURLcode r = setup_base(c, "http,https", ctimeout, req->tls_verify, req->ca_file);

#define SET(opt, val) do { if (r == CURLE_OK) r = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_TIMEOUT_MS, timeout);
	/* Never follow a redirect (libcurl's default, made explicit): the job's headers would
	 * go to the Location's host, which the answer chose (libcurl drops only Authorization
	 * there, not X-Api-Key and the like). A 3xx is an answer like any other non-2xx. */
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* Asked for, but decoded here (decode_body): libcurl's decoder takes a gzip stream cut
	 * before its trailer for a whole one. */
	SET(CURLOPT_ACCEPT_ENCODING, "gzip, deflate");
	SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_bytes);
	SET(CURLOPT_HEADERFUNCTION, header_cb);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_HTTPHEADER, c->hdrs);
	if (c->body != NULL) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
		SET(CURLOPT_POSTFIELDS, c->body);
		if (strcmp(c->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, c->method);
	} else if (strcmp(c->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(c->method, "POST") == 0) {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		SET(CURLOPT_POSTFIELDS, "");
	} else if (strcmp(c->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, c->method);
	}
#undef SET
	if (r != CURLE_OK) {
		snprintf(c->errbuf, sizeof c->errbuf, "cannot set up the request: %s",
		    curl_easy_strerror(r));
		log_warnx("%s %.200s%s: %s", c->method, c->log_url, strlen(c->log_url) > 200 ?
		    "..." : "", c->errbuf);
		return -1;
	}
	return 0;
}

/* Start (or restart) one attempt. */
static int
call_start(struct http_call *c)
{
	CURLMcode mr;

	attempt_reset(c);
	c->attempts++;
	if ((mr = curl_multi_add_handle(http_multi, c->easy)) != CURLM_OK) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", curl_multi_strerror(mr));
		return -1;
	}
	c->in_multi = true;
	return 0;
}

/* Backoff timer of a retry fired. */
static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;

	(void)fd; (void)what;
	if (call_start(c) == -1)
		not_started(c);	/* reported on the normal path */
	check_multi_info();
}

/* How long to wait before attempt number c->attempts + 1. */
static long
retry_delay(struct http_call *c)
{
	long long d;
	int shift = c->attempts - 1;

	if (c->retry_after_ms >= 0)
		return c->retry_after_ms;
	if (shift > 20)
		shift = 20;
	d = (long long)c->backoff_ms << shift;
	if (d > HTTP_BACKOFF_CAP_MS)
		d = HTTP_BACKOFF_CAP_MS;
	/* +-20% jitter */
	d = d * 80 / 100 + (long long)(rand64() % (uint64_t)(d * 40 / 100 + 1));
	if (d > HTTP_BACKOFF_CAP_MS)
		d = HTTP_BACKOFF_CAP_MS;
	return (long)d;
}

static void	stream_finish(struct http_call *);

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

/*
 * Decode the answer's Content-Encoding (gzip, x-gzip, deflate as zlib) in place, at most
 * max_bytes decoded. A stream that ends before its end marker (gzip: the trailer) is an
 * error, never a shorter answer. -1 with resp_err set; *final when retrying cannot help.
 */
static int
decode_body(struct http_call *c, char *resp_err, size_t errsz, bool *final)
{
	unsigned char out[16384];
	struct buf d;
	z_stream z;
	int r = Z_OK;
	size_t got;

	switch (http_encoding_kind(c->encoding)) {
	case HTTP_ENC_NONE:
		return 0;
	case HTTP_ENC_UNKNOWN:
		snprintf(resp_err, errsz, "the answer's Content-Encoding '%.60s' cannot be "
		    "decoded (gzip, x-gzip, deflate or none)", c->encoding);
		*final = true;
		return -1;
	case HTTP_ENC_ZLIB:
		break;
	}
	if (c->resp.len == 0)
		return 0;	/* no body (HEAD, 204) */
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 15 + 32) != Z_OK) {
		snprintf(resp_err, errsz, "cannot decode the answer (out of memory?)");
		return -1;
	}
	buf_init(&d);
	z.next_in = (unsigned char *)c->resp.data;
	z.avail_in = (uInt)c->resp.len;
	for (;;) {
		if (r == Z_STREAM_END) {
			if (z.avail_in == 0)
				break;
			if (inflateReset(&z) != Z_OK) {	/* another gzip member */
				r = Z_DATA_ERROR;
				break;
			}
		}
		z.next_out = out;
		z.avail_out = sizeof out;
		r = inflate(&z, Z_NO_FLUSH);
		got = sizeof out - z.avail_out;
		if ((long long)(d.len + got) > c->max_bytes) {
			snprintf(resp_err, errsz, "response larger than %lld bytes once decoded",
			    c->max_bytes);
			*final = true;
			goto fail;
		}
		buf_add(&d, out, got);
		if (r == Z_STREAM_END)
			continue;
		if (r != Z_OK || (z.avail_in == 0 && got < sizeof out))
			break;
	}
	if (r != Z_STREAM_END) {
		if (r == Z_OK || r == Z_BUF_ERROR)
			snprintf(resp_err, errsz, "the answer's %s stream ends early (truncated?)",
			    c->encoding);
		else
			snprintf(resp_err, errsz, "the answer's %s data is corrupt (%.100s)",
			    c->encoding, z.msg != NULL ? z.msg : zError(r));
		goto fail;
	}
	inflateEnd(&z);
	buf_free(&c->resp);
	c->resp = d;
	buf_add(&c->resp, "", 0);
	return 0;
fail:
	inflateEnd(&z);
	buf_free(&d);
	return -1;
}

/* One transfer ended: retry it, or hand the final answer to the callback. */
static void
call_finish(struct http_call *c)
{
	struct http_response resp;
	struct timeval tv;
	long status = 0, delay;
	bool final_error = false, undecodable = false;

	memset(&resp, 0, sizeof(resp));
	if (c->on_data != NULL) {
		stream_finish(c);
		return;
	}
	if (c->bad_url) {
		snprintf(resp.error, sizeof(resp.error), "URL %.250s refused: %.200s", c->log_url,
		    c->errbuf);
		final_error = true;	/* the same URL would be refused again */
	} else if (c->too_large || c->result == CURLE_FILESIZE_EXCEEDED) {
		snprintf(resp.error, sizeof(resp.error), "response larger than %lld bytes",
		    c->max_bytes);
		final_error = true;	/* the same answer would come again */
	} else if (c->result != CURLE_OK) {
		snprintf(resp.error, sizeof(resp.error), "%s (curl error %d)%s%.200s",
		    curl_easy_strerror(c->result), (int)c->result,
		    c->errbuf[0] != '\0' ? ": " : "", c->errbuf);
	} else {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		if (decode_body(c, resp.error, sizeof resp.error, &final_error) == -1) {
			log_info("%s %s: HTTP %ld: %s", c->method, c->log_url, status, resp.error);
			if (status >= 200 && status <= 299) {
				status = 0;	/* no answer we can trust: a transport error */
				undecodable = true;
			}
			else {
				buf_reset(&c->resp);	/* an error status without its body */
				resp.error[0] = '\0';
				final_error = false;
			}
		}
	}

	if (!final_error && !c->not_started && c->attempts <= c->retries &&
	    http_retryable(status)) {
		delay = retry_delay(c);
		if (status == 0)
			log_info("%s %s: %s; retry %d of %d in %ld ms", c->method, c->log_url,
			    resp.error, c->attempts, c->retries, delay);
		else
			log_info("%s %s: HTTP %ld; retry %d of %d in %ld ms", c->method,
			    c->log_url, status, c->attempts, c->retries, delay);
		tv.tv_sec = delay / 1000;
		tv.tv_usec = (delay % 1000) * 1000;
		if (c->retry_ev == NULL)
			c->retry_ev = evtimer_new(http_base, retry_cb, c);
		evtimer_add(c->retry_ev, &tv);
		return;
	}

	resp.status = status;
	resp.len = status != 0 ? c->resp.len : 0;
	resp.body = buf_steal(&c->resp);
	if (status == 0)
		resp.body[0] = '\0';
	resp.date = c->date;
	resp.location = c->location;
	resp.link_next = c->link_next;
	resp.attempts = c->attempts;
	resp.not_started = c->not_started;
	resp.undecodable = undecodable;
	c->date = c->location = c->link_next = NULL;

	http_current = c;
	if (c->cb != NULL)
		c->cb(&resp, c->arg);
	http_current = NULL;
	free(resp.body);
	free(resp.date);
	free(resp.location);
	free(resp.link_next);
	call_free(c);
}

/*
 * Collect every finished transfer first, then process them one by one from the list:
 * a callback may cancel or start other calls, and a cancelled call leaves the list.
 */
static void
check_multi_info(void)
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
		done_push(c);
	}
	/* A callback below may end in a nested check_multi_info: it drains the same list. */
	while ((c = done_head) != NULL) {
		done_head = c->done_next;
		if (done_head == NULL)
			done_tail = NULL;
		c->done_next = NULL;
		c->in_done = false;
		call_finish(c);
	}
}

/* The deferred report of requests that could not start. */
static void
kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd; (void)what; (void)arg;
	check_multi_info();
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
		call_free(http_calls);
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

/* A request refused before it was sent: reported like a finished transfer. */
static void
refused_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;

	(void)fd; (void)what;
	done_push(c);
	check_multi_info();
}

/*
 * A request that cannot start (no handle, an option refused, the multi handle refused it)
 * is answered like a transfer that failed at once, never retried, through its callback on
 * a later loop turn: the caller counted it in flight and waits for that answer.
 */
static void
not_started(struct http_call *c)
{
	if (c->errbuf[0] == '\0')
		snprintf(c->errbuf, sizeof c->errbuf, "the request could not be started");
	c->not_started = true;
	c->result = CURLE_FAILED_INIT;
	c->retries = 0;
	done_push(c);
	event_active(http_kick, EV_TIMEOUT, 0);
}

struct http_call *
http_send(const struct http_request *req, http_cb cb, void *arg)
{
	static const struct timeval now = { 0, 0 };
	char *why = NULL;

	struct http_call *c;

	c = xcalloc(1, sizeof(*c));
	buf_init(&c->resp);
	c->retry_after_ms = -1;
	c->method = xstrdup(req->method != NULL ? req->method : "GET");
	c->url = xstrdup(req->url);
	c->log_url = req->log_url != NULL ? xstrdup(req->log_url) : redact_url(req->url);
	if (req->body != NULL) {
		c->body = xmalloc(req->body_len + 1);
		memcpy(c->body, req->body, req->body_len);
		c->body[req->body_len] = '\0';
		c->body_len = req->body_len;
	}
	c->max_bytes = req->max_bytes > 0 ? req->max_bytes : HTTP_DEFAULT_MAX_BYTES;
	c->retries = req->retries > 0 ? req->retries : 0;
	c->backoff_ms = req->backoff_ms > 0 ? req->backoff_ms : HTTP_DEFAULT_BACKOFF_MS;
	c->cb = cb;
	c->arg = arg;
	c->hdrs = make_headers(req);
	c->next = http_calls;
	if (http_calls != NULL)
		http_calls->prev = c;
	http_calls = c;

	/* The URL as rendered: a placeholder may have supplied its scheme or host. */
	if (url_check(c->url, strlen(c->url), "http,https", &why) != 0) {
		snprintf(c->errbuf, sizeof(c->errbuf), "%s", why);
		free(why);
		c->bad_url = true;
		c->result = CURLE_URL_MALFORMAT;
		c->retry_ev = evtimer_new(http_base, refused_cb, c);
		evtimer_add(c->retry_ev, &now);
		return c;
	}
	if ((c->easy = curl_easy_init()) == NULL) {
		snprintf(c->errbuf, sizeof c->errbuf, "cannot create a libcurl handle");
		not_started(c);
	} else if (setup_easy(c, req) == -1 || call_start(c) == -1)
		not_started(c);
	return c;
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
	call_free(c);
}


/* ---- streams ---- */

/* Queue a stream that ended outside curl (file://, a stall, a failed unpause) as finished. */
static void
stream_end(struct http_call *c, CURLcode result)
{
	if (c->in_done)
		return;
	if (c->in_multi) {
		curl_multi_remove_handle(http_multi, c->easy);
		c->in_multi = false;
	}
	if (c->file_ev != NULL)
		evtimer_del(c->file_ev);
	if (c->stall_ev != NULL)
		evtimer_del(c->stall_ev);
	evtimer_del(c->resume_ev);
	c->result = result;
	done_push(c);
}

/* (Re)start the stall timer of a curl stream that is receiving. */
static void
stall_arm(struct http_call *c)
{
	struct timeval tv = { c->stall_ms / 1000, (c->stall_ms % 1000) * 1000 };

	if (c->stall_ev != NULL)
		evtimer_add(c->stall_ev, &tv);
}

/* No byte for stall_ms while receiving: give up. */
static void
stall_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;

	(void)fd; (void)what;
	c->stalled = true;
	stream_end(c, CURLE_OPERATION_TIMEDOUT);
	check_multi_info();
}

/*
 * libcurl 7.88 does not watch an FTPS data connection's socket while its TLS handshake
 * waits for the server (PROT P over implicit TLS), so with the multi-socket API nothing
 * wakes the transfer and it times out; the curl tool polls every handle and does not see
 * this. Until the first byte arrives, drive every handle every HTTP_NUDGE_MS with
 * curl_multi_socket_all: curl_multi_perform plus the socket callbacks of every handle, so
 * the socket bookkeeping stays right.
 */
static void
nudge_cb(evutil_socket_t fd, short what, void *arg)
{
	int running;

	(void)fd; (void)what; (void)arg;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	curl_multi_socket_all(http_multi, &running);
#pragma GCC diagnostic pop
	check_multi_info();
}

/* Pause receiving: curl keeps what it has read (nothing is lost), file:// stops reading. */
static void
stream_pause(struct http_call *c)
{
	evtimer_del(c->resume_ev);
	if (c->paused || c->in_done)
		return;
	c->paused = true;
	if (c->stall_ev != NULL)
		evtimer_del(c->stall_ev);
	if (c->file_ev != NULL)
		evtimer_del(c->file_ev);
	else if (c->in_multi)
		curl_easy_pause(c->easy, CURLPAUSE_RECV);	/* allowed inside write_cb */
}

/*
 * Hand bytes to the reader. 0: go on; -1: stop the transfer (too large, aborted by the
 * reader, or cancelled from inside on_data).
 */
static int
stream_deliver(struct http_call *c, const char *p, size_t len)
{
	int rc;

	if (c->cancelled || c->aborted)
		return -1;
	if (c->max_bytes > 0 && c->nbytes + (long long)len > c->max_bytes) {
		c->too_large = true;
		return -1;
	}
	c->nbytes += (long long)len;
	if (c->nudge_ev != NULL)
		evtimer_del(c->nudge_ev);	/* the data connection is up */
	if (!c->paused && c->file_ev == NULL)
		stall_arm(c);
	c->in_data = true;
	rc = c->on_data(c->arg, p, len);
	c->in_data = false;
	if (c->cancelled)
		return -1;
	if (rc < 0) {
		c->aborted = true;
		return -1;
	}
	if (rc > 0)
		stream_pause(c);
	return 0;
}

/*
 * file://, at the end of the read: was the whole file read as it was when the read began?
 * A file rewritten in place (a truncation at a line end, an export still being written)
 * would otherwise pass for a complete snapshot. A file replaced by a rename is not
 * affected: the open descriptor keeps the old one.
 */
static bool
file_unchanged(struct http_call *c)
{
	struct stat now;

	if (fstat(c->fd, &now) == -1) {
		snprintf(c->errbuf, sizeof(c->errbuf), "cannot check the file after the read: %s",
		    strerror(errno));
		return false;
	}
	if (now.st_size == c->st.st_size && now.st_mtim.tv_sec == c->st.st_mtim.tv_sec &&
	    now.st_mtim.tv_nsec == c->st.st_mtim.tv_nsec && c->nbytes == (long long)now.st_size)
		return true;
	snprintf(c->errbuf, sizeof(c->errbuf), "the file changed while it was read (%lld bytes "
	    "when the read began, %lld now, %lld read%s): not a complete snapshot",
	    (long long)c->st.st_size, (long long)now.st_size, c->nbytes,
	    now.st_mtim.tv_sec != c->st.st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != c->st.st_mtim.tv_nsec ? ", modified since" : "");
	return false;
}

/* file://: read and hand over one chunk per loop turn. */
static void
file_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;
	static const struct timeval now = { 0, 0 };
	ssize_t n;

	(void)fd; (void)what;
	n = read(c->fd, c->fbuf, HTTP_STREAM_BUFFER);
	if (n < 0 && errno == EINTR) {
		evtimer_add(c->file_ev, &now);
		return;
	}
	if (n < 0) {
		snprintf(c->errbuf, sizeof(c->errbuf), "cannot read: %s", strerror(errno));
		stream_end(c, CURLE_READ_ERROR);
	} else if (n == 0)
		stream_end(c, file_unchanged(c) ? CURLE_OK : CURLE_READ_ERROR);
	else if (stream_deliver(c, c->fbuf, (size_t)n) == -1) {
		if (c->cancelled) {
			call_free(c);
			return;
		}
		stream_end(c, CURLE_WRITE_ERROR);
	} else if (!c->paused)
		evtimer_add(c->file_ev, &now);
	check_multi_info();
}

/* The deferred half of http_stream_resume. */
static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;
	static const struct timeval now = { 0, 0 };
	CURLcode r;

	(void)fd; (void)what;
	if (!c->paused || c->in_done)
		return;
	c->paused = false;
	if (c->file_ev != NULL) {
		evtimer_add(c->file_ev, &now);
		return;
	}
	if (!c->in_multi)
		return;
	stall_arm(c);
	/* May hand over the bytes curl held back, right here (and pause again). */
	if ((r = curl_easy_pause(c->easy, CURLPAUSE_CONT)) != CURLE_OK) {
		if (c->cancelled) {
			call_free(c);
			return;
		}
		stream_end(c, r);
	}
	check_multi_info();
}

/*
 * An HTTP/1.x stream whose length was not announced (no Content-Length, not chunked) ends
 * when the server closes the connection, and a connection cut early looks the same. HTTP/2
 * and later frame the end of every stream; other protocols end by their own means.
 */
static bool
stream_complete(struct http_call *c)
{
	long ver = 0;
	char *url = NULL;
	bool http;

	if (c->easy == NULL || c->framed)
		return true;
	if (curl_easy_getinfo(c->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK || url == NULL)
		return true;
	http = strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
	curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &ver);
	return !http || ver >= CURL_HTTP_VERSION_2_0;
}

/* The end of a stream: one callback, with an error text that names the URL. */
static void
stream_finish(struct http_call *c)
{
	struct http_response resp;
	long status = 0;
	const char *e = c->errbuf;

	if (c->cancelled) {
		call_free(c);
		return;
	}
	memset(&resp, 0, sizeof(resp));
	if (c->easy != NULL)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	if (c->too_large || c->result == CURLE_FILESIZE_EXCEEDED)
		snprintf(resp.error, sizeof(resp.error), "%.300s: larger than %lld bytes "
		    "(http.max_bytes)", c->log_url, c->max_bytes);
	else if (c->stalled)
		snprintf(resp.error, sizeof(resp.error), "%.300s: no data for %ld ms after "
		    "%lld bytes", c->log_url, c->stall_ms, c->nbytes);
	else if (c->redirect_refused != NULL)
		snprintf(resp.error, sizeof(resp.error), "%.300s: %s", c->log_url,
		    c->redirect_refused);
	else if (c->aborted)
		snprintf(resp.error, sizeof(resp.error), "%.300s: stopped by the reader after "
		    "%lld bytes", c->log_url, c->nbytes);
	else if (c->result == CURLE_READ_ERROR && c->easy == NULL)
		snprintf(resp.error, sizeof(resp.error), "%.300s: %.200s", c->log_url, e);
	else if (c->result != CURLE_OK)
		snprintf(resp.error, sizeof(resp.error), "%.300s: %s (curl error %d)%s%.150s",
		    c->log_url, curl_easy_strerror(c->result), (int)c->result,
		    *e != '\0' ? ": " : "", e);
	else if (!stream_complete(c))
		snprintf(resp.error, sizeof(resp.error), "%.300s: the answer had neither "
		    "Content-Length nor chunked transfer coding, so its end cannot be told "
		    "from a dropped connection (%lld bytes): not taken as a complete snapshot",
		    c->log_url, c->nbytes);
	resp.status = status;
	resp.body = xstrdup("");
	resp.attempts = 1;
	http_current = c;
	if (c->cb != NULL)
		c->cb(&resp, c->arg);
	http_current = NULL;
	free(resp.body);
	call_free(c);
}

/* file://[localhost]/path: the local path (decoded), or NULL and *err. */
static char *
file_url_path(const char *url, char **err)
{
	CURLU *u = curl_url();
	char *host = NULL, *path = NULL, *res = NULL;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		*err = xstrdup("not a valid file:// URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host != NULL &&
	    *host != '\0' && strcasecmp(host, "localhost") != 0) {
		*err = xasprintf("file:// URLs name a local file (file:///path), not one on "
		    "host '%s'", host);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK ||
	    path == NULL || *path == '\0') {
		*err = xstrdup("a file:// URL without a path");
		goto out;
	}
	res = xstrdup(path);
out:
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return res;
}

/*
 * Open a file:// stream's file; -1 and *err. Only a regular file is a snapshot: a FIFO
 * would block the loop in open() until a writer came, /dev/zero never ends
 * (open_regular refuses them without waiting).
 */
static int
stream_open_file(struct http_call *c, char **err)
{
	static const struct timeval now = { 0, 0 };
	struct stat st;
	char *path, *e = NULL;

	if ((path = file_url_path(c->url, &e)) == NULL) {
		*err = xasprintf("%s: %s", c->log_url, e);
		free(e);
		return -1;
	}
	if ((c->fd = open_regular(path, &st)) == -1) {
		if (st.st_mode != 0 && !S_ISREG(st.st_mode))
			*err = xasprintf("%s: %s is %s, not a regular file: refused (a file "
			    "source reads only a regular file)", c->log_url, path,
			    file_kind(st.st_mode));
		else
			*err = xasprintf("%s: cannot read %s: %s", c->log_url, path,
			    strerror(errno));
		free(path);
		return -1;
	}
	c->st = st;
	free(path);
	c->fbuf = xmalloc(HTTP_STREAM_BUFFER);
	c->file_ev = evtimer_new(http_base, file_read_cb, c);
	evtimer_add(c->file_ev, &now);
	return 0;
}

/* Set the options of a curl stream. */
static int
stream_setup_easy(struct http_call *c, const struct http_stream_req *req, const char *scheme,
    char **err)
{
	CURL *e = c->easy;
	long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms :
	    HTTP_DEFAULT_CONNECT_MS;
	CURLcode r = setup_base(c, HTTP_STREAM_PROTOCOLS, ctimeout, req->tls_verify,
	    req->ca_file);

#define SET(opt, val) do { if (r == CURLE_OK) r = curl_easy_setopt(e, opt, val); } while (0)
	SET(CURLOPT_BUFFERSIZE, HTTP_STREAM_BUFFER);
	if (c->max_bytes > 0)
		SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_bytes);
	if (req->username != NULL && *req->username != '\0')
		SET(CURLOPT_USERNAME, req->username);
	if (req->password != NULL && *req->password != '\0')
		SET(CURLOPT_PASSWORD, req->password);
	if (strcmp(scheme, "sftp") == 0) {
		SET(CURLOPT_SSH_AUTH_TYPES, (long)(CURLSSH_AUTH_PUBLICKEY | CURLSSH_AUTH_PASSWORD));
		if (req->ssh_key != NULL && *req->ssh_key != '\0')
			SET(CURLOPT_SSH_PRIVATE_KEYFILE, req->ssh_key);
		if (req->ssh_host_sha256 != NULL && *req->ssh_host_sha256 != '\0')
			SET(CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, req->ssh_host_sha256);
	} else if (strcmp(scheme, "ftp") == 0 || strcmp(scheme, "ftps") == 0) {
		SET(CURLOPT_SERVER_RESPONSE_TIMEOUT, (c->stall_ms + 999) / 1000);
		if (strcmp(scheme, "ftps") == 0)
			SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	} else {
		SET(CURLOPT_FAILONERROR, 1L);
		SET(CURLOPT_FOLLOWLOCATION, 1L);
		SET(CURLOPT_MAXREDIRS, 5L);
		SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		SET(CURLOPT_HEADERFUNCTION, header_cb);
		SET(CURLOPT_HEADERDATA, c);
		/* The bytes come as sent: the reader decodes them (http_stream_encoding). */
		if (req->decode)
			SET(CURLOPT_ACCEPT_ENCODING, "gzip, deflate");
		SET(CURLOPT_HTTP_CONTENT_DECODING, 0L);
	}
#undef SET
	if (r != CURLE_OK) {
		*err = xasprintf("%s: cannot set up the transfer: %s", c->log_url,
		    curl_easy_strerror(r));
		return -1;
	}
	return 0;
}

/* The URL's scheme in lower case, or NULL. */
static char *
url_scheme(const char *url)
{
	size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");
	char *s;

	if (n == 0 || strncmp(url + n, "://", 3) != 0)
		return NULL;
	s = xstrndup(url, n);
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

struct http_call *
http_stream(const struct http_stream_req *req, http_data_cb on_data, http_cb on_done,
    void *arg, char **err)
{
	struct http_call *c;
	char *scheme, *e = NULL;
	CURLMcode mr;

	c = xcalloc(1, sizeof(*c));
	buf_init(&c->resp);
	c->fd = -1;
	c->retry_after_ms = -1;
	c->method = xstrdup("GET");
	c->url = xstrdup(req->url);
	c->log_url = req->log_url != NULL ? xstrdup(req->log_url) : redact_url(req->url);
	c->max_bytes = req->max_bytes > 0 ? req->max_bytes : 0;
	c->stall_ms = req->stall_ms > 0 ? req->stall_ms : HTTP_STREAM_STALL_MS;
	c->on_data = on_data;
	c->cb = on_done;
	c->arg = arg;
	c->attempts = 1;
	c->next = http_calls;
	if (http_calls != NULL)
		http_calls->prev = c;
	http_calls = c;
	c->resume_ev = evtimer_new(http_base, resume_cb, c);
	c->origin = url_origin(req->url);
	for (size_t i = 0; c->origin != NULL && i < req->nallow_origins; i++) {
		c->allow = xreallocarray(c->allow, c->nallow + 1, sizeof *c->allow);
		c->allow[c->nallow++] = xstrdup(req->allow_origins[i]);
	}

	scheme = url_scheme(req->url);
	if (scheme == NULL || (strcmp(scheme, "file") != 0 &&
	    strstr("," HTTP_STREAM_PROTOCOLS ",", scheme) == NULL) || strchr(scheme, ',') != NULL) {
		*err = xasprintf("%s: unsupported URL scheme (expected file, ftp, ftps, sftp, "
		    "http or https)", c->log_url);
		goto fail;
	}
	if (url_check(req->url, strlen(req->url), "file," HTTP_STREAM_PROTOCOLS, &e) != 0) {
		*err = xasprintf("%s: %s", c->log_url, e);
		free(e);
		goto fail;
	}
	if (strcmp(scheme, "file") == 0) {
		if (stream_open_file(c, err) == -1)
			goto fail;
		free(scheme);
		return c;
	}
	if ((c->easy = curl_easy_init()) == NULL) {
		*err = xasprintf("%s: cannot create a libcurl handle", c->log_url);
		goto fail;
	}
	if (stream_setup_easy(c, req, scheme, err) == -1)
		goto fail;
	c->stall_ev = evtimer_new(http_base, stall_cb, c);
	if ((mr = curl_multi_add_handle(http_multi, c->easy)) != CURLM_OK) {
		*err = xasprintf("%s: cannot start the transfer: %s", c->log_url,
		    curl_multi_strerror(mr));
		goto fail;
	}
	c->in_multi = true;
	stall_arm(c);
	if (strcmp(scheme, "ftps") == 0) {
		struct timeval tv = { 0, HTTP_NUDGE_MS * 1000 };

		c->nudge_ev = event_new(http_base, -1, EV_PERSIST, nudge_cb, c);
		evtimer_add(c->nudge_ev, &tv);
	}
	free(scheme);
	return c;
fail:
	free(scheme);
	call_free(c);
	return NULL;
}

const char *
http_stream_encoding(const struct http_call *c)
{
	return c != NULL ? c->encoding : NULL;
}

void
http_stream_pause(struct http_call *c)
{
	if (c != NULL && c->on_data != NULL)
		stream_pause(c);
}

void
http_stream_resume(struct http_call *c)
{
	static const struct timeval now = { 0, 0 };

	if (c != NULL && c->on_data != NULL && c->paused && !c->in_done)
		evtimer_add(c->resume_ev, &now);
}
