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
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <libpq-fe.h>

#include "core/redact.h"

#define MASK	"***"

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
/* Headers whose whole value is a credential. */
static const char *auth_headers[] = {
	"authorization", "proxy-authorization", "cookie", "set-cookie"
};

static bool
in_list(const char *w, const char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w, list[i]) == 0)
			return true;
	return false;
}

#define WORD_SEP(c)	((c) == '_' || (c) == '-' || (c) == '.' || (c) == ' ')

static bool
cred_name(const char *name, size_t n, bool url)
{
	char w[64], prev[64] = "";
	size_t i = 0, wl, nwords = 0;

	for (size_t k = 0; k < params.n; k++)
		if (strlen(params.v[k]) == n && strncasecmp(params.v[k], name, n) == 0)
			return true;
	while (i < n) {
		while (i < n && WORD_SEP(name[i]))
			i++;
		for (wl = 0; i < n && !WORD_SEP(name[i]); i++) {
			unsigned char c = (unsigned char)name[i];

			/* camelCase: "apiKey", "XApiKey" */
			if (wl > 0 && isupper(c) && (islower((unsigned char)name[i - 1]) ||
			    (i + 1 < n && islower((unsigned char)name[i + 1]))))
				break;
			if (wl + 1 < sizeof w)
				w[wl++] = (char)tolower(c);
		}
		w[wl] = '\0';
		if (wl == 0)
			continue;
		for (size_t k = 0; k < NELEM(stems); k++)
			if (strstr(w, stems[k]) != NULL)
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

void
redact_add_secret(const char *v)
{
	struct buf b;

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
	/* as a JSON string holds it (a body, an answer echoing it), in the escapings
	 * servers choose: '/' as \/ (PHP), & < > ' = as \u00XX (Go), anything not ASCII
	 * as \uXXXX (Python), lower and upper hex */
	for (unsigned f = 0; f < 16; f++) {
		buf_reset(&b);
		buf_adds(&b, "");
		if (json_escaped(&b, v, f))
			add_one(b.data);
	}
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
		if (n >= REDACT_MIN && !rendered)
			literal = true;
		redact_add_secret(s);
		d = pct_decode(v, n);
		redact_add_secret(d);
		free(d);
	}
	free(s);
}

/*
 * Where a URL's userinfo ends (its '@'), or NULL. The last '@' before the path (libpq reads
 * '?' and '#' as part of a URI's password; curl ends the authority there); failing that, the last '@' before the query: a
 * password written with a raw '/' is cut there by libpq and curl alike, which then quote
 * its pieces as a host or a port, so it is hidden as if it were one.
 */
static bool
pg_uri(const char *url)
{
	return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

static const char *
userinfo_end(const char *auth, bool pg)
{
	const char *hostend = auth + strcspn(auth, pg ? "/" : "/?#");
	const char *at = memrchr(auth, '@', (size_t)(hostend - auth));

	if (at == NULL)
		at = memrchr(auth, '@', strcspn(auth, "?#"));
	if (at == NULL && !pg)
		/* a raw '#' or '?' in a password ("u:ab#cd@h", which -t refuses): curl
		 * cannot parse it and quotes it whole in its message */
		at = memrchr(auth, '@', strcspn(auth, "/"));
	return at;
}

void
redact_learn_url(const char *url)
{
	const char *scheme, *auth, *at, *colon, *p;
	char *user, *pass;

	if (url == NULL)
		return;
	if ((scheme = strstr(url, "://")) != NULL &&
	    (at = userinfo_end(auth = scheme + 3, pg_uri(url))) != NULL &&
	    memmem(auth, (size_t)(at - auth), "{{", 2) != NULL) {
		/* "{{env:U}}:literal@": the literal part is learnt; the rendered whole (and
		 * its Basic form) by redact_learn_rendered_url() */
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
		else if (!pg_uri(url))
			learn(auth, (size_t)(colon - auth));	/* a token as the user */
		/* and as "Authorization: Basic" carries them */
		user = pct_decode(auth, (size_t)(colon - auth));
		pass = colon < at ? pct_decode(colon + 1, (size_t)(at - colon - 1)) : xstrdup("");
		redact_learn_basic(user, pass);
		free(user);
		explicit_bzero(pass, strlen(pass));
		free(pass);
	}
	if (*(p = url + strcspn(url, "?#")) == '\0')
		return;
	for (p++; *p != '\0'; ) {
		size_t n = strcspn(p, "&#");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && cred_name(p, (size_t)(eq - p), true)) {
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
		    strcmp(e->keyword, "sslpassword") == 0)) {
			redact_add_secret(e->val);
			literal = true;
		}
	PQconninfoFree(o);
}

bool
redact_literal_learnt(void)
{
	return literal;
}

void
redact_learn_param(const char *name, const char *value)
{
	if (name != NULL && value != NULL &&
	    cred_name(name, strlen(name), true))
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
		/* the last '@': a password written with a bare '@' is hidden whole */
		const char *at = userinfo_end(auth, pg_uri(url));
		const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;

		if (colon != NULL && colon + 1 < at) {
			/* user:password: the user stays, to tell accounts apart */
			buf_add(&b, url, (size_t)(colon + 1 - url));
			buf_adds(&b, MASK);
			p = at;
		} else if (at != NULL && at > auth && !pg_uri(url)) {
			/* no password: the user is the credential ("https://TOKEN@h"); not in
			 * a postgresql:// URI, whose user is a role (its password in .pgpass) */
			buf_add(&b, url, (size_t)(auth - url));
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

		if (eq != NULL && cred_name(p, (size_t)(eq - p), true)) {
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
redact_learn_value(const char *v)
{
	if (v != NULL)
		learn_value(v, strlen(v));
}

void
redact_learn_header(const char *h)
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
redact_learn_body(const char *src)
{
	const char *p = src, *n, *ne, *v, *ve;

	if (src == NULL)
		return;
	while ((n = strchr(p, '"')) != NULL) {
		ne = quoted_end(n);
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
		if (*v == '"' && cred_name(n + 1, (size_t)(ne - n - 2), true)) {
			ve = quoted_end(v);
			if (ve - v >= 2 && ve[-1] == '"')
				learn_value(v + 1, (size_t)(ve - v - 2));
		}
		p = v;
	}
}

void
redact_learn_rendered_url(const char *url)
{
	rendered = true;
	redact_learn_url(url);
	rendered = false;
}

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
redact_learn_basic(const char *user, const char *password)
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
	redact_add_secret(out.data);
	explicit_bzero(in.data, in.len);
	buf_free(&in);
	buf_free(&out);
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
	    cred_name(p, (size_t)(e - p), false)) {
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
		secret = cred_name(k, (size_t)(p - k), false);
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
			    cred_name(k, strlen(k), false))
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
