/*
 * http_stream.c - streamed downloads (http_stream, for file sources) on the multi driver
 * of http.c: the bytes go to the reader as they arrive instead of being kept, a transfer
 * can be paused, is never retried, follows HTTP redirects (on the origins the job names
 * only) and fails after a stall. file:// is read here, one chunk per loop turn, because
 * libcurl reads a local file in one go and cannot pause it. It never blocks the loop and
 * never calls the reader's on_done before http_stream returns.
 */
#include <sys/stat.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "io/http_stream.h"
#include "io/http_req.h"
#include "io/http_int.h"
#include "io/http_permit.h"
#include "core/log.h"
#include "core/url.h"
#include "core/util.h"

#define HTTP_STREAM_STALL_MS		30000L
#define HTTP_STREAM_BUFFER		65536L	/* curl's receive buffer; file:// chunk */
#define HTTP_NUDGE_MS			50L
#define HTTP_STREAM_PROTOCOLS		"ftp,ftps,sftp,http,https"	/* + file, by hand */

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
	http_done_push(c);
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
	http_done_check();
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
	http_done_check();
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
			http_call_free(c);
			return;
		}
		stream_end(c, CURLE_WRITE_ERROR);
	} else if (!c->paused)
		evtimer_add(c->file_ev, &now);
	http_done_check();
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
			http_call_free(c);
			return;
		}
		stream_end(c, r);
	}
	http_done_check();
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

/* A permitted http(s) stream starts (io/http.c's permits): -1 with errbuf when refused. */
static int
stream_add(struct http_call *c)
{
	CURLMcode mr;

	if ((mr = curl_multi_add_handle(http_multi, c->easy)) != CURLM_OK) {
		snprintf(c->errbuf, sizeof c->errbuf, "cannot start the transfer: %s",
		    curl_multi_strerror(mr));
		return -1;
	}
	c->in_multi = true;
	stall_arm(c);
	return 0;
}

/* The end of a stream: one callback, with an error text that names the URL. */
static void
stream_finish(struct http_call *c)
{
	struct http_response resp;
	long status = 0;
	const char *e = c->errbuf;

	if (c->cancelled) {
		http_call_free(c);
		return;
	}
	memset(&resp, 0, sizeof(resp));
	if (c->easy != NULL)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
	if (c->refused) {
		snprintf(resp.error, sizeof(resp.error), "%.150s: %s", c->log_url,
		    c->refusal != NULL ? c->refusal : e);
		resp.throttled_until_ms = c->refused_until_ms;
		resp.refused = true;
	} else if (c->not_started)
		snprintf(resp.error, sizeof(resp.error), "%.300s: %.200s", c->log_url, e);
	else if (c->too_large || c->result == CURLE_FILESIZE_EXCEEDED)
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
	http_call_answer(c, &resp);
	free(resp.body);
	http_call_free(c);
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
	CURLcode r = (CURLcode)http_call_setup(c, HTTP_STREAM_PROTOCOLS, ctimeout,
	    req->tls_verify, req->ca_file);

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
		SET(CURLOPT_HEADERFUNCTION, http_req_header_cb);
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
	c->retry_after_ms = c->rl_remaining = c->rl_reset_ms = -1;
	c->method = xstrdup("GET");
	c->url = xstrdup(req->url);
	c->log_url = req->log_url != NULL ? xstrdup(req->log_url) : redact_url(req->url);
	c->max_bytes = req->max_bytes > 0 ? req->max_bytes : 0;
	c->stall_ms = req->stall_ms > 0 ? req->stall_ms : HTTP_STREAM_STALL_MS;
	c->on_data = on_data;
	c->cb = on_done;
	c->arg = arg;
	c->attempts = 1;
	c->finish = stream_finish;
	c->deliver = stream_deliver;
	http_call_link(c);
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
	if (strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0) {
		/* through the permits (request budgets) and the credential, like a request */
		c->start = stream_add;
		c->auth = req->auth != NULL ? xstrdup(req->auth) : NULL;
		if (http_call_add(c) == -1) {
			*err = xasprintf("%s: cannot start the transfer: %s", c->log_url,
			    c->errbuf);
			goto fail;
		}
		free(scheme);
		return c;
	}
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
	http_call_free(c);
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
