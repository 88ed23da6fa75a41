/* run.h - one execution of a job: lease, run start, strategy, checkpoints, result. */
#ifndef ONESYNC_RUN_H
#define ONESYNC_RUN_H

#include <jansson.h>
#include "record/canon.h"
#include "config/model.h"
#include "daemon/daemon.h"
#include "conn/dest.h"
#include "conn/source.h"
#include "core/strmap.h"
#include "record/ts.h"

/* A record remembered at or below the watermark (tie set, lookback window). */
struct seen {
	char	hash[CANON_HASH_LEN];
	int64_t	ts_ns;
};

struct run;
typedef void (*run_step_cb)(struct run *, int rc);

struct run {
	struct jobrt		*jr;
	const struct job_conf	*job;
	struct cfgref		*ref;
	long long		 id;
	int64_t			 epoch;
	struct dest		*dest;
	struct source_req	*sreq;
	struct event		*ev_timeout;
	uint64_t		 started;	/* monotonic ms */
	bool			 finishing;
	bool			 cut;		/* stopped from outside */
	bool			 state_busy;	/* a state call is in flight */
	char			*fail_msg;	/* set when failing: written once state is idle */
	long long		 c_read, c_delivered, c_skipped, c_failed, c_deleted;	/* checkpointed */
	long long		 ck_seq;	/* checkpoints sent: each carries its number */

	/* counters of this run */
	long long		 nread, ndelivered, nskipped, nfailed, ndeleted;
	int			 logged_failures;
	long long		 nduplicates;	/* earlier occurrences of a key in one page/batch */
	int			 logged_dups;

	/* state loaded at run start */
	bool			 have_failures;
	bool			 have_seen;	/* the seen set has rows: read it (modified) */
	char			*wm_text;	/* the source's own text, NULL before the first run */
	char			*wm_done;	/* the watermark as last written to the state store */
	int64_t			 wm_ns;
	char			*wm_key;	/* PostgreSQL source: key of the watermark row */
	char			*pos_key;	/* PostgreSQL source: keyset position of the next read */
	struct strmap		 seen;		/* key -> struct seen */
	json_t			*retry;		/* due retries */
	struct strmap		 failing;	/* the retry queue: key -> struct queued */
	json_t			*retry_failed;	/* retries that failed before delivery */

	/* the batch being delivered */
	struct dest_item	*items;
	size_t			 nitems, cap_items, next_item, batch_end;
	run_step_cb		 delivered_cb;
	json_t			*recs;		/* the records the items point into */

	/* modified: paging */
	struct source_page	*page;
	int64_t			 req_wm_ns;	/* watermark of the current request */
	char			*req_wm_text;
	long long		 tie_index;	/* page index inside one tie */
	bool			 in_tie;
	int			 tie_passes;
	long long		 tie_fresh;
	int64_t			 max_ns;	/* unsorted: highest timestamp delivered */
	char			*max_text;
	int64_t			 cap_ns;	/* settle cap, INT64_MAX when none */
	bool			 clock_warned;	/* a source clock too far ahead, logged */
	long long		 pages;
	char			*next_url;
	char			*cursor;
	struct strmap		 followed;	/* next links and cursors followed since the read
						 * last started from the job's URL (hashes) */
	struct strmap		 pages_read;	/* fingerprints of this read's pages */
	int			 pages_stale;	/* pages in a row that brought nothing new */
	bool			 last_page;
	json_t			*ck;		/* the checkpoint being built */
	bool			 page_busy;	/* a page is being delivered / checkpointed */
	struct pageset {	/* a page inspected ahead while the previous one is delivered */
		struct dest_item *items;
		size_t		  nitems, cap_items;
		json_t		 *ck;
		bool		  last;
	}			 ahead;
	bool			 has_ahead;
	bool			 read_done;	/* the last page has been inspected */
	bool			 pf_ready;	/* a fetched page waits to be inspected */
	int			 pf_rc;
	struct source_page	*pf_page;
	char			*pf_err;
	struct flag_state	*fl;		/* strategy flag's own state */
	struct capture_state	*cs;		/* strategy capture's own state */
	struct page_rec		*prs;		/* the current page's records, inspected */
	size_t			 nprs, capprs;
};

/* One record of the page being handled (strategy modified). */
struct page_rec {
	char	*key;
	char	*text;		/* the source's text of its timestamp */
	int64_t	 ns;
	json_t	*rec;
	char	 hash[CANON_HASH_LEN];	/* "" until computed */
	bool	 deliver;
};

/* Start a run of jr now (the daemon checked the slot). */
void run_start(struct jobrt *);
/* Cut a run short (stop, job removed, lease lost): no further state writes but the result. */
void run_cut(struct run *, const char *why);

/* Used by the strategies. */
void run_fail(struct run *, const char *fmt, ...) PRINTF(2, 3);
void run_finish_ok(struct run *);
void run_checkpoint(struct run *, json_t *doc, run_step_cb next);
void run_deliver(struct run *, run_step_cb next);	/* r->items[0..nitems) in batches */
struct dest_item *run_add_item(struct run *, const char *key, json_t *rec);
void run_note_failure(struct run *, const char *key, const char *error);
/* canon_record_key for an element of a page: one that is not a JSON object (null, a number, an
 * array...) has no key, and the error says what it is; the caller queues it as key-less.
 * One holding a value the source sent but jansson could not read (json_poison) fails
 * too, with *key set when its key is readable (the caller queues it under that key). */
int run_record_key(const struct run *, json_t *rec, char **key, char **err) WUR;
/* A record whose key comes again later in the same page or batch: the last occurrence
 * wins; the earlier one is counted as a duplicate (the caller counts it skipped) and
 * logged. */
void run_note_duplicate(struct run *, const char *key, const char *where);
/* An entry of a checkpoint's "failed" list that the state database can store whatever the
 * record holds: key and error made valid UTF-8 without NUL (the error cut to RUN_ERROR_MAX
 * bytes); a payload PostgreSQL cannot hold, or larger than RUN_PAYLOAD_MAX as JSON, is
 * left out (RUN_NO_PAYLOAD in its place) and the error says so. */
#define RUN_ERROR_MAX	2000
#define RUN_PAYLOAD_MAX	(8 << 20)
#define RUN_NO_PAYLOAD	"(not stored: the record holds a NUL character or invalid UTF-8, or is " \
			"larger than 8 MB)"
json_t *run_failure_entry(const char *key, const char *error, json_t *payload,
    const char *hash);
/* An error text as every column of the state database holds one (runs.error,
 * failures.last_error, unmarked.last_error): redacted, then valid UTF-8 without NUL and at
 * most RUN_ERROR_MAX bytes. The only way an error text reaches the state database. */
char *run_error_text(const char *);
void run_items_reset(struct run *);	/* drop the items of the last delivery */
/* Drop item i (not yet delivered); the last item takes its place. */
void run_drop_item(struct run *, size_t i);
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
/* The retry queue as the strategy read it (flag: the keys of a page; capture: all of it):
 * is key queued? is it, with this same content, still waiting for its retry (backoff not
 * over, or dead)? */
void run_queue_note(struct run *, const char *key, const char *hash, bool waiting);
bool run_queued(const struct run *, const char *key);
/* A queued record was read in this run. */
void run_queue_seen(struct run *, const char *key);
/* Append to out the queued keys not read in this run, neither key-less ('#…') nor in
 * except; returns how many. */
size_t run_queue_unseen(const struct run *, const struct strmap *except, json_t *out);
bool run_waits_for_retry(const struct run *, const char *key, const char *hash);
/* Exchange the run's current items, checkpoint and last-page flag with a page set. */
void run_set_swap(struct run *, struct pageset *);

/* Strategy entry points: called once the run has started in the state store. */
void strategy_modified_begin(struct run *);
void strategy_flag_begin(struct run *, json_t *started);
void strategy_capture_begin(struct run *, json_t *started);
void strategy_capture_free(struct run *);
void strategy_capture_cancel(struct run *);	/* stop reading the file */
/* A strategy's own state call came back: true when the run is failing and must stop
 * (its result is then being written). */
bool run_state_returned(struct run *);
/* The same for a state call whose answer the caller reads: true when it can be used; false
 * when the run was failing, or fails now with err, and the caller must stop. */
bool run_state_usable(struct run *, int rc, const char *err);
void strategy_flag_free(struct run *);
void strategy_flag_cancel(struct run *);	/* stop marking in flight */
long long strategy_flag_marked(const struct run *);
void modified_page_clear(struct run *);

#endif
