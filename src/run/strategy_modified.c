/*
 * strategy_modified.c - Remember Last Modified Time (DESIGN §4.2). The watermark is the
 * source's own text of the highest timestamp delivered; reads are inclusive (>=) and the
 * records already seen at the watermark (the tie set) or inside the lookback window are
 * skipped by hash. With `sorted`, the watermark is checkpointed after every page and the
 * next page is asked again from it (seek pagination); page numbers only step inside one
 * tie, and a tie that spanned pages is read once more before the watermark leaves it.
 * Without `sorted`, every page is read and the watermark moves once, at the end.
 * The watermark never follows the local clock; only the max_future guard reads it (below).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "record/canon.h"
#include "record/json.h"
#include "core/log.h"
#include "run/run.h"
#include "store/state.h"

#define MAX_TIE_PASSES	3
#define MAX_PAGES	1000000

static void fetch_page(struct run *);
static void retries_done(struct run *, int);

/* The lower bound sent to the source: the watermark, or watermark - lookback. */
static void
request_bound(struct run *r)
{
	const struct modified_conf *m = &r->job->modified;

	free(r->req_wm_text);
	r->req_wm_text = NULL;
	r->req_wm_ns = r->wm_ns;
	if (r->wm_text == NULL)
		return;
	if (m->lookback_ms > 0) {
		struct ts t = ts_sub_ms(ts_from_ns(r->wm_ns), m->lookback_ms);

		r->req_wm_text = ts_format(t, m->format);
		r->req_wm_ns = ts_ns(t);
	} else
		r->req_wm_text = xstrdup(r->wm_text);
	/* Every source, a PostgreSQL table too, is read again from the watermark inclusive:
	 * a row that reaches the watermark's timestamp after it was read, with a key below
	 * the last one read, must be found; the seen set skips the tie already delivered. */
}

/* Source time from an HTTP Date header, as nanoseconds; -1 when absent or malformed. */
static int64_t
date_ns(const char *date)
{
	struct tm tm;
	struct ts t;
	const char *end;

	if (date == NULL)
		return -1;
	memset(&tm, 0, sizeof tm);
	end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || (t.sec = timegm(&tm)) == (time_t)-1)
		return -1;
	t.nsec = 0;
	return ts_ns(t);	/* saturates: a Date after 2262 must not overflow */
}

/*
 * How far ahead of onesyncd's clock a source's clock is believed (modified.max_future's
 * reference). Skew between servers is seconds, rarely minutes; a clock an hour ahead or more is
 * wrong, and believed it would widen the guard by as much (Date: 9999 would switch it off).
 */
#define CLOCK_AHEAD_MAX_NS	(3600LL * 1000000000LL)

/* onesyncd's own clock, as nanoseconds since the epoch. */
static int64_t
local_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/*
 * The latest timestamp a record may carry (modified.max_future): the reference time plus the
 * margin, INT64_MAX when the guard is off. The reference is the later of the source's clock
 * (a PostgreSQL source's now(), an HTTP page's Date header) and onesyncd's own clock: a source
 * whose clock lags cannot make every record "future", and a source ahead of us keeps its own
 * margin. A replayed retry, judged before any page is read, has onesyncd's clock only: never
 * later than a fresh read's reference, so a replay does not deliver a record that the same
 * run's fresh read refuses. A source clock more than CLOCK_AHEAD_MAX_NS ahead of ours is not
 * believed (warned once per run). *ref gets the reference time and where it came from, for the
 * error.
 */
static int64_t
future_limit(struct run *r, const struct source_page *page, char **ref)
{
	int64_t margin = r->job->modified.max_future_ms, now = local_ns(), src = -1;
	const char *what = "the source's Date header";
	char *at, *src_at;
	struct ts t;

	*ref = NULL;
	if (margin <= 0)
		return INT64_MAX;
	if (page != NULL && r->job->src.type == CONN_POSTGRESQL) {
		what = "the source database's now()";
		if (page->date != NULL && ts_parse(page->date, TS_RFC3339, &t) == 0)
			src = ts_ns(t);
	} else if (page != NULL)
		src = date_ns(page->date);
	if (src > now && src - now > CLOCK_AHEAD_MAX_NS) {
		/* A clock that far ahead is wrong (or hostile: Date: 9999 would switch the
		 * guard off and let the watermark jump there); ours is the reference. */
		/* as the source wrote it: 9999 does not fit in nanoseconds (ts_ns saturates) */
		if (!r->clock_warned)
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "%s says '%.64s', more "
			    "than 1h ahead of onesyncd's clock: ignored, modified.max_future "
			    "counts from onesyncd's clock", what, page->date);
		r->clock_warned = true;
		at = ts_format(ts_from_ns(now), TS_RFC3339);
		*ref = xasprintf("%s (onesyncd's clock: %s, '%.64s', was more than 1h ahead of "
		    "it)", at, what, page->date);
		free(at);
		src = -1;
		goto limit;
	}
	at = ts_format(ts_from_ns(src > now ? src : now), TS_RFC3339);
	if (page == NULL)
		*ref = xasprintf("%s (onesyncd's clock: a replayed retry is judged before the "
		    "source is read)", at);
	else if (src < 0)
		*ref = xasprintf("%s (onesyncd's clock: %s was missing or unusable)", at, what);
	else if (src > now)
		*ref = xasprintf("%s (%s)", at, what);
	else {
		src_at = ts_format(ts_from_ns(src), TS_RFC3339);
		*ref = xasprintf("%s (onesyncd's clock, later than %s, %s)", at, what, src_at);
		free(src_at);
	}
	free(at);
limit:
	if (src > now)
		now = src;
	if (margin > (INT64_MAX - now) / 1000000LL)
		return INT64_MAX;
	return now + margin * 1000000LL;
}

/* A duration as the configuration writes it: "1d", "12h", "90s", "1500ms". */
static char *
duration_text(int64_t ms)
{
	static const struct { const char *unit; int64_t ms; } u[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
	};

	for (size_t i = 0; i < NELEM(u); i++)
		if (ms % u[i].ms == 0)
			return xasprintf("%lld%s", (long long)(ms / u[i].ms), u[i].unit);
	return xasprintf("%lldms", (long long)ms);
}

/* The error of a record whose timestamp is past the limit (a typo such as year 9999): taken,
 * it would move the watermark there and hide every later change. */
static char *
future_error(struct run *r, const char *key, const char *text, const char *ref)
{
	char *m = duration_text(r->job->modified.max_future_ms);
	char *e = xasprintf("record %s: timestamp field '%s' is %s, more than %s (modified."
	    "max_future) after %s; taken, it would move the watermark past every later change, "
	    "so it is refused until the source corrects it", key, r->job->modified.field, text,
	    m, ref);

	free(m);
	return e;
}

static int inspect(struct run *, json_t *, char **, struct ts *, char **, char **);

/*
 * Deliver the queued retries (replayed from their stored payload) before reading. A payload
 * that still has no key or no valid timestamp is not delivered: it fails again.
 */
static void
begin_retries(struct run *r)
{
	size_t i;
	json_t *e;

	r->retry_failed = json_array();
	json_array_foreach(r->retry, i, e) {
		json_t *payload = json_object_get(e, "payload");
		const char *key = json_string_value(json_object_get(e, "key"));
		char *k = NULL, *text = NULL, *err = NULL, *ref, h[CANON_HASH_LEN];
		int64_t limit_ns;
		struct ts t;

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
			json_array_append_new(r->retry_failed, run_failure_entry(key, err, NULL, ""));
			free(err);
			continue;
		}
		limit_ns = future_limit(r, NULL, &ref);
		if (inspect(r, payload, &k, &t, &text, &err) == 0 && ts_ns(t) > limit_ns)
			err = future_error(r, key, text, ref);
		free(ref);
		if (err != NULL) {
			canon_hash(payload, NULL, 0, NULL, 0, h);
			run_note_failure(r, key, err);
			json_array_append_new(r->retry_failed, run_failure_entry(key, err, payload, h));
		} else
			run_add_item(r, key, payload);
		free(k);
		free(text);
		free(err);
	}
	if (r->nitems == 0 && json_array_size(r->retry_failed) > 0) {
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
record_outcomes(struct run *r, json_t *doc, bool store_payload)
{
	json_t *ok = json_object_get(doc, "ok"), *failed = json_object_get(doc, "failed");

	for (size_t i = 0; i < r->nitems; i++) {
		struct dest_item *it = &r->items[i];

		if (it->outcome == DEST_OK) {
			r->ndelivered++;
			if (r->have_failures)
				json_array_append_new(ok, json_string(it->key));
		} else {
			char h[CANON_HASH_LEN];

			canon_hash(it->rec, NULL, 0, NULL, 0, h);
			run_note_failure(r, it->key, it->error != NULL ? it->error : "not delivered");
			json_array_append_new(failed, run_failure_entry(it->key,
			    it->error != NULL ? it->error : "not delivered",
			    store_payload ? it->rec : NULL, h));
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
	json_t *doc = json_pack("{s[] s[]}", "ok", "failed");
	bool had = r->have_failures;

	r->have_failures = true;	/* retried keys are in the queue: clear them when delivered */
	record_outcomes(r, doc, true);
	if (r->retry_failed != NULL)
		json_array_extend(json_object_get(doc, "failed"), r->retry_failed);
	r->have_failures = had;
	run_checkpoint(r, doc, retries_checkpointed);
	json_decref(doc);
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
		state_seen(r->jr->d->state, r->job->name, PQgetvalue(res, n - 1, 0), STATE_PAGE,
		    seen_loaded, r);
		return;
	}
	begin_reading(r);
}

void
strategy_modified_begin(struct run *r)
{
	if (r->have_seen) {
		r->state_busy = true;
		state_seen(r->jr->d->state, r->job->name, NULL, STATE_PAGE, seen_loaded, r);
		return;
	}
	begin_reading(r);
}

static void
begin_reading(struct run *r)
{
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "%zu seen records loaded", r->seen.n);
	request_bound(r);
	r->max_ns = INT64_MIN;
	if (json_array_size(r->retry) > 0)
		begin_retries(r);
	else
		fetch_page(r);
}

static void decide(struct run *);
static void page_answered(void *, int, struct source_page *, const char *);

static void
fetch_page(struct run *r)
{
	const struct source_conf *sc = &r->job->src;
	struct tmpl_vals v = { 0 };
	char *err = NULL;

	if (++r->pages > MAX_PAGES) {
		run_fail(r, "more than %d pages in one run; check the source's paging", MAX_PAGES);
		return;
	}
	if (sc->type != CONN_POSTGRESQL && run_next_unseen(r, r->pages) != 0)
		return;
	if (sc->type == CONN_POSTGRESQL) {
		struct source_pg_read rd = { .mode = SPG_MODIFIED, .from = r->req_wm_text,
		    .after_key = r->pos_key, .settle_ms = r->job->modified.settle_ms,
		    .limit = sc->page_size };

		r->sreq = source_pg_fetch(r->jr->d, r->job, &rd, page_answered, r, &err);
		if (r->sreq == NULL) {
			run_fail(r, "%s", err);
			free(err);
		}
		return;
	}
	v.have = TV_PAGE | TV_OFFSET | TV_LIMIT;
	v.page = sc->page_first + r->tie_index;
	v.offset = r->tie_index * sc->page_size;
	v.limit = sc->page_size;
	if (r->req_wm_text != NULL) {
		v.have |= TV_WATERMARK;
		v.watermark = r->req_wm_text;
	}
	if (r->cursor != NULL) {
		v.have |= TV_CURSOR;
		v.cursor = r->cursor;
	}
	r->sreq = source_http_fetch(r->job, &v, r->next_url, page_answered, r, &err);
	if (r->sreq == NULL) {
		run_fail(r, "%s", err);
		free(err);
	}
}

/* Key and timestamp of one record; -1 (and *err) when it has no key or timestamp. */
static int
inspect(struct run *r, json_t *rec, char **key, struct ts *t, char **text, char **err)
{
	const struct modified_conf *m = &r->job->modified;
	json_t *tv;

	*key = NULL;
	*text = NULL;
	if (run_record_key(r, rec, key, err) != 0)
		return -1;
	tv = jsonx_path_get(rec, m->field);
	if (tv == NULL) {
		*err = xasprintf("record %s has no timestamp field '%s'", *key, m->field);
		return -1;
	}
	if (ts_from_json(tv, m->format, t, text) != 0) {
		char *s = json_dumps(tv, JSON_ENCODE_ANY | JSON_COMPACT);

		*err = xasprintf("record %s: timestamp field '%s' is %s, not a valid %s timestamp",
		    *key, m->field, s != NULL ? s : "?", m->format == TS_RFC3339 ? "RFC 3339" :
		    m->format == TS_EPOCH ? "epoch seconds" : "epoch milliseconds");
		free(s);
		return -1;
	}
	return 0;
}

void
modified_page_clear(struct run *r)
{
	for (size_t i = 0; i < r->nprs; i++) {
		free(r->prs[i].key);
		free(r->prs[i].text);
		json_decref(r->prs[i].rec);
	}
	r->nprs = 0;
}

/* The record's hash, computed once and only when needed (comparison, seen set, queue). */
static const char *
page_rec_hash(struct page_rec *p)
{
	if (p->hash[0] == '\0')
		canon_hash(p->rec, NULL, 0, NULL, 0, p->hash);
	return p->hash;
}

static void process_page(struct run *, int, struct source_page *, const char *);

static void start_delivery(struct run *);
static void maybe_fetch(struct run *);

/* Inspect a page: into the current set when idle, else as the page waiting ahead. */
static void
inspect_page(struct run *r, int rc, struct source_page *page, const char *err)
{
	struct pageset cur = { 0 };

	if (!r->page_busy) {
		process_page(r, rc, page, err);
		return;
	}
	run_set_swap(r, &cur);		/* r is empty now; cur is the page in delivery */
	process_page(r, rc, page, err);
	run_set_swap(r, &cur);		/* back; cur is the page inspected ahead */
	r->ahead = cur;
	r->has_ahead = true;
}

/*
 * A page arrived. Pages flow through three places so that fetching, parsing and the
 * destination's work overlap: one page in delivery, one inspected and waiting (r->ahead),
 * one fetched and not yet inspected (r->pf_page). Memory stays bounded by three pages.
 */
static void
page_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct run *r = arg;

	r->sreq = NULL;
	if (r->page_busy && r->has_ahead) {
		r->pf_ready = true;
		r->pf_rc = rc;
		r->pf_page = page;
		r->pf_err = err != NULL ? xstrdup(err) : NULL;
		return;
	}
	inspect_page(r, rc, page, err);
	if (r->finishing)
		return;
	if (!r->page_busy)
		start_delivery(r);
	else
		maybe_fetch(r);
}

/*
 * For each record of a page, its key when the same key comes again later on the page (an
 * earlier duplicate: skipped, the last occurrence wins), else NULL. A record without a key
 * is named by its hash, as in the retry queue, so identical key-less rows count too.
 */
static char **
page_last_keys(struct run *r, json_t *recs)
{
	size_t n = json_array_size(recs), i;
	char **keys = xcalloc(n + 1, sizeof *keys);
	struct strmap last;
	json_t *rec;

	strmap_init(&last);
	json_array_foreach(recs, i, rec) {
		char *e = NULL, h[CANON_HASH_LEN];

		if (run_record_key(r, rec, &keys[i], &e) != 0) {
			if (keys[i] == NULL) {	/* a failing record with a key keeps it */
				canon_hash(rec, NULL, 0, NULL, 0, h);
				keys[i] = xasprintf("#nokey:%s", h);
			}
			free(e);
		}
		strmap_put(&last, keys[i], (void *)(uintptr_t)(i + 1));
	}
	for (i = 0; i < n; i++)
		if ((uintptr_t)strmap_get(&last, keys[i]) == i + 1) {
			free(keys[i]);
			keys[i] = NULL;
		}
	strmap_free(&last, NULL);
	return keys;
}

static void
process_page(struct run *r, int rc, struct source_page *page, const char *err)
{
	const struct source_conf *sc = &r->job->src;
	const struct modified_conf *m = &r->job->modified;
	json_t *recs, *rec, *failed;
	size_t i, n;
	bool full;
	char **last, *stale;
	char *ref;
	int64_t limit_ns;

	if (rc != 0) {
		run_fail(r, "%s", err);
		return;
	}
	if ((stale = run_page_stale(r, page, r->pages)) != NULL) {
		source_page_free(page);
		run_fail(r, "%s", stale);
		free(stale);
		return;
	}
	source_page_free(r->page);
	r->page = page;
	recs = page->records;
	n = json_array_size(recs);
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld: %zu records from GET %s",
	    r->pages, n, page->log_url);
	if (m->settle_ms > 0 && r->cap_ns == INT64_MAX && sc->type == CONN_HTTP) {
		int64_t src_now = date_ns(page->date);

		if (src_now < 0) {
			run_fail(r, "settle is set but the source sent no usable Date header (GET %s)",
			    page->log_url);
			return;
		}
		if (src_now - local_ns() > CLOCK_AHEAD_MAX_NS) {
			/* believed, it would let unsettled records through (Date: 9999: all) */
			run_fail(r, "settle is set but the source's Date header '%.64s' is more than "
			    "1h ahead of onesyncd's clock (GET %s)", page->date, page->log_url);
			return;
		}
		r->cap_ns = src_now - m->settle_ms * 1000000LL;
	}
	if (sc->type == CONN_HTTP && (sc->page_style == PAGE_LINK || sc->page_style == PAGE_NEXT))
		full = page->next_url != NULL || page->cursor != NULL;
	else if (sc->type == CONN_HTTP && sc->page_style == PAGE_NONE)
		full = false;
	else
		full = (int64_t)n >= sc->page_size && n > 0;

	limit_ns = future_limit(r, page, &ref);

	/* Inspect every record: key, timestamp, hash; decide deliver or skip. */
	modified_page_clear(r);
	failed = json_array();
	last = page_last_keys(r, recs);
	json_array_foreach(recs, i, rec) {
		struct page_rec *p;
		struct seen *s;
		struct ts t;
		char *e = NULL;

		if (last[i] != NULL) {
			/* Its key comes again later on this page: the last one wins. */
			r->nread++;
			r->nskipped++;
			run_note_duplicate(r, last[i], page->log_url);
			continue;
		}
		if (r->nprs == r->capprs) {
			r->capprs = r->capprs ? r->capprs * 2 : 256;
			r->prs = xreallocarray(r->prs, r->capprs, sizeof *r->prs);
		}
		p = &r->prs[r->nprs];
		memset(p, 0, sizeof *p);
		if (inspect(r, rec, &p->key, &t, &p->text, &e) == 0 && ts_ns(t) > limit_ns)
			e = future_error(r, p->key, p->text, ref);
		if (e != NULL) {
			char *k;

			canon_hash(rec, NULL, 0, NULL, 0, p->hash);
			k = p->key != NULL ? xstrdup(p->key) : xasprintf("#nokey:%s", p->hash);
			char *msg = xasprintf("%s (record %zu of GET %s)", e, i, page->log_url);

			r->nread++;
			run_note_failure(r, k, msg);
			json_array_append_new(failed, run_failure_entry(k, msg, rec, p->hash));
			free(k);
			free(msg);
			free(e);
			free(p->key);
			free(p->text);
			continue;
		}
		p->ns = ts_ns(t);
		if (p->ns > r->cap_ns) {
			/* Not settled yet: this run takes nothing from here on. */
			free(p->key);
			free(p->text);
			if (m->sorted) {
				full = false;
				break;
			}
			continue;
		}
		r->nread++;
		p->rec = json_incref(rec);
		s = strmap_get(&r->seen, p->key);
		p->deliver = s == NULL || strcmp(s->hash, page_rec_hash(p)) != 0;
		if (p->deliver) {
			run_add_item(r, p->key, rec);
			if (r->in_tie && p->ns == r->req_wm_ns)
				r->tie_fresh++;
		} else
			r->nskipped++;
		r->nprs++;
	}
	for (i = 0; i < n; i++)
		free(last[i]);
	free(last);
	free(ref);
	r->last_page = !full;
	json_decref(r->ck);
	r->ck = json_pack("{s[] s[] so}", "ok", "failed", "seen", json_array());
	json_array_extend(json_object_get(r->ck, "failed"), failed);
	json_decref(failed);
	decide(r);
}

static void page_delivered(struct run *, int);
static void page_checkpointed(struct run *, int);

/*
 * Which way the next request goes and what the page's checkpoint will say, decided as soon
 * as the page is inspected; the next page is then fetched while this one is delivered.
 */
static void
decide(struct run *r)
{
	const struct modified_conf *m = &r->job->modified;
	struct page_rec *prs = r->prs;
	size_t nprs = r->nprs;
	json_t *doc = r->ck, *seen = json_object_get(doc, "seen");
	bool all_at_pos = nprs > 0 && r->req_wm_text != NULL, move = false, progress;
	int64_t page_ns = INT64_MIN, new_ns = INT64_MIN, keep_from;
	const char *page_text = NULL, *new_text = NULL;
	enum { NEXT_SEEK, NEXT_TIE, NEXT_RESTART_TIE, NEXT_END, NEXT_FOLLOW, NEXT_KEYSET } next;
	bool keyset = r->job->src.type == CONN_POSTGRESQL;

	for (size_t i = 0; i < nprs; i++) {
		if (prs[i].ns != r->req_wm_ns)
			all_at_pos = false;
		if (prs[i].ns >= page_ns) {
			page_ns = prs[i].ns;
			page_text = prs[i].text;
		}
	}
	progress = page_text != NULL && (r->req_wm_text == NULL || page_ns > r->req_wm_ns);
	if (keyset) {
		/* PostgreSQL: within a run, keyset on (field, key): the next read starts after
		 * this page's last row, and so does the watermark. The next run starts at the
		 * watermark inclusive and skips the tie by the seen set (kept below). */
		const struct page_rec *last = nprs > 0 ? &prs[nprs - 1] : NULL;

		if (last != NULL) {
			free(r->pos_key);
			r->pos_key = xstrdup(last->key);
			free(r->req_wm_text);
			r->req_wm_text = xstrdup(last->text);
			r->req_wm_ns = last->ns;
			if (r->wm_text == NULL || last->ns >= r->wm_ns) {
				move = true;
				new_ns = last->ns;
				new_text = last->text;
				json_object_set_new(doc, "watermark_key", json_string(last->key));
				free(r->wm_key);
				r->wm_key = xstrdup(last->key);
			}
		}
		next = r->last_page || last == NULL ? NEXT_END : NEXT_KEYSET;
	} else if (!m->sorted) {
		/* Read everything; the watermark moves at the end of the run. */
		if (page_text != NULL && page_ns > r->max_ns) {
			r->max_ns = page_ns;
			free(r->max_text);
			r->max_text = xstrdup(page_text);
		}
		next = r->last_page ? NEXT_END : NEXT_FOLLOW;
		if (next == NEXT_END && r->max_text != NULL && (r->wm_text == NULL ||
		    r->max_ns >= r->wm_ns)) {
			new_ns = r->max_ns;
			new_text = r->max_text;
			move = true;
		}
	} else if (!r->last_page && (all_at_pos || !progress)) {
		/* The whole page is one tie at the position asked for: step inside it. */
		r->in_tie = true;
		next = NEXT_TIE;
	} else if (r->in_tie && (r->tie_passes == 0 || r->tie_fresh > 0) &&
	    r->tie_passes < MAX_TIE_PASSES) {
		/* Leaving a tie that spanned pages: read it once more, until a pass finds
		 * nothing new (a record edited mid-run shifts the pages inside the tie). */
		r->tie_passes++;
		r->tie_fresh = 0;
		next = NEXT_RESTART_TIE;
	} else {
		if (r->in_tie && r->tie_fresh > 0) {
			/* The tie kept changing: stop before it; the next run goes on from there. */
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "records at %s kept changing "
			    "while paging; this run stops there and the next one goes on",
			    r->req_wm_text);
			r->last_page = true;
		} else if (page_text != NULL && (r->wm_text == NULL || page_ns >= r->wm_ns)) {
			new_ns = page_ns;
			new_text = page_text;
			move = true;
		}
		r->in_tie = false;
		r->tie_passes = 0;
		r->tie_fresh = 0;
		next = r->last_page ? NEXT_END : NEXT_SEEK;
	}

	/* Remember the records at or above the (new) window's lower bound. */
	keep_from = move ? new_ns : r->wm_text != NULL ? r->wm_ns : INT64_MIN;
	if (keep_from != INT64_MIN)
		keep_from -= m->lookback_ms * 1000000LL;
	if (!keyset && (!m->sorted || next == NEXT_TIE || next == NEXT_RESTART_TIE))
		keep_from = INT64_MIN;	/* not moving yet: remember the whole page */
	for (size_t i = 0; i < nprs; i++) {
		if (!prs[i].deliver || prs[i].ns < keep_from)
			continue;
		json_array_append_new(seen, json_pack("[s s I]", prs[i].key,
		    page_rec_hash(&prs[i]), (json_int_t)prs[i].ns));
	}
	if (move) {
		json_object_set_new(doc, "watermark", json_string(new_text));
		json_object_set_new(doc, "watermark_ns", json_integer(new_ns));
		json_object_set_new(doc, "prune_below",
		    json_integer(new_ns - m->lookback_ms * 1000000LL));
	}
	if (next == NEXT_END)
		json_object_set_new(doc, "result", json_string("ok"));

	/* Apply to memory what the checkpoint writes, then write it. */
	for (size_t i = 0; i < nprs; i++) {
		struct seen *sn;

		if (!prs[i].deliver || prs[i].ns < keep_from)
			continue;
		sn = xmalloc(sizeof *sn);
		memcpy(sn->hash, prs[i].hash, sizeof sn->hash);
		sn->ts_ns = prs[i].ns;
		free(strmap_put(&r->seen, prs[i].key, sn));
	}
	if (move) {
		size_t it = 0;
		const char *k;
		void *v;
		int64_t below = new_ns - m->lookback_ms * 1000000LL;
		struct strlist gone = { 0 };

		free(r->wm_text);
		r->wm_text = xstrdup(new_text);
		r->wm_ns = new_ns;
		while (strmap_next(&r->seen, &it, &k, &v))
			if (((struct seen *)v)->ts_ns < below)
				strlist_add(&gone, xstrdup(k));
		for (size_t i = 0; i < gone.n; i++)
			free(strmap_del(&r->seen, gone.v[i]));
		strlist_free(&gone);
	}
	switch (next) {
	case NEXT_SEEK:
		/* Ask again from the last timestamp of this page (inclusive). */
		free(r->req_wm_text);
		r->req_wm_text = xstrdup(page_text);
		r->req_wm_ns = page_ns;
		/* FALLTHROUGH */
	case NEXT_RESTART_TIE:
		/* A new read from the (request) watermark: a tie is re-read on purpose. */
		run_page_restart(r);
		r->tie_index = 0;
		free(r->next_url);
		free(r->cursor);
		r->next_url = r->cursor = NULL;
		break;
	case NEXT_TIE:
	case NEXT_FOLLOW:
		r->tie_index++;
		/* Follow the source's own way to the next page when it gives one. */
		free(r->next_url);
		free(r->cursor);
		r->next_url = r->page->next_url != NULL ? xstrdup(r->page->next_url) : NULL;
		r->cursor = r->page->cursor != NULL ? xstrdup(r->page->cursor) : NULL;
		break;
	case NEXT_END:
	case NEXT_KEYSET:
		break;
	}
	r->last_page = next == NEXT_END;
	if (r->last_page)
		r->read_done = true;
	modified_page_clear(r);
}

/* Fetch the next page unless one is on its way or waiting, or the read is complete. */
static void
maybe_fetch(struct run *r)
{
	if (r->sreq == NULL && !r->pf_ready && !r->read_done && !r->finishing)
		fetch_page(r);
}

/* Deliver the inspected page; meanwhile fetch the next one. */
static void
start_delivery(struct run *r)
{
	r->page_busy = true;
	maybe_fetch(r);
	if (!r->finishing)
		run_deliver(r, page_delivered);
}

static void
page_delivered(struct run *r, int rc)
{
	json_t *doc = r->ck;

	record_outcomes(r, doc, true);
	r->ck = NULL;
	run_checkpoint(r, doc, page_checkpointed);
	json_decref(doc);
}

static void
page_checkpointed(struct run *r, int rc)
{
	run_items_reset(r);
	r->page_busy = false;
	if (r->last_page) {
		run_finish_ok(r);
		return;
	}
	if (r->has_ahead) {
		json_decref(r->ck);
		r->ck = NULL;
		run_set_swap(r, &r->ahead);
		free(r->ahead.items);	/* the delivered page's emptied array */
		memset(&r->ahead, 0, sizeof r->ahead);
		r->has_ahead = false;
		start_delivery(r);
		if (r->pf_ready && !r->finishing) {
			struct source_page *p = r->pf_page;
			char *err = r->pf_err;

			r->pf_ready = false;
			r->pf_page = NULL;
			r->pf_err = NULL;
			inspect_page(r, r->pf_rc, p, err);
			free(err);
			maybe_fetch(r);
		}
	}
	/* else the next page is still on its way: page_answered goes on */
}
