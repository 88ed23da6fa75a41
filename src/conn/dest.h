/* dest.h - delivering a batch of records to a destination (HTTP API or PostgreSQL table). */
#ifndef ONESYNC_DEST_H
#define ONESYNC_DEST_H

#include "conn/conn.h"

struct dest *dest_new(const struct conn_env *, const struct job_conf *);
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
void dest_aliases(struct dest *, char *const *cands, size_t ncands, char *const *keep,
    size_t nkeep, dest_alias_cb, void *arg);

#endif
