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
 * quotes); the registry (secrets.c) catches what no pattern can see (a secret echoed in a
 * body). This file holds the patterns and the masking; never a value of its own.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/escape.h"
#include "core/redact.h"
#include "core/secrets.h"
#include "core/url.h"

#define MASK	SECRETS_MASK

/* Headers whose whole value is a credential. */
static const char *auth_headers[] = {
	"authorization", "proxy-authorization", "cookie", "set-cookie"
};

static bool
is_auth_header(const char *name, size_t n)
{
	for (size_t i = 0; i < NELEM(auth_headers); i++)
		if (strlen(auth_headers[i]) == n && strncasecmp(auth_headers[i], name, n) == 0)
			return true;
	return false;
}

/*
 * A query parameter's name names a credential, read as the server (or libpq) reads it:
 * percent-decoded ("pass%77ord" is libpq's password).
 */
static bool
param_is_cred(const char *name, size_t n)
{
	char d[128];
	size_t k = 0;

	for (size_t i = 0; i < n && k + 1 < sizeof d; i++) {
		if (name[i] == '%' && i + 2 < n && isxdigit((unsigned char)name[i + 1]) &&
		    isxdigit((unsigned char)name[i + 2])) {
			char hex[3] = { name[i + 1], name[i + 2], '\0' };

			d[k++] = (char)strtol(hex, NULL, 16);
			i += 2;
		} else
			d[k++] = name[i] == '+' ? ' ' : name[i];
	}
	return secrets_cred_name(name, n, true) || secrets_cred_name(d, k, true);
}

/*
 * url with its userinfo's secret part masked once; *rest: the offset in the answer where
 * the part after the userinfo (its '@') starts, 0 when it has none.
 */
static char *
mask_userinfo(const char *url, bool pg, size_t *rest)
{
	struct buf b;
	const char *scheme, *auth, *at, *colon;

	*rest = 0;
	if ((scheme = strstr(url, "://")) == NULL)
		return xstrdup(url);
	auth = scheme + 3;
	/* the last '@': a password written with a bare '@' is hidden whole */
	at = url_userinfo_end(auth, pg);
	colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
	buf_init(&b);
	if (colon != NULL && colon + 1 < at) {
		/* user:password: the user stays, to tell accounts apart */
		buf_add(&b, url, (size_t)(colon + 1 - url));
	} else if (at != NULL && at > auth && !pg) {
		/* no password: the user is the credential ("https://TOKEN@h"); not in
		 * a postgresql:// URI, whose user is a role (its password in .pgpass) */
		buf_add(&b, url, (size_t)(auth - url));
	} else {
		buf_free(&b);
		return xstrdup(url);
	}
	buf_adds(&b, MASK);
	*rest = b.len;
	buf_adds(&b, at);
	return buf_steal(&b);
}

char *
redact_url(const char *url)
{
	struct buf b;
	const char *p, *q;
	char *cur, *next;
	size_t rest, ats = 0;
	bool pg;

	if (url == NULL)
		return xstrdup("");
	pg = url_is_postgres(url);
	/*
	 * Masked until it no longer changes: where the userinfo ends depends on the '/' and
	 * '?' before the last '@', and masking can remove them ("u:a/b@c@h?:@h/x" first
	 * hides "a/b@c", then "h?:"), so that masking its own output changes nothing. Each
	 * step removes an '@', which bounds the steps.
	 */
	for (p = url; (p = strchr(p, '@')) != NULL; p++)
		ats++;
	cur = mask_userinfo(url, pg, &rest);
	for (size_t i = 0; rest > 0 && i < ats; i++) {
		size_t r;

		next = mask_userinfo(cur, pg, &r);
		if (strcmp(next, cur) == 0) {
			free(next);
			break;
		}
		free(cur);
		cur = next;
		rest = r;
	}
	buf_init(&b);
	buf_adds(&b, "");
	buf_add(&b, cur, rest);
	p = cur + rest;
	if (pg && (q = strstr(cur, "://")) != NULL) {
		/* libpq's userinfo ends at the first '@' before a '/', masked or not: a '?'
		 * before it is part of the user's name ("h?sid=x@db"), no query */
		const char *auth = q + 3, *at = memchr(auth, '@', strcspn(auth, "/"));

		if (at != NULL && at >= p) {
			buf_add(&b, p, (size_t)(at + 1 - p));
			p = at + 1;
		}
	}
	/*
	 * The query and the fragment alike: a fragment carries tokens too (OAuth's implicit
	 * flow). libpq knows no fragment: in a postgresql:// URI a '#' is an ordinary
	 * character, anywhere, and the query starts at the first '?'.
	 */
	if ((q = p + strcspn(p, pg ? "?" : "?#")) == p + strlen(p)) {
		buf_adds(&b, p);
		free(cur);
		return buf_steal(&b);
	}
	buf_add(&b, p, (size_t)(q + 1 - p));
	p = q + 1;
	while (*p != '\0') {
		size_t n = strcspn(p, pg ? "&" : "&#");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && param_is_cred(p, (size_t)(eq - p))) {
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
	free(cur);
	return buf_steal(&b);
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
	    secrets_cred_name(p, (size_t)(e - p), false)) {
		v++;
		while (isspace((unsigned char)*v))
			v++;
		buf_add(b, e, (size_t)(v - e));
	} else
		return e;
	if (*v == '"' || *v == '\'') {
		end = escape_quoted_end(v);
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
	s = secrets_mask(text);
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
	/*
	 * Redacted before it is cut, in a window: a secret that straddles the window's end is
	 * only a prefix there, which the registry does not know. Masking shrinks the text (a
	 * long token becomes "***"), so the window grows until what it gives reaches 4096
	 * bytes past the cut: a straddling piece then starts beyond it.
	 */
	size_t n = len > max + 4096 ? max + 4096 : len;
	char *s;

	if (body == NULL)
		body = "", len = n = 0;
	for (;;) {
		s = redact_text_free(xstrndup(body, n));
		if (n == len || strlen(s) >= max + 4096)
			break;
		free(s);
		n = n > len / 2 ? len : n * 2;
	}

	if (strlen(s) > max)
		s[max] = '\0';	/* maybe inside a character: jsonx_text_storable() mends it */
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

		r = secrets_mask(u);
		free(u);
		return r;
	}
	buf_init(&b);
	buf_adds(&b, "");
	while (*p != '\0') {
		bool secret;

		const char *name;

		for (k = p; isspace((unsigned char)*p); p++)
			;
		for (name = p; *p != '\0' && *p != '=' && !isspace((unsigned char)*p); p++)
			;
		secret = secrets_cred_name(name, (size_t)(p - name), false);
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
			v = escape_quoted_end(p);
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
	r = secrets_mask(b.data);
	buf_free(&b);
	return r;
}

/*
 * A JSON document's strings redacted in place, keys and numbers left alone: a secret that
 * equals a key ("delivered") or the digits of a number must not make the document invalid
 * or unreadable. A member whose name is a credential gets "***" whatever its value (not
 * an object or array: their own names are looked at).
 */
void
redact_json(json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;
	char *r;

	if (json_is_object(v)) {
		json_object_foreach(v, k, m) {
			if (!json_is_object(m) && !json_is_array(m) && !json_is_null(m) &&
			    secrets_cred_name(k, strlen(k), false))
				json_object_set_new(v, k, json_string(MASK));
			else
				redact_json(m);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			redact_json(m);
	} else if (json_is_string(v)) {
		r = redact_text(json_string_value(v));
		if (strcmp(r, json_string_value(v)) != 0)
			json_string_set(v, r);
		free(r);
	}
}
