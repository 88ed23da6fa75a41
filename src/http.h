/* http.h - libcurl multi driven by libevent: asynchronous requests with retries. */
#ifndef ONESYNC_HTTP_H
#define ONESYNC_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include "util.h"

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
	char		 error[256];	/* transport error text, "" if none */
};

struct http_call;
/* Called once per request, after retries; resp is freed after the callback returns. */
typedef void (*http_cb)(struct http_response *resp, void *arg);

int http_init(struct event_base *) WUR;
void http_shutdown(void);	/* cancels everything without callbacks; before event_base_free */
/* Copies everything it needs from req. */
struct http_call *http_send(const struct http_request *req, http_cb cb, void *arg);
void http_cancel(struct http_call *);	/* no callback after this */
/* True for statuses that are retried (408, 429, 5xx) or transport errors (status 0). */
bool http_retryable(long status);

#endif
