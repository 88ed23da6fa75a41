/*
 * capture_state.c - the state a capture run keeps between its records: the stored hashes
 * (an entry per key, allocated in blocks), the texts an older version stored keys under,
 * and where the records come from. It never reads nor writes the state store itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/source_file.h"
#include "run/capture_state.h"

struct stored *
capture_stored_ref(struct capture_state *cs, const char *key, bool *added)
{
	void **vp = strmap_ref(&cs->stored, key, added);

	if (!*added)
		return *vp;
	if (cs->nblocks == 0 || cs->used == STORED_BLOCK) {
		cs->blocks = xreallocarray(cs->blocks, cs->nblocks + 1, sizeof *cs->blocks);
		cs->blocks[cs->nblocks++] = xcalloc(STORED_BLOCK, sizeof **cs->blocks);
		cs->used = 0;
	}
	return *vp = &cs->blocks[cs->nblocks - 1][cs->used++];
}

const char *
capture_where(struct run *r)
{
	struct capture_state *cs = r->cs;

	if (cs->fr != NULL)
		return source_file_where(cs->fr);
	return r->job->src.type == CONN_POSTGRESQL ? "the source table" : "the source API";
}

const char *
capture_stored_text(struct capture_state *cs, const char *key)
{
	const char *old = cs->legacy.n > 0 ? strmap_get(&cs->legacy, key) : NULL;

	return old != NULL ? old : key;
}

struct state_ck *
capture_ck_new(struct capture_state *cs)
{
	struct state_ck *ck = state_ck_new();

	state_ck_move(ck, cs->renamed);
	return ck;
}
