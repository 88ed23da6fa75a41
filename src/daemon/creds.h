/*
 * creds.h - OAuth2 credentials at run time (doc/design.md §7.7): one access token per
 * credential for every job of the instance, shared through the state store by every
 * instance when state.encryption_key is set, refreshed ahead of its expiry, single flight
 * across instances; the bearer token of io/http.h's credential hook.
 */
#ifndef ONESYNC_CREDS_H
#define ONESYNC_CREDS_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include "config/model.h"
#include "core/util.h"

struct creds;
struct state;

/* The engine of cfg's credentials; NULL when it has none. */
struct creds *creds_new(struct event_base *, struct state *, const char *instance,
    const struct config *cfg);
/* A reload: cfg's credentials from now on (a credential kept by name and definition keeps
 * its token; a changed one starts again). Returns the engine (new or NULL as creds_new). */
struct creds *creds_reload(struct creds *, struct event_base *, struct state *,
    const char *instance, const struct config *cfg);
/* Stopping, once no run is left: a new token the state store has not taken yet (its
 * rotated refresh token lives only here) is stored at once; true when one waits, and
 * done(arg) is called when none does any more (the daemon's stop_timeout bounds it). */
bool creds_stop(struct creds *, void (*done)(void *), void *arg);
/* Stop answering (before http_shutdown); then creds_free (after state_free). */
void creds_close(struct creds *);
void creds_free(struct creds *);
/* The Prometheus lines of the credentials (onesyncd(8), METRICS). */
void creds_render(const struct creds *, struct buf *);

#endif
