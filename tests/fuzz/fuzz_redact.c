/*
 * fuzz_redact.c - libFuzzer harness for redaction (src/core/redact.c). Input: one control byte,
 * one position byte, then the text. Invariants, each a trap when broken:
 *  - a registered secret (also percent-encoded or JSON-escaped) planted anywhere in the text
 *    never survives redact_text() or redact_excerpt(), and no output is longer than asked;
 *  - a conninfo that libpq parses still parses once redacted, and libpq reads no piece of
 *    its password (or sslpassword) from it, whatever the text around it;
 *  - a URL's userinfo password and credential parameter value (no delimiter in them) are
 *    "***", by redact_url() and redact_text() alike;
 *  - escape_controls() leaves no control character, and redaction is idempotent.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/escape.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/url.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define SECRET	"Fz-S3cret/+\"x"	/* has characters that %-encoding and JSON change */

static void
no_secret(const char *s)
{
	if (strstr(s, SECRET) != NULL || strstr(s, "Fz-S3cret%2F%2B%22x") != NULL ||
	    strstr(s, "Fz-S3cret/+\\\"x") != NULL)
		__builtin_trap();
}

/* Text with s inserted at position pos (modulo its length + 1). */
static char *
insert(const char *text, size_t pos, const char *s)
{
	size_t n = strlen(text);

	pos %= n + 1;
	return xasprintf("%.*s%s%s", (int)pos, text, s, text + pos);
}

/* libpq's password (or sslpassword) of a conninfo; NULL when it has none or does not parse. */
static char *
password_of(const char *ci, const char *kw, bool *parses)
{
	PQconninfoOption *o, *e;
	char *v = NULL;

	*parses = (o = PQconninfoParse(ci, NULL)) != NULL;
	for (e = o; e != NULL && e->keyword != NULL; e++)
		if (strcmp(e->keyword, kw) == 0 && e->val != NULL && *e->val != '\0')
			v = xstrdup(e->val);
	PQconninfoFree(o);
	return v;
}

/* A postgresql:// URI whose userinfo, as redaction reads it, holds an '@' or a '/' that
 * ends libpq's. */
static bool
hides_more(const char *ci)
{
	const char *auth, *at;

	if (!url_is_postgres(ci) || (auth = strstr(ci, "://")) == NULL ||
	    (at = url_userinfo_end(auth += 3, true)) == NULL)
		return false;
	return memchr(auth, '@', (size_t)(at - auth)) != NULL ||
	    memchr(auth, '/', (size_t)(at - auth)) != NULL;
}

/*
 * A conninfo libpq parses still parses once redacted, and what libpq reads as its password
 * then is "***", or nothing, or (when masking changed how the rest splits: a masked value
 * that held a '/' or a quote) no piece of the original password.
 */
static void
check_conninfo(const char *ci)
{
	static const char *kws[] = { "password", "sslpassword" };
	char *red, *p, *r;
	bool ok, rok;

	red = redact_conninfo(ci);
	for (size_t i = 0; i < 2; i++) {
		p = password_of(ci, kws[i], &ok);
		r = password_of(red, kws[i], &rok);
		/* The redacted text parses whenever the original does, unless the registered
		 * secret was masked inside it: "%b" + "Fz-S3cret…" becomes "%b***", an escape
		 * libpq refuses (a display form, not a leak); or unless redaction hid more than
		 * libpq's password on purpose: a URI password written with a bare '@' or '/'
		 * (libpq ends it at the first) is hidden to its last '@', and what is left may
		 * then read otherwise. */
		if (ok && !rok && strstr(ci, "S3cret") == NULL && !hides_more(ci))
			__builtin_trap();
		if (p != NULL && r != NULL && strcmp(r, "***") != 0 && strstr(p, r) != NULL)
			__builtin_trap();
		free(p);
		free(r);
	}
	free(red);
}

/* The bytes of s that can be a URL's password or parameter value without a delimiter. */
static char *
plain(const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_adds(&b, "");
	for (; *s != '\0'; s++)
		if (strchr("@/?#&:%\"' \t\r\n<>`\\*", *s) == NULL && (unsigned char)*s > 0x20 &&
		    (unsigned char)*s < 0x7f)
			buf_addc(&b, *s);
	if (b.len == 0)
		buf_addc(&b, 'v');
	return buf_steal(&b);
}

/* True when s is valid UTF-8 holding no C1 control, U+2028/2029 or U+202A..U+202E. */
static int
escaped_clean(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return 0;
		if (p[0] == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae)
			return 0;
		if (p[0] >= 0xc2 && p[0] <= 0xdf && (p[1] & 0xc0) == 0x80)
			p += 2;
		else if (p[0] >= 0xe0 && p[0] <= 0xef && (p[1] & 0xc0) == 0x80 &&
		    (p[2] & 0xc0) == 0x80 && !(p[0] == 0xe0 && p[1] < 0xa0) &&
		    !(p[0] == 0xed && p[1] >= 0xa0))
			p += 3;
		else if (p[0] >= 0xf0 && p[0] <= 0xf4 && (p[1] & 0xc0) == 0x80 &&
		    (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 &&
		    !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90))
			p += 4;
		else
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *spacing[] = { "=", " = ", "= ", " =", "\t=\t" };
	static int init;
	char *text, *t, *r, *r2, *ci, *url, *want, *p;
	json_t *j;
	struct buf b;
	size_t pos;

	if (size < 2)
		return 0;
	if (!init) {
		secrets_add(SECRET);
		secrets_add_name("x-my-param");
		init = 1;
	}
	pos = data[1];
	text = xstrndup((const char *)data + 2, size - 2);

	/* any text: terminates, idempotent, escapes every control character */
	r = redact_text(text);
	r2 = redact_text(r);
	if (strcmp(r, r2) != 0)
		__builtin_trap();
	free(r2);
	buf_init(&b);
	buf_adds(&b, "");
	escape_controls(&b, r);
	for (p = b.data; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			__builtin_trap();
	/* and the line is UTF-8 without C1 or bidirectional controls */
	if (!escaped_clean(b.data))
		__builtin_trap();
	buf_free(&b);
	free(r);

	/* the registered secret, planted in one of its forms */
	t = insert(text, pos, data[0] & 1 ? "Fz-S3cret%2F%2B%22x" :
	    data[0] & 2 ? "Fz-S3cret/+\\\"x" : SECRET);
	r = redact_text(t);
	no_secret(r);
	free(r);
	r = redact_excerpt(t, strlen(t), pos);
	no_secret(r);
	if (strlen(r) > pos)
		__builtin_trap();
	free(r);
	free(t);

	/* a conninfo: the text around a password in any spacing, and the text alone */
	check_conninfo(text);
	ci = xasprintf("host=h %s password%s%s %s", data[0] & 4 ? text : "",
	    spacing[(data[0] >> 3) % 5], data[0] & 4 ? "pw" : text, data[0] & 4 ? "" : text);
	check_conninfo(ci);
	free(ci);
	ci = xasprintf("postgresql://u:%s@h/db?%s", text, text);
	check_conninfo(ci);
	free(ci);

	/* a URL: userinfo password and a credential parameter */
	p = plain(text);
	url = xasprintf("https://user:%s@host/p?page=2&%s=%s&x=1", p,
	    data[0] & 64 ? "x-my-param" : "access_token", p);
	want = xasprintf("https://user:***@host/p?page=2&%s=***&x=1",
	    data[0] & 64 ? "x-my-param" : "access_token");
	r = redact_url(url);
	r2 = redact_text(url);
	if (strcmp(r, want) != 0 || strcmp(r2, want) != 0)
		__builtin_trap();
	free(r);
	free(r2);
	free(url);
	free(want);
	free(p);

	/* learning from any configured text, then JSON redaction: terminates, and the
	 * document stays a document (the registry learnt here is dropped after) */
	secrets_learn_url(text);
	secrets_learn_header(text);
	secrets_learn_body(text);
	secrets_learn_value(text);
	if ((j = json_loads(text, JSON_DECODE_ANY, NULL)) != NULL) {
		redact_json(j);
		if ((r = json_dumps(j, JSON_ENCODE_ANY)) == NULL)
			__builtin_trap();
		free(r);
		json_decref(j);
	}
	secrets_reset();
	secrets_add(SECRET);
	secrets_add_name("x-my-param");
	free(text);
	return 0;
}
