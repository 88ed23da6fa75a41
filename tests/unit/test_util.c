/* test_util.c - durations, buffers, URL escaping, redaction (redact.c), the string map. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/escape.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/url.h"
#include "core/strmap.h"
#include "core/util.h"

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

/* s redacted equals want. */
static void
red_is(const char *s, const char *want)
{
	char *r = redact_text(s);

	assert_string_equal(r, want);
	free(r);
}

/* conninfo ci redacted equals want. */
static void
ci_is(const char *ci, const char *want)
{
	char *r = redact_conninfo(ci);

	assert_string_equal(r, want);
	free(r);
}

static void
test_redact_conninfo_spellings(void **state)
{
	(void)state;
	secrets_reset();
	red_is("host=db password=x1 dbname=d", "host=db password=*** dbname=d");
	red_is("host=db password = x1 dbname=d", "host=db password = *** dbname=d");
	red_is("host=db password= x1 dbname=d", "host=db password= *** dbname=d");
	red_is("host=db password =x1 dbname=d", "host=db password =*** dbname=d");
	red_is("host=db\tpassword\t=\tx1", "host=db\tpassword\t=\t***");
	red_is("PASSWORD=x1", "PASSWORD=***");
	red_is("sslpassword=x1 host=h", "sslpassword=*** host=h");
	red_is("password='a b\\' c' host=db", "password='***' host=db");
	red_is("password = 'a b' host=db", "password = '***' host=db");
	/* the URI form: userinfo and a password parameter */
	red_is("postgresql://u:pw@db/x", "postgresql://u:***@db/x");
	red_is("postgres://u:p@ss@db:5/x?sslmode=off&password=x1",
	    "postgres://u:***@db:5/x?sslmode=off&password=***");
	red_is("postgresql://u@db/x", "postgresql://u@db/x");
	/* as libpq quotes it in a message */
	red_is("could not connect (host=h password = zz9) refused",
	    "could not connect (host=h password = *** refused");
	/* libpq ends a value at a blank only */
	red_is("password=a,b;c&d) host=h", "password=*** host=h");
	ci_is("host=db user=sync password = s3cret dbname=x",
	    "host=db user=sync password = *** dbname=x");
	ci_is("host=db password= 'a b\\' c' sslpassword =x,y dbname=x",
	    "host=db password= '***' sslpassword =*** dbname=x");
	/* libpq reads a backslash-escaped blank as part of the value (found by fuzz_redact) */
	ci_is("password =b\\ b host=h",
	    "password =*** host=h");
	ci_is("postgresql://u:a#b?c@h/db",
	    "postgresql://u:***@h/db");
	ci_is("postgresql://u:pw@db/x?password=p",
	    "postgresql://u:***@db/x?password=***");
	/* libpq knows no fragment: a '#' before the '?' starts nothing, one in a value is
	 * part of it (found by fuzz_redact) */
	ci_is("postgresql://h:5#x/db?password=p#q&sslmode=off",
	    "postgresql://h:5#x/db?password=***&sslmode=off");
	ci_is("postgresql://h/db#?password=p", "postgresql://h/db#?password=***");
	/* masking its own output changes nothing, though it removed the '/' that ended the
	 * userinfo the first time (found by fuzz_redact) */
	red_is("postgresql://u:a/b@c@h?:@h/x", "postgresql://u:***@h?:@h/x");
	red_is("postgresql://u:***@h?:@h/x", "postgresql://u:***@h?:@h/x");
	/* past the userinfo's first '@', a '?' starts the query, and an '@' there is a
	 * value's: the host stays what libpq reads (found by fuzz_redact) */
	ci_is("postgresql://u:pw@h:db?sslmode=off(@((((", "postgresql://u:***@h:db?sslmode=off(@((((");
	ci_is("postgresql://u:pw@h?application_name=me@host",
	    "postgresql://u:***@h?application_name=me@host");
	ci_is("postgresql://u:p?w@h/db", "postgresql://u:***@h/db");
	/* a '?' in libpq's userinfo (up to the first '@' before a '/') starts no query: the
	 * user's name stays whole (found by fuzz_redact) */
	ci_is("postgres://httpsX a-1? sid=@h:5/db?sid=x", "postgres://httpsX a-1? sid=@h:5/db?sid=***");
	ci_is("postgresql://u?sid=@h", "postgresql://u?sid=@h");
	/* blanks before a name are not part of it, however many; a name's word however long
	 * (found by fuzz_redact) */
	ci_is("host=db user=u \n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
	    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
	    "password = s3cret dbname=x", "host=db user=u \n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
	    "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"
	    "\n\n\n\n\n\n\n\n\n\n\n\n\n\npassword = *** dbname=x");
	red_is("x=1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaapassword=s3cret y",
	    "x=1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaapassword=*** y");
	/* a parameter's name as the server reads it, percent-decoded */
	red_is("https://h/x?pass%77ord=p&a=1", "https://h/x?pass%77ord=***&a=1");
	red_is("https://h/x?api+key=p", "https://h/x?api+key=***");
}

static void
test_redact_urls_and_headers(void **state)
{
	(void)state;
	secrets_reset();
	red_is("GET https://h/x?page=2&access_token=abc&q=1: 500",
	    "GET https://h/x?page=2&access_token=***&q=1: 500");
	red_is("https://user:pw@h/p?api_key=k#frag", "https://user:***@h/p?api_key=***");
	red_is("postgresql://h/db?password=a#b&sslmode=off", "postgresql://h/db?password=***&sslmode=off");
	/* a fragment carries tokens too; libpq reads '#' as part of a value */
	red_is("https://h/cb#access_token=abc&state=1", "https://h/cb#access_token=***&state=1");
	red_is("postgresql://u@h/db?sslmode=off#&password=x", "postgresql://u@h/db?sslmode=off#&password=***");
	red_is("x ftp://u:secret@h/f.csv y", "x ftp://u:***@h/f.csv y");
	red_is("\"https://h/?Signature=s&X-Amz-Credential=c\"",
	    "\"https://h/?Signature=***&X-Amz-Credential=***\"");
	red_is("https://h/?x-my-param=v", "https://h/?x-my-param=v");
	secrets_add_name("x-my-param");
	red_is("https://h/?x-my-param=v&b=1", "https://h/?x-my-param=***&b=1");
	red_is("sent Authorization: Bearer abc.def\nnext", "sent Authorization: ***\nnext");
	red_is("proxy-authorization:Basic dTpw", "proxy-authorization:***");
	red_is("Cookie: sid=1; other=2", "Cookie: ***");
	red_is("{\"Authorization\": \"Bearer t\", \"a\": 1}",
	    "{\"Authorization\": \"***\", \"a\": 1}");
	/* JSON bodies: credential names hidden, JSON kept valid, the rest untouched */
	red_is("{\"error\":\"bad\",\"access_token\":\"t0k\",\"n\":{\"password\":12}}",
	    "{\"error\":\"bad\",\"access_token\":\"***\",\"n\":{\"password\":\"***\"}}");
	red_is("api_key=abc, next", "api_key=*** next");
	/* names that only look alike stay */
	red_is("key=12 author=me tokens left 3", "key=12 author=me tokens left 3");
	red_is("password authentication failed for user \"u\"",
	    "password authentication failed for user \"u\"");
	/* credential names match as words, not as substrings */
	red_is("https://h/?_sort_key=updatedAt&_author=name-1&monkey=m1&keyword=k1",
	    "https://h/?_sort_key=updatedAt&_author=name-1&monkey=m1&keyword=k1");
	red_is("https://h/?api_key=1&apiKey=2&x-api-key=3&XApiKey=4&key=5&auth=6&_sig=7",
	    "https://h/?api_key=***&apiKey=***&x-api-key=***&XApiKey=***&key=***&auth=***&_sig=***");
	red_is("https://h/?pwd=1&pass=2&jwt=3&sid=4&session=5&bearer=6&credential=7&userPassword=8",
	    "https://h/?pwd=***&pass=***&jwt=***&sid=***&session=***&bearer=***&credential=***"
	    "&userPassword=***");
	red_is("sort_key=a primary_key=b accessKey=c", "sort_key=a primary_key=b accessKey=***");
	secrets_reset();
}

static void
test_redact_words_and_json(void **state)
{
	json_t *v;
	char *s;

	(void)state;
	secrets_reset();
	/* a literal value of a parameter whose name only contains a credential word is no
	 * secret: "updatedAt" must not be masked everywhere afterwards */
	secrets_learn_url("https://h/x?_sort_key=updatedAt&_author=name-1&api_key=real-key-1");
	secrets_learn_param("_sort_key", "updatedAt2");
	red_is("updatedAt name-1 updatedAt2 real-key-1", "updatedAt name-1 updatedAt2 ***");
	/* a secret equal to a key or to digits of a number: the document stays JSON, keys and
	 * numbers kept; string values and credential-named members masked */
	secrets_add("delivered");
	secrets_add("105601");
	v = json_pack("{si sf ss ss s{ss} s[s]}", "delivered", 3, "duration_s", 0.105601,
	    "error", "x delivered y", "password_hash", "h", "rec", "apiKey", "k",
	    "list", "105601");
	redact_json(v);
	s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
	assert_string_equal(s, "{\"delivered\":3,\"duration_s\":0.105601,\"error\":"
	    "\"x *** y\",\"list\":[\"***\"],\"password_hash\":\"***\","
	    "\"rec\":{\"apiKey\":\"***\"}}");
	free(s);
	json_decref(v);
	secrets_reset();
}

static void
test_redact_userinfo_and_literals(void **state)
{
	(void)state;
	secrets_reset();
	/* a user with no (or an empty) password is the credential: hidden whole */
	red_is("GET http://sk_live_ZQ1234:@h/x: 401", "GET http://***@h/x: 401");
	red_is("https://ghp_ZQtoken99@h/x", "https://***@h/x");
	red_is("https://u:pw@h/x", "https://u:***@h/x");
	red_is("https://h/x?a=b@c", "https://h/x?a=b@c");
	/* a raw '/' in a password: hidden up to the last '@' before the query */
	red_is("postgresql://postgres:ZQsl/ash999@127.0.0.1/x?port=1",
	    "postgresql://postgres:***@127.0.0.1/x?port=1");
	red_is("curl: http://u:ZQsl/ashHTTP9@h/p?q=1", "curl: http://u:***@h/p?q=1");
	/* learnt: the user-as-token, the password with a '/', base64(user:password) */
	secrets_learn_url("https://ghp_ZQlearn77@h/x");
	secrets_learn_url("http://u:ZQsl/ash999@h/p");
	secrets_learn_url("sftp://user:ZQpass1234@h/f.csv");
	red_is("ghp_ZQlearn77 ZQsl/ash999", "*** ***");
	/* "Basic " + base64("user:ZQpass1234"), base64("ghp_ZQlearn77:") */
	red_is("Basic dXNlcjpaUXBhc3MxMjM0 Z2hwX1pRbGVhcm43Nzo=", "Basic *** ***");
	secrets_learn_basic("fileuser", "ZQfilepw55");
	red_is("ZmlsZXVzZXI6WlFmaWxlcHc1NQ==", "***");
	/* every configured header's value, not only Authorization's; literals next to a
	 * placeholder; the scheme word alone is no secret */
	secrets_learn_header("X-Custom-Thing: ZQcustomHDR999");
	secrets_learn_header("Cookie: sid=ZQcookieLIT77; t={{env:X}}");
	secrets_learn_header("Authorization: Bearer {{secret:t}}");
	secrets_learn_header("Accept: application/json");
	red_is("{\"echo\":\"ZQcustomHDR999 ZQcookieLIT77\"} Bearer application/json",
	    "{\"echo\":\"*** ***\"} Bearer application/json");
	/* a ':' inside a placeholder is no header name */
	secrets_learn_header("{{secret:token}}");
	red_is("{{secret:token}}: x", "{{secret:token}}: x");
	/* a body's literal values under credential names */
	secrets_learn_body("{\"id\": {{key}}, \"key\": \"ZQbodyKEY1234\", "
	    "\"apiKey\": \"pre-{{env:X}}-ZQpost5678\", \"name\": \"plain-value\"}");
	red_is("ZQbodyKEY1234 x-ZQpost5678 plain-value", "*** x*** plain-value");
	secrets_learn_value("ZQfilepass42");
	red_is("ZQfilepass42", "***");
	/* a raw '#' or '?' in a password (which -t refuses): hidden up to the '@' */
	red_is("GET http://u:ab#cdSecr12@127.0.0.1:1/api/src: curl error 3",
	    "GET http://u:***@127.0.0.1:1/api/src: curl error 3");
	secrets_learn_url("http://u:ab?cdSecr34@h/x");
	red_is("ab?cdSecr34", "***");
	/* a placeholder as the user: the literal password is learnt; a placeholder as the
	 * password: the rendered URL gives base64(user:password) */
	secrets_learn_url("http://{{env:U}}:LitPass9876@h/x");
	red_is("*** / LitPass9876", "*** / ***");
	assert_true(secrets_literal_learnt());
	secrets_learn_rendered_url("http://u:S3cretValue!@h/x");
	red_is("basic=dTpTM2NyZXRWYWx1ZSE=", "basic=***");
	secrets_reset();
}

/* An answer repeating a long secret: masked whole before the cut, never a piece of it. */
static void
test_redact_excerpt_long(void **state)
{
	const char *tok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789ABCD";
	struct buf b;
	char *r;

	(void)state;
	secrets_reset();
	secrets_add(tok);
	buf_init(&b);
	for (int i = 0; i < 200; i++)
		buf_adds(&b, tok);
	r = redact_excerpt(b.data, b.len, 200);
	assert_null(strstr(r, "ABCDEFGHIJKL"));
	assert_true(strlen(r) <= 200);
	free(r);
	buf_free(&b);
	secrets_reset();
}

/* Tokens held for a while: masked while held, not once the last holder forgot them; a
 * value also added for good stays; the registry does not grow with tokens replaced. */
static void
test_redact_hold(void **state)
{
	char t[32];

	(void)state;
	secrets_reset();
	secrets_hold("at-1-tokenvalue");
	secrets_hold("at-1-tokenvalue");
	red_is("Bearer at-1-tokenvalue", "Bearer ***");
	secrets_forget("at-1-tokenvalue");
	red_is("Bearer at-1-tokenvalue", "Bearer ***");
	secrets_forget("at-1-tokenvalue");
	red_is("x at-1-tokenvalue", "x at-1-tokenvalue");
	secrets_add("pinned-secret");
	secrets_hold("pinned-secret");
	secrets_forget("pinned-secret");
	secrets_forget("pinned-secret");
	red_is("x pinned-secret", "x ***");
	/* 10,000 tokens held then forgotten in turn: only the last one is masked, the one
	 * before it is not (it was forgotten) */
	for (int i = 0; i < 10000; i++) {
		snprintf(t, sizeof t, "tok/%05d/value", i);
		secrets_hold(t);
		if (i > 0) {
			snprintf(t, sizeof t, "tok/%05d/value", i - 1);
			secrets_forget(t);
		}
	}
	red_is("a tok/09999/value b tok/09998/value", "a *** b tok/09998/value");
	secrets_reset();
}

static void
test_redact_registry(void **state)
{
	char *s;

	(void)state;
	secrets_reset();
	secrets_add("canary-S3cr3t/+");
	red_is("echo: canary-S3cr3t/+ and again canary-S3cr3t/+",
	    "echo: *** and again ***");
	/* as a URL carries it (upper and lower hex), and as JSON holds it */
	red_is("GET /x?q=canary-S3cr3t%2F%2B", "GET /x?q=***");
	red_is("GET /x?q=canary-S3cr3t%2f%2b", "GET /x?q=***");
	/* in every JSON escaping a server may choose: PHP's \/, Go's \u0026, Python's
	 * \u00e9, a surrogate pair, upper-case hex */
	secrets_add("ZQ/sl&amp<\xc3\xa9>\xf0\x9f\x94\x91");
	red_is("{\"e\":\"ZQ\\/sl&amp<\xc3\xa9>\xf0\x9f\x94\x91\"}", "{\"e\":\"***\"}");
	red_is("{\"e\":\"ZQ/sl\\u0026amp\\u003c\xc3\xa9\\u003e\xf0\x9f\x94\x91\"}",
	    "{\"e\":\"***\"}");
	red_is("{\"e\":\"ZQ/sl&amp<\\u00e9>\\ud83d\\udd11\"}", "{\"e\":\"***\"}");
	red_is("{\"e\":\"ZQ\\/sl\\u0026amp\\u003C\\u00E9\\u003E\\uD83D\\uDD11\"}",
	    "{\"e\":\"***\"}");
	secrets_add("tab\"quote\\");
	red_is("{\"m\":\"tab\\\"quote\\\\\"}", "{\"m\":\"***\"}");
	/* a secret that holds another is hidden whole */
	secrets_add("canary-S3cr3t/+-longer");
	red_is("canary-S3cr3t/+-longer", "***");
	/* short values are not masked as substrings (below SECRETS_MIN)... */
	secrets_add("ab1");
	red_is("tab1e ab1", "tab1e ab1");
	/* ...but patterns still hide them */
	red_is("password=ab1", "password=***");
	/* literal configuration credentials */
	secrets_reset();
	secrets_learn_url("https://u:Pass%40word1@h/x?access_token=LITERAL-TOK&page={{page}}");
	red_is("LITERAL-TOK Pass@word1 Pass%40word1", "*** *** ***");
	secrets_learn_url("https://h/x?access_token=pre{{env:X}}");
	red_is("pre{{env:X}}", "pre{{env:X}}");
	secrets_learn_conninfo("host=h password = conn-pw-9");
	secrets_learn_conninfo("postgresql://u:uri-pw-9@h/db");
	red_is("conn-pw-9 uri-pw-9", "*** ***");
	secrets_learn_header("Authorization: Bearer hdr-tok-9");
	secrets_learn_header("Accept: text/plain-long");
	red_is("hdr-tok-9 text/plain-long", "*** text/plain-long");
	secrets_learn_param("api_key", "param-val-9");
	secrets_learn_param("page", "page-val-9");
	red_is("param-val-9 page-val-9", "*** page-val-9");
	s = redact_text_free(xstrdup("x conn-pw-9"));
	assert_string_equal(s, "x ***");
	free(s);
	secrets_reset();
}

static void
test_escape_controls(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	buf_adds(&b, "");
	escape_controls(&b, "k\n<3>forged\r\t\x01\x7f\\n \xc2\x85 \xe2\x80\xa8 \xc3\xa9");
	assert_string_equal(b.data,
	    "k\\n<3>forged\\r\\t\\x01\\x7f\\n \\u0085 \\u2028 \xc3\xa9");
	assert_null(strchr(b.data, '\n'));
	/* not UTF-8 (a stray byte, 8-bit CSI, overlong NUL, a surrogate, cut short), a C1
	 * CSI, a right-to-left override and a zero-width space; the rest stays as it is */
	buf_free(&b);
	buf_init(&b);
	buf_adds(&b, "");
	escape_controls(&b, "a\xff\x9b[31m \xc0\x80 \xed\xa0\x80 \xc2\x9b \xe2\x80\xaeRTL "
	    "\xe2\x80\x8bz \xf0\x9f\x98\x80 \xe2\x80");
	assert_string_equal(b.data, "a\\xff\\x9b[31m \\xc0\\x80 \\xed\\xa0\\x80 \\u009b "
	    "\\u202eRTL \\u200bz \xf0\x9f\x98\x80 \\xe2\\x80");
	buf_free(&b);
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
		cmocka_unit_test(test_redact_conninfo_spellings),
		cmocka_unit_test(test_redact_urls_and_headers),
		cmocka_unit_test(test_redact_registry),
		cmocka_unit_test(test_redact_hold),
		cmocka_unit_test(test_redact_words_and_json),
		cmocka_unit_test(test_redact_userinfo_and_literals),
		cmocka_unit_test(test_redact_excerpt_long),
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_strmap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
