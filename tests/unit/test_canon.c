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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
