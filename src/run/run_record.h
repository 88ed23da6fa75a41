/* run_record.h - one record as a run judges it: its key, and what a run notes of a record
 * that failed or came twice. */
#ifndef ONESYNC_RUN_RECORD_H
#define ONESYNC_RUN_RECORD_H

#include "run/run.h"

void run_note_failure(struct run *, const char *key, const char *error);
/* canon_record_key for an element of a page: one that is not a JSON object (null, a number, an
 * array...) has no key, and the error says what it is; the caller queues it as key-less.
 * One holding a value the source sent but jansson could not read (json_poison) fails
 * too, with *key set when its key is readable (the caller queues it under that key). */
int run_record_key(const struct run *, json_t *rec, char **key, char **err) WUR;
/* A record whose key comes again later in the same page or batch: the last occurrence
 * wins; the earlier one is counted as a duplicate (the caller counts it skipped) and
 * logged. */
void run_note_duplicate(struct run *, const char *key, const char *where);
/* Add a failure to a checkpoint's "failed" list, as the state database can store it
 * whatever the record holds: key and error made valid UTF-8 without NUL (the error cut to
 * RUN_ERROR_MAX bytes); a payload PostgreSQL cannot hold, or larger than RUN_PAYLOAD_MAX
 * as JSON, is left out (RUN_NO_PAYLOAD in its place) and the error says so. */
#define RUN_PAYLOAD_MAX	(8 << 20)
#define RUN_NO_PAYLOAD	"(not stored: the record holds a NUL character or invalid UTF-8, or is " \
			"larger than 8 MB)"
void run_failure_add(struct state_ck *, const char *key, const char *error, json_t *payload,
    const char *hash);

#endif
