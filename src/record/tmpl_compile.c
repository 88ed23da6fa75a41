/*
 * tmpl_compile.c - a {{placeholder}} template compiled once, when the config is loaded:
 * its text cut into literal parts and placeholders, each placeholder checked against what
 * its place allows, a body template checked as JSON, and {{secret:}} and {{env:}} values
 * resolved now (read from the secrets directory or the environment) and registered with
 * secrets.c at once. A secret's value never appears in an error message.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/secrets.h"
#include "record/tmpl.h"
#include "record/tmpl_compile.h"

#define SECRET_MAX	(64 * 1024)

static const struct {
	const char	*name;
	unsigned	 var;
} tmpl_names[] = {
	{ "watermark", TV_WATERMARK },
	{ "page", TV_PAGE },
	{ "offset", TV_OFFSET },
	{ "limit", TV_LIMIT },
	{ "cursor", TV_CURSOR },
	{ "key", TV_KEY },
	{ "record", TV_RECORD },
	{ "record.PATH", TV_RECORD },
	{ "dest.PATH", TV_DEST },
	{ "secret:NAME", TV_SECRET },
	{ "env:NAME", TV_ENV },
};

static void
part_add(struct tmpl *t, unsigned var, char *name, char *arg)
{
	struct tmpl_part	*p;

	t->parts = xreallocarray(t->parts, t->nparts + 1, sizeof *t->parts);
	p = &t->parts[t->nparts++];
	p->var = var;
	p->name = name;
	p->arg = arg;
	p->in_string = false;
}

/* The placeholders of a mask, for "valid here" hints. */
static char *
names_of(unsigned mask)
{
	struct buf	b;
	size_t		i;

	buf_init(&b);
	for (i = 0; i < NELEM(tmpl_names); i++) {
		if ((mask & tmpl_names[i].var) == 0)
			continue;
		buf_printf(&b, "%s{{%s}}", b.len > 0 ? ", " : "", tmpl_names[i].name);
	}
	if (b.len == 0)
		buf_adds(&b, "none");
	return buf_steal(&b);
}

/* Read secret NAME from the secrets directory. */
static char *
secret_read(const char *name, const char *dir, char **err)
{
	struct stat	 st;
	char		*path, *v, *e = NULL;
	int		 serr;

	if (*name == '\0' || strchr(name, '/') != NULL || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0) {
		*err = xasprintf("{{secret:%s}}: a secret name must be a plain file name",
		    name);
		return NULL;
	}
	if (dir == NULL)
		dir = getenv("CREDENTIALS_DIRECTORY");
	if (dir == NULL || *dir == '\0') {
		*err = xasprintf("{{secret:%s}}: no secrets directory: set "
		    "daemon.secrets_dir, or systemd's LoadCredential, which sets "
		    "$CREDENTIALS_DIRECTORY", name);
		return NULL;
	}
	path = xasprintf("%s/%s", dir, name);
	v = read_small_file(path, SECRET_MAX);
	serr = errno;
	if (v == NULL && (serr == EINVAL || serr == EISDIR) && stat(path, &st) == 0 &&
	    !S_ISREG(st.st_mode))
		/* open_regular refused it without reading (a FIFO would wait forever,
		 * /dev/zero never ends): say what it is, not "Invalid argument" */
		e = xasprintf("{{secret:%s}}: cannot read secret '%s' in %s: it is %s, "
		    "not a regular file", name, name, dir, file_kind(st.st_mode));
	else if (v == NULL)
		e = xasprintf("{{secret:%s}}: cannot read secret '%s' in %s: %s",
		    name, name, dir, strerror(serr));
	else {
		/* every trailing line break: an editor's, or two */
		size_t n = strlen(v);

		while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r'))
			v[--n] = '\0';
	}
	if (v != NULL && *v == '\0')
		e = xasprintf("{{secret:%s}}: the secret file %s is empty", name,
		    path);
	else if (v != NULL && ((stat(path, &st) == 0 && (st.st_mode & S_IWOTH)) ||
	    (stat(dir, &st) == 0 && (st.st_mode & S_IWOTH))))
		/* whoever may change a credential may send the data elsewhere */
		e = xasprintf("{{secret:%s}}: the secret file %s or its directory is "
		    "writable by every user (chmod o-w)", name, path);
	if (e != NULL) {
		*err = e;
		if (v != NULL)
			explicit_bzero(v, strlen(v));
		free(v);
		v = NULL;
	}
	free(path);
	return v;
}

/* Look up an environment variable for {{env:NAME}}. */
static char *
env_read(const char *name, char **err)
{
	const char	*p, *v;

	for (p = name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_')
			break;
	}
	if (*name == '\0' || *p != '\0' || isdigit((unsigned char)*name)) {
		*err = xasprintf("{{env:%s}}: not a valid environment variable name",
		    name);
		return NULL;
	}
	if ((v = getenv(name)) == NULL) {
		*err = xasprintf("{{env:%s}}: environment variable %s is not set", name,
		    name);
		return NULL;
	}
	if (*v == '\0') {
		/* as an empty secret file is: a credential left out by mistake */
		*err = xasprintf("{{env:%s}}: environment variable %s is empty", name, name);
		return NULL;
	}
	return xstrdup(v);
}

/* Classify a placeholder name; 0 when unknown. *arg gets the path/name part. */
static unsigned
var_of(const char *name, const char **arg)
{
	size_t	i;

	*arg = NULL;
	for (i = 0; i < NELEM(tmpl_names); i++) {
		/* plain names only; "record.PATH" and the like are patterns */
		if (strpbrk(tmpl_names[i].name, ".:") == NULL &&
		    strcmp(name, tmpl_names[i].name) == 0)
			return tmpl_names[i].var;
	}
	if (strncmp(name, "record.", 7) == 0 && name[7] != '\0') {
		*arg = name + 7;
		return TV_RECORD;
	}
	if (strncmp(name, "dest.", 5) == 0 && name[5] != '\0') {
		*arg = name + 5;
		return TV_DEST;
	}
	if (strncmp(name, "secret:", 7) == 0) {
		*arg = name + 7;
		return TV_SECRET;
	}
	if (strncmp(name, "env:", 4) == 0) {
		*arg = name + 4;
		return TV_ENV;
	}
	return 0;
}

/* Compile one placeholder (inner text already trimmed). */
static int
compile_var(struct tmpl *t, char *name, unsigned allowed, const char *secrets_dir,
    char **err)
{
	const char	*arg, *why;
	unsigned	 var;
	char		*v = NULL, *valid;

	if ((var = var_of(name, &arg)) == 0) {
		*err = xasprintf("unknown placeholder {{%s}}", name);
		return -1;
	}
	if ((allowed & var) == 0) {
		valid = names_of(allowed);
		*err = xasprintf("placeholder {{%s}} is not valid here (valid: %s)",
		    name, valid);
		free(valid);
		return -1;
	}
	if (var == TV_SECRET || var == TV_ENV) {
		v = var == TV_SECRET ? secret_read(arg, secrets_dir, err) :
		    env_read(arg, err);
		if (v == NULL)
			return -1;
		if (t->place == TMPL_HEADER && (why = tmpl_header_bad(v, strlen(v))) != NULL) {
			*err = xasprintf("{{%s}}: the value contains %s, which cannot go "
			    "in a header", name, why);
			free(v);
			return -1;
		}
		if (var == TV_SECRET)
			t->has_secret = true;
		/* whatever shows text to a user masks it from now on */
		secrets_add(v);
	} else if (arg != NULL)
		v = xstrdup(arg);
	t->uses |= var;
	part_add(t, var, xstrdup(name), v);
	return 0;
}

/* Mark the placeholders that sit inside JSON string literals of a body. */
static void
mark_strings(struct tmpl *t)
{
	bool		 in = false, esc = false;
	size_t		 i;
	const char	*s;

	for (i = 0; i < t->nparts; i++) {
		if (t->parts[i].var != 0) {
			t->parts[i].in_string = in;
			continue;
		}
		for (s = t->parts[i].arg; *s != '\0'; s++) {
			if (esc)
				esc = false;
			else if (in && *s == '\\')
				esc = true;
			else if (*s == '"')
				in = !in;
		}
	}
}

/* A body must be JSON once filled in: check with stand-in values. */
static int
check_body(struct tmpl *t, char **err)
{
	struct buf	 b;
	json_t		*j;
	json_error_t	 je;
	size_t		 i;

	buf_init(&b);
	for (i = 0; i < t->nparts; i++) {
		if (t->parts[i].var == 0)
			buf_adds(&b, t->parts[i].arg);
		else
			buf_adds(&b, t->parts[i].in_string ? "x" : "0");
	}
	j = json_loadb(b.data != NULL ? b.data : "", b.len, JSON_DECODE_ANY, &je);
	buf_free(&b);
	if (j == NULL) {
		/* jansson quotes the text "near" the error: the body's literal values may be
		 * credentials; the place is enough */
		char *near = strstr(je.text, " near '");

		if (near != NULL)
			*near = '\0';
		*err = xasprintf("the body is not valid JSON once its placeholders "
		    "are filled in: %s at line %d, column %d", je.text, je.line, je.column);
		return -1;
	}
	json_decref(j);
	return 0;
}

struct tmpl *
tmpl_compile(const char *src, enum tmpl_place place, unsigned allowed,
    const char *secrets_dir, char **err)
{
	struct tmpl	*t;
	const char	*p = src, *open, *close, *a, *z, *why;
	char		*name;

	*err = NULL;
	if (place == TMPL_HEADER && (why = tmpl_header_bad(src, strlen(src))) != NULL) {
		/* the configuration's own text: the same rule as a value's */
		*err = xasprintf("the header contains %s", why);
		return NULL;
	}
	t = xcalloc(1, sizeof *t);
	t->src = xstrdup(src);
	t->place = place;
	while ((open = strstr(p, "{{")) != NULL) {
		if (open > p)
			part_add(t, 0, NULL, xstrndup(p, (size_t)(open - p)));
		if ((close = strstr(open + 2, "}}")) == NULL) {
			*err = xasprintf("unclosed '{{' at column %zu",
			    (size_t)(open - src) + 1);
			goto fail;
		}
		for (a = open + 2; a < close && (*a == ' ' || *a == '\t'); a++)
			;
		for (z = close; z > a && (z[-1] == ' ' || z[-1] == '\t'); z--)
			;
		name = xstrndup(a, (size_t)(z - a));
		if (compile_var(t, name, allowed, secrets_dir, err) != 0) {
			free(name);
			goto fail;
		}
		free(name);
		p = close + 2;
	}
	if (*p != '\0')
		part_add(t, 0, NULL, xstrdup(p));
	if (place == TMPL_BODY) {
		mark_strings(t);
		if (check_body(t, err) != 0)
			goto fail;
	}
	return t;
fail:
	tmpl_free(t);
	return NULL;
}
