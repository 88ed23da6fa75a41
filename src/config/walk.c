/*
 * walk.c - the first pass over a file, before any value is read: every setting against the
 * key table, everywhere, so that an unknown key (with the closest known one as a hint) or
 * a wrong type is reported even where the section parsers never look. Reads no value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/walk.h"

/* Edit distance, for "did you mean" hints. */
static size_t
distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, d[64], prev, tmp;

	if (lb >= NELEM(d))
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		d[j] = j;
	for (i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = d[j];
			d[j] = prev + (a[i - 1] != b[j - 1]);
			if (d[j - 1] + 1 < d[j])
				d[j] = d[j - 1] + 1;
			if (tmp + 1 < d[j])
				d[j] = tmp + 1;
			prev = tmp;
		}
	}
	return d[lb];
}

/* The known key under parent closest to name, or NULL. */
static const char *
closest(const char *parent, const char *name)
{
	const char	*best = NULL, *p, *l;
	size_t		 i, plen = strlen(parent), bd = 3, dd;

	for (i = 0; i < keys_count; i++) {
		p = keys_table[i].path;
		if (plen > 0 && (strncmp(p, parent, plen) != 0 || p[plen] != '.'))
			continue;
		l = plen > 0 ? p + plen + 1 : p;
		if (strchr(l, '.') != NULL)
			continue;
		if ((dd = distance(name, l)) < bd && dd < strlen(l)) {
			bd = dd;
			best = l;
		}
	}
	return best;
}

/* Check the type of a known setting; 0 when it fits. */
static int
check_type(struct ctx *c, const struct key_def *kd, config_setting_t *s)
{
	const char	*n = ctx_dname(kd->path), *what = NULL;
	int		 t = config_setting_type(s), i;

	switch (kd->type) {
	case K_GROUP:
		if (t != CONFIG_TYPE_GROUP)
			what = "a group { ... }";
		break;
	case K_JOBS:
		if (t != CONFIG_TYPE_LIST)
			what = "a list of groups ( { ... }, { ... } )";
		break;
	case K_STR:
	case K_TMPL:
		if (t != CONFIG_TYPE_STRING)
			what = "a string";
		break;
	case K_INT:
		if (!ctx_is_int(s))
			what = "an integer";
		break;
	case K_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			what = "true or false";
		break;
	case K_FLOAT:
		if (t != CONFIG_TYPE_FLOAT && !ctx_is_int(s))
			what = "a number such as 0.1";
		break;
	case K_AUTO:
		if (t != CONFIG_TYPE_BOOL && (t != CONFIG_TYPE_STRING ||
		    strcmp(config_setting_get_string(s), "auto") != 0))
			what = "true, false or \"auto\"";
		break;
	case K_DUR:
		if (t != CONFIG_TYPE_STRING && !ctx_is_int(s))
			what = "a duration such as \"30s\" (or an integer of seconds)";
		break;
	case K_STRLIST:
		if (!ctx_is_strlist(s))
			what = "a list of strings [ \"a\", \"b\" ]";
		break;
	case K_KEY:
		if (t != CONFIG_TYPE_STRING && !ctx_is_strlist(s))
			what = "a string or a list of strings";
		break;
	case K_QUERY:
		if (t != CONFIG_TYPE_GROUP) {
			if (!ctx_is_strlist(s)) {
				what = "a group { name = \"value\"; } or a list "
				    "[ \"name=value\" ]";
				break;
			}
			for (i = 0; i < config_setting_length(s); i++) {
				const char	*q = config_setting_get_string_elem(s, i);

				if (strchr(q, '=') == NULL || *q == '=')
					ctx_errf(c, ctx_line(c, s), "'%s[%d]': expected "
					    "\"name=value\", got \"%s\"", n, i, q);
			}
			break;
		}
		/* FALLTHROUGH */
	case K_MAP:
		if (t != CONFIG_TYPE_GROUP) {
			what = "a group of name = \"value\" settings";
			break;
		}
		for (i = 0; i < config_setting_length(s); i++) {
			config_setting_t	*e = config_setting_get_elem(s, i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING && !ctx_is_int(e))
				ctx_errf(c, ctx_line(c, e), "'%s.%s' must be a string", n,
				    config_setting_name(e));
		}
		break;
	}
	if (what == NULL)
		return 0;
	ctx_errf(c, ctx_line(c, s), "'%s' must be %s", n, what);
	return -1;
}

/*
 * What the errors inside a list's element are about: none for a job (its line says which),
 * "budget 'NAME'" (or "budgets[N]" before its name is known), "..., costs[N]" inside it;
 * "credential 'NAME'" (or "credentials[N]").
 */
static char *
elem_scope(const char *outer, const char *tpath, const char *dpath, config_setting_t *e,
    int j)
{
	config_setting_t	*n = config_setting_get_member(e, "name");
	const char		*leaf = strrchr(dpath, '.');

	if (strcmp(tpath, "jobs") == 0)
		return NULL;
	if (outer != NULL)
		return xasprintf("%s, %s[%d]", outer, leaf != NULL ? leaf + 1 : dpath, j);
	if (strcmp(tpath, "budgets") == 0 && n != NULL &&
	    config_setting_type(n) == CONFIG_TYPE_STRING)
		return xasprintf("budget '%s'", config_setting_get_string(n));
	if (strcmp(tpath, "credentials") == 0 && n != NULL &&
	    config_setting_type(n) == CONFIG_TYPE_STRING)
		return xasprintf("credential '%s'", config_setting_get_string(n));
	return xasprintf("%s[%d]", dpath, j);
}

/* Walk each element of a list of groups (jobs, budgets, a budget's costs). */
static void
walk_list(struct ctx *c, config_setting_t *l, const char *tpath, const char *dpath)
{
	config_setting_t	*e;
	const char		*outer = c->scope;
	char			*ep, *ed, *sc;
	int			 j;

	ep = xasprintf("%s.*", tpath);
	for (j = 0; j < config_setting_length(l); j++) {
		e = config_setting_get_elem(l, (unsigned)j);
		if (!config_setting_is_group(e)) {
			ctx_errf(c, ctx_line(c, e), "%s[%d] must be a group { ... }", dpath, j);
			continue;
		}
		ed = xasprintf("%s[%d]", dpath, j);
		sc = elem_scope(outer, tpath, dpath, e, j);
		c->scope = sc != NULL ? sc : outer;
		walk_group(c, e, ep, ed);
		c->scope = outer;
		free(sc);
		free(ed);
	}
	free(ep);
}

/* Walk a group: unknown keys and wrong types, everywhere, before anything else. */
void
walk_group(struct ctx *c, config_setting_t *g, const char *tpath, const char *dpath)
{
	config_setting_t	*s;
	const struct key_def	*kd;
	const char		*name, *hint;
	char			*cpath, *cd;
	int			 i;

	for (i = 0; i < config_setting_length(g); i++) {
		s = config_setting_get_elem(g, i);
		name = config_setting_name(s);
		cpath = *tpath != '\0' ? xasprintf("%s.%s", tpath, name) : xstrdup(name);
		if ((kd = ctx_key(cpath)) == NULL) {
			hint = closest(tpath, name);
			ctx_errf(c, ctx_line(c, s), "unknown key '%s' in %s%s%s%s", name,
			    *dpath != '\0' ? dpath : "the top level",
			    hint != NULL ? " (did you mean '" : "",
			    hint != NULL ? hint : "", hint != NULL ? "'?)" : "");
		} else if (check_type(c, kd, s) == 0 && kd->type == K_GROUP) {
			cd = *dpath != '\0' ? xasprintf("%s.%s", dpath, name) :
			    xstrdup(name);
			walk_group(c, s, cpath, cd);
			free(cd);
		} else if (kd->type == K_JOBS && config_setting_is_list(s)) {
			cd = *dpath != '\0' ? xasprintf("%s.%s", dpath, name) :
			    xstrdup(name);
			walk_list(c, s, cpath, cd);
			free(cd);
		}
		free(cpath);
	}
}
