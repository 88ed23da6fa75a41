/*
 * strategy_capture.c - Capture Data (doc/design.md §4.3). Every run reads the whole data
 * set (a file streamed as it arrives, an API's pages, or a table by key), hashes each
 * record's canonical form, and delivers only new and changed records; a hash is stored only
 * once the destination accepted the record. Deletions, when enabled, come last and only
 * after a complete snapshot, behind the max_delete_ratio guard: a truncated or empty file
 * must never wipe the destination. Memory holds the key -> hash map and one batch, never
 * the data set. This file loads the stored hashes, reads and delivers; capture_state.c
 * keeps the map, capture_delete.c ends the snapshot (guard, alias check, deletions).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/canon.h"
#include "core/log.h"
#include "conn/source_file.h"
#include "run/capture_delete.h"
#include "run/run_page.h"
#include "run/run_queue.h"
#include "run/run_record.h"
#include "run/strategy_capture.h"
#include "store/state.h"

static void read_next(struct run *);
static void flush(struct run *);

/* The snapshot is read: its end (the guard, deletions, the last checkpoint) waits for the
 * checkpoint in flight, whose answer calls it (flushed_ck). */
static void
end_of_read(struct run *r)
{
	if (r->cs->ck_busy)
		return;
	capture_end_of_read(r);
}

static void
capture_cancel(struct run *r)
{
	if (r->cs != NULL && r->cs->fr != NULL) {
		source_file_cancel(r->cs->fr);
		r->cs->fr = NULL;
	}
}

static void
capture_free(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs == NULL)
		return;
	if (cs->fr != NULL)
		source_file_cancel(cs->fr);
	strmap_free(&cs->stored, NULL);
	strmap_free(&cs->inbatch, NULL);
	strmap_free(&cs->legacy, free);
	state_ck_free(cs->renamed);
	for (size_t i = 0; i < cs->nblocks; i++)
		free(cs->blocks[i]);
	free(cs->blocks);
	free(cs->after_key);
	free(cs->read_error);
	free(cs->hashes);
	state_ck_free(cs->bad);
	json_decref(cs->held);
	canon_plan_free(cs->plan);
	buf_free(&cs->rowkey);
	strlist_free(&cs->del);
	capture_alias_done(cs);
	free(cs);
	r->cs = NULL;
}

/* A key stored in an older version's text is in the snapshot: the next checkpoint stores
 * it under its text now, with the hash it had, and forgets the old text. No delivery. */
static void
legacy_seen(struct capture_state *cs, const char *key, struct stored *s)
{
	char *old = strmap_del(&cs->legacy, key);

	if (old == NULL)
		return;
	state_ck_put(cs->renamed, key, s->hash);
	state_ck_key(cs->renamed, CK_DEL, old);
	free(old);
}



/*
 * A keyed record of the snapshot: unchanged (skipped) or new or changed (in the batch).
 * The record is rec, or the row's fields when rec is NULL: its object is made only when
 * it is delivered. h is its hash.
 */
static void
judge(struct run *r, json_t *rec, const struct parse_row *row, const char *key,
    const char h[CANON_HASH_LEN])
{
	struct capture_state *cs = r->cs;
	struct stored *s;
	uintptr_t slot;

	if ((slot = (uintptr_t)strmap_get(&cs->inbatch, key)) != 0) {
		/* The key came earlier in this batch: the last occurrence wins. */
		run_note_duplicate(r, key, capture_where(r));
		if (slot >= 2) {
			size_t j = slot - 2;

			strmap_del(&cs->inbatch, key);
			run_drop_item(r, j);
			r->nskipped++;
			if (j < r->nitems) {
				memcpy(cs->hashes[j], cs->hashes[r->nitems], sizeof cs->hashes[j]);
				strmap_put(&cs->inbatch, r->items[j].key, (void *)(uintptr_t)(j + 2));
			}
		}
	}
	if (r->have_failures)
		run_queue_seen(r, key);
	s = strmap_get(&cs->stored, key);
	if (s != NULL && cs->legacy.n > 0)
		legacy_seen(cs, key, s);
	if (s != NULL) {
		s->seen = true;
		if (strcmp(s->hash, h) == 0) {
			s->same = true;
			r->nskipped++;
			return;
		}
	}
	if (run_waits_for_retry(r, key, h)) {
		/* Refused before and unchanged: it waits for its retry (or is dead). */
		r->nskipped++;
		return;
	}
	if (rec == NULL) {
		rec = parse_row_json(row);
		run_add_item(r, key, rec);
		json_decref(rec);
	} else
		run_add_item(r, key, rec);
	strmap_put(&cs->inbatch, key, (void *)(uintptr_t)(r->nitems + 1));
	if (r->nitems > cs->caphashes) {
		cs->caphashes = r->cap_items;
		cs->hashes = xreallocarray(cs->hashes, cs->caphashes, sizeof *cs->hashes);
	}
	memcpy(cs->hashes[r->nitems - 1], h, CANON_HASH_LEN);
}

/* Judge one record of the snapshot; a record without a usable key fails. */
static void
on_record(struct run *r, json_t *rec, long line)
{
	struct capture_state *cs = r->cs;
	const struct capture_conf *cc = &r->job->capture;
	char *key = NULL, *err = NULL, h[CANON_HASH_LEN];

	r->nread++;
	canon_hash(rec, cc->fields, cc->nfields, cc->exclude, cc->nexclude, h);
	if (run_record_key(r, rec, &key, &err) != 0) {
		char *k = key != NULL ? key : xasprintf("#nokey:%s", h);
		char *msg;

		if (strmap_get(&cs->inbatch, k) != NULL) {
			/* The same key-less content twice in this batch: queued once. */
			r->nskipped++;
			run_note_duplicate(r, k, capture_where(r));
			free(k);
			free(err);
			return;
		}
		strmap_put(&cs->inbatch, k, (void *)(uintptr_t)1);
		msg = line > 0 ? xasprintf("%s (%s, line %ld)", err, capture_where(r), line) :
		    cs->page_url != NULL ? xasprintf("%s (record %zu of GET %s)", err,
		    cs->page_pos, cs->page_url) : xasprintf("%s (%s)", err, capture_where(r));
		cs->nbad++;
		run_note_failure(r, k, msg);
		run_failure_add(cs->bad, k, msg, rec, h);
		free(k);
		free(msg);
		free(err);
		return;
	}
	judge(r, rec, NULL, key, h);
	free(key);
}

/*
 * A CSV row: its hash and key straight from its fields (canon_row), its object made only
 * if it is delivered; a row that needs the general path (see canon_row) takes it.
 */
static void
on_row(struct run *r, const struct parse_row *row, long line)
{
	struct capture_state *cs = r->cs;
	const struct capture_conf *cc = &r->job->capture;
	char h[CANON_HASH_LEN];
	const char *k;
	size_t klen;
	json_t *rec;

	if (cs->plan_for != row->names) {	/* the file's header, once */
		canon_plan_free(cs->plan);
		cs->plan = canon_plan_new(row->names, row->n, r->job->key, r->job->nkey,
		    cc->fields, cc->nfields, cc->exclude, cc->nexclude);
		cs->plan_for = row->names;
	}
	if (cs->plan != NULL && canon_row(cs->plan, row, h, &k, &klen) == 0) {
		r->nread++;
		buf_reset(&cs->rowkey);
		buf_add(&cs->rowkey, k, klen);
		judge(r, NULL, row, cs->rowkey.data, h);
		return;
	}
	rec = parse_row_json(row);
	on_record(r, rec, line);
	json_decref(rec);
}

/* ---- the file source: records stream in; a full batch pauses the transfer ---- */

static void
file_record(void *arg, json_t *rec, long line)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;

	if (cs->flushing) {
		/* Read on while the batch is out, up to one more batch. */
		json_array_append_new(cs->held, json_pack("[O I]", rec, (json_int_t)line));
		if ((int)json_array_size(cs->held) >= r->job->batch && !cs->paused) {
			source_file_pause(cs->fr);
			cs->paused = true;
		}
		return;
	}
	on_record(r, rec, line);
	if ((int)r->nitems >= r->job->batch)
		flush(r);
}

/* A CSV row: as file_record, without its object while it is judged. */
static void
file_row(void *arg, const struct parse_row *row, long line)
{
	struct run *r = arg;

	if (r->cs->flushing) {
		json_t *rec = parse_row_json(row);

		file_record(r, rec, line);
		json_decref(rec);
		return;
	}
	on_row(r, row, line);
	if ((int)r->nitems >= r->job->batch)
		flush(r);
}

static void
file_bad(void *arg, long line, const char *msg)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;
	char *k = xasprintf("#line:%ld", line);

	r->nread++;
	cs->nbad++;
	run_note_failure(r, k, msg);
	run_failure_add(cs->bad, k, msg, NULL, "");
	free(k);
}

static void
file_done(void *arg, int rc, const char *err)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;

	cs->read_done = true;
	if (rc == SOURCE_FILE_MISMATCH && !cs->flushing && r->nitems == 0) {
		/* Not a truncated snapshot but one of another shape: no guard, no deletion. */
		run_fail(r, "%s; the file does not match the job: nothing was delivered or deleted",
		    err != NULL ? err : capture_where(r));
		return;
	}
	if (rc != 0)
		cs->read_error = xstrdup(err != NULL ? err : "the transfer failed");
	if (cs->flushing)
		return;		/* flushed() goes on */
	if (r->nitems > 0)
		flush(r);
	else
		end_of_read(r);
}

/* ---- paged sources: an API or a table ---- */

static void
page_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;
	const struct source_conf *sc = &r->job->src;
	size_t i, n;
	json_t *rec;
	bool more;

	r->sreq = NULL;
	if (rc != 0) {
		cs->read_done = true;
		cs->read_error = xstrdup(err);
		end_of_read(r);
		return;
	}
	n = json_array_size(page->records);
	if ((cs->read_error = run_page_stale(r, page, cs->page_index)) != NULL) {
		source_page_free(page);
		cs->read_done = true;
		end_of_read(r);
		return;
	}
	more = run_page_more(r, page);
	cs->page_url = sc->type == CONN_HTTP ? page->log_url : NULL;
	json_array_foreach(page->records, i, rec) {
		cs->page_pos = i;
		on_record(r, rec, 0);
	}
	cs->page_url = NULL;
	if (sc->type == CONN_POSTGRESQL && n > 0 &&
	    run_keyset_next(r, page->records, &cs->after_key) != 0)
		more = false;
	source_page_free(page);
	cs->read_done = !more;
	if (r->nitems > 0)
		flush(r);
	else if (cs->read_done)
		end_of_read(r);
	else
		read_next(r);
}

static void
read_next(struct run *r)
{
	struct capture_state *cs = r->cs;

	run_fetch_page(r, SPG_ALL, cs->after_key, ++cs->page_index, page_answered);
}

/*
 * ---- delivering a batch, storing the accepted hashes ----
 * Batches flow through two places so that the destination's work and the state store's
 * overlap: the checkpoint of batch N commits while batch N+1 is delivered. The checkpoints
 * go one at a time, in batch order, each once its batch's delivery has ended; a batch
 * delivered while the one before is still committing waits (dl_done). Memory: the batch in
 * delivery, one batch of records held meanwhile, and the checkpoint in flight.
 */

static void flushed_ck(struct run *, int);
static void batch_next(struct run *);

static void
flushed(struct run *r, int rc)
{
	struct capture_state *cs = r->cs;
	struct state_ck *ck;

	if (cs->ck_busy) {
		cs->dl_done = true;	/* its checkpoint waits for the one in flight */
		return;
	}
	ck = capture_ck_new(cs);	/* the renames first: this batch wins */
	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			bool added;
			struct stored *s = capture_stored_ref(cs, it->key, &added);

			r->ndelivered++;
			state_ck_put(ck, it->key, cs->hashes[i]);
			if (r->have_failures)
				state_ck_key(ck, CK_OK, it->key);
			memcpy(s->hash, cs->hashes[i], sizeof s->hash);
			s->seen = true;
			s->accepted = true;	/* the alias guard compares it */
		} else {
			const char *e = it->error != NULL ? it->error : "not delivered";

			/* Its hash is not stored: the next run sends it again. */
			run_note_failure(r, it->key, e);
			run_failure_add(ck, it->key, e, it->rec, cs->hashes[i]);
		}
	}
	state_ck_move(ck, cs->bad);
	/*
	 * The next batch starts first, the state marked busy: a failure meanwhile (its
	 * delivery, the file's read) is written after this checkpoint, in order; nothing here
	 * touches the run once the checkpoint is sent (its answer may end the run).
	 */
	cs->ck_busy = true;
	r->state_busy = true;
	batch_next(r);
	run_checkpoint(r, ck, flushed_ck);
}

static void
flush(struct run *r)
{
	r->cs->flushing = true;
	run_deliver(r, flushed);
}

/* The delivered batch's outcomes are in its checkpoint: judge what came meanwhile, go on. */
static void
batch_next(struct run *r)
{
	struct capture_state *cs = r->cs;
	size_t i;
	json_t *e;

	run_items_reset(r);
	strmap_free(&cs->inbatch, NULL);
	strmap_init(&cs->inbatch);
	cs->flushing = false;
	if (r->finishing)
		return;
	/* Records that came in while the batch was out. */
	json_array_foreach(cs->held, i, e)
		on_record(r, json_array_get(e, 0), (long)json_integer_value(json_array_get(e, 1)));
	json_array_clear(cs->held);
	if ((int)r->nitems >= r->job->batch || (cs->read_done && r->nitems > 0))
		flush(r);
	if (cs->read_done || r->finishing)
		return;		/* the end comes once the checkpoint is in (flushed_ck) */
	if (cs->fr != NULL) {
		/* the held records are judged: the file reads on, up to one batch ahead */
		if (cs->paused) {
			cs->paused = false;
			source_file_resume(cs->fr);
		}
		return;
	}
	if (!cs->flushing)
		read_next(r);	/* a page's batch in delivery: the next page is asked after it */
}

static void
flushed_ck(struct run *r, int rc)
{
	struct capture_state *cs = r->cs;

	cs->ck_busy = false;
	if (cs->dl_done) {
		cs->dl_done = false;
		flushed(r, 0);
		return;
	}
	if (cs->read_done && !cs->flushing && r->nitems == 0)
		capture_end_of_read(r);
}

/* ---- the start: load the stored hashes, then read ---- */

static void
start_read(struct run *r)
{
	struct capture_state *cs = r->cs;
	char *err = NULL;

	cs->nstored = cs->stored.n;
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "%zu stored hashes loaded", cs->stored.n);
	if (r->job->src.type == CONN_FILE) {
		cs->fr = source_file_open(r->env.conn, r->job, file_record, file_bad, file_done, r,
		    &err);
		if (cs->fr == NULL) {
			run_fail(r, "%s", err);
			free(err);
		} else
			source_file_rows(cs->fr, file_row);
		return;
	}
	read_next(r);
}

static void queue_loaded(void *, int, PGresult *, const char *);

/*
 * One stored key and hash into the map. A composite key stored by an older version with
 * numbers as JSON numbers (["t",7]) goes in under its text now (["t","7"]), its old text
 * kept in `legacy`: seen, it is renamed in the state without a delivery; gone, it is
 * deleted. Two stored texts of one key (both forms, or a new-form key beside its old
 * form) keep one entry, the new form's; the other's text is forgotten by the next write.
 */
static void
load_one(struct capture_state *cs, const struct job_conf *job, const char *key,
    const char *hash, size_t len)
{
	char *up = job->nkey > 1 ? canon_key_text_upgrade(key, job->nkey) : NULL;
	const char *k = up != NULL ? up : key;
	bool added;
	struct stored *s = capture_stored_ref(cs, k, &added);
	char *old;

	if (!added) {
		if (up != NULL) {
			/* The new form came first: the old text is a duplicate. */
			state_ck_key(cs->renamed, CK_DEL, key);
			free(up);
			return;
		}
		if ((old = strmap_del(&cs->legacy, k)) != NULL) {
			state_ck_key(cs->renamed, CK_DEL, old);
			free(old);
		}
	} else if (up != NULL)
		strmap_put(&cs->legacy, k, xstrdup(key));
	memset(s->hash, 0, sizeof s->hash);
	memcpy(s->hash, hash, len < sizeof s->hash ? len : sizeof s->hash - 1);
	free(up);
}

/* One stored key and hash, as the stream of them arrives. */
static void
stored_row(void *arg, PGresult *row)
{
	struct run *r = arg;

	if (PQgetisnull(row, 0, 0))	/* about how many there are (a hint, maybe NULL) */
		strmap_reserve(&r->cs->stored, strtoull(PQgetvalue(row, 0, 1), NULL, 10));
	else
		load_one(r->cs, r->job, PQgetvalue(row, 0, 0), PQgetvalue(row, 0, 1),
		    (size_t)PQgetlength(row, 0, 1));
}

static void
loaded(void *arg, int rc, PGresult *res, const char *err)
{
	struct run *r = arg;

	(void)res;
	/* An error mid-stream fails the run: the partial map is never used. */
	if (!run_state_usable(r, rc, err))
		return;
	if (r->have_failures) {
		r->state_busy = true;
		state_queue(r->env.state, r->job->name, NULL, STATE_PAGE, queue_loaded, r);
		return;
	}
	start_read(r);
}

/* A page of the retry queue: key, hash, and whether it waits (dead or not due yet); refused,
 * unchanged records that wait are left alone, and a queued record back in the snapshot as
 * stored clears its failure. Bounded like the stored hashes: one entry per queued key. */
static void
queue_loaded(void *arg, int rc, PGresult *res, const char *err)
{
	struct run *r = arg;
	int n;

	if (!run_state_usable(r, rc, err))
		return;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		run_queue_note(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    strcmp(PQgetvalue(res, i, 2), "true") == 0);
	if (n == STATE_PAGE) {
		r->state_busy = true;
		state_queue(r->env.state, r->job->name, PQgetvalue(res, n - 1, 0), STATE_PAGE,
		    queue_loaded, r);
		return;
	}
	start_read(r);
}

static void
capture_begin(struct run *r, json_t *started)
{
	struct capture_state *cs = xcalloc(1, sizeof *cs);

	r->cs = cs;
	strmap_init_arena(&cs->stored);
	strmap_init(&cs->inbatch);
	strmap_init(&cs->legacy);
	cs->renamed = state_ck_new();
	cs->bad = state_ck_new();
	cs->held = json_array();
	r->state_busy = true;
	state_records(r->env.state, r->job->name, stored_row, loaded, r);
}

static void
capture_log_finished(struct run *r, unsigned long long ms)
{
	log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
	    "run finished in %llu ms: read %lld, delivered %lld, skipped %lld, deleted %lld, "
	    "failed %lld", ms, r->nread, r->ndelivered, r->nskipped, r->ndeleted, r->nfailed);
}

const struct strategy_ops strategy_capture_ops = {
	.name = "capture",
	.begin = capture_begin,
	.cancel = capture_cancel,
	.free = capture_free,
	.log_finished = capture_log_finished,
};
