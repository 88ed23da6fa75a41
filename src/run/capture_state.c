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
capture_stored_new(struct capture_state *cs)
{
	if (cs->nblocks == 0 || cs->used == STORED_BLOCK) {
		cs->blocks = xreallocarray(cs->blocks, cs->nblocks + 1, sizeof *cs->blocks);
		cs->blocks[cs->nblocks++] = xcalloc(STORED_BLOCK, sizeof **cs->blocks);
		cs->used = 0;
	}
	return &cs->blocks[cs->nblocks - 1][cs->used++];
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

void
capture_add_renames(struct capture_state *cs, json_t *doc)
{
	json_t *put = json_object_get(doc, "records_put"), *del;

	if (json_array_size(cs->renames) > 0) {
		json_t *all = json_copy(cs->renames);

		if (put != NULL)
			json_array_extend(all, put);
		json_object_set_new(doc, "records_put", all);
		json_array_clear(cs->renames);
	}
	if (json_array_size(cs->drops) > 0) {
		if ((del = json_object_get(doc, "records_del")) == NULL)
			json_object_set_new(doc, "records_del", del = json_array());
		json_array_extend(del, cs->drops);
		json_array_clear(cs->drops);
	}
}
