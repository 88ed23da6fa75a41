/*
 * http_req.c - HTTP requests (http_send) on the multi driver of http.c: the answer's
 * headers (Date, Location, Link rel=next, Retry-After), response limits, the decoding of a
 * compressed answer, and retries with backoff on an evtimer. Redirects are not followed
 * (Location is reported). It never calls the caller back before http_send returns, nor
 * from inside a curl callback.
 */
#include <curl/curl.h>
#include <errno.h>
#include <zlib.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "io/http_req.h"
#include "io/http_int.h"
#include "io/http_permit.h"
#include "io/http_limits.h"
#include "core/log.h"
#include "core/url.h"
#include "core/util.h"

#define HTTP_DEFAULT_TIMEOUT_MS		30000L
#define HTTP_DEFAULT_MAX_BYTES		(64LL * 1024 * 1024)
#define HTTP_DEFAULT_BACKOFF_MS		500L
#define HTTP_BACKOFF_CAP_MS		30000L
#define HTTP_RETRY_AFTER_CAP_MS		120000L

bool
http_retryable(long status)
{
	return status == 0 || status == 408 || status == 429 || (status >= 500 && status <= 599);
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

/* CURLOPT_HEADERFUNCTION: keep Date, Location, Link rel=next, Retry-After and the limits. */
size_t
http_req_header_cb(char *p, size_t size, size_t n, void *arg)
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
		c->retry_after_ms = c->rl_remaining = c->rl_reset_ms = -1;
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
	else
		http_limits_header(c, line, namelen, v);
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

/* Set every option of the easy handle; they stay for all attempts. */
static int
setup_easy(struct http_call *c, const struct http_request *req)
{
	CURL *e = c->easy;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	long ctimeout = req->connect_timeout_ms > 0 ? req->connect_timeout_ms :
	    HTTP_DEFAULT_CONNECT_MS;
	CURLcode r = (CURLcode)http_call_setup(c, "http,https", ctimeout, req->tls_verify,
	    req->ca_file);

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
	SET(CURLOPT_HEADERFUNCTION, http_req_header_cb);
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
	http_call_reset(c);
	c->attempts++;
	return http_call_add(c);
}

/* Backoff timer of a retry fired. */
static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;

	(void)fd; (void)what;
	if (call_start(c) == -1)
		http_call_not_started(c);	/* reported on the normal path */
	http_done_check();
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
	if (c->refused) {
		snprintf(resp.error, sizeof(resp.error), "%s %.150s: %s", c->method, c->log_url,
		    c->refusal != NULL ? c->refusal : c->errbuf);
		resp.throttled_until_ms = c->refused_until_ms;
		resp.refused = true;
		final_error = true;	/* a budget or the credential refused it */
	} else if (c->bad_url) {
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

	if (status == 401 && !final_error && c->auth_token != NULL && !c->auth_retried) {
		/* The token was refused: once more, with the token asked for again (a
		 * new one if it was the current one); not counted as a retry. */
		static const struct timeval now = { 0, 0 };

		log_info("%s %s: HTTP 401 with the token of credential %s; trying once more "
		    "with a new one", c->method, c->log_url, c->auth);
		c->auth_retried = true;
		http_call_auth_rejected(c);
		c->attempts--;
		if (c->retry_ev == NULL)
			c->retry_ev = evtimer_new(http_base, retry_cb, c);
		evtimer_add(c->retry_ev, &now);
		return;
	}
	if (!final_error && !c->not_started && http_retryable(status) &&
	    (c->attempts <= c->retries || (c->budgeted && (status == 429 || status == 503) &&
	    c->budget_retries++ < HTTP_BUDGET_RETRIES))) {
		/* Under a budget a 429 or 503 blocked it: the retry waits there, where
		 * park_after applies, not on a timer of its own. */
		delay = c->budgeted && (status == 429 || status == 503) ? 0 : retry_delay(c);
		if (status == 0)
			log_info("%s %s: %s; retry %d of %d in %ld ms", c->method, c->log_url,
			    resp.error, c->attempts, c->retries, delay);
		else
			log_info("%s %s: HTTP %ld; retry %d of %d in %ld ms", c->method,
			    c->log_url, status, c->attempts, c->budget_retries > 0 ?
			    c->retries + HTTP_BUDGET_RETRIES : c->retries, delay);
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

	http_call_answer(c, &resp);
	free(resp.body);
	free(resp.date);
	free(resp.location);
	free(resp.link_next);
	http_call_free(c);
}

/* A request refused before it was sent: reported like a finished transfer. */
static void
refused_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_call *c = arg;

	(void)fd; (void)what;
	http_done_push(c);
	http_done_check();
}

struct http_call *
http_send(const struct http_request *req, http_cb cb, void *arg)
{
	static const struct timeval now = { 0, 0 };
	char *why = NULL;

	struct http_call *c;

	c = xcalloc(1, sizeof(*c));
	buf_init(&c->resp);
	c->retry_after_ms = c->rl_remaining = c->rl_reset_ms = -1;
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
	c->auth = req->auth != NULL ? xstrdup(req->auth) : NULL;
	c->priority = req->priority;
	c->hdrs = make_headers(req);
	c->finish = call_finish;
	http_call_link(c);

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
		http_call_not_started(c);
	} else if (setup_easy(c, req) == -1 || call_start(c) == -1)
		http_call_not_started(c);
	return c;
}
