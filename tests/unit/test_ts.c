/* test_ts.c - timestamps: formats, offsets, fractions, ordering, epoch values. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "record/ts.h"

static struct ts
parse(const char *s, enum ts_format f)
{
	struct ts	t;

	if (ts_parse(s, f, &t) != 0)
		fail_msg("cannot parse '%s'", s);
	return t;
}

/* Parse, then format as RFC 3339 UTC. */
static void
assert_utc(const char *in, const char *want)
{
	char	*s = ts_format(parse(in, TS_RFC3339), TS_RFC3339);

	if (strcmp(s, want) != 0)
		fail_msg("'%s' formats as '%s', want '%s'", in, s, want);
	free(s);
}

static void
test_rfc3339_forms(void **state)
{
	struct ts	t;

	t = parse("1970-01-01T00:00:00Z", TS_RFC3339);
	assert_int_equal(t.sec, 0);
	assert_int_equal(t.nsec, 0);
	t = parse("2024-03-01T12:34:56Z", TS_RFC3339);
	assert_int_equal(t.sec, 1709296496);
	/* lower-case t/z, space separator, date only, no offset = UTC */
	assert_int_equal(parse("2024-03-01t12:34:56z", TS_RFC3339).sec, 1709296496);
	assert_int_equal(parse("2024-03-01 12:34:56Z", TS_RFC3339).sec, 1709296496);
	assert_int_equal(parse("2024-03-01 12:34:56", TS_RFC3339).sec, 1709296496);
	assert_int_equal(parse("2024-03-01", TS_RFC3339).sec, 1709251200);
	/* before the epoch and leap days */
	assert_int_equal(parse("1969-12-31T23:59:59Z", TS_RFC3339).sec, -1);
	assert_int_equal(parse("2000-02-29T00:00:00Z", TS_RFC3339).sec, 951782400);
	assert_int_equal(parse("1900-03-01T00:00:00Z", TS_RFC3339).sec, -2203891200LL);
	assert_utc("2024-02-29T23:59:59Z", "2024-02-29T23:59:59Z");
	assert_utc("9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z");
	assert_utc("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z");
}

static void
test_rfc3339_offsets(void **state)
{
	assert_utc("2024-03-01T12:34:56+02:00", "2024-03-01T10:34:56Z");
	assert_utc("2024-03-01T12:34:56+0200", "2024-03-01T10:34:56Z");
	assert_utc("2024-03-01T12:34:56-05:30", "2024-03-01T18:04:56Z");
	assert_utc("2024-03-01T01:00:00+05:00", "2024-02-29T20:00:00Z");
	assert_utc("2023-12-31T23:30:00-01:00", "2024-01-01T00:30:00Z");
	assert_utc("2024-03-01T12:34:56+00:00", "2024-03-01T12:34:56Z");
	assert_utc("2024-03-01T12:34:56-00:00", "2024-03-01T12:34:56Z");
}

static void
test_rfc3339_fractions(void **state)
{
	static const struct { const char *in; int32_t ns; const char *out; } c[] = {
		{ "2024-03-01T12:34:56Z", 0, "2024-03-01T12:34:56Z" },
		{ "2024-03-01T12:34:56.1Z", 100000000, "2024-03-01T12:34:56.100Z" },
		{ "2024-03-01T12:34:56.12Z", 120000000, "2024-03-01T12:34:56.120Z" },
		{ "2024-03-01T12:34:56.123Z", 123000000, "2024-03-01T12:34:56.123Z" },
		{ "2024-03-01T12:34:56.1234Z", 123400000, "2024-03-01T12:34:56.123400Z" },
		{ "2024-03-01T12:34:56.12345Z", 123450000, "2024-03-01T12:34:56.123450Z" },
		{ "2024-03-01T12:34:56.123456Z", 123456000, "2024-03-01T12:34:56.123456Z" },
		{ "2024-03-01T12:34:56.1234567Z", 123456700,
		  "2024-03-01T12:34:56.123456700Z" },
		{ "2024-03-01T12:34:56.12345678Z", 123456780,
		  "2024-03-01T12:34:56.123456780Z" },
		{ "2024-03-01T12:34:56.123456789Z", 123456789,
		  "2024-03-01T12:34:56.123456789Z" },
		/* beyond 9 digits: truncated, not rounded */
		{ "2024-03-01T12:34:56.1234567899Z", 123456789,
		  "2024-03-01T12:34:56.123456789Z" },
		{ "2024-03-01T12:34:56.000000001+01:00", 1,
		  "2024-03-01T11:34:56.000000001Z" },
		{ "2024-03-01T12:34:56,5Z", 500000000, "2024-03-01T12:34:56.500Z" },
		{ "2024-03-01T12:34:56.000Z", 0, "2024-03-01T12:34:56Z" },
	};
	size_t	i;

	for (i = 0; i < sizeof c / sizeof c[0]; i++) {
		assert_int_equal(parse(c[i].in, TS_RFC3339).nsec, c[i].ns);
		assert_utc(c[i].in, c[i].out);
	}
}

static void
test_ordering(void **state)
{
	/* 10:00+02:00 is 08:00Z, earlier than 09:00Z though it reads later. */
	struct ts	a = parse("2024-03-01T10:00:00+02:00", TS_RFC3339);
	struct ts	b = parse("2024-03-01T09:00:00Z", TS_RFC3339);
	struct ts	c = parse("2024-03-01T08:00:00.000000001Z", TS_RFC3339);
	struct ts	d = parse("2024-03-01T03:00:00-05:00", TS_RFC3339);

	assert_true(ts_cmp(a, b) < 0);
	assert_true(ts_cmp(b, a) > 0);
	assert_true(ts_cmp(a, c) < 0);		/* one nanosecond */
	assert_int_equal(ts_cmp(a, d), 0);	/* same instant, other offsets */
	assert_int_equal(ts_cmp(parse("2024-03-01T12:00:00.5Z", TS_RFC3339),
	    parse("2024-03-01T12:00:00.500000000Z", TS_RFC3339)), 0);
	assert_true(ts_cmp(parse("2024-03-01T12:00:00.49999Z", TS_RFC3339),
	    parse("2024-03-01T12:00:00.5Z", TS_RFC3339)) < 0);
}

static void
test_malformed(void **state)
{
	static const char *bad[] = {
		"", "2024", "2024-03", "2024-3-01T00:00:00Z", "2024-03-01T", "2024-03-01T12:34Z",
		"2024-03-01T12:34:56ZZ", "2024-03-01T12:34:56+2", "2024-03-01T12:34:56+02:",
		"2024-03-01T12:34:56.Z", "2024-13-01T00:00:00Z", "2024-00-01T00:00:00Z",
		"2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-03-01T24:00:00Z",
		"2024-03-01T12:60:00Z", "2024-03-01T12:00:61Z", "2024-03-01T12:00:00+24:00",
		"2024-03-01X12:00:00Z", " 2024-03-01T12:00:00Z", "2024-03-01T12:00:00Z ",
		"1709296496", "yesterday", "2024-03-01T12:00:00+02:60",
	};
	struct ts	t;
	size_t		i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ts_parse(bad[i], TS_RFC3339, &t) == 0)
			fail_msg("'%s' parsed", bad[i]);
	}
	assert_int_equal(ts_parse("12a", TS_EPOCH, &t), -1);
	assert_int_equal(ts_parse("", TS_EPOCH, &t), -1);
	assert_int_equal(ts_parse("1.", TS_EPOCH, &t), -1);
	assert_int_equal(ts_parse("1e9", TS_EPOCH, &t), -1);
	assert_int_equal(ts_parse("2024-03-01T12:00:00Z", TS_EPOCH_MS, &t), -1);
	assert_int_equal(ts_parse("99999999999999999999999", TS_EPOCH, &t), -1);
}

static void
test_epoch(void **state)
{
	struct ts	t;

	t = parse("1709296496", TS_EPOCH);
	assert_int_equal(t.sec, 1709296496);
	assert_int_equal(t.nsec, 0);
	t = parse("1709296496.25", TS_EPOCH);
	assert_int_equal(t.sec, 1709296496);
	assert_int_equal(t.nsec, 250000000);
	t = parse("-1.5", TS_EPOCH);
	assert_int_equal(t.sec, -2);
	assert_int_equal(t.nsec, 500000000);
	t = parse("1709296496123", TS_EPOCH_MS);
	assert_int_equal(t.sec, 1709296496);
	assert_int_equal(t.nsec, 123000000);
	t = parse("-1", TS_EPOCH_MS);
	assert_int_equal(t.sec, -1);
	assert_int_equal(t.nsec, 999000000);
	/* epoch and RFC 3339 agree */
	assert_int_equal(ts_cmp(parse("1709296496.123", TS_EPOCH),
	    parse("2024-03-01T12:34:56.123Z", TS_RFC3339)), 0);
	assert_int_equal(ts_cmp(parse("1709296496123", TS_EPOCH_MS),
	    parse("2024-03-01T13:34:56.123+01:00", TS_RFC3339)), 0);
}

static void
test_from_json(void **state)
{
	struct ts	 t;
	char		*text;
	json_t		*v;

	v = json_string("2024-03-01T12:34:56.5+01:00");
	assert_int_equal(ts_from_json(v, TS_RFC3339, &t, &text), 0);
	assert_string_equal(text, "2024-03-01T12:34:56.5+01:00");	/* the source's own */
	assert_int_equal(t.sec, 1709292896);
	free(text);
	json_decref(v);

	v = json_integer(1709296496123LL);
	assert_int_equal(ts_from_json(v, TS_EPOCH_MS, &t, &text), 0);
	assert_string_equal(text, "1709296496123");
	assert_int_equal(t.nsec, 123000000);
	free(text);
	assert_int_equal(ts_from_json(v, TS_RFC3339, &t, &text), -1);
	assert_null(text);
	json_decref(v);

	v = json_real(1709296496.25);
	assert_int_equal(ts_from_json(v, TS_EPOCH, &t, &text), 0);
	assert_string_equal(text, "1709296496.25");
	assert_int_equal(t.sec, 1709296496);
	assert_int_equal(t.nsec, 250000000);
	free(text);
	json_decref(v);

	v = json_string("1709296496");
	assert_int_equal(ts_from_json(v, TS_EPOCH, &t, &text), 0);
	assert_int_equal(t.sec, 1709296496);
	free(text);
	json_decref(v);

	v = json_true();
	assert_int_equal(ts_from_json(v, TS_EPOCH, &t, &text), -1);
	v = json_string("not a time");
	assert_int_equal(ts_from_json(v, TS_RFC3339, &t, &text), -1);
	assert_null(text);
	json_decref(v);
}

static void
test_arith_format(void **state)
{
	struct ts	 t = parse("2024-03-01T00:00:00.250Z", TS_RFC3339), u;
	char		*s;

	u = ts_sub_ms(t, 500);
	s = ts_format(u, TS_RFC3339);
	assert_string_equal(s, "2024-02-29T23:59:59.750Z");
	free(s);
	u = ts_sub_ms(t, 120000);
	s = ts_format(u, TS_RFC3339);
	assert_string_equal(s, "2024-02-29T23:58:00.250Z");
	free(s);
	assert_int_equal(ts_cmp(ts_from_ns(ts_ns(t)), t), 0);
	u = ts_from_ns(-1);
	assert_int_equal(u.sec, -1);
	assert_int_equal(u.nsec, 999999999);
	/* epoch formats are integers, floored */
	s = ts_format(u, TS_EPOCH);
	assert_string_equal(s, "-1");
	free(s);
	s = ts_format(parse("1709296496.999", TS_EPOCH), TS_EPOCH);
	assert_string_equal(s, "1709296496");
	free(s);
	s = ts_format(parse("1709296496123", TS_EPOCH_MS), TS_EPOCH_MS);
	assert_string_equal(s, "1709296496123");
	free(s);
	u.sec = INT64_MAX / 2;
	u.nsec = 0;
	assert_true(ts_ns(u) == INT64_MAX);
}

static void
test_format_names(void **state)
{
	enum ts_format	f;

	assert_int_equal(ts_format_parse("rfc3339", &f), 0);
	assert_int_equal(f, TS_RFC3339);
	assert_int_equal(ts_format_parse("epoch", &f), 0);
	assert_int_equal(f, TS_EPOCH);
	assert_int_equal(ts_format_parse("epoch_ms", &f), 0);
	assert_int_equal(f, TS_EPOCH_MS);
	assert_int_equal(ts_format_parse("unix", &f), -1);
}

/* The precision a bound was written with (the filter guard of modified.sorted compares at
 * it when it is coarser than a second). */
static void
test_text_unit(void **state)
{
	assert_true(ts_text_unit_ns("2026-01-01", TS_RFC3339) == 86400LL * 1000000000LL);
	assert_true(ts_text_unit_ns("2026-01-01T00:00:01Z", TS_RFC3339) == 1000000000LL);
	assert_true(ts_text_unit_ns("2026-01-01T00:00:01.5Z", TS_RFC3339) == 100000000LL);
	assert_true(ts_text_unit_ns("2026-01-01 00:00:01,123+02:00", TS_RFC3339) == 1000000LL);
	assert_true(ts_text_unit_ns("2026-01-01T00:00:01.123456789123Z", TS_RFC3339) == 1);
	assert_true(ts_text_unit_ns("1767225601", TS_EPOCH) == 1000000000LL);
	assert_true(ts_text_unit_ns("1767225601.25", TS_EPOCH) == 10000000LL);
	assert_true(ts_text_unit_ns("1767225601000", TS_EPOCH_MS) == 1000000LL);
	assert_true(ts_text_unit_ns("1767225601000.5", TS_EPOCH_MS) == 100000LL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_forms),
		cmocka_unit_test(test_rfc3339_offsets),
		cmocka_unit_test(test_rfc3339_fractions),
		cmocka_unit_test(test_ordering),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_epoch),
		cmocka_unit_test(test_from_json),
		cmocka_unit_test(test_arith_format),
		cmocka_unit_test(test_format_names),
		cmocka_unit_test(test_text_unit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
