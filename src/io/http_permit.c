/*
 * http_permit.c - what asks before a transfer starts (io/http_permit.h): the permits of the
 * request budgets (daemon/budgets.c) and the bearer tokens of credentials (daemon/creds.c),
 * each a hook the daemon sets; and what a finished or freed call gives back to them.
 * Requests (io/http_req.c) and streams (io/http_stream.c) call http_call_add for every
 * attempt; the multi driver (io/http.c) tells the two ends below through its call hooks.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/http.h"
#include "io/http_int.h"
#include "io/http_permit.h"
#include "core/util.h"

static void transfer_ended(struct http_call *);
static void call_freed(struct http_call *);
static const struct http_permit_ops	*permit_ops;
static void				*permit_arg;
static const struct http_auth_ops	*auth_ops;
static void				*auth_arg;

void
http_set_auth(const struct http_auth_ops *ops, void *arg)
{
	auth_ops = ops;
	auth_arg = arg;
	http_set_call_hooks(transfer_ended, call_freed);
}

bool
http_call_priority(const struct http_call *c)
{
	return c->priority;
}

void
http_set_permit(const struct http_permit_ops *ops, void *arg)
{
	permit_ops = ops;
	permit_arg = arg;
	http_set_call_hooks(transfer_ended, call_freed);
}

void **
http_call_permit_slot(struct http_call *c)
{
	return &c->permit;
}

void
http_call_budgeted(struct http_call *c)
{
	c->budgeted = true;
}

/* The last step before a transfer: the credential's token, then the start. */
static int
call_go(struct http_call *c)
{
	if (c->auth != NULL && auth_ops != NULL) {
		c->auth_wait = true;
		auth_ops->token(c, c->auth, auth_arg);
		return 0;
	}
	return http_call_start(c);
}

int
http_call_add(struct http_call *c)
{
	if (permit_ops != NULL && !c->permitted) {
		c->permit_wait = true;
		permit_ops->ask(c, c->method, c->url, permit_arg);
		return 0;
	}
	return call_go(c);
}

/* Answer a call that a budget or its credential refused, on the next loop turn. */
static void
call_refused(struct http_call *c, const char *why)
{
	c->refused = true;
	snprintf(c->errbuf, sizeof c->errbuf, "%s", why);
	free(c->refusal);
	c->refusal = xstrdup(why);	/* errbuf holds 255 bytes: a reason is longer */
	http_call_not_started(c);
}

void
http_permit_done(struct http_call *c, int64_t refused_until_ms, const char *why)
{
	c->permit_wait = false;
	if (refused_until_ms != 0) {
		c->refused_until_ms = refused_until_ms;
		call_refused(c, why);
		return;
	}
	c->permitted = true;
	if (call_go(c) == -1)
		http_call_not_started(c);
}

void
http_auth_done(struct http_call *c, const char *token, const char *why)
{
	c->auth_wait = false;
	if (token == NULL) {
		call_refused(c, why);
		return;
	}
	if (c->auth_token != NULL)
		explicit_bzero(c->auth_token, strlen(c->auth_token));
	free(c->auth_token);
	c->auth_token = xstrdup(token);
	if (curl_easy_setopt(c->easy, CURLOPT_XOAUTH2_BEARER, c->auth_token) != CURLE_OK ||
	    curl_easy_setopt(c->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER) != CURLE_OK) {
		call_refused(c, "libcurl cannot send a bearer token");
		return;
	}
	if (http_call_start(c) == -1)
		http_call_not_started(c);
}

void
http_call_auth_rejected(struct http_call *c)
{
	if (auth_ops != NULL && c->auth != NULL && c->auth_token != NULL)
		auth_ops->rejected(c->auth, c->auth_token, auth_arg);
}

/* A permitted transfer ended (info), or a call that holds or awaits a permit is freed. */
static void
permit_ended(struct http_call *c, const struct http_limit_info *info)
{
	if (!c->permitted && !c->permit_wait)
		return;
	c->permitted = c->permit_wait = false;
	if (permit_ops != NULL)
		permit_ops->ended(c, info, permit_arg);
}

static void
transfer_ended(struct http_call *c)
{
	struct http_limit_info li = { 0, c->retry_after_ms, c->rl_remaining, c->rl_reset_ms };

	if (!c->permitted)
		return;
	if (c->result == CURLE_OK)
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &li.status);
	permit_ended(c, &li);
}

static void
call_freed(struct http_call *c)
{
	permit_ended(c, NULL);
	if (c->auth_wait && auth_ops != NULL)
		auth_ops->cancel(c, auth_arg);
	c->auth_wait = false;
}
