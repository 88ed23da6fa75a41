/*
 * endpoint.c - the checks a source and a destination share: the URLs a connector will
 * request (scheme, host, an origin the configuration fixes), a conninfo libpq must parse,
 * HTTP methods, table names, the keys of another connector type, and the HTTP options.
 * Every refusal names the key and the line; a text that may hold a password is not quoted.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "config/ctx.h"
#include "config/endpoint.h"
#include "core/secrets.h"
#include "core/url.h"

/*
 * A URL (or a postgresql:// URI) whose password holds a raw '/' ("u:pa/ss@h"): libpq and
 * curl end the host at the '/', read the password's pieces as a host and a port, and quote
 * them in their messages. Told at the configuration check instead.
 */
static bool
userinfo_raw_slash(const char *url, size_t n)
{
	const char *auth, *end, *slash, *colon, *p;

	if ((auth = memmem(url, n, "://", 3)) == NULL)
		return false;
	auth += 3;
	/* a raw '?' or '#' before the authority's '@' ("u:ab#cd@h"): curl ends the host there */
	end = auth + strcspn(auth, "/");
	if (end > url + n)
		end = url + n;
	if ((p = memchr(auth, '@', (size_t)(end - auth))) != NULL &&
	    auth + strcspn(auth, "?#") < p)
		return true;
	end = auth + strcspn(auth, "?#");
	if (end > url + n)
		end = url + n;
	if ((slash = memchr(auth, '/', (size_t)(end - auth))) == NULL ||
	    memchr(slash, '@', (size_t)(end - slash)) == NULL)
		return false;
	if (*auth == '[' && (p = memchr(auth, ']', (size_t)(slash - auth))) != NULL)
		auth = p;	/* an IPv6 address: its colons are no port */
	if ((colon = memchr(auth, ':', (size_t)(slash - auth))) == NULL)
		return false;
	for (p = colon + 1; p < slash; p++)
		if (!isdigit((unsigned char)*p))
			return true;	/* not a port: a password cut at a '/' */
	return false;
}
#define RAW_SLASH_MSG	"the password in the URL holds a raw '/', '?' or '#' (or the URL a " \
			"port that is not a number, then an '@'): write them in a password as " \
			"%%2F, %%3F, %%23"

/*
 * A conninfo libpq cannot parse is a configuration error here, not a connection that fails
 * on every retry. libpq's message may quote a piece of the string, which may be a piece of a
 * password: it is not repeated, only its kind.
 */
void
endpoint_conninfo(struct ctx *c, config_setting_t *g, const char *key, const char *conninfo)
{
	PQconninfoOption *o;
	char *err = NULL;
	const char *why;

	if (conninfo == NULL)
		return;
	secrets_learn_conninfo(conninfo);
	if (userinfo_raw_slash(conninfo, strlen(conninfo))) {
		ctx_errf(c, ctx_line(c, ctx_member(g, "conninfo")), "'%s': " RAW_SLASH_MSG, key);
		return;
	}
	if ((o = PQconninfoParse(conninfo, &err)) != NULL) {
		PQconninfoFree(o);
		return;
	}
	if (err != NULL && strstr(err, "invalid connection option") != NULL)
		why = "an unknown option name (a misspelt keyword, or a value with a space that "
		    "is not in single quotes)";
	else if (err != NULL && strstr(err, "missing \"=\"") != NULL)
		why = "a word without '=' (a value with a space that is not in single quotes?)";
	else if (err != NULL && strstr(err, "unterminated quoted string") != NULL)
		why = "an unterminated quoted value";
	else if (err != NULL && strstr(err, "invalid URI") != NULL)
		why = "a malformed postgresql:// URI";
	else
		why = "a string libpq cannot parse";
	ctx_errf(c, ctx_line(c, ctx_member(g, "conninfo")), "'%s' is not a valid PostgreSQL "
	    "connection string: %s (its text is not shown: it may hold a password)", key, why);
	PQfreemem(err);
}

/* HTTP options of a source or destination (prefix "jobs.*.source"). */
void
endpoint_http_opts(struct ctx *c, config_setting_t *g, const char *prefix,
    struct http_opts *h)
{
	const struct http_opts	*d = &c->d.src.http;
	char			*p;

	p = xasprintf("%s.timeout", prefix);
	(void)ctx_get_dur(c, g, p, &d->timeout_ms, &h->timeout_ms);
	free(p);
	p = xasprintf("%s.retries", prefix);
	(void)ctx_get_int32(c, g, p, &d->retries, &h->retries);
	free(p);
	p = xasprintf("%s.max_bytes", prefix);
	(void)ctx_get_int(c, g, p, &d->max_bytes, &h->max_bytes);
	free(p);
	p = xasprintf("%s.tls_verify", prefix);
	(void)ctx_get_bool(c, g, p, &d->tls_verify, &h->tls_verify);
	free(p);
	p = xasprintf("%s.ca_file", prefix);
	(void)ctx_get_str(c, g, p, false, &h->ca_file);
	free(p);
}

/* An HTTP method of a destination or a marking request. */
void
endpoint_method(struct ctx *c, config_setting_t *g, const char *key, const char *m)
{
	static const char	*ok[] = { "POST", "PUT", "PATCH", "DELETE" };
	size_t			 i;

	for (i = 0; i < NELEM(ok); i++) {
		if (strcmp(m, ok[i]) == 0)
			return;
	}
	ctx_errf(c, ctx_line(c, ctx_member(g, "method")), "'%s': unknown method '%s' "
	    "(expected POST, PUT, PATCH or DELETE)", key, m);
}

/* A table: name or schema.name. */
bool
endpoint_is_table(const char *t)
{
	const char	*dot = strchr(t, '.');
	char		*schema;
	bool		 ok;

	if (dot == NULL)
		return ctx_is_ident(t, false);
	schema = xstrndup(t, (size_t)(dot - t));
	ok = ctx_is_ident(schema, false) && ctx_is_ident(dot + 1, false);
	free(schema);
	return ok;
}

/* The F_* flag of a connector type. */
static int
conn_flag(enum conn_type type)
{
	switch (type) {
	case CONN_HTTP:
		return F_HTTP;
	case CONN_POSTGRESQL:
		return F_PG;
	case CONN_FILE:
		return F_FILE;
	}
	return 0;
}

/*
 * Keys of a source or destination group (and of its subgroups) that belong to
 * another connector type: "'source.url' is not valid for a postgresql source".
 */
void
endpoint_keys(struct ctx *c, config_setting_t *g, const char *tpath,
    enum conn_type type, const char *tname, const char *what)
{
	const struct key_def	*kd;
	config_setting_t	*e;
	char			*p;
	int			 i;

	for (i = 0; i < config_setting_length(g); i++) {
		e = config_setting_get_elem(g, (unsigned)i);
		p = xasprintf("%s.%s", tpath, config_setting_name(e));
		kd = ctx_key(p);
		if (kd != NULL && (kd->flags & F_CONN) != 0 &&
		    (kd->flags & conn_flag(type)) == 0)
			ctx_errf(c, ctx_line(c, e), "'%s' is not valid for a %s %s", ctx_dname(p),
			    tname, what);
		else if (kd != NULL && kd->type == K_GROUP && config_setting_is_group(e))
			endpoint_keys(c, e, p, type, tname, what);
		free(p);
	}
}

/*
 * A URL the configuration holds, checked as far as its literal text goes (up to the first
 * placeholder): a scheme the connector reads (a comma list), and a host (file:// takes
 * none, or localhost). A scheme or host that a placeholder supplies is known only once
 * rendered: http.c checks every URL the same way before a request goes out.
 */
void
endpoint_url(struct ctx *c, config_setting_t *at, const char *key, const char *url,
    const char *schemes)
{
	const char	*ph = strstr(url, "{{");
	char		*why = NULL;

	if (url_check(url, ph != NULL ? (size_t)(ph - url) : strlen(url), schemes,
	    &why) < 0)
		ctx_errf(c, ctx_line(c, at), "'%s': '%s': %s", key, url, why);
	else if (userinfo_raw_slash(url, ph != NULL ? (size_t)(ph - url) : strlen(url)))
		ctx_errf(c, ctx_line(c, at), "'%s': " RAW_SLASH_MSG, key);
	free(why);
}

/*
 * The origin (scheme, user, host, port) of every request comes from the configuration:
 * the literal text, {{secret:}} and {{env:}}, which must fix scheme://host/ (a '/', '?'
 * or '#' ends the host) before any placeholder whose value comes with a request. A record,
 * a key or a page value is escaped, so after that point it can never become a host; before
 * it, "https://api.example.com{{record.p}}" would let ".evil.com" or "@evil.com" choose
 * where the job's headers go. Returns the origin when it is known (NULL else).
 */
static char *
check_origin(struct ctx *c, config_setting_t *at, const char *key, const struct tmpl *t)
{
	struct buf	 pre;
	const char	*ph, *sep;
	char		*origin = NULL;

	buf_init(&pre);
	buf_adds(&pre, "");
	ph = tmpl_fixed_prefix(t, &pre);
	sep = strstr(pre.data, "://");
	if (ph != NULL && (sep == NULL || sep[3 + strcspn(sep + 3, "/?#")] == '\0'))
		ctx_errf(c, ctx_line(c, at), "'%s': {{%s}} may go only in the path or the "
		    "query, after scheme://host/ (the origin of a request comes from the "
		    "configuration, never from a value)", key, ph);
	else
		origin = url_origin(pre.data);
	explicit_bzero(pre.data, pre.len);
	buf_free(&pre);
	return origin;
}

/*
 * source.allow_origins: bare origins (scheme://host[:port]), stored as url_origin
 * writes them so that a link's origin compares as text. An http one is refused beside an
 * https source.url: a link is never followed from https to http.
 */
void
endpoint_allow_origins(struct ctx *c, config_setting_t *g, struct source_conf *s)
{
	config_setting_t	*at = ctx_member(g, "allow_origins");
	const char		*v, *auth;
	char			*o;
	size_t			 i, n;

	ctx_get_strlist(at, &s->allow_origins, &s->nallow_origins);
	for (i = 0; i < s->nallow_origins; i++) {
		config_setting_t *el = config_setting_get_elem(at, (unsigned)i);
		int line = ctx_line(c, el != NULL ? el : at);

		v = s->allow_origins[i];
		auth = strstr(v, "://");
		n = auth != NULL ? strcspn(auth + 3, "/?#") : 0;
		o = NULL;
		if (auth == NULL || memchr(auth + 3, '@', n) != NULL ||
		    (auth[3 + n] != '\0' && strcmp(auth + 3 + n, "/") != 0) ||
		    (o = url_origin(v)) == NULL)
			ctx_errf(c, line, "'source.allow_origins': '%s' is not an "
			    "origin (expected http://host or https://host, with an optional "
			    ":port and nothing after it)", v);
		else if (s->origin != NULL && strncmp(s->origin, "https:", 6) == 0 &&
		    strncmp(o, "http:", 5) == 0)
			ctx_errf(c, line, "'source.allow_origins': '%s' is http, "
			    "but source.url is https: a link is never followed from https "
			    "to http", v);
		if (o != NULL) {
			free(s->allow_origins[i]);
			s->allow_origins[i] = o;
		}
	}
}

/*
 * An HTTP URL template of the connector (source.url, destination.url, ...). When a secret
 * or an environment value supplies the scheme or the host, they are known now: the URL is
 * rendered with stand-ins for the per-request values and checked whole (named redacted).
 */
void
endpoint_http_url(struct ctx *c, config_setting_t *g, const char *name, const char *key,
    const struct tmpl *t, char **origin)
{
	struct tmpl_vals	 v = { .have = TV_WATERMARK | TV_PAGE | TV_OFFSET | TV_LIMIT |
				    TV_KEY, .watermark = "w", .page = 1, .limit = 1, .key = "k" };
	const char		*src = t != NULL ? tmpl_source(t) : NULL, *ph;
	struct buf		 url, shown;
	char			*err = NULL, *why = NULL, *o;

	if (src == NULL)
		return;
	endpoint_url(c, ctx_member(g, name), key, src, "http,https");
	o = check_origin(c, ctx_member(g, name), key, t);
	if (origin != NULL)
		*origin = o;
	else
		free(o);
	ph = strstr(src, "{{");
	if (ph == NULL || url_check(src, (size_t)(ph - src), "http,https", &why) != 1 ||
	    (tmpl_uses(t) & (TV_RECORD | TV_DEST | TV_CURSOR)) != 0) {
		free(why);	/* check_url above reported it */
		return;
	}
	free(why);
	why = NULL;
	buf_init(&url);
	buf_init(&shown);
	if (tmpl_render(t, &v, false, &url, &err) == 0 &&
	    tmpl_render(t, &v, true, &shown, &err) == 0 &&
	    url_check(url.data, url.len, "http,https", &why) < 0)
		ctx_errf(c, ctx_line(c, ctx_member(g, name)), "'%s': '%s' renders to '%s': %s", key,
		    src, shown.data, why);
	free(err);
	free(why);
	if (url.data != NULL)
		explicit_bzero(url.data, url.len);
	buf_free(&url);
	buf_free(&shown);
}
