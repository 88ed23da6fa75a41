/*
 * strategy_modified.c - Remember Last Modified Time (doc/design.md §4.2). The watermark is
 * the source's own text of the highest timestamp delivered; reads are inclusive (>=) and
 * the records already seen at the watermark (the tie set) or inside the lookback window are
 * skipped by hash. With `sorted`, the watermark is checkpointed after every page and the
 * next page is asked again from it (seek pagination); page numbers only step inside one
 * tie, and a tie that spanned pages is read once more before the watermark leaves it.
 * Without `sorted`, every page is read and the watermark moves once, at the end. This file
 * runs the flow (seen set, replayed retries, fetch, deliver, checkpoint); modified_page.c
 * judges each page and decides the next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "record/canon.h"
#include "core/log.h"
#include "run/modified_page.h"
#include "run/run_page.h"
#include "run/run_record.h"
#include "run/strategy_modified.h"
#include "store/state.h"

#define MAX_PAGES	1000000

static void fetch_page(struct run *);
static void retries_done(struct run *, int);
static void page_answered(void *, int, struct source_page *, const char *);
static void page_delivered(struct run *, int);
static void page_checkpointed(struct run *, int);

/* The lower bound sent to the source: the watermark, or watermark - lookback. */
static void
request_bound(struct run *r)
{
	const struct modified_conf *m = &r->job->modified;

	free(r->md->req_wm_text);
	r->md->req_wm_text = NULL;
	r->md->req_wm_ns = r->wm_ns;
	if (r->wm_text == NULL)
		return;
	if (m->lookback_ms > 0) {
		struct ts t = ts_sub_ms(ts_from_ns(r->wm_ns), m->lookback_ms);

		r->md->req_wm_text = ts_format(t, m->format);
		r->md->req_wm_ns = ts_ns(t);
	} else
		r->md->req_wm_text = xstrdup(r->wm_text);
	/* Every source, a PostgreSQL table too, is read again from the watermark inclusive:
	 * a row that reaches the watermark's timestamp after it was read, with a key below
	 * the last one read, must be found; the seen set skips the tie already delivered. */
}

/*
 * Deliver the queued retries (replayed from their stored payload) before reading. A payload
 * that still has no key or no valid timestamp is not delivered: it fails again.
 */
static void
begin_retries(struct run *r)
{
	size_t i;
	json_t *e;

	r->retry_failed = state_ck_new();
	json_array_foreach(r->retry, i, e) {
		json_t *payload = json_object_get(e, "payload");
		const char *key = json_string_value(json_object_get(e, "key"));
		char *k = NULL, *err = NULL, h[CANON_HASH_LEN];

		if (key == NULL)
			continue;
		if (!json_is_object(payload)) {
			/* Its payload could not be stored: nothing to replay. It fails again (and
			 * dies after max_attempts); the source's next change of it goes as usual.
			 * A page element that was no object (null, a number) says so again. */
			if (payload != NULL && !json_is_string(payload)) {
				if (run_record_key(r, payload, &k, &err) == 0)
					free(k);	/* not reached: not an object */
				k = NULL;
			} else
				err = xstrdup("no stored payload to retry from (the record held a "
				    "NUL character or invalid UTF-8, or was larger than 8 MB); it "
				    "goes again when the source changes it");
			run_note_failure(r, key, err);
			run_failure_add(r->retry_failed, key, err, NULL, "");
			free(err);
			continue;
		}
		err = modified_replay_error(r, payload, key);
		if (err != NULL) {
			canon_hash(payload, NULL, 0, NULL, 0, h);
			run_note_failure(r, key, err);
			run_failure_add(r->retry_failed, key, err, payload, h);
		} else
			run_add_item(r, key, payload);
		free(err);
	}
	if (r->nitems == 0 && state_ck_count(r->retry_failed, CK_FAILED) > 0) {
		retries_done(r, 0);
		return;
	}
	if (r->nitems == 0) {
		fetch_page(r);
		return;
	}
	log_job(LOG_INFO, r->job->name, r->id, NULL, "retrying %zu queued records", r->nitems);
	run_deliver(r, retries_done);
}

/* Sort the outcome of delivered items into the checkpoint's lists. */
static void
record_outcomes(struct run *r, struct state_ck *ck, bool store_payload)
{
	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			r->ndelivered++;
			if (r->have_failures)
				state_ck_key(ck, CK_OK, it->key);
		} else {
			char h[CANON_HASH_LEN];

			canon_hash(it->rec, NULL, 0, NULL, 0, h);
			run_note_failure(r, it->key, it->error != NULL ? it->error : "not delivered");
			run_failure_add(ck, it->key, it->error != NULL ? it->error :
			    "not delivered", store_payload ? it->rec : NULL, h);
		}
	}
}

static void
retries_checkpointed(struct run *r, int rc)
{
	run_items_reset(r);
	fetch_page(r);
}

static void
retries_done(struct run *r, int rc)
{
	struct state_ck *ck = state_ck_new();
	bool had = r->have_failures;

	r->have_failures = true;	/* retried keys are in the queue: clear them when delivered */
	record_outcomes(r, ck, true);
	if (r->retry_failed != NULL)
		state_ck_move(ck, r->retry_failed);
	r->have_failures = had;
	run_checkpoint(r, ck, retries_checkpointed);
}

static void begin_reading(struct run *);

/* A page of the seen set: into memory; the next page, or the run proper. */
static void
seen_loaded(void *arg, int rc, PGresult *res, const char *err)
{
	struct run *r = arg;
	int n;

	if (!run_state_usable(r, rc, err))
		return;
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		struct seen *s = xmalloc(sizeof *s);
		/* A composite key an older version wrote with bare numbers matches under
		 * today's text; the old row is pruned with the window like any other. */
		char *up = r->job->nkey > 1 ? canon_key_text_upgrade(PQgetvalue(res, i, 0),
		    r->job->nkey) : NULL;

		snprintf(s->hash, sizeof s->hash, "%s", PQgetvalue(res, i, 1));
		s->ts_ns = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		free(strmap_put(&r->seen, up != NULL ? up : PQgetvalue(res, i, 0), s));
		free(up);
	}
	if (n == STATE_PAGE) {
		r->state_busy = true;
		state_seen(r->env.state, r->job->name, PQgetvalue(res, n - 1, 0), STATE_PAGE,
		    seen_loaded, r);
		return;
	}
	begin_reading(r);
}

static void
modified_begin(struct run *r, json_t *started)
{
	struct modified_state *md = xcalloc(1, sizeof *md);

	r->md = md;
	md->cap_ns = INT64_MAX;
	md->tie_read_ns = INT64_MIN;
	if (r->have_seen) {
		r->state_busy = true;
		state_seen(r->env.state, r->job->name, NULL, STATE_PAGE, seen_loaded, r);
		return;
	}
	begin_reading(r);
}

static void
begin_reading(struct run *r)
{
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "%zu seen records loaded", r->seen.n);
	request_bound(r);
	r->md->max_ns = INT64_MIN;
	if (json_array_size(r->retry) > 0)
		begin_retries(r);
	else
		fetch_page(r);
}


static void
fetch_page(struct run *r)
{
	const struct source_conf *sc = &r->job->src;
	struct tmpl_vals v = { 0 };
	char *err = NULL;

	if (++r->md->pages > MAX_PAGES) {
		run_fail(r, "more than %d pages in one run; check the source's paging", MAX_PAGES);
		return;
	}
	if (sc->type != CONN_POSTGRESQL && run_next_unseen(r, r->md->pages) != 0)
		return;
	if (sc->type == CONN_POSTGRESQL) {
		struct source_pg_read rd = { .mode = SPG_MODIFIED, .from = r->md->req_wm_text,
		    .after_key = r->md->pos_key, .settle_ms = r->job->modified.settle_ms,
		    .limit = sc->page_size };

		r->sreq = source_fetch(r->env.conn, r->job, &(struct source_read){ .pg = &rd },
		    page_answered, r, &err);
		if (r->sreq == NULL) {
			run_fail(r, "%s", err);
			free(err);
		}
		return;
	}
	v.have = TV_PAGE | TV_OFFSET | TV_LIMIT;
	v.page = sc->page_first + r->md->tie_index;
	v.offset = r->md->tie_index * sc->page_size;
	v.limit = sc->page_size;
	if (r->md->req_wm_text != NULL) {
		v.have |= TV_WATERMARK;
		v.watermark = r->md->req_wm_text;
	}
	if (r->cursor != NULL) {
		v.have |= TV_CURSOR;
		v.cursor = r->cursor;
	}
	r->sreq = source_fetch(r->env.conn, r->job,
	    &(struct source_read){ .vals = &v, .url = r->next_url }, page_answered, r, &err);
	if (r->sreq == NULL) {
		run_fail(r, "%s", err);
		free(err);
	}
}

static void start_delivery(struct run *);
static void maybe_fetch(struct run *);

/* Inspect a page: into the current set when idle, else as the page waiting ahead. */
static void
inspect_page(struct run *r, int rc, struct source_page *page, const char *err)
{
	struct pageset cur = { 0 };

	if (!r->md->page_busy) {
		modified_page_judge(r, rc, page, err);
		return;
	}
	run_set_swap(r, &cur);		/* r is empty now; cur is the page in delivery */
	modified_page_judge(r, rc, page, err);
	run_set_swap(r, &cur);		/* back; cur is the page inspected ahead */
	r->md->ahead = cur;
	r->md->has_ahead = true;
}

/*
 * A page arrived. Pages flow through four places so that fetching, parsing, the
 * destination's work and the state store's overlap: the checkpoint of one page committing,
 * the next page in delivery, one inspected and waiting (r->md->ahead), one fetched and not
 * yet inspected (r->md->pf_page). Memory stays bounded by four pages, and the checkpoints
 * still go one at a time, in page order, each once its page's delivery has ended.
 */
static void
page_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct run *r = arg;

	r->sreq = NULL;
	if (r->md->page_busy && r->md->has_ahead) {
		r->md->pf_ready = true;
		r->md->pf_rc = rc;
		r->md->pf_page = page;
		r->md->pf_err = err != NULL ? xstrdup(err) : NULL;
		return;
	}
	inspect_page(r, rc, page, err);
	if (r->finishing)
		return;
	if (!r->md->page_busy)
		start_delivery(r);
	else
		maybe_fetch(r);
}

/* Fetch the next page unless one is on its way or waiting, or the read is complete. */
static void
maybe_fetch(struct run *r)
{
	if (r->sreq == NULL && !r->md->pf_ready && !r->md->read_done && !r->finishing)
		fetch_page(r);
}

/* Deliver the inspected page; meanwhile fetch the next one. */
static void
start_delivery(struct run *r)
{
	r->md->page_busy = true;
	maybe_fetch(r);
	if (!r->finishing)
		run_deliver(r, page_delivered);
}

/* The page inspected ahead becomes the one in delivery; the page fetched ahead is inspected. */
static void
next_in_line(struct run *r)
{
	state_ck_free(r->ck);
	r->ck = NULL;
	run_set_swap(r, &r->md->ahead);
	free(r->md->ahead.items);	/* the delivered page's emptied array */
	memset(&r->md->ahead, 0, sizeof r->md->ahead);
	r->md->has_ahead = false;
	start_delivery(r);
	if (r->md->pf_ready && !r->finishing) {
		struct source_page *p = r->md->pf_page;
		char *err = r->md->pf_err;

		r->md->pf_ready = false;
		r->md->pf_page = NULL;
		r->md->pf_err = NULL;
		inspect_page(r, r->md->pf_rc, p, err);
		free(err);
		maybe_fetch(r);
	}
}

/*
 * The delivered page's checkpoint goes (the one before it has committed), and the next page
 * is delivered while it commits. Its outcomes are sorted only now: the answer of the
 * checkpoint before tells whether the retry queue holds keys that a delivery clears. The
 * next page starts first, the state marked busy: a failure meanwhile (its fetch) is written
 * after this checkpoint, in order; and nothing here touches the run once the checkpoint is
 * sent (its answer may end the run).
 */
static void
send_checkpoint(struct run *r)
{
	struct state_ck *ck = r->ck;

	record_outcomes(r, ck, true);
	r->ck = NULL;
	r->md->ck_busy = true;
	r->md->ck_last = r->last_page;
	run_items_reset(r);
	r->md->page_busy = false;
	r->state_busy = true;
	if (!r->md->ck_last && r->md->has_ahead && !r->finishing)
		next_in_line(r);
	/* else the next page is still on its way: page_answered goes on */
	run_checkpoint(r, ck, page_checkpointed);
}

static void
page_delivered(struct run *r, int rc)
{
	if (r->md->ck_busy)
		r->md->dl_done = true;	/* its checkpoint waits for the one in flight */
	else
		send_checkpoint(r);
}

static void
page_checkpointed(struct run *r, int rc)
{
	r->md->ck_busy = false;
	if (r->md->ck_last) {
		run_finish_ok(r);
		return;
	}
	if (r->md->dl_done) {
		r->md->dl_done = false;
		send_checkpoint(r);
	}
}

/* Free what a page inspected ahead holds (its items and checkpoint). */
static void
ahead_free(struct run *r)
{
	struct pageset cur = { 0 };

	run_set_swap(r, &cur);			/* r is empty; cur holds the current page */
	run_set_swap(r, &r->md->ahead);		/* r holds the page ahead */
	run_items_reset(r);
	free(r->items);
	state_ck_free(r->ck);
	r->items = NULL;
	r->nitems = r->cap_items = 0;
	r->ck = NULL;
	run_set_swap(r, &cur);			/* the current page back */
}

static void
modified_free(struct run *r)
{
	struct modified_state *md = r->md;

	if (md == NULL)
		return;
	source_page_free(md->page);
	source_page_free(md->pf_page);
	free(md->pf_err);
	modified_page_clear(r);
	free(md->prs);
	if (md->has_ahead)
		ahead_free(r);
	free(md->pos_key);
	free(md->req_wm_text);
	free(md->max_text);
	free(md);
	r->md = NULL;
}

static void
modified_log_finished(struct run *r, unsigned long long ms)
{
	log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
	    "run finished in %llu ms: read %lld, delivered %lld, skipped %lld, failed %lld; "
	    "watermark %s", ms, r->nread, r->ndelivered, r->nskipped, r->nfailed,
	    r->wm_text != NULL ? r->wm_text : "(none)");
}

const struct strategy_ops strategy_modified_ops = {
	.name = "modified",
	.shows_watermark = true,
	.begin = modified_begin,
	.free = modified_free,
	.log_finished = modified_log_finished,
};
