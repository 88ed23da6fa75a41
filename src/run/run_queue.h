/* run_queue.h - the retry queue as a run read it: which keys wait, with which content. */
#ifndef ONESYNC_RUN_QUEUE_H
#define ONESYNC_RUN_QUEUE_H

#include "run/run.h"

/* The retry queue as the strategy read it (flag: the keys of a page; capture: all of it):
 * is key queued? is it, with this same content, still waiting for its retry (backoff not
 * over, or dead)? */
void run_queue_note(struct run *, const char *key, const char *hash, bool waiting);
bool run_queued(const struct run *, const char *key);
/* A queued record was read in this run. */
void run_queue_seen(struct run *, const char *key);
/* Add to ck's "ok" list the queued keys not read in this run, neither key-less ('#…') nor
 * in except; returns how many. */
size_t run_queue_unseen(const struct run *, const struct strmap *except,
    struct state_ck *ck);
bool run_waits_for_retry(const struct run *, const char *key, const char *hash);

#endif
