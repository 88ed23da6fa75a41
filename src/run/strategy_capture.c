/*
 * strategy_capture.c - Capture Data (DESIGN §4.3). Every run reads the whole data set
 * (a file streamed as it arrives, an API's pages, or a table by key), hashes each record's
 * canonical form, and delivers only new and changed records; a hash is stored only once
 * the destination accepted the record. Deletions, when enabled, come last and only after a
 * complete snapshot, behind the max_delete_ratio guard: a truncated or empty file must
 * never wipe the destination. Memory holds the key -> hash map and one batch, never the
 * data set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/canon.h"
#include "core/log.h"
#include "run/run.h"
#include "store/state.h"

#define LOAD_PAGE	100000

struct stored {
	char	hash[CANON_HASH_LEN];
	bool	seen;		/* present in this run's snapshot */
	bool	same;		/* ... with the stored hash: the destination has it */
	bool	accepted;	/* delivered and accepted in this run */
};

struct capture_state {
	struct strmap		 stored;	/* key -> struct stored */
	size_t			 nstored;	/* stored before this run: the guard's denominator */
	char			*load_after;
	struct file_reader	*fr;
	bool			 paused;
	long long		 page_index;
	char			*after_key;	/* PostgreSQL: keyset position */
	const char		*page_url;	/* an API page being judged (borrowed), else NULL */
	size_t			 page_pos;	/* and the record's index in it */
	bool			 read_done;
	char			*read_error;	/* transfer failed or the file is truncated */
	long long		 nbad;		/* malformed rows in the snapshot */
	char			(*hashes)[CANON_HASH_LEN];	/* parallel to r->items */
	size_t			 caphashes;
	json_t			*bad;		/* failed entries for the next checkpoint */
	json_t			*held;		/* records that arrived during a flush */
	bool			 flushing;
	struct strlist		 del;		/* keys to delete at the destination */
	struct strmap		 inbatch;	/* what the next checkpoint writes: key -> item
						 * index + 2, or 1 for a key-less failure */
	struct stored		**blocks;	/* the stored entries, allocated in blocks */
	size_t			 nblocks, used;	/* entries used in the last block */
	size_t			 del_next, del_end;
	struct strmap		 legacy;	/* key -> its stored text in the form of an
						 * older version (["t",7]), malloced */
	json_t			*renames;	/* records_put: legacy keys seen, new text */
	json_t			*drops;		/* records_del: stored texts to forget */
	struct strmap		 folds;		/* the alias guard: canon_key_fold of the candidates */
	size_t			 alias_it;	/* ... its position in stored */
	bool			*alias_hit;	/* ... candidates a kept key names, or NULL */
};

#define STORED_BLOCK	8192

static void read_next(struct run *);

/* A zeroed entry of the key -> hash map, from blocks (a million of them, one malloc each,
 * would cost more than the lookups). */
static struct stored *
stored_new(struct capture_state *cs)
{
	if (cs->nblocks == 0 || cs->used == STORED_BLOCK) {
		cs->blocks = xreallocarray(cs->blocks, cs->nblocks + 1, sizeof *cs->blocks);
		cs->blocks[cs->nblocks++] = xcalloc(STORED_BLOCK, sizeof **cs->blocks);
		cs->used = 0;
	}
	return &cs->blocks[cs->nblocks - 1][cs->used++];
}
static void flush(struct run *);
static void end_of_read(struct run *);
static void delete_next(struct run *);
static void start_deletes(struct run *);
static bool alias_check(struct run *);
static bool alias_next(struct run *);
static void alias_done(struct capture_state *);
static void alias_checked(void *, int, const char *, const bool *);

static const char *
where(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs->fr != NULL)
		return source_file_where(cs->fr);
	return r->job->src.type == CONN_POSTGRESQL ? "the source table" : "the source API";
}

void
strategy_capture_cancel(struct run *r)
{
	if (r->cs != NULL && r->cs->fr != NULL) {
		source_file_cancel(r->cs->fr);
		r->cs->fr = NULL;
	}
}

void
strategy_capture_free(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs == NULL)
		return;
	if (cs->fr != NULL)
		source_file_cancel(cs->fr);
	strmap_free(&cs->stored, NULL);
	strmap_free(&cs->inbatch, NULL);
	strmap_free(&cs->legacy, free);
	json_decref(cs->renames);
	json_decref(cs->drops);
	for (size_t i = 0; i < cs->nblocks; i++)
		free(cs->blocks[i]);
	free(cs->blocks);
	free(cs->load_after);
	free(cs->after_key);
	free(cs->read_error);
	free(cs->hashes);
	json_decref(cs->bad);
	json_decref(cs->held);
	strlist_free(&cs->del);
	alias_done(cs);
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
	json_array_append_new(cs->renames, json_pack("[s s]", key, s->hash));
	json_array_append_new(cs->drops, json_string(old));
	free(old);
}

/* The text the state store holds for a key of the map. */
static const char *
stored_text(struct capture_state *cs, const char *key)
{
	const char *old = cs->legacy.n > 0 ? strmap_get(&cs->legacy, key) : NULL;

	return old != NULL ? old : key;
}

/* Move the pending renames and forgotten texts into a checkpoint document; renames go
 * before the hashes of this batch, which win (the last occurrence of a key). */
static void
add_renames(struct capture_state *cs, json_t *doc)
{
	json_t *put = json_object_get(doc, "records_put"), *del;

	if (json_array_size(cs->renames) > 0) {
		json_t *all = json_copy(cs->renames);

		if (put != NULL)
			json_array_extend(all, put);
		json_object_set_new(doc, "records_put", all);
		json_array_clear(cs->renames);
	}
	if (json_array_size(cs->drops) > 0) {
		if ((del = json_object_get(doc, "records_del")) == NULL)
			json_object_set_new(doc, "records_del", del = json_array());
		json_array_extend(del, cs->drops);
		json_array_clear(cs->drops);
	}
}

/* Judge one record of the snapshot: unchanged (skip) or new/changed (deliver). */
static void
on_record(struct run *r, json_t *rec, long line)
{
	struct capture_state *cs = r->cs;
	const struct capture_conf *cc = &r->job->capture;
	struct stored *s;
	char *key = NULL, *err = NULL, h[CANON_HASH_LEN];
	uintptr_t slot;

	r->nread++;
	canon_hash(rec, cc->fields, cc->nfields, cc->exclude, cc->nexclude, h);
	if (run_record_key(r, rec, &key, &err) != 0) {
		char *k = key != NULL ? key : xasprintf("#nokey:%s", h);
		char *msg;

		if (strmap_get(&cs->inbatch, k) != NULL) {
			/* The same key-less content twice in this batch: queued once. */
			r->nskipped++;
			run_note_duplicate(r, k, where(r));
			free(k);
			free(err);
			return;
		}
		strmap_put(&cs->inbatch, k, (void *)(uintptr_t)1);
		msg = line > 0 ? xasprintf("%s (%s, line %ld)", err, where(r), line) :
		    cs->page_url != NULL ? xasprintf("%s (record %zu of GET %s)", err,
		    cs->page_pos, cs->page_url) : xasprintf("%s (%s)", err, where(r));
		cs->nbad++;
		run_note_failure(r, k, msg);
		json_array_append_new(cs->bad, run_failure_entry(k, msg, rec, h));
		free(k);
		free(msg);
		free(err);
		return;
	}
	if ((slot = (uintptr_t)strmap_get(&cs->inbatch, key)) != 0) {
		/* The key came earlier in this batch: the last occurrence wins. */
		run_note_duplicate(r, key, where(r));
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
			free(key);
			return;
		}
	}
	if (run_waits_for_retry(r, key, h)) {
		/* Refused before and unchanged: it waits for its retry (or is dead). */
		r->nskipped++;
		free(key);
		return;
	}
	run_add_item(r, key, rec);
	strmap_put(&cs->inbatch, key, (void *)(uintptr_t)(r->nitems + 1));
	if (r->nitems > cs->caphashes) {
		cs->caphashes = r->cap_items;
		cs->hashes = xreallocarray(cs->hashes, cs->caphashes, sizeof *cs->hashes);
	}
	memcpy(cs->hashes[r->nitems - 1], h, sizeof h);
	free(key);
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

static void
file_bad(void *arg, long line, const char *msg)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;
	char *k = xasprintf("#line:%ld", line);

	r->nread++;
	cs->nbad++;
	run_note_failure(r, k, msg);
	json_array_append_new(cs->bad, run_failure_entry(k, msg, NULL, ""));
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
		    err != NULL ? err : where(r));
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

/* ---- delivering a batch, storing the accepted hashes ---- */

static void flushed_ck(struct run *, int);

static void
flushed(struct run *r, int rc)
{
	struct capture_state *cs = r->cs;
	json_t *doc = json_pack("{s[] s[] s[]}", "records_put", "ok", "failed");
	json_t *put = json_object_get(doc, "records_put"), *ok = json_object_get(doc, "ok"),
	    *failed = json_object_get(doc, "failed");

	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			struct stored *s = strmap_get(&cs->stored, it->key);

			r->ndelivered++;
			json_array_append_new(put, json_pack("[s s]", it->key, cs->hashes[i]));
			if (r->have_failures)
				json_array_append_new(ok, json_string(it->key));
			if (s == NULL) {
				s = stored_new(cs);
				strmap_put(&cs->stored, it->key, s);
			}
			memcpy(s->hash, cs->hashes[i], sizeof s->hash);
			s->seen = true;
			s->accepted = true;	/* the alias guard compares it */
		} else {
			const char *e = it->error != NULL ? it->error : "not delivered";

			/* Its hash is not stored: the next run sends it again. */
			run_note_failure(r, it->key, e);
			json_array_append_new(failed, run_failure_entry(it->key, e, it->rec,
			    cs->hashes[i]));
		}
	}
	json_array_extend(failed, cs->bad);
	json_array_clear(cs->bad);
	add_renames(cs, doc);
	run_checkpoint(r, doc, flushed_ck);
	json_decref(doc);
}

static void
flush(struct run *r)
{
	r->cs->flushing = true;
	run_deliver(r, flushed);
}

static void
flushed_ck(struct run *r, int rc)
{
	struct capture_state *cs = r->cs;
	size_t i;
	json_t *e;

	run_items_reset(r);
	strmap_free(&cs->inbatch, NULL);
	strmap_init(&cs->inbatch);
	cs->flushing = false;
	/* Records that came in while the batch was out. */
	json_array_foreach(cs->held, i, e)
		on_record(r, json_array_get(e, 0), (long)json_integer_value(json_array_get(e, 1)));
	json_array_clear(cs->held);
	if ((int)r->nitems >= r->job->batch || (cs->read_done && r->nitems > 0)) {
		flush(r);
		return;
	}
	if (cs->read_done) {
		end_of_read(r);
		return;
	}
	if (cs->fr != NULL) {
		if (cs->paused) {
			cs->paused = false;
			source_file_resume(cs->fr);
		}
		return;
	}
	read_next(r);
}

/* ---- the end of the snapshot: the guard, then deletions ---- */

/* Can the read skip a record? Not a file, a table (keyset), one answer, or links or cursors
 * over a declared stable order: the reads capture.deletes accepts. */
static bool
read_is_complete(const struct job_conf *j)
{
	const struct source_conf *s = &j->src;

	return s->type != CONN_HTTP || s->page_style == PAGE_NONE ||
	    ((s->page_style == PAGE_LINK || s->page_style == PAGE_NEXT) && s->page_stable);
}

static void
finish(struct run *r)
{
	json_t *doc = json_pack("{s[] ss s[]}", "failed", "result", "ok", "ok");
	json_t *ok = json_object_get(doc, "ok");
	size_t it = 0;
	const char *k;
	void *v;

	/* A record back in the snapshot as the destination has it: a deletion refused
	 * earlier (or a change refused, since reverted) has nothing left to do. */
	while (r->have_failures && strmap_next(&r->cs->stored, &it, &k, &v))
		if (((struct stored *)v)->same && run_queued(r, k))
			json_array_append_new(ok, json_string(k));

	/* A complete, clean snapshot: failures of rows that had no key (named by their line
	 * or hash) are gone with the file that had them. */
	if (r->cs->read_error == NULL && r->cs->nbad == 0)
		json_object_set_new(doc, "clear_unkeyed", json_true());
	/* And a record refused before it was ever stored that this snapshot no longer holds
	 * is gone from the source: its failure goes too (were it back, it would be read and
	 * delivered again, having no stored hash). Only from a read that cannot skip one. */
	if (r->have_failures && r->cs->read_error == NULL && r->cs->nbad == 0 &&
	    read_is_complete(r->job)) {
		size_t n = run_queue_unseen(r, &r->cs->stored, ok);

		if (n > 0)
			log_job(LOG_INFO, r->job->name, r->id, NULL, "%zu failures of records no "
			    "longer in the source cleared", n);
	}

	json_array_extend(json_object_get(doc, "failed"), r->cs->bad);
	json_array_clear(r->cs->bad);
	add_renames(r->cs, doc);
	r->last_page = true;
	run_checkpoint(r, doc, flushed_ck);
	json_decref(doc);
}

/*
 * The snapshot is read. Deletions are made only from a complete, trustworthy one: the read
 * ended without an error, had no malformed rows, holds at least capture.min_records, and
 * lacks at most max_delete_ratio of the records stored before this run (records this run
 * added do not dilute the share). A refused deletion waits for its retry like a refused
 * delivery (backoff, dead-lettering).
 */
static void
end_of_read(struct run *r)
{
	struct capture_state *cs = r->cs;
	const struct capture_conf *cc = &r->job->capture;
	size_t it = 0, nstored = cs->nstored, nmissing = 0, nwaiting = 0;
	const char *k;
	void *v;

	if (r->last_page) {
		run_finish_ok(r);
		return;
	}
	if (cc->deletes) {
		while (strmap_next(&cs->stored, &it, &k, &v)) {
			if (((struct stored *)v)->seen)
				continue;
			nmissing++;
			if (run_waits_for_retry(r, k, ""))
				nwaiting++;	/* a refused deletion, before its retry or dead */
			else
				strlist_add(&cs->del, xstrdup(k));
		}
		if (nstored > 0 && (double)nmissing / (double)nstored > cc->max_delete_ratio) {
			strlist_free(&cs->del);
			run_fail(r, "max_delete_ratio guard: this snapshot of %s lacks %zu of the %zu "
			    "records stored before this run (%.1f%% > %.1f%%), so it looks truncated or "
			    "empty%s%s; nothing was deleted. If the deletions are real, raise "
			    "capture.max_delete_ratio for one run", where(r), nmissing, nstored,
			    100.0 * (double)nmissing / (double)nstored, 100.0 * cc->max_delete_ratio,
			    cs->read_error != NULL ? ": " : "",
			    cs->read_error != NULL ? cs->read_error : "");
			return;
		}
	}
	if (cs->read_error != NULL) {
		run_fail(r, "%s; nothing was deleted", cs->read_error);
		return;
	}
	if (cc->min_records > 0 && r->nread < cc->min_records) {
		run_fail(r, "capture.min_records: this snapshot of %s has %lld records, fewer "
		    "than %lld, so it looks truncated or empty%s", where(r), r->nread,
		    (long long)cc->min_records, cc->deletes ? "; nothing was deleted" : "");
		return;
	}
	if (cc->deletes && cs->nbad > 0 && cs->del.n > 0) {
		log_job(LOG_WARNING, r->job->name, r->id, NULL, "no deletions in this run: the "
		    "snapshot had %lld malformed records, so it is not known to be complete",
		    cs->nbad);
		strlist_free(&cs->del);
	}
	if (nwaiting > 0)
		log_job(LOG_INFO, r->job->name, r->id, NULL, "%zu deletions refused before wait "
		    "for their retry (or are dead-lettered)", nwaiting);
	if (cs->del.n > 0 && r->job->dst.type == CONN_POSTGRESQL && alias_check(r))
		return;		/* alias_checked() goes on */
	start_deletes(r);
}

static void
start_deletes(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs->del.n > 0) {
		log_job(LOG_INFO, r->job->name, r->id, NULL, "deleting %zu records gone from the "
		    "source", cs->del.n);
		delete_next(r);
		return;
	}
	finish(r);
}

/*
 * The alias guard (PostgreSQL destination). Two key texts can name one row: "5" and "05"
 * in an int column, a uuid in two letter cases, "Émile" and "émile" in a citext column,
 * "10" and "1e1" in a numeric one, two spellings of one timestamptz. A stored key missing
 * from the snapshot whose row a key of the snapshot still names must not be deleted. A key
 * text that names an old row under a new text is new to the state, so this run delivered
 * it: every key the destination accepted in this run goes to the destination with the
 * candidates, and so do the unchanged keys of the snapshot that fold like a candidate
 * (canon_key_fold, for an alias delivered by an earlier run). The destination compares them by
 * its own column types (dest_pg_aliases); a candidate that meets one is not deleted: only
 * its stored text is forgotten. The kept keys go in chunks (ALIAS_CHUNK keys, at most
 * ALIAS_BYTES of key text), each with all the candidates, which are few.
 * true: the check is out, alias_checked() goes on.
 */
#define ALIAS_CHUNK	5000
#define ALIAS_BYTES	(1024 * 1024)

static bool
alias_check(struct run *r)
{
	struct capture_state *cs = r->cs;

	strmap_init(&cs->folds);
	for (size_t i = 0; i < cs->del.n; i++) {
		char *f = canon_key_fold(cs->del.v[i]);

		strmap_put(&cs->folds, f, (void *)(uintptr_t)1);
		free(f);
	}
	cs->alias_hit = xcalloc(cs->del.n + 1, sizeof *cs->alias_hit);
	cs->alias_it = 0;
	if (alias_next(r))
		return true;
	alias_done(cs);
	return false;
}

/* Send the next chunk of kept keys; false when none is left. */
static bool
alias_next(struct run *r)
{
	struct capture_state *cs = r->cs;
	struct strlist keep = { 0 };
	size_t bytes = 0;
	const char *k;
	void *v;

	while (keep.n < ALIAS_CHUNK && bytes < ALIAS_BYTES &&
	    strmap_next(&cs->stored, &cs->alias_it, &k, &v)) {
		struct stored *s = v;

		if (!s->seen)
			continue;
		if (!s->accepted) {
			char *f = canon_key_fold(k);
			bool alike = strmap_get(&cs->folds, f) != NULL;

			free(f);
			if (!alike)
				continue;
		}
		strlist_add(&keep, xstrdup(k));
		bytes += strlen(k);
	}
	if (keep.n == 0)
		return false;
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "alias check: %zu deletion candidates, "
	    "%zu keys accepted in this run or folding alike", cs->del.n, keep.n);
	dest_pg_aliases(r->dest, cs->del.v, cs->del.n, keep.v, keep.n, alias_checked, r);
	strlist_free(&keep);
	return true;
}

static void
alias_done(struct capture_state *cs)
{
	if (cs->alias_hit == NULL)
		return;
	strmap_free(&cs->folds, NULL);
	free(cs->alias_hit);
	cs->alias_hit = NULL;
}

static void
alias_checked(void *arg, int rc, const char *err, const bool *hit)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;
	size_t n = 0;

	if (rc != 0) {
		alias_done(cs);
		run_fail(r, "%s; nothing was deleted", err);
		return;
	}
	for (size_t i = 0; i < cs->del.n; i++)
		cs->alias_hit[i] = cs->alias_hit[i] || hit[i];
	if (alias_next(r))
		return;		/* the next chunk */
	for (size_t i = 0; i < cs->del.n; i++) {
		if (!cs->alias_hit[i]) {
			cs->del.v[n++] = cs->del.v[i];
			continue;
		}
		log_job(LOG_WARNING, r->job->name, r->id, NULL, "record %s is gone from the source "
		    "but not deleted: the destination's key columns take it for a key this snapshot "
		    "still has (another text of the same value, such as 05 for 5), so its row is "
		    "that record's; only its stored state is dropped", cs->del.v[i]);
		json_array_append_new(cs->drops, json_string(stored_text(cs, cs->del.v[i])));
		free(cs->del.v[i]);
	}
	cs->del.n = n;
	alias_done(cs);
	start_deletes(r);
}

static void deleted(void *, int, const char *);
static void deleted_ck(struct run *, int);

static void
delete_next(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs->del_next >= cs->del.n) {
		finish(r);
		return;
	}
	cs->del_end = cs->del_next + (size_t)r->job->batch;
	if (cs->del_end > cs->del.n)
		cs->del_end = cs->del.n;
	for (size_t i = cs->del_next; i < cs->del_end; i++)
		run_add_item(r, cs->del.v[i], NULL);
	dest_delete(r->dest, r->items, r->nitems, deleted, r);
}

static void
deleted(void *arg, int rc, const char *err)
{
	struct run *r = arg;
	json_t *doc, *gone, *failed, *ok;

	if (rc != 0) {
		run_fail(r, "deletion failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	doc = json_pack("{s[] s[] s[]}", "records_del", "failed", "ok");
	gone = json_object_get(doc, "records_del");
	failed = json_object_get(doc, "failed");
	ok = json_object_get(doc, "ok");
	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			r->ndeleted++;
			json_array_append_new(gone, json_string(stored_text(r->cs, it->key)));
			/* A deletion refused before is done now: its failure goes. */
			if (r->have_failures)
				json_array_append_new(ok, json_string(it->key));
		} else {
			char *e = xasprintf("deletion refused: %s", it->error != NULL ? it->error :
			    "unknown error");

			run_note_failure(r, it->key, e);
			json_array_append_new(failed, run_failure_entry(it->key, e, NULL, NULL));
			free(e);
		}
	}
	run_checkpoint(r, doc, deleted_ck);
	json_decref(doc);
}

static void
deleted_ck(struct run *r, int rc)
{
	run_items_reset(r);
	r->cs->del_next = r->cs->del_end;
	delete_next(r);
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
		cs->fr = source_file_open(r->jr->d, r->job, file_record, file_bad, file_done, r,
		    &err);
		if (cs->fr == NULL) {
			run_fail(r, "%s", err);
			free(err);
		}
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
	struct stored *s = strmap_get(&cs->stored, k);
	char *old;

	if (s != NULL) {
		if (up != NULL) {
			/* The new form came first: the old text is a duplicate. */
			json_array_append_new(cs->drops, json_string(key));
			free(up);
			return;
		}
		if ((old = strmap_del(&cs->legacy, k)) != NULL) {
			json_array_append_new(cs->drops, json_string(old));
			free(old);
		}
	} else {
		s = stored_new(cs);
		strmap_put(&cs->stored, k, s);
		if (up != NULL)
			strmap_put(&cs->legacy, k, xstrdup(key));
	}
	memset(s->hash, 0, sizeof s->hash);
	memcpy(s->hash, hash, len < sizeof s->hash ? len : sizeof s->hash - 1);
	free(up);
}

static void
loaded(void *arg, int rc, PGresult *res, const char *err)
{
	struct run *r = arg;
	struct capture_state *cs = r->cs;
	int n;

	if (!run_state_usable(r, rc, err))
		return;
	n = PQntuples(res);
	for (int i = 0; i < n; i++)
		load_one(cs, r->job, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    (size_t)PQgetlength(res, i, 1));
	if (n == LOAD_PAGE) {
		free(cs->load_after);
		cs->load_after = xstrdup(PQgetvalue(res, n - 1, 0));
		r->state_busy = true;
		state_records(r->jr->d->state, r->job->name, cs->load_after, LOAD_PAGE, loaded, r);
		return;
	}
	if (r->have_failures) {
		r->state_busy = true;
		state_queue(r->jr->d->state, r->job->name, NULL, STATE_PAGE, queue_loaded, r);
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
		state_queue(r->jr->d->state, r->job->name, PQgetvalue(res, n - 1, 0), STATE_PAGE,
		    queue_loaded, r);
		return;
	}
	start_read(r);
}

void
strategy_capture_begin(struct run *r, json_t *started)
{
	struct capture_state *cs = xcalloc(1, sizeof *cs);

	r->cs = cs;
	strmap_init(&cs->stored);
	strmap_init(&cs->inbatch);
	strmap_init(&cs->legacy);
	cs->renames = json_array();
	cs->drops = json_array();
	cs->bad = json_array();
	cs->held = json_array();
	r->state_busy = true;
	state_records(r->jr->d->state, r->job->name, NULL, LOAD_PAGE, loaded, r);
}
