/*
 * canon.c - the canonical form of a record, its xxh3-128 hash, and the text of
 * its key. The canonical form is jansson's compact dump with keys sorted at every
 * level (JSON_SORT_KEYS | JSON_COMPACT), UTF-8 left as is (jansson validated it on
 * input, so equal strings give equal bytes), reals with jansson's default 17
 * significant digits. Changing any of this changes every stored hash: bump
 * CANON_VERSION when it must change. This module never modifies the record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "record/canon.h"
#include "record/json.h"
#include "record/parse.h"

/* qsort order of object keys: bytewise. */
static int
cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether s is one of the n names of v. */
static bool
listed(const char *s, char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, v[i]) == 0)
			return true;
	return false;
}

/* The canonical text of v: objects with their keys sorted (bytewise), compact, strings as
 * UTF-8 with JSON escapes, numbers as jsonx_append writes them; `exclude` applies to the
 * top level only. Written by hand: it is on the hot path of every captured record. */
static void
canon_write(struct buf *b, json_t *v, char *const *exclude, size_t nexclude)
{
	const char *k, *stackkeys[64], **keys;
	size_t n = 0, i;
	json_t *e;

	if (!json_is_object(v)) {
		if (json_is_array(v)) {
			buf_addc(b, '[');
			json_array_foreach(v, i, e) {
				if (i > 0)
					buf_addc(b, ',');
				canon_write(b, e, NULL, 0);
			}
			buf_addc(b, ']');
		} else
			jsonx_append(b, v);
		return;
	}
	keys = json_object_size(v) <= NELEM(stackkeys) ? stackkeys :
	    xcalloc(json_object_size(v), sizeof *keys);
	json_object_foreach(v, k, e)
		if (!listed(k, exclude, nexclude))
			keys[n++] = k;
	qsort(keys, n, sizeof *keys, cmp_keys);
	buf_addc(b, '{');
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(b, ',');
		jsonx_append_str(b, keys[i]);
		buf_addc(b, ':');
		canon_write(b, json_object_get(v, keys[i]), NULL, 0);
	}
	buf_addc(b, '}');
	if (keys != stackkeys)
		free(keys);
}

/* "<version>:<32 hex digits>" of xxh3-128 of the canonical text. */
static void
hash_text(const struct buf *b, char out[CANON_HASH_LEN])
{
	static const char hex[] = "0123456789abcdef";
	XXH128_hash_t h;
	uint64_t parts[2];
	char *p = out;

	h = XXH3_128bits(b->data != NULL ? b->data : "", b->len);
	parts[0] = h.high64;
	parts[1] = h.low64;
	*p++ = '0' + CANON_VERSION;
	*p++ = ':';
	for (int w = 0; w < 2; w++)
		for (int sh = 60; sh >= 0; sh -= 4)
			*p++ = hex[(parts[w] >> sh) & 15];
	*p = '\0';
}

void
canon_hash(json_t *rec, char *const *fields, size_t nfields, char *const *exclude,
    size_t nexclude, char out[CANON_HASH_LEN])
{
	static struct buf b;	/* reused: one process, one thread */

	buf_reset(&b);
	if (fields != NULL && nfields > 0) {
		/* A flat object keyed by the path; missing fields are left out. */
		json_t *o = json_object(), *v;

		for (size_t i = 0; i < nfields; i++)
			if ((v = jsonx_path_get(rec, fields[i])) != NULL)
				json_object_set(o, fields[i], v);
		canon_write(&b, o, exclude, nexclude);
		json_decref(o);
	} else
		canon_write(&b, rec, exclude, nexclude);
	hash_text(&b, out);
}

struct canon_plan {
	size_t		 key;		/* the key's column */
	size_t		 n;		/* columns in the canonical form */
	size_t		*col;		/* ... in its order */
	size_t		*pre;		/* ... where each one's '{' or ',' and "name": starts
					 * in text (pre[n]: its end) */
	struct buf	 text;		/* those prefixes back to back */
};

/* A name jsonx_path_get finds as one member of a flat object. */
static bool
plain_name(const char *s)
{
	size_t n = strcspn(s, ".");

	return s[n] == '\0' && n > 0 && n < 256;
}

static char *const *sort_names;

static int
cmp_cols(const void *a, const void *b)
{
	return strcmp(sort_names[*(const size_t *)a], sort_names[*(const size_t *)b]);
}

struct canon_plan *
canon_plan_new(char *const *names, size_t n, char *const *key, size_t nkey,
    char *const *fields, size_t nfields, char *const *exclude, size_t nexclude)
{
	struct canon_plan *pl;
	size_t i, k = n;

	if (nkey != 1 || !plain_name(key[0]))
		return NULL;
	for (i = 0; i < nfields; i++)
		if (!plain_name(fields[i]))
			return NULL;
	for (i = 0; i < n; i++) {
		if (strncmp(names[i], JSON_POISON, sizeof JSON_POISON - 1) == 0)
			return NULL;
		if (strcmp(names[i], key[0]) == 0)
			k = i;
	}
	if (k == n)
		return NULL;
	pl = xcalloc(1, sizeof *pl);
	pl->key = k;
	pl->col = xcalloc(n + 1, sizeof *pl->col);
	pl->pre = xcalloc(n + 1, sizeof *pl->pre);
	for (i = 0; i < n; i++)
		if ((nfields == 0 || listed(names[i], fields, nfields)) &&
		    !listed(names[i], exclude, nexclude))
			pl->col[pl->n++] = i;
	sort_names = names;
	qsort(pl->col, pl->n, sizeof *pl->col, cmp_cols);
	buf_init(&pl->text);
	for (i = 0; i < pl->n; i++) {
		buf_addc(&pl->text, i == 0 ? '{' : ',');
		jsonx_append_str(&pl->text, names[pl->col[i]]);
		buf_adds(&pl->text, ":\"");
		pl->pre[i + 1] = pl->text.len;
	}
	return pl;
}

void
canon_plan_free(struct canon_plan *pl)
{
	if (pl == NULL)
		return;
	free(pl->col);
	free(pl->pre);
	buf_free(&pl->text);
	free(pl);
}

int
canon_row(const struct canon_plan *pl, const struct parse_row *row, char out[CANON_HASH_LEN],
    const char **key, size_t *keylen)
{
	static struct buf b;	/* reused: one process, one thread */
	static const size_t plen = sizeof JSON_POISON - 1;
	size_t i, c, start, len;

	for (i = 0, start = 0; i < row->n; start = row->fend[i++])
		if (row->fend[i] - start >= plen && row->data[start] == JSON_POISON[0] &&
		    memcmp(row->data + start, JSON_POISON, plen) == 0)
			return -1;
	start = pl->key > 0 ? row->fend[pl->key - 1] : 0;
	len = row->fend[pl->key] - start;
	if (len == 0 || len > RECORD_KEY_MAX || memchr(row->data + start, '\0', len) != NULL)
		return -1;
	*key = row->data + start;
	*keylen = len;
	buf_reset(&b);
	if (pl->n == 0)
		buf_addc(&b, '{');
	for (i = 0; i < pl->n; i++) {
		c = pl->col[i];
		start = c > 0 ? row->fend[c - 1] : 0;
		buf_add(&b, pl->text.data + pl->pre[i], pl->pre[i + 1] - pl->pre[i]);
		jsonx_escape(&b, row->data + start, row->fend[c] - start);
		buf_addc(&b, '"');
	}
	buf_addc(&b, '}');
	hash_text(&b, out);
	return 0;
}

static const char *
json_kind(json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	default:
		return "a scalar";
	}
}

/* Check one key field; *vp = its value. */
static int
key_field(json_t *rec, const char *field, json_t **vp, char **err)
{
	json_t	*v;

	if ((v = jsonx_path_get(rec, field)) == NULL) {
		*err = xasprintf("record has no key field '%s'", field);
		return -1;
	}
	if (!json_is_string(v) && !json_is_number(v)) {
		*err = xasprintf("key field '%s' is %s, not a string or number", field,
		    json_kind(v));
		return -1;
	}
	/* A key is stored in the state and names the record everywhere: an empty string
	 * names nothing, a NUL cannot be stored, and a huge key does not fit an index. */
	if (json_is_string(v) && json_string_length(v) == 0) {
		*err = xasprintf("key field '%s' is an empty string", field);
		return -1;
	}
	if (json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v))) {
		*err = xasprintf("key field '%s' contains a NUL character", field);
		return -1;
	}
	if (json_is_string(v) && json_string_length(v) > RECORD_KEY_MAX) {
		*err = xasprintf("key field '%s' is longer than %d bytes", field, RECORD_KEY_MAX);
		return -1;
	}
	*vp = v;
	return 0;
}

/*
 * The text of one key component: a string as it is, an integer in decimal, any other
 * number as JSON writes it. A number and its decimal text are thus one component: 7 and
 * "7" name the same record, in a single key as in a composite one.
 */
static char *
component_text(json_t *v)
{
	char *s, *out, tmp[JSONX_INT_LEN];

	if (json_is_string(v))
		return xstrndup(json_string_value(v), json_string_length(v));
	if (json_is_integer(v))
		return xstrdup(jsonx_int_text(json_integer_value(v), tmp));
	if ((s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
		return NULL;
	out = xstrdup(s);
	free(s);
	return out;
}

/* A composite key's text: the compact JSON array of its components' texts, all strings. */
static char *
composite_text(json_t *parts)
{
	json_t *a = json_array(), *v;
	char *t, *s = NULL;
	size_t i;

	json_array_foreach(parts, i, v) {
		if ((t = component_text(v)) == NULL) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_stringn(t, strlen(t)));
		free(t);
	}
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

int
canon_record_key(json_t *rec, char *const *fields, size_t nfields, char **out, char **err)
{
	json_t	*v, *a;
	char	*s;
	size_t	 i;

	*out = NULL;
	*err = NULL;
	if (nfields == 0) {
		*err = xstrdup("no key fields configured");
		return -1;
	}
	if (nfields == 1) {
		if (key_field(rec, fields[0], &v, err) != 0)
			return -1;
		if ((*out = component_text(v)) == NULL) {
			*err = xasprintf("key field '%s' cannot be encoded", fields[0]);
			return -1;
		}
		return 0;
	}
	a = json_array();
	for (i = 0; i < nfields; i++) {
		if (key_field(rec, fields[i], &v, err) != 0) {
			json_decref(a);
			return -1;
		}
		json_array_append(a, v);
	}
	s = composite_text(a);
	json_decref(a);
	if (s == NULL) {
		*err = xstrdup("key cannot be encoded");
		return -1;
	}
	if (strlen(s) > RECORD_KEY_MAX) {
		*err = xasprintf("key is longer than %d bytes", RECORD_KEY_MAX);
		free(s);
		return -1;
	}
	*out = xstrdup(s);
	free(s);
	return 0;
}

char *
canon_key_text_upgrade(const char *stored, size_t nfields)
{
	json_t *a, *v;
	size_t i;
	bool numbers = false;
	char *s = NULL, *out;

	if (nfields < 2 || stored[0] != '[' || (a = json_loads(stored, 0, NULL)) == NULL)
		return NULL;
	if (json_is_array(a) && json_array_size(a) == nfields) {
		json_array_foreach(a, i, v)
			if (json_is_number(v))
				numbers = true;
		if (numbers)
			s = composite_text(a);
	}
	json_decref(a);
	if (s == NULL)
		return NULL;
	out = strcmp(s, stored) != 0 ? xstrdup(s) : NULL;
	free(s);
	return out;
}

/*
 * A loose fold of a key text, for finding keys a destination's column type may equate
 * (int: "5", "05", " 5", "5.0"; uuid: letter case, hyphens, braces): ASCII letters in lower
 * case, everything but letters, digits and bytes >= 0x80 dropped, and in every run of
 * digits the leading and trailing zeros dropped. Equal after a cast implies equal folds
 * for those types; the converse is not needed (the destination compares exactly).
 */
char *
canon_key_fold(const char *key)
{
	struct buf b;
	const char *p = key;

	buf_init(&b);
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;

		if (c >= '0' && c <= '9') {
			const char *q = p, *e;

			while (*q >= '0' && *q <= '9')
				q++;
			e = q;
			while (p < e && *p == '0')
				p++;
			while (e > p && e[-1] == '0')
				e--;
			buf_add(&b, p, (size_t)(e - p));
			p = q;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			buf_addc(&b, (char)(c - 'A' + 'a'));
		else if ((c >= 'a' && c <= 'z') || c >= 0x80)
			buf_addc(&b, (char)c);
		p++;
	}
	return buf_steal(&b);
}
