/*
 * run_queue.c - the retry queue as this run read it from the state store: which keys wait,
 * with which content, and whether the run saw them again. It writes nothing: what the
 * queue becomes goes in the run's checkpoints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/run_queue.h"

struct queued {
	char	hash[CANON_HASH_LEN];
	bool	waiting;	/* dead, or its retry is not due yet */
	bool	seen;		/* the record was read in this run */
};

void
run_queue_note(struct run *r, const char *key, const char *hash, bool waiting)
{
	struct queued *q = xcalloc(1, sizeof *q);

	snprintf(q->hash, sizeof q->hash, "%s", hash != NULL ? hash : "");
	q->waiting = waiting;
	free(strmap_put(&r->failing, key, q));
}

bool
run_queued(const struct run *r, const char *key)
{
	return strmap_get(&r->failing, key) != NULL;
}

void
run_queue_seen(struct run *r, const char *key)
{
	struct queued *q = strmap_get(&r->failing, key);

	if (q != NULL)
		q->seen = true;
}

size_t
run_queue_unseen(const struct run *r, const struct strmap *except, struct state_ck *ck)
{
	size_t it = 0, n = 0;
	const char *k;
	void *v;

	while (strmap_next((struct strmap *)&r->failing, &it, &k, &v)) {
		if (((struct queued *)v)->seen || k[0] == '#' || strmap_get(except, k) != NULL)
			continue;
		state_ck_key(ck, CK_OK, k);
		n++;
	}
	return n;
}

bool
run_waits_for_retry(const struct run *r, const char *key, const char *hash)
{
	const struct queued *q = strmap_get(&r->failing, key);

	return q != NULL && q->waiting && strcmp(q->hash, hash) == 0;
}
