/*
 * strategy_flag.c - Record Flag and Validate (DESIGN §4.1). A run reads the records the
 * source calls pending, delivers them in batches, and marks at the source only the ones
 * the destination accepted (with values from its answer). An HTTP source's pending set is
 * collected first (up to max_records), because marking changes its pages; a PostgreSQL
 * source is paged by key, which marking cannot disturb. A record delivered but not marked
 * is remembered (key + hash) so that the next run marks it without delivering it again,
 * unless its content changed. Refused records wait in the retry queue: while their
 * backoff runs (or once dead) an unchanged pending record is left alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "canon.h"
#include "log.h"
#include "run.h"

struct cand {
	char	*key;
	json_t	*rec;
	char	 hash[CANON_HASH_LEN];
	json_t	*answer;	/* mark only: the stored destination answer (borrowed) */
	bool	 deliver;	/* false: delivered earlier, only mark */
};

struct unmarked {
	char	 hash[CANON_HASH_LEN];
	json_t	*answer;
};

struct flag_state {
	struct strmap		 unmarked;	/* key -> struct unmarked */
	json_t			*pend;		/* HTTP: the collected pending records */
	struct cand		*cands;
	size_t			 ncands, capcands, next;	/* next batch starts at next */
	size_t			 bstart, bend;	/* the batch being handled */
	struct source_mark	*marks;
	size_t			 nmarks;
	struct cand		**markc;	/* the candidate of each mark */
	struct source_marker	*marker;
	char			*after_key;	/* PostgreSQL: keyset position */
	long long		 page_index;
	bool			 read_done;
	long long		 nmarked;
};

static void read_page(struct run *);
static void next_batch(struct run *);

static void
unmarked_free(void *p)
{
	struct unmarked *u = p;

	if (u == NULL)
		return;
	json_decref(u->answer);
	free(u);
}

static void
cands_clear(struct flag_state *fs)
{
	for (size_t i = 0; i < fs->ncands; i++) {
		free(fs->cands[i].key);
		json_decref(fs->cands[i].rec);
	}
	fs->ncands = fs->next = 0;
}

static void
marks_clear(struct flag_state *fs)
{
	for (size_t i = 0; i < fs->nmarks; i++)
		free(fs->marks[i].error);
	free(fs->marks);
	free(fs->markc);
	fs->marks = NULL;
	fs->markc = NULL;
	fs->nmarks = 0;
}

void
strategy_flag_cancel(struct run *r)
{
	if (r->fl != NULL && r->fl->marker != NULL) {
		source_mark_cancel(r->fl->marker);
		r->fl->marker = NULL;
	}
}

void
strategy_flag_free(struct run *r)
{
	struct flag_state *fs = r->fl;

	if (fs == NULL)
		return;
	if (fs->marker != NULL)
		source_mark_cancel(fs->marker);
	marks_clear(fs);
	cands_clear(fs);
	free(fs->cands);
	strmap_free(&fs->unmarked, unmarked_free);
	json_decref(fs->pend);
	free(fs->after_key);
	free(fs);
	r->fl = NULL;
}

long long
strategy_flag_marked(const struct run *r)
{
	return r->fl != NULL ? r->fl->nmarked : 0;
}

void
strategy_flag_begin(struct run *r, json_t *started)
{
	struct flag_state *fs = xcalloc(1, sizeof *fs);
	size_t i;
	json_t *e;

	r->fl = fs;
	strmap_init(&fs->unmarked);
	fs->pend = json_array();
	json_array_foreach(json_object_get(started, "unmarked"), i, e) {
		struct unmarked *u = xcalloc(1, sizeof *u);

		snprintf(u->hash, sizeof u->hash, "%s", json_string_value(json_array_get(e, 1)));
		u->answer = json_incref(json_array_get(e, 2));
		unmarked_free(strmap_put(&fs->unmarked, json_string_value(json_array_get(e, 0)), u));
	}
	read_page(r);
}

/* Judge one pending record: wait (retry queue), mark only, or deliver. */
static void
add_candidate(struct run *r, json_t *rec, const char *where, size_t idx)
{
	struct flag_state *fs = r->fl;
	struct cand *c;
	struct unmarked *u;
	char *key = NULL, *err = NULL, h[CANON_HASH_LEN];

	r->nread++;
	canon_hash(rec, NULL, 0, NULL, 0, h);
	if (record_key(rec, r->job->key, r->job->nkey, &key, &err) != 0) {
		char *k = xasprintf("#nokey:%s", h);
		char *msg = xasprintf("%s (record %zu of %s)", err, idx, where);
		json_t *doc = json_pack("{s[{ss ss sO ss}]}", "failed", "key", k, "error", msg,
		    "payload", rec, "hash", h);

		run_note_failure(r, k, msg);
		/* Recorded with the next checkpoint: keep it with the batch's document. */
		json_array_extend(json_object_get(r->ck, "failed"), json_object_get(doc, "failed"));
		json_decref(doc);
		free(k);
		free(msg);
		free(err);
		return;
	}
	if (run_waits_for_retry(r, key, h)) {
		r->nskipped++;	/* unchanged and still backing off (or dead): leave it */
		free(key);
		return;
	}
	if (fs->ncands == fs->capcands) {
		fs->capcands = fs->capcands ? fs->capcands * 2 : 256;
		fs->cands = xreallocarray(fs->cands, fs->capcands, sizeof *fs->cands);
	}
	c = &fs->cands[fs->ncands++];
	memset(c, 0, sizeof *c);
	c->key = key;
	c->rec = json_incref(rec);
	memcpy(c->hash, h, sizeof h);
	u = strmap_get(&fs->unmarked, key);
	c->deliver = u == NULL || strcmp(u->hash, h) != 0;
	if (!c->deliver)
		c->answer = u->answer;
}

static void page_answered(void *, int, struct source_page *, const char *);

static void
read_page(struct run *r)
{
	run_fetch_page(r, SPG_PENDING, r->fl->after_key, ++r->fl->page_index, page_answered);
}

static void
page_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct run *r = arg;
	struct flag_state *fs = r->fl;
	const struct source_conf *sc = &r->job->src;
	size_t i, n;
	json_t *rec;
	bool more;

	r->sreq = NULL;
	if (rc != 0) {
		run_fail(r, "%s", err);
		return;
	}
	n = json_array_size(page->records);
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld: %zu pending records from %s",
	    fs->page_index, n, page->log_url != NULL ? page->log_url : "the source");
	more = run_page_more(r, page);
	json_decref(r->ck);
	r->ck = json_pack("{s[]}", "failed");
	if (sc->type == CONN_POSTGRESQL) {
		/* Keyset: this page is handled now; the next read starts after its last key. */
		json_array_foreach(page->records, i, rec)
			add_candidate(r, rec, page->log_url != NULL ? page->log_url : "the source", i);
		if (n > 0) {
			char *k = NULL, *e = NULL;

			if (record_key(json_array_get(page->records, n - 1), r->job->key, r->job->nkey,
			    &k, &e) != 0) {
				source_page_free(page);
				run_fail(r, "the last row of a page has no key: %s", e);
				free(e);
				return;
			}
			free(fs->after_key);
			fs->after_key = k;
		}
		fs->read_done = !more;
	} else {
		/* Collect: marking would shift the pages of the pending set. */
		json_array_foreach(page->records, i, rec) {
			if ((int64_t)json_array_size(fs->pend) >= r->job->max_records) {
				more = false;
				break;
			}
			json_array_append(fs->pend, rec);
		}
		if ((int64_t)json_array_size(fs->pend) >= r->job->max_records && more) {
			log_job(LOG_INFO, r->job->name, r->id, NULL, "more than max_records (%lld) "
			    "pending records: the rest waits for the next run",
			    (long long)r->job->max_records);
			more = false;
		}
		if (more) {
			source_page_free(page);
			read_page(r);
			return;
		}
		json_array_foreach(fs->pend, i, rec)
			add_candidate(r, rec, page->log_url != NULL ? page->log_url : "the source", i);
		json_array_clear(fs->pend);
		fs->read_done = true;
	}
	source_page_free(page);
	next_batch(r);
}

static void batch_delivered(struct run *, int);
static void batch_marked(void *, int, const char *);
static void batch_checkpointed(struct run *, int);

/* Deliver the next batch of candidates (the mark-only ones are marked with it). */
static void
next_batch(struct run *r)
{
	struct flag_state *fs = r->fl;
	size_t end;

	if (fs->next >= fs->ncands) {
		json_t *doc;

		cands_clear(fs);
		if (!fs->read_done) {
			if (json_array_size(json_object_get(r->ck, "failed")) > 0) {
				/* records without a key on this page: record them before reading on */
				doc = r->ck;
				r->ck = NULL;
				run_checkpoint(r, doc, batch_checkpointed);
				json_decref(doc);
				return;
			}
			read_page(r);
			return;
		}
		doc = r->ck != NULL ? json_incref(r->ck) : json_object();
		json_decref(r->ck);
		r->ck = NULL;
		json_object_set_new(doc, "result", json_string("ok"));
		fs->next = fs->ncands = 0;
		r->last_page = true;
		run_checkpoint(r, doc, batch_checkpointed);
		json_decref(doc);
		return;
	}
	end = fs->next + (size_t)r->job->batch;
	if (end > fs->ncands)
		end = fs->ncands;
	fs->bstart = fs->next;
	fs->bend = end;
	fs->next = end;
	for (size_t i = fs->bstart; i < fs->bend; i++)
		if (fs->cands[i].deliver)
			run_add_item(r, fs->cands[i].key, fs->cands[i].rec);
	run_deliver(r, batch_delivered);
}

/* Mark what the destination accepted, and what an earlier run delivered but did not mark. */
static void
batch_delivered(struct run *r, int rc)
{
	struct flag_state *fs = r->fl;
	size_t it = 0, n = fs->bend - fs->bstart;

	marks_clear(fs);
	fs->marks = xcalloc(n + 1, sizeof *fs->marks);
	fs->markc = xcalloc(n + 1, sizeof *fs->markc);
	for (size_t i = fs->bstart; i < fs->bend; i++) {
		struct cand *c = &fs->cands[i];
		struct source_mark *m;
		json_t *answer = c->answer;

		if (c->deliver) {
			struct dest_item *d = &r->items[it++];

			if (d->outcome != DEST_OK)
				continue;
			answer = d->answer;
		}
		m = &fs->marks[fs->nmarks];
		fs->markc[fs->nmarks++] = c;
		m->key = c->key;
		m->rec = c->rec;
		m->dest = answer;
	}
	if (fs->nmarks == 0) {
		batch_marked(r, 0, NULL);
		return;
	}
	fs->marker = source_mark(r->jr->d, r->job, fs->marks, fs->nmarks, batch_marked, r);
}

static void
batch_marked(void *arg, int rc, const char *err)
{
	struct run *r = arg;
	struct flag_state *fs = r->fl;
	json_t *doc = r->ck != NULL ? r->ck : json_pack("{s[]}", "failed");
	json_t *failed = json_object_get(doc, "failed"), *ok = json_array(),
	    *uadd = json_array(), *udel = json_array();
	size_t it = 0;

	r->ck = NULL;
	if (fs->marker != NULL) {
		source_mark_cancel(fs->marker);	/* done: this frees it */
		fs->marker = NULL;
	}
	if (rc != 0) {
		json_decref(doc);
		json_decref(ok);
		json_decref(uadd);
		json_decref(udel);
		run_fail(r, "marking failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	/* Delivery outcomes. */
	for (size_t i = fs->bstart; i < fs->bend; i++) {
		struct cand *c = &fs->cands[i];
		struct dest_item *d;

		if (!c->deliver)
			continue;
		d = &r->items[it++];
		if (d->outcome == DEST_OK) {
			r->ndelivered++;
			if (run_queued(r, c->key))
				json_array_append_new(ok, json_string(c->key));
		} else {
			const char *e = d->error != NULL ? d->error : "not delivered";

			run_note_failure(r, c->key, e);
			json_array_append_new(failed, json_pack("{ss ss sO ss}", "key", c->key,
			    "error", e, "payload", c->rec, "hash", c->hash));
		}
	}
	/* Marking outcomes. */
	for (size_t i = 0; i < fs->nmarks; i++) {
		struct source_mark *m = &fs->marks[i];
		struct cand *c = fs->markc[i];
		bool was_unmarked = strmap_get(&fs->unmarked, c->key) != NULL;

		if (!c->deliver)
			r->nskipped++;	/* delivered by an earlier run; only marked now */
		switch (m->outcome) {
		case MARK_OK:
			fs->nmarked++;
			if (was_unmarked)
				json_array_append_new(udel, json_string(c->key));
			break;
		case MARK_CONFLICT:
			log_job(LOG_INFO, r->job->name, r->id, NULL, "record %s not marked: %s; it "
			    "stays pending and goes again with its new content", c->key,
			    m->error != NULL ? m->error : "changed");
			if (was_unmarked)
				json_array_append_new(udel, json_string(c->key));
			break;
		default:
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "record %s delivered but not "
			    "marked: %s; the next run marks it without delivering it again", c->key,
			    m->error != NULL ? m->error : "marking failed");
			json_array_append_new(uadd, json_pack("[s s O s]", c->key, c->hash,
			    m->dest != NULL ? m->dest : json_null(),
			    m->error != NULL ? m->error : "marking failed"));
			break;
		}
	}
	json_object_set_new(doc, "ok", ok);
	json_object_set_new(doc, "unmarked_add", uadd);
	json_object_set_new(doc, "unmarked_del", udel);
	if (fs->next >= fs->ncands && fs->read_done) {
		json_object_set_new(doc, "result", json_string("ok"));
		r->last_page = true;
	}
	run_checkpoint(r, doc, batch_checkpointed);
	json_decref(doc);
}

static void
batch_checkpointed(struct run *r, int rc)
{
	struct flag_state *fs = r->fl;

	run_items_reset(r);
	marks_clear(fs);
	if (r->last_page) {
		run_finish_ok(r);
		return;
	}
	r->ck = json_pack("{s[]}", "failed");
	next_batch(r);
}
