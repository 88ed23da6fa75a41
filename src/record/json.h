/* json.h - jansson helpers (prefix jsonx_): dot paths, a compact writer, storable text. */
#ifndef ONESYNC_JSON_H
#define ONESYNC_JSON_H

#include <jansson.h>
#include "core/util.h"

/* Dot path lookup ("a.b.0.c"); "" returns root. Borrowed reference or NULL. */
json_t *jsonx_path_get(json_t *root, const char *path);
/* Copy the value at path in root (if any) into the object into, at the same path, objects
 * on the way (an array index becomes an object's member "0": jsonx_path_get finds it). */
void jsonx_path_keep(json_t *into, json_t *root, const char *path);

/* Append the compact JSON text of a value (a faster path than json_dumps for scalars). */
void jsonx_append(struct buf *, json_t *);
/* The decimal text of an integer, written at the end of buf; returns where it starts. */
#define JSONX_INT_LEN	21	/* "-9223372036854775808" and its NUL */
const char *jsonx_int_text(json_int_t, char buf[JSONX_INT_LEN]);
/* Append a C string as a quoted JSON string. */
void jsonx_append_str(struct buf *, const char *);
/* Append n bytes at s as the inside of a JSON string (no quotes). */
void jsonx_escape(struct buf *, const char *s, size_t n);
/* Whether n bytes at s are valid UTF-8 (NUL allowed): what json_stringn accepts. */
bool jsonx_utf8_ok(const char *s, size_t n);
/* How many of the n bytes at s are valid UTF-8 before the first sequence that is not
 * (n: all of them). */
size_t jsonx_utf8_span(const char *s, size_t n);

/*
 * What the state store (PostgreSQL text and jsonb) can hold: valid UTF-8 without NUL.
 * jsonx_text_storable: a copy of n bytes at s with every NUL or invalid byte replaced by
 * U+FFFD, cut after at most max bytes (then "..." follows). jsonx_storable: whether every
 * string and object key of v is storable. jsonx_storable_copy: a deep copy with every
 * string made storable.
 */
char *jsonx_text_storable(const char *s, size_t n, size_t max);
bool jsonx_storable(json_t *v);
json_t *jsonx_storable_copy(json_t *v);

#endif
