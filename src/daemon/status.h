/* status.h - the HTTP status endpoint (daemon.status_listen): /healthz, /metrics, /jobs. */
#ifndef ONESYNC_STATUS_H
#define ONESYNC_STATUS_H

#include <stdint.h>
#include "core/util.h"

struct daemon;
struct status;

/*
 * Listen on the daemon's daemon.status_listen, on its event base. NULL when the setting is
 * "" or when it cannot listen: that is logged as an error and the daemon carries on
 * without the endpoint.
 */
struct status *status_start(struct daemon *);
/* Stop listening and free (before the event base). NULL is fine. */
void status_free(struct status *);

#endif
