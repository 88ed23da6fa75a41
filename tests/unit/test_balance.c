/*
 * test_balance.c - the assignment of jobs to live instances (daemon/balance.c), as every
 * instance computes it alone: the same answer whatever order the live instances come in,
 * no instance over its share, a job only where it may run, and what an instance leaving
 * does to the others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/util.h"
#include "daemon/balance.h"

#define NJOBS	60
#define NINST	5

struct fleet {
	char	*jobs[NJOBS];	/* sorted, as coord.c hands them */
	char	*inst[NINST];
	int	 cap[NINST];
};

static void
fleet_init(struct fleet *f)
{
	for (size_t j = 0; j < NJOBS; j++)
		f->jobs[j] = xasprintf("job-%03zu", j);
	for (size_t i = 0; i < NINST; i++) {
		f->inst[i] = xasprintf("host%zu:%zu", i, 1000 + i * 7);
		f->cap[i] = 4;
	}
}

static void
fleet_free(struct fleet *f)
{
	for (size_t j = 0; j < NJOBS; j++)
		free(f->jobs[j]);
	for (size_t i = 0; i < NINST; i++)
		free(f->inst[i]);
}

/* The owner of each job by name ("" for none): what the instances must agree on. */
static void
owners(char *const *inst, size_t ninst, const size_t *owner, const char **name)
{
	for (size_t j = 0; j < NJOBS; j++) {
		assert_true(owner[j] == SIZE_MAX || owner[j] < ninst);
		name[j] = owner[j] == SIZE_MAX ? "" : inst[owner[j]];
	}
}

/* Every instance lists the live ones in its own order: all reach the same assignment. */
static void
test_instance_order(void **state)
{
	static const size_t perms[][NINST] = {
		{ 0, 1, 2, 3, 4 }, { 4, 3, 2, 1, 0 }, { 2, 0, 4, 1, 3 }, { 1, 4, 0, 3, 2 },
	};
	struct fleet f;
	const char *want[NJOBS], *got[NJOBS];
	size_t owner[NJOBS];

	(void)state;
	fleet_init(&f);
	f.cap[1] = 2;	/* capacities travel with their instance */
	f.cap[3] = 8;
	for (size_t p = 0; p < sizeof perms / sizeof perms[0]; p++) {
		char *inst[NINST];
		int cap[NINST];

		for (size_t i = 0; i < NINST; i++) {
			inst[i] = f.inst[perms[p][i]];
			cap[i] = f.cap[perms[p][i]];
		}
		memset(owner, 0xa5, sizeof owner);
		balance_assign(f.jobs, NJOBS, inst, cap, NINST, NULL, owner);
		owners(inst, NINST, owner, p == 0 ? want : got);
		for (size_t j = 0; p > 0 && j < NJOBS; j++)
			assert_string_equal(got[j], want[j]);
	}
	fleet_free(&f);
}

/* The same inputs twice: the same answer (nothing but the inputs decides). */
static void
test_stable(void **state)
{
	struct fleet f;
	size_t a[NJOBS], b[NJOBS];

	(void)state;
	fleet_init(&f);
	balance_assign(f.jobs, NJOBS, f.inst, f.cap, NINST, NULL, a);
	balance_assign(f.jobs, NJOBS, f.inst, f.cap, NINST, NULL, b);
	assert_memory_equal(a, b, sizeof a);
	fleet_free(&f);
}

/*
 * Bounded load: every job has an owner, and no instance takes more than its share by
 * capacity, rounded up (ceil(jobs * capacity / total)); a capacity of 0 or less counts 1.
 */
static void
check_bound(size_t njobs, const int *cap, size_t ninst)
{
	char *jobs[NJOBS], *inst[NINST];
	size_t owner[NJOBS], load[NINST] = { 0 };
	long long total = 0;

	for (size_t j = 0; j < njobs; j++)
		jobs[j] = xasprintf("j%02zu", j);
	for (size_t i = 0; i < ninst; i++) {
		inst[i] = xasprintf("i%zu", i);
		total += cap[i] > 0 ? cap[i] : 1;
	}
	balance_assign(jobs, njobs, inst, cap, ninst, NULL, owner);
	for (size_t j = 0; j < njobs; j++) {
		assert_true(owner[j] < ninst);
		load[owner[j]]++;
	}
	for (size_t i = 0; i < ninst; i++) {
		long long c = cap[i] > 0 ? cap[i] : 1;
		size_t room = (size_t)(((long long)njobs * c + total - 1) / total);

		if (load[i] > room)
			fail_msg("%zu jobs on %zu instances: instance %zu (capacity %d) got %zu, its "
			    "share is %zu", njobs, ninst, i, cap[i], load[i], room);
		free(inst[i]);
	}
	for (size_t j = 0; j < njobs; j++)
		free(jobs[j]);
}

static void
test_bounded_load(void **state)
{
	static const int equal[NINST] = { 1, 1, 1, 1, 1 };
	static const int mixed[NINST] = { 1, 3, 0, 2, -4 };

	(void)state;
	for (size_t njobs = 0; njobs <= NJOBS; njobs++)
		for (size_t ninst = 1; ninst <= NINST; ninst++) {
			check_bound(njobs, equal, ninst);
			check_bound(njobs, mixed, ninst);
		}
}

/*
 * One instance leaves: each of its jobs goes to one that is left, every one stays within
 * its new share, and the rest mostly stay where they were. Not only the leaving
 * instance's jobs move: the share grows (12 -> 15 here), and a job kept from its preferred
 * instance by the old share may now go there (13 to 15 of 60 move here, the 12 of the
 * one that left among them); balance.c promises no fewer. Hashing modulo the number of
 * instances would move about four in five.
 */
static void
test_instance_leaves(void **state)
{
	struct fleet f;
	size_t before[NJOBS], after[NJOBS], load[NINST - 1];
	const char *was[NJOBS], *now[NJOBS];

	(void)state;
	fleet_init(&f);
	balance_assign(f.jobs, NJOBS, f.inst, f.cap, NINST, NULL, before);
	owners(f.inst, NINST, before, was);
	for (size_t gone = 0; gone < NINST; gone++) {
		char *left[NINST - 1];
		size_t k = 0, moved = 0;

		for (size_t i = 0; i < NINST; i++)
			if (i != gone)
				left[k++] = f.inst[i];
		memset(load, 0, sizeof load);
		balance_assign(f.jobs, NJOBS, left, f.cap, NINST - 1, NULL, after);
		owners(left, NINST - 1, after, now);
		for (size_t j = 0; j < NJOBS; j++) {
			assert_true(after[j] < NINST - 1);
			load[after[j]]++;
			moved += strcmp(was[j], now[j]) != 0;
		}
		for (size_t i = 0; i < NINST - 1; i++)
			assert_true(load[i] <= (NJOBS + NINST - 2) / (NINST - 1));
		/* the leaving instance's jobs at least, and far from a reshuffle */
		assert_true(moved >= NJOBS / NINST);
		assert_true(moved < NJOBS / 2);
	}
	fleet_free(&f);
}

/*
 * A job goes only to an instance that has it with the definition it runs with; when all
 * of those are full it goes over their share to the best of them, and to nobody when no
 * instance may run it.
 */
static void
test_eligible_over_room(void **state)
{
	char *jobs[] = { "a", "b", "c", "d", "e", "f" };
	char *inst[] = { "x", "y", "z" };
	int cap[] = { 1, 1, 1 };
	bool el[6 * 3];
	size_t owner[6];

	(void)state;
	/* only x has a..e (its share is 2 of 6); nobody has f */
	memset(el, 0, sizeof el);
	for (size_t j = 0; j < 5; j++)
		el[j * 3 + 0] = true;
	balance_assign(jobs, 6, inst, cap, 3, el, owner);
	for (size_t j = 0; j < 5; j++)
		assert_int_equal(owner[j], 0);
	assert_int_equal(owner[5], SIZE_MAX);
	/* no instance at all: nothing is written */
	owner[0] = 42;
	balance_assign(jobs, 6, inst, cap, 0, NULL, owner);
	assert_int_equal(owner[0], 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instance_order),
		cmocka_unit_test(test_stable),
		cmocka_unit_test(test_bounded_load),
		cmocka_unit_test(test_instance_leaves),
		cmocka_unit_test(test_eligible_over_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
