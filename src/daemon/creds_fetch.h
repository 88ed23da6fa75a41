/* creds_fetch.h - getting a credential's token (creds_fetch.c), for daemon/creds.c. */
#ifndef ONESYNC_CREDS_FETCH_H
#define ONESYNC_CREDS_FETCH_H

#include <event2/event.h>
#include "daemon/creds_int.h"

/* Get a token: from the store (shared) or the endpoint; cr->busy until it ends, then every
 * waiting request is answered. */
void creds_fetch(struct cred *);
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
/* The timer of a refresh that waits for another instance's (read the row again). */
void creds_timer_cb(evutil_socket_t, short, void *);
/* Wipe a secret text, then free it (NULL: nothing). */
void creds_wipe_free(char *);
/* A hash that recognises a token (the one a 401 refused), never 0. */
uint64_t creds_token_hash(const char *);

#endif
