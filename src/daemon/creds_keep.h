/* creds_keep.h - a credential's token in hand and keeping a new one (creds_keep.c), for
 * daemon/creds.c and creds_fetch.c. */
#ifndef ONESYNC_CREDS_KEEP_H
#define ONESYNC_CREDS_KEEP_H

#include <stdint.h>
#include <event2/event.h>
#include "daemon/creds_int.h"

/* A new token from the endpoint, the refresh token to keep with it (rotated, or the one
 * the request used; NULL: none) and its life: used at once, and stored sealed for the other
 * instances; the fetch ends (creds_idle) when the store took it or a newer one, after as
 * many tries as the state database needs. */
void creds_keep(struct cred *, const char *access, const char *refresh, int64_t life_ms);
/* Stopping: a token not stored yet is stored again at once (not after the retry's wait);
 * true when one waits, or a token request is in flight (its answer may carry a rotated
 * refresh token). creds_settled calls e->stop_done once none is left. */
bool creds_keep_flush(struct cred *);
void creds_settled(struct creds *);
/* Stopped: what is not stored yet is dropped (logged when a rotated refresh token is). */
void creds_keep_abandon(struct cred *);
/* The timer of a store tried again. */
void creds_store_timer_cb(evutil_socket_t, short, void *);
/* The refresh lease's length, and its renewal while the token request waits. */
int64_t creds_lease_ms(const struct cred *);
void creds_lease_arm(struct cred *);
void creds_lease_cb(evutil_socket_t, short, void *);
/* The redaction registry (core/secrets.h) holds the current and the previous access token
 * and the last refresh token of each credential: hold a new token (the current one becomes
 * the previous, the one before is forgotten), drop the current one (a 401 refused it), hold
 * a refresh token, forget all (the credential is freed). */
void creds_hold_token(struct cred *, const char *token);
void creds_drop_token(struct cred *);
void creds_hold_refresh(struct cred *, const char *refresh);
void creds_forget_all(struct cred *);

/* The fetch ended (cr->busy false); a reload's successor that waited for it begins. */
void creds_idle(struct cred *);
/* Use token from now on (life_ms left; generation in the store, or -1) and answer every
 * waiting request with it; the fetch goes on. */
void creds_adopt(struct cred *, const char *token, int64_t life_ms, int64_t generation);
/* "schema/credential/field", the associated data a sealed value opens with. */
char *creds_seal_ad(const struct cred *, const char *field);
/* Answer every waiting request with token, or NULL and why. */
void creds_answer_all(struct cred *, const char *token, const char *why);
/* The token may be sent: it has more than its safety margin left. */
bool creds_usable(const struct cred *);
/* Wipe a secret text, then free it (NULL: nothing). */
void creds_wipe_free(char *);
/* A hash that recognises a token (the one a 401 refused), never 0. */
uint64_t creds_token_hash(const char *);

#endif
