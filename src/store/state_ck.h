/* state_ck.h - one checkpoint's content as it is built: lists of keys as PostgreSQL array
 * literals, scalars in a small JSON object. */
#ifndef ONESYNC_STATE_CK_H
#define ONESYNC_STATE_CK_H

#include <jansson.h>
#include "core/util.h"

/*
 * What one checkpoint writes (sql_schema.h, checkpoint_lists): its lists of keys, each
 * column kept as a PostgreSQL array literal that grows as entries are added (a key is
 * quoted once, when added: no document per key, and the server parses arrays, not one
 * jsonb of every key), and the few scalars in `d`, a small JSON object (watermark,
 * watermark_ns, watermark_key, prune_below, the counters, result, error, release,
 * clear_unkeyed, the retry settings; "seq" is set by the run). A key twice in one list:
 * the last one wins.
 */
enum state_list {
	CK_SEEN,		/* modified: key, hash, ts_ns (rows of the seen set) */
	CK_PUT,			/* capture: key, hash (stored hashes) */
	CK_DEL,			/* capture: key (stored hashes forgotten) */
	CK_OK,			/* key (retry queue entries cleared) */
	CK_FAILED,		/* key, error, payload (JSON text), hash */
	CK_UNMARKED_DEL,	/* flag: key */
	CK_UNMARKED_ADD,	/* flag: key, hash, answer (JSON text), error */
	CK_NLISTS
};
#define CK_NCOLS	16

struct state_ck {
	json_t		*d;
	size_t		 n[CK_NLISTS];
	struct buf	 col[CK_NCOLS];	/* "{" and the quoted elements so far */
};

struct state_ck *state_ck_new(void);
void state_ck_free(struct state_ck *);
size_t state_ck_count(const struct state_ck *, enum state_list);
/* An entry of a one-column list: CK_DEL, CK_OK, CK_UNMARKED_DEL. */
void state_ck_key(struct state_ck *, enum state_list, const char *key);
void state_ck_seen(struct state_ck *, const char *key, const char *hash, int64_t ts_ns);
void state_ck_put(struct state_ck *, const char *key, const char *hash);
/* payload, answer: JSON texts ("null" for none). */
void state_ck_failed(struct state_ck *, const char *key, const char *error,
    const char *payload, const char *hash);
void state_ck_unmarked(struct state_ck *, const char *key, const char *hash,
    const char *answer, const char *error);
/* Append the entries of from's lists after to's (from's lists are emptied; d stays). */
void state_ck_move(struct state_ck *to, struct state_ck *from);
/* Append s to an array literal as one quoted element (valid UTF-8 without NUL). */
void state_arr_text(struct buf *, const char *s);
/* The columns as array literals for a call (v[i] NULL for an empty list), and open again
 * for more entries afterwards (a checkpoint sent again after a lost connection). */
void state_ck_close(struct state_ck *, const char *v[CK_NCOLS]);
void state_ck_reopen(struct state_ck *);

#endif
