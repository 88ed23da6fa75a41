/*
 * test_strmap.c - the string map (core/strmap.c): put, get, replace, delete, iterate;
 * growth far past its first size; deletes that leave tombstones; keys of any bytes but
 * NUL, the empty key among them; keys copied, values freed only when asked; find-or-add in
 * one probe (strmap_ref); an arena map's keys in chunks, long keys and deletes among them.
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
#include <xxhash.h>

#include "core/strmap.h"
#include "core/util.h"

#define V(n)	((void *)(uintptr_t)(n))

static void
test_basic(void **state)
{
	struct strmap m;
	char key[8] = "job";

	(void)state;
	strmap_init(&m);
	assert_null(strmap_get(&m, "job"));	/* empty: nothing, no table yet */
	assert_null(strmap_del(&m, "job"));
	assert_null(strmap_put(&m, key, V(1)));
	key[0] = 'x';				/* the map keeps its own copy */
	assert_ptr_equal(strmap_get(&m, "job"), V(1));
	assert_null(strmap_get(&m, "xob"));
	assert_ptr_equal(strmap_put(&m, "job", V(2)), V(1));	/* replace: the old value back */
	assert_ptr_equal(strmap_get(&m, "job"), V(2));
	assert_int_equal(m.n, 1);
	assert_null(strmap_get(&m, "jo"));
	assert_null(strmap_get(&m, "jobs"));
	assert_ptr_equal(strmap_del(&m, "job"), V(2));
	assert_null(strmap_get(&m, "job"));
	assert_null(strmap_del(&m, "job"));
	assert_int_equal(m.n, 0);
	assert_null(strmap_put(&m, "job", V(3)));	/* back after a delete */
	assert_ptr_equal(strmap_get(&m, "job"), V(3));
	strmap_free(&m, NULL);
	assert_int_equal(m.cap, 0);
	assert_null(strmap_get(&m, "job"));
}

/* Far past the first table: every key still there with its value; the table stays sparse. */
static void
test_growth(void **state)
{
	struct strmap m;
	char key[32];
	size_t cap;

	(void)state;
	strmap_init(&m);
	for (size_t i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%zu", i);
		assert_null(strmap_put(&m, key, V(i + 1)));
		if (i == 0)
			assert_int_equal(m.cap, 16);
	}
	assert_int_equal(m.n, 20000);
	assert_true(m.cap > 20000 && (m.cap & (m.cap - 1)) == 0);
	assert_true(m.n * 4 < m.cap * 3);
	for (size_t i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%zu", i);
		assert_ptr_equal(strmap_get(&m, key), V(i + 1));
	}
	assert_null(strmap_get(&m, "k20000"));
	strmap_free(&m, NULL);

	/* sized once: no growth while the planned keys go in; a smaller hint shrinks nothing */
	strmap_init(&m);
	strmap_reserve(&m, 20000);
	cap = m.cap;
	assert_true(cap >= 20000 * 4 / 3 && cap <= 65536);
	for (size_t i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%zu", i);
		assert_null(strmap_put(&m, key, V(i + 1)));
	}
	assert_int_equal(m.cap, cap);
	strmap_reserve(&m, 10);
	assert_int_equal(m.cap, cap);
	assert_ptr_equal(strmap_get(&m, "k19999"), V(20000));
	strmap_free(&m, NULL);
}

/*
 * Put and delete over and over (the run's seen set, a queue): deletes leave tombstones;
 * the table does not grow with them and no key behind one is lost.
 */
static void
test_churn(void **state)
{
	struct strmap m;
	char key[32];
	size_t cap;

	(void)state;
	strmap_init(&m);
	for (size_t i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "stay%zu", i);
		strmap_put(&m, key, V(100 + i));
	}
	for (size_t round = 0; round < 2000; round++) {
		for (size_t i = 0; i < 4; i++) {
			snprintf(key, sizeof key, "r%zu.%zu", round, i);
			assert_null(strmap_put(&m, key, V(round + 1)));
		}
		for (size_t i = 0; i < 4; i++) {
			snprintf(key, sizeof key, "r%zu.%zu", round, i);
			assert_ptr_equal(strmap_del(&m, key), V(round + 1));
		}
		if (round == 100)
			cap = m.cap;
	}
	assert_int_equal(m.n, 8);
	assert_int_equal(m.cap, cap);
	for (size_t i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "stay%zu", i);
		assert_ptr_equal(strmap_get(&m, key), V(100 + i));
	}
	assert_null(strmap_get(&m, "r5.1"));
	strmap_free(&m, NULL);
}

/* Keys are strings of any byte but NUL: control bytes, high bytes, long, empty. */
static void
test_odd_keys(void **state)
{
	static const char *const keys[] = {
		"", " ", "\x01", "\x01\x02", "\x7f", "\xff", "\xff\xfe", "a\x1f" "b", "a\x1f",
		"caf\xc3\xa9", "cafe\xcc\x81", "\t\n\r", "\"quoted\"\\", "A", "a",
	};
	const size_t n = sizeof keys / sizeof keys[0];
	char *longkey = xcalloc(1, 10001), *longer;
	struct strmap m;

	(void)state;
	memset(longkey, 'x', 10000);
	longer = xasprintf("%sy", longkey);
	strmap_init(&m);
	for (size_t i = 0; i < n; i++)
		assert_null(strmap_put(&m, keys[i], V(i + 1)));
	assert_null(strmap_put(&m, longkey, V(1000)));
	assert_null(strmap_put(&m, longer, V(1001)));
	assert_int_equal(m.n, n + 2);
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(strmap_get(&m, keys[i]), V(i + 1));
	assert_ptr_equal(strmap_get(&m, longkey), V(1000));
	assert_ptr_equal(strmap_get(&m, longer), V(1001));
	assert_null(strmap_get(&m, "\x02"));
	assert_ptr_equal(strmap_del(&m, ""), V(1));
	assert_null(strmap_get(&m, ""));
	assert_ptr_equal(strmap_get(&m, " "), V(2));
	strmap_free(&m, NULL);
	free(longkey);
	free(longer);
}

/* Iteration gives each live key once, with its value; deleted ones never. */
static void
test_iterate(void **state)
{
	struct strmap m;
	bool seen[300] = { false };
	char key[32];
	const char *k;
	void *v;
	size_t it = 0, count = 0;

	(void)state;
	strmap_init(&m);
	assert_false(strmap_next(&m, &it, &k, &v));
	for (size_t i = 0; i < 300; i++) {
		snprintf(key, sizeof key, "%zu", i);
		strmap_put(&m, key, V(i));
	}
	for (size_t i = 0; i < 300; i += 3) {
		snprintf(key, sizeof key, "%zu", i);
		strmap_del(&m, key);
	}
	it = 0;
	while (strmap_next(&m, &it, &k, &v)) {
		size_t i = (size_t)(uintptr_t)v;

		assert_true(i < 300 && i % 3 != 0);
		assert_false(seen[i]);
		seen[i] = true;
		snprintf(key, sizeof key, "%zu", i);
		assert_string_equal(k, key);
		count++;
	}
	assert_int_equal(count, 200);
	assert_int_equal(count, m.n);
	strmap_free(&m, NULL);
}

static size_t freed;

static void
count_free(void *v)
{
	freed++;
	free(v);
}

/* strmap_free frees every live value once, and none that was deleted or replaced. */
/* strmap_ref: the key's value slot, added once; a tombstone on the way is reused, and the
 * key is never added twice when its run holds one. */
static void
test_ref(void **state)
{
	struct strmap m;
	bool added;
	void **vp;
	char key[32];

	(void)state;
	strmap_init(&m);
	vp = strmap_ref(&m, "a", &added);
	assert_true(added);
	assert_null(*vp);
	*vp = V(1);
	vp = strmap_ref(&m, "a", &added);
	assert_false(added);
	assert_ptr_equal(*vp, V(1));
	assert_int_equal(m.n, 1);
	/* a run of keys with deletes among them: each key is found, not added again */
	for (size_t i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "r%zu", i);
		*strmap_ref(&m, key, &added) = V(i + 2);
		assert_true(added);
	}
	for (size_t i = 0; i < 1000; i += 3) {
		snprintf(key, sizeof key, "r%zu", i);
		assert_ptr_equal(strmap_del(&m, key), V(i + 2));
	}
	for (size_t i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "r%zu", i);
		vp = strmap_ref(&m, key, &added);
		assert_int_equal(added, i % 3 == 0);
		assert_ptr_equal(*vp, i % 3 == 0 ? NULL : V(i + 2));
		*vp = V(i + 2);
	}
	assert_int_equal(m.n, 1001);
	for (size_t i = 0; i < 1000; i++) {
		snprintf(key, sizeof key, "r%zu", i);
		assert_ptr_equal(strmap_get(&m, key), V(i + 2));
	}
	strmap_free(&m, NULL);
}

/* An arena map: the same map to its user; keys outlive their caller's buffer, a key longer
 * than a chunk gets one of its own, deletes and growth keep every other key. */
static void
test_arena(void **state)
{
	struct strmap m;
	size_t big = (3 << 20) + 7, it = 0, n = 0;
	char key[32], *huge = malloc(big + 1);
	const char *k;
	void *v;

	(void)state;
	assert_non_null(huge);
	memset(huge, 'h', big);
	huge[big] = '\0';
	strmap_init_arena(&m);
	for (size_t i = 0; i < 50000; i++) {
		snprintf(key, sizeof key, "key-%08zu", i);
		assert_null(strmap_put(&m, key, V(i + 1)));
		if (i == 25000)
			assert_null(strmap_put(&m, huge, V(999999)));
	}
	for (size_t i = 0; i < 50000; i += 2) {
		snprintf(key, sizeof key, "key-%08zu", i);
		assert_ptr_equal(strmap_del(&m, key), V(i + 1));
	}
	assert_int_equal(m.n, 25001);
	assert_true(m.nchunks > 1);
	huge[0] = 'x';		/* the map holds its own copy */
	assert_null(strmap_get(&m, huge));
	huge[0] = 'h';
	assert_ptr_equal(strmap_get(&m, huge), V(999999));
	for (size_t i = 0; i < 50000; i++) {
		snprintf(key, sizeof key, "key-%08zu", i);
		assert_ptr_equal(strmap_get(&m, key), i % 2 ? V(i + 1) : NULL);
	}
	while (strmap_next(&m, &it, &k, &v))
		n++;
	assert_int_equal(n, 25001);
	strmap_free(&m, NULL);
	assert_true(m.arena);	/* freed, and still an arena map for its next use */
	assert_int_equal(m.n, 0);
	assert_null(strmap_put(&m, "again", V(1)));
	assert_ptr_equal(strmap_get(&m, "again"), V(1));
	strmap_free(&m, NULL);
	free(huge);
}

/*
 * Keys a hostile file supplies so that their plain xxh3-64 agree in the low bits (found
 * offline by trying names: 2,000 of them for a 4096-slot table cost 8 million hashes).
 * With linear probing they would fill one run, each new key walking the whole run: a
 * million such keys make a run's map work quadratic. The map's hash is seeded per process,
 * so no run of occupied slots grows much past what random keys give.
 */
static void
test_collide(void **state)
{
	struct strmap m;
	char key[32], (*keys)[32] = calloc(2000, sizeof *keys);
	size_t n = 0, run = 0, longest = 0;

	(void)state;
	assert_non_null(keys);
	for (unsigned long i = 0; n < 2000; i++) {
		snprintf(key, sizeof key, "k%lu", i);
		if ((XXH3_64bits(key, strlen(key)) & 4095) == 7)
			memcpy(keys[n++], key, sizeof key);
	}
	strmap_init(&m);
	strmap_reserve(&m, 2000);
	assert_int_equal(m.cap, 4096);
	for (size_t i = 0; i < n; i++)
		assert_null(strmap_put(&m, keys[i], V(i + 1)));
	for (size_t i = 0; i < m.cap; i++) {
		run = m.slots[i].key != NULL ? run + 1 : 0;
		if (run > longest)
			longest = run;
	}
	for (size_t i = 0; i < n; i++)
		assert_ptr_equal(strmap_get(&m, keys[i]), V(i + 1));
	/* random keys at this load: a few dozen; the colliding ones unseeded: 2000 */
	if (longest >= 500)
		fail_msg("a run of %zu occupied slots in %zu", longest, m.cap);
	strmap_free(&m, NULL);
	free(keys);
}

static void
test_free_values(void **state)
{
	struct strmap m;
	char key[32];
	void *old;

	(void)state;
	strmap_init(&m);
	for (size_t i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "v%zu", i);
		strmap_put(&m, key, xstrdup(key));
	}
	free(strmap_del(&m, "v7"));
	old = strmap_put(&m, "v8", xstrdup("new"));
	assert_string_equal(old, "v8");
	free(old);
	freed = 0;
	strmap_free(&m, count_free);
	assert_int_equal(freed, 49);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_odd_keys),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_free_values),
		cmocka_unit_test(test_ref),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_collide),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
