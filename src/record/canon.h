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
int canon_record_key(json_t *rec, char *const *fields, size_t nfields, char **out,
    char **err) WUR;
/* A composite key stored by a version before that rule (numbers as JSON numbers, ["t",7]):
 * its text now (malloced), or NULL when it is unchanged or not such a key. */
char *canon_key_text_upgrade(const char *stored, size_t nfields);
/* A loose fold of a key text (malloced): keys a destination column type may equate
 * ("5"/"05"/"5.0", uuid letter case) fold alike. See canon.c. */
char *canon_key_fold(const char *key);

/* The longest key text accepted (bytes): longer keys do not fit the state's indexes. */
#define RECORD_KEY_MAX	1024

#endif
