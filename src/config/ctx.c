/*
 * ctx.c - reading one configuration file: the parse context, errors collected as
 * "FILE:LINE: message" (none stops the others), the line of a setting, and the getters
 * that read a key by the table (keys.c): its type, default, limits and whether it is
 * required. Templates are compiled here, so that the literal credentials in them are
 * learnt by secrets.c before any message can quote them. Never acts on a value.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "record/tmpl_compile.h"
#include "core/secrets.h"

/* Record one error at a line. */
void
ctx_errf(struct ctx *c, int line, const char *fmt, ...)
{
	va_list	 ap;
	char	*m;

	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	strlist_addf(c->errs, "%s:%d: %s%s%s", c->file, line > 0 ? line : 1,
	    c->scope != NULL ? c->scope : "", c->scope != NULL ? ": " : "", m);
	free(m);
}

const struct key_def *
ctx_key(const char *path)
{
	size_t	i;

	for (i = 0; i < keys_count; i++) {
		if (strcmp(keys_table[i].path, path) == 0)
			return &keys_table[i];
	}
	return NULL;
}

static const struct key_def *
kd_get(const char *path)
{
	const struct key_def	*kd;

	if ((kd = ctx_key(path)) == NULL)
		abort();	/* a key missing from the table is a bug */
	return kd;
}

const char *
ctx_leaf(const char *path)
{
	const char	*p = strrchr(path, '.');

	return p != NULL ? p + 1 : path;
}

/* The name users see: "batch", "source.url", "daemon.lease"; what follows the last list
 * element ("budgets.*.costs.*.cost" is "cost", the scope of the error says which one). */
const char *
ctx_dname(const char *path)
{
	const char	*p = path, *q;

	while ((q = strstr(p, ".*.")) != NULL)
		p = q + 3;
	return p;
}

int
ctx_line(struct ctx *c, const config_setting_t *s)
{
	int	line;

	for (; s != NULL; s = config_setting_parent(s)) {
		if ((line = (int)config_setting_source_line(s)) > 0)
			return line;
	}
	return c->line;
}

config_setting_t *
ctx_member(config_setting_t *g, const char *name)
{
	if (g == NULL || !config_setting_is_group(g))
		return NULL;
	return config_setting_get_member(g, name);
}

/* A member that is a group, else NULL (wrong types are reported by walk_group()). */
config_setting_t *
ctx_group(config_setting_t *g, const char *name)
{
	config_setting_t	*s = ctx_member(g, name);

	return s != NULL && config_setting_is_group(s) ? s : NULL;
}

bool
ctx_is_int(const config_setting_t *s)
{
	int	t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

bool
ctx_is_strlist(const config_setting_t *s)
{
	int	i, n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return false;
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		if (config_setting_type(config_setting_get_elem(s, i)) !=
		    CONFIG_TYPE_STRING)
			return false;
	}
	return true;
}

/* Print a duration in ms the way users write it. */
const char *
ctx_fmt_dur(int64_t ms, char *b, size_t len)
{
	if (ms % 3600000 == 0 && ms != 0)
		snprintf(b, len, "%" PRId64 "h", ms / 3600000);
	else if (ms % 60000 == 0 && ms != 0)
		snprintf(b, len, "%" PRId64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(b, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(b, len, "%" PRId64 "ms", ms);
	return b;
}

/* A missing required key. */
void
ctx_missing(struct ctx *c, config_setting_t *g, const char *path, const char *why)
{
	ctx_errf(c, g != NULL ? ctx_line(c, g) : c->line, "missing required key '%s'%s%s",
	    ctx_dname(path), why != NULL ? " " : "", why != NULL ? why : "");
}

/* An integer key: from the file, else *inh, else the table's default. */
int
ctx_get_int(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	int64_t			 v;

	if (s == NULL || !ctx_is_int(s)) {
		if (s == NULL && (kd->flags & F_REQ)) {
			ctx_missing(c, g, path, NULL);
			return -1;
		}
		*out = inh != NULL ? *inh : strtoll(kd->def, NULL, 10);
		return s == NULL ? 0 : -1;
	}
	v = config_setting_get_int64(s);
	if (v < kd->min || v > kd->max) {
		ctx_errf(c, ctx_line(c, s), "'%s' must be between %" PRId64 " and %" PRId64
		    " (got %" PRId64 ")", ctx_dname(path), kd->min, kd->max, v);
		*out = inh != NULL ? *inh : strtoll(kd->def, NULL, 10);
		return -1;
	}
	*out = v;
	return 0;
}

/* get_int into an int. */
int
ctx_get_int32(struct ctx *c, config_setting_t *g, const char *path, const int *inh,
    int *out)
{
	int64_t	v, i = inh != NULL ? *inh : 0;
	int	r;

	r = ctx_get_int(c, g, path, inh != NULL ? &i : NULL, &v);
	*out = (int)v;
	return r;
}

/* A duration key in ms; *inh (or -1 = unset default) when absent. */
int
ctx_get_dur(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	const char		*str;
	int64_t			 v;
	char			 b1[32];

	*out = inh != NULL ? *inh : kd->def != NULL ? parse_duration_ms(kd->def) : -1;
	if (s == NULL)
		return 0;
	if (ctx_is_int(s)) {
		v = config_setting_get_int64(s);
		if (v < 0 || v > DUR_MAX / 1000) {
			ctx_errf(c, ctx_line(c, s), "'%s': bad duration %" PRId64,
			    ctx_dname(path), v);
			return -1;
		}
		v *= 1000;
	} else if ((str = config_setting_get_string(s)) != NULL) {
		if ((v = parse_duration_ms(str)) < 0) {
			ctx_errf(c, ctx_line(c, s), "'%s': bad duration '%s' (expected a "
			    "number with a unit: \"500ms\", \"30s\", \"5m\", \"1h\", "
			    "\"2d\")", ctx_dname(path), str);
			return -1;
		}
	} else
		return -1;
	if (v < kd->min) {
		ctx_errf(c, ctx_line(c, s), "'%s' must be at least %s", ctx_dname(path),
		    ctx_fmt_dur(kd->min, b1, sizeof b1));
		return -1;
	}
	if (v > kd->max) {
		ctx_errf(c, ctx_line(c, s), "'%s' is too long", ctx_dname(path));
		return -1;
	}
	*out = v;
	return 0;
}

int
ctx_get_bool(struct ctx *c, config_setting_t *g, const char *path, const bool *inh,
    bool *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));

	*out = inh != NULL ? *inh : strcmp(kd->def, "true") == 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return -1;
	*out = config_setting_get_bool(s);
	return 0;
}

/* A number between 0 and 1 (a float, or the integer 0 or 1). */
int
ctx_get_ratio(struct ctx *c, config_setting_t *g, const char *path, double *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	double			 v;

	*out = strtod(kd->def, NULL);
	if (s == NULL)
		return 0;
	if (ctx_is_int(s))
		v = (double)config_setting_get_int64(s);
	else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else
		return -1;	/* reported by walk_group() */
	if (!(v >= 0.0 && v <= 1.0)) {
		ctx_errf(c, ctx_line(c, s), "'%s' must be between 0 and 1 (got %g)",
		    ctx_dname(path), v);
		return -1;
	}
	*out = v;
	return 0;
}

/* true (1), false (0) or "auto" (-1); the table's default when absent. */
int
ctx_get_auto(struct ctx *c, config_setting_t *g, const char *path, int *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));

	*out = strcmp(kd->def, "auto") == 0 ? -1 : strcmp(kd->def, "true") == 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		*out = config_setting_get_bool(s) ? 1 : 0;
		return 0;
	}
	if (config_setting_type(s) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(s), "auto") == 0) {
		*out = -1;
		return 0;
	}
	return -1;	/* reported by walk_group() */
}

/* A string key (copied); NULL when absent and without default. */
int
ctx_get_str(struct ctx *c, config_setting_t *g, const char *path, bool req, char **out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	const char		*v;

	*out = NULL;
	if (s == NULL) {
		if (req || (kd->flags & F_REQ)) {
			ctx_missing(c, g, path, NULL);
			return -1;
		}
		if (kd->def != NULL && (kd->type == K_STR || kd->type == K_TMPL))
			*out = xstrdup(kd->def);
		return 0;
	}
	if ((v = config_setting_get_string(s)) == NULL)
		return -1;
	*out = xstrdup(v);
	return 0;
}

/* Compile a template; errors name the key. */
struct tmpl *
ctx_compile(struct ctx *c, config_setting_t *at, const char *name, const char *src,
    enum tmpl_place place, unsigned allowed)
{
	struct tmpl	*t;
	char		*err;

	t = tmpl_compile(src, place, allowed, c->cfg->daemon.secrets_dir, &err);
	/* the literal credentials in it are masked in whatever a user sees */
	if (place == TMPL_URL) {
		secrets_learn_url(src);
		if (t != NULL && strstr(src, "{{") != NULL) {
			/* "u:{{secret:p}}@h": the rendered userinfo, as Basic carries it */
			struct buf pre;

			buf_init(&pre);
			buf_adds(&pre, "");
			(void)tmpl_fixed_prefix(t, &pre);
			secrets_learn_rendered_url(pre.data);
			explicit_bzero(pre.data, pre.len);
			buf_free(&pre);
		}
	}
	else if (place == TMPL_HEADER)
		secrets_learn_header(src);
	else if (place == TMPL_BODY)
		secrets_learn_body(src);
	if (t == NULL) {
		ctx_errf(c, ctx_line(c, at), "%s: %s", name, err);
		free(err);
	}
	return t;
}

/* A template key; def_src overrides the table's default (NULL = table). */
struct tmpl *
ctx_get_tmpl(struct ctx *c, config_setting_t *g, const char *path, bool req,
    const char *def_src, enum tmpl_place place, unsigned allowed)
{
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	struct tmpl		*t;
	char			*src;

	if (ctx_get_str(c, g, path, req, &src) != 0 || (src == NULL && def_src == NULL))
		return NULL;
	if (s == NULL && def_src != NULL) {
		free(src);
		src = xstrdup(def_src);
	}
	t = ctx_compile(c, s != NULL ? s : g, ctx_dname(path), src, place, allowed);
	free(src);
	return t;
}

/* A list of strings (copied). */
void
ctx_get_strlist(config_setting_t *s, char ***v, size_t *n)
{
	int	i, len;

	*v = NULL;
	*n = 0;
	if (s == NULL || !ctx_is_strlist(s))
		return;
	len = config_setting_length(s);
	*v = xcalloc((size_t)len + 1, sizeof **v);
	for (i = 0; i < len; i++)
		(*v)[i] = xstrdup(config_setting_get_string_elem(s, i));
	*n = (size_t)len;
}

/* Header templates: each "Name: value" with a literal token name. */
void
ctx_get_headers(struct ctx *c, config_setting_t *g, const char *path, unsigned allowed,
    struct tmpl ***out, size_t *n)
{
	config_setting_t	*s = ctx_member(g, ctx_leaf(path)), *e;
	const char		*h, *p;
	char			*name;
	int			 i;

	*out = NULL;
	*n = 0;
	if (s == NULL || !ctx_is_strlist(s))
		return;
	*out = xcalloc((size_t)config_setting_length(s) + 1, sizeof **out);
	for (i = 0; i < config_setting_length(s); i++) {
		e = config_setting_get_elem(s, i);
		h = config_setting_get_string(e);
		for (p = h; *p != '\0' && (isalnum((unsigned char)*p) ||
		    strchr("!#$%&'*+-.^_`|~", *p) != NULL); p++)
			;
		if (p == h || *p != ':') {
			/* not quoted: a line without its colon is often "Authorization Bearer X" */
			ctx_errf(c, ctx_line(c, e), "'%s[%d]': expected \"Name: value\" (a name, a "
			    "colon, then the value; the text is not shown: it may hold a "
			    "credential)", ctx_dname(path), i);
			continue;
		}
		name = xasprintf("%s[%d]", ctx_dname(path), i);
		if (((*out)[*n] = ctx_compile(c, e, name, h, TMPL_HEADER, allowed)) != NULL)
			(*n)++;
		free(name);
	}
}

bool
ctx_is_name(const char *s)
{
	const char	*p;

	for (p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("_.-", *p) == NULL)
			return false;
	}
	return *s != '\0' && p - s <= 64;
}

/* A plain SQL identifier, optionally lower-case only. */
bool
ctx_is_ident(const char *s, bool lower)
{
	const char	*p;

	if (*s == '\0' || isdigit((unsigned char)*s) || strlen(s) > 63)
		return false;
	for (p = s; *p != '\0'; p++) {
		if (*p == '_' || isdigit((unsigned char)*p) ||
		    (lower ? islower((unsigned char)*p) : isalpha((unsigned char)*p)))
			continue;
		return false;
	}
	return true;
}
