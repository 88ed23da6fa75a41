/*
 * balance.c - the assignment of jobs to live instances (doc/design.md §7: each instance
 * claims at most its fair share, with a stable preference per job). Pure computation: no
 * I/O, no clock; the daemon feeds it the job names and the live instances read from the
 * database.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "daemon/balance.h"
#include "core/util.h"

static uint64_t
weight(const char *job, const char *inst)
{
	XXH3_state_t *st = XXH3_createState();
	uint64_t h;

	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, job, strlen(job) + 1);
	XXH3_64bits_update(st, inst, strlen(inst));
	h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

void
balance_assign(char *const *jobs, size_t njobs, char *const *inst, const int *capacity,
    size_t ninst, const bool *eligible, size_t *owner)
{
	size_t *room, *load;
	long long total = 0;

	if (ninst == 0)
		return;
	room = xcalloc(ninst, sizeof *room);
	load = xcalloc(ninst, sizeof *load);
	for (size_t i = 0; i < ninst; i++)
		total += capacity[i] > 0 ? capacity[i] : 1;
	for (size_t i = 0; i < ninst; i++) {
		long long c = capacity[i] > 0 ? capacity[i] : 1;

		room[i] = (size_t)(((long long)njobs * c + total - 1) / total);	/* ceil */
	}
	for (size_t j = 0; j < njobs; j++) {
		size_t best = SIZE_MAX, over = SIZE_MAX;
		uint64_t bw = 0, ow = 0;

		for (size_t i = 0; i < ninst; i++) {
			uint64_t w;

			if (eligible != NULL && !eligible[j * ninst + i])
				continue;
			w = weight(jobs[j], inst[i]);
			if (over == SIZE_MAX || w > ow) {
				over = i;
				ow = w;
			}
			if (load[i] >= room[i])
				continue;
			if (best == SIZE_MAX || w > bw) {
				best = i;
				bw = w;
			}
		}
		/* Every instance that has the job is full (others lack it): it goes over room. */
		if (best == SIZE_MAX)
			best = over;
		owner[j] = best;
		if (best != SIZE_MAX)
			load[best]++;
	}
	free(room);
	free(load);
}
