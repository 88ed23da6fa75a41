/*
 * strmap.c - open addressing with linear probing and tombstones, keyed by xxh3-64.
 * Owns copies of its keys; never owns values unless strmap_free is given a free function.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "core/strmap.h"

#define TOMB ((char *)&tomb_marker)
static const char tomb_marker;

void
strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof *m);
}

void
strmap_free(struct strmap *m, void (*freeval)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key == NULL || m->slots[i].key == TOMB)
			continue;
		free(m->slots[i].key);
		if (freeval != NULL)
			freeval(m->slots[i].val);
	}
	free(m->slots);
	strmap_init(m);
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

	m->slots = xcalloc(cap, sizeof *m->slots);
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
	struct strmap_slot *s = find(m, key, XXH3_64bits(key, strlen(key)));

	return s != NULL ? s->val : NULL;
}

void *
strmap_put(struct strmap *m, const char *key, void *val)
{
	uint64_t h = XXH3_64bits(key, strlen(key));
	struct strmap_slot *s = find(m, key, h);
	size_t i;

	if (s != NULL) {
		void *prev = s->val;

		s->val = val;
		return prev;
	}
	if ((m->n + m->tomb + 1) * 4 >= m->cap * 3)
		rehash(m, m->cap == 0 ? 16 : (m->n + 1) * 4 >= m->cap * 2 ? m->cap * 2 : m->cap);
	for (i = h & (m->cap - 1); m->slots[i].key != NULL && m->slots[i].key != TOMB;
	    i = (i + 1) & (m->cap - 1))
		;
	if (m->slots[i].key == TOMB)
		m->tomb--;
	m->slots[i].key = xstrdup(key);
	m->slots[i].val = val;
	m->slots[i].hash = h;
	m->n++;
	return NULL;
}

void *
strmap_del(struct strmap *m, const char *key)
{
	struct strmap_slot *s = find(m, key, XXH3_64bits(key, strlen(key)));
	void *v;

	if (s == NULL)
		return NULL;
	v = s->val;
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
