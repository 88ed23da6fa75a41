/* dest.h - delivering a batch of records to a destination (HTTP API or PostgreSQL table). */
#ifndef ONESYNC_DEST_H
#define ONESYNC_DEST_H

#include <event2/event.h>
#include <jansson.h>
#include "config/model.h"

enum dest_outcome {
	DEST_PENDING,
	DEST_OK,	/* accepted */
	DEST_REFUSED,	/* refused (4xx, constraint); goes to the retry queue with `error` */
};

struct dest_item {
	const char	*key;
	json_t		*rec;		/* borrowed */
	enum dest_outcome outcome;
	char		*error;		/* malloced, when refused */
	json_t		*answer;	/* the destination's JSON answer, when any (owned) */
};

struct dest;
struct daemon;

/* rc 0: every item has an outcome. rc -1: the batch failed as a whole (err says why). */
typedef void (*dest_cb)(void *arg, int rc, const char *err);

struct dest *dest_new(struct daemon *, const struct job_conf *);
/* Items stay owned by the caller and must live until the callback. */
void dest_deliver(struct dest *, struct dest_item *, size_t n, dest_cb, void *arg);
/* Delete records by key (items' rec may be NULL): DEST_OK when gone (also when they were
 * already gone), DEST_REFUSED with an error otherwise. */
void dest_delete(struct dest *, struct dest_item *, size_t n, dest_cb, void *arg);
/* Stop: no callback after this. */
void dest_cancel(struct dest *);
void dest_free(struct dest *);
void dest_items_clear(struct dest_item *, size_t n);

/*
 * PostgreSQL destination only: which of the deletion candidates `cands` name a row that a
 * key of `keep` names too, compared by the key columns' own types (int "5" = "05"). cb:
 * rc 0 and hit[i] for cands[i], or rc -1 and err. Never calls back before it returns; no
 * callback after dest_cancel.
 */
typedef void (*dest_alias_cb)(void *arg, int rc, const char *err, const bool *hit);
void dest_pg_aliases(struct dest *, char *const *cands, size_t ncands, char *const *keep,
    size_t nkeep, dest_alias_cb, void *arg);

/* Implementations. */
struct dest *dest_http_new(struct daemon *, const struct job_conf *);
struct dest *dest_pg_new(struct daemon *, const struct job_conf *);

struct dest_ops {
	void	(*deliver)(struct dest *, struct dest_item *, size_t, dest_cb, void *);
	void	(*cancel)(struct dest *);
	void	(*free)(struct dest *);
	void	(*delete)(struct dest *, struct dest_item *, size_t, dest_cb, void *);
};

struct dest {
	const struct dest_ops	*ops;
	struct daemon		*d;
	const struct job_conf	*job;
};

#endif
