/* creds_fetch.h - getting a credential's token (creds_fetch.c), for daemon/creds.c. */
#ifndef ONESYNC_CREDS_FETCH_H
#define ONESYNC_CREDS_FETCH_H

#include <event2/event.h>
#include "daemon/creds_int.h"

/* Get a token: from the store (shared) or the endpoint; cr->busy until it ends, then every
 * waiting request is answered. */
void creds_fetch(struct cred *);
/* The timer of a refresh that waits for another instance's (read the row again). */
void creds_timer_cb(evutil_socket_t, short, void *);

#endif
