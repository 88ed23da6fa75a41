/*
 * http.h - libcurl multi driven by libevent: what every HTTP user shares (the answer, the
 * call handle, the loop's set-up) and the URL rules. Requests with retries are in
 * io/http_req.h, streamed downloads in io/http_stream.h.
 */
#ifndef ONESYNC_HTTP_H
#define ONESYNC_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include "core/util.h"

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
	int64_t		 throttled_until_ms;	/* a budget refused it (wall ms it may
					 * try again), error says which; else 0 */
	bool		 refused;	/* not sent for a reason of the whole job (a budget's
					 * refusal, a credential without a token): not the
					 * record's fault; error says why */
};

struct http_call;
/* Called once per request, after retries; resp is freed after the callback returns. */
typedef void (*http_cb)(struct http_response *resp, void *arg);

int http_init(struct event_base *) WUR;
void http_shutdown(void);	/* cancels everything without callbacks; before event_base_free */
void http_cancel(struct http_call *);	/* no callback after this */
/*
 * May a request that a source's answer chose (a next link, a redirect) go to url? Its
 * origin must be `origin` (url_origin of the configured URL) or one of allow[0..n)
 * (origins as url_origin writes them), and never http when `origin` is https.
 * 0 when it may; -1 and *why (caller frees) naming the rule when not.
 */
int http_origin_allowed(const char *url, const char *origin, char *const *allow,
    size_t nallow, char **why) WUR;

/* A budget covers the call: a 429 or 503 is the budget's to wait out, so it is retried
 * (through the budget, which the answer blocked) up to HTTP_BUDGET_RETRIES times more
 * than the request's own retries. */
void http_call_budgeted(struct http_call *);
#define HTTP_BUDGET_RETRIES	8

/* How a Content-Encoding is decoded (http_req.c decodes http_send's answers, a stream's
 * reader its own). */
enum http_encoding {
	HTTP_ENC_NONE,		/* none or identity */
	HTTP_ENC_ZLIB,		/* gzip, x-gzip, deflate: zlib's inflate with auto-detection */
	HTTP_ENC_UNKNOWN,	/* anything else, or a list: cannot be decoded */
};
enum http_encoding http_encoding_kind(const char *content_encoding);

/* Between io/http.c, io/http_req.c and io/http_stream.c only (struct http_call is in
 * io/http_int.h): the driver's side of a call. */
void http_call_link(struct http_call *);	/* a new call joins the live ones */
void http_call_free(struct http_call *);
void http_call_reset(struct http_call *);	/* forget what one attempt received */
/* The options every transfer has: URL, callbacks, timeouts, TLS verification. 0 or
 * the libcurl error (a CURLcode). */
int http_call_setup(struct http_call *, const char *protocols, long ctimeout,
    bool tls_verify, const char *ca_file);
/* What io/http_permit.c hears of every call: a transfer that left libcurl, a call freed
 * (before its memory goes). */
void http_set_call_hooks(void (*ended)(struct http_call *), void (*freed)(struct http_call *));
/* Start a permitted call's transfer: a stream's own start, or, for a request whose origin
 * has HTTP_MAX_HOST_CONNECTIONS transfers running, a wait for one to end (in the order
 * they came). 0 when started or waiting; -1 with c->errbuf when libcurl refused it. */
int http_call_start(struct http_call *);
/* Hand the final answer to the call's callback (http_cancel of it waits meanwhile). */
void http_call_answer(struct http_call *, struct http_response *);
/* Answer a call that could not start on a later loop turn (status 0, not_started). */
void http_call_not_started(struct http_call *);
void http_done_push(struct http_call *);	/* queue a finished call */
/* Requests waiting at the gate of url's origin; -1 when it has no gate (nothing of that
 * origin runs nor waits). For tests. */
int http_gate_waiting(const char *url);
void http_done_check(void);	/* finish every transfer that ended, one by one */

#endif
