/* http_req.h - HTTP requests through the multi driver (io/http.h), with retries. */
#ifndef ONESYNC_HTTP_REQ_H
#define ONESYNC_HTTP_REQ_H

#include "io/http.h"

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
	const char	*auth;		/* a credential's name: its bearer token is asked for
					 * before every attempt (http_set_auth); NULL = none */
	bool		 priority;	/* a token request: passes the budgets' rate but not
					 * their concurrency (a request waiting for its token
					 * may hold the only slot) */
	long		 backoff_ms;	/* first retry delay (doubles, jitter); 0 = 500 ms */
};

/*
 * Copies everything it needs from req. Never NULL, never calls back before it returns:
 * a request that cannot start is answered through cb on a later loop turn (status 0,
 * not_started), so a caller that counts it in flight always hears back.
 */
struct http_call *http_send(const struct http_request *req, http_cb cb, void *arg);
/* True for statuses that are retried (408, 429, 5xx) or transport errors (status 0). */
bool http_retryable(long status);


/* CURLOPT_HEADERFUNCTION: keep Date, Location, Link rel=next, Retry-After,
 * Content-Encoding and the framing (io/http_stream.c sets it too). */
size_t http_req_header_cb(char *, size_t, size_t, void *);

#endif
