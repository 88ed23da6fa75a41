/*
 * creds_keep.c - a credential's token in hand (doc/design.md §7.7): used, and the requests
 * that wait for it answered; a new one sealed in the state store for the other instances,
 * and stored again until the store takes it (a rotated refresh token the store lost would
 * be lost for good: the token endpoint already replaced the old one); the refresh lease
 * renewed while its request waits; the redaction registry holding the tokens in use, and
 * only those.
 */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/creds_keep.h"
#include "core/aead.h"
#include "core/log.h"
#include "core/secrets.h"
#include "core/util.h"
#include "io/http_permit.h"
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

char *
creds_seal_ad(const struct cred *cr, const char *field)
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

void
creds_idle(struct cred *cr)
{
	cr->busy = false;
	cr->local = false;
	if (!cr->gone && cr->head != NULL) {
		/* requests that came while a token was being stored, after the one in
		 * hand expired: they get the token, or a fetch for them */
		if (creds_usable(cr))
			creds_answer_all(cr, cr->token, NULL);
		else if (cr->needs_reauth == NULL)
			cr->e->fetch(cr);
		return;
	}
	if (!cr->gone)
		return;
	/* a reload's new credential of that name waited for this one's refresh */
	for (struct cred *o = cr->e->list; o != NULL; o = o->next)
		if (!o->gone && o->after_gone && strcmp(o->conf.name, cr->conf.name) == 0) {
			o->after_gone = false;
			cr->e->fetch(o);
		}
}

/*
 * Use token (life_ms left from now) from now on: its refresh at 75 % of that, never
 * later than 60 s before its end when it lives 4 minutes or more, less a random 5 %.
 * Every waiting request gets it. The fetch goes on (the caller ends it).
 */
void
creds_adopt(struct cred *cr, const char *token, int64_t life_ms, int64_t generation)
{
	uint64_t now = now_mono_ms(), at;

	if (life_ms < 1)
		life_ms = 1;
	creds_hold_token(cr, token);
	cr->token = xstrdup(token);
	cr->adopted_at = now;
	cr->generation = generation;
	cr->expires = now + (uint64_t)life_ms;
	cr->safety = (uint64_t)life_ms / 10 < 1000 ? (uint64_t)life_ms / 10 : 1000;
	at = (uint64_t)life_ms * 3 / 4;
	if (life_ms >= 240000 && at > (uint64_t)life_ms - 60000)
		at = (uint64_t)life_ms - 60000;
	at -= rand64() % (at / 20 + 1);
	cr->refresh_at = now + at;
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

static void
timer_add_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

void
creds_drop_token(struct cred *cr)
{
	if (cr->token == NULL)
		return;
	if (cr->old_token != NULL) {
		secrets_forget(cr->old_token);
		creds_wipe_free(cr->old_token);
	}
	cr->old_token = cr->token;	/* a log line of a request in flight may carry it */
	cr->token = NULL;
}

void
creds_hold_token(struct cred *cr, const char *token)
{
	creds_drop_token(cr);
	secrets_hold(token);
}

void
creds_hold_refresh(struct cred *cr, const char *refresh)
{
	if (refresh == NULL)
		return;
	secrets_hold(refresh);
	if (cr->refresh_held != NULL) {
		secrets_forget(cr->refresh_held);
		creds_wipe_free(cr->refresh_held);
	}
	cr->refresh_held = xstrdup(refresh);
}

void
creds_forget_all(struct cred *cr)
{
	creds_drop_token(cr);	/* the current one becomes the old one, then goes */
	if (cr->old_token != NULL) {
		secrets_forget(cr->old_token);
		creds_wipe_free(cr->old_token);
		cr->old_token = NULL;
	}
	if (cr->refresh_held != NULL) {
		secrets_forget(cr->refresh_held);
		creds_wipe_free(cr->refresh_held);
		cr->refresh_held = NULL;
	}
}

static void
drop_unstored(struct cred *cr)
{
	free(cr->unstored_access);
	free(cr->unstored_refresh);
	cr->unstored_access = cr->unstored_refresh = NULL;
	cr->store_tries = 0;
	evtimer_del(cr->store_timer);
}

static void store(struct cred *);

void
creds_settled(struct creds *e)
{
	void (*done)(void *) = e->stop_done;

	for (struct cred *cr = e->list; cr != NULL; cr = cr->next)
		if (cr->unstored_access != NULL || cr->requesting)
			return;
	if (done != NULL) {
		e->stop_done = NULL;
		done(e->stop_arg);
	}
}

/* The store answered: kept, refused (a newer token came first), or to be tried again. */
static void
stored(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;
	int64_t ms;

	cr->calls--;
	cr->storing = false;
	if (cr->e->closing)
		return;
	if (rc != STATE_OK) {
		ms = 1000LL << (cr->store_tries < 3 ? cr->store_tries : 3);
		/* said at the 1st, 2nd, 4th, 8th... try: a long outage is not a flood */
		cr->store_tries++;
		if ((cr->store_tries & (cr->store_tries - 1)) == 0)
			log_warnx("credential %s: its new token is not stored yet (%s, try %d): "
			    "stored again in %lld s; meanwhile %s", cr->conf.name, err,
			    cr->store_tries, (long long)(ms / 1000),
			    cr->unstored_refresh != NULL && cr->conf.type == CRED_REFRESH_TOKEN ?
			    "its rotated refresh token is only in this instance's memory" :
			    "the other instances cannot take it");
		timer_add_ms(cr->store_timer, ms);
		return;
	}
	if (!json_is_true(json_object_get(res, "stored")))
		log_warnx("credential %s: its new token was not stored (%s); this instance uses "
		    "it until it expires", cr->conf.name,
		    json_string_value(json_object_get(res, "why")) != NULL ?
		    json_string_value(json_object_get(res, "why")) : "refused");
	else {
		cr->generation = json_integer_value(json_object_get(res, "generation"));
		if (json_is_true(json_object_get(res, "lease_lost")))
			log_warnx("credential %s: its refresh lease ran out before the token "
			    "endpoint answered; the answer is stored (another instance may have "
			    "refreshed with the same refresh token meanwhile)", cr->conf.name);
		else if (cr->store_tries > 0)
			log_info("credential %s: its new token is stored", cr->conf.name);
	}
	drop_unstored(cr);
	evtimer_del(cr->lease_timer);	/* the store ended the lease, or another did */
	creds_idle(cr);
	creds_settled(cr->e);
}

static void
store(struct cred *cr)
{
	cr->storing = true;
	cr->calls++;
	state_cred_store(cr->e->state, cr->conf.name, cr->e->instance, cr->unstored_gen,
	    cr->unstored_access, cr->unstored_expires, cr->unstored_refresh, cr->unstored_kc,
	    cr->unstored_origin, cr->unstored_seed ? cr->seed : NULL, stored, cr);
}

void
creds_store_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cred *cr = arg;

	(void)fd; (void)what;
	if (!cr->e->closing && cr->unstored_access != NULL)
		store(cr);
}

static char *
seal(const struct cred *cr, const char *field, const char *plain)
{
	char *ad = creds_seal_ad(cr, field);
	char *s = aead_seal(cr->e->key, ad, plain, strlen(plain));

	free(ad);
	return s;
}

void
creds_keep(struct cred *cr, const char *access, const char *refresh, int64_t life_ms)
{
	drop_unstored(cr);
	cr->unstored_access = seal(cr, "access", access);
	cr->unstored_refresh = refresh != NULL ? seal(cr, "refresh", refresh) : NULL;
	cr->unstored_expires = now_wall_ms() + life_ms;
	/* a reload may change the key before the store takes them: they stay what they
	 * were sealed with */
	memcpy(cr->unstored_kc, cr->e->key_check, sizeof cr->unstored_kc);
	memcpy(cr->unstored_origin, cr->origin, sizeof cr->unstored_origin);
	cr->unstored_seed = cr->seed_used;	/* the configured token is spent with it */
	cr->unstored_gen = cr->fence;
	cr->fence = -1;		/* the lease is renewed on under unstored_gen */
	/* used at once; the fetch lasts until the store took it */
	creds_adopt(cr, access, life_ms, -1);
	if (cr->unstored_access == NULL || (refresh != NULL && cr->unstored_refresh == NULL)) {
		log_warnx("credential %s: its new token cannot be sealed (no randomness?): it is "
		    "not stored%s", cr->conf.name, refresh != NULL ? ", and its refresh token is "
		    "only in this instance's memory" : "");
		drop_unstored(cr);
		evtimer_del(cr->lease_timer);
		creds_idle(cr);
		creds_settled(cr->e);
		return;
	}
	store(cr);
}

bool
creds_keep_flush(struct cred *cr)
{
	if (cr->requesting)
		return true;	/* its answer may rotate the refresh token: kept then */
	if (cr->unstored_access == NULL)
		return false;
	if (!cr->storing) {
		evtimer_del(cr->store_timer);
		store(cr);
	}
	return true;
}

void
creds_keep_abandon(struct cred *cr)
{
	if (cr->unstored_refresh != NULL && cr->conf.type == CRED_REFRESH_TOKEN)
		log_warnx("credential %s: onesyncd stops before the state database took its "
		    "rotated refresh token: the stored one was already replaced at the token "
		    "endpoint, so the credential may need re-authorization "
		    "(onesyncctl credentials set-refresh-token %s)", cr->conf.name, cr->conf.name);
	drop_unstored(cr);
}

int64_t
creds_lease_ms(const struct cred *cr)
{
	(void)cr;
	return CRED_LEASE_MS;
}

/* The lease this instance holds: the refresh's in flight, or the one whose answer is not
 * stored yet (it is renewed until then: another instance refreshing meanwhile would
 * present the refresh token the answer replaced); -1: none. */
static int64_t
lease_fence(const struct cred *cr)
{
	return cr->fence >= 0 ? cr->fence : cr->unstored_access != NULL ? cr->unstored_gen : -1;
}

/* The lease's renewal answered: renew again a third of a lease later, also after a
 * failure (the next one may pass before the lease runs out). */
static void
renewed(void *arg, int rc, json_t *res, const char *err)
{
	struct cred *cr = arg;

	cr->calls--;
	if (cr->e->closing || lease_fence(cr) < 0)
		return;
	if (rc != STATE_OK) {
		log_warnx("credential %s: its refresh lease cannot be renewed (%s): tried again",
		    cr->conf.name, err);
		creds_lease_arm(cr);
	} else if (!json_is_true(json_object_get(res, "renewed")))
		log_warnx("credential %s: its refresh lease ran out while the token request "
		    "waits (another instance may refresh meanwhile)", cr->conf.name);
	else
		creds_lease_arm(cr);
}

void
creds_lease_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cred *cr = arg;

	(void)fd; (void)what;
	if (cr->e->closing || lease_fence(cr) < 0)
		return;
	cr->calls++;
	state_cred_renew(cr->e->state, cr->conf.name, cr->e->instance, lease_fence(cr),
	    creds_lease_ms(cr), renewed, cr);
}

void
creds_lease_arm(struct cred *cr)
{
	timer_add_ms(cr->lease_timer, creds_lease_ms(cr) / 3);
}
