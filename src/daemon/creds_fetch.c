/*
 * creds_fetch.c - getting a credential's token (doc/design.md §7.7): from the state store
 * (shared, sealed) or the token endpoint, with the lease that makes a refresh single
 * flight across instances; adopting it, and answering the requests that wait for it.
 */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/creds_fetch.h"
#include "daemon/creds_wire.h"
#include "core/aead.h"
#include "core/log.h"
#include "core/secrets.h"
#include "core/util.h"
#include "io/http_permit.h"
#include "io/http_req.h"
#include "store/state.h"
#include "store/state_cred.h"

void
creds_wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

uint64_t
creds_token_hash(const char *t)
{
	return XXH3_64bits(t, strlen(t)) | 1;	/* only to recognise a token */
}


/* "schema/credential/field": a sealed value opens only where it was sealed for. */
static char *
seal_ad(const struct cred *cr, const char *field)
{
	return xasprintf("%s/%s/%s", cr->e->schema, cr->conf.name, field);
}

void
creds_answer_all(struct cred *cr, const char *token, const char *why)
{
	struct waiter *w;

	while ((w = cr->head) != NULL) {
		cr->head = w->next;
		if (cr->head == NULL)
			cr->tail = NULL;
		http_auth_done(w->call, token, why);
		free(w);
	}
}

static void
fail_all(struct cred *cr, const char *fmt, ...) PRINTF(2, 3);

/* The fetch failed: every waiting request fails with why; the next try waits. */
static void
fail_all(struct cred *cr, const char *fmt, ...)
{
	va_list ap;
	uint64_t delay;
	char *msg, *why, *pre;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	/* every request's error names the credential, once */
	pre = xasprintf("credential %s ", cr->conf.name);
	why = strncmp(msg, pre, strlen(pre)) == 0 ? xstrdup(msg) :
	    xasprintf("credential %s: %s", cr->conf.name, msg);
	free(pre);
	cr->busy = false;
	free(cr->last_error);
	cr->last_error = NULL;
	if (cr->needs_reauth == NULL) {
		cr->failures++;
		delay = 1000ULL << (cr->failures < 6 ? cr->failures - 1 : 5);
		if (delay > CRED_RETRY_MAX_MS)
			delay = CRED_RETRY_MAX_MS;
		cr->next_try = now_mono_ms() + delay;
		cr->last_error = xstrdup(msg);
	}
	log_warnx("%s", why);
	creds_answer_all(cr, NULL, why);
	free(msg);
	free(why);
}

static void
mark_reauth(struct cred *cr, const char *why)
{
	free(cr->needs_reauth);
	if (cr->conf.type == CRED_REFRESH_TOKEN)
		cr->needs_reauth = xasprintf("credential %s needs re-authorization (%s): give it "
		    "a new refresh token with 'onesyncctl credentials set-refresh-token %s'",
		    cr->conf.name, why, cr->conf.name);
	else
		cr->needs_reauth = xasprintf("credential %s needs re-authorization (%s): check "
		    "its client_id and client_secret, then reload", cr->conf.name, why);
	creds_wipe_free(cr->token);
	cr->token = NULL;
	fail_all(cr, "%s", cr->needs_reauth);
}

/*
 * Use token (life_ms left from now) from now on: its refresh at 75 % of that, never
 * later than 60 s before its end when it lives 4 minutes or more, less a random 5 %.
 */
static void
adopt(struct cred *cr, const char *token, int64_t life_ms, int64_t generation)
{
	uint64_t now = now_mono_ms(), at;

	if (life_ms < 1)
		life_ms = 1;
	secrets_add(token);
	creds_wipe_free(cr->token);
	cr->token = xstrdup(token);
	cr->generation = generation;
	cr->expires = now + (uint64_t)life_ms;
	cr->safety = (uint64_t)life_ms / 10 < 1000 ? (uint64_t)life_ms / 10 : 1000;
	at = (uint64_t)life_ms * 3 / 4;
	if (life_ms >= 240000 && at > (uint64_t)life_ms - 60000)
		at = (uint64_t)life_ms - 60000;
	at -= rand64() % (at / 20 + 1);
	cr->refresh_at = now + at;
	cr->busy = false;
	cr->failures = 0;
	free(cr->last_error);
	cr->last_error = NULL;
	creds_answer_all(cr, cr->token, NULL);
}

bool
creds_usable(const struct cred *cr)
{
	return cr->token != NULL && now_mono_ms() + cr->safety < cr->expires;
}

/* The row's access token, opened, when it is one to take: not the one refused, with more
 * than a tenth of a second left. NULL otherwise; *life_ms its time left. */
static char *
row_token(struct cred *cr, json_t *row, int64_t *life_ms)
{
	const char *sealed = json_string_value(json_object_get(row, "access_sealed"));
	json_t *exp = json_object_get(row, "access_expires_ms");
	const char *why = NULL;
	char *ad, *t;
	size_t len;

	if (sealed == NULL || !json_is_integer(exp))
		return NULL;
	*life_ms = json_integer_value(exp) - now_wall_ms();
	if (*life_ms <= 100)
		return NULL;
	ad = seal_ad(cr, "access");
	t = aead_open(cr->e->key, ad, sealed, &len, &why);
	free(ad);
	if (t == NULL) {
		log_warnx("credential %s: the stored access token cannot be opened (%s): a new "
		    "one is asked for", cr->conf.name, why != NULL ? why : "?");
		return NULL;
	}
	if (cr->rejected != 0 && creds_token_hash(t) == cr->rejected) {
		creds_wipe_free(t);
		return NULL;
	}
	return t;
}

/* Take the row's token if it is one; true when taken. */
static bool
take_row(struct cred *cr, json_t *row)
{
	int64_t life;
	char *t = row_token(cr, row, &life);

	if (t == NULL)
		return false;
	adopt(cr, t, life, json_integer_value(json_object_get(row, "generation")));
	creds_wipe_free(t);
	return true;
}

static void stored(void *, int, json_t *, const char *);

/* The refresh's lease ends without a new token (fail: why for the store, or NULL). */
static void
lease_end(struct cred *cr, const char *reauth)
{
	if (cr->e->shared && cr->fence >= 0)
		state_cred_fail(cr->e->state, cr->conf.name, cr->e->instance, cr->fence, reauth,
		    NULL, NULL);
	cr->fence = -1;
}

/* The token endpoint answered. */
static void
token_answered(struct http_response *resp, void *arg)
{
	struct cred *cr = arg;
	const char *code, *at, *rt;
	json_t *j = NULL, *ei;
	int64_t life_s = 3600;

	if (cr->e->closing)
		return;
	if ((code = creds_grant_refused(resp)) != NULL) {
		char *why = xasprintf("the token endpoint answered %s", code);

		lease_end(cr, cr->conf.type == CRED_REFRESH_TOKEN ? why : NULL);
		mark_reauth(cr, why);
		free(why);
		return;
	}
	if (resp->status < 200 || resp->status > 299 ||
	    (j = json_loadb(resp->body, resp->len, 0, NULL)) == NULL) {
		lease_end(cr, NULL);
		if (resp->status == 0)
			fail_all(cr, "token request failed: %s", resp->error);
		else
			fail_all(cr, "token request answered HTTP %ld%s", resp->status,
			    resp->status < 300 ? " with a body that is not JSON" : "");
		json_decref(j);
		return;
	}
	at = json_string_value(json_object_get(j, "access_token"));
	rt = json_string_value(json_object_get(j, "refresh_token"));
	ei = json_object_get(j, "expires_in");
	if (json_is_integer(ei))
		life_s = json_integer_value(ei);
	else if (json_is_string(ei))
		life_s = strtoll(json_string_value(ei), NULL, 10);
	if (!creds_token_ok(at) || (rt != NULL && !creds_token_ok(rt)) || life_s < 1) {
		lease_end(cr, NULL);
		fail_all(cr, "the token endpoint's answer has no usable access_token, "
		    "refresh_token or expires_in");
		json_decref(j);
		return;
	}
	if (life_s > CRED_LIFE_MAX_S)
		life_s = CRED_LIFE_MAX_S;
	secrets_add(at);
	if (rt != NULL)
		secrets_add(rt);
	if (cr->e->shared) {
		char *ad = seal_ad(cr, "access"), *rad = seal_ad(cr, "refresh");
		char *as = aead_seal(cr->e->key, ad, at, strlen(at));
		char *rs = rt != NULL ? aead_seal(cr->e->key, rad, rt, strlen(rt)) : NULL;

		free(ad);
		free(rad);
		/* kept until the store answers: adopted then (the old one serves meanwhile) */
		creds_wipe_free(cr->pending);
		cr->pending = xstrdup(at);
		cr->pending_life = life_s * 1000;
		state_cred_store(cr->e->state, cr->conf.name, cr->e->instance, cr->fence, as,
		    now_wall_ms() + life_s * 1000, rs, stored, cr);
		cr->fence = -1;
		free(as);
		free(rs);
	} else
		adopt(cr, at, life_s * 1000, -1);
	json_decref(j);
}

/* The store kept the new token (or a newer one came first: it is read again). */
static void
stored(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	char *t;
	int64_t life = cr->pending_life;

	if (cr->e->closing)
		return;
	t = cr->pending;
	cr->pending = NULL;
	if (t == NULL) {
		cr->busy = false;
		return;
	}
	if (rc != STATE_OK || !json_is_true(json_object_get(res, "stored")))
		log_warnx("credential %s: the new token was not stored (%s); this instance "
		    "uses it", cr->conf.name, rc != STATE_OK ? err : json_string_value(
		    json_object_get(res, "why")) != NULL ? json_string_value(json_object_get(res,
		    "why")) : "refused");
	adopt(cr, t, life, json_integer_value(json_object_get(res, "generation")));
	creds_wipe_free(t);
}

/* Ask the token endpoint, with the refresh token given (refresh grant) or none. */
static void
request_token(struct cred *cr, const char *refresh)
{
	const struct cred_conf *c = &cr->conf;
	const char *hdrs[4] = { "Content-Type: application/x-www-form-urlencoded",
	    "Accept: application/json", NULL, NULL };
	struct http_request rq = { 0 };
	char *basic = NULL;
	struct buf body;

	buf_init(&body);
	if (c->type == CRED_REFRESH_TOKEN) {
		creds_form_add(&body, "grant_type", "refresh_token");
		creds_form_add(&body, "refresh_token", refresh);
	} else
		creds_form_add(&body, "grant_type", "client_credentials");
	creds_form_add(&body, "scope", c->scope);
	creds_form_add(&body, "audience", c->audience);
	if (c->basic_auth)
		hdrs[2] = basic = creds_basic_header(c);
	else {
		creds_form_add(&body, "client_id", c->client_id);
		creds_form_add(&body, "client_secret", c->client_secret);
	}
	rq.method = "POST";
	rq.url = c->token_url;
	rq.headers = hdrs;
	rq.body = body.data;
	rq.body_len = body.len;
	rq.timeout_ms = c->http.timeout_ms;
	rq.max_bytes = 1 << 20;
	rq.tls_verify = c->http.tls_verify;
	rq.ca_file = c->http.ca_file;
	rq.retries = c->http.retries;
	rq.priority = true;
	cr->requests++;
	http_send(&rq, token_answered, cr);
	OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	creds_wipe_free(basic);
}

/* This instance may refresh (it holds the lease, or tokens are not shared): with the
 * stored refresh token if there is one, else the configured one. */
static void
refresh_now(struct cred *cr, json_t *row)
{
	const char *sealed = json_string_value(json_object_get(row, "refresh_sealed"));
	const char *why = NULL;
	char *ad, *rt = NULL;
	size_t len;

	if (cr->conf.type != CRED_REFRESH_TOKEN || sealed == NULL) {
		request_token(cr, cr->conf.refresh_token);
		return;
	}
	ad = seal_ad(cr, "refresh");
	rt = aead_open(cr->e->key, ad, sealed, &len, &why);
	free(ad);
	if (rt == NULL) {
		lease_end(cr, NULL);
		mark_reauth(cr, "the stored refresh token cannot be opened with "
		    "state.encryption_key: was the key changed?");
		return;
	}
	request_token(cr, rt);
	creds_wipe_free(rt);
}

static void
arm(struct cred *cr, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(cr->timer, &tv);
}

/* The refresh lease: longer than the token request with all its retries may take (else
 * another instance could refresh with the same refresh token meanwhile). */
static int64_t
lease_ms(const struct cred *cr)
{
	int64_t t = cr->conf.http.timeout_ms > 0 ? cr->conf.http.timeout_ms : 30000;
	int64_t ms = t * (cr->conf.http.retries + 1) + CRED_LEASE_MS;

	return ms < 3600000 ? ms : 3600000;
}

/* state_cred_begin answered: refresh, wait for the instance that does, or stop. */
static void
begun(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	const char *why;
	int64_t wait;

	if (cr->e->closing)
		return;
	if (rc != STATE_OK) {
		fail_all(cr, "the state database does not answer: %s", err);
		return;
	}
	if ((why = json_string_value(json_object_get(res, "needs_reauth"))) != NULL) {
		mark_reauth(cr, why);
		return;
	}
	if (json_is_true(json_object_get(res, "busy"))) {
		wait = json_integer_value(json_object_get(res, "wait_ms"));
		arm(cr, wait < CRED_BUSY_MIN_MS ? CRED_BUSY_MIN_MS : wait > CRED_BUSY_MAX_MS ?
		    CRED_BUSY_MAX_MS : wait);
		return;
	}
	cr->fence = json_integer_value(json_object_get(res, "token"));
	/* Another instance stored a token since this one read the row: take it. */
	if (json_integer_value(json_object_get(res, "generation")) != cr->generation &&
	    take_row(cr, res)) {
		lease_end(cr, NULL);
		return;
	}
	refresh_now(cr, res);
}

/* state_cred_get answered: take the stored token, or begin a refresh. */
static void
got(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	const char *why;

	if (cr->e->closing)
		return;
	if (rc != STATE_OK) {
		fail_all(cr, "the state database does not answer: %s", err);
		return;
	}
	if ((why = json_string_value(json_object_get(res, "needs_reauth"))) != NULL) {
		mark_reauth(cr, why);
		return;
	}
	if (json_integer_value(json_object_get(res, "generation")) != cr->generation &&
	    take_row(cr, res))
		return;
	state_cred_begin(cr->e->state, cr->conf.name, cr->e->instance, lease_ms(cr), begun, cr);
}

/* Get a token: from the store (shared), or the endpoint. cr->busy until it ends. */
void
creds_fetch(struct cred *cr)
{
	cr->busy = true;
	if (cr->e->shared)
		state_cred_get(cr->e->state, cr->conf.name, got, cr);
	else
		request_token(cr, cr->conf.refresh_token);
}

void
creds_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cred *cr = arg;

	(void)fd; (void)what;
	if (!cr->e->closing)
		state_cred_get(cr->e->state, cr->conf.name, got, cr);
}

