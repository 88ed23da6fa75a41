/* http.h - libcurl multi driven by libevent: asynchronous requests with retries. */
#ifndef ONESYNC_HTTP_H
#define ONESYNC_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/util.h"

struct http_request {
	const char	*method;	/* "GET", "POST", ... */
	const char	*url;
	const char	*log_url;	/* redacted URL for log lines; NULL = url */
	const char	*const *headers;	/* "Name: value", NULL-terminated; may be NULL */
	const char	*body;		/* NULL = none */
	size_t		 body_len;
	long		 timeout_ms;	/* per attempt; 0 = 30 s */
	long		 connect_timeout_ms;	/* 0 = 10 s */
	long long	 max_bytes;	/* response body limit; 0 = 64 MiB */
	bool		 tls_verify;
	const char	*ca_file;
	int		 retries;	/* retries of 408/429/5xx/transport errors */
	long		 backoff_ms;	/* first retry delay (doubles, jitter); 0 = 500 ms */
};

struct http_response {
	long		 status;	/* 0 when no HTTP answer (transport error) */
	char		*body;		/* NUL-terminated */
	size_t		 len;
	char		*date;		/* Date header or NULL */
	char		*link_next;	/* URL of Link: rel="next", or NULL */
	char		*location;
	int		 attempts;
	char		 error[512];	/* transport error text, "" if none */
	bool		 undecodable;	/* an answer came (status 0 all the same) whose body
					 * could not be decoded (cut, corrupt, unknown
					 * Content-Encoding): error says why */
	bool		 not_started;	/* the request could not even start (e.g. an URL
					 * longer than libcurl accepts): nothing was sent */
};

struct http_call;
/* Called once per request, after retries; resp is freed after the callback returns. */
typedef void (*http_cb)(struct http_response *resp, void *arg);

int http_init(struct event_base *) WUR;
void http_shutdown(void);	/* cancels everything without callbacks; before event_base_free */
/*
 * Copies everything it needs from req. Never NULL, never calls back before it returns:
 * a request that cannot start is answered through cb on a later loop turn (status 0,
 * not_started), so a caller that counts it in flight always hears back.
 */
struct http_call *http_send(const struct http_request *req, http_cb cb, void *arg);
void http_cancel(struct http_call *);	/* no callback after this */
/*
 * May a request that a source's answer chose (a next link, a redirect) go to url? Its
 * origin must be `origin` (url_origin of the configured URL) or one of allow[0..n)
 * (origins as url_origin writes them), and never http when `origin` is https.
 * 0 when it may; -1 and *why (caller frees) naming the rule when not.
 */
int http_origin_allowed(const char *url, const char *origin, char *const *allow,
    size_t nallow, char **why) WUR;
/* True for statuses that are retried (408, 429, 5xx) or transport errors (status 0). */
bool http_retryable(long status);

/*
 * A streamed download (a file source) over file, ftp, ftps, sftp, http or https: the bytes
 * go to a callback as they arrive, nothing is kept, and the reader can pause the transfer.
 * No retries (a file read starts again from scratch on the next run).
 */
struct http_stream_req {
	const char	*url;
	const char	*log_url;	/* redacted URL for messages; NULL = redact_url(url) */
	const char	*username;	/* NULL = the URL's, if any */
	const char	*password;	/* never logged */
	const char	*ssh_key;	/* sftp: private key file (the public key is derived from it) */
	const char	*ssh_host_sha256;	/* sftp: pinned host key, base64 SHA256 (no "SHA256:") */
	long		 stall_ms;	/* fail after this long without a byte while not paused; 0 = 30 s */
	long		 connect_timeout_ms;	/* 0 = 10 s */
	long long	 max_bytes;	/* size limit of the whole file; 0 = none */
	bool		 tls_verify;	/* https, ftps */
	const char	*ca_file;
	char *const	*allow_origins;	/* http(s): origins besides the URL's that a
					 * redirect may lead to (http_origin_allowed) */
	size_t		 nallow_origins;
	bool		 decode;	/* http(s): ask for a compressed transfer (leave false
					 * when the file itself is gzip); the bytes always come as
					 * sent: the reader decodes by http_stream_encoding */
};

/*
 * Bytes of a stream, in order. Return 0 to go on, 1 to pause after these bytes (they are
 * consumed; nothing more comes until http_stream_resume), -1 to stop the transfer (it ends
 * with an error). It runs inside libcurl: it must not start, cancel or finish other
 * requests; it may call http_stream_pause or http_cancel on its own call.
 */
typedef int (*http_data_cb)(void *arg, const char *data, size_t len);

/*
 * Start a stream. on_done runs once, at the end, never before this returns: resp->error is
 * "" when the whole file arrived, otherwise a text that names the (redacted) URL and what
 * failed; resp->status is the protocol's last answer code (HTTP status, FTP reply) or 0.
 * NULL and *err (caller frees) when it cannot start.
 */
struct http_call *http_stream(const struct http_stream_req *, http_data_cb on_data,
    http_cb on_done, void *arg, char **err);
void http_stream_pause(struct http_call *);
/*
 * The Content-Encoding of a stream's answer (http(s), once its first bytes arrived), or
 * NULL. libcurl never decodes: its decoder takes a gzip stream cut before the trailer for
 * a whole one, so the reader decodes with a decoder that checks the end (parse.c).
 * http_send's answers are decoded by http.c the same way: a cut one is an error.
 */
const char *http_stream_encoding(const struct http_call *);
enum http_encoding {
	HTTP_ENC_NONE,		/* none or identity */
	HTTP_ENC_ZLIB,		/* gzip, x-gzip, deflate: zlib's inflate with auto-detection */
	HTTP_ENC_UNKNOWN,	/* anything else, or a list: cannot be decoded */
};
enum http_encoding http_encoding_kind(const char *content_encoding);
/* Go on from a later loop turn: no data arrives inside this call. */
void http_stream_resume(struct http_call *);

#endif
