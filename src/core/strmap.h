/* strmap.h - an open-addressing hash map from string keys to pointers (its hash seeded per
 * process: the order of iteration differs from one process to the next). */
#ifndef ONESYNC_STRMAP_H
#define ONESYNC_STRMAP_H

#include <stddef.h>
#include "core/util.h"

struct strmap {
	struct strmap_slot {
		char	*key;
		void	*val;
		uint64_t hash;
	}	*slots;
	size_t	 cap;	/* power of two */
	size_t	 n;
	size_t	 tomb;
	/* strmap_init_arena: keys copied into chunks, freed together by strmap_free */
	bool	 arena;
	char	**chunks;
	size_t	 nchunks, chunk_used, chunk_cap;
};

void strmap_init(struct strmap *);
/* A map for many keys that stay until the end (a million stored hashes): the keys go into
 * large chunks instead of one malloc each; a deleted key's bytes stay until strmap_free. */
void strmap_init_arena(struct strmap *);
/* Frees keys; calls freeval (may be NULL) on every value. */
void strmap_free(struct strmap *, void (*freeval)(void *));
void *strmap_get(const struct strmap *, const char *key);
/* Insert or replace; returns the previous value (caller frees) or NULL. Key is copied. */
void *strmap_put(struct strmap *, const char *key, void *val);
/* Find key, or add it with a NULL value (*added says which), in one probe: where its value
 * is kept, valid until the map next changes. */
void **strmap_ref(struct strmap *, const char *key, bool *added);
/* Room for n keys in all without growing (a hint: at most 2^26 are planned for). */
void strmap_reserve(struct strmap *, size_t n);
/* Remove; returns the value or NULL. */
void *strmap_del(struct strmap *, const char *key);
/* Iterate: for (i = 0; strmap_next(m, &i, &k, &v); ) */
bool strmap_next(const struct strmap *, size_t *iter, const char **key, void **val);

#endif
