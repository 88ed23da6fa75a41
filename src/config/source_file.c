/*
 * source_file.c - a file source (strategy capture): one snapshot in CSV, NDJSON or a JSON
 * array over file, ftp(s), sftp or http(s): its URL (no password in it, no placeholder),
 * format, SSH key and pinned host key, user and password (rendered once, now), and the
 * rule every other key of the job obeys with a CSV file: its fields are flat.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/endpoint.h"
#include "config/source_file.h"
#include "core/secrets.h"
#include "core/url.h"

static const char *file_schemes[] = { "file", "ftp", "ftps", "sftp", "http", "https" };
static const char *file_formats[] = { "csv", "ndjson", "json" };

/*
 * The scheme of a file source's URL (lower case, into scheme), or an error.
 * A password in the URL is refused: it belongs in source.password.
 */
static int
file_url_scheme(struct ctx *c, config_setting_t *at, const char *url, char *scheme,
    size_t len)
{
	const char	*p, *auth, *end, *at_sign, *colon;
	size_t		 i, n;

	for (p = url; isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	    *p == '.'; p++)
		;
	n = (size_t)(p - url);
	if (n == 0 || strncmp(p, "://", 3) != 0 || !isalpha((unsigned char)*url)) {
		ctx_errf(c, ctx_line(c, at), "'source.url': '%s' is not a URL such as "
		    "sftp://host/path/items.csv or file:///srv/export/items.csv", url);
		return -1;
	}
	if (strstr(url, "{{") != NULL) {
		ctx_errf(c, ctx_line(c, at), "'source.url': the url of a file source takes "
		    "no placeholders (a password goes in source.password)");
		return -1;
	}
	for (i = 0; i < n && i + 1 < len; i++)
		scheme[i] = (char)tolower((unsigned char)url[i]);
	scheme[i] = '\0';
	for (i = 0; i < NELEM(file_schemes); i++) {
		if (strcmp(scheme, file_schemes[i]) == 0)
			break;
	}
	if (i == NELEM(file_schemes)) {
		ctx_errf(c, ctx_line(c, at), "'source.url': unknown scheme '%s' (a file "
		    "source reads file, ftp, ftps, sftp, http or https URLs)", scheme);
		return -1;
	}
	/* user:password@ in the authority would end up in logs. */
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	at_sign = memchr(auth, '@', (size_t)(end - auth));
	colon = at_sign != NULL ? memchr(auth, ':', (size_t)(at_sign - auth)) : NULL;
	if (colon != NULL) {
		ctx_errf(c, ctx_line(c, at), "'source.url': a password in the URL would be "
		    "logged; give it in source.password as \"{{secret:NAME}}\"");
		return -1;
	}
	return 0;
}

/* The SHA256 host key fingerprint as OpenSSH prints it, stored without "SHA256:" and '='. */
static void
parse_host_sha256(struct ctx *c, config_setting_t *g, struct source_conf *s)
{
	static const char	*b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	config_setting_t	*at = ctx_member(g, "ssh_host_sha256");
	char			*v, *p;
	const char		*q;
	size_t			 n;

	if (ctx_get_str(c, g, "jobs.*.source.ssh_host_sha256", false, &v) != 0 || v == NULL)
		return;
	p = strncmp(v, "SHA256:", 7) == 0 ? v + 7 : v;
	n = strlen(p);
	if (n == 44 && p[43] == '=')
		n = 43;
	/* 32 bytes: 43 characters, the last one carrying 2 bits of padding (zero). */
	if (n != 43 || strspn(p, b64) < 43 ||
	    (q = strchr(b64, p[42])) == NULL || (q - b64) % 4 != 0) {
		ctx_errf(c, ctx_line(c, at), "'source.ssh_host_sha256': '%s' is not a "
		    "base64 SHA-256 fingerprint (43 characters, as printed by "
		    "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server "
		    "after \"SHA256:\")", v);
		free(v);
		return;
	}
	s->ssh_host_sha256 = xstrndup(p, 43);
	free(v);
}

/*
 * A file source (strategy capture): one snapshot in CSV, NDJSON or a JSON array,
 * read over libcurl from file://, ftp(s)://, sftp:// or http(s)://.
 */
void
config_source_file_parse(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	static const int64_t	 file_timeout = 10 * 60 * 1000, no_limit = 0;
	struct source_conf	*s = &j->src;
	const struct http_opts	*d = &c->d.src.http;
	config_setting_t	*at;
	struct tmpl		*t;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			 scheme[16] = "", *str, *err;
	size_t			 i;
	bool			 sftp, local;

	if (c->strat_ok && j->strategy != STRAT_CAPTURE)
		ctx_errf(c, ctx_line(c, ctx_member(g, "type")), "a file source works only with "
		    "strategy 'capture' (every run reads the whole file: there is no "
		    "watermark or flag to filter it by)");
	if (ctx_get_str(c, g, "jobs.*.source.url", true, &s->file_url) == 0)
		secrets_learn_url(s->file_url);
	if (s->file_url != NULL &&
	    file_url_scheme(c, ctx_member(g, "url"), s->file_url, scheme,
	    sizeof scheme) != 0)
		*scheme = '\0';
	else if (s->file_url != NULL)
		endpoint_url(c, ctx_member(g, "url"), "source.url", s->file_url,
		    "file,ftp,ftps,sftp,http,https");
	sftp = strcmp(scheme, "sftp") == 0;
	local = strcmp(scheme, "file") == 0;
	/* Over http(s), redirects stay within these origins (http.c). */
	if (s->file_url != NULL)
		s->origin = url_origin(s->file_url);
	endpoint_allow_origins(c, g, s);

	if (ctx_get_str(c, g, "jobs.*.source.format", false, &str) == 0) {
		for (i = 0; i < NELEM(file_formats); i++) {
			if (strcmp(str, file_formats[i]) == 0)
				break;
		}
		if (i == NELEM(file_formats))
			ctx_errf(c, ctx_line(c, ctx_member(g, "format")), "'source.format': "
			    "unknown format '%s' (expected csv, ndjson or json)", str);
		else
			s->file_format = (enum file_format)i;
		free(str);
	}
	s->delimiter = ',';
	at = ctx_member(g, "delimiter");
	if (at != NULL && s->file_format != FILE_CSV)
		ctx_errf(c, ctx_line(c, at), "'source.delimiter' is used only with format "
		    "'csv'");
	else if (ctx_get_str(c, g, "jobs.*.source.delimiter", false, &str) == 0) {
		if (strlen(str) != 1 || (unsigned char)*str >= 0x80 || *str == '"' ||
		    *str == '\n' || *str == '\r')
			ctx_errf(c, ctx_line(c, at), "'source.delimiter' must be one character "
			    "other than '\"', CR or LF, such as \",\", \";\", \"|\" or "
			    "\"\\t\"");
		else
			s->delimiter = *str;
		free(str);
	}
	(void)ctx_get_auto(c, g, "jobs.*.source.gzip", &s->gzip);

	at = ctx_member(g, "ssh_key");
	if (at != NULL && *scheme != '\0' && !sftp)
		ctx_errf(c, ctx_line(c, at), "'source.ssh_key' is used only with an sftp:// "
		    "url (this one is %s://)", scheme);
	else if (ctx_get_str(c, g, "jobs.*.source.ssh_key", false, &s->ssh_key) == 0 &&
	    s->ssh_key != NULL && *s->ssh_key == '\0')
		ctx_errf(c, ctx_line(c, at), "'source.ssh_key' is empty");
	at = ctx_member(g, "ssh_host_sha256");
	if (at != NULL && *scheme != '\0' && !sftp)
		ctx_errf(c, ctx_line(c, at), "'source.ssh_host_sha256' is used only with an "
		    "sftp:// url (this one is %s://)", scheme);
	else
		parse_host_sha256(c, g, s);

	at = ctx_member(g, "username");
	if (at != NULL && local)
		ctx_errf(c, ctx_line(c, at), "'source.username' has no use with a file:// "
		    "url");
	else
		(void)ctx_get_str(c, g, "jobs.*.source.username", false, &s->username);
	at = ctx_member(g, "password");
	if (at != NULL && local)
		ctx_errf(c, ctx_line(c, at), "'source.password' has no use with a file:// "
		    "url");
	else if (at != NULL && (t = ctx_get_tmpl(c, g, "jobs.*.source.password", false,
	    NULL, TMPL_HEADER, TV_SECRET | TV_ENV)) != NULL) {
		/* Rendered once, now: only secrets and environment values. */
		buf_init(&b);
		if (tmpl_render(t, &v, false, &b, &err) != 0) {
			ctx_errf(c, ctx_line(c, at), "source.password: %s", err);
			free(err);
		} else {
			s->password = xstrdup(b.data != NULL ? b.data : "");
			/* a literal password too; and as "Authorization: Basic" carries it */
			secrets_add(s->password);
			secrets_learn_basic(s->username != NULL ? s->username : "",
			    s->password);
		}
		if (b.data != NULL)
			explicit_bzero(b.data, b.len);
		buf_free(&b);
		tmpl_free(t);
	}

	/* libcurl's options: one whole transfer, never retried within a run. */
	(void)ctx_get_dur(c, g, "jobs.*.source.timeout", &file_timeout, &s->http.timeout_ms);
	s->http.retries = 0;
	if (ctx_member(g, "max_bytes") == NULL)
		s->http.max_bytes = 0;
	else
		(void)ctx_get_int(c, g, "jobs.*.source.max_bytes", &no_limit,
		    &s->http.max_bytes);
	(void)ctx_get_bool(c, g, "jobs.*.source.tls_verify", &d->tls_verify,
	    &s->http.tls_verify);
	(void)ctx_get_str(c, g, "jobs.*.source.ca_file", false, &s->http.ca_file);
}

/* A CSV file's fields are flat strings: a dotted path into one can never match. */
void
config_source_file_flat(struct ctx *c, int line, const struct job_conf *j, const char *key,
    const char *path)
{
	if (j->src.type == CONN_FILE && j->src.file_format == FILE_CSV && path != NULL &&
	    strchr(path, '.') != NULL)
		ctx_errf(c, line, "'%s': '%s' is a dotted path, but the source is a CSV file, "
		    "whose fields are flat strings (a path into one never matches): name a header "
		    "field", key, path);
}

/* config_source_file_flat for each {{record.PATH}} of template t, set at g's member name. */
void
config_source_file_flat_tmpl(struct ctx *c, config_setting_t *g, const char *name,
    const struct job_conf *j, const char *key, const struct tmpl *t)
{
	const char	*path;
	size_t		 it = 0;

	while (t != NULL && (path = tmpl_record_path(t, &it)) != NULL)
		config_source_file_flat(c, ctx_line(c, ctx_member(g, name)), j, key, path);
}
