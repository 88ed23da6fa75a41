/*
 * strategy_flag.c - Record Flag and Validate (doc/design.md §4.1). A run reads the records
 * the source calls pending, delivers them in batches, and marks at the source only the ones
 * the destination accepted (with values from its answer). An HTTP source's pending set is
 * collected first (up to max_records), because marking changes its pages; a PostgreSQL
 * source is paged by key, which marking cannot disturb. A record delivered but not marked
 * is remembered (key + hash) so that the next run marks it without delivering it again,
 * unless its content changed. Refused records wait in the retry queue: while their backoff
 * runs (or once dead) an unchanged pending record is left alone.
 *
 * Batches flow through two places so that the destination's work overlaps the source's and
 * the state store's: batch N is marked, then checkpointed, while batch N+1 is delivered (and,
 * at a page's end, while the next page is read and judged). One batch is marked at a time,
 * the checkpoints go in batch order, each once its batch is marked; a batch delivered while
 * the one before is still being marked or checkpointed waits (dl_done). The state store
 * takes one call at a time: a page's lookup and a batch's checkpoint wait for each other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/canon.h"
#include "record/json.h"
#include "core/log.h"
#include "run/flag_batch.h"
#include "run/run_page.h"
#include "run/run_record.h"
#include "run/strategy_flag.h"
#include "store/state.h"

struct unmarked {
	char	 hash[CANON_HASH_LEN];
	json_t	*answer;
};

struct qent {
	char	 hash[CANON_HASH_LEN];
	bool	 waiting;	/* dead, or its retry is not due yet */
};

#define CAND_NOKEY	((void *)UINTPTR_MAX)

struct flag_state {
	struct strmap		 unmarked;	/* this page's keys in `unmarked` -> struct unmarked */
	struct strmap		 queue;		/* this page's keys in the retry queue -> 1 (due) or
						 * 2 (waiting) + the hash, see struct qent */
	struct strmap		 cand_at;	/* key -> candidate index + 1 (CAND_NOKEY: a key-less
						 * failure already recorded) */
	json_t			*page;		/* the page being judged */
	char			*where;
	bool			 more;		/* the source has more pages */
	struct cand		*cands;
	size_t			 ncands, capcands, next;	/* next batch starts at next */
	size_t			 bstart, bend;	/* the batch being delivered */
	struct flag_batch	 mk;		/* the batch before it */
	bool			 dl_done;	/* delivered, waiting for mk to end */
	bool			 drain;		/* next_batch() waits for mk to end */
	bool			 ck_busy;	/* mk's checkpoint is in flight */
	bool			 lookup_busy;	/* a page's state lookup is in flight */
	struct strlist		 lookup_keys;	/* a lookup waiting for the checkpoint */
	bool			 lookup_wait;
	struct state_ck		*ck_wait;	/* a checkpoint waiting for the lookup */
	bool			 read_early;	/* the page read went while a batch was marked */
	bool			 reread;	/* read the page again once mk ends */
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
		json_decref(fs->cands[i].answer);
	}
	fs->ncands = fs->next = 0;
	strmap_free(&fs->cand_at, NULL);
	strmap_init(&fs->cand_at);
}

/* Forget what the state said of the last page's keys. */
static void
page_forget(struct flag_state *fs)
{
	strmap_free(&fs->unmarked, unmarked_free);
	strmap_init(&fs->unmarked);
	strmap_free(&fs->queue, free);
	strmap_init(&fs->queue);
	json_decref(fs->page);
	fs->page = NULL;
	free(fs->where);
	fs->where = NULL;
}

static void
flag_cancel(struct run *r)
{
	struct flag_state *fs = r->fl;

	if (fs == NULL || fs->mk.marker == NULL)
		return;
	if (!r->cut && !r->timed_out) {
		/*
		 * A later step failed (the next batch's delivery, a read): the batch being
		 * marked ends its marking and is checkpointed first, as before batches
		 * overlapped, so that only the failing batch goes again; the failure is
		 * written after that checkpoint (batch_marked), as after a state call.
		 */
		r->state_busy = true;
		return;
	}
	source_mark_cancel(fs->mk.marker);
	fs->mk.marker = NULL;
}

static void
flag_free(struct run *r)
{
	struct flag_state *fs = r->fl;

	if (fs == NULL)
		return;
	flag_batch_clear(&fs->mk);
	state_ck_free(fs->ck_wait);
	strlist_free(&fs->lookup_keys);
	cands_clear(fs);
	free(fs->cands);
	page_forget(fs);
	strmap_free(&fs->cand_at, NULL);
	free(fs->after_key);
	free(fs);
	r->fl = NULL;
}

static void
flag_log_finished(struct run *r, unsigned long long ms)
{
	log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
	    "run finished in %llu ms: read %lld, delivered %lld, marked %lld, skipped %lld, "
	    "failed %lld", ms, r->nread, r->ndelivered, r->fl != NULL ? r->fl->nmarked : 0,
	    r->nskipped, r->nfailed);
}

static void
flag_begin(struct run *r, json_t *started)
{
	struct flag_state *fs = xcalloc(1, sizeof *fs);

	r->fl = fs;
	strmap_init(&fs->unmarked);
	strmap_init(&fs->queue);
	strmap_init(&fs->cand_at);
	r->ck = state_ck_new();
	read_page(r);
}

/* Judge one pending record: wait (retry queue), mark only, or deliver. A key that came
 * earlier in the set being collected replaces its earlier occurrence (the last wins). */
static void
add_candidate(struct run *r, json_t *rec, const char *where, size_t idx)
{
	struct flag_state *fs = r->fl;
	struct cand *c;
	struct unmarked *u;
	struct qent *q;
	char *key = NULL, *err = NULL, h[CANON_HASH_LEN];
	void *at;

	r->nread++;
	canon_hash(rec, NULL, 0, NULL, 0, h);
	if (run_record_key(r, rec, &key, &err) != 0) {
		char *k = key != NULL ? key : xasprintf("#nokey:%s", h);
		char *msg = xasprintf("%s (record %zu of %s)", err, idx, where);

		if (strmap_get(&fs->cand_at, k) != NULL) {
			r->nskipped++;	/* the same key-less content again: queued once */
			run_note_duplicate(r, k, where);
		} else {
			strmap_put(&fs->cand_at, k, CAND_NOKEY);
			run_note_failure(r, k, msg);
			/* Recorded with the next checkpoint. */
			run_failure_add(r->ck, k, msg, rec, h);
		}
		free(k);
		free(msg);
		free(err);
		return;
	}
	c = NULL;
	if ((at = strmap_get(&fs->cand_at, key)) != NULL && at != CAND_NOKEY) {
		/* Its earlier occurrence gives way to this one. */
		c = &fs->cands[(uintptr_t)at - 1];
		r->nskipped++;
		run_note_duplicate(r, key, where);
		free(c->key);
		json_decref(c->rec);
		json_decref(c->answer);
		memset(c, 0, sizeof *c);
		c->dropped = true;
	}
	q = strmap_get(&fs->queue, key);
	if (q != NULL && q->waiting && strcmp(q->hash, h) == 0) {
		r->nskipped++;	/* unchanged and still backing off (or dead): leave it */
		free(key);
		return;
	}
	if (c == NULL) {
		if (fs->ncands == fs->capcands) {
			fs->capcands = fs->capcands ? fs->capcands * 2 : 256;
			fs->cands = xreallocarray(fs->cands, fs->capcands, sizeof *fs->cands);
		}
		c = &fs->cands[fs->ncands++];
		strmap_put(&fs->cand_at, key, (void *)(uintptr_t)fs->ncands);
	}
	memset(c, 0, sizeof *c);
	c->key = key;
	c->rec = json_incref(rec);
	c->queued = q != NULL;
	memcpy(c->hash, h, sizeof h);
	u = strmap_get(&fs->unmarked, key);
	c->unmarked = u != NULL;
	c->deliver = u == NULL || strcmp(u->hash, h) != 0;
	if (!c->deliver)
		c->answer = json_incref(u->answer);
}

static void page_answered(void *, int, struct source_page *, const char *);
static void lookup_start(struct run *);

static void
read_page(struct run *r)
{
	r->fl->read_early = r->fl->mk.active;
	run_fetch_page(r, SPG_PENDING, r->fl->after_key, ++r->fl->page_index, page_answered);
}

static void looked_up(void *, int, PGresult *, const char *);
static void judge_page(struct run *, PGresult *);

/*
 * A page of the pending set: ask the state what it knows of the page's keys (retry queue,
 * `unmarked`), then judge its records. Nothing of the state is loaded but for these keys.
 */
static void
page_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct run *r = arg;
	struct flag_state *fs = r->fl;
	const struct source_conf *sc = &r->job->src;
	size_t i, n;
	json_t *rec;
	struct strlist keys = { 0 };
	char *stale;

	r->sreq = NULL;
	if (rc != 0 && fs->read_early) {
		/*
		 * Read while the batch before was marked: as the run did before batches
		 * overlapped, the page is read (once more) after that batch's checkpoint, which
		 * rides out a database restart (sent again while the lease lasts); failing now
		 * would cancel its marking and deliver it again.
		 */
		log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld: %s; read again once "
		    "the batch being marked is checkpointed", fs->page_index, err);
		fs->read_early = false;
		fs->page_index--;
		if (fs->mk.active)
			fs->reread = true;
		else
			read_page(r);
		return;
	}
	if (rc != 0) {
		run_fail(r, "%s", err);
		return;
	}
	n = json_array_size(page->records);
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld: %zu pending records from %s",
	    fs->page_index, n, page->log_url != NULL ? page->log_url : "the source");
	if ((stale = run_page_stale(r, page, fs->page_index)) != NULL) {
		source_page_free(page);
		run_fail(r, "%s", stale);
		free(stale);
		return;
	}
	fs->more = run_page_more(r, page);
	if (sc->type == CONN_POSTGRESQL && n > 0 &&
	    run_keyset_next(r, page->records, &fs->after_key) != 0)
		fs->more = false;
	page_forget(fs);
	fs->page = json_incref(page->records);
	fs->where = xstrdup(page->log_url != NULL ? page->log_url : "the source");
	source_page_free(page);
	json_array_foreach(fs->page, i, rec) {
		char *k = NULL, *e = NULL;

		if (canon_record_key(rec, r->job->key, r->job->nkey, &k, &e) == 0)
			strlist_add(&keys, k);
		else
			free(k);
		free(e);
	}
	if (keys.n == 0) {
		judge_page(r, NULL);
		return;
	}
	fs->lookup_keys = keys;
	if (fs->ck_busy) {
		fs->lookup_wait = true;		/* after the checkpoint in flight */
		return;
	}
	lookup_start(r);
}

static void
lookup_start(struct run *r)
{
	struct flag_state *fs = r->fl;

	fs->lookup_wait = false;
	fs->lookup_busy = true;
	r->state_busy = true;
	state_lookup(r->env.state, r->job->name, fs->lookup_keys.v, fs->lookup_keys.n,
	    looked_up, r);
	strlist_free(&fs->lookup_keys);
}

static void collected_ck(struct run *, int);
static void ck_send(struct run *, struct state_ck *);

static void
looked_up(void *arg, int rc, PGresult *res, const char *err)
{
	struct run *r = arg;
	struct flag_state *fs = r->fl;
	struct state_ck *ck;

	fs->lookup_busy = false;
	if (rc != STATE_OK)
		run_fail(r, "%s", err);		/* written below, or after what is in flight */
	ck = fs->ck_wait;
	fs->ck_wait = NULL;
	if (r->fail_msg != NULL) {
		/* The batch marked meanwhile has its checkpoint written first, even when the
		 * run fails (the lookup lost, the run cut): it tells what the source was told;
		 * so does the batch still being marked (flag_cancel). The failure is written
		 * after it (state_busy is still set). */
		if (ck != NULL)
			ck_send(r, ck);
		else if (fs->mk.marker == NULL)
			run_state_returned(r);
		return;
	}
	r->state_busy = false;		/* answered: a failure from here on is written at once */
	if (ck != NULL)
		ck_send(r, ck);		/* the batch marked meanwhile: its checkpoint goes first */
	judge_page(r, res);
}

/* Judge the page with what the state said of its keys (res: NULL when none had a key),
 * then collect on or deliver. */
static void
judge_page(struct run *r, PGresult *res)
{
	struct flag_state *fs = r->fl;
	bool http = r->job->src.type != CONN_POSTGRESQL;
	size_t i;
	json_t *rec;

	for (int row = 0; res != NULL && row < PQntuples(res); row++) {
		const char *kind = PQgetvalue(res, row, 0), *key = PQgetvalue(res, row, 1);

		if (kind[0] == 'f') {
			struct qent *q = xcalloc(1, sizeof *q);

			snprintf(q->hash, sizeof q->hash, "%s", PQgetvalue(res, row, 2));
			q->waiting = strcmp(PQgetvalue(res, row, 3), "true") == 0;
			free(strmap_put(&fs->queue, key, q));
		} else {
			struct unmarked *u = xcalloc(1, sizeof *u);

			snprintf(u->hash, sizeof u->hash, "%s", PQgetvalue(res, row, 2));
			u->answer = PQgetisnull(res, row, 4) ? json_null() :
			    json_loads(PQgetvalue(res, row, 4), JSON_DECODE_ANY, NULL);
			unmarked_free(strmap_put(&fs->unmarked, key, u));
		}
	}
	json_array_foreach(fs->page, i, rec) {
		/* Only records that go count: those waiting in the retry queue do not hold
		 * the place of the ones behind them. */
		if (http && (int64_t)fs->ncands >= r->job->max_records)
			break;
		add_candidate(r, rec, fs->where, i);
	}
	if (http && (int64_t)fs->ncands >= r->job->max_records &&
	    (fs->more || i < json_array_size(fs->page))) {
		log_job(LOG_INFO, r->job->name, r->id, NULL, "max_records (%lld) pending records "
		    "to send: the rest waits for the next run", (long long)r->job->max_records);
		fs->more = false;
	}
	page_forget(fs);
	if (http && fs->more) {
		/* Collect on (marking would shift the pages of the pending set); the page's
		 * key-less records are recorded first. */
		if (state_ck_count(r->ck, CK_FAILED) > 0) {
			struct state_ck *ck = r->ck;

			r->ck = NULL;
			run_checkpoint(r, ck, collected_ck);
			return;
		}
		read_page(r);
		return;
	}
	fs->read_done = !fs->more || http;
	next_batch(r);
}

static void
collected_ck(struct run *r, int rc)
{
	r->ck = state_ck_new();
	read_page(r);
}

static void batch_delivered(struct run *, int);
static void marking_start(struct run *);
static void batch_marked(void *, int, const char *);
static void marked_checkpointed(struct run *, int);
static void batch_checkpointed(struct run *, int);

/* Deliver the next batch of candidates (the mark-only ones are marked with it). */
static void
next_batch(struct run *r)
{
	struct flag_state *fs = r->fl;
	size_t end;

	if (fs->next >= fs->ncands) {
		struct state_ck *ck;

		if (fs->mk.active && (fs->read_done || state_ck_count(r->ck, CK_FAILED) > 0)) {
			/* the run's end, or key-less records to record: once the batch being
			 * marked is checkpointed */
			fs->drain = true;
			return;
		}
		cands_clear(fs);
		if (!fs->read_done) {
			if (state_ck_count(r->ck, CK_FAILED) > 0) {
				/* records without a key on this page: record them before reading on */
				ck = r->ck;
				r->ck = NULL;
				run_checkpoint(r, ck, batch_checkpointed);
				return;
			}
			read_page(r);
			return;
		}
		ck = r->ck != NULL ? r->ck : state_ck_new();
		r->ck = NULL;
		json_object_set_new(ck->d, "result", json_string("ok"));
		fs->next = fs->ncands = 0;
		r->last_page = true;
		run_checkpoint(r, ck, batch_checkpointed);
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

/*
 * The delivered batch goes to be marked (what the destination accepted, and what an earlier
 * run delivered but did not mark), then checkpointed; the next batch is delivered meanwhile.
 */
static void
batch_delivered(struct run *r, int rc)
{
	struct flag_state *fs = r->fl;

	if (r->finishing)
		return;
	if (fs->mk.active) {
		fs->dl_done = true;	/* after the batch before it */
		return;
	}
	marking_start(r);
}

/* Take the delivered batch (candidates, items, checkpoint so far) into fs->mk and mark it;
 * then deliver the next batch. */
static void
marking_start(struct run *r)
{
	struct flag_state *fs = r->fl;
	struct flag_batch *mk = &fs->mk;

	mk->active = true;
	mk->last = fs->next >= fs->ncands && fs->read_done;
	run_items_take(r, &mk->ps);
	mk->ck = r->ck != NULL ? r->ck : state_ck_new();
	r->ck = state_ck_new();
	flag_batch_take(mk, fs->cands + fs->bstart, fs->bend - fs->bstart);
	if (mk->nmarks == 0)
		batch_marked(r, 0, NULL);
	else
		mk->marker = source_mark(r->env.conn, r->job, mk->marks, mk->nmarks,
		    batch_marked, r);
	if (!mk->last && !r->finishing)
		next_batch(r);
}

static void
batch_marked(void *arg, int rc, const char *err)
{
	struct run *r = arg;
	struct flag_state *fs = r->fl;
	struct flag_batch *mk = &fs->mk;
	struct state_ck *ck = mk->ck;

	mk->ck = NULL;
	if (mk->marker != NULL) {
		source_mark_cancel(mk->marker);	/* done: this frees it */
		mk->marker = NULL;
	}
	if (rc != 0) {
		state_ck_free(ck);
		if (r->fail_msg != NULL)
			run_state_returned(r);	/* the failure waited for this marking */
		else
			run_fail(r, "marking failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	flag_batch_outcomes(r, mk, ck, &fs->nmarked);
	if (mk->last && r->fail_msg == NULL) {
		json_object_set_new(ck->d, "result", json_string("ok"));
		r->last_page = true;
	}
	if (fs->lookup_busy) {
		fs->ck_wait = ck;	/* sent once the lookup is answered */
		return;
	}
	ck_send(r, ck);
}

static void
ck_send(struct run *r, struct state_ck *ck)
{
	r->fl->ck_busy = true;
	run_checkpoint(r, ck, marked_checkpointed);
}

/* The marked batch is checkpointed: the next one may be marked, the lookup waiting go. */
static void
marked_checkpointed(struct run *r, int rc)
{
	struct flag_state *fs = r->fl;

	fs->ck_busy = false;
	flag_batch_clear(&fs->mk);
	if (r->last_page) {
		run_finish_ok(r);
		return;
	}
	if (fs->lookup_wait)
		lookup_start(r);
	else if (fs->reread) {
		fs->reread = false;
		read_page(r);
	} else if (fs->dl_done) {
		fs->dl_done = false;
		marking_start(r);
	} else if (fs->drain) {
		fs->drain = false;
		next_batch(r);
	}
}

/* A checkpoint written while no batch was out (key-less records, the run's end). */
static void
batch_checkpointed(struct run *r, int rc)
{
	run_items_reset(r);
	if (r->last_page) {
		run_finish_ok(r);
		return;
	}
	r->ck = state_ck_new();
	next_batch(r);
}

const struct strategy_ops strategy_flag_ops = {
	.name = "flag",
	.begin = flag_begin,
	.cancel = flag_cancel,
	.free = flag_free,
	.log_finished = flag_log_finished,
};
