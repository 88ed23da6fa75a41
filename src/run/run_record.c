/*
 * run_record.c - one record as a run judges it: its key (a page element that is no object,
 * or holds a value jansson could not read, has none), and what the run notes of a record
 * that failed or came twice: counters, bounded log lines, the failure entry a checkpoint
 * stores. It never delivers nor writes state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/json.h"
#include "core/log.h"
#include "record/parse.h"
#include "run/run_record.h"

#define MAX_LOGGED_FAILURES	20

int
run_record_key(const struct run *r, json_t *rec, char **key, char **err)
{
	static const char *const what[] = {
		[JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
		[JSON_STRING] = "a string", [JSON_INTEGER] = "a number", [JSON_REAL] = "a number",
		[JSON_TRUE] = "true", [JSON_FALSE] = "false", [JSON_NULL] = "null",
	};

	if (rec != NULL && !json_is_object(rec)) {
		*key = NULL;
		*err = xasprintf("the element is %s, not a JSON object: no record",
		    what[json_typeof(rec)]);
		return -1;
	}
	if (json_poison(rec, err) != 0) {
		/* A value jansson could not read (json_mend): the record fails, under its
		 * key when that is readable. */
		char *e = NULL;

		*key = NULL;
		if (canon_record_key(rec, r->job->key, r->job->nkey, key, &e) != 0 ||
		    strstr(*key, JSON_POISON) != NULL) {
			free(*key);
			*key = NULL;
		}
		free(e);
		return -1;
	}
	return canon_record_key(rec, r->job->key, r->job->nkey, key, err);
}

void
run_note_failure(struct run *r, const char *key, const char *error)
{
	r->nfailed++;
	if (r->logged_failures++ < MAX_LOGGED_FAILURES)
		log_job(LOG_WARNING, r->job->name, r->id, MSGID_RECORD_FAILED,
		    "record %s failed and waits in the retry queue: %s", key, error);
	else if (r->logged_failures == MAX_LOGGED_FAILURES + 1)
		log_job(LOG_WARNING, r->job->name, r->id, NULL,
		    "more records failed in this run; see onesyncctl failures %s", r->job->name);
}

void
run_failure_add(struct state_ck *ck, const char *key, const char *error, json_t *payload,
    const char *hash)
{
	char *k = jsonx_text_storable(key, strlen(key), SIZE_MAX);
	char *e = run_error_text(error);
	char *p = NULL;

	if (payload != NULL && !json_is_null(payload) && (!jsonx_storable(payload) ||
	    (p = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL ||
	    strlen(p) > RUN_PAYLOAD_MAX)) {
		/* PostgreSQL cannot hold it (or a checkpoint of a batch of them): keep the
		 * failure and say why the payload is not kept. */
		char *e2 = xasprintf("%s (its payload is not kept: it holds a NUL character or "
		    "invalid UTF-8, which the state database cannot store, or is larger than "
		    "%d MB)", e, RUN_PAYLOAD_MAX >> 20);
		struct buf b;

		free(e);
		e = e2;
		/* A text in its place, so that an older stored payload is not replayed. */
		free(p);
		buf_init(&b);
		jsonx_append_str(&b, RUN_NO_PAYLOAD);
		p = buf_steal(&b);
	}
	state_ck_failed(ck, k, e, p != NULL ? p : "null", hash != NULL ? hash : "");
	free(p);
	free(k);
	free(e);
}

void
run_note_duplicate(struct run *r, const char *key, const char *where)
{
	r->nduplicates++;
	if (r->logged_dups++ < MAX_LOGGED_FAILURES)
		log_job(LOG_WARNING, r->job->name, r->id, NULL,
		    "key %s appears more than once in %s: its last occurrence goes, the earlier "
		    "one is skipped", key, where);
	else if (r->logged_dups == MAX_LOGGED_FAILURES + 1)
		log_job(LOG_WARNING, r->job->name, r->id, NULL,
		    "more duplicate keys in this run; the run's last line counts them");
}
