/* test_tmpl.c - templates: compile errors, escaping per place, missing values, secrets. */
#include <sys/stat.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "record/tmpl.h"
#include "record/tmpl_compile.h"
#include "record/json.h"

static char	secrets[] = "/tmp/onesync-tmpl-XXXXXX";

static struct tmpl *
ok(const char *src, enum tmpl_place place, unsigned allowed)
{
	struct tmpl	*t;
	char		*err;

	if ((t = tmpl_compile(src, place, allowed, secrets, &err)) == NULL)
		fail_msg("'%s' does not compile: %s", src, err);
	assert_null(err);
	return t;
}

/* Compile must fail with a message containing want. */
static void
bad(const char *src, enum tmpl_place place, unsigned allowed, const char *want)
{
	struct tmpl	*t;
	char		*err = NULL;

	t = tmpl_compile(src, place, allowed, secrets, &err);
	if (t != NULL)
		fail_msg("'%s' compiled", src);
	assert_non_null(err);
	if (strstr(err, want) == NULL)
		fail_msg("'%s': error '%s' lacks '%s'", src, err, want);
	free(err);
}

/* Render, expecting return r and (when r == 0) output want. */
static void
render(const struct tmpl *t, const struct tmpl_vals *v, bool redact, int r,
    const char *want)
{
	struct buf	 b;
	char		*err;
	int		 got;

	buf_init(&b);
	buf_adds(&b, "<");
	got = tmpl_render(t, v, redact, &b, &err);
	if (got != r)
		fail_msg("'%s' rendered %d, want %d (%s)", tmpl_source(t), got, r,
		    err != NULL ? err : "no error");
	if (r == 0)
		assert_string_equal(b.data + 1, want);
	else {
		assert_string_equal(b.data, "<");	/* nothing appended */
		if (r == -1) {
			assert_non_null(err);
			if (want != NULL && strstr(err, want) == NULL)
				fail_msg("error '%s' lacks '%s'", err, want);
		} else
			assert_null(err);
	}
	free(err);
	buf_free(&b);
}

static json_t *
load(const char *s)
{
	json_t	*j = json_loads(s, 0, NULL);

	assert_non_null(j);
	return j;
}

/* A file in the secrets directory. */
static int
put(const char *name, const char *text)
{
	FILE	*f;
	char	 path[128];

	snprintf(path, sizeof path, "%s/%s", secrets, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int
setup(void **state)
{
	char	 path[128];

	if (mkdtemp(secrets) == NULL)
		return -1;
	/* a line break inside, trailing line breaks (more than one), nothing but them */
	if (put("token", "s3cr3t/+x\n") == -1 || put("crlf", "a\r\nInjected: yes") == -1 ||
	    put("nl2", "n2-s3cr3t\n\r\n\n") == -1 || put("blank", "\n\n") == -1 ||
	    put("ww", "ww-s3cr3t") == -1 || put("ctl", "a\x01b") == -1)
		return -1;
	snprintf(path, sizeof path, "%s/ww", secrets);
	if (chmod(path, 0666) == -1)
		return -1;
	snprintf(path, sizeof path, "%s/fifo", secrets);
	if (mkfifo(path, 0600) == -1)
		return -1;
	snprintf(path, sizeof path, "%s/zero", secrets);
	if (symlink("/dev/zero", path) == -1)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char	path[128];

	snprintf(path, sizeof path, "%s/token", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/crlf", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/nl2", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/blank", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/ww", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/ctl", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/fifo", secrets);
	unlink(path);
	snprintf(path, sizeof path, "%s/zero", secrets);
	unlink(path);
	rmdir(secrets);
	return 0;
}

static void
test_compile_errors(void **state)
{
	bad("http://x/{{nope}}", TMPL_URL, TV_READ, "unknown placeholder {{nope}}");
	bad("http://x/{{ record. }}", TMPL_URL, TV_WRITE, "unknown placeholder {{record.}}");
	bad("http://x/{{}}", TMPL_URL, TV_READ, "unknown placeholder {{}}");
	bad("http://x/{{key}}", TMPL_URL, TV_READ, "placeholder {{key}} is not valid here");
	bad("{{dest.id}}", TMPL_BODY, TV_WRITE, "placeholder {{dest.id}} is not valid here");
	bad("http://x/{{key", TMPL_URL, TV_WRITE, "unclosed '{{' at column 10");
	bad("a {{key}} {{", TMPL_HEADER, TV_WRITE, "unclosed '{{' at column 11");
	bad("{{secret:missing}}", TMPL_HEADER, TV_SECRET, "cannot read secret 'missing'");
	bad("{{secret:../etc}}", TMPL_HEADER, TV_SECRET, "plain file name");
	bad("{{secret:..}}", TMPL_HEADER, TV_SECRET, "plain file name");
	bad("{{secret:crlf}}", TMPL_HEADER, TV_SECRET, "line break");
	bad("X-A: a\x01b {{key}}", TMPL_HEADER, TV_WRITE, "the header contains a control "
	    "character");
	bad("X-A: a\nX-B: b", TMPL_HEADER, TV_WRITE, "the header contains a line break");
	/* what the file is, not "Invalid argument" (it is not read: a FIFO would wait) */
	bad("{{secret:fifo}}", TMPL_HEADER, TV_SECRET, "cannot read secret 'fifo' in /tmp/"
	    "onesync-tmpl-");
	bad("{{secret:fifo}}", TMPL_HEADER, TV_SECRET, ": it is a FIFO, not a regular file");
	bad("{{secret:zero}}", TMPL_HEADER, TV_SECRET, ": it is a character device, not a "
	    "regular file");
	bad("{{secret:ctl}}", TMPL_HEADER, TV_SECRET, "{{secret:ctl}}: the value contains a "
	    "control character, which cannot go in a header");
	setenv("ONESYNC_TEST_CTL", "a\x7f", 1);
	bad("{{env:ONESYNC_TEST_CTL}}", TMPL_HEADER, TV_ENV, "control character");
	bad("{{env:ONESYNC_SURELY_UNSET_VAR}}", TMPL_URL, TV_ENV, "is not set");
	bad("{{env:1BAD}}", TMPL_URL, TV_ENV, "not a valid environment variable name");
	/* a credential left out by mistake: an empty value, alike from a file or the
	 * environment; a secret anyone may change */
	bad("{{secret:blank}}", TMPL_HEADER, TV_SECRET, "is empty");
	setenv("ONESYNC_TEST_EMPTY_VAR", "", 1);
	bad("{{env:ONESYNC_TEST_EMPTY_VAR}}", TMPL_URL, TV_ENV, "is empty");
	bad("{{secret:ww}}", TMPL_HEADER, TV_SECRET, "writable by every user");
	bad("{\"a\": {{record}},}", TMPL_BODY, TV_WRITE, "not valid JSON");
	bad("{\"a\": \"{{key}}}", TMPL_BODY, TV_WRITE, "not valid JSON");
}

static void
test_uses(void **state)
{
	struct tmpl	*t;

	t = ok("http://x/{{ page }}?o={{offset}}&{{watermark}}", TMPL_URL, TV_READ);
	assert_int_equal(tmpl_uses(t), TV_PAGE | TV_OFFSET | TV_WATERMARK);
	assert_false(tmpl_has_secret(t));
	assert_string_equal(tmpl_source(t), "http://x/{{ page }}?o={{offset}}&{{watermark}}");
	tmpl_free(t);
	t = ok("Bearer {{secret:token}}", TMPL_HEADER, TV_READ);
	assert_true(tmpl_has_secret(t));
	assert_int_equal(tmpl_uses(t), TV_SECRET);
	tmpl_free(t);
	{
		struct tmpl_vals v = { 0 };

		t = ok("[{{secret:nl2}}]", TMPL_HEADER, TV_READ);
		render(t, &v, false, 0, "[n2-s3cr3t]");	/* every trailing CR/LF trimmed */
		tmpl_free(t);
	}
	t = ok("no placeholders } {", TMPL_URL, 0);
	assert_int_equal(tmpl_uses(t), 0);
	tmpl_free(t);
}

static void
test_url(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	v.have = TV_KEY | TV_PAGE | TV_CURSOR | TV_RECORD;
	v.key = "a b/c?d&é";
	v.page = -3;
	v.record = load("{\"id\": 42, \"name\": \"x/y\", \"r\": 2.5, \"o\": {\"a\": 1}}");
	t = ok("http://h/items/{{key}}/{{page}}", TMPL_URL, TV_READ | TV_KEY);
	render(t, &v, false, 0, "http://h/items/a%20b%2Fc%3Fd%26%C3%A9/-3");
	tmpl_free(t);
	t = ok("http://h/{{record.id}}/{{record.name}}/{{record.r}}", TMPL_URL, TV_WRITE);
	render(t, &v, false, 0, "http://h/42/x%2Fy/2.5");
	tmpl_free(t);
	t = ok("http://h/{{record.o}}", TMPL_URL, TV_WRITE);
	render(t, &v, false, -1, "{{record.o}}: the value is an object");
	tmpl_free(t);
	t = ok("http://h/{{record.nope}}", TMPL_URL, TV_WRITE);
	render(t, &v, false, -1, "{{record.nope}}: no field 'nope' in the record");
	tmpl_free(t);

	/* a value that comes with a request is escaped even when it is the whole template:
	 * it can never be a URL of its own (the next page URL never goes through here) */
	t = ok("{{cursor}}", TMPL_URL, TV_READ);
	v.cursor = "https://h/items?page=2&x=%20";
	render(t, &v, false, 0, "https%3A%2F%2Fh%2Fitems%3Fpage%3D2%26x%3D%2520");
	v.cursor = "abc+/=";
	render(t, &v, false, 0, "abc%2B%2F%3D");
	tmpl_free(t);
	t = ok("{{record.target}}", TMPL_URL, TV_WRITE);
	json_object_set_new(v.record, "target", json_string("http://evil:81/x"));
	render(t, &v, false, 0, "http%3A%2F%2Fevil%3A81%2Fx");
	tmpl_free(t);
	/* the operator's whole URL from the environment goes in as is */
	setenv("ONESYNC_TEST_URL", "https://api.example.com/v1/items?a=b", 1);
	t = ok("{{env:ONESYNC_TEST_URL}}", TMPL_URL, TV_READ);
	render(t, &v, false, 0, "https://api.example.com/v1/items?a=b");
	tmpl_free(t);
	t = ok("http://h/items?c={{cursor}}", TMPL_URL, TV_READ);
	v.cursor = "https://evil/";
	render(t, &v, false, 0, "http://h/items?c=https%3A%2F%2Fevil%2F");
	v.have &= ~TV_CURSOR;
	render(t, &v, false, -1, "{{cursor}}: no value");
	tmpl_free(t);
	json_decref(v.record);
}

/* A value in a URL path stays one segment: "", "." and ".." are refused there. */
static void
test_url_segments(void **state)
{
	struct tmpl_vals	 v = { .have = TV_KEY | TV_RECORD };
	struct tmpl		*t;
	const char		*bad_keys[] = { "..", ".", "" };

	v.record = load("{\"d\": \".\", \"e\": \"\"}");
	t = ok("http://h/api/dst/{{key}}", TMPL_URL, TV_WRITE);
	for (size_t i = 0; i < 3; i++) {
		v.key = bad_keys[i];
		render(t, &v, false, -1, "would change the path: a value must stay one segment");
	}
	v.key = "...";
	render(t, &v, false, 0, "http://h/api/dst/...");
	v.key = "../x";
	render(t, &v, false, 0, "http://h/api/dst/..%2Fx");
	v.key = ".a";
	render(t, &v, false, 0, "http://h/api/dst/.a");
	tmpl_free(t);
	/* wherever the segment is, and made of literal text and a value */
	t = ok("http://h/{{key}}/sub?x=1", TMPL_URL, TV_WRITE);
	v.key = "..";
	render(t, &v, false, -1, "{{key}}: the value makes the URL path segment '..'");
	tmpl_free(t);
	t = ok("http://h/a/.{{record.d}}/b", TMPL_URL, TV_WRITE);
	render(t, &v, false, -1, "{{record.d}}: the value makes the URL path segment '..'");
	tmpl_free(t);
	t = ok("http://h/a/{{record.e}}{{key}}", TMPL_URL, TV_WRITE);
	v.key = ".";
	render(t, &v, false, -1, "segment '.'");
	tmpl_free(t);
	/* the query and the fragment are not the path; the literal text is the operator's */
	t = ok("http://h/a/../b?k={{key}}#{{key}}", TMPL_URL, TV_WRITE);
	v.key = "..";
	render(t, &v, false, 0, "http://h/a/../b?k=..#..");
	tmpl_free(t);
	t = ok("http://h/a/{{key}}.json", TMPL_URL, TV_WRITE);
	v.key = "";
	render(t, &v, false, 0, "http://h/a/.json");
	tmpl_free(t);
	json_decref(v.record);
}

/* The configuration's part of a URL: up to the first value that comes with a request. */
static void
test_fixed_prefix(void **state)
{
	struct {
		const char	*src;
		const char	*prefix, *first;
	} cases[] = {
		{ "https://h:8/a/{{key}}/b", "https://h:8/a/", "key" },
		{ "https://{{record.host}}/x", "https://", "record.host" },
		{ "http{{record.x}}", "http", "record.x" },
		{ "https://api.example.com{{record.p}}", "https://api.example.com", "record.p" },
		{ "https://{{env:ONESYNC_TEST_HOST}}/x/{{key}}", "https://api.example.com/x/", "key" },
		{ "{{env:ONESYNC_TEST_URL}}", "https://api.example.com/v1/items?a=b", NULL },
		{ "http://h/{{secret:token}}", "http://h/s3cr3t%2F%2Bx", NULL },
		/* a secret or environment value that starts the URL fixes its origin: as is
		 * (it was escaped, so "{{secret:base}}/x" could not render a URL); one after
		 * the origin's '/' is a path segment, escaped */
		{ "{{env:ONESYNC_TEST_URL}}/x/{{key}}",
		    "https://api.example.com/v1/items?a=b/x/", "key" },
		{ "{{env:ONESYNC_TEST_SCHEME}}{{env:ONESYNC_TEST_HOST}}:8080/{{env:ONESYNC_TEST_URL}}",
		    "https://api.example.com:8080/https%3A%2F%2Fapi.example.com%2Fv1%2Fitems%3Fa%3Db",
		    NULL },
		{ "https://{{env:ONESYNC_TEST_PORT}}/{{secret:token}}",
		    "https://api.example.com:8443/s3cr3t%2F%2Bx", NULL },
	};
	struct tmpl	*t;
	struct buf	 b;
	const char	*first;

	setenv("ONESYNC_TEST_HOST", "api.example.com", 1);
	setenv("ONESYNC_TEST_URL", "https://api.example.com/v1/items?a=b", 1);
	setenv("ONESYNC_TEST_SCHEME", "https://", 1);
	setenv("ONESYNC_TEST_PORT", "api.example.com:8443", 1);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		t = ok(cases[i].src, TMPL_URL, TV_WRITE | TV_DEST);
		buf_init(&b);
		buf_adds(&b, "");
		first = tmpl_fixed_prefix(t, &b);
		assert_string_equal(b.data, cases[i].prefix);
		if (cases[i].first == NULL)
			assert_null(first);
		else
			assert_string_equal(first, cases[i].first);
		buf_free(&b);
		tmpl_free(t);
	}
}

static void
test_query(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	t = ok("{{watermark}}", TMPL_QUERY, TV_READ);
	v.have = TV_WATERMARK;
	v.watermark = "2024-03-01T12:00:00.5+01:00";
	render(t, &v, false, 0, "2024-03-01T12%3A00%3A00.5%2B01%3A00");
	v.watermark = NULL;			/* first run: no lower bound */
	render(t, &v, false, 1, NULL);
	v.have = 0;
	v.watermark = "x";
	render(t, &v, false, 1, NULL);
	tmpl_free(t);
	t = ok(">={{watermark}} and {{limit}}", TMPL_QUERY, TV_READ);
	v.have = TV_LIMIT;
	v.limit = 100;
	render(t, &v, false, 1, NULL);		/* one missing value drops it all */
	v.have |= TV_WATERMARK;
	render(t, &v, false, 0, "%3E%3Dx%20and%20100");
	tmpl_free(t);
}

static void
test_header(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	t = ok("X-Key: {{key}}; {{ secret:token }}", TMPL_HEADER, TV_WRITE);
	v.have = TV_KEY;
	v.key = "a b/c";
	render(t, &v, false, 0, "X-Key: a b/c; s3cr3t/+x");
	render(t, &v, true, 0, "X-Key: a b/c; ***");
	v.key = "evil\r\nX-Injected: 1";
	render(t, &v, false, -1, "line break");
	v.key = "evil\n";
	render(t, &v, false, -1, "line break");
	v.have = 0;
	render(t, &v, false, -1, "{{key}}: no value");
	tmpl_free(t);

	/* NUL and every control character but HTAB: a NUL cut the header where libcurl read
	 * it ("X-Name: x", the record counted delivered), the others went out raw */
	t = ok("X-Name: {{record.name}}", TMPL_HEADER, TV_WRITE);
	v.have = TV_RECORD;
	v.record = json_loads("{\"name\": \"x\\u0000X-Injected: 1\"}", JSON_ALLOW_NUL, NULL);
	assert_non_null(v.record);
	render(t, &v, false, -1, "{{record.name}}: the value contains a NUL character");
	json_decref(v.record);
	{
		static const char *ctl[] = { "\\u0001", "a\\u000bb", "\\u001f", "\\u007f",
		    "\\u0085", "\\u009b[2J" };

		for (size_t i = 0; i < sizeof ctl / sizeof ctl[0]; i++) {
			char j[64];

			snprintf(j, sizeof j, "{\"name\": \"%s\"}", ctl[i]);
			v.record = load(j);
			render(t, &v, false, -1, "{{record.name}}: the value contains a "
			    "control character");
			json_decref(v.record);
		}
	}
	/* HTAB is allowed, and so is any other character (U+00A0, U+00E9) */
	v.record = load("{\"name\": \"a\\tb \\u00a0\\u00e9\"}");
	render(t, &v, false, 0, "X-Name: a\tb \xc2\xa0\xc3\xa9");
	json_decref(v.record);
	tmpl_free(t);
}

static void
test_body(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	v.have = TV_KEY | TV_RECORD | TV_PAGE;
	v.key = "A\"42";
	v.page = 7;
	v.record = load("{\"id\": 42, \"name\": \"Zoë \\\"Z\\\"\", \"tags\": [\"a\"], "
	    "\"m\": {\"x\": null}}");
	t = ok("{{record}}", TMPL_BODY, TV_WRITE | TV_PAGE);
	render(t, &v, false, 0, "{\"id\":42,\"name\":\"Zoë \\\"Z\\\"\",\"tags\":[\"a\"],"
	    "\"m\":{\"x\":null}}");
	tmpl_free(t);
	t = ok("{\"k\": {{key}}, \"p\": {{page}}, \"n\": {{record.name}}, "
	    "\"t\": {{record.tags}}, \"t0\": {{record.tags.0}}, \"x\": {{record.m.x}}}",
	    TMPL_BODY, TV_WRITE | TV_PAGE);
	render(t, &v, false, 0, "{\"k\": \"A\\\"42\", \"p\": 7, \"n\": \"Zoë \\\"Z\\\"\", "
	    "\"t\": [\"a\"], \"t0\": \"a\", \"x\": null}");
	tmpl_free(t);
	/* inside a JSON string: escaped contents, no added quotes */
	t = ok("{\"note\": \"key {{key}} id {{record.id}} m {{record.m}}\", "
	    "\"s\": \"\\\"{{key}}\"}", TMPL_BODY, TV_WRITE);
	render(t, &v, false, 0, "{\"note\": \"key A\\\"42 id 42 m {\\\"x\\\":null}\", "
	    "\"s\": \"\\\"A\\\"42\"}");
	tmpl_free(t);
	/* secrets in bodies are strings, redacted on request */
	t = ok("{\"tok\": {{secret:token}}}", TMPL_BODY, TV_WRITE);
	render(t, &v, false, 0, "{\"tok\": \"s3cr3t/+x\"}");
	render(t, &v, true, 0, "{\"tok\": \"***\"}");
	tmpl_free(t);
	t = ok("{\"a\": {{record.nope}}}", TMPL_BODY, TV_WRITE);
	render(t, &v, false, -1, "{{record.nope}}: no field 'nope' in the record");
	tmpl_free(t);
	json_decref(v.record);
}

/* {{key}} in a body keeps the key's JSON type when the key fields are known. */
static void
test_body_key_type(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;
	char			*one[] = { "id" }, *two[] = { "t", "id" };

	v.have = TV_KEY | TV_RECORD;
	v.key = "1";
	v.record = load("{\"id\": 1, \"t\": \"x\", \"s\": \"7\"}");
	v.key_fields = one;
	v.nkey_fields = 1;
	t = ok("{\"sourceId\": {{key}}, \"in\": \"k{{key}}\"}", TMPL_BODY, TV_WRITE);
	render(t, &v, false, 0, "{\"sourceId\": 1, \"in\": \"k1\"}");
	v.key_fields = two;
	v.nkey_fields = 2;
	v.key = "[\"x\",1]";
	render(t, &v, false, 0, "{\"sourceId\": [\"x\",1], \"in\": \"k[\\\"x\\\",1]\"}");
	one[0] = "s";
	v.key_fields = one;
	v.nkey_fields = 1;
	v.key = "7";
	render(t, &v, false, 0, "{\"sourceId\": \"7\", \"in\": \"k7\"}");
	tmpl_free(t);
	json_decref(v.record);
}

static void
test_dest(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	t = ok("{\"synced\": true, \"erpId\": {{dest.id}}}", TMPL_BODY, TV_MARK);
	v.have = TV_DEST;
	v.dest = load("{\"id\": 42}");
	render(t, &v, false, 0, "{\"synced\": true, \"erpId\": 42}");
	json_decref(v.dest);
	v.dest = load("{\"id\": \"A-42\"}");
	render(t, &v, false, 0, "{\"synced\": true, \"erpId\": \"A-42\"}");
	json_decref(v.dest);
	v.dest = load("{\"other\": 1}");
	render(t, &v, false, -1, "{{dest.id}}: no field 'id' in the destination's answer");
	json_decref(v.dest);
	v.dest = NULL;
	render(t, &v, false, -1, "{{dest.id}}: no answer from the destination");
	tmpl_free(t);
	t = ok("http://h/{{dest.data.items.1.id}}", TMPL_URL, TV_MARK);
	v.dest = load("{\"data\": {\"items\": [{\"id\": 1}, {\"id\": \"b c\"}]}}");
	render(t, &v, false, 0, "http://h/b%20c");
	json_decref(v.dest);
	tmpl_free(t);
}

/* TMPL_TEXT: raw text for SQL parameters, never escaped. */
static void
test_text(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;

	v.have = TV_KEY | TV_RECORD | TV_DEST;
	v.key = "a'b\"c";
	v.record = load("{\"id\": 42, \"name\": \"O'Brien \\\"x\\\" %20/\", \"r\": 2.5, "
	    "\"ok\": true, \"no\": false, \"n\": null, \"o\": {\"a\": [1, \"b\"]}, "
	    "\"l\": [1, 2]}");
	json_object_set_new(v.record, "nul", json_stringn("a\0b", 3));
	v.dest = load("{\"id\": \"A-42\", \"num\": 7}");
	t = ok("{{key}}|{{record.id}}|{{record.name}}|{{record.r}}|{{record.ok}}|"
	    "{{record.no}}|{{dest.id}}|{{dest.num}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, 0, "a'b\"c|42|O'Brien \"x\" %20/|2.5|true|false|A-42|7");
	tmpl_free(t);
	/* objects and arrays as compact JSON; literal text as written */
	t = ok("o={{record.o}} l={{ record.l }} %{x}\"'", TMPL_TEXT, TV_MARK);
	render(t, &v, false, 0, "o={\"a\":[1,\"b\"]} l=[1,2] %{x}\"'");
	tmpl_free(t);
	t = ok("{{record}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, 0, "{\"id\":42,\"name\":\"O'Brien \\\"x\\\" %20/\",\"r\":2.5,"
	    "\"ok\":true,\"no\":false,\"n\":null,\"o\":{\"a\":[1,\"b\"]},\"l\":[1,2],"
	    "\"nul\":\"a\\u0000b\"}");
	tmpl_free(t);
	/* CR/LF are fine here (a text value, not a header) */
	v.key = "two\r\nlines";
	t = ok("{{key}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, 0, "two\r\nlines");
	/* a missing value is an error, never empty */
	v.have = TV_RECORD;
	render(t, &v, false, -1, "{{key}}: no value");
	tmpl_free(t);
	t = ok("{{record.nope}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, -1, "{{record.nope}}: no field 'nope' in the record");
	tmpl_free(t);
	t = ok("{{record.n}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, -1, "{{record.n}}: the value is null");
	tmpl_free(t);
	t = ok("{{dest.id}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, -1, "{{dest.id}}: no answer from the destination");
	tmpl_free(t);
	t = ok("{{record.nul}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, -1, "NUL character");
	tmpl_free(t);
	/* secrets raw, redacted on request */
	t = ok("tok {{secret:token}}", TMPL_TEXT, TV_MARK);
	render(t, &v, false, 0, "tok s3cr3t/+x");
	render(t, &v, true, 0, "tok ***");
	tmpl_free(t);
	/* the allowed set still applies */
	bad("{{page}}", TMPL_TEXT, TV_MARK, "placeholder {{page}} is not valid here");
	bad("{{bogus}}", TMPL_TEXT, TV_MARK, "unknown placeholder {{bogus}}");
	json_decref(v.record);
	json_decref(v.dest);
}

static void
test_credentials_directory(void **state)
{
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;
	char			*err;

	setenv("CREDENTIALS_DIRECTORY", secrets, 1);
	t = tmpl_compile("Bearer {{secret:token}}", TMPL_HEADER, TV_SECRET, NULL, &err);
	assert_non_null(t);
	render(t, &v, false, 0, "Bearer s3cr3t/+x");
	tmpl_free(t);
	unsetenv("CREDENTIALS_DIRECTORY");
	t = tmpl_compile("Bearer {{secret:token}}", TMPL_HEADER, TV_SECRET, NULL, &err);
	assert_null(t);
	assert_non_null(strstr(err, "no secrets directory"));
	free(err);
	/* a failing secret never shows up in a message */
	t = tmpl_compile("{{secret:crlf}}", TMPL_HEADER, TV_SECRET, secrets, &err);
	assert_null(t);
	assert_null(strstr(err, "Injected"));
	free(err);
	setenv("ONESYNC_TEST_HOST", "h.example", 1);
	t = ok("https://{{env:ONESYNC_TEST_HOST}}/x", TMPL_URL, TV_ENV);
	render(t, &v, false, 0, "https://h.example/x");
	tmpl_free(t);
}

static void
test_json_path(void **state)
{
	json_t	*j = load("{\"a\": {\"b\": [10, {\"c\": \"x\"}]}, \"1\": true}");

	assert_ptr_equal(jsonx_path_get(j, ""), j);
	assert_int_equal(json_integer_value(jsonx_path_get(j, "a.b.0")), 10);
	assert_string_equal(json_string_value(jsonx_path_get(j, "a.b.1.c")), "x");
	assert_true(json_is_true(jsonx_path_get(j, "1")));
	assert_null(jsonx_path_get(j, "a.b.2"));
	assert_null(jsonx_path_get(j, "a.b.x"));
	assert_null(jsonx_path_get(j, "a.b.0.c"));
	assert_null(jsonx_path_get(j, "nope"));
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_uses),
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_segments),
		cmocka_unit_test(test_fixed_prefix),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_body),
		cmocka_unit_test(test_body_key_type),
		cmocka_unit_test(test_dest),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_credentials_directory),
		cmocka_unit_test(test_json_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
