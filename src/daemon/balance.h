/* balance.h - which live instance should run each job. */
#ifndef ONESYNC_BALANCE_H
#define ONESYNC_BALANCE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Rendezvous hashing with bounded load: job j goes to the instance with the highest
 * hash(j, instance) that still has room, room being its share of the jobs by capacity
 * (rounded up). Every instance computes the same answer from the same sorted inputs, and a
 * job moves only when the set of live instances changes. Only instances with
 * eligible[j * ninst + i] (NULL: all) may run job j: those that have the job with the
 * definition its state holds; when all of them are full it goes over room to the best of
 * them. owner[j] is an index into inst, or SIZE_MAX when no instance may run it.
 */
void balance_assign(char *const *jobs, size_t njobs, char *const *inst, const int *capacity,
    size_t ninst, const bool *eligible, size_t *owner);

#endif
