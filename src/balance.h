/* balance.h - which live instance should run each job. */
#ifndef ONESYNC_BALANCE_H
#define ONESYNC_BALANCE_H

#include <stddef.h>

/*
 * Rendezvous hashing with bounded load: job j goes to the instance with the highest
 * hash(j, instance) that still has room, room being its share of the jobs by capacity
 * (rounded up). Every instance computes the same answer from the same sorted inputs, and a
 * job moves only when the set of live instances changes. owner[j] is an index into inst.
 */
void balance_assign(char *const *jobs, size_t njobs, char *const *inst, const int *capacity,
    size_t ninst, size_t *owner);

#endif
