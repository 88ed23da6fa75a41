/* test_canon.c - canonical form, its hash, and record keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <xxhash.h>

#include "record/canon.h"
#include "record/json.h"
#include "record/parse.h"

static json_t *
load(const char *s)
{
	json_error_t	 e;
	json_t		*j = json_loads(s, 0, &e);

	if (j == NULL)
		fail_msg("bad test JSON %s: %s", s, e.text);
	return j;
}

static void
hash_of(const char *js, char *const *fields, size_t nf, char *const *ex, size_t ne,
    char out[CANON_HASH_LEN])
{
	json_t	*j = load(js);

	canon_hash(j, fields, nf, ex, ne, out);
	json_decref(j);
}

/* The hash canon_hash must give when the canonical text is exactly `text`. */
static void
expect_text(const char *text, char want[CANON_HASH_LEN])
{
	XXH128_hash_t	h = XXH3_128bits(text, strlen(text));

	snprintf(want, CANON_HASH_LEN, "1:%016llx%016llx",
	    (unsigned long long)h.high64, (unsigned long long)h.low64);
}

static void
test_form(void **state)
{
	char	got[CANON_HASH_LEN], want[CANON_HASH_LEN];

	/* keys sorted at every level, compact, UTF-8 kept */
	hash_of("{ \"b\": [ 1, {\"z\": 1, \"y\": \"\\u00e9\"} ], \"a\": null,\n \"c\": 1.5 }",
	    NULL, 0, NULL, 0, got);
	expect_text("{\"a\":null,\"b\":[1,{\"y\":\"\xc3\xa9\",\"z\":1}],\"c\":1.5}", want);
	assert_string_equal(got, want);
	assert_int_equal(strlen(got), CANON_HASH_LEN - 1);
	assert_memory_equal(got, "1:", 2);
	/* pinned: a change of the canonical form must bump CANON_VERSION */
	hash_of("{\"id\": 1, \"name\": \"x\"}", NULL, 0, NULL, 0, got);
	expect_text("{\"id\":1,\"name\":\"x\"}", want);
	assert_string_equal(got, want);
	assert_string_equal(got, "1:159ba4620adc99da64aaea5321b3888c");
}

static void
test_order_independent(void **state)
{
	char	a[CANON_HASH_LEN], b[CANON_HASH_LEN], c[CANON_HASH_LEN];

	hash_of("{\"a\":1,\"b\":{\"x\":[1,2],\"y\":\"s\"}}", NULL, 0, NULL, 0, a);
	hash_of("{\"b\":{\"y\":\"s\",\"x\":[1,2]},\"a\":1}", NULL, 0, NULL, 0, b);
	assert_string_equal(a, b);
	/* array order matters, values matter, types matter */
	hash_of("{\"a\":1,\"b\":{\"x\":[2,1],\"y\":\"s\"}}", NULL, 0, NULL, 0, c);
	assert_string_not_equal(a, c);
	hash_of("{\"a\":\"1\",\"b\":{\"x\":[1,2],\"y\":\"s\"}}", NULL, 0, NULL, 0, c);
	assert_string_not_equal(a, c);
	hash_of("{\"a\":1,\"b\":{\"x\":[1,2],\"y\":\"t\"}}", NULL, 0, NULL, 0, c);
	assert_string_not_equal(a, c);
}

static void
test_exclude_fields(void **state)
{
	char		 a[CANON_HASH_LEN], b[CANON_HASH_LEN], want[CANON_HASH_LEN];
	char		*ex[] = { "exported_at", "seq" };
	char		*fields[] = { "id", "meta.price", "missing" };
	json_t		*j;

	hash_of("{\"id\":1,\"exported_at\":\"2024\",\"seq\":5}", NULL, 0, ex, 2, a);
	hash_of("{\"id\":1,\"exported_at\":\"2025\",\"seq\":6}", NULL, 0, ex, 2, b);
	assert_string_equal(a, b);
	expect_text("{\"id\":1}", want);
	assert_string_equal(a, want);
	hash_of("{\"id\":1,\"exported_at\":\"2025\",\"seq\":6}", NULL, 0, NULL, 0, b);
	assert_string_not_equal(a, b);

	/* fields: a flat object keyed by path; missing ones left out */
	hash_of("{\"id\":7,\"meta\":{\"price\":2,\"stock\":9},\"x\":1}", fields, 3, NULL,
	    0, a);
	expect_text("{\"id\":7,\"meta.price\":2}", want);
	assert_string_equal(a, want);
	hash_of("{\"x\":2,\"meta\":{\"stock\":1,\"price\":2},\"id\":7}", fields, 3, NULL,
	    0, b);
	assert_string_equal(a, b);

	/* the record itself is not modified */
	j = load("{\"id\":1,\"seq\":5}");
	canon_hash(j, NULL, 0, ex, 2, a);
	assert_non_null(json_object_get(j, "seq"));
	json_decref(j);
}

static void
test_record_key(void **state)
{
	char	*one[] = { "id" }, *two[] = { "tenant", "n.id" }, *out, *err;
	json_t	*j;

	j = load("{\"id\":\"A-42\",\"tenant\":\"t1\",\"n\":{\"id\":12345678901234},"
	    "\"r\":1.5,\"b\":true,\"z\":null,\"o\":{}}");
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), 0);
	assert_string_equal(out, "A-42");
	free(out);
	assert_int_equal(canon_record_key(j, two, 2, &out, &err), 0);
	assert_string_equal(out, "[\"t1\",\"12345678901234\"]");
	free(out);
	one[0] = "n.id";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), 0);
	assert_string_equal(out, "12345678901234");
	free(out);
	one[0] = "r";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), 0);
	assert_string_equal(out, "1.5");
	free(out);
	one[0] = "b";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "'b'"));
	assert_non_null(strstr(err, "boolean"));
	free(err);
	one[0] = "z";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "'z'"));
	free(err);
	one[0] = "o";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "object"));
	free(err);
	one[0] = "nope";
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "no key field 'nope'"));
	assert_null(out);
	free(err);
	two[1] = "nope";
	assert_int_equal(canon_record_key(j, two, 2, &out, &err), -1);
	assert_non_null(strstr(err, "'nope'"));
	free(err);
	json_decref(j);
}

/* A key the state cannot hold or that names nothing is a missing key (the record fails). */
/* One key rule: a number and its decimal text are the same component, single or composite;
 * an older version's composite text (numbers as JSON numbers) upgrades to it. */
static void
test_key_rule(void **state)
{
	char	*one[] = { "id" }, *two[] = { "t", "id" }, *a, *b, *err, *up;
	json_t	*n = load("{\"t\":\"x\",\"id\":7}"), *s = load("{\"t\":\"x\",\"id\":\"7\"}");

	assert_int_equal(canon_record_key(n, one, 1, &a, &err), 0);
	assert_int_equal(canon_record_key(s, one, 1, &b, &err), 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(canon_record_key(n, two, 2, &a, &err), 0);
	assert_int_equal(canon_record_key(s, two, 2, &b, &err), 0);
	assert_string_equal(a, b);
	assert_string_equal(a, "[\"x\",\"7\"]");
	up = canon_key_text_upgrade("[\"x\",7]", 2);
	assert_non_null(up);
	assert_string_equal(up, a);
	free(up);
	free(a);
	free(b);
	assert_null(canon_key_text_upgrade("[\"x\",\"7\"]", 2));	/* already the text now */
	assert_null(canon_key_text_upgrade("[\"x\",7]", 1));		/* a single key is as it was */
	assert_null(canon_key_text_upgrade("[1,2,3]", 2));			/* not this job's form */
	assert_null(canon_key_text_upgrade("not json", 2));
	json_decref(n);
	json_decref(s);

	/* canon_key_fold: what an int or uuid column equates folds alike */
	a = canon_key_fold("5"); b = canon_key_fold("05"); assert_string_equal(a, b); free(a); free(b);
	a = canon_key_fold(" 5.0"); b = canon_key_fold("5"); assert_string_equal(a, b); free(a); free(b);
	a = canon_key_fold("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A10");
	b = canon_key_fold("{a0eebc999c0b4ef8bb6d6bb9bd380a10}");
	assert_string_equal(a, b); free(a); free(b);
	a = canon_key_fold("[\"t\",7]"); b = canon_key_fold("[\"t\",\"07\"]");
	assert_string_equal(a, b); free(a); free(b);
	a = canon_key_fold("5"); b = canon_key_fold("6"); assert_string_not_equal(a, b); free(a); free(b);
}

static void
test_record_key_unusable(void **state)
{
	char	*one[] = { "id" }, *two[] = { "a", "id" }, *out, *err;
	char	 big[RECORD_KEY_MAX + 2];
	json_t	*j;

	(void)state;
	j = json_pack("{ss ss ss}", "id", "", "a", "x", "b", "y");
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "'id' is an empty string"));
	free(err);
	assert_int_equal(canon_record_key(j, two, 2, &out, &err), -1);
	free(err);
	json_object_set_new(j, "id", json_stringn("a\0b", 3));
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "NUL"));
	free(err);
	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	json_object_set_new(j, "id", json_string(big));
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), -1);
	assert_non_null(strstr(err, "longer than"));
	free(err);
	big[RECORD_KEY_MAX] = '\0';
	json_object_set_new(j, "id", json_string(big));
	assert_int_equal(canon_record_key(j, one, 1, &out, &err), 0);
	free(out);
	json_decref(j);
}

/* What the state stores: valid UTF-8 without NUL; anything else made so, or detected. */
static void
test_storable(void **state)
{
	char	*t;
	json_t	*j, *c;

	(void)state;
	t = jsonx_text_storable("ok \xc3\xa9", 5, SIZE_MAX);
	assert_string_equal(t, "ok \xc3\xa9");
	free(t);
	t = jsonx_text_storable("a\0b\xff\xc3", 5, SIZE_MAX);
	assert_string_equal(t, "a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd");
	free(t);
	/* cut at a character boundary, marked */
	t = jsonx_text_storable("abc\xc3\xa9xyz", 8, 5);
	assert_string_equal(t, "abc\xc3\xa9...");
	free(t);
	j = json_pack("{s[so]}", "a", "fine", json_stringn("x\0y", 3));
	assert_false(jsonx_storable(j));
	c = jsonx_storable_copy(j);
	assert_true(jsonx_storable(c));
	assert_string_equal(json_string_value(json_array_get(json_object_get(c, "a"), 1)),
	    "x\xef\xbf\xbdy");
	json_decref(c);
	json_decref(j);
	j = json_pack("{s[si]}", "a", "fine", 1);
	assert_true(jsonx_storable(j));
	json_decref(j);
}

/* Records are written out as the source wrote them: decimals keep their short form. */
static void
test_json_append(void **state)
{
	json_t		*j;
	struct buf	 b;

	(void)state;
	j = json_loads("{\"price\":19.99,\"tiny\":-0.000123,\"whole\":3.0,\"big\":1e300,"
	    "\"s\":\"a\\\"b\\n\\u0001\u00e9\",\"n\":[1,null,true,false],\"o\":{}}", 0, NULL);
	assert_non_null(j);
	buf_init(&b);
	jsonx_append(&b, j);
	assert_string_equal(b.data, "{\"price\":19.99,\"tiny\":-0.000123,\"whole\":3.0,"
	    "\"big\":1e+300,\"s\":\"a\\\"b\\n\\u0001\u00e9\",\"n\":[1,null,true,false],\"o\":{}}");
	/* and it parses back to the same values */
	{
		json_t *k = json_loads(b.data, 0, NULL);

		assert_non_null(k);
		assert_true(json_equal(j, k));
		json_decref(k);
	}
	buf_free(&b);
	json_decref(j);
}

/* A row of n fields (values back to back) as the CSV parser hands it. */
struct trow {
	struct parse_row row;
	size_t fend[16];
	char data[8192];
};

static void
trow_set(struct trow *t, char *const *names, size_t n, const char *const *vals,
    const size_t *lens)
{
	size_t off = 0;

	assert_true(n <= 16);
	for (size_t i = 0; i < n; i++) {
		assert_true(off + lens[i] < sizeof t->data);
		memcpy(t->data + off, vals[i], lens[i]);
		off += lens[i];
		t->fend[i] = off;
	}
	t->row.names = names;
	t->row.n = n;
	t->row.data = t->data;
	t->row.fend = t->fend;
}

/*
 * canon_row gives what the general path gives the row's object: the same hash, the same
 * key; or -1 exactly when that path fails the record (a poisoned value, a key the rules
 * refuse). Returns canon_row's result.
 */
static int
row_agrees(const struct parse_row *row, char *const *key, char *const *fields, size_t nf,
    char *const *ex, size_t ne)
{
	struct canon_plan *pl = canon_plan_new(row->names, row->n, key, 1, fields, nf, ex, ne);
	json_t *rec = parse_row_json(row);
	char got[CANON_HASH_LEN], want[CANON_HASH_LEN], *k = NULL, *err = NULL, *why = NULL;
	const char *rk;
	size_t rklen;
	int rc, poisoned, keyed;

	assert_non_null(pl);
	poisoned = json_poison(rec, &why);
	keyed = canon_record_key(rec, key, 1, &k, &err);
	canon_hash(rec, fields, nf, ex, ne, want);
	rc = canon_row(pl, row, got, &rk, &rklen);
	if (rc == 0) {
		assert_int_equal(poisoned, 0);
		assert_int_equal(keyed, 0);
		assert_string_equal(got, want);
		assert_int_equal(rklen, strlen(k));
		assert_memory_equal(rk, k, rklen);
	} else
		assert_true(poisoned != 0 || keyed != 0);
	free(k);
	free(err);
	free(why);
	json_decref(rec);
	canon_plan_free(pl);
	return rc;
}

static void
test_row(void **state)
{
	static char *names[] = { "sku", "name", "q\"x\\", "\xc3\xa9t\xc3\xa9", "z\x01", "Zed",
	    "a.b" };
	static char *key[] = { "sku" }, *ex[] = { "name", "nope" };
	static char *fields[] = { "Zed", "sku", "missing", "sku", "q\"x\\" };
	static char *dotted[] = { "a.b" }, *twokeys[] = { "sku", "name" };
	static char *poisoned_names[] = { "sku", JSON_POISON "x" };
	const char *v[7] = { "SKU-1", "A \"quoted\", \\ name\n", "", "\xf0\x9f\x98\x80",
	    "tab\there", "\x7f", "x" };
	size_t len[7];
	char big[RECORD_KEY_MAX + 2];
	struct trow t;

	(void)state;
	for (size_t i = 0; i < 7; i++)
		len[i] = strlen(v[i]);
	trow_set(&t, names, 7, v, len);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, NULL, 0), 0);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, ex, 2), 0);
	assert_int_equal(row_agrees(&t.row, key, fields, 5, ex, 2), 0);
	assert_int_equal(row_agrees(&t.row, names + 4, fields, 2, NULL, 0), 0);
	/* a NUL inside a value is a character of the JSON string; in the key it refuses it */
	v[1] = "nul\0inside";
	len[1] = 11;
	trow_set(&t, names, 7, v, len);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, NULL, 0), 0);
	assert_int_equal(row_agrees(&t.row, names + 1, NULL, 0, NULL, 0), -1);
	/* keys the rules refuse, and a poisoned value anywhere in the row */
	assert_int_equal(row_agrees(&t.row, names + 2, NULL, 0, NULL, 0), -1);	/* empty */
	memset(big, 'k', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	v[0] = big;
	len[0] = RECORD_KEY_MAX + 1;
	trow_set(&t, names, 7, v, len);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, NULL, 0), -1);
	len[0] = RECORD_KEY_MAX;
	trow_set(&t, names, 7, v, len);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, NULL, 0), 0);
	v[0] = "SKU-1";
	len[0] = 5;
	v[5] = JSON_POISON "integer beyond 64 bits";
	len[5] = strlen(v[5]);
	trow_set(&t, names, 7, v, len);
	assert_int_equal(row_agrees(&t.row, key, NULL, 0, ex, 2), -1);
	/* what only the general path reads: a dotted path, a composite key, a poisoned name */
	assert_null(canon_plan_new(names, 7, dotted, 1, NULL, 0, NULL, 0));
	assert_null(canon_plan_new(names, 7, key, 1, dotted, 1, NULL, 0));
	assert_null(canon_plan_new(names, 7, twokeys, 2, NULL, 0, NULL, 0));
	assert_null(canon_plan_new(poisoned_names, 2, key, 1, NULL, 0, NULL, 0));
	assert_null(canon_plan_new(names, 6, names + 6, 1, NULL, 0, NULL, 0));
}

/* Rows of random values (quotes, escapes, controls, NUL, multibyte, the poison marker),
 * random fields and exclusions: canon_row and the general path always agree. */
static void
test_row_random(void **state)
{
	static const char *const atoms[] = { "a", "Z", "7", "\"", "\\", "\n", "\t", "\x01",
	    "\x1f", "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80", " ", ",",
	    JSON_POISON, "\0" };
	static char *names[] = { "id", "b", "a", "\xc3\xa9", "\"q", "A", "aa", "b\\" };
	char vals[8][64], *fields[8], *ex[8];
	const char *vp[8];
	size_t len[8], nf, ne, fails = 0;
	struct trow t;
	unsigned int seed = 12345;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		for (size_t i = 0; i < 8; i++) {
			size_t n = (size_t)rand_r(&seed) % 6;

			len[i] = 0;
			for (size_t j = 0; j < n; j++) {
				const char *a = atoms[rand_r(&seed) % NELEM(atoms)];
				size_t al = *a == '\0' ? 1 : strlen(a);

				memcpy(vals[i] + len[i], a, al);
				len[i] += al;
			}
			vp[i] = vals[i];
		}
		nf = ne = 0;
		for (size_t i = 0; i < 8; i++) {
			if (rand_r(&seed) % 4 == 0)
				fields[nf++] = names[i];
			if (rand_r(&seed) % 5 == 0)
				ex[ne++] = names[i];
		}
		trow_set(&t, names, 8, vp, len);
		if (row_agrees(&t.row, names + rand_r(&seed) % 8, fields, nf, ex, ne) != 0)
			fails++;
	}
	/* both outcomes were tried */
	assert_true(fails > 100 && fails < 19000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_form),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_exclude_fields),
		cmocka_unit_test(test_record_key),
		cmocka_unit_test(test_key_rule),
		cmocka_unit_test(test_record_key_unusable),
		cmocka_unit_test(test_storable),
		cmocka_unit_test(test_json_append),
		cmocka_unit_test(test_row),
		cmocka_unit_test(test_row_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
