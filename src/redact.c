/*
 * redact.c - one redaction path for every text a user can see: log lines, run history,
 * the status endpoint and onesyncctl's output all pass through redact_text(). It hides
 * two kinds of things:
 *  - the values of a registry: every {{secret:}} and {{env:}} value, and every credential
 *    written literally in the configuration (URL passwords, credential query values,
 *    Authorization/Cookie header values, conninfo passwords), registered when the
 *    configuration is loaded and never forgotten (a run of the configuration before a
 *    reload may still use them);
 *  - what patterns recognise in any text: URLs (userinfo, credential query parameters),
 *    key=value and "key": "value" pairs whose key names a credential (conninfo passwords
 *    in any spacing among them), Authorization/Cookie header values.
 * Patterns catch what the registry cannot know (a token a server echoes, a password libpq
 * quotes); the registry catches what no pattern can see (a secret echoed in a body).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpq-fe.h>

#include "redact.h"

#define MASK	"***"

static struct strlist	secrets;	/* longest first: one holding another is masked whole */
static struct strlist	params;		/* daemon.redact_params */

/* Words that make a URL query parameter a credential (substrings, any case). */
static const char *url_words[] = {
	"token", "key", "secret", "passw", "sig", "auth", "credential", "session", "cookie"
};
/* The same for key=value and "key": "value" in free text, narrower: "key" or "auth"
 * alone name record keys and authors too often there. */
static const char *text_words[] = {
	"token", "secret", "passw", "signature", "credential", "apikey", "api_key", "api-key",
	"access_key", "accesskey", "private_key", "authorization", "session_id", "sessionid",
	"cookie"
};
/* Headers whose whole value is a credential. */
static const char *auth_headers[] = {
	"authorization", "proxy-authorization", "cookie", "set-cookie"
};

static bool
has_word(const char *name, size_t n, const char **words, size_t nwords)
{
	for (size_t w = 0; w < nwords; w++) {
		size_t wl = strlen(words[w]);

		for (size_t i = 0; i + wl <= n; i++)
			if (strncasecmp(name + i, words[w], wl) == 0)
				return true;
	}
	for (size_t i = 0; i < params.n; i++)
		if (strlen(params.v[i]) == n && strncasecmp(params.v[i], name, n) == 0)
			return true;
	return false;
}

static bool
is_auth_header(const char *name, size_t n)
{
	for (size_t i = 0; i < NELEM(auth_headers); i++)
		if (strlen(auth_headers[i]) == n && strncasecmp(auth_headers[i], name, n) == 0)
			return true;
	return false;
}

/* ---- the registry ---- */

static void
add_one(const char *v)
{
	size_t i, n = strlen(v);

	if (n < REDACT_MIN)
		return;
	for (i = 0; i < secrets.n; i++)
		if (strcmp(secrets.v[i], v) == 0)
			return;
	strlist_add(&secrets, xstrdup(v));
	for (i = secrets.n - 1; i > 0 && strlen(secrets.v[i - 1]) < n; i--) {
		char *t = secrets.v[i - 1];

		secrets.v[i - 1] = secrets.v[i];
		secrets.v[i] = t;
	}
}

void
redact_add_secret(const char *v)
{
	struct buf b;
	const char *p;

	if (v == NULL || strlen(v) < REDACT_MIN)
		return;
	add_one(v);
	/* as a rendered URL carries it, and with lower-case hex as some servers echo it */
	buf_init(&b);
	buf_adds(&b, "");
	url_escape(&b, v, strlen(v));
	add_one(b.data);
	for (size_t i = 0; i + 2 < b.len; i++)
		if (b.data[i] == '%') {
			b.data[i + 1] = (char)tolower((unsigned char)b.data[i + 1]);
			b.data[i + 2] = (char)tolower((unsigned char)b.data[i + 2]);
		}
	add_one(b.data);
	/* as a JSON string holds it (a body, an answer echoing it) */
	buf_reset(&b);
	for (p = v; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '"' || c == '\\')
			buf_printf(&b, "\\%c", c);
		else if (c < 0x20)
			buf_printf(&b, "\\u%04x", c);
		else
			buf_addc(&b, (char)c);
	}
	add_one(b.data);
	buf_free(&b);
}

void
redact_add_param(const char *name)
{
	for (size_t i = 0; i < params.n; i++)
		if (strcasecmp(params.v[i], name) == 0)
			return;
	strlist_add(&params, xstrdup(name));
}

void
redact_reset(void)
{
	strlist_free(&secrets);
	strlist_free(&params);
}

/* Register a literal piece of configuration (templates: only when it has no placeholder,
 * whose values tmpl.c registers itself), as written and percent-decoded. */
static void
learn(const char *v, size_t n)
{
	char *s = xstrndup(v, n), *d;
	const char *p;

	if (strstr(s, "{{") == NULL) {
		redact_add_secret(s);
		for (p = s, d = s; *p != '\0'; p++) {
			if (*p == '%' && isxdigit((unsigned char)p[1]) &&
			    isxdigit((unsigned char)p[2])) {
				char h[3] = { p[1], p[2], '\0' };

				*d++ = (char)strtol(h, NULL, 16);
				p += 2;
			} else
				*d++ = *p;
		}
		*d = '\0';
		redact_add_secret(s);
	}
	free(s);
}

void
redact_learn_url(const char *url)
{
	const char *scheme, *auth, *hostend, *at, *colon, *p;

	if (url == NULL)
		return;
	if ((scheme = strstr(url, "://")) != NULL) {
		auth = scheme + 3;
		hostend = auth + strcspn(auth, "/");
		if ((at = memrchr(auth, '@', (size_t)(hostend - auth))) != NULL &&
		    (colon = memchr(auth, ':', (size_t)(at - auth))) != NULL)
			learn(colon + 1, (size_t)(at - colon - 1));
	}
	if (*(p = url + strcspn(url, "?#")) == '\0')
		return;
	for (p++; *p != '\0'; ) {
		size_t n = strcspn(p, "&#");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && has_word(p, (size_t)(eq - p), url_words, NELEM(url_words))) {
			learn(eq + 1, n - (size_t)(eq + 1 - p));
			learn(eq + 1, strcspn(eq + 1, "&"));	/* as libpq reads it */
		}
		p += n;
		if (*p != '\0')
			p++;
	}
}

void
redact_learn_conninfo(const char *ci)
{
	PQconninfoOption *o, *e;

	if (ci == NULL || (o = PQconninfoParse(ci, NULL)) == NULL)
		return;
	for (e = o; e->keyword != NULL; e++)
		if (e->val != NULL && (strcmp(e->keyword, "password") == 0 ||
		    strcmp(e->keyword, "sslpassword") == 0))
			redact_add_secret(e->val);
	PQconninfoFree(o);
}

void
redact_learn_header(const char *h)
{
	const char *colon, *v, *sp;

	if (h == NULL || (colon = strchr(h, ':')) == NULL)
		return;
	if (!is_auth_header(h, (size_t)(colon - h)) &&
	    !has_word(h, (size_t)(colon - h), url_words, NELEM(url_words)))
		return;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	learn(v, strlen(v));
	/* "Bearer TOKEN", "Basic B64": the credential alone too */
	if ((sp = strchr(v, ' ')) != NULL) {
		while (*sp == ' ')
			sp++;
		learn(sp, strlen(sp));
	}
}

void
redact_learn_param(const char *name, const char *value)
{
	if (name != NULL && value != NULL &&
	    has_word(name, strlen(name), url_words, NELEM(url_words)))
		learn(value, strlen(value));
}

/* ---- redaction ---- */

char *
redact_url(const char *url)
{
	struct buf b;
	const char *p, *scheme, *q;

	if (url == NULL)
		return xstrdup("");
	buf_init(&b);
	buf_adds(&b, "");
	p = url;
	if ((scheme = strstr(url, "://")) != NULL) {
		const char *auth = scheme + 3;
		/* up to the path: libpq reads '?' and '#' as part of a URI's password */
		const char *hostend = auth + strcspn(auth, "/");
		/* the last '@': a password written with a bare '@' is hidden whole */
		const char *at = memrchr(auth, '@', (size_t)(hostend - auth));
		const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;

		if (colon != NULL) {
			buf_add(&b, url, (size_t)(colon + 1 - url));
			buf_adds(&b, MASK);
			p = at;
		}
	}
	/*
	 * The query and the fragment alike: a fragment carries tokens too (OAuth's implicit
	 * flow), and libpq reads a '#' as part of a URI's parameter value.
	 */
	if ((q = p + strcspn(p, "?#")) == p + strlen(p)) {
		buf_adds(&b, p);
		return buf_steal(&b);
	}
	buf_add(&b, p, (size_t)(q + 1 - p));
	p = q + 1;
	while (*p != '\0') {
		size_t n = strcspn(p, "&#");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && has_word(p, (size_t)(eq - p), url_words, NELEM(url_words))) {
			buf_add(&b, p, (size_t)(eq + 1 - p));
			buf_adds(&b, MASK);
			/* up to the next '&': libpq reads a '#' as part of the value */
			n = (size_t)(eq + 1 - p) + strcspn(eq + 1, "&");
		} else
			buf_add(&b, p, n);
		p += n;
		if (*p != '\0')
			buf_addc(&b, *p++);
	}
	return buf_steal(&b);
}

/* The registry's values in s replaced by the mask. */
static char *
mask_registered(const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_adds(&b, "");
	while (*s != '\0') {
		size_t i, n = 0;

		for (i = 0; i < secrets.n; i++) {
			n = strlen(secrets.v[i]);
			if (*s == secrets.v[i][0] && strncmp(s, secrets.v[i], n) == 0)
				break;
		}
		if (i < secrets.n) {
			buf_adds(&b, MASK);
			s += n;
		} else
			buf_addc(&b, *s++);
	}
	return buf_steal(&b);
}

/* Where a quoted value (opening quote at *p) ends, past its closing quote. */
static const char *
quoted_end(const char *p)
{
	char q = *p++;

	while (*p != '\0' && *p != q) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	return *p == q ? p + 1 : p;
}

/* Where an unquoted value ends: at one of stops, a backslash escaping the next character
 * (libpq reads "a\\ b" as one value). */
static const char *
unquoted_end(const char *p, const char *stops)
{
	while (*p != '\0' && strchr(stops, *p) == NULL) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	return p;
}

#define SCHEME_CH(c)	(isalnum((unsigned char)(c)) || (c) == '+' || (c) == '.' || (c) == '-')
#define IDENT_CH(c)	(isalnum((unsigned char)(c)) || (c) == '_' || (c) == '.' || (c) == '-')

/*
 * At p, a name (prev: the character before it) that the patterns may hide the value of.
 * Appends what it handled to b and returns where it stopped.
 */
static const char *
pattern_at(struct buf *b, const char *start, const char *p)
{
	const char *e = p, *v, *end;
	bool quoted = p > start && (p[-1] == '"' || p[-1] == '\'');

	while (SCHEME_CH(*e))
		e++;
	if (strncmp(e, "://", 3) == 0) {
		char *u, *r;

		end = e + 3 + strcspn(e + 3, " \t\r\n\"'<>`\\");
		u = xstrndup(p, (size_t)(end - p));
		r = redact_url(u);
		buf_adds(b, r);
		free(r);
		free(u);
		return end;
	}
	for (e = p; IDENT_CH(*e); e++)
		;
	buf_add(b, p, (size_t)(e - p));
	v = e;
	if (quoted && (*v == '"' || *v == '\''))
		v++;
	while (isspace((unsigned char)*v))
		v++;
	if (*v == ':' && is_auth_header(p, (size_t)(e - p))) {
		/* a header: the whole rest of the line is its value */
		v++;
		while (isspace((unsigned char)*v))
			v++;
		buf_add(b, e, (size_t)(v - e));
		if (*v != '"' && *v != '\'') {
			end = v + strcspn(v, "\r\n\"");
			if (end > v)
				buf_adds(b, MASK);
			return end;
		}
	} else if ((*v == '=' || (*v == ':' && quoted)) &&
	    has_word(p, (size_t)(e - p), text_words, NELEM(text_words))) {
		v++;
		while (isspace((unsigned char)*v))
			v++;
		buf_add(b, e, (size_t)(v - e));
	} else
		return e;
	if (*v == '"' || *v == '\'') {
		end = quoted_end(v);
		buf_addc(b, *v);
		buf_adds(b, MASK);
		if (end > v + 1 && end[-1] == *v)
			buf_addc(b, *v);
		return end;
	}
	if (*v == '{' || *v == '[')
		return v;	/* a JSON object or array: its own names are looked at */
	/* key=value ends where libpq ends a conninfo value (a blank): "password=a,b" hides
	 * "a,b"; a JSON number or literal ends at its delimiter, and stays JSON */
	end = unquoted_end(v, quoted ? " \t\r\n\f\v,}]\"" : " \t\r\n\f\v\"'");
	if (end == v + strlen(MASK) && strncmp(v, MASK, strlen(MASK)) == 0)
		buf_adds(b, MASK);	/* masked already: the same again */
	else if (end > v)
		buf_adds(b, quoted ? "\"" MASK "\"" : MASK);
	return end;
}

char *
redact_text(const char *text)
{
	struct buf b;
	char *s;
	const char *p;

	if (text == NULL)
		return xstrdup("");
	s = mask_registered(text);
	buf_init(&b);
	buf_adds(&b, "");
	for (p = s; *p != '\0'; ) {
		if (IDENT_CH(*p) && (p == s || !IDENT_CH(p[-1]))) {
			p = pattern_at(&b, s, p);
			continue;
		}
		buf_addc(&b, *p++);
	}
	free(s);
	return buf_steal(&b);
}

char *
redact_text_free(char *text)
{
	char *r = redact_text(text);

	free(text);
	return r;
}

char *
redact_excerpt(const char *body, size_t len, size_t max)
{
	/* room for a secret that straddles the cut: it is masked whole, then cut */
	size_t n = len > max + 4096 ? max + 4096 : len;
	char *s = redact_text_free(xstrndup(body != NULL ? body : "", body != NULL ? n : 0));

	if (strlen(s) > max)
		s[max] = '\0';	/* maybe inside a character: text_storable() mends it */
	for (char *p = s; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	return s;
}

/*
 * A conninfo as libpq reads it: "key = value" in any spacing, a value quoted or up to the next
 * blank; a password's value hidden whatever it holds. A URI is a URL. Then the registry.
 */
char *
redact_conninfo(const char *ci)
{
	struct buf b;
	const char *p = ci, *k, *v;
	char *r;

	if (ci == NULL)
		return xstrdup("");
	if (strncmp(ci, "postgres://", 11) == 0 || strncmp(ci, "postgresql://", 13) == 0) {
		char *u = redact_url(ci);

		r = mask_registered(u);
		free(u);
		return r;
	}
	buf_init(&b);
	buf_adds(&b, "");
	while (*p != '\0') {
		bool secret;

		for (k = p; isspace((unsigned char)*p); p++)
			;
		for (; *p != '\0' && *p != '=' && !isspace((unsigned char)*p); p++)
			;
		secret = has_word(k, (size_t)(p - k), text_words, NELEM(text_words));
		for (; isspace((unsigned char)*p); p++)
			;
		if (*p != '=') {
			buf_add(&b, k, (size_t)(p - k));
			continue;
		}
		for (p++; isspace((unsigned char)*p); p++)
			;
		buf_add(&b, k, (size_t)(p - k));
		if (*p == '\'') {
			v = quoted_end(p);
			buf_add(&b, secret ? "'" MASK "'" : p, secret ? strlen(MASK) + 2 :
			    (size_t)(v - p));
		} else {
			v = unquoted_end(p, " \t\r\n\f\v");
			if (secret && v > p)
				buf_adds(&b, MASK);
			else
				buf_add(&b, p, (size_t)(v - p));
		}
		p = v;
	}
	/* the registry only: the text patterns would split it otherwise than libpq does */
	r = mask_registered(b.data);
	buf_free(&b);
	return r;
}

/*
 * The length of the well-formed UTF-8 sequence at p (1..4) and its code point, or 0 when
 * the bytes there are not one (a stray continuation byte, an overlong form, a surrogate,
 * past U+10FFFF, or cut short by the end of the text).
 */
static size_t
utf8_next(const unsigned char *p, uint32_t *cp)
{
	size_t n, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* also stops at the terminating NUL */
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Code points that change how a terminal shows the rest of a line without being text:
 * C1 controls (0x9b is an 8-bit CSI), line and paragraph separators, and the
 * bidirectional and zero-width format characters (U+202E would show a key backwards).
 */
static bool
invisible(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x180e ||
	    (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2060 && c <= 0x2069) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
}

void
escape_controls(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c;
	size_t n;

	while (*p != '\0') {
		if ((n = utf8_next(p, &c)) == 0) {
			/* not UTF-8: shown as the byte, so the line stays valid text */
			buf_printf(b, "\\x%02x", *p++);
			continue;
		}
		if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\r')
			buf_adds(b, "\\r");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", (unsigned)c);
		else if (invisible(c))
			buf_printf(b, "\\u%04x", (unsigned)c);
		else
			buf_add(b, (const char *)p, n);
		p += n;
	}
}
