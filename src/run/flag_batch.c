/*
 * flag_batch.c - one batch of strategy flag after its delivery: what is marked at the source,
 * and what its checkpoint records of the delivery and the marking (doc/design.md §4.1).
 * Never sends anything itself: run/strategy_flag.c starts the marking and the checkpoint.
 */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core/log.h"
#include "record/json.h"
#include "record/tmpl.h"
#include "run/flag_batch.h"
#include "run/run_record.h"

void
flag_batch_clear(struct flag_batch *mk)
{
	if (mk->marker != NULL)
		source_mark_cancel(mk->marker);
	for (size_t i = 0; i < mk->nmarks; i++)
		free(mk->marks[i].error);
	free(mk->marks);
	free(mk->markc);
	for (size_t i = 0; i < mk->ncands; i++) {
		free(mk->cands[i].key);
		json_decref(mk->cands[i].rec);
		json_decref(mk->cands[i].answer);
	}
	free(mk->cands);
	run_pageset_free(&mk->ps);
	state_ck_free(mk->ck);
	memset(mk, 0, sizeof *mk);
}

/*
 * What onesync.unmarked keeps of the destination's answer: only the values the marking's
 * {{dest.PATH}} placeholders use (null when they use none). The whole answer may echo what
 * was sent, credentials of the body or headers among them.
 */
static json_t *
answer_kept(const struct job_conf *j, json_t *answer)
{
	const struct source_conf *s = &j->src;
	const struct tmpl *t;
	const char *path;
	json_t *kept, *st;
	size_t i, it, n = 2 + s->mark_nheaders + s->nmark_set;

	if (answer == NULL || json_is_null(answer))
		return json_null();
	kept = json_object();
	for (i = 0; i < n; i++) {
		/* the marking request (URL, body, headers), or the columns it sets */
		t = i == 0 ? s->mark_url : i == 1 ? s->mark_body :
		    i < 2 + s->mark_nheaders ? s->mark_headers[i - 2] :
		    s->mark_set[i - 2 - s->mark_nheaders].value;
		for (it = 0; (path = tmpl_dest_path(t, &it)) != NULL; )
			jsonx_path_keep(kept, answer, path);
	}
	if (json_object_size(kept) == 0) {
		json_decref(kept);
		return json_null();
	}
	if (jsonx_storable(kept))
		return kept;
	st = jsonx_storable_copy(kept);
	json_decref(kept);
	return st;
}

void
flag_batch_take(struct flag_batch *mk, struct cand *cands, size_t n)
{
	size_t it = 0;

	mk->cands = xcalloc(n + 1, sizeof *mk->cands);
	memcpy(mk->cands, cands, n * sizeof *mk->cands);
	for (size_t i = 0; i < n; i++) {
		cands[i].key = NULL;	/* moved: the page's cands_clear() skips them */
		cands[i].rec = NULL;
		cands[i].answer = NULL;
	}
	mk->ncands = n;
	mk->marks = xcalloc(n + 1, sizeof *mk->marks);
	mk->markc = xcalloc(n + 1, sizeof *mk->markc);
	for (size_t i = 0; i < n; i++) {
		struct cand *c = &mk->cands[i];
		struct source_mark_item *m;
		json_t *answer = c->answer;

		if (c->dropped)
			continue;
		if (c->deliver) {
			struct dest_item *d = &mk->ps.items[it++];

			if (d->outcome != DEST_OK)
				continue;
			answer = d->answer;
		}
		m = &mk->marks[mk->nmarks];
		mk->markc[mk->nmarks++] = c;
		m->key = c->key;
		m->rec = c->rec;
		m->dest = answer;
	}
}

/* Remember a record delivered but not marked, with the answer kept (taken) as the state
 * database can hold it. */
static void
unmarked_add(struct state_ck *ck, const struct cand *c, json_t *answer, const char *error)
{
	json_t *ok = jsonx_storable(answer) ? answer : jsonx_storable_copy(answer);
	char *a = json_dumps(ok, JSON_COMPACT | JSON_ENCODE_ANY);

	state_ck_unmarked(ck, c->key, c->hash, a != NULL ? a : "null", error);
	free(a);
	if (ok != answer)
		json_decref(ok);
	json_decref(answer);
}

void
flag_batch_outcomes(struct run *r, struct flag_batch *mk, struct state_ck *ck,
    long long *nmarked)
{
	size_t it = 0;

	/* Delivery outcomes. */
	for (size_t i = 0; i < mk->ncands; i++) {
		struct cand *c = &mk->cands[i];
		struct dest_item *d;

		if (!c->deliver)
			continue;
		d = &mk->ps.items[it++];
		if (d->outcome == DEST_OK) {
			r->ndelivered++;
			if (c->queued)
				state_ck_key(ck, CK_OK, c->key);
		} else {
			const char *e = d->error != NULL ? d->error : "not delivered";

			run_note_failure(r, c->key, e);
			run_failure_add(ck, c->key, e, c->rec, c->hash);
		}
	}
	/* Marking outcomes. */
	for (size_t i = 0; i < mk->nmarks; i++) {
		struct source_mark_item *m = &mk->marks[i];
		struct cand *c = mk->markc[i];
		bool was_unmarked = c->unmarked;
		char *e;

		if (!c->deliver)
			r->nskipped++;	/* delivered by an earlier run; only marked now */
		switch (m->outcome) {
		case MARK_OK:
			(*nmarked)++;
			if (was_unmarked)
				state_ck_key(ck, CK_UNMARKED_DEL, c->key);
			break;
		case MARK_CONFLICT:
			log_job(LOG_INFO, r->job->name, r->id, NULL, "record %s not marked: %s; it "
			    "stays pending and goes again with its new content", c->key,
			    m->error != NULL ? m->error : "changed");
			if (was_unmarked)
				state_ck_key(ck, CK_UNMARKED_DEL, c->key);
			break;
		default:
			if (m->dest != NULL &&
			    json_dumpb(m->dest, NULL, 0, JSON_COMPACT) > RUN_PAYLOAD_MAX) {
				/* Too large to remember: delivered again next run instead. */
				log_job(LOG_WARNING, r->job->name, r->id, NULL, "record %s delivered "
				    "but not marked: %s; the destination's answer is larger than "
				    "%d MB, so the next run delivers it again", c->key,
				    m->error != NULL ? m->error : "marking failed",
				    RUN_PAYLOAD_MAX >> 20);
				if (was_unmarked)
					state_ck_key(ck, CK_UNMARKED_DEL, c->key);
				break;
			}
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "record %s delivered but not "
			    "marked: %s; the next run marks it without delivering it again", c->key,
			    m->error != NULL ? m->error : "marking failed");
			e = run_error_text(m->error != NULL ? m->error : "marking failed");
			unmarked_add(ck, c, answer_kept(r->job, m->dest), e);
			free(e);
			break;
		}
	}
}
