/* capture_state.h - what a capture run keeps: the stored key -> hash map (its entries in
 * blocks), the texts older versions stored, the batch and the deletions under way. */
#ifndef ONESYNC_CAPTURE_STATE_H
#define ONESYNC_CAPTURE_STATE_H

#include "run/run.h"

struct stored {
	char	hash[CANON_HASH_LEN];
	bool	seen;		/* present in this run's snapshot */
	bool	same;		/* ... with the stored hash: the destination has it */
	bool	accepted;	/* delivered and accepted in this run */
};

struct capture_state {
	struct strmap		 stored;	/* key -> struct stored */
	size_t			 nstored;	/* stored before this run: the guard's denominator */
	struct file_reader	*fr;
	bool			 paused;
	long long		 page_index;
	char			*after_key;	/* PostgreSQL: keyset position */
	const char		*page_url;	/* an API page being judged (borrowed), else NULL */
	size_t			 page_pos;	/* and the record's index in it */
	bool			 read_done;
	char			*read_error;	/* transfer failed or the file is truncated */
	long long		 nbad;		/* malformed rows in the snapshot */
	char			(*hashes)[CANON_HASH_LEN];	/* parallel to r->items */
	size_t			 caphashes;
	struct state_ck		*bad;		/* failed entries for the next checkpoint */
	struct canon_plan	*plan;		/* CSV: the canonical form of its header's rows
						 * (NULL: they take the general path), */
	char *const		*plan_for;	/* ... planned for this header */
	struct buf		 rowkey;	/* CSV: the key of the row being judged */
	json_t			*held;		/* records that arrived during a flush */
	bool			 flushing;	/* a batch is in delivery */
	bool			 ck_busy;	/* a batch's checkpoint is in flight */
	bool			 dl_done;	/* a batch delivered waits for that checkpoint */
	struct strlist		 del;		/* keys to delete at the destination */
	struct strmap		 inbatch;	/* what the next checkpoint writes: key -> item
						 * index + 2, or 1 for a key-less failure */
	struct stored		**blocks;	/* the stored entries, allocated in blocks */
	size_t			 nblocks, used;	/* entries used in the last block */
	size_t			 del_next, del_end;
	struct strmap		 legacy;	/* key -> its stored text in the form of an
						 * older version (["t",7]), malloced */
	struct state_ck		*renamed;	/* for the next checkpoint: legacy keys seen
						 * under their new text (CK_PUT), stored texts
						 * to forget (CK_DEL) */
	struct strmap		 folds;		/* the alias guard: canon_key_fold of the candidates */
	size_t			 alias_it;	/* ... its position in stored */
	bool			*alias_hit;	/* ... candidates a kept key names, or NULL */
};

#define STORED_BLOCK	8192

/* The entry of key in the key -> hash map, found or added (*added: zeroed), in one probe;
 * entries come from blocks (a million of them, one malloc each, would cost more than the
 * lookups). */
struct stored *capture_stored_ref(struct capture_state *, const char *key, bool *added);
/* Where the snapshot's records come from, for messages. */
const char *capture_where(struct run *);
/* The text the state store holds for a key of the map. */
const char *capture_stored_text(struct capture_state *, const char *key);
/* A checkpoint with the pending renames and forgotten texts (and nothing else yet): the
 * hashes of a batch added after them win (the last occurrence of a key). */
struct state_ck *capture_ck_new(struct capture_state *);

#endif
