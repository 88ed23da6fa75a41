/*
 * modified_page.c - how strategy modified judges one page (doc/design.md §4.2): each
 * record's key and timestamp (the max_future guard, settle), skipped by the seen set or
 * delivered, and then where the next request goes (seek from the page's last timestamp, a
 * step inside a tie, a re-read of a tie, the next link, the next key) and what the page's
 * checkpoint says (seen records, the watermark). The watermark never follows the local
 * clock; only the max_future guard reads it. It fetches nothing and delivers nothing:
 * strategy_modified.c does, with what this decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "record/json.h"
#include "record/canon.h"
#include "record/tmpl.h"
#include "core/log.h"
#include "run/modified_filter.h"
#include "run/modified_page.h"
#include "run/run_page.h"
#include "run/run_record.h"

#define MAX_TIE_PASSES	3

static void decide(struct run *);

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
		if (!r->md->clock_warned)
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "%s says '%.64s', more "
			    "than 1h ahead of onesyncd's clock: ignored, modified.max_future "
			    "counts from onesyncd's clock", what, page->date);
		r->md->clock_warned = true;
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

char *
modified_replay_error(struct run *r, json_t *payload, const char *key)
{
	char *k = NULL, *text = NULL, *err = NULL, *ref;
	int64_t limit_ns = future_limit(r, NULL, &ref);
	struct ts t;

	if (inspect(r, payload, &k, &t, &text, &err) == 0 && ts_ns(t) > limit_ns)
		err = future_error(r, key, text, ref);
	free(ref);
	free(k);
	free(text);
	return err;
}

void
modified_page_clear(struct run *r)
{
	for (size_t i = 0; i < r->md->nprs; i++) {
		free(r->md->prs[i].key);
		free(r->md->prs[i].text);
		json_decref(r->md->prs[i].rec);
	}
	r->md->nprs = 0;
}

/* The record's hash, computed once and only when needed (comparison, seen set, queue). */
static const char *
page_rec_hash(struct page_rec *p)
{
	if (p->hash[0] == '\0')
		canon_hash(p->rec, NULL, 0, NULL, 0, p->hash);
	return p->hash;
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

/*
 * settle: the cap (source time minus modified.settle) from the Date header of the run's
 * first page of an HTTP source; -1 when the run failed (no usable Date, or one far ahead).
 */
static int
settle_cap(struct run *r, const struct source_page *page)
{
	const struct modified_conf *m = &r->job->modified;
	int64_t src_now = date_ns(page->date);

	if (src_now < 0) {
		run_fail(r, "settle is set but the source sent no usable Date header (GET %s)",
		    page->log_url);
		return -1;
	}
	if (src_now - local_ns() > CLOCK_AHEAD_MAX_NS) {
		/* believed, it would let unsettled records through (Date: 9999: all) */
		run_fail(r, "settle is set but the source's Date header '%.64s' is more than "
		    "1h ahead of onesyncd's clock (GET %s)", page->date, page->log_url);
		return -1;
	}
	r->md->cap_ns = src_now - m->settle_ms * 1000000LL;
	return 0;
}

/*
 * Judge record i of the page: a failure (no key, no valid timestamp, a timestamp past
 * limit_ns) into failed; not settled yet: left for a later run (-1 when the read of a
 * sorted source stops there); else into the page's records, to deliver or skip by the
 * seen set. Earlier duplicates (last: their key) are skipped.
 */
static int
judge_record(struct run *r, const struct source_page *page, size_t i, const char *last,
    int64_t limit_ns, const char *ref, struct state_ck *ck)
{
	struct modified_state *md = r->md;
	json_t *rec = json_array_get(page->records, i);
	struct page_rec *p;
	struct seen *s;
	struct ts t;
	char *e = NULL;

	if (last != NULL) {
		/* Its key comes again later on this page: the last one wins. */
		r->nread++;
		r->nskipped++;
		run_note_duplicate(r, last, page->log_url);
		return 0;
	}
	if (md->nprs == md->capprs) {
		md->capprs = md->capprs ? md->capprs * 2 : 256;
		md->prs = xreallocarray(md->prs, md->capprs, sizeof *md->prs);
	}
	p = &md->prs[md->nprs];
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
		run_failure_add(ck, k, msg, rec, p->hash);
		free(k);
		free(msg);
		free(e);
		free(p->key);
		free(p->text);
		return 0;
	}
	p->ns = ts_ns(t);
	if (p->ns > md->cap_ns) {
		/* Not settled yet: this run takes nothing from here on. */
		free(p->key);
		free(p->text);
		return r->job->modified.sorted ? -1 : 0;
	}
	r->nread++;
	p->rec = json_incref(rec);
	s = strmap_get(&r->seen, p->key);
	p->deliver = s == NULL || strcmp(s->hash, page_rec_hash(p)) != 0;
	if (p->deliver) {
		run_add_item(r, p->key, rec);
		if (md->in_tie && p->ns == md->req_wm_ns)
			md->tie_fresh++;
	} else
		r->nskipped++;
	md->nprs++;
	return 0;
}

/*
 * PostgreSQL: whether this page, read after (timestamp, key) of the last row read, leaves
 * that timestamp while it has not been read again from its first key. A row that reached
 * the timestamp after the page ending there was read, with a key below that page's last
 * key, is behind the keyset; once the read leaves the timestamp the watermark moves past
 * it and no run would read it (the next run starts at the watermark). A source commits
 * its changes in timestamp order (without modified.lookback): a row later than the tie is
 * on this page, so the tie is complete now and one more read of it finds every row.
 */
static bool
keyset_leaves_tie(struct run *r, json_t *recs)
{
	struct modified_state *md = r->md;
	json_t *last = json_array_get(recs, json_array_size(recs) - 1);
	char *k = NULL, *text = NULL, *e = NULL;
	struct ts t;
	bool leaves;

	if (md->pos_key == NULL || md->req_wm_text == NULL || last == NULL ||
	    md->tie_read_ns == md->req_wm_ns)
		return false;
	/* The page is ordered by (timestamp, key): its last record is its latest. */
	leaves = inspect(r, last, &k, &t, &text, &e) == 0 && ts_ns(t) > md->req_wm_ns;
	free(k);
	free(text);
	free(e);
	return leaves;
}

void
modified_page_judge(struct run *r, int rc, struct source_page *page, const char *err)
{
	const struct source_conf *sc = &r->job->src;
	const struct modified_conf *m = &r->job->modified;
	json_t *recs;
	struct state_ck *ck;
	size_t i, n;
	bool full;
	char **last, *stale;
	char *ref;
	int64_t limit_ns;

	if (rc != 0) {
		run_fail(r, "%s", err);
		return;
	}
	if ((stale = run_page_stale(r, page, r->md->pages)) != NULL || (stale =
	    modified_filter_error(r, page, r->md->req_wm_text, r->md->req_wm_ns)) != NULL) {
		source_page_free(page);
		run_fail(r, "%s", stale);
		free(stale);
		return;
	}
	source_page_free(r->md->page);
	r->md->page = page;
	recs = page->records;
	n = json_array_size(recs);
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld: %zu records from GET %s",
	    r->md->pages, n, page->log_url);
	if (m->settle_ms > 0 && r->md->cap_ns == INT64_MAX && sc->type == CONN_HTTP &&
	    settle_cap(r, page) != 0)
		return;
	if (sc->type == CONN_POSTGRESQL && keyset_leaves_tie(r, recs)) {
		/* Not taken: the tie is read again from its first key (the seen set skips
		 * what was delivered), and then this page again. */
		log_job(LOG_DEBUG, r->job->name, r->id, NULL, "page %lld leaves %s: that "
		    "timestamp is read once more", r->md->pages, r->md->req_wm_text);
		r->md->tie_read_ns = r->md->req_wm_ns;
		free(r->md->pos_key);
		r->md->pos_key = NULL;
		run_page_restart(r);
		modified_page_clear(r);
		r->last_page = false;
		state_ck_free(r->ck);
		r->ck = state_ck_new();
		return;
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
	ck = state_ck_new();
	last = page_last_keys(r, recs);
	for (i = 0; i < n; i++)
		if (judge_record(r, page, i, last[i], limit_ns, ref, ck) != 0) {
			full = false;
			break;
		}
	for (i = 0; i < n; i++)
		free(last[i]);
	free(last);
	free(ref);
	r->last_page = !full;
	state_ck_free(r->ck);
	r->ck = ck;
	decide(r);
}

/* Where the next request goes after a page. */
enum next { NEXT_SEEK, NEXT_TIE, NEXT_RESTART_TIE, NEXT_END, NEXT_FOLLOW, NEXT_KEYSET };

/* What decide() makes of a page. */
struct decision {
	enum next	 next;
	bool		 move;		/* the watermark moves, to new_ns / new_text */
	int64_t		 new_ns;
	const char	*new_text;
	int64_t		 page_ns;	/* the page's highest timestamp, and its text */
	const char	*page_text;
	bool		 all_at_pos;	/* every record is at the position asked for */
	bool		 progress;	/* the page went past the position asked for */
};

/*
 * PostgreSQL: within a run, keyset on (field, key): the next read starts after this page's
 * last row, and so does the watermark. The next run starts at the watermark inclusive and
 * skips the tie by the seen set (kept by keep_seen).
 */
static void
decide_keyset(struct run *r, struct state_ck *ck, struct decision *dc)
{
	struct modified_state *md = r->md;
	const struct page_rec *last = md->nprs > 0 ? &md->prs[md->nprs - 1] : NULL;

	if (last != NULL) {
		free(md->pos_key);
		md->pos_key = xstrdup(last->key);
		free(md->req_wm_text);
		md->req_wm_text = xstrdup(last->text);
		md->req_wm_ns = last->ns;
		if (r->wm_text == NULL || last->ns >= r->wm_ns) {
			dc->move = true;
			dc->new_ns = last->ns;
			dc->new_text = last->text;
			json_object_set_new(ck->d, "watermark_key", json_string(last->key));
			free(r->wm_key);
			r->wm_key = xstrdup(last->key);
		}
	}
	dc->next = r->last_page || last == NULL ? NEXT_END : NEXT_KEYSET;
}

/* Without `sorted`: read everything; the watermark moves at the end of the run. */
static void
decide_unsorted(struct run *r, struct decision *dc)
{
	struct modified_state *md = r->md;

	if (dc->page_text != NULL && dc->page_ns > md->max_ns) {
		md->max_ns = dc->page_ns;
		free(md->max_text);
		md->max_text = xstrdup(dc->page_text);
	}
	dc->next = r->last_page ? NEXT_END : NEXT_FOLLOW;
	if (dc->next == NEXT_END && md->max_text != NULL && (r->wm_text == NULL ||
	    md->max_ns >= r->wm_ns)) {
		dc->new_ns = md->max_ns;
		dc->new_text = md->max_text;
		dc->move = true;
	}
}

/* With `sorted`: seek from the page's last timestamp, stepping through a tie by pages. */
static void
decide_sorted(struct run *r, struct decision *dc)
{
	struct modified_state *md = r->md;

	if (!r->last_page && (dc->all_at_pos || !dc->progress)) {
		/* The whole page is one tie at the position asked for: step inside it. */
		md->in_tie = true;
		dc->next = NEXT_TIE;
	} else if (md->in_tie && (md->tie_passes == 0 || md->tie_fresh > 0) &&
	    md->tie_passes < MAX_TIE_PASSES) {
		/* Leaving a tie that spanned pages: read it once more, until a pass finds
		 * nothing new (a record edited mid-run shifts the pages inside the tie). */
		md->tie_passes++;
		md->tie_fresh = 0;
		dc->next = NEXT_RESTART_TIE;
	} else {
		if (md->in_tie && md->tie_fresh > 0) {
			/* The tie kept changing: stop before it; the next run goes on from there. */
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "records at %s kept changing "
			    "while paging; this run stops there and the next one goes on",
			    md->req_wm_text);
			r->last_page = true;
		} else if (dc->page_text != NULL && (r->wm_text == NULL ||
		    dc->page_ns >= r->wm_ns)) {
			dc->new_ns = dc->page_ns;
			dc->new_text = dc->page_text;
			dc->move = true;
		}
		md->in_tie = false;
		md->tie_passes = 0;
		md->tie_fresh = 0;
		dc->next = r->last_page ? NEXT_END : NEXT_SEEK;
	}
}

/*
 * Remember the records at or above the (new) window's lower bound, in the checkpoint and
 * in memory, and move the watermark (pruning the seen set below the new window).
 */
static void
keep_seen(struct run *r, struct state_ck *ck, const struct decision *dc)
{
	const struct modified_conf *m = &r->job->modified;
	struct modified_state *md = r->md;
	struct page_rec *prs = md->prs;
	size_t nprs = md->nprs;
	bool keyset = r->job->src.type == CONN_POSTGRESQL;
	int64_t keep_from;

	keep_from = dc->move ? dc->new_ns : r->wm_text != NULL ? r->wm_ns : INT64_MIN;
	if (keep_from != INT64_MIN)
		keep_from -= m->lookback_ms * 1000000LL;
	if (!keyset && (!m->sorted || dc->next == NEXT_TIE || dc->next == NEXT_RESTART_TIE))
		keep_from = INT64_MIN;	/* not moving yet: remember the whole page */
	for (size_t i = 0; i < nprs; i++) {
		if (!prs[i].deliver || prs[i].ns < keep_from)
			continue;
		state_ck_seen(ck, prs[i].key, page_rec_hash(&prs[i]), prs[i].ns);
	}
	if (dc->move) {
		json_object_set_new(ck->d, "watermark", json_string(dc->new_text));
		json_object_set_new(ck->d, "watermark_ns", json_integer(dc->new_ns));
		json_object_set_new(ck->d, "prune_below",
		    json_integer(dc->new_ns - m->lookback_ms * 1000000LL));
	}
	if (dc->next == NEXT_END)
		json_object_set_new(ck->d, "result", json_string("ok"));

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
	if (dc->move) {
		size_t it = 0;
		const char *k;
		void *v;
		int64_t below = dc->new_ns - m->lookback_ms * 1000000LL;
		struct strlist gone = { 0 };

		free(r->wm_text);
		r->wm_text = xstrdup(dc->new_text);
		r->wm_ns = dc->new_ns;
		while (strmap_next(&r->seen, &it, &k, &v))
			if (((struct seen *)v)->ts_ns < below)
				strlist_add(&gone, xstrdup(k));
		for (size_t i = 0; i < gone.n; i++)
			free(strmap_del(&r->seen, gone.v[i]));
		strlist_free(&gone);
	}
}

/* Set up the next request as decided. */
static void
next_request(struct run *r, const struct decision *dc)
{
	struct modified_state *md = r->md;

	switch (dc->next) {
	case NEXT_SEEK:
		/* Ask again from the last timestamp of this page (inclusive). */
		free(md->req_wm_text);
		md->req_wm_text = xstrdup(dc->page_text);
		md->req_wm_ns = dc->page_ns;
		/* FALLTHROUGH */
	case NEXT_RESTART_TIE:
		/* A new read from the (request) watermark: a tie is re-read on purpose. */
		run_page_restart(r);
		md->tie_index = 0;
		free(r->next_url);
		free(r->cursor);
		r->next_url = r->cursor = NULL;
		break;
	case NEXT_TIE:
	case NEXT_FOLLOW:
		md->tie_index++;
		/* Follow the source's own way to the next page when it gives one. */
		free(r->next_url);
		free(r->cursor);
		r->next_url = md->page->next_url != NULL ? xstrdup(md->page->next_url) : NULL;
		r->cursor = md->page->cursor != NULL ? xstrdup(md->page->cursor) : NULL;
		break;
	case NEXT_END:
	case NEXT_KEYSET:
		break;
	}
	r->last_page = dc->next == NEXT_END;
	if (r->last_page)
		md->read_done = true;
}

/*
 * Which way the next request goes and what the page's checkpoint will say, decided as soon
 * as the page is inspected; the next page is then fetched while this one is delivered.
 */
static void
decide(struct run *r)
{
	struct modified_state *md = r->md;
	struct decision dc = { .new_ns = INT64_MIN, .page_ns = INT64_MIN };

	dc.all_at_pos = md->nprs > 0 && md->req_wm_text != NULL;
	for (size_t i = 0; i < md->nprs; i++) {
		if (md->prs[i].ns != md->req_wm_ns)
			dc.all_at_pos = false;
		if (md->prs[i].ns >= dc.page_ns) {
			dc.page_ns = md->prs[i].ns;
			dc.page_text = md->prs[i].text;
		}
	}
	dc.progress = dc.page_text != NULL && (md->req_wm_text == NULL ||
	    dc.page_ns > md->req_wm_ns);
	if (r->job->src.type == CONN_POSTGRESQL)
		decide_keyset(r, r->ck, &dc);
	else if (!r->job->modified.sorted)
		decide_unsorted(r, &dc);
	else
		decide_sorted(r, &dc);
	keep_seen(r, r->ck, &dc);
	next_request(r, &dc);
	modified_page_clear(r);
}
