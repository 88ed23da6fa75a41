/*
 * strmap.c - open addressing with linear probing and tombstones, keyed by xxh3-64 seeded
 * once per process: keys come from files and APIs, and names whose plain hashes agree in
 * the low bits can be found offline; in one run of slots they would make every insert and
 * lookup walk the whole run.
 * Owns copies of its keys (each its own malloc, or in chunks for an arena map); never owns
 * values unless strmap_free is given a free function.
 */
#include <sys/random.h>

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/strmap.h"

#define TOMB ((char *)&tomb_marker)
static const char tomb_marker;

#define CHUNK	((size_t)2 << 20)	/* a huge page's worth of keys */

/* The hash of a key of len bytes; the seed is unknown outside this process. */
static uint64_t
key_hash(const char *key, size_t len)
{
	static uint64_t seed;
	static bool seeded;

	if (!seeded) {
		if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
			seed = rand64();	/* entropy not ready yet: still not the file's */
		seeded = true;
	}
	return XXH3_64bits_withSeed(key, len, seed);
}

void
strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof *m);
}

void
strmap_init_arena(struct strmap *m)
{
	strmap_init(m);
	m->arena = true;
}

void
strmap_free(struct strmap *m, void (*freeval)(void *))
{
	bool arena = m->arena;

	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key == NULL || m->slots[i].key == TOMB)
			continue;
		if (!arena)
			free(m->slots[i].key);
		if (freeval != NULL)
			freeval(m->slots[i].val);
	}
	for (size_t i = 0; i < m->nchunks; i++)
		free(m->chunks[i]);
	free(m->chunks);
	free(m->slots);
	strmap_init(m);
	m->arena = arena;
}

/* The map's own copy of a key of len bytes. */
static char *
key_copy(struct strmap *m, const char *key, size_t len)
{
	char *k;

	if (!m->arena)
		return xstrndup(key, len);
	if (m->nchunks == 0 || m->chunk_cap - m->chunk_used < len + 1) {
		/* 16 KB first, twice as much each time up to CHUNK: a small map stays small */
		size_t cap = m->nchunks < 7 ? (size_t)16384 << m->nchunks : CHUNK;

		if (cap < len + 1)
			cap = len + 1;

		m->chunks = xreallocarray(m->chunks, m->nchunks + 1, sizeof *m->chunks);
		m->chunks[m->nchunks++] = xcalloc_big(1, cap);
		m->chunk_cap = cap;
		m->chunk_used = 0;
	}
	k = m->chunks[m->nchunks - 1] + m->chunk_used;
	memcpy(k, key, len);
	k[len] = '\0';
	m->chunk_used += len + 1;
	return k;
}

/* Slot holding key, or NULL. */
static struct strmap_slot *
find(const struct strmap *m, const char *key, uint64_t h)
{
	if (m->cap == 0)
		return NULL;
	for (size_t i = h & (m->cap - 1), probes = 0; probes < m->cap;
	    i = (i + 1) & (m->cap - 1), probes++) {
		struct strmap_slot *s = &m->slots[i];

		if (s->key == NULL)
			return NULL;
		if (s->key != TOMB && s->hash == h && strcmp(s->key, key) == 0)
			return s;
	}
	return NULL;
}

static void
rehash(struct strmap *m, size_t cap)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	m->slots = xcalloc_big(cap, sizeof *m->slots);
	m->cap = cap;
	m->tomb = 0;
	for (size_t i = 0; i < oldcap; i++) {
		size_t j;

		if (old[i].key == NULL || old[i].key == TOMB)
			continue;
		for (j = old[i].hash & (cap - 1); m->slots[j].key != NULL; j = (j + 1) & (cap - 1))
			;
		m->slots[j] = old[i];
	}
	free(old);
}

void *
strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, key_hash(key, strlen(key)));

	return s != NULL ? s->val : NULL;
}

void
strmap_reserve(struct strmap *m, size_t n)
{
	size_t cap = 16;

	if (n > (size_t)1 << 26)
		n = (size_t)1 << 26;
	while ((n + m->tomb + 1) * 4 >= cap * 3)
		cap *= 2;
	if (cap > m->cap)
		rehash(m, cap);
}

void **
strmap_ref(struct strmap *m, const char *key, bool *added)
{
	size_t len = strlen(key), i, tomb = SIZE_MAX;
	uint64_t h = key_hash(key, len);
	struct strmap_slot *s;

	if ((m->n + m->tomb + 1) * 4 >= m->cap * 3)
		rehash(m, m->cap == 0 ? 16 : (m->n + 1) * 4 >= m->cap * 2 ? m->cap * 2 : m->cap);
	/* One probe: the key, or the empty slot that ends its run (the first tombstone on
	 * the way is reused). The load stays below 3/4, so an empty slot is always found. */
	for (i = h & (m->cap - 1); (s = &m->slots[i])->key != NULL; i = (i + 1) & (m->cap - 1)) {
		if (s->key == TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
		} else if (s->hash == h && strcmp(s->key, key) == 0) {
			*added = false;
			return &s->val;
		}
	}
	if (tomb != SIZE_MAX) {
		s = &m->slots[tomb];
		m->tomb--;
	}
	s->key = key_copy(m, key, len);
	s->val = NULL;
	s->hash = h;
	m->n++;
	*added = true;
	return &s->val;
}

void *
strmap_put(struct strmap *m, const char *key, void *val)
{
	bool added;
	void **vp = strmap_ref(m, key, &added), *prev = added ? NULL : *vp;

	*vp = val;
	return prev;
}

void *
strmap_del(struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, key_hash(key, strlen(key)));
	void *v;

	if (s == NULL)
		return NULL;
	v = s->val;
	if (!m->arena)
		free(s->key);
	s->key = TOMB;
	s->val = NULL;
	m->n--;
	m->tomb++;
	return v;
}

bool
strmap_next(const struct strmap *m, size_t *iter, const char **key, void **val)
{
	while (*iter < m->cap) {
		struct strmap_slot *s = &m->slots[(*iter)++];

		if (s->key != NULL && s->key != TOMB) {
			*key = s->key;
			*val = s->val;
			return true;
		}
	}
	return false;
}
