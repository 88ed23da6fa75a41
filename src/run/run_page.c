/*
 * run_page.c - reading a source page by page, for the strategies that read a whole set
 * (flag's pending set, capture's snapshot) and the paging guards every strategy shares:
 * where the next page is (page number, offset, cursor, next link, key), a link or cursor
 * followed twice in one read, and pages that bring nothing new. It never judges a record.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <xxhash.h>

#include "record/json.h"
#include "core/log.h"
#include "core/redact.h"
#include "run/run_page.h"
#include "run/run_record.h"

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

		r->sreq = source_fetch(r->env.conn, r->job, &(struct source_read){ .pg = &rd },
		    cb, r, &err);
	} else {
		struct tmpl_vals v = { .have = TV_PAGE | TV_OFFSET | TV_LIMIT };

		v.page = sc->page_first + index - 1;
		v.offset = (index - 1) * sc->page_size;
		v.limit = sc->page_size;
		if (r->cursor != NULL) {
			v.have |= TV_CURSOR;
			v.cursor = r->cursor;
		}
		r->sreq = source_fetch(r->env.conn, r->job,
		    &(struct source_read){ .vals = &v, .url = r->next_url }, cb, r, &err);
	}
	if (r->sreq == NULL) {
		run_fail(r, "%s", err);
		free(err);
	}
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
