/* canon.h - canonical form of a record and its xxh3-128 hash. */
#ifndef ONESYNC_CANON_H
#define ONESYNC_CANON_H

#include <jansson.h>
#include "core/util.h"

#define CANON_VERSION	1
#define CANON_HASH_LEN	35	/* "1:" + 32 hex digits + NUL */

/*
 * Canonical form: sorted keys, compact, only `fields` when given (NULL = all), minus
 * `exclude` (top-level names). Hash = "<version>:<32 hex>" of xxh3-128 of that form.
 */
void canon_hash(json_t *rec, char *const *fields, size_t nfields, char *const *exclude,
    size_t nexclude, char out[CANON_HASH_LEN]);

/* Text of a record's key. A component's text: a string raw, an integer in decimal, another
 * number as JSON writes it (so 7 and "7" are one key). One field -> that text; several ->
 * the compact JSON array of those texts, as strings (["t","7"]). -1 (and *err) when a key
 * field is missing or not a scalar. */
int record_key(json_t *rec, char *const *fields, size_t nfields, char **out, char **err) WUR;
/* A composite key stored by a version before that rule (numbers as JSON numbers, ["t",7]):
 * its text now (malloced), or NULL when it is unchanged or not such a key. */
char *key_text_upgrade(const char *stored, size_t nfields);
/* A loose fold of a key text (malloced): keys a destination column type may equate
 * ("5"/"05"/"5.0", uuid letter case) fold alike. See canon.c. */
char *key_fold(const char *key);

/* The longest key text accepted (bytes): longer keys do not fit the state's indexes. */
#define RECORD_KEY_MAX	1024

/*
 * What the state store (PostgreSQL text and jsonb) can hold: valid UTF-8 without NUL.
 * text_storable: a copy of n bytes at s with every NUL or invalid byte replaced by U+FFFD,
 * cut after at most max bytes (then "..." follows). json_storable: whether every string
 * and object key of v is storable. json_storable_copy: a deep copy with every string made
 * storable.
 */
char *text_storable(const char *s, size_t n, size_t max);
bool json_storable(json_t *v);
json_t *json_storable_copy(json_t *v);

/* Append the compact JSON text of a value (a faster path than json_dumps for scalars). */
void json_append(struct buf *, json_t *);
/* Append a C string as a quoted JSON string. */
void json_append_str(struct buf *, const char *);

#endif
