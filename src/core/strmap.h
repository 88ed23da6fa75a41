/* strmap.h - an open-addressing hash map from string keys to pointers. */
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
};

void strmap_init(struct strmap *);
/* Frees keys; calls freeval (may be NULL) on every value. */
void strmap_free(struct strmap *, void (*freeval)(void *));
void *strmap_get(const struct strmap *, const char *key);
/* Insert or replace; returns the previous value (caller frees) or NULL. Key is copied. */
void *strmap_put(struct strmap *, const char *key, void *val);
/* Remove; returns the value or NULL. */
void *strmap_del(struct strmap *, const char *key);
/* Iterate: for (i = 0; strmap_next(m, &i, &k, &v); ) */
bool strmap_next(const struct strmap *, size_t *iter, const char **key, void **val);

#endif
