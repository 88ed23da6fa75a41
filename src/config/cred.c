/*
 * cred.c - the OAuth2 credentials of the file (`credentials = ( { ... } );`): their grant,
 * token endpoint, client and first refresh token (rendered once, now, and registered as
 * secrets so that no output shows them), HTTP options; state.encryption_key, which seals
 * what a credential keeps in the state database; and the auth keys by which a source, a
 * marking or a destination names one. Never asks for a token: that is the runtime's.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <netinet/in.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/budget.h"
#include "config/cred.h"
#include "core/aead.h"
#include "core/secrets.h"
#include "core/url.h"

static const char *cred_types[] = { "oauth2_client_credentials", "oauth2_refresh_token" };

/*
 * The value of a secret key of g (path "credentials.*.client_id"), rendered once, now, from
 * {{secret:NAME}}, {{env:NAME}} or the literal, and registered as a secret. NULL when it is
 * absent or in error (reported).
 */
static char *
render_secret(struct ctx *c, config_setting_t *g, const char *path)
{
	config_setting_t	*at = ctx_member(g, ctx_leaf(path));
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;
	struct buf		 b;
	char			*err, *out = NULL;

	if (at == NULL || config_setting_type(at) != CONFIG_TYPE_STRING)
		return NULL;	/* absent, or reported by walk_group() */
	/* a literal is a credential whole: masked before a message could quote it */
	secrets_learn_value(config_setting_get_string(at));
	t = ctx_get_tmpl(c, g, path, false, NULL, TMPL_HEADER, TV_SECRET | TV_ENV);
	if (t == NULL)
		return NULL;
	buf_init(&b);
	if (tmpl_render(t, &v, false, &b, &err) != 0) {
		ctx_errf(c, ctx_line(c, at), "'%s': %s", ctx_dname(path), err);
		free(err);
	} else if (b.len == 0)
		ctx_errf(c, ctx_line(c, at), "'%s' is empty", ctx_dname(path));
	else {
		out = xstrdup(b.data);
		secrets_add(out);
	}
	if (b.data != NULL)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	tmpl_free(t);
	return out;
}

static void
wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void
cred_conf_free(struct cred_conf *cr)
{
	free(cr->name);
	free(cr->token_url);
	wipe_free(cr->client_id);
	wipe_free(cr->client_secret);
	free(cr->scope);
	free(cr->audience);
	wipe_free(cr->refresh_token);
	free(cr->http.ca_file);
	explicit_bzero(cr, sizeof *cr);
}

const struct cred_conf *
config_cred(const struct config *cfg, const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < cfg->ncreds; i++) {
		if (cfg->creds[i].name != NULL && strcmp(cfg->creds[i].name, name) == 0)
			return &cfg->creds[i];
	}
	return NULL;
}

static void
digest_str(struct buf *b, const char *k, const char *v)
{
	if (v == NULL)
		buf_printf(b, "%s-;", k);
	else
		buf_printf(b, "%s=%zu:%s;", k, strlen(v), v);
}

void
config_cred_digest(const struct config *cfg, const char *name, struct buf *b)
{
	const struct cred_conf	*cr = config_cred(cfg, name);

	if (cr == NULL)
		return;
	digest_str(b, "cred", cr->name);
	buf_printf(b, "type=%d;basic=%d;timeout=%lld;retries=%d;tls=%d;", (int)cr->type,
	    cr->basic_auth, (long long)cr->http.timeout_ms, cr->http.retries,
	    cr->http.tls_verify);
	digest_str(b, "token_url", cr->token_url);
	digest_str(b, "client_id", cr->client_id);
	digest_str(b, "client_secret", cr->client_secret);
	digest_str(b, "scope", cr->scope);
	digest_str(b, "audience", cr->audience);
	digest_str(b, "refresh_token", cr->refresh_token);
	digest_str(b, "ca_file", cr->http.ca_file);
}

void
config_cred_origin(const struct cred_conf *cr, const unsigned char *key, char *out)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "type=%d;", (int)cr->type);
	digest_str(&b, "token_url", cr->token_url);
	digest_str(&b, "client_id", cr->client_id);
	aead_mac_hex(key, "onesyncd credential client", b.data, b.len, out);
	OPENSSL_cleanse(b.data, b.len);
	buf_reset(&b);
	buf_adds(&b, "");
	digest_str(&b, "scope", cr->scope);
	digest_str(&b, "audience", cr->audience);
	aead_mac_hex(key, "onesyncd credential scope", b.data, b.len, out + AEAD_MAC_HEX);
	buf_free(&b);
}

void
config_cred_seed(const unsigned char *key, const char *refresh_token, char *out)
{
	const char *t = refresh_token != NULL ? refresh_token : "";

	aead_mac_hex(key, "onesyncd credential seed", t, strlen(t), out);
}

/* Whether an http(s) URL's host is a loopback one: 127.0.0.0/8, ::1 or localhost. */
static bool
url_loopback(const char *url)
{
	unsigned char	 a[16];
	char		*o = url_origin(url), *h, *e;
	bool		 lo = false;

	if (o == NULL || (h = strstr(o, "://")) == NULL) {
		free(o);
		return false;
	}
	h += 3;
	if ((e = strrchr(h, ':')) != NULL)
		*e = '\0';	/* the port url_origin always writes */
	if (*h == '[' && (e = strchr(++h, ']')) != NULL)
		*e = '\0';
	if (strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0)
		lo = true;
	else if (inet_pton(AF_INET, h, a) == 1)
		lo = a[0] == 127;
	else if (inet_pton(AF_INET6, h, a) == 1)
		lo = memcmp(a, &in6addr_loopback, sizeof in6addr_loopback) == 0;
	free(o);
	return lo;
}

void
config_creds_warnings(const struct config *cfg, struct strlist *out)
{
	const struct cred_conf	*cr;

	for (size_t i = 0; i < cfg->ncreds; i++) {
		cr = &cfg->creds[i];
		if (cr->token_url != NULL && strncasecmp(cr->token_url, "http://", 7) == 0 &&
		    !url_loopback(cr->token_url))
			strlist_addf(out, "%s:%d: credential '%s': token_url is plain http to a "
			    "host that is not loopback: the client secret and the tokens would "
			    "cross the network in clear (use https)", cfg->path, cr->line,
			    cr->name != NULL ? cr->name : "?");
	}
}

/* token_url: an absolute http(s) URL, fixed (no placeholder), no userinfo, no fragment. */
static void
parse_token_url(struct ctx *c, config_setting_t *g, struct cred_conf *cr)
{
	config_setting_t	*at = ctx_member(g, "token_url");
	const char		*u, *auth;
	char			*n = NULL, *why = NULL;

	if (ctx_get_str(c, g, "credentials.*.token_url", false, &cr->token_url) != 0 ||
	    cr->token_url == NULL)
		return;
	u = cr->token_url;
	secrets_learn_url(u);
	auth = strstr(u, "://");
	if (auth != NULL && memchr(auth + 3, '@', strcspn(auth + 3, "/?#")) != NULL)
		/* not quoted: the userinfo may be a password */
		ctx_errf(c, ctx_line(c, at), "'token_url' must not hold user information "
		    "(user:password@): the client authenticates with client_id and "
		    "client_secret");
	else if (strstr(u, "{{") != NULL)
		ctx_errf(c, ctx_line(c, at), "'token_url' takes no placeholder (secrets go in "
		    "client_id, client_secret and refresh_token)");
	else if (strchr(u, '#') != NULL)
		ctx_errf(c, ctx_line(c, at), "'token_url' must not hold a fragment ('#')");
	else if (url_check(u, strlen(u), "http,https", &why) != 0 ||
	    (n = budget_url_norm(u)) == NULL)
		/* not quoted: a message naming a token is redacted whole */
		ctx_errf(c, ctx_line(c, at), "'token_url' is not an absolute http or https "
		    "URL such as \"https://auth.example.com/oauth/token\"%s%s",
		    why != NULL ? ": " : "", why != NULL ? why : "");
	free(n);
	free(why);
}

/* name: well formed and unique among the credentials before it. */
static void
parse_cred_name(struct ctx *c, config_setting_t *g, struct cred_conf *cr)
{
	config_setting_t	*s = ctx_member(g, "name");

	if (ctx_get_str(c, g, "credentials.*.name", false, &cr->name) != 0)
		return;
	if (!ctx_is_name(cr->name))
		ctx_errf(c, ctx_line(c, s), "'name': '%s' must be 1 to 64 letters, digits, '_', "
		    "'.' or '-'", cr->name);
	for (size_t i = 0; c->cfg->creds + i < cr; i++) {
		if (c->cfg->creds[i].name != NULL &&
		    strcmp(c->cfg->creds[i].name, cr->name) == 0) {
			ctx_errf(c, ctx_line(c, s), "'name': duplicate credential name '%s' (first "
			    "at line %d)", cr->name, c->cfg->creds[i].line);
			break;
		}
	}
}

/* A plain string key that, when given, must say something ("scope", "audience"). */
static void
parse_opt_str(struct ctx *c, config_setting_t *g, const char *path, char **out)
{
	if (ctx_get_str(c, g, path, false, out) == 0 && *out != NULL && **out == '\0')
		ctx_errf(c, ctx_line(c, ctx_member(g, ctx_leaf(path))), "'%s' is empty (leave "
		    "it out for none)", ctx_leaf(path));
}

/* type, client_auth and the refresh token the type needs or refuses. */
static void
parse_grant(struct ctx *c, config_setting_t *g, struct cred_conf *cr)
{
	config_setting_t	*rt = ctx_member(g, "refresh_token");
	char			*s;
	size_t			 i;
	bool			 known = false;

	if (ctx_get_str(c, g, "credentials.*.type", false, &s) == 0 && s != NULL) {
		for (i = 0; i < NELEM(cred_types); i++) {
			if (strcmp(s, cred_types[i]) == 0) {
				cr->type = (enum cred_type)i;
				known = true;
			}
		}
		if (!known)
			ctx_errf(c, ctx_line(c, ctx_member(g, "type")), "'type': unknown type "
			    "'%s' (expected oauth2_client_credentials or oauth2_refresh_token)",
			    s);
		free(s);
	}
	cr->basic_auth = true;
	if (ctx_get_str(c, g, "credentials.*.client_auth", false, &s) == 0 && s != NULL) {
		if (strcmp(s, "body") == 0)
			cr->basic_auth = false;
		else if (strcmp(s, "basic") != 0)
			ctx_errf(c, ctx_line(c, ctx_member(g, "client_auth")), "'client_auth': "
			    "unknown '%s' (expected basic, an Authorization header, or body, "
			    "form fields)", s);
		free(s);
	}
	if (known && cr->type == CRED_CLIENT_CREDENTIALS && rt != NULL)
		ctx_errf(c, ctx_line(c, rt), "'refresh_token' has no use with type "
		    "oauth2_client_credentials (the client's own credentials get the token)");
	else if (known && cr->type == CRED_REFRESH_TOKEN && rt == NULL)
		ctx_missing(c, g, "credentials.*.refresh_token", "(type oauth2_refresh_token: "
		    "the first refresh token, \"{{secret:NAME}}\")");
	else if (known && cr->type == CRED_REFRESH_TOKEN)
		cr->refresh_token = render_secret(c, g, "credentials.*.refresh_token");
	else if (rt != NULL)
		secrets_learn_value(config_setting_get_string(rt));	/* type unknown: mask */
}

static void
parse_cred(struct ctx *c, config_setting_t *g, struct cred_conf *cr, int idx)
{
	const struct http_opts	*d = &c->d.src.http;
	char			*sc;

	cr->line = c->line = ctx_line(c, g);
	c->scope = sc = xasprintf("credentials[%d]", idx);
	parse_cred_name(c, g, cr);
	if (cr->name != NULL) {
		free(sc);
		c->scope = sc = xasprintf("credential '%s'", cr->name);
	}
	/* the secrets first: learnt before any other message of this credential */
	if (ctx_member(g, "client_id") == NULL)
		ctx_missing(c, g, "credentials.*.client_id", NULL);
	cr->client_id = render_secret(c, g, "credentials.*.client_id");
	cr->client_secret = render_secret(c, g, "credentials.*.client_secret");
	parse_grant(c, g, cr);
	parse_token_url(c, g, cr);
	parse_opt_str(c, g, "credentials.*.scope", &cr->scope);
	parse_opt_str(c, g, "credentials.*.audience", &cr->audience);
	(void)ctx_get_dur(c, g, "credentials.*.timeout", &d->timeout_ms, &cr->http.timeout_ms);
	(void)ctx_get_int32(c, g, "credentials.*.retries", &d->retries, &cr->http.retries);
	(void)ctx_get_bool(c, g, "credentials.*.tls_verify", &d->tls_verify,
	    &cr->http.tls_verify);
	(void)ctx_get_str(c, g, "credentials.*.ca_file", false, &cr->http.ca_file);
	cr->http.max_bytes = d->max_bytes;
	c->scope = NULL;
	free(sc);
}

static int
hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* 64 hex digits into 32 bytes; -1 (key wiped) when s is not exactly that. */
static int
hex_key(const char *s, unsigned char key[32])
{
	int	hi, lo;

	if (strlen(s) != 64)
		return -1;
	for (size_t i = 0; i < 32; i++) {
		if ((hi = hex_digit(s[2 * i])) < 0 || (lo = hex_digit(s[2 * i + 1])) < 0) {
			explicit_bzero(key, 32);
			return -1;
		}
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/*
 * state.encryption_key: rendered once, now, a secret; 64 hex digits. Its value is never
 * quoted (its length is: that is what a user gets wrong). Required by a credential that
 * keeps a refresh token, sealed, in the state database.
 */
static void
parse_key(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = ctx_group(root, "state"), *at = ctx_member(g, "encryption_key");
	struct config		*cfg = c->cfg;
	char			*v;
	size_t			 n;

	if (at != NULL && (v = render_secret(c, g, "state.encryption_key")) != NULL) {
		n = strlen(v);
		if (n != 64)
			ctx_errf(c, ctx_line(c, at), "'state.encryption_key' must be exactly 64 "
			    "hex digits (32 bytes, e.g. from \"openssl rand -hex 32\"); it has "
			    "%zu characters", n);
		else if (hex_key(v, cfg->state.key) != 0)
			ctx_errf(c, ctx_line(c, at), "'state.encryption_key' must be exactly 64 "
			    "hex digits (0-9, a-f); it holds another character");
		else
			cfg->state.has_key = true;
		wipe_free(v);
	}
	for (size_t i = 0; at == NULL && i < cfg->ncreds; i++) {
		if (cfg->creds[i].type == CRED_REFRESH_TOKEN)
			ctx_errf(c, cfg->creds[i].line, "credential '%s': type "
			    "oauth2_refresh_token needs state.encryption_key (64 hex digits, "
			    "e.g. \"{{secret:onesync_key}}\"): its rotated refresh tokens are "
			    "kept in the state database, sealed with it",
			    cfg->creds[i].name != NULL ? cfg->creds[i].name : "?");
	}
}

void
config_creds_parse(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*l = config_setting_get_member(root, "credentials"), *e;
	int			 i, n;

	if (l != NULL && config_setting_is_list(l)) {
		n = config_setting_length(l);
		c->cfg->creds = xcalloc((size_t)n + 1, sizeof *c->cfg->creds);
		for (i = 0; i < n; i++) {
			e = config_setting_get_elem(l, (unsigned)i);
			if (!config_setting_is_group(e))
				continue;	/* reported by walk_group() */
			parse_cred(c, e, &c->cfg->creds[c->cfg->ncreds++], i);
		}
	}
	c->line = 1;
	parse_key(c, root);
}

/* The credential g's "auth" names (path: its key in the table), checked; NULL if none. */
static char *
auth_name(struct ctx *c, config_setting_t *g, const char *path)
{
	char	*name = NULL;

	if (ctx_member(g, "auth") == NULL ||
	    ctx_get_str(c, g, path, false, &name) != 0 || name == NULL)
		return NULL;
	if (config_cred(c->cfg, name) == NULL)
		ctx_errf(c, ctx_line(c, ctx_member(g, "auth")), "'%s': no credential named "
		    "'%s'%s", ctx_dname(path), name, c->cfg->ncreds == 0 ?
		    " (the file has no credentials list)" : " in credentials");
	return name;
}

/* A credential sets the Authorization header: the request's own headers must not. */
static void
no_authorization(struct ctx *c, config_setting_t *g, const char *key, const char *hkey,
    struct tmpl *const *h, size_t n)
{
	const char	*src;

	for (size_t i = 0; i < n; i++) {
		src = tmpl_source(h[i]);
		if (strcspn(src, ": \t") == 13 && strncasecmp(src, "Authorization", 13) == 0)
			ctx_errf(c, ctx_line(c, ctx_member(g, "headers")), "'%s' and an "
			    "Authorization header in '%s': the credential sets that header "
			    "(keep one of them)", key, hkey);
	}
}

/* source.auth: an HTTP source, or a file source over http(s) without a login of its own. */
static void
source_auth(struct ctx *c, config_setting_t *sg, struct source_conf *s)
{
	config_setting_t	*at = ctx_member(sg, "auth");
	const char		*u = s->file_url;

	if (s->type == CONN_POSTGRESQL || at == NULL)
		return;		/* a postgresql source: refused by endpoint_keys() */
	s->auth = auth_name(c, sg, "jobs.*.source.auth");
	if (s->auth == NULL)
		return;
	if (s->type == CONN_HTTP)
		no_authorization(c, sg, "source.auth", "source.headers", s->headers,
		    s->nheaders);
	else if (u != NULL && strncasecmp(u, "http://", 7) != 0 &&
	    strncasecmp(u, "https://", 8) != 0)
		ctx_errf(c, ctx_line(c, at), "'source.auth' works only with a file over http "
		    "or https (this one is %.*s): the token goes in an Authorization header",
		    (int)strcspn(u, ":"), u);
	else if (ctx_member(sg, "username") != NULL || ctx_member(sg, "password") != NULL)
		ctx_errf(c, ctx_line(c, at), "'source.auth' and source.username/password: "
		    "both would set the Authorization header (keep one of them)");
}

void
config_creds_auth(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*sg = ctx_group(job, "source"), *mk = ctx_group(sg, "mark");
	config_setting_t	*dg = ctx_group(job, "destination");
	const char		*outer = c->scope;
	char			*sc;

	c->scope = sc = xasprintf("job '%s'", j->name != NULL ? j->name : "?");
	source_auth(c, sg, &j->src);
	if (j->src.type == CONN_HTTP && j->src.has_mark) {
		if (ctx_member(mk, "auth") != NULL)
			j->src.mark_auth = auth_name(c, mk, "jobs.*.source.mark.auth");
		else if (j->src.auth != NULL)
			j->src.mark_auth = xstrdup(j->src.auth);
		if (j->src.mark_auth != NULL)
			no_authorization(c, mk, ctx_member(mk, "auth") != NULL ?
			    "source.mark.auth" : "source.auth (which source.mark.auth defaults "
			    "to)", "source.mark.headers", j->src.mark_headers,
			    j->src.mark_nheaders);
	}
	if (j->dst.type == CONN_HTTP && ctx_member(dg, "auth") != NULL) {
		j->dst.auth = auth_name(c, dg, "jobs.*.destination.auth");
		if (j->dst.auth != NULL)
			no_authorization(c, dg, "destination.auth", "destination.headers",
			    j->dst.headers, j->dst.nheaders);
	}
	c->scope = outer;
	free(sc);
}
