/*
 * tmpl.c - {{placeholder}} templates (compiled by tmpl_compile.c), rendered per request with
 * the escaping of the place they are used in (URL, query value, header, body),
 * or raw (text: an SQL parameter, sent apart from the statement).
 * A missing value is an error, never an empty string, except in a query value,
 * where it means "leave the parameter out". Secret and environment values never appear
 * in error messages and render as "***" when the caller asks for a redacted copy.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"
#include "core/url.h"
#include "record/tmpl.h"

/* A placeholder whose value comes with a request (not from the configuration). */
#define BY_REQUEST(var)	((var) != 0 && (var) != TV_SECRET && (var) != TV_ENV)

/*
 * Why text cannot go in a header value, or NULL. A line break would end the header (and
 * forge the next); a NUL cuts it where libcurl reads it; every other control character
 * (C0 but HTAB, DEL, C1 written as UTF-8) is refused too: RFC 9110 allows none of them,
 * and servers and proxies differ on what they do with one.
 */
const char *
tmpl_header_bad(const char *s, size_t n)
{
	unsigned char	c;

	for (size_t i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '\r' || c == '\n')
			return "a line break";
		if (c == '\0')
			return "a NUL character";
		if ((c < 0x20 && c != '\t') || c == 0x7f ||
		    (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f))
			return "a control character";
	}
	return NULL;
}

/* A value looked up for rendering. */
struct val {
	enum { V_STR, V_INT, V_JSON }	 type;
	const char			*s;
	long long			 i;
	json_t				*j;
};

void
tmpl_free(struct tmpl *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nparts; i++) {
		free(t->parts[i].name);
		if (t->parts[i].arg != NULL && t->parts[i].var == TV_SECRET)
			explicit_bzero(t->parts[i].arg, strlen(t->parts[i].arg));
		free(t->parts[i].arg);
	}
	free(t->parts);
	free(t->src);
	free(t);
}

const char *
tmpl_source(const struct tmpl *t)
{
	return t->src;
}

unsigned
tmpl_uses(const struct tmpl *t)
{
	return t->uses;
}

bool
tmpl_has_secret(const struct tmpl *t)
{
	return t->has_secret;
}

static const char *
path_of(const struct tmpl *t, unsigned var, size_t *it)
{
	while (t != NULL && *it < t->nparts) {
		const struct tmpl_part *p = &t->parts[(*it)++];

		if (p->var == var && p->arg != NULL)
			return p->arg;
	}
	return NULL;
}

const char *
tmpl_record_path(const struct tmpl *t, size_t *it)
{
	return path_of(t, TV_RECORD, it);
}

const char *
tmpl_dest_path(const struct tmpl *t, size_t *it)
{
	return path_of(t, TV_DEST, it);
}

/* Source text plus resolved secret/env values, for config fingerprints only. */
void
tmpl_digest(const struct tmpl *t, struct buf *b)
{
	size_t	i;

	buf_adds(b, t->src);
	for (i = 0; i < t->nparts; i++) {
		if (t->parts[i].var == TV_SECRET || t->parts[i].var == TV_ENV) {
			buf_addc(b, '\0');
			buf_adds(b, t->parts[i].arg);
		}
	}
	buf_addc(b, '\0');
}

/* Find a part's value; 1 when missing (message in *err), -1 on a hard error. */
static int
lookup(const struct tmpl_part *p, const struct tmpl_vals *v, bool redact, struct val *out,
    char **err)
{
	json_t	*root;

	out->type = V_STR;
	switch (p->var) {
	case TV_WATERMARK:
	case TV_CURSOR:
	case TV_KEY:
		out->s = p->var == TV_WATERMARK ? v->watermark :
		    p->var == TV_CURSOR ? v->cursor : v->key;
		if ((v->have & p->var) == 0 || out->s == NULL)
			goto missing;
		return 0;
	case TV_PAGE:
	case TV_OFFSET:
	case TV_LIMIT:
		if ((v->have & p->var) == 0)
			goto missing;
		out->type = V_INT;
		out->i = p->var == TV_PAGE ? v->page :
		    p->var == TV_OFFSET ? v->offset : v->limit;
		return 0;
	case TV_SECRET:
	case TV_ENV:
		out->s = redact ? "***" : p->arg;
		return 0;
	case TV_RECORD:
	case TV_DEST:
		root = p->var == TV_RECORD ? v->record : v->dest;
		if ((v->have & p->var) == 0 || root == NULL) {
			*err = xasprintf("{{%s}}: %s", p->name, p->var == TV_RECORD ?
			    "no record is available here" :
			    "no answer from the destination to take it from");
			return 1;
		}
		out->type = V_JSON;
		out->j = p->arg == NULL ? root : jsonx_path_get(root, p->arg);
		if (out->j == NULL) {
			*err = xasprintf("{{%s}}: no field '%s' in %s", p->name, p->arg,
			    p->var == TV_RECORD ? "the record" :
			    "the destination's answer");
			return 1;
		}
		return 0;
	}
missing:
	*err = xasprintf("{{%s}}: no value is available here", p->name);
	return 1;
}

/* Text of a scalar JSON value for URL/query/header places. */
static int
scalar_text(const struct tmpl_part *p, json_t *j, struct buf *tmp, char **err)
{
	switch (json_typeof(j)) {
	case JSON_STRING:
		buf_add(tmp, json_string_value(j), json_string_length(j));
		return 0;
	case JSON_INTEGER:
	case JSON_REAL:
		jsonx_append(tmp, j);
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
		buf_adds(tmp, json_is_true(j) ? "true" : "false");
		return 0;
	case JSON_NULL:
		*err = xasprintf("{{%s}}: the value is null", p->name);
		return 1;
	default:
		break;
	}
	*err = xasprintf("{{%s}}: the value is %s; only strings and numbers can go "
	    "here", p->name, json_is_object(j) ? "an object" : "an array");
	return -1;
}

/* The key as the record holds it (new reference), NULL when unknown: a key field's own
 * value, or an array of them for a composite key. */
static json_t *
key_json(const struct tmpl_vals *v)
{
	json_t *a, *f;

	if (v->key_fields == NULL || v->nkey_fields == 0 || (v->have & TV_RECORD) == 0 ||
	    v->record == NULL)
		return NULL;
	if (v->nkey_fields == 1) {
		f = jsonx_path_get(v->record, v->key_fields[0]);
		return json_is_string(f) || json_is_number(f) ? json_incref(f) : NULL;
	}
	a = json_array();
	for (size_t i = 0; i < v->nkey_fields; i++) {
		f = jsonx_path_get(v->record, v->key_fields[i]);
		if (!json_is_string(f) && !json_is_number(f)) {
			json_decref(a);
			return NULL;
		}
		json_array_append(a, f);
	}
	return a;
}

/* Emit one value in a BODY. */
static void
emit_body(const struct tmpl_part *p, const struct val *v, struct buf *out)
{
	struct buf	tmp;

	if (v->type == V_INT) {
		buf_printf(out, "%lld", v->i);
		return;
	}
	if (v->type == V_STR || json_is_string(v->j)) {
		const char	*s = v->type == V_STR ? v->s : json_string_value(v->j);
		size_t		 n = v->type == V_STR ? strlen(s) : json_string_length(v->j);

		if (!p->in_string)
			buf_addc(out, '"');
		jsonx_escape(out, s, n);
		if (!p->in_string)
			buf_addc(out, '"');
		return;
	}
	if (!p->in_string) {
		jsonx_append(out, v->j);
		return;
	}
	buf_init(&tmp);
	jsonx_append(&tmp, v->j);
	jsonx_escape(out, tmp.data != NULL ? tmp.data : "", tmp.len);
	buf_free(&tmp);
}

/* A URL template that is one configuration value (secret or environment), used whole. */
static bool
whole_url(const struct tmpl *t)
{
	return t->place == TMPL_URL && t->nparts == 1 &&
	    (t->parts[0].var == TV_SECRET || t->parts[0].var == TV_ENV);
}

/*
 * A {{secret:}} or {{env:}} value of a URL's origin: nothing but literal text and such values
 * before it, and no '/', '?' or '#' in that text past its "://". It is the operator's text,
 * kept out of the file ("{{secret:base}}/x" fixes scheme://host/), so it goes in as is;
 * escaped, "https://h" became "https%3A%2F%2Fh". The rendered URL is still checked, and a
 * value that comes with a request is never one of these (BY_REQUEST).
 */
static bool
origin_part(const struct tmpl *t, const struct tmpl_part *p)
{
	const char	*s, *sep;

	if (t->place != TMPL_URL || (p->var != TV_SECRET && p->var != TV_ENV))
		return false;
	for (const struct tmpl_part *q = t->parts; q < p; q++) {
		if (q->var == TV_SECRET || q->var == TV_ENV)
			continue;
		if (q->var != 0)
			return false;
		s = q->arg;
		if ((sep = strstr(s, "://")) != NULL)
			s = sep + 3;
		if (strpbrk(s, "/?#") != NULL)
			return false;
	}
	return true;
}

/* Emit one value in a URL, query value, header or text. */
static int
emit_text(const struct tmpl *t, const struct tmpl_part *p, const struct val *v,
    struct buf *out, char **err)
{
	struct buf	 tmp;
	const char	*why;
	int		 r = 0;

	buf_init(&tmp);
	if (v->type == V_INT)
		buf_printf(&tmp, "%lld", v->i);
	else if (v->type == V_STR)
		buf_adds(&tmp, v->s);
	else if (t->place == TMPL_TEXT && (json_is_object(v->j) || json_is_array(v->j)))
		jsonx_append(&tmp, v->j);
	else
		r = scalar_text(p, v->j, &tmp, err);
	if (r != 0)
		goto done;
	if (tmp.data == NULL)
		buf_adds(&tmp, "");
	switch (t->place) {
	case TMPL_HEADER:
		if ((why = tmpl_header_bad(tmp.data, tmp.len)) != NULL) {
			*err = xasprintf("{{%s}}: the value contains %s, which cannot go "
			    "in a header", p->name, why);
			r = -1;
			break;
		}
		buf_add(out, tmp.data, tmp.len);
		break;
	case TMPL_TEXT:
		/* Raw: the text goes out as a NUL-terminated parameter. */
		if (memchr(tmp.data, '\0', tmp.len) != NULL) {
			*err = xasprintf("{{%s}}: the value contains a NUL character, "
			    "which cannot go in a text value", p->name);
			r = -1;
			break;
		}
		buf_add(out, tmp.data, tmp.len);
		break;
	case TMPL_URL:
		/* A {{secret:}} or {{env:}} of the origin (the whole URL, or its start) goes in
		 * as is. A value that comes with a request never does: escaped, it cannot
		 * supply a scheme, a host or a '/' (tmpl_fixed_prefix). */
		if (origin_part(t, p)) {
			buf_add(out, tmp.data, tmp.len);
			break;
		}
		/* FALLTHROUGH */
	default:
		url_escape(out, tmp.data, tmp.len);
		break;
	}
done:
	buf_free(&tmp);
	return r;
}

const char *
tmpl_fixed_prefix(const struct tmpl *t, struct buf *out)
{
	struct tmpl_vals	 none = { 0 };
	struct val		 val;
	char			*err = NULL;

	for (size_t i = 0; i < t->nparts; i++) {
		const struct tmpl_part *p = &t->parts[i];

		if (BY_REQUEST(p->var))
			return p->name;
		if (p->var == 0)
			buf_adds(out, p->arg);
		else if (lookup(p, &none, false, &val, &err) != 0 ||
		    emit_text(t, p, &val, out, &err) != 0)
			free(err);	/* not for a secret or environment value */
	}
	return NULL;
}

/*
 * A value in a URL path must stay one segment: escaping keeps '/' out of it, but a
 * segment that a value makes "", "." or ".." would still change the path ("/items/.."
 * is "/", and a server or proxy may read "%2E%2E" the same way), so such a value is
 * refused, never sent. The literal text's own segments are the operator's.
 * vs[k], ve[k]: where value k went in out; names[k] its placeholder.
 */
static int
check_segments(const struct buf *out, size_t from, const size_t *vs, const size_t *ve,
    const char *const *names, size_t nv, char **err)
{
	const char	*u = out->data + from, *p, *seg, *end;
	size_t		 n, k, s, e;

	if (nv == 0)
		return 0;
	if ((p = strstr(u, "://")) == NULL)
		return 0;
	p += 3;
	p += strcspn(p, "/?#");		/* the path, after the authority */
	end = p + strcspn(p, "?#");
	while (p < end && *p == '/') {
		seg = ++p;
		p += strcspn(p, "/?#");
		if (p > end)
			p = end;
		n = (size_t)(p - seg);
		if (n > 2 || strncmp(seg, "..", n) != 0)
			continue;
		s = (size_t)(seg - out->data);
		e = s + n;
		for (k = 0; k < nv; k++) {
			if (vs[k] >= s && ve[k] <= e) {
				*err = xasprintf("{{%s}}: the value makes the URL path segment "
				    "'%.*s', which would change the path: a value must stay "
				    "one segment", names[k], (int)n, seg);
				return -1;
			}
		}
	}
	return 0;
}

int
tmpl_render(const struct tmpl *t, const struct tmpl_vals *v, bool redact,
    struct buf *out, char **err)
{
	size_t		 i, saved = out->len, nv = 0;
	size_t		*vs = NULL, *ve = NULL;
	const char	**names = NULL;
	struct val	 val = { 0 };
	int		 r = 0;

	*err = NULL;
	if (t->place == TMPL_URL && !whole_url(t)) {
		vs = xcalloc(t->nparts + 1, sizeof *vs);
		ve = xcalloc(t->nparts + 1, sizeof *ve);
		names = xcalloc(t->nparts + 1, sizeof *names);
	}
	for (i = 0; i < t->nparts && r == 0; i++) {
		const struct tmpl_part	*p = &t->parts[i];

		if (vs != NULL && BY_REQUEST(p->var)) {
			vs[nv] = out->len;
			names[nv] = p->name;
		}
		if (p->var == 0) {
			/* A query value is plain text: all of it is encoded. */
			if (t->place == TMPL_QUERY)
				url_escape(out, p->arg, strlen(p->arg));
			else
				buf_adds(out, p->arg);
			continue;
		}
		if ((r = lookup(p, v, redact, &val, err)) != 0)
			break;
		if (redact && (p->var == TV_SECRET || p->var == TV_ENV) &&
		    t->place != TMPL_BODY) {
			buf_adds(out, "***");	/* readable in log lines, never escaped */
			continue;
		}
		if (t->place == TMPL_BODY && p->var == TV_KEY) {
			json_t *kj = key_json(v);

			if (kj != NULL) {
				val.type = V_JSON;
				val.j = kj;
			}
			emit_body(p, &val, out);
			json_decref(kj);
		} else if (t->place == TMPL_BODY)
			emit_body(p, &val, out);
		else
			r = emit_text(t, p, &val, out, err);
		if (vs != NULL && BY_REQUEST(p->var))
			ve[nv++] = out->len;
	}
	if (r == 0 && vs != NULL && out->data != NULL)
		r = check_segments(out, saved, vs, ve, names, nv, err);
	free(vs);
	free(ve);
	free(names);
	if (r == 0)
		return 0;
	out->len = saved;
	if (out->data != NULL)
		out->data[saved] = '\0';
	if (r == 1 && t->place == TMPL_QUERY) {
		free(*err);
		*err = NULL;
		return 1;
	}
	return -1;
}
