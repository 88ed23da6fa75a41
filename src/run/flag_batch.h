/*
 * flag_batch.h - one batch of strategy flag after its delivery: its candidates, its marking
 * at the source, and what its checkpoint says of both (run/strategy_flag.c moves it along).
 */
#ifndef ONESYNC_FLAG_BATCH_H
#define ONESYNC_FLAG_BATCH_H

#include <jansson.h>
#include "conn/source.h"
#include "record/canon.h"
#include "run/run.h"
#include "store/state.h"

/* A pending record as a run judged it. */
struct cand {
	char	*key;
	json_t	*rec;
	char	 hash[CANON_HASH_LEN];
	json_t	*answer;	/* mark only: the stored destination answer */
	bool	 deliver;	/* false: delivered earlier, only mark */
	bool	 queued;	/* in the retry queue: cleared from it once delivered */
	bool	 unmarked;	/* in `unmarked`: cleared from it once marked */
	bool	 dropped;	/* its key came again later: neither delivered nor marked */
};

/* A delivered batch, marked then checkpointed while the next one is delivered. */
struct flag_batch {
	bool			 active;
	bool			 last;		/* its checkpoint ends the run */
	struct cand		*cands;		/* the batch's candidates, taken from the page */
	size_t			 ncands;
	struct pageset		 ps;		/* its delivery: the items, outcomes and answers */
	struct state_ck		*ck;		/* gathered before it was delivered */
	struct source_mark_item	*marks;
	size_t			 nmarks;
	struct cand		**markc;	/* the candidate of each mark */
	struct source_marker	*marker;
};

/*
 * Take the n candidates (moved: their key, record and answer are the batch's now), whose
 * delivery's items are in b->ps already, and list what to mark: what the destination
 * accepted, with its answer, and the mark-only ones, with the answer stored for them.
 */
void flag_batch_take(struct flag_batch *b, struct cand *cands, size_t n);
/* The batch's delivery and marking outcomes into ck (failures, the retry queue's and
 * `unmarked`'s keys), logged and counted in the run (*nmarked: records marked). */
void flag_batch_outcomes(struct run *, struct flag_batch *b, struct state_ck *ck,
    long long *nmarked);
/* Free what the batch holds (its marking cancelled when still out) and empty it. */
void flag_batch_clear(struct flag_batch *b);

#endif
