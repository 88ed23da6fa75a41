/*
 * creds.c - OAuth2 credentials at run time (doc/design.md §7.7). A request that names a
 * credential asks for its bearer token before each attempt (io/http.h's credential hook).
 * The token is used while it has more than a safety margin left (a tenth of its life, at
 * most 1 s); from 75 % of its life (never later than 60 s before its end when it lives
 * long enough, less a random 5 %) a refresh runs in the background, and requests keep
 * the old one meanwhile. With state.encryption_key the token lives in the state store,
 * sealed, and a refresh is single flight across instances: state_cred_begin gives one
 * instance a lease; the others read the row again when it ends and take the token it
 * stored. Without a key each instance keeps its own. A 401 to a token makes it stale here
 * (if it is still the current one), and the request is tried once more; new tokens refused
 * one after another back off. invalid_grant, invalid_client or unauthorized_client from the
 * token endpoint marks the credential "needs re-authorization": its requests fail at once
 * with that message, and the endpoint is not asked again until an operator gives a new
 * refresh token (onesyncctl credentials set-refresh-token, or a new refresh_token in the
 * configuration) or, for client credentials, a reload or a restart. Token requests pass the
 * budgets (priority: no concurrency slot). A request waits for a token until a deadline. A
 * reload that replaces a credential lets its refresh end first (creds_fetch.c, creds_keep.c
 * have the rest). No token is logged: the redaction registry holds the ones in use.
 */
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/creds.h"
#include "daemon/creds_fetch.h"
#include "daemon/creds_int.h"
#include "daemon/creds_keep.h"
#include "config/cred.h"
#include "core/aead.h"
#include "core/log.h"
#include "core/secrets.h"
#include "core/util.h"
#include "io/http.h"
#include "io/http_permit.h"
#include "io/http_req.h"
#include "run/metrics.h"
#include "store/state.h"
#include "store/state_cred.h"

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
conf_copy(struct cred_conf *d, const struct cred_conf *s)
{
	*d = *s;
	d->name = xstrdup(s->name);
	d->token_url = xstrdup(s->token_url);
	d->client_id = xstrdup(s->client_id);
	d->client_secret = dup_or_null(s->client_secret);
	d->scope = dup_or_null(s->scope);
	d->audience = dup_or_null(s->audience);
	d->refresh_token = dup_or_null(s->refresh_token);
	d->http.ca_file = dup_or_null(s->http.ca_file);
}

static void
conf_free(struct cred_conf *c)
{
	free(c->name);
	free(c->token_url);
	creds_wipe_free(c->client_id);
	creds_wipe_free(c->client_secret);
	free(c->scope);
	free(c->audience);
	creds_wipe_free(c->refresh_token);
	free(c->http.ca_file);
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* What makes the tokens of a credential: another one is another credential. */
static bool
conf_same(const struct cred_conf *a, const struct cred_conf *b)
{
	return a->type == b->type && a->basic_auth == b->basic_auth &&
	    same_str(a->token_url, b->token_url) && same_str(a->client_id, b->client_id) &&
	    same_str(a->client_secret, b->client_secret) && same_str(a->scope, b->scope) &&
	    same_str(a->audience, b->audience) && same_str(a->refresh_token, b->refresh_token);
}

static void cred_free(struct cred *);

/* Free the credentials a reload replaced once nothing of theirs is under way. */
static void
reap(struct creds *e)
{
	struct cred **pp = &e->list, *cr;

	while ((cr = *pp) != NULL)
		if (cr->gone && !cr->busy && cr->head == NULL && cr->calls == 0 &&
		    cr->unstored_access == NULL) {
			*pp = cr->next;
			cred_free(cr);
		} else
			pp = &cr->next;
}

/* Begin a fetch, after the one of a reload's old credential of that name if it runs:
 * two would spend the same refresh token. */
static void
start(struct cred *cr)
{
	for (struct cred *o = cr->e->list; o != NULL; o = o->next)
		if (o->gone && o->busy && strcmp(o->conf.name, cr->conf.name) == 0) {
			cr->busy = true;
			cr->after_gone = true;
			return;
		}
	creds_fetch(cr);
}

static struct cred *
find(struct creds *e, const char *name)
{
	for (struct cred *cr = e->list; cr != NULL; cr = cr->next)
		if (!cr->gone && strcmp(cr->conf.name, name) == 0)
			return cr;
	return NULL;
}

/* How long a request waits for its credential's token: as long as a token request may
 * take with its retries (here or at the instance that refreshes), and 10 s. */
static int64_t
wait_max_ms(const struct cred *cr)
{
	int64_t t = cr->conf.http.timeout_ms > 0 ? cr->conf.http.timeout_ms : 30000;

	return t * (cr->conf.http.retries + 1) + 10000;
}

/* A timer at the earliest deadline of the waiters. */
static void
arm_wait(struct cred *cr)
{
	uint64_t now = now_mono_ms(), first = UINT64_MAX, ms;
	struct timeval tv;

	for (struct waiter *w = cr->head; w != NULL; w = w->next)
		if (w->deadline < first)
			first = w->deadline;
	evtimer_del(cr->wait_timer);
	if (first == UINT64_MAX)
		return;
	ms = first > now ? first - now : 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(cr->wait_timer, &tv);
}

/* Every waiter past its deadline fails: no request waits for a token without end. The
 * expired ones leave the list before any is answered. */
static void
wait_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cred *cr = arg;
	uint64_t now = now_mono_ms();
	struct waiter **pp = &cr->head, *w, *prev = NULL, *expired = NULL;
	char *why;

	(void)fd; (void)what;
	while ((w = *pp) != NULL) {
		if (w->deadline > now) {
			prev = w;
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (cr->tail == w)
			cr->tail = prev;
		w->next = expired;
		expired = w;
	}
	why = xasprintf("credential %s: no token after %lld s (its token request, another "
	    "instance's refresh or the state database is that slow)", cr->conf.name,
	    (long long)(wait_max_ms(cr) / 1000));
	while ((w = expired) != NULL) {
		expired = w->next;
		http_auth_done(w->call, NULL, why);
		free(w);
	}
	free(why);
	arm_wait(cr);
}

static void
ask_token(struct http_call *c, const char *name, void *arg)
{
	struct creds *e = arg;
	struct cred *cr;
	struct waiter *w;
	char *why;

	if (!e->closing)
		reap(e);
	cr = find(e, name);
	if (cr == NULL || e->closing) {
		why = xasprintf("credential %s is not configured (a reload removed it)", name);
		http_auth_done(c, NULL, why);
		free(why);
		return;
	}
	if (cr->needs_reauth != NULL) {
		/* An operator may have given a new refresh token: the stored mark is read
		 * again every 5 s (a read, never a token request while it stays). */
		if (!cr->e->shared || cr->conf.type != CRED_REFRESH_TOKEN || cr->busy ||
		    now_mono_ms() < cr->reauth_recheck) {
			http_auth_done(c, NULL, cr->needs_reauth);
			return;
		}
		free(cr->needs_reauth);
		cr->needs_reauth = NULL;
	}
	if (creds_usable(cr)) {
		if (now_mono_ms() >= cr->refresh_at && now_mono_ms() >= cr->next_try &&
		    !cr->busy)
			start(cr);	/* in the background: the token serves meanwhile */
		http_auth_done(c, cr->token, NULL);
		return;
	}
	if (!cr->busy && cr->last_error != NULL && now_mono_ms() < cr->next_try) {
		why = xasprintf("credential %s: %s (tried again in a moment)", name,
		    cr->last_error);
		http_auth_done(c, NULL, why);
		free(why);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->call = c;
	w->deadline = now_mono_ms() + (uint64_t)wait_max_ms(cr);
	if (cr->tail != NULL)
		cr->tail->next = w;
	else
		cr->head = w;
	cr->tail = w;
	if (!evtimer_pending(cr->wait_timer, NULL))
		arm_wait(cr);
	if (!cr->busy)
		start(cr);
}

/*
 * A 401 refused token: it is dropped (if it is still the current one) and the request
 * tried once more with a new one. When the API refuses new tokens one after another, it
 * refuses the credential, not its token: the endpoint is asked again only after a delay
 * that doubles (1 s to 60 s), and requests fail meanwhile with why.
 */
static void
token_rejected(const char *name, const char *token, void *arg)
{
	struct cred *cr = find(arg, name);
	uint64_t now = now_mono_ms(), delay;

	if (cr == NULL || cr->token == NULL || strcmp(cr->token, token) != 0)
		return;		/* already replaced: the retry takes the new one */
	cr->refusals = now - cr->adopted_at < CRED_FRESH_MS ? cr->refusals + 1 : 0;
	cr->rejected = creds_token_hash(token);
	creds_drop_token(cr);
	if (cr->refusals < 2) {
		log_info("credential %s: a 401 refused its token: it is replaced", name);
		return;
	}
	delay = 1000ULL << (cr->refusals - 2 < 6 ? cr->refusals - 2 : 6);
	if (delay > CRED_RETRY_MAX_MS)
		delay = CRED_RETRY_MAX_MS;
	cr->next_try = now + delay;
	free(cr->last_error);
	cr->last_error = xasprintf("the API refused %d new tokens in a row (HTTP 401): is the "
	    "credential allowed there? Its token endpoint is asked again in %llu s",
	    cr->refusals, (unsigned long long)(delay / 1000));
	log_warnx("credential %s: %s", name, cr->last_error);
}

static void
cancel_wait(struct http_call *c, void *arg)
{
	struct creds *e = arg;

	for (struct cred *cr = e->list; cr != NULL; cr = cr->next) {
		struct waiter **pp, *prev = NULL;

		for (pp = &cr->head; *pp != NULL; prev = *pp, pp = &(*pp)->next)
			if ((*pp)->call == c) {
				struct waiter *w = *pp;

				*pp = w->next;
				if (cr->tail == w)
					cr->tail = prev;
				free(w);
				return;
			}
	}
}

static const struct http_auth_ops auth_ops = { ask_token, token_rejected, cancel_wait };

/* The MACs that say whose tokens a row holds (shared tokens only). */
static void
set_macs(struct cred *cr)
{
	if (!cr->e->shared)
		return;
	config_cred_origin(&cr->conf, cr->e->key, cr->origin);
	config_cred_seed(cr->e->key, cr->conf.refresh_token, cr->seed);
	memcpy(cr->mark_id, cr->origin, CRED_ORIGIN_HEX / 2);
	memcpy(cr->mark_id + CRED_ORIGIN_HEX / 2, cr->seed, AEAD_MAC_HEX + 1);
}

static struct cred *
cred_new(struct creds *e, const struct cred_conf *cc)
{
	struct cred *cr = xcalloc(1, sizeof *cr);

	cr->e = e;
	conf_copy(&cr->conf, cc);
	set_macs(cr);
	cr->generation = -1;
	cr->fence = -1;
	cr->timer = evtimer_new(e->base, creds_timer_cb, cr);
	cr->lease_timer = evtimer_new(e->base, creds_lease_cb, cr);
	cr->store_timer = evtimer_new(e->base, creds_store_timer_cb, cr);
	cr->wait_timer = evtimer_new(e->base, wait_timer_cb, cr);
	return cr;
}

static void
cred_free(struct cred *cr)
{
	creds_answer_all(cr, NULL, "onesyncd is stopping");
	creds_keep_abandon(cr);
	event_free(cr->timer);
	event_free(cr->lease_timer);
	event_free(cr->store_timer);
	event_free(cr->wait_timer);
	creds_forget_all(cr);
	creds_wipe_free(cr->used_refresh);
	conf_free(&cr->conf);
	free(cr->needs_reauth);
	free(cr->last_error);
	free(cr);
}

static void
set_key(struct creds *e, const struct config *cfg)
{
	e->shared = cfg->state.has_key;
	memcpy(e->key, cfg->state.key, sizeof e->key);
	if (e->shared)
		aead_key_check(e->key, e->key_check);
	free(e->schema);
	e->schema = xstrdup(cfg->state.schema);
	for (struct cred *cr = e->list; cr != NULL; cr = cr->next)
		set_macs(cr);
}

struct creds *
creds_new(struct event_base *base, struct state *st, const char *instance,
    const struct config *cfg)
{
	struct creds *e;

	if (cfg->ncreds == 0)
		return NULL;
	e = xcalloc(1, sizeof *e);
	e->base = base;
	e->state = st;
	e->fetch = creds_fetch;
	e->instance = xstrdup(instance);
	set_key(e, cfg);
	for (size_t i = cfg->ncreds; i > 0; i--) {
		struct cred *cr = cred_new(e, &cfg->creds[i - 1]);

		cr->next = e->list;
		e->list = cr;
	}
	http_set_auth(&auth_ops, e);
	return e;
}

struct creds *
creds_reload(struct creds *e, struct event_base *base, struct state *st,
    const char *instance, const struct config *cfg)
{
	struct cred *cr;

	if (e == NULL)
		return creds_new(base, st, instance, cfg);
	set_key(e, cfg);
	for (cr = e->list; cr != NULL; cr = cr->next) {
		bool kept = false;

		for (size_t i = 0; i < cfg->ncreds && !kept; i++)
			kept = strcmp(cfg->creds[i].name, cr->conf.name) == 0 &&
			    conf_same(&cr->conf, &cfg->creds[i]);
		if (!kept && !cr->gone) {
			cr->gone = true;	/* its requests in flight still get an answer */
			if (cr->after_gone) {	/* it had not begun: its successor waits */
				cr->after_gone = false;
				cr->busy = false;
			}
		}
	}
	for (size_t i = 0; i < cfg->ncreds; i++)
		if (find(e, cfg->creds[i].name) == NULL) {
			cr = cred_new(e, &cfg->creds[i]);
			cr->next = e->list;
			e->list = cr;
		}
	/* the requests waiting at a replaced credential that fetches nothing wait at its
	 * successor; those of a removed one fail */
	for (cr = e->list; cr != NULL; cr = cr->next) {
		struct cred *n;

		if (!cr->gone || cr->busy || cr->head == NULL)
			continue;
		if ((n = find(e, cr->conf.name)) == NULL) {
			creds_answer_all(cr, NULL, "its credential was removed by a reload");
			continue;
		}
		if (n->tail != NULL)
			n->tail->next = cr->head;
		else
			n->head = cr->head;
		n->tail = cr->tail;
		cr->head = cr->tail = NULL;
		evtimer_del(cr->wait_timer);
		arm_wait(n);
		if (!n->busy)
			start(n);
	}
	reap(e);
	return e;
}

bool
creds_stop(struct creds *e, void (*done)(void *), void *arg)
{
	bool waiting = false;

	if (e == NULL)
		return false;
	for (struct cred *cr = e->list; cr != NULL; cr = cr->next)
		if (creds_keep_flush(cr))
			waiting = true;
	if (waiting) {
		e->stop_done = done;
		e->stop_arg = arg;
	}
	return waiting;
}

void
creds_close(struct creds *e)
{
	if (e == NULL)
		return;
	e->closing = true;
	for (struct cred *cr = e->list; cr != NULL; cr = cr->next) {
		evtimer_del(cr->timer);
		evtimer_del(cr->lease_timer);
		evtimer_del(cr->wait_timer);
		creds_keep_abandon(cr);
	}
}

void
creds_free(struct creds *e)
{
	struct cred *cr;

	if (e == NULL)
		return;
	http_set_auth(NULL, NULL);
	while ((cr = e->list) != NULL) {
		e->list = cr->next;
		cred_free(cr);
	}
	OPENSSL_cleanse(e->key, sizeof e->key);
	free(e->instance);
	free(e->schema);
	free(e);
}

void
creds_render(const struct creds *e, struct buf *out)
{
	const struct cred *cr;

	if (e == NULL)
		return;
	metrics_header(out, "onesync_credential_token_requests_total", "counter", "Requests this "
	    "instance sent to the credential's token endpoint.");
	for (cr = e->list; cr != NULL; cr = cr->next)
		if (!cr->gone)
			metrics_labelled(out, "onesync_credential_token_requests_total", "",
			    "credential", cr->conf.name, "%lld", cr->requests);
	metrics_header(out, "onesync_credential_needs_reauth", "gauge", "1 when the credential "
	    "needs re-authorization (its token endpoint refused the grant or the client).");
	for (cr = e->list; cr != NULL; cr = cr->next)
		if (!cr->gone)
			metrics_labelled(out, "onesync_credential_needs_reauth", "",
			    "credential", cr->conf.name, "%d", cr->needs_reauth != NULL);
}
