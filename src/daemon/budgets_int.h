/*
 * budgets_int.h - what daemon/budgets.c (the engine) and daemon/budgets_show.c (its
 * metrics and /budgets) share: the state of a budget and of a request's passage. Types only.
 */
#ifndef ONESYNC_BUDGETS_INT_H
#define ONESYNC_BUDGETS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include "config/model.h"

struct http_call;
struct state;

#define BUD_MAX_PER_REQUEST	8	/* budgets one request passes, at most */
#define BUD_STATE_RETRY_MS	1000	/* a failed take is tried again after this */
#define BUD_JITTER_MS		250	/* at most this after a block ends, at random */
#define BUD_DEFAULT_BLOCK_MS	1000	/* a 429/503 that says nothing of how long, or 0 */
#define BUD_HOLD_MAX_MS		10000	/* the longest hold a slow state database gets */
#define BUD_DEF_CHECK_MS	60000	/* the definitions compared again after this */

struct bud;

/* One request's passage (held in its call's permit slot). */
struct ticket {
	struct http_call	*call;
	struct bud		*b[BUD_MAX_PER_REQUEST];
	int64_t			 cost[BUD_MAX_PER_REQUEST];
	bool			 slot[BUD_MAX_PER_REQUEST];	/* holds a concurrency slot */
	size_t			 n, stage;	/* budgets matched, passed */
	uint64_t		 asked;		/* monotonic ms */
	bool			 priority;	/* a token request: no concurrency slot */
	bool			 gave_back;	/* gave its slots back while waiting at
						 * b[stage] (give_back in budgets.c) */
	bool			 reslot;	/* taking them back, in order, up to ... */
	size_t			 resume;	/* ... b[resume], whose tokens it paid */
	struct ticket		*next;		/* in b[stage]'s queue */
	bool			 queued;
};

struct bud {
	struct bud		*next;
	struct budgets		*e;
	struct budget_conf	 conf;	/* a copy: the configuration may be reloaded */
	int64_t			 win[8], lim[8];	/* the longest window's limit less reserve */
	size_t			 nw;
	int64_t			 chunk, hold_ms;	/* hold_ms: a tenth of the shortest window,
						 * at most 1 s */
	int64_t			 rtt;		/* the takes' round trip, ms (the longest
						 * lately): the hold asked for covers it */
	int64_t			 take_hold;	/* the hold the take in flight asked for */
	bool			 slow_logged;
	bool			 probing;	/* a block ended: one request tries the server
						 * before the others go */
	struct ticket		*probe;		/* ... the one that does */
	int			 streak;	/* blocks in a row the server gave no time for */
	int			 in_flight;
	int64_t			 tokens;
	uint64_t		 tokens_until;	/* monotonic ms: then what is left is dropped */
	bool			 taking;	/* a budget_take is in flight */
	uint64_t		 take_asked;
	uint64_t		 state_failing;	/* monotonic ms of the first failed take, 0 */
	int64_t			 blocked_until;	/* wall ms */
	int64_t			 full_until;	/* wall ms: the shared windows are full */
	struct ticket		*head, *tail;
	size_t			 waiting;
	struct event		*timer;
	bool			 gone;		/* removed by a reload */
	size_t			 refs;		/* tickets that point to it */
	/* what onesyncd(8) shows */
	long long		 taken, throttled, waited_n;
	double			 waited_s;
	int64_t			 refused_until;	/* the last refusal: until then */
	/* the definitions of the other instances (budgets_def.c) */
	uint64_t		 def_next;	/* monotonic ms: compared again then */
	uint64_t		 def_warned;	/* the differing set last logged (a hash) */
	bool			 def_err_logged;
};

#define BUD_REFUSALS	64	/* refusals remembered, for budgets_throttled */

struct budgets {
	struct event_base	*base;
	struct state		*state;
	struct bud		*list;		/* by name */
	bool			 closing;
	struct {
		uint64_t	 id;		/* random: named in the refusal's message */
		int64_t		 until;
	}			 refusals[BUD_REFUSALS];
	size_t			 nrefusal;	/* the next slot (a ring) */
	struct {			/* budgets_cut_begin .. budgets_cut_end */
		bool		 on;
		int64_t		 until;	/* the latest known end of a wait cut */
		struct bud	*b;	/* ... at this budget (a reference) */
	}			 cut;
};

#endif
