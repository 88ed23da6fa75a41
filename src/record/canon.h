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

/*
 * The same hash and key for a CSV row without its JSON object: a plan made once per header
 * (the columns of the canonical form in order, each with its name written out), then one
 * pass over each row's fields. canon_plan_new is NULL when the job needs the general path
 * (a composite key, a dotted path, a name that starts with JSON_POISON). canon_row gives
 * what canon_hash and canon_record_key give parse_row_json(row), or -1 when this row needs
 * the general path: a value that starts with JSON_POISON, or a key the rules refuse (empty,
 * with a NUL, too long), whose failure that path reports. *key points into the row.
 */
struct parse_row;
struct canon_plan;
struct canon_plan *canon_plan_new(char *const *names, size_t n, char *const *key, size_t nkey,
    char *const *fields, size_t nfields, char *const *exclude, size_t nexclude);
void canon_plan_free(struct canon_plan *);
int canon_row(const struct canon_plan *, const struct parse_row *, char out[CANON_HASH_LEN],
    const char **key, size_t *keylen) WUR;

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
