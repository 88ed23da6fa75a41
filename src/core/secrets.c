/*
 * secrets.c - the registry half of redaction (redact.c masks with it): every value a user
 * must never see, learnt when the configuration is loaded — every {{secret:}} and {{env:}}
 * value (tmpl.c adds them), every credential written literally (URL passwords or a user
 * without one, credential query values, header values but a few plain ones, a body's
 * credential-named values, conninfo passwords, Base64 of user:password) — each also in
 * its percent-encoded and JSON-escaped forms; and which names are credentials. Process-
 * wide and never forgotten: a run of the configuration before a reload may still use a
 * secret. It never logs and never keeps a value it is not told to hide.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpq-fe.h>

#include "core/escape.h"
#include "core/secrets.h"
#include "core/url.h"

static struct strlist	secrets;	/* longest first: one holding another is masked whole */
static struct strlist	params;		/* daemon.redact_params */
static bool		literal;	/* a credential written in the configuration learnt */
static bool		rendered;	/* learning a rendered URL: its values may be secrets */

/*
 * Which names are credentials. A name is cut into words at '_', '-', '.', ' ' and camelCase
 * boundaries ("x-api-key", "apiKey", "XApiKey": x api key), compared without case:
 *  - a word that contains one of the stems is a credential ("userPassword",
 *    "accesstoken", "client_secret");
 *  - so is a word of the list words;
 *  - "key" is a credential after a word of key_before ("api_key", "accessKey"; not
 *    "sort_key" nor "primary_key");
 *  - in a URL query or a header name only (a name the API chose, never a record's field),
 *    also the url_words ("auth", "sig", "session", "pass"...) and "key" alone.
 * Plus the names of daemon.redact_params, exactly.
 */
static const char *stems[] = { "passw", "token", "secret", "passphrase" };
static const char *words[] = {
	"pwd", "signature", "authorization", "credential", "credentials", "apikey",
	"accesskey", "privatekey", "jwt", "bearer", "cookie", "sessionid", "sessid"
};
static const char *key_before[] = {
	"api", "access", "secret", "private", "client", "auth", "app", "application",
	"consumer", "subscription", "signing", "master", "license", "encryption", "session",
	"shared", "ssh", "x"
};
static const char *url_words[] = { "auth", "sig", "session", "sid", "pass" };

static bool
in_list(const char *w, const char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

#define WORD_SEP(c)	((c) == '_' || (c) == '-' || (c) == '.' || (c) == ' ')

/* A word (n bytes, any length) holds one of the stems, compared without case. */
static bool
has_stem(const char *s, size_t n)
{
	for (size_t k = 0; k < NELEM(stems); k++) {
		size_t m = strlen(stems[k]);

		for (size_t i = 0; i + m <= n; i++)
			if (strncasecmp(s + i, stems[k], m) == 0)
				return true;
	}
	return false;
}

bool
secrets_cred_name(const char *name, size_t n, bool url)
{
	char w[64], prev[64] = "";
	size_t i = 0, wl, nwords = 0;

	for (size_t k = 0; k < params.n; k++)
		if (strlen(params.v[k]) == n && strncasecmp(params.v[k], name, n) == 0)
			return true;
	while (i < n) {
		size_t start;

		while (i < n && WORD_SEP(name[i]))
			i++;
		start = i;
		for (wl = 0; i < n && !WORD_SEP(name[i]); i++) {
			unsigned char c = (unsigned char)name[i];

			/* camelCase: "apiKey", "XApiKey" */
			if (wl > 0 && isupper(c) && (islower((unsigned char)name[i - 1]) ||
			    (i + 1 < n && islower((unsigned char)name[i + 1]))))
				break;
			if (wl + 1 < sizeof w)
				w[wl++] = (char)tolower(c);
		}
		w[wl] = '\0';	/* cut at 63 bytes: longer than any word of the lists */
		if (wl == 0)
			continue;
		if (has_stem(name + start, i - start))	/* the whole word, however long */
			return true;
		if (in_list(w, words, NELEM(words)) ||
		    (url && in_list(w, url_words, NELEM(url_words))))
			return true;
		if (strcmp(w, "key") == 0 && in_list(prev, key_before, NELEM(key_before)))
			return true;
		memcpy(prev, w, wl + 1);
		nwords++;
	}
	/* "key" alone: a query's key= is an API key; a text's key= a record's */
	return url && nwords == 1 && strcmp(prev, "key") == 0;
}

/* How many holders a value of secrets has (secrets_hold), or PINNED: for good. */
#define PINNED	SIZE_MAX
static size_t		*holds;		/* parallel to secrets.v */

static void
add_one(const char *v, bool hold)
{
	size_t i, n = strlen(v);

	if (n < SECRETS_MIN)
		return;
	for (i = 0; i < secrets.n; i++)
		if (strcmp(secrets.v[i], v) == 0) {
			if (!hold)
				holds[i] = PINNED;
			else if (holds[i] != PINNED)
				holds[i]++;
			return;
		}
	strlist_add(&secrets, xstrdup(v));
	holds = xreallocarray(holds, secrets.n, sizeof *holds);
	holds[secrets.n - 1] = hold ? 1 : PINNED;
	for (i = secrets.n - 1; i > 0 && strlen(secrets.v[i - 1]) < n; i--) {
		char *t = secrets.v[i - 1];
		size_t h = holds[i - 1];

		secrets.v[i - 1] = secrets.v[i];
		secrets.v[i] = t;
		holds[i - 1] = holds[i];
		holds[i] = h;
	}
}

/* One holder of v less; gone with the last (a value pinned stays). */
static void
forget_one(const char *v, bool hold)
{
	(void)hold;
	for (size_t i = 0; i < secrets.n; i++)
		if (strcmp(secrets.v[i], v) == 0) {
			if (holds[i] == PINNED || --holds[i] > 0)
				return;
			free(secrets.v[i]);
			memmove(&secrets.v[i], &secrets.v[i + 1], (secrets.n - i - 1) *
			    sizeof *secrets.v);
			memmove(&holds[i], &holds[i + 1], (secrets.n - i - 1) * sizeof *holds);
			secrets.n--;
			return;
		}
}

#define ESC_SLASH	1	/* '/' as \/ */
#define ESC_HTML	2	/* & < > ' = as \u00XX */
#define ESC_ASCII	4	/* not ASCII as \uXXXX (surrogate pairs beyond U+FFFF) */
#define ESC_UPPER	8	/* upper-case hex digits */

static void
u_escape(struct buf *b, unsigned cp, unsigned flags)
{
	if (flags & ESC_UPPER)
		buf_printf(b, "\\u%04X", cp);
	else
		buf_printf(b, "\\u%04x", cp);
}

/* v as a JSON string's text, escaped as flags say; false when v is not UTF-8 (and ESC_ASCII
 * asked for its characters). */
static bool
json_escaped(struct buf *b, const char *v, unsigned flags)
{
	const unsigned char *p = (const unsigned char *)v;

	while (*p != '\0') {
		unsigned c = *p, cp, n;

		if (c == '"' || c == '\\')
			buf_printf(b, "\\%c", c);
		else if (c < 0x20 || ((flags & ESC_HTML) && strchr("&<>'=", (int)c) != NULL))
			u_escape(b, c, flags);
		else if (c == '/' && (flags & ESC_SLASH))
			buf_adds(b, "\\/");
		else if (c >= 0x80 && (flags & ESC_ASCII)) {
			n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
			cp = n == 3 ? c & 0x07 : n == 2 ? c & 0x0f : c & 0x1f;
			for (unsigned i = 1; i <= n; i++) {
				if ((p[i] & 0xc0) != 0x80)
					return false;
				cp = cp << 6 | (p[i] & 0x3f);
			}
			if (n == 0)
				return false;
			if (cp >= 0x10000) {
				u_escape(b, 0xd800 + ((cp - 0x10000) >> 10), flags);
				u_escape(b, 0xdc00 + ((cp - 0x10000) & 0x3ff), flags);
			} else
				u_escape(b, cp, flags);
			p += n;
		} else
			buf_addc(b, (char)c);
		p++;
	}
	return true;
}

/* Every form of v a text may carry, each given to fn. */
static void
each_form(const char *v, void (*fn)(const char *, bool), bool hold)
{
	struct buf b;

	if (v == NULL || strlen(v) < SECRETS_MIN)
		return;
	fn(v, hold);
	/* as a rendered URL carries it, and with lower-case hex as some servers echo it */
	buf_init(&b);
	buf_adds(&b, "");
	url_escape(&b, v, strlen(v));
	fn(b.data, hold);
	for (size_t i = 0; i + 2 < b.len; i++)
		if (b.data[i] == '%') {
			b.data[i + 1] = (char)tolower((unsigned char)b.data[i + 1]);
			b.data[i + 2] = (char)tolower((unsigned char)b.data[i + 2]);
		}
	fn(b.data, hold);
	/* as a JSON string holds it (a body, an answer echoing it), in the escapings
	 * servers choose: '/' as \/ (PHP), & < > ' = as \u00XX (Go), anything not ASCII
	 * as \uXXXX (Python), lower and upper hex */
	for (unsigned f = 0; f < 16; f++) {
		buf_reset(&b);
		buf_adds(&b, "");
		if (json_escaped(&b, v, f))
			fn(b.data, hold);
	}
	buf_free(&b);
}

void
secrets_add(const char *v)
{
	each_form(v, add_one, false);
}

void
secrets_hold(const char *v)
{
	each_form(v, add_one, true);
}

void
secrets_forget(const char *v)
{
	each_form(v, forget_one, true);
}

void
secrets_add_name(const char *name)
{
	for (size_t i = 0; i < params.n; i++)
		if (strcasecmp(params.v[i], name) == 0)
			return;
	strlist_add(&params, xstrdup(name));
}

void
secrets_reset(void)
{
	strlist_free(&secrets);
	free(holds);
	holds = NULL;
	strlist_free(&params);
	literal = false;
}

/* Register a literal piece of configuration (templates: only when it has no placeholder,
 * whose values tmpl.c registers itself), as written and percent-decoded. */
/* A copy of the n bytes at v, percent-decoded. */
static char *
pct_decode(const char *v, size_t n)
{
	char *s = xstrndup(v, n), *d;
	const char *p;

	for (p = s, d = s; *p != '\0'; p++) {
		if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
			char h[3] = { p[1], p[2], '\0' };

			*d++ = (char)strtol(h, NULL, 16);
			p += 2;
		} else
			*d++ = *p;
	}
	*d = '\0';
	return s;
}

static void
learn(const char *v, size_t n)
{
	char *s = xstrndup(v, n), *d;

	if (strstr(s, "{{") == NULL) {
		if (n >= SECRETS_MIN && !rendered)
			literal = true;
		secrets_add(s);
		d = pct_decode(v, n);
		secrets_add(d);
		free(d);
	}
	free(s);
}

void
secrets_learn_url(const char *url)
{
	const char *scheme, *auth, *at, *colon, *p;
	char *user, *pass;

	if (url == NULL)
		return;
	if ((scheme = strstr(url, "://")) != NULL &&
	    (at = url_userinfo_end(auth = scheme + 3, url_is_postgres(url))) != NULL &&
	    memmem(auth, (size_t)(at - auth), "{{", 2) != NULL) {
		/* "{{env:U}}:literal@": the literal part is learnt; the rendered whole (and
		 * its Basic form) by secrets_learn_rendered_url() */
		const char *q = auth, *e;

		/* the user:password colon is after the placeholders' own ("{{env:U}}") */
		while ((e = memmem(q, (size_t)(at - q), "}}", 2)) != NULL)
			q = e + 2;
		if ((colon = memchr(q, ':', (size_t)(at - q))) != NULL && colon + 1 < at)
			learn(colon + 1, (size_t)(at - colon - 1));
	} else if (scheme != NULL && at != NULL) {
		if ((colon = memchr(auth, ':', (size_t)(at - auth))) == NULL)
			colon = at;
		if (colon + 1 < at)
			learn(colon + 1, (size_t)(at - colon - 1));
		else if (!url_is_postgres(url))
			learn(auth, (size_t)(colon - auth));	/* a token as the user */
		/* and as "Authorization: Basic" carries them */
		user = pct_decode(auth, (size_t)(colon - auth));
		pass = colon < at ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : xstrdup("");
		secrets_learn_basic(user, pass);
		free(user);
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	if (*(p = url + strcspn(url, "?#")) == '\0')
		return;
	for (p++; *p != '\0'; ) {
		size_t n = strcspn(p, "&#");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && secrets_cred_name(p, (size_t)(eq - p), true)) {
			learn(eq + 1, n - (size_t)(eq + 1 - p));
			learn(eq + 1, strcspn(eq + 1, "&"));	/* as libpq reads it */
		}
		p += n;
		if (*p != '\0')
			p++;
	}
}

void
secrets_learn_conninfo(const char *ci)
{
	PQconninfoOption *o, *e;

	if (ci == NULL || (o = PQconninfoParse(ci, NULL)) == NULL)
		return;
	for (e = o; e->keyword != NULL; e++)
		if (e->val != NULL && (strcmp(e->keyword, "password") == 0 ||
		    strcmp(e->keyword, "sslpassword") == 0)) {
			secrets_add(e->val);
			literal = true;
		}
	PQconninfoFree(o);
}

bool
secrets_literal_learnt(void)
{
	return literal;
}

void
secrets_learn_param(const char *name, const char *value)
{
	if (name != NULL && value != NULL &&
	    secrets_cred_name(name, strlen(name), true))
		learn(value, strlen(value));
}

char *
secrets_mask(const char *s)
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
			buf_adds(&b, SECRETS_MASK);
			s += n;
		} else
			buf_addc(&b, *s++);
	}
	return buf_steal(&b);
}

/* Headers whose values are no credentials: every other configured header's value is learnt
 * (an operator writes credentials into headers of any name: X-Custom-Thing). */
static const char *plain_headers[] = {
	"accept", "accept-charset", "accept-encoding", "accept-language", "cache-control",
	"connection", "content-encoding", "content-language", "content-type", "dnt",
	"expect", "if-match", "if-modified-since", "if-none-match", "if-unmodified-since",
	"origin", "pragma", "prefer", "range", "referer", "te", "user-agent",
	"x-request-id", "x-requested-with"
};

static bool
all_alpha(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isalpha((unsigned char)v[i]))
			return false;
	return true;
}

/*
 * Learn one literal piece of a value: the piece, and its credential-looking parts: the
 * values of a "a=1; b=2" list (a Cookie), the word after an auth scheme ("Bearer X").
 * templated: the piece sits next to a placeholder; then a piece of letters only is a
 * scheme word or a separator ("Bearer "), not learnt.
 */
static void
learn_piece(const char *v, size_t n, bool templated)
{
	const char *end = v + n, *p, *q, *eq, *sp;

	while (v < end && isspace((unsigned char)*v))
		v++;
	while (end > v && isspace((unsigned char)end[-1]))
		end--;
	if (end == v || (templated && all_alpha(v, (size_t)(end - v))))
		return;
	learn(v, (size_t)(end - v));
	for (p = v; p < end; p = q + 1) {
		for (q = p; q < end && *q != ';' && *q != ','; q++)
			;
		while (p < q && isspace((unsigned char)*p))
			p++;
		eq = memchr(p, '=', (size_t)(q - p));
		sp = memchr(p, ' ', (size_t)(q - p));
		if (sp != NULL && (eq == NULL || sp < eq)) {
			/* "Bearer X", "Basic B64==" */
			while (sp < q && *sp == ' ')
				sp++;
			learn(sp, (size_t)(q - sp));
		} else if (eq != NULL)
			learn_piece(eq + 1, (size_t)(q - eq - 1), templated);
		if (q == end)
			break;
	}
}

/* Learn the literal pieces of a template value: the text between its placeholders (whose
 * values tmpl.c registers itself). */
static void
learn_value(const char *v, size_t n)
{
	const char *end = v + n, *o, *c;
	bool templated = memmem(v, n, "{{", 2) != NULL;

	while (v < end) {
		o = memmem(v, (size_t)(end - v), "{{", 2);
		learn_piece(v, (size_t)((o != NULL ? o : end) - v), templated);
		if (o == NULL || (c = memmem(o, (size_t)(end - o), "}}", 2)) == NULL)
			break;
		v = c + 2;
	}
}

void
secrets_learn_value(const char *v)
{
	if (v != NULL)
		learn_value(v, strlen(v));
}

void
secrets_learn_header(const char *h)
{
	const char *colon, *v;

	if (h == NULL || (colon = strchr(h, ':')) == NULL || colon == h)
		return;
	for (v = h; v < colon; v++)
		if (!isalnum((unsigned char)*v) && strchr("!#$%&'*+-.^_`|~", *v) == NULL)
			return;	/* not a header: a ':' inside a placeholder */
	for (size_t i = 0; i < NELEM(plain_headers); i++)
		if (strlen(plain_headers[i]) == (size_t)(colon - h) &&
		    strncasecmp(plain_headers[i], h, (size_t)(colon - h)) == 0)
			return;
	for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
		;
	learn_value(v, strlen(v));
}

/*
 * A JSON body template: the string values of members whose names are credentials
 * ("key": "K", "client_secret": "S"; the names are the API's, read as a query's are),
 * their literal pieces. Placeholders make the template
 * something other than JSON, so it is scanned, not parsed.
 */
void
secrets_learn_body(const char *src)
{
	const char *p = src, *n, *ne, *v, *ve;

	if (src == NULL)
		return;
	while ((n = strchr(p, '"')) != NULL) {
		ne = escape_quoted_end(n);
		for (v = ne; isspace((unsigned char)*v); v++)
			;
		if (*v != ':' || ne[-1] != '"' || ne - n < 2) {
			p = ne;
			if (*p == '\0')
				break;
			continue;
		}
		for (v++; isspace((unsigned char)*v); v++)
			;
		if (*v == '"' && secrets_cred_name(n + 1, (size_t)(ne - n - 2), true)) {
			ve = escape_quoted_end(v);
			if (ve - v >= 2 && ve[-1] == '"')
				learn_value(v + 1, (size_t)(ve - v - 2));
		}
		p = v;
	}
}

void
secrets_learn_rendered_url(const char *url)
{
	rendered = true;
	secrets_learn_url(url);
	rendered = false;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
secrets_learn_basic(const char *user, const char *password)
{
	struct buf in, out;
	const unsigned char *s;

	if (user == NULL || password == NULL || (*user == '\0' && *password == '\0'))
		return;
	buf_init(&in);
	buf_printf(&in, "%s:%s", user, password);
	buf_init(&out);
	buf_adds(&out, "");
	s = (const unsigned char *)in.data;
	for (size_t i = 0; i < in.len; i += 3) {
		unsigned long w = (unsigned long)s[i] << 16 |
		    (i + 1 < in.len ? (unsigned long)s[i + 1] << 8 : 0) |
		    (i + 2 < in.len ? s[i + 2] : 0);

		buf_addc(&out, b64[w >> 18 & 63]);
		buf_addc(&out, b64[w >> 12 & 63]);
		buf_addc(&out, i + 1 < in.len ? b64[w >> 6 & 63] : '=');
		buf_addc(&out, i + 2 < in.len ? b64[w & 63] : '=');
	}
	/* as sent in "Authorization: Basic ..." (what a server may echo) */
	secrets_add(out.data);
	explicit_bzero(in.data, in.len);
	buf_free(&in);
	buf_free(&out);
}
