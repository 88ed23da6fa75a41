/* modified_page.h - strategy modified's own state, and how it judges a page. */
#ifndef ONESYNC_MODIFIED_PAGE_H
#define ONESYNC_MODIFIED_PAGE_H

#include "run/run.h"

/* One record of the page being handled. */
struct page_rec {
	char	*key;
	char	*text;		/* the source's text of its timestamp */
	int64_t	 ns;
	json_t	*rec;
	char	 hash[CANON_HASH_LEN];	/* "" until computed */
	bool	 deliver;
};

/* What strategy modified keeps of its paging (r->md); the paging every strategy shares
 * (next link, cursor, the loop guards) is the run's own. */
struct modified_state {
	struct source_page	*page;
	int64_t			 req_wm_ns;	/* watermark of the current request */
	char			*req_wm_text;
	char			*pos_key;	/* PostgreSQL source: keyset position of the next read */
	int64_t			 tie_read_ns;	/* PostgreSQL source: the timestamp read again
						 * from its first key before the read left it */
	long long		 tie_index;	/* page index inside one tie */
	bool			 in_tie;
	int			 tie_passes;
	long long		 tie_fresh;
	int64_t			 max_ns;	/* unsorted: highest timestamp delivered */
	char			*max_text;
	int64_t			 cap_ns;	/* settle cap, INT64_MAX when none */
	bool			 clock_warned;	/* a source clock too far ahead, logged */
	long long		 pages;
	bool			 page_busy;	/* a page is being delivered, or waits for the
						 * checkpoint before its own to commit */
	bool			 dl_done;	/* ... and its delivery has ended */
	bool			 ck_busy;	/* a page's checkpoint is on its way */
	bool			 ck_last;	/* ... and it is the run's last */
	struct pageset		 ahead;		/* a page inspected ahead while the previous
						 * one is delivered */
	bool			 has_ahead;
	bool			 read_done;	/* the last page has been inspected */
	bool			 pf_ready;	/* a fetched page waits to be inspected */
	int			 pf_rc;
	struct source_page	*pf_page;
	char			*pf_err;
	struct page_rec		*prs;		/* the current page's records, inspected */
	size_t			 nprs, capprs;
};

/*
 * A page arrived (rc, err: the fetch's outcome): judge its records into r->items and the
 * checkpoint r->ck, and decide the next request; the run fails on a failed fetch, a page
 * read before too often, or settle without a usable Date.
 */
void modified_page_judge(struct run *, int rc, struct source_page *, const char *err);
/* The error of a replayed retry whose payload still has no key or valid timestamp, or one
 * past modified.max_future by onesyncd's clock; NULL when it can go. */
char *modified_replay_error(struct run *, json_t *payload, const char *key);
/* Drop the records of the page just judged. */
void modified_page_clear(struct run *);

#endif
