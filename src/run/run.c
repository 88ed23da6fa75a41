/*
 * run.c - the life of one run: take or keep the job's lease, start the run in the state
 * store (fenced), hand over to the strategy, deliver batches, write fenced checkpoints,
 * and record the result. A run never writes state without its lease epoch, and a failing
 * run cancels everything in flight before it writes its result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <xxhash.h>

#include "daemon/daemon.h"
#include "config/load.h"
#include "core/log.h"
#include "run/metrics.h"
#include "record/parse.h"
#include "record/json.h"
#include "run/run.h"
#include "store/state.h"

#define MAX_LOGGED_FAILURES	20

static void run_free(struct run *);

static void
timed_out(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	run_fail(r, "run took longer than its run_timeout of %lld ms",
	    (long long)r->job->timeout_ms);
}

/* The run is over (its result written, or not writable): tell the daemon, free it. */
static void
run_end(struct run *r, bool ok, bool lease_lost)
{
	struct jobrt *jr = r->jr;

	metrics_run_ended(r, ok, lease_lost);	/* status: counters move by this run's counts */
	jr->run = NULL;
	run_free(r);
	daemon_run_ended(jr, ok, lease_lost);
}

static void
lease_lost(struct run *r, const char *err)
{
	log_job(LOG_ERR, r->job->name, r->id, MSGID_LEASE_LOST,
	    "lease lost: the run stops without writing more state (%s)", err);
	r->jr->epoch = 0;
	run_end(r, false, true);
}

static void
result_written(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	r->state_busy = false;
	if (rc == STATE_LEASE_LOST) {
		lease_lost(r, err);
		return;
	}
	if (rc != STATE_OK)
		log_job(LOG_ERR, r->job->name, r->id, NULL,
		    "could not record the run's result: %s", err);
	run_end(r, false, false);
}

#define CK_RETRY_FIRST_MS	200
#define CK_RETRY_MAX_MS		2000

/* One checkpoint on its way, sent again while its connection is lost. */
struct ck_send {
	struct run	*r;
	json_t		*doc;
	state_cb	 cb;
	void		*arg;
	struct event	*ev;
	int64_t		 backoff_ms;
	int		 attempts;
};

static void ck_sent(void *, int, json_t *, const char *);

static void
ck_resend(evutil_socket_t fd, short ev, void *arg)
{
	struct ck_send *s = arg;
	struct run *r = s->r;

	(void)fd; (void)ev;
	s->attempts++;
	state_checkpoint(r->jr->d->state, r->job->name, r->epoch, r->id, s->doc, ck_sent, s);
}

/*
 * The answer of a checkpoint. One lost with its connection (the database restarted, a
 * network cut) is sent again after a backoff while the lease is ours by the monotonic
 * clock: its "seq" makes a second application a no-op, so what it carries (failures,
 * unmarked records, hashes) is not lost with the connection. A fenced refusal or any
 * other error goes to the caller at once.
 */
static void
ck_sent(void *arg, int rc, json_t *res, const char *err)
{
	struct ck_send *s = arg;
	struct run *r = s->r;
	state_cb cb = s->cb;
	void *cbarg = s->arg;

	if (rc == STATE_CONN_LOST && r->jr->epoch == r->epoch &&
	    now_mono_ms() + (uint64_t)s->backoff_ms < r->jr->lease_deadline) {
		struct timeval tv = { (time_t)(s->backoff_ms / 1000),
		    (suseconds_t)(s->backoff_ms % 1000 * 1000) };

		if (s->attempts == 1)
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "checkpoint %lld not "
			    "written: %s; sending it again while the lease lasts",
			    (long long)json_integer_value(json_object_get(s->doc, "seq")), err);
		if (s->ev == NULL)
			s->ev = evtimer_new(r->jr->d->base, ck_resend, s);
		evtimer_add(s->ev, &tv);
		s->backoff_ms = s->backoff_ms * 2 > CK_RETRY_MAX_MS ? CK_RETRY_MAX_MS :
		    s->backoff_ms * 2;
		return;
	}
	if (s->attempts > 1 && rc == STATE_OK)
		log_job(LOG_INFO, r->job->name, r->id, NULL, "checkpoint %lld written after %d "
		    "attempts%s", (long long)json_integer_value(json_object_get(s->doc, "seq")),
		    s->attempts, json_is_true(json_object_get(res, "repeated")) ?
		    " (the first had committed)" : "");
	if (s->ev != NULL)
		event_free(s->ev);
	json_decref(s->doc);
	free(s);
	cb(cbarg, rc, res, err);
}

/* Write one checkpoint of the run: numbered, and sent again after a lost connection. */
static void
ck_write(struct run *r, json_t *doc, state_cb cb, void *arg)
{
	struct ck_send *s = xcalloc(1, sizeof *s);

	s->r = r;
	s->doc = json_incref(doc);
	s->cb = cb;
	s->arg = arg;
	s->backoff_ms = CK_RETRY_FIRST_MS;
	s->attempts = 1;
	json_object_set_new(doc, "seq", json_integer(++r->ck_seq));
	state_checkpoint(r->jr->d->state, r->job->name, r->epoch, r->id, doc, ck_sent, s);
}

/*
 * Whether the run's last write hands the lease back, in the same transaction: the job is
 * no longer ours (rebalanced away, removed or disabled by a reload), or the daemon stops.
 */
static bool
run_gives_back(const struct run *r)
{
	const struct jobrt *jr = r->jr;

	return jr->d->stopping || (!jr->d->once && !jr->mine) || jr->removed ||
	    !jr->conf->enabled;
}

/* The failed run's result went with the lease. */
static void
released_with_result(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	if (rc == STATE_OK)
		r->jr->epoch = 0;
	result_written(arg, rc, res, err);
}

/* Write a failed run's result (once no other state call is in flight). */
static void
write_failure(struct run *r)
{
	json_t *doc;
	char *msg;

	if (r->id == 0) {
		run_end(r, false, false);
		return;
	}
	/* The message may quote a source or destination (invalid UTF-8, cut mid-character). */
	msg = run_error_text(r->fail_msg);
	doc = json_pack("{ss ss sI sI sI sI sI}", "result", r->cut ? "cut" : "failed",
	    "error", msg,
	    /* what the run did since its last checkpoint, so the history shows it all */
	    "read", (json_int_t)(r->nread - r->c_read),
	    "delivered", (json_int_t)(r->ndelivered - r->c_delivered),
	    "skipped", (json_int_t)(r->nskipped - r->c_skipped),
	    "nfailed", (json_int_t)(r->nfailed - r->c_failed),
	    "ndeleted", (json_int_t)(r->ndeleted - r->c_deleted));
	free(msg);
	r->state_busy = true;
	if (run_gives_back(r)) {
		json_object_set_new(doc, "release", json_true());
		ck_write(r, doc, released_with_result, r);
	} else
		ck_write(r, doc, result_written, r);
	json_decref(doc);
}

/* A state call came back: true when the run is failing and the caller must stop. */
bool
run_state_returned(struct run *r)
{
	r->state_busy = false;
	if (r->fail_msg == NULL)
		return false;
	write_failure(r);
	return true;
}

bool
run_state_usable(struct run *r, int rc, const char *err)
{
	if (run_state_returned(r))
		return false;
	if (rc != STATE_OK) {
		run_fail(r, "%s", err);
		return false;
	}
	return true;
}

void
run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (r->finishing)
		return;
	r->finishing = true;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	/* the run's history, /jobs and the log line all show it: redacted once, here */
	msg = r->fail_msg = redact_text_free(msg);
	source_cancel(r->sreq);
	r->sreq = NULL;
	if (r->dest != NULL)
		dest_cancel(r->dest);
	strategy_flag_cancel(r);
	strategy_capture_cancel(r);
	evtimer_del(r->ev_timeout);
	if (r->job->strategy == STRAT_MODIFIED)
		log_job(LOG_ERR, r->job->name, r->id, MSGID_RUN_FAILED,
		    "run failed after %llu ms: %s (read %lld, delivered %lld, skipped %lld, "
		    "failed %lld; the watermark stays at %s)",
		    (unsigned long long)(now_mono_ms() - r->started), msg, r->nread,
		    r->ndelivered, r->nskipped, r->nfailed,
		    r->wm_done != NULL ? r->wm_done : "(none)");
	else
		log_job(LOG_ERR, r->job->name, r->id, MSGID_RUN_FAILED,
		    "run failed after %llu ms: %s (read %lld, delivered %lld, skipped %lld, "
		    "failed %lld)", (unsigned long long)(now_mono_ms() - r->started), msg,
		    r->nread, r->ndelivered, r->nskipped, r->nfailed);
	if (!r->state_busy)
		write_failure(r);
}

void
run_cut(struct run *r, const char *why)
{
	r->cut = true;
	run_fail(r, "%s", why);
}

/* Called once the final checkpoint (with result "ok") is written. */
void
run_finish_ok(struct run *r)
{
	if (r->nduplicates > 0)
		log_job(LOG_WARNING, r->job->name, r->id, NULL, "duplicates skipped: %lld "
		    "(their key came again later in the same page or batch; the last occurrence "
		    "went)", r->nduplicates);
	if (r->job->strategy == STRAT_CAPTURE)
		log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
		    "run finished in %llu ms: read %lld, delivered %lld, skipped %lld, deleted %lld, "
		    "failed %lld", (unsigned long long)(now_mono_ms() - r->started), r->nread,
		    r->ndelivered, r->nskipped, r->ndeleted, r->nfailed);
	else if (r->job->strategy == STRAT_FLAG)
		log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
		    "run finished in %llu ms: read %lld, delivered %lld, marked %lld, skipped %lld, "
		    "failed %lld", (unsigned long long)(now_mono_ms() - r->started), r->nread,
		    r->ndelivered, strategy_flag_marked(r), r->nskipped, r->nfailed);
	else
		log_job(LOG_INFO, r->job->name, r->id, MSGID_RUN_FINISHED,
		    "run finished in %llu ms: read %lld, delivered %lld, skipped %lld, failed %lld; "
		    "watermark %s", (unsigned long long)(now_mono_ms() - r->started), r->nread,
		    r->ndelivered, r->nskipped, r->nfailed, r->wm_text != NULL ? r->wm_text : "(none)");
	evtimer_del(r->ev_timeout);
	r->finishing = true;
	run_end(r, true, false);
}

struct ck_ctx {
	struct run	*r;
	run_step_cb	 next;
	long long	 read, delivered, skipped, failed, deleted;	/* counters it covers */
	bool		 released;	/* it gives the lease back */
	char		*wm;		/* the watermark it writes, if any */
};

static void
checkpointed(void *arg, int rc, json_t *res, const char *err)
{
	struct ck_ctx *c = arg;
	struct run *r = c->r;
	run_step_cb next = c->next;

	if (rc == STATE_OK && c->released)
		r->jr->epoch = 0;
	if (rc == STATE_OK && c->wm != NULL) {
		free(r->wm_done);
		r->wm_done = c->wm;
		c->wm = NULL;
	}
	free(c->wm);
	if (rc == STATE_OK) {
		r->c_read = c->read;
		r->c_delivered = c->delivered;
		r->c_skipped = c->skipped;
		r->c_failed = c->failed;
		r->c_deleted = c->deleted;
	}
	free(c);
	if (rc == STATE_LEASE_LOST) {
		r->state_busy = false;
		lease_lost(r, err);
		return;
	}
	if (!run_state_usable(r, rc, err))
		return;
	if (json_is_object(res)) {
		json_t *dead = json_object_get(res, "dead");
		size_t i;
		json_t *k;

		json_array_foreach(dead, i, k)
			log_job(LOG_ERR, r->job->name, r->id, MSGID_RECORD_DEAD,
			    "record %s dead-lettered after %d attempts; it stays in the retry queue "
			    "marked dead until an operator retries it", json_string_value(k),
			    r->job->max_attempts);
		r->have_failures = json_integer_value(json_object_get(res, "failures")) > 0;
		metrics_state_answer(r->job->name, res);	/* status: queue sizes */
	}
	next(r, 0);
}

void
run_checkpoint(struct run *r, json_t *doc, run_step_cb next)
{
	struct ck_ctx *c = xcalloc(1, sizeof *c);

	c->r = r;
	c->next = next;
	if (json_is_string(json_object_get(doc, "watermark")))
		c->wm = xstrdup(json_string_value(json_object_get(doc, "watermark")));
	c->read = r->nread;
	c->delivered = r->ndelivered;
	c->skipped = r->nskipped;
	c->failed = r->nfailed;
	c->deleted = r->ndeleted;
	json_object_set_new(doc, "read", json_integer(r->nread - r->c_read));
	json_object_set_new(doc, "delivered", json_integer(r->ndelivered - r->c_delivered));
	json_object_set_new(doc, "skipped", json_integer(r->nskipped - r->c_skipped));
	json_object_set_new(doc, "nfailed", json_integer(r->nfailed - r->c_failed));
	json_object_set_new(doc, "ndeleted", json_integer(r->ndeleted - r->c_deleted));
	json_object_set_new(doc, "max_attempts", json_integer(r->job->max_attempts));
	json_object_set_new(doc, "backoff_ms", json_integer(r->job->retry_backoff_ms));
	json_object_set_new(doc, "backoff_max_ms", json_integer(r->job->retry_backoff_max_ms));
	/* The run's last write hands the lease back when the job is no longer ours. */
	if (json_object_get(doc, "result") != NULL && run_gives_back(r)) {
		json_object_set_new(doc, "release", json_true());
		c->released = true;
	}
	r->state_busy = true;
	ck_write(r, doc, checkpointed, c);
}

/*
 * Fetch page `index` (1-based) of a read of the whole pending or current set, used by flag
 * and capture: an API by page number, offset, cursor or next link; a table by key after
 * `after_key`. On failure the run fails.
 */
void
run_fetch_page(struct run *r, enum source_pg_mode mode, const char *after_key, long long index,
    source_cb cb)
{
	const struct source_conf *sc = &r->job->src;
	char *err = NULL;

	if (index > RUN_MAX_PAGES) {
		run_fail(r, "more than %d pages in one run; check the source's paging", RUN_MAX_PAGES);
		return;
	}
	if (run_next_unseen(r, index) != 0)
		return;
	if (sc->type == CONN_POSTGRESQL) {
		struct source_pg_read rd = { .mode = mode, .after_key = after_key,
		    .limit = sc->page_size };

		r->sreq = source_pg_fetch(r->jr->d, r->job, &rd, cb, r, &err);
	} else {
		struct tmpl_vals v = { .have = TV_PAGE | TV_OFFSET | TV_LIMIT };

		v.page = sc->page_first + index - 1;
		v.offset = (index - 1) * sc->page_size;
		v.limit = sc->page_size;
		if (r->cursor != NULL) {
			v.have |= TV_CURSOR;
			v.cursor = r->cursor;
		}
		r->sreq = source_http_fetch(r->job, &v, r->next_url, cb, r, &err);
	}
	if (r->sreq == NULL) {
		run_fail(r, "%s", err);
		free(err);
	}
}

struct queued {
	char	hash[CANON_HASH_LEN];
	bool	waiting;	/* dead, or its retry is not due yet */
	bool	seen;		/* the record was read in this run */
};

void
run_queue_note(struct run *r, const char *key, const char *hash, bool waiting)
{
	struct queued *q = xcalloc(1, sizeof *q);

	snprintf(q->hash, sizeof q->hash, "%s", hash != NULL ? hash : "");
	q->waiting = waiting;
	free(strmap_put(&r->failing, key, q));
}

bool
run_queued(const struct run *r, const char *key)
{
	return strmap_get(&r->failing, key) != NULL;
}

void
run_queue_seen(struct run *r, const char *key)
{
	struct queued *q = strmap_get(&r->failing, key);

	if (q != NULL)
		q->seen = true;
}

size_t
run_queue_unseen(const struct run *r, const struct strmap *except, json_t *out)
{
	size_t it = 0, n = 0;
	const char *k;
	void *v;

	while (strmap_next((struct strmap *)&r->failing, &it, &k, &v)) {
		if (((struct queued *)v)->seen || k[0] == '#' || strmap_get(except, k) != NULL)
			continue;
		json_array_append_new(out, json_string(k));
		n++;
	}
	return n;
}

bool
run_waits_for_retry(const struct run *r, const char *key, const char *hash)
{
	const struct queued *q = strmap_get(&r->failing, key);

	return q != NULL && q->waiting && strcmp(q->hash, hash) == 0;
}

int
run_keyset_next(struct run *r, json_t *recs, char **after_key)
{
	char *k = NULL, *e = NULL;

	if (canon_record_key(json_array_get(recs, json_array_size(recs) - 1), r->job->key,
	    r->job->nkey, &k, &e) != 0) {
		log_job(LOG_WARNING, r->job->name, r->id, NULL, "the read ends at rows the key "
		    "cannot name (%s): they sort last, so no later page can follow them; they "
		    "wait in the retry queue", e);
		free(e);
		return -1;
	}
	free(*after_key);
	*after_key = k;
	return 0;
}

int
run_next_unseen(struct run *r, long long page_no)
{
	XXH128_hash_t h;
	struct buf b;
	char key[40], *shown;

	if (r->next_url == NULL && r->cursor == NULL) {
		/* From the job's URL: a new chain of links begins. */
		if (r->followed.n > 0) {
			strmap_free(&r->followed, NULL);
			strmap_init(&r->followed);
		}
		return 0;
	}
	buf_init(&b);
	buf_addc(&b, r->next_url != NULL ? 'u' : 'c');
	if (r->next_url != NULL)
		buf_adds(&b, r->next_url);
	if (r->cursor != NULL) {
		buf_addc(&b, '\0');
		buf_adds(&b, r->cursor);
	}
	h = XXH3_128bits(b.data, b.len);
	buf_free(&b);
	snprintf(key, sizeof key, "%016llx%016llx", (unsigned long long)h.high64,
	    (unsigned long long)h.low64);
	if (strmap_get(&r->followed, key) == NULL) {
		strmap_put(&r->followed, key, r);
		return 0;
	}
	if (r->next_url != NULL) {
		shown = redact_url(r->next_url);
		run_fail(r, "the source's next page %.300s%s (page %lld) was already read in this "
		    "run: its paging goes round in a loop; check the source's next links",
		    shown, strlen(shown) > 300 ? "..." : "", page_no);
	} else {
		shown = jsonx_text_storable(r->cursor, strlen(r->cursor), 200);
		run_fail(r, "the source's next cursor '%s' (page %lld) was already followed in this "
		    "run: its paging goes round in a loop; check the source's next field",
		    shown, page_no);
	}
	free(shown);
	return -1;
}

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
run_page_restart(struct run *r)
{
	if (r->pages_read.n > 0) {
		strmap_free(&r->pages_read, NULL);
		strmap_init(&r->pages_read);
	}
	r->pages_stale = 0;
}

char *
run_page_stale(struct run *r, const struct source_page *page, long long page_no)
{
	XXH3_state_t *st;
	XXH128_hash_t h;
	size_t i;
	json_t *rec;
	char fp[40];

	/* The page's fingerprint: its records' keys in order (a record without a key by its
	 * text). The content is left out: a record that changed between two reads of a
	 * source that ignores paging is no news. */
	if ((st = XXH3_createState()) == NULL)
		fatalx("out of memory");
	XXH3_128bits_reset(st);
	json_array_foreach(page->records, i, rec) {
		char *k = NULL, *e = NULL;

		if (run_record_key(r, rec, &k, &e) != 0 && k == NULL)
			/* no key (a failing record with a readable key keeps it) */
			k = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		if (k != NULL)
			XXH3_128bits_update(st, k, strlen(k) + 1);
		free(k);
		free(e);
	}
	h = XXH3_128bits_digest(st);
	XXH3_freeState(st);
	snprintf(fp, sizeof fp, "%016llx%016llx", (unsigned long long)h.high64,
	    (unsigned long long)h.low64);
	if (strmap_get(&r->pages_read, fp) == NULL) {
		strmap_put(&r->pages_read, fp, r);
		r->pages_stale = 0;
		return NULL;
	}
	if (++r->pages_stale < RUN_STALE_PAGES)
		return NULL;
	return xasprintf("the source repeats the same records: %d pages in a row (up to page "
	    "%lld) brought nothing new; it may ignore the paging parameter", r->pages_stale,
	    page_no);
}

/* Whether another page follows, and where the source says it is (next link or cursor). */
bool
run_page_more(struct run *r, const struct source_page *page)
{
	const struct source_conf *sc = &r->job->src;
	size_t n = json_array_size(page->records);

	free(r->next_url);
	free(r->cursor);
	r->next_url = page->next_url != NULL ? xstrdup(page->next_url) : NULL;
	r->cursor = page->cursor != NULL ? xstrdup(page->cursor) : NULL;
	if (sc->type == CONN_HTTP && (sc->page_style == PAGE_LINK || sc->page_style == PAGE_NEXT))
		return page->next_url != NULL || page->cursor != NULL;
	if (sc->type == CONN_HTTP && sc->page_style == PAGE_NONE)
		return false;
	return n > 0 && (int64_t)n >= sc->page_size;
}

struct dest_item *
run_add_item(struct run *r, const char *key, json_t *rec)
{
	struct dest_item *it;

	if (r->nitems == r->cap_items) {
		r->cap_items = r->cap_items ? r->cap_items * 2 : 64;
		r->items = xreallocarray(r->items, r->cap_items, sizeof *r->items);
	}
	it = &r->items[r->nitems++];
	memset(it, 0, sizeof *it);
	it->key = xstrdup(key);
	it->rec = json_incref(rec);
	return it;
}

void
run_drop_item(struct run *r, size_t i)
{
	free((char *)r->items[i].key);
	json_decref(r->items[i].rec);
	r->items[i] = r->items[--r->nitems];
}

static void
items_free(struct run *r)
{
	dest_items_clear(r->items, r->nitems);
	for (size_t i = 0; i < r->nitems; i++) {
		free((char *)r->items[i].key);
		json_decref(r->items[i].rec);
	}
	r->nitems = 0;
	r->next_item = 0;
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

char *
run_error_text(const char *error)
{
	/* redacted before it is cut: a secret cut in two would escape the registry */
	char *red = redact_text(error);
	char *e = jsonx_text_storable(red, strlen(red), RUN_ERROR_MAX);

	free(red);
	return e;
}

json_t *
run_failure_entry(const char *key, const char *error, json_t *payload, const char *hash)
{
	char *k = jsonx_text_storable(key, strlen(key), SIZE_MAX);
	char *e = run_error_text(error);
	json_t *doc;

	if (payload != NULL && !json_is_null(payload) && (!jsonx_storable(payload) ||
	    json_dumpb(payload, NULL, 0, JSON_COMPACT) > RUN_PAYLOAD_MAX)) {
		/* PostgreSQL cannot hold it (or a checkpoint of a batch of them): keep the
		 * failure and say why the payload is not kept. */
		char *e2 = xasprintf("%s (its payload is not kept: it holds a NUL character or "
		    "invalid UTF-8, which the state database cannot store, or is larger than "
		    "%d MB)", e, RUN_PAYLOAD_MAX >> 20);

		free(e);
		e = e2;
		/* A text in its place, so that an older stored payload is not replayed. */
		doc = json_pack("{ss ss ss ss}", "key", k, "error", e, "payload", RUN_NO_PAYLOAD,
		    "hash", hash != NULL ? hash : "");
	} else
		doc = json_pack("{ss ss sO ss}", "key", k, "error", e,
		    "payload", payload != NULL ? payload : json_null(),
		    "hash", hash != NULL ? hash : "");
	free(k);
	free(e);
	return doc;
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

static void deliver_next(struct run *);

static void
batch_done(void *arg, int rc, const char *err)
{
	struct run *r = arg;

	if (rc != 0) {
		run_fail(r, "delivery failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	deliver_next(r);
}

/* Deliver the next `batch` items, or report to the strategy when all have an outcome. */
static void
deliver_next(struct run *r)
{
	size_t n;

	if (r->next_item >= r->nitems) {
		run_step_cb next = r->delivered_cb;

		r->delivered_cb = NULL;
		next(r, 0);
		return;
	}
	n = r->nitems - r->next_item;
	if (n > (size_t)r->job->batch)
		n = (size_t)r->job->batch;
	r->batch_end = r->next_item + n;
	r->next_item += n;
	dest_deliver(r->dest, &r->items[r->batch_end - n], n, batch_done, r);
}

void
run_deliver(struct run *r, run_step_cb next)
{
	r->delivered_cb = next;
	r->next_item = 0;
	deliver_next(r);
}

void
run_set_swap(struct run *r, struct pageset *ps)
{
	struct pageset t = *ps;

	ps->items = r->items;
	ps->nitems = r->nitems;
	ps->cap_items = r->cap_items;
	ps->ck = r->ck;
	ps->last = r->last_page;
	r->items = t.items;
	r->nitems = t.nitems;
	r->cap_items = t.cap_items;
	r->ck = t.ck;
	r->last_page = t.last;
}

void
run_items_reset(struct run *r)
{
	items_free(r);
}

static void
started(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	if (rc == STATE_LEASE_LOST) {
		r->state_busy = false;
		lease_lost(r, err);
		return;
	}
	if (rc == STATE_OK && json_is_true(json_object_get(res, "paused")) && r->fail_msg == NULL) {
		r->state_busy = false;
		log_job(r->jr->d->once ? LOG_NOTICE : LOG_DEBUG, r->job->name, 0, NULL,
		    "paused: no run (onesyncctl resume)");
		r->jr->not_run = true;
		r->finishing = true;
		run_end(r, true, false);
		return;
	}
	if (rc == STATE_OK && json_is_object(res))
		r->id = json_integer_value(json_object_get(res, "run"));
	if (run_state_returned(r))
		return;
	if (rc != STATE_OK || !json_is_object(res)) {
		run_fail(r, "%s", err != NULL ? err : "run start: unexpected answer");
		return;
	}
	r->id = json_integer_value(json_object_get(res, "run"));
	if (json_is_string(json_object_get(res, "watermark"))) {
		r->wm_text = xstrdup(json_string_value(json_object_get(res, "watermark")));
		r->wm_done = xstrdup(r->wm_text);
		r->wm_ns = json_integer_value(json_object_get(res, "watermark_ns"));
		if (json_is_string(json_object_get(res, "watermark_key")))
			r->wm_key = xstrdup(json_string_value(json_object_get(res, "watermark_key")));
	}
	/* The seen set, the retry queue and `unmarked` are not in the answer: the strategy
	 * reads what it needs of them in pages, or by the keys of a page. */
	r->have_seen = !json_is_false(json_object_get(res, "seen_rows"));	/* absent: read */
	r->have_failures = json_integer_value(json_object_get(res, "failures")) > 0;
	metrics_state_answer(r->job->name, res);	/* status: queue sizes */
	r->retry = json_incref(json_object_get(res, "retry"));
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "run started (watermark %s, %lld in the "
	    "retry queue, %zu retries due)", r->wm_text != NULL ? r->wm_text : "(none)",
	    (long long)json_integer_value(json_object_get(res, "failures")),
	    json_array_size(r->retry));
	switch (r->job->strategy) {
	case STRAT_MODIFIED:
		strategy_modified_begin(r);
		break;
	case STRAT_FLAG:
		strategy_flag_begin(r, res);
		break;
	case STRAT_CAPTURE:
		strategy_capture_begin(r, res);
		break;
	default:
		run_fail(r, "strategy not supported by this version");
	}
}

static void
claimed(void *arg, int rc, int64_t epoch, const char *err)
{
	struct run *r = arg;
	struct jobrt *jr = r->jr;

	if (run_state_returned(r))
		return;
	if (rc != STATE_OK) {
		run_fail(r, "cannot take the job's lease: %s", err);
		return;
	}
	if (epoch == 0) {
		log_job(jr->d->once ? LOG_NOTICE : LOG_DEBUG, r->job->name, 0, NULL,
		    "another instance holds the lease: no run%s", jr->d->once ? " (--once)" : "");
		jr->claim_failed = true;
		jr->not_run = true;
		r->finishing = true;
		run_end(r, true, false);
		return;
	}
	if (jr->epoch != epoch)
		log_job(LOG_INFO, r->job->name, 0, MSGID_LEASE_ACQUIRED,
		    "lease acquired (epoch %lld)", (long long)epoch);
	jr->epoch = epoch;
	jr->lease_deadline = r->started + (uint64_t)jr->d->ref->cfg->daemon.lease_ms;
	r->epoch = epoch;
	r->state_busy = true;
	state_run_start(jr->d->state, r->job->name, epoch, r->job->batch, started, r);
}

void
run_start(struct jobrt *jr)
{
	struct run *r = xcalloc(1, sizeof *r);
	struct daemon *d = jr->d;

	r->jr = jr;
	r->ref = jr->ref;
	r->ref->refs++;
	r->job = jr->conf;
	r->started = now_mono_ms();
	r->cap_ns = INT64_MAX;
	strmap_init(&r->seen);
	strmap_init(&r->failing);
	strmap_init(&r->followed);
	strmap_init(&r->pages_read);
	r->ev_timeout = evtimer_new(d->base, timed_out, r);
	if (r->job->timeout_ms > 0) {
		struct timeval tv = { r->job->timeout_ms / 1000, (r->job->timeout_ms % 1000) * 1000 };

		evtimer_add(r->ev_timeout, &tv);
	}
	r->dest = dest_new(d, r->job);
	jr->run = r;
	if (jr->epoch != 0 && now_mono_ms() < jr->lease_deadline) {
		r->epoch = jr->epoch;
		r->state_busy = true;
		state_run_start(d->state, r->job->name, jr->epoch, r->job->batch, started, r);
	} else {
		r->state_busy = true;
		state_claim(d->state, r->job->name, jr->epoch, d->ref->cfg->daemon.lease_ms, claimed, r);
	}
}

static void
run_free(struct run *r)
{
	source_cancel(r->sreq);
	strategy_flag_free(r);
	strategy_capture_free(r);
	source_page_free(r->page);
	source_page_free(r->pf_page);
	free(r->pf_err);
	modified_page_clear(r);
	free(r->prs);
	items_free(r);
	free(r->items);
	if (r->has_ahead) {
		r->items = NULL;
		r->nitems = r->cap_items = 0;
		r->ck = NULL;
		run_set_swap(r, &r->ahead);
		items_free(r);
		free(r->items);
	}
	dest_free(r->dest);
	event_free(r->ev_timeout);
	strmap_free(&r->seen, free);
	strmap_free(&r->failing, free);
	strmap_free(&r->followed, NULL);
	strmap_free(&r->pages_read, NULL);
	json_decref(r->retry);
	json_decref(r->retry_failed);
	json_decref(r->recs);
	json_decref(r->ck);
	free(r->fail_msg);
	free(r->wm_text);
	free(r->wm_done);
	free(r->wm_key);
	free(r->pos_key);
	free(r->req_wm_text);
	free(r->max_text);
	free(r->next_url);
	free(r->cursor);
	if (--r->ref->refs == 0) {
		config_free(r->ref->cfg);
		free(r->ref);
	}
	free(r);
}
