/*
 * json.c (prefix jsonx_: jansson owns json_*) - what the project adds to jansson: dot paths
 * into a document ("a.b.0.c"), a compact JSON writer that keeps numbers as the source wrote
 * them, and what the state store (PostgreSQL text and jsonb) can hold: valid UTF-8 without
 * NUL. It knows no record, no key and no template; it never modifies a value it reads.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"

json_t *
jsonx_path_get(json_t *root, const char *path)
{
	const char	*p = path, *dot;
	char		 comp[256], *end;
	size_t		 n;
	unsigned long	 idx;

	/* One field name, the common case (a key, a timestamp, a column): no copy. */
	n = strcspn(path, ".");
	if (path[n] == '\0' && n > 0 && n < sizeof comp && json_is_object(root))
		return json_object_get(root, path);
	while (root != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (n >= sizeof comp)
			return NULL;
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (json_is_object(root))
			root = json_object_get(root, comp);
		else if (json_is_array(root) && n > 0 && isdigit((unsigned char)*comp)) {
			errno = 0;
			idx = strtoul(comp, &end, 10);
			if (*end != '\0' || errno != 0)
				return NULL;
			root = json_array_get(root, idx);
		} else
			return NULL;
		p = dot != NULL ? dot + 1 : p + n;
	}
	return root;
}

void
jsonx_path_keep(json_t *into, json_t *root, const char *path)
{
	json_t		*v = jsonx_path_get(root, path), *o = into, *next;
	const char	*p = path, *dot;
	char		*comp;

	if (v == NULL || !json_is_object(into))
		return;
	while ((dot = strchr(p, '.')) != NULL) {
		comp = xstrndup(p, (size_t)(dot - p));
		if ((next = json_object_get(o, comp)) == NULL) {
			next = json_object();
			json_object_set_new(o, comp, next);
		}
		free(comp);
		if (!json_is_object(next))
			return;	/* an array kept whole by a shorter path */
		o = next;
		p = dot + 1;
	}
	/* a copy: a longer path kept later writes into it, never into root */
	json_object_set_new(o, p, json_deep_copy(v));
}

/* UTF-8 kept as is; runs of plain bytes are copied at once. */
void
jsonx_escape(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(b, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		}
		if (esc != NULL)
			buf_adds(b, esc);
		else {
			char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			buf_add(b, u, sizeof u);
		}
	}
	buf_add(b, s + start, n - start);
}

const char *
jsonx_int_text(json_int_t v, char buf[JSONX_INT_LEN])
{
	/* by hand: printf's machinery was a few percent of a page's handling */
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	char *p = buf + JSONX_INT_LEN - 1;

	*p = '\0';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	return p;
}

/* JSON text of a string, quoted. */
static void
append_string(struct buf *b, const char *s, size_t n)
{
	buf_addc(b, '"');
	jsonx_escape(b, s, n);
	buf_addc(b, '"');
}

/*
 * The shortest decimal text that reads back as the same double: 19.99 stays "19.99"
 * (jansson's own dump prints 17 digits, "19.989999999999998"), so numbers reach the
 * destination as the source wrote them. Always keeps a '.', 'e' or "inf"-free form.
 */
static void
append_real(struct buf *b, double d)
{
	char tmp[40];

	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	buf_adds(b, tmp);
	if (strpbrk(tmp, ".eEn") == NULL)
		buf_adds(b, ".0");
}

void
jsonx_append(struct buf *b, json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;
	bool first = true;

	switch (json_typeof(v)) {
	case JSON_STRING:
		append_string(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER: {
		char t[JSONX_INT_LEN];
		const char *s = jsonx_int_text(json_integer_value(v), t);

		buf_add(b, s, (size_t)(t + JSONX_INT_LEN - 1 - s));
		return;
	}
	case JSON_REAL:
		append_real(b, json_real_value(v));
		return;
	case JSON_TRUE:
		buf_adds(b, "true");
		return;
	case JSON_FALSE:
		buf_adds(b, "false");
		return;
	case JSON_NULL:
		buf_adds(b, "null");
		return;
	case JSON_OBJECT:
		buf_addc(b, '{');
		json_object_foreach(v, k, e) {
			if (!first)
				buf_addc(b, ',');
			first = false;
			append_string(b, k, strlen(k));
			buf_addc(b, ':');
			jsonx_append(b, e);
		}
		buf_addc(b, '}');
		return;
	case JSON_ARRAY:
		buf_addc(b, '[');
		json_array_foreach(v, i, e) {
			if (i > 0)
				buf_addc(b, ',');
			jsonx_append(b, e);
		}
		buf_addc(b, ']');
		return;
	}
}

void
jsonx_append_str(struct buf *b, const char *s)
{
	append_string(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

char *
jsonx_text_storable(const char *s, size_t n, size_t max)
{
	struct buf b;
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len;

	buf_init(&b);
	while (i < n) {
		len = u[i] == 0 ? 0 : utf8_len(u + i, n - i);
		if (b.len + (len ? len : 3) > max) {
			buf_adds(&b, "...");
			break;
		}
		if (len == 0) {
			buf_adds(&b, "\xef\xbf\xbd");	/* U+FFFD */
			i++;
			continue;
		}
		buf_add(&b, s + i, len);
		i += len;
	}
	return buf_steal(&b);
}

bool
jsonx_utf8_ok(const char *s, size_t n)
{
	return jsonx_utf8_span(s, n) == n;
}

size_t
jsonx_utf8_span(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len;

	for (;;) {
		/* ASCII eight bytes at a time: most of a CSV file */
		while (i + 8 <= n) {
			uint64_t w;

			memcpy(&w, u + i, 8);
			if ((w & 0x8080808080808080ULL) != 0)
				break;
			i += 8;
		}
		if (i >= n)
			return n;
		if ((len = utf8_len(u + i, n - i)) == 0)
			return i;
		i += len;
	}
}

/* Whether n bytes at s are text PostgreSQL stores: valid UTF-8 without NUL. */
static bool
text_ok(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0, len; i < n; i += len)
		if (u[i] == 0 || (len = utf8_len(u + i, n - i)) == 0)
			return false;
	return true;
}

bool
jsonx_storable(json_t *v)
{
	const char *k;
	json_t *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return text_ok(json_string_value(v), json_string_length(v));
	case JSON_OBJECT:
		json_object_foreach(v, k, e)
			if (!text_ok(k, strlen(k)) || !jsonx_storable(e))
				return false;
		return true;
	case JSON_ARRAY:
		json_array_foreach(v, i, e)
			if (!jsonx_storable(e))
				return false;
		return true;
	default:
		return true;
	}
}

json_t *
jsonx_storable_copy(json_t *v)
{
	const char *k;
	json_t *e, *out;
	size_t i;
	char *t;

	switch (json_typeof(v)) {
	case JSON_STRING:
		t = jsonx_text_storable(json_string_value(v), json_string_length(v), SIZE_MAX);
		out = json_string(t);
		free(t);
		return out;
	case JSON_OBJECT:
		out = json_object();
		json_object_foreach(v, k, e) {
			t = jsonx_text_storable(k, strlen(k), SIZE_MAX);
			json_object_set_new(out, t, jsonx_storable_copy(e));
			free(t);
		}
		return out;
	case JSON_ARRAY:
		out = json_array();
		json_array_foreach(v, i, e)
			json_array_append_new(out, jsonx_storable_copy(e));
		return out;
	default:
		return json_incref(v);
	}
}
