/*
 * http_permit.h - what asks before an HTTP transfer starts: the request budgets' permits
 * and the credentials' bearer tokens (http_permit.c), hooks the daemon sets.
 */
#ifndef ONESYNC_HTTP_PERMIT_H
#define ONESYNC_HTTP_PERMIT_H

#include <stdbool.h>
#include <stdint.h>
#include "io/http.h"

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

/* Between io/http*.c only. Every attempt of a call: its permit, its token, then
 * http_call_start. 0 when started or waiting; -1 with c->errbuf when libcurl refused it. */
int http_call_add(struct http_call *);
/* A 401 answered the token the call sent: tell the provider. */
void http_call_auth_rejected(struct http_call *);

#endif
