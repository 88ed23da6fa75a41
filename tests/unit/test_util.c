/* test_util.c - durations, buffers, URL escaping, redaction, the string map. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

static void
test_durations(void **state)
{
	(void)state;
	assert_int_equal(parse_duration_ms("500ms"), 500);
	assert_int_equal(parse_duration_ms("30s"), 30000);
	assert_int_equal(parse_duration_ms("5m"), 300000);
	assert_int_equal(parse_duration_ms("1h"), 3600000);
	assert_int_equal(parse_duration_ms("2d"), 172800000);
	assert_int_equal(parse_duration_ms("7"), 7000);
	assert_int_equal(parse_duration_ms("0"), 0);
	assert_int_equal(parse_duration_ms(""), -1);
	assert_int_equal(parse_duration_ms("5 m"), -1);
	assert_int_equal(parse_duration_ms("-5s"), -1);
	assert_int_equal(parse_duration_ms("5x"), -1);
	assert_int_equal(parse_duration_ms("99999999999999999999s"), -1);
}

static void
test_buf(void **state)
{
	struct buf b;
	char *s;

	(void)state;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	assert_int_equal(b.len, strlen(b.data));
	assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
	buf_reset(&b);
	assert_string_equal(b.data, "");
	buf_adds(&b, "x");
	s = buf_steal(&b);
	assert_string_equal(s, "x");
	assert_null(b.data);
	free(s);
}

static void
test_url_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	url_escape(&b, "a b/c?d=é&~._-", strlen("a b/c?d=é&~._-"));
	assert_string_equal(b.data, "a%20b%2Fc%3Fd%3D%C3%A9%26~._-");
	buf_free(&b);
}

static void
test_redact(void **state)
{
	char *s;

	(void)state;
	s = redact_conninfo("host=db user=sync password=s3cret dbname=x");
	assert_string_equal(s, "host=db user=sync password=*** dbname=x");
	free(s);
	s = redact_conninfo("password='a b\\' c' host=db");
	assert_null(strstr(s, "a b"));
	assert_non_null(strstr(s, "host=db"));
	free(s);
	s = redact_conninfo("postgresql://u:pw@db/x");
	assert_string_equal(s, "postgresql://u:***@db/x");
	free(s);
	s = redact_url("https://api.example.com/x?page=2&access_token=abc&q=1");
	assert_string_equal(s, "https://api.example.com/x?page=2&access_token=***&q=1");
	free(s);
	s = redact_url("https://user:pw@h/p");
	assert_string_equal(s, "https://user:***@h/p");
	free(s);
}

static void
test_strmap(void **state)
{
	struct strmap m;
	char key[32];
	size_t it = 0, n = 0;
	const char *k;
	void *v;

	(void)state;
	strmap_init(&m);
	for (long i = 0; i < 10000; i++) {
		snprintf(key, sizeof key, "k%ld", i);
		assert_null(strmap_put(&m, key, (void *)(i + 1)));
	}
	assert_int_equal(m.n, 10000);
	for (long i = 0; i < 10000; i += 2) {
		snprintf(key, sizeof key, "k%ld", i);
		assert_ptr_equal(strmap_del(&m, key), (void *)(i + 1));
	}
	assert_int_equal(m.n, 5000);
	assert_null(strmap_get(&m, "k0"));
	assert_ptr_equal(strmap_get(&m, "k1"), (void *)2);
	assert_ptr_equal(strmap_put(&m, "k1", (void *)7), (void *)2);
	while (strmap_next(&m, &it, &k, &v))
		n++;
	assert_int_equal(n, 5000);
	strmap_free(&m, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_url_escape),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_strmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
