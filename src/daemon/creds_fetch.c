/*
 * creds_fetch.c - getting a credential's token (doc/design.md §7.7): from the state store
 * (shared, sealed) or the token endpoint, with the lease that makes a refresh single
 * flight across instances; using it, and answering the requests that wait for it.
 * Keeping a new token in the store is creds_keep.c's.
 */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/creds_fetch.h"
#include "daemon/creds_keep.h"
#include "daemon/creds_wire.h"
#include "core/aead.h"
#include "core/log.h"
#include "core/util.h"
#include "io/http_permit.h"
#include "io/http_req.h"
#include "store/state.h"
#include "store/state_cred.h"

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
	creds_idle(cr);
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
	cr->reauth_recheck = now_mono_ms() + 5000;
	creds_drop_token(cr);
	fail_all(cr, "%s", cr->needs_reauth);
}

/* Whether the row's origin (first n hex digits) is this configuration's; a row that
 * schema 4 wrote has none, and its tokens are taken as this configuration's (they were
 * sealed with the same associated data; what made them is not known). */
static bool
ours(const struct cred *cr, json_t *row, size_t n)
{
	const char *v = json_string_value(json_object_get(row, "origin"));

	return v == NULL || (strlen(v) >= n && strncmp(v, cr->origin, n) == 0);
}

/* Whether the row's mark of re-authorization was made for this configuration's client and
 * configured refresh token (or before schema 5, for any). */
static bool
marked_ours(const struct cred *cr, json_t *row)
{
	const char *v = json_string_value(json_object_get(row, "mark_origin"));

	return v == NULL || strcmp(v, cr->mark_id) == 0;
}

static bool
row_is(json_t *row, const char *field, const char *mine, size_t n)
{
	const char *v = json_string_value(json_object_get(row, field));

	return v != NULL && strncmp(v, mine, n) == 0 && strlen(v) >= n;
}

/* The row's tokens were sealed with another state.encryption_key. */
static bool
other_key(const struct cred *cr, json_t *row)
{
	return json_object_get(row, "key_check") != NULL &&
	    !json_is_null(json_object_get(row, "key_check")) &&
	    !row_is(row, "key_check", cr->e->key_check, AEAD_MAC_HEX);
}

/* The row's access token, opened, when it is one to take: this configuration's (client,
 * scope), not the one refused, with more than a tenth of a second left. NULL otherwise;
 * *life_ms its time left. */
static char *
row_token(struct cred *cr, json_t *row, int64_t *life_ms)
{
	const char *sealed = json_string_value(json_object_get(row, "access_sealed"));
	json_t *exp = json_object_get(row, "access_expires_ms");
	const char *why = NULL;
	char *ad, *t;
	size_t len;

	if (sealed == NULL || !json_is_integer(exp) || other_key(cr, row) ||
	    !ours(cr, row, CRED_ORIGIN_HEX))
		return NULL;
	*life_ms = json_integer_value(exp) - now_wall_ms();
	if (*life_ms <= 100)
		return NULL;
	ad = creds_seal_ad(cr, "access");
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
	creds_adopt(cr, t, life, json_integer_value(json_object_get(row, "generation")));
	creds_wipe_free(t);
	return true;
}

/* The refresh's lease ends without a new token (fail: why for the store, or NULL). */
static void
lease_end(struct cred *cr, const char *reauth)
{
	evtimer_del(cr->lease_timer);
	if (cr->e->shared && cr->fence >= 0)
		state_cred_fail(cr->e->state, cr->conf.name, cr->e->instance, cr->fence, reauth,
		    cr->mark_id, NULL, NULL);
	cr->fence = -1;
}

/* The token endpoint answered. */
static void
token_answered(struct http_response *resp, void *arg)
{
	struct cred *cr = arg;
	const char *code, *at, *rt, *why;
	char *used = cr->used_refresh;
	json_t *j = NULL;
	int64_t life_s;

	cr->used_refresh = NULL;
	cr->requesting = false;
	if (cr->e->closing)
		goto out;
	if ((code = creds_grant_refused(resp)) != NULL) {
		char *reason = xasprintf("the token endpoint answered %s", code);

		lease_end(cr, cr->conf.type == CRED_REFRESH_TOKEN && !cr->local ? reason : NULL);
		mark_reauth(cr, reason);
		free(reason);
		goto out;
	}
	if (resp->status < 200 || resp->status > 299 ||
	    (j = json_loadb(resp->body, resp->len, 0, NULL)) == NULL) {
		lease_end(cr, NULL);
		if (resp->status == 0)
			fail_all(cr, "token request failed: %s", resp->error);
		else
			fail_all(cr, "token request answered HTTP %ld%s", resp->status,
			    resp->status < 300 ? " with a body that is not JSON" : "");
		goto out;
	}
	if (!creds_parse_answer(j, &at, &rt, &life_s, &why)) {
		lease_end(cr, NULL);
		fail_all(cr, "the token endpoint's answer has %s", why);
		goto out;
	}
	if (life_s > CRED_LIFE_MAX_S)
		life_s = CRED_LIFE_MAX_S;
	creds_hold_refresh(cr, rt != NULL ? rt : used);
	if (cr->e->shared && !cr->local)
		creds_keep(cr, at, rt != NULL ? rt : used, life_s * 1000);
	else {
		creds_adopt(cr, at, life_s * 1000, -1);
		creds_idle(cr);
	}
out:
	cr->seed_used = false;	/* creds_keep took it */
	json_decref(j);
	creds_wipe_free(used);
	if (!cr->e->closing)
		creds_settled(cr->e);	/* a stop that waited for this answer goes on */
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
		cr->used_refresh = xstrdup(refresh);
		cr->seed_used = refresh == c->refresh_token;
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
	cr->requesting = true;
	if (cr->fence >= 0)
		creds_lease_arm(cr);	/* renewed while the request waits */
	http_send(&rq, token_answered, cr);
	OPENSSL_cleanse(body.data, body.len);
	buf_free(&body);
	creds_wipe_free(basic);
}

/* Whether the configured refresh token was spent already (the row's seeds). */
static bool
seed_spent(const struct cred *cr, json_t *row)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(row, "seeds"), i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), cr->seed) == 0)
			return true;
	return false;
}

static const char *
updated_by(json_t *row)
{
	const char *by = json_string_value(json_object_get(row, "updated_by"));

	return by != NULL ? by : "?";
}

/* This instance may refresh (it holds the lease, or tokens are not shared): with the
 * stored refresh token when it is this configuration's, else the configured one. */
static void
refresh_now(struct cred *cr, json_t *row)
{
	const char *sealed = json_string_value(json_object_get(row, "refresh_sealed"));
	const char *why = NULL;
	char *ad, *rt = NULL;
	size_t len;

	if (cr->conf.type != CRED_REFRESH_TOKEN) {
		request_token(cr, NULL);
		return;
	}
	/* The configured refresh token when it was never given before (a first one, or a
	 * new grant); else the stored chain when it is this client's (or schema 4's). A
	 * spent configured token is never presented again. */
	if (!seed_spent(cr, row) && (sealed == NULL ||
	    json_string_value(json_object_get(row, "origin")) != NULL)) {
		if (sealed != NULL)
			log_info("credential %s: its configured refresh_token is new: it is used "
			    "instead of the stored one", cr->conf.name);
		request_token(cr, cr->conf.refresh_token);
		return;
	}
	if (sealed == NULL || !ours(cr, row, CRED_ORIGIN_HEX / 2)) {
		lease_end(cr, NULL);
		fail_all(cr, "its configured refresh_token was spent already, and %s: give a new "
		    "refresh token ('onesyncctl credentials set-refresh-token %s')",
		    sealed == NULL ? "no refresh token was stored after it" : "the stored one is "
		    "another client's (token_url or client_id changed)", cr->conf.name);
		return;
	}
	ad = creds_seal_ad(cr, "refresh");
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

/* state_cred_begin answered: refresh, wait for the instance that does, or stop. */
static void
begun(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	const char *why;
	int64_t wait;

	cr->calls--;
	if (cr->e->closing)
		return;
	if (rc != STATE_OK) {
		fail_all(cr, "the state database does not answer: %s", err);
		return;
	}
	if (json_is_true(json_object_get(res, "busy"))) {
		wait = json_integer_value(json_object_get(res, "wait_ms"));
		arm(cr, wait < CRED_BUSY_MIN_MS ? CRED_BUSY_MIN_MS : wait > CRED_BUSY_MAX_MS ?
		    CRED_BUSY_MAX_MS : wait);
		return;
	}
	if (!json_is_integer(json_object_get(res, "token"))) {
		why = json_string_value(json_object_get(res, "needs_reauth"));
		mark_reauth(cr, why != NULL ? why : "the state database refused a refresh");
		return;
	}
	cr->fence = json_integer_value(json_object_get(res, "token"));
	/* Another instance stored a token since this one read the row: take it. */
	if (json_integer_value(json_object_get(res, "generation")) != cr->generation &&
	    take_row(cr, res)) {
		lease_end(cr, NULL);
		creds_idle(cr);
		return;
	}
	refresh_now(cr, res);
}

/* The row was sealed with another key: say so once; a refresh token cannot be used, a
 * client's token is asked for by this instance alone. */
static void
key_differs(struct cred *cr, json_t *row)
{
	const char *by = updated_by(row);

	if (!cr->key_warned)
		log_warnx("credential %s: its tokens in the state database were sealed with "
		    "another state.encryption_key (last stored by %s): every onesyncd of one "
		    "state database needs the same key%s", cr->conf.name, by,
		    cr->conf.type == CRED_REFRESH_TOKEN ? "; if the key was changed on purpose, "
		    "give a new refresh token with 'onesyncctl credentials set-refresh-token'" :
		    "; this instance asks for its own tokens and keeps them to itself");
	cr->key_warned = true;
	if (cr->conf.type == CRED_REFRESH_TOKEN) {
		fail_all(cr, "its stored refresh token was sealed with another "
		    "state.encryption_key (last stored by %s)", by);
		return;
	}
	cr->local = true;
	request_token(cr, NULL);
}

/* state_cred_get answered: take the stored token, or begin a refresh. */
static void
got(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	const char *why;

	cr->calls--;
	if (cr->e->closing)
		return;
	if (rc != STATE_OK) {
		fail_all(cr, "the state database does not answer: %s", err);
		return;
	}
	if ((why = json_string_value(json_object_get(res, "needs_reauth"))) != NULL &&
	    marked_ours(cr, res)) {
		mark_reauth(cr, why);
		return;
	}
	if (json_integer_value(json_object_get(res, "generation")) != cr->generation &&
	    take_row(cr, res)) {
		creds_idle(cr);
		return;
	}
	if (other_key(cr, res) && (json_string_value(json_object_get(res, "refresh_sealed")) !=
	    NULL || json_string_value(json_object_get(res, "access_sealed")) != NULL)) {
		key_differs(cr, res);
		return;
	}
	cr->key_warned = false;
	cr->calls++;
	state_cred_begin(cr->e->state, cr->conf.name, cr->e->instance, creds_lease_ms(cr),
	    cr->mark_id, begun, cr);
}

static void
read_row(struct cred *cr)
{
	cr->calls++;
	state_cred_get(cr->e->state, cr->conf.name, got, cr);
}

/* Get a token: from the store (shared), or the endpoint. cr->busy until it ends. */
void
creds_fetch(struct cred *cr)
{
	cr->busy = true;
	if (cr->e->shared)
		read_row(cr);
	else
		request_token(cr, cr->conf.refresh_token);
}

void
creds_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cred *cr = arg;

	(void)fd; (void)what;
	if (!cr->e->closing)
		read_row(cr);
}
