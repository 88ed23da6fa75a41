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

/* What a permitted transfer's answer said of the server's limits (to the permit engine). */
struct http_limit_info {
	long	status;		/* 0: no answer (transport error) */
	long	retry_after_ms;	/* Retry-After, -1: none */
	long	remaining;	/* RateLimit / X-RateLimit remaining, -1: none */
	long	reset_ms;	/* when that resets, ms from now, -1: none */
};
/*
 * Permits: when set, every attempt of a request asks before its transfer starts (the
 * budgets, daemon/budgets.c). ask() answers with http_permit_done, at once or later;
 * ended() hears that a permitted transfer ended (info), or that a call that asked or was
 * permitted is freed (info NULL): whatever it held is given back.
 */
struct http_permit_ops {
	void	(*ask)(struct http_call *, const char *method, const char *url, void *arg);
	void	(*ended)(struct http_call *, const struct http_limit_info *, void *arg);
};
void http_set_permit(const struct http_permit_ops *, void *arg);	/* NULL: none */
/* The permit engine's answer: 0 lets the transfer start; else the call is refused (answered
 * with why, status 0, never retried) and may try again at refused_until_ms (wall ms). */
void http_permit_done(struct http_call *, int64_t refused_until_ms, const char *why);
void **http_call_permit_slot(struct http_call *);	/* the engine's pointer for a call */
bool http_call_priority(const struct http_call *);	/* http_request.priority */
/*
 * Credentials: a call whose request names one (http_request.auth) asks, once permitted and
 * before each attempt starts, token(c, name) for the bearer token to send; the provider
 * answers with http_auth_done, at once or later. A 401 to an attempt that sent a token
 * tells rejected(name, token) and is tried once more with the token asked for again.
 */
struct http_auth_ops {
	void	(*token)(struct http_call *, const char *name, void *arg);
	void	(*rejected)(const char *name, const char *token, void *arg);
	void	(*cancel)(struct http_call *, void *arg);	/* a waiting call is freed */
};
void http_set_auth(const struct http_auth_ops *, void *arg);	/* NULL: none */
/* The provider's answer: the token to send, or NULL and why the call cannot be sent (it is
 * answered with why, refused, never retried). */
void http_auth_done(struct http_call *, const char *token, const char *why);
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
/* A 401 answered the token the call sent: tell the credential's provider. */
void http_call_auth_rejected(struct http_call *);
/* Hand the final answer to the call's callback (http_cancel of it waits meanwhile). */
void http_call_answer(struct http_call *, struct http_response *);
/* Answer a call that could not start on a later loop turn (status 0, not_started). */
void http_call_not_started(struct http_call *);
void http_done_push(struct http_call *);	/* queue a finished call */
/*
 * Start a request's transfer, or, when its origin has HTTP_MAX_HOST_CONNECTIONS transfers
 * running, let it wait for one to end (in the order they came). 0 when started or
 * waiting; -1 with c->errbuf when libcurl refused it.
 */
int http_call_add(struct http_call *);
/* Requests waiting at the gate of url's origin; -1 when it has no gate (nothing of that
 * origin runs nor waits). For tests. */
int http_gate_waiting(const char *url);
void http_done_check(void);	/* finish every transfer that ended, one by one */

#endif
