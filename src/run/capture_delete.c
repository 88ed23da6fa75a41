/*
 * capture_delete.c - the end of a capture run's snapshot: the guard that tells a complete
 * snapshot from a truncated or empty one (max_delete_ratio, min_records, malformed rows,
 * a read that may skip records), the alias check of a PostgreSQL destination, the
 * deletions of what the snapshot lacks, and the run's last checkpoint. It never deletes
 * after a read that failed or a snapshot the guard refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "core/log.h"
#include "run/capture_delete.h"
#include "run/run_queue.h"
#include "run/run_record.h"

static void delete_next(struct run *);
static void start_deletes(struct run *);
static bool alias_check(struct run *);
static bool alias_next(struct run *);
static void alias_checked(void *, int, const char *, const bool *);

/* Can the read skip a record? Not a file, a table (keyset), one answer, or links or cursors
 * over a declared stable order: the reads capture.deletes accepts. */
static bool
read_is_complete(const struct job_conf *j)
{
	const struct source_conf *s = &j->src;

	return s->type != CONN_HTTP || s->page_style == PAGE_NONE ||
	    ((s->page_style == PAGE_LINK || s->page_style == PAGE_NEXT) && s->page_stable);
}

/* The result is written: the run is over. */
static void
finished(struct run *r, int rc)
{
	run_items_reset(r);
	run_finish_ok(r);
}

static void
finish(struct run *r)
{
	struct state_ck *ck = capture_ck_new(r->cs);
	size_t it = 0;
	const char *k;
	void *v;

	/* A record back in the snapshot as the destination has it: a deletion refused
	 * earlier (or a change refused, since reverted) has nothing left to do. */
	while (r->have_failures && strmap_next(&r->cs->stored, &it, &k, &v))
		if (((struct stored *)v)->same && run_queued(r, k))
			state_ck_key(ck, CK_OK, k);
	json_object_set_new(ck->d, "result", json_string("ok"));

	/* A complete, clean snapshot: failures of rows that had no key (named by their line
	 * or hash) are gone with the file that had them. */
	if (r->cs->read_error == NULL && r->cs->nbad == 0)
		json_object_set_new(ck->d, "clear_unkeyed", json_true());
	/* And a record refused before it was ever stored that this snapshot no longer holds
	 * is gone from the source: its failure goes too (were it back, it would be read and
	 * delivered again, having no stored hash). Only from a read that cannot skip one. */
	if (r->have_failures && r->cs->read_error == NULL && r->cs->nbad == 0 &&
	    read_is_complete(r->job)) {
		size_t n = run_queue_unseen(r, &r->cs->stored, ck);

		if (n > 0)
			log_job(LOG_INFO, r->job->name, r->id, NULL, "%zu failures of records no "
			    "longer in the source cleared", n);
	}

	state_ck_move(ck, r->cs->bad);
	r->last_page = true;
	run_checkpoint(r, ck, finished);
}

/*
 * The snapshot is read. Deletions are made only from a complete, trustworthy one: the read
 * ended without an error, had no malformed rows, holds at least capture.min_records, and
 * lacks at most max_delete_ratio of the records stored before this run (records this run
 * added do not dilute the share). A refused deletion waits for its retry like a refused
 * delivery (backoff, dead-lettering).
 */
void
capture_end_of_read(struct run *r)
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
			    "capture.max_delete_ratio for one run", capture_where(r), nmissing,
			    nstored,
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
		    "than %lld, so it looks truncated or empty%s", capture_where(r), r->nread,
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
 * its own column types (dest_aliases); a candidate that meets one is not deleted: only
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
	capture_alias_done(cs);
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
	dest_aliases(r->dest, cs->del.v, cs->del.n, keep.v, keep.n, alias_checked, r);
	strlist_free(&keep);
	return true;
}

void
capture_alias_done(struct capture_state *cs)
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
		capture_alias_done(cs);
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
		state_ck_key(cs->renamed, CK_DEL, capture_stored_text(cs, cs->del.v[i]));
		free(cs->del.v[i]);
	}
	cs->del.n = n;
	capture_alias_done(cs);
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
	struct state_ck *ck;

	if (rc != 0) {
		run_fail(r, "deletion failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	ck = state_ck_new();
	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			r->ndeleted++;
			state_ck_key(ck, CK_DEL, capture_stored_text(r->cs, it->key));
			/* A deletion refused before is done now: its failure goes. */
			if (r->have_failures)
				state_ck_key(ck, CK_OK, it->key);
		} else {
			char *e = xasprintf("deletion refused: %s", it->error != NULL ? it->error :
			    "unknown error");

			run_note_failure(r, it->key, e);
			run_failure_add(ck, it->key, e, NULL, NULL);
			free(e);
		}
	}
	run_checkpoint(r, ck, deleted_ck);
}

static void
deleted_ck(struct run *r, int rc)
{
	run_items_reset(r);
	r->cs->del_next = r->cs->del_end;
	delete_next(r);
}
