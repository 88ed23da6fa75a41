/* run_page.h - reading a source page by page, for every strategy: where the next page is,
 * and the two guards against a source whose paging never ends (a link followed twice, pages
 * that bring nothing new). */
#ifndef ONESYNC_RUN_PAGE_H
#define ONESYNC_RUN_PAGE_H

#include "run/run.h"

#define RUN_MAX_PAGES	10000000
/*
 * Before fetching page `page_no` by r->next_url or r->cursor: 0 when this read has not
 * followed that link or cursor yet (now it has); -1 when it has, and the run failed
 * naming the (redacted) link or the cursor and the page: a source whose next page points
 * back would otherwise be read forever. A fetch by the job's own URL starts a new read.
 */
int run_next_unseen(struct run *, long long page_no) WUR;
void run_fetch_page(struct run *, enum source_pg_mode, const char *after_key, long long index,
    source_cb);
bool run_page_more(struct run *, const struct source_page *);
/*
 * After page page_no is read: NULL when it brought something new, or when fewer than
 * RUN_STALE_PAGES pages in a row brought nothing (the same records, by key, as a page already
 * read since the read last started: a source that ignores the paging parameter and answers
 * distinct next links forever); when as many did, the error that fails the run (the
 * caller frees it). run_page_restart() starts a new read (a deliberate re-read: a tie's).
 */
#define RUN_STALE_PAGES	10
char *run_page_stale(struct run *, const struct source_page *, long long page_no) WUR;
void run_page_restart(struct run *);
/* A table read by key: the next page starts after the last record of recs (*after_key
 * replaced). -1 when that record has no usable key (NULL, empty...): such rows sort last,
 * so the read ends there (logged); the caller's records were judged one by one already. */
int run_keyset_next(struct run *, json_t *recs, char **after_key);

#endif
