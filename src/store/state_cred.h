/*
 * state_cred.h - the credentials' shared state (sql_cred.h, doc/design.md §6.7): the
 * sealed tokens and the single flight of their refresh across instances, asynchronous
 * like every call of store/state.h. Every token passed in is aead_seal's output (the
 * database refuses anything else); res carries them sealed. On the pool: a run's work.
 *
 * A row as read ("the row" below): {"access_sealed": s|null, "access_expires_ms": ms|null,
 * "refresh_sealed": s|null, "generation": n, "needs_reauth": why|null,
 * "refreshing_until_ms": the end of a refresh lease in force, else 0}.
 */
#ifndef ONESYNC_STATE_CRED_H
#define ONESYNC_STATE_CRED_H

#include <stdint.h>
#include "store/state.h"

/* Credential `name`'s row (created empty when missing). */
void state_cred_get(struct state *, const char *name, state_cb, void *);
/* Ask to refresh credential `name` as `instance` (whose configuration has `origin`), for a
 * lease of lease_ms (1 ms to 1 h; renewed while the request waits). res: the row and one
 * of "token": the fencing number to pass to state_cred_store/_fail/_renew (without
 * "needs_reauth" then), "busy": true with "wait_ms" (another instance refreshes: read the
 * row again then), "needs_reauth": why (do not refresh: marked for this origin). A lease
 * this instance already holds is taken again (the single flight within an instance is its
 * caller's). */
void state_cred_begin(struct state *, const char *name, const char *instance,
    int64_t lease_ms, const char *origin, state_cb, void *);
/* Extend the lease begun with `token` to lease_ms from now, if this instance still holds
 * it. res: {"renewed": bool}. */
void state_cred_renew(struct state *, const char *name, const char *instance, int64_t token,
    int64_t lease_ms, state_cb, void *);
/* Store what the refresh begun with `token` got: access_sealed (required), its expiry
 * expires_ms (ms since the epoch; -1: unknown), refresh_sealed (the refresh token to keep:
 * the rotated one or the one used; NULL: none), key_check and origin (AEAD_MAC_HEX digits:
 * which key sealed them, whose they are), seed (the configured refresh token's MAC when the
 * refresh began from it, recorded as spent; NULL: none). Stored unless a newer token was stored since the
 * refresh began, even when the lease ran out (the generation fences the others off).
 * res: {"stored": true, "generation": n, "lease_lost": bool} or {"stored": false,
 * "generation": now, "why": "..."}. */
void state_cred_store(struct state *, const char *name, const char *instance, int64_t token,
    const char *access_sealed, int64_t expires_ms, const char *refresh_sealed,
    const char *key_check, const char *origin, const char *seed, state_cb, void *);
/* The refresh begun with `token` failed: its lease ends. needs_reauth non-NULL (the token
 * endpoint said invalid_grant/invalid_client) marks the credential, for `origin`, unless a
 * newer token was stored meanwhile. res: {"ended": bool, "marked": bool}. */
void state_cred_fail(struct state *, const char *name, const char *instance, int64_t token,
    const char *needs_reauth, const char *origin, state_cb, void *);
/* An operator's new refresh token (sealed), with the key_check and origin it is for: the
 * mark and the access token dropped, any refresh in flight fenced off.
 * res: {"generation": n}. */
void state_cred_set_refresh(struct state *, const char *name, const char *refresh_sealed,
    const char *key_check, const char *origin, const char *seed, state_cb, void *);
#endif
