/*
 * http_int.h - what io/http.c (the multi driver), io/http_req.c (requests and retries) and
 * io/http_stream.c (streams) share: one call's state. Only those three files include it;
 * everyone else sees struct http_call as an opaque handle (io/http.h). The functions the
 * three share are declared with their owner: the driver's in io/http.h (the part after
 * "Between io/http*.c only"), http_req_header_cb in io/http_req.h.
 */
#ifndef ONESYNC_HTTP_INT_H
#define ONESYNC_HTTP_INT_H

#include <sys/stat.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include "core/util.h"

#define HTTP_DEFAULT_CONNECT_MS		10000L

struct http_response;

struct http_call {
	struct http_call	*prev, *next;	/* all live calls */
	struct http_call	*done_next;	/* finished transfers awaiting processing */
	bool			 in_done;
	bool			 in_multi;
	struct http_gate	*gate;		/* a request's origin, while it runs or waits */
	struct http_call	*gate_next;	/* waiting at the gate */
	bool			 gated;		/* waiting at the gate, not yet in libcurl */
	/* Set by the kind of call (a request, a stream): the driver calls it once the
	 * transfer ended, from http_done_check, never from inside libcurl. */
	void			(*finish)(struct http_call *);

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
	void			(*cb)(struct http_response *, void *);	/* http_cb */
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
	char			*refusal;	/* why a budget or a credential refused it, whole */
	bool			 not_started;	/* it could not start: reported, never retried */
	long			 rl_remaining;	/* RateLimit / X-RateLimit remaining, -1: none */
	long			 rl_reset_ms;	/* ... and when it resets, ms from now, -1: none */

	/* Permits (http_set_permit): asked before every attempt's transfer. */
	void			*permit;	/* the permit engine's pointer */
	bool			 permit_wait;	/* asked, not answered yet */
	bool			 permitted;	/* this attempt may run: told when it ends */
	int64_t			 refused_until_ms;	/* a budget refused it: may try at (wall ms) */
	bool			 refused;	/* a budget or the credential refused it */
	bool			 budgeted;	/* a budget covers it: 429/503 retried */
	bool			 priority;	/* http_request.priority */
	char			*auth;		/* a credential's name (http_set_auth), or NULL */
	char			*auth_token;	/* the token this attempt sends */
	bool			 auth_wait;	/* its token was asked for, not answered yet */
	bool			 auth_retried;	/* a 401 was retried once with a new token */
	int			(*start)(struct http_call *);	/* a stream's own start once
					 * permitted (NULL: a request's, through the gate) */
	int			 budget_retries;	/* ... so many times beyond `retries` */

	/* Streams only. */
	int			(*on_data)(void *, const char *, size_t);	/* http_data_cb;
					 * non-NULL: this is a stream */
	int			(*deliver)(struct http_call *, const char *, size_t);	/* hands
					 * the bytes libcurl wrote to on_data (http_stream.c) */
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

/* The driver's loop and multi handle (io/http.c), set by http_init. */
extern struct event_base	*http_base;
extern CURLM			*http_multi;

#endif
