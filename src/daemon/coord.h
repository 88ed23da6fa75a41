/* coord.h - this instance among the others: schema, instance name, heartbeat, balance, leases. */
#ifndef ONESYNC_COORD_H
#define ONESYNC_COORD_H

#include <stdbool.h>
#include <event2/util.h>

struct daemon;

/* Bring the state schema up to date, then register the instance (retried until it can). */
void coord_migrate(struct daemon *);
/* Heartbeat, publishing our jobs and their identities; the answer drives the balance. */
void coord_beat(struct daemon *, bool first);
/* Cut the runs whose lease may lapse soon; arm d->ev_cut for the next (arg: the daemon). */
void coord_lease_cut(evutil_socket_t, short, void *);
/* The lease tick (every third of the lease): renew, heartbeat, requests (arg: the daemon). */
void coord_lease_tick(evutil_socket_t, short, void *);

#endif
