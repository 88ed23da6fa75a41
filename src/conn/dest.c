/*
 * dest.c - chooses the destination implementation for a job and calls it through its ops
 * (conn.h). Each implementation owns its connections' use for one run and reports one
 * outcome per record.
 */
#include <stdlib.h>

#include "conn/dest.h"
#include "conn/dest_http.h"
#include "conn/dest_pg.h"

struct dest *
dest_new(const struct conn_env *env, const struct job_conf *job)
{
	switch (job->dst.type) {
	case CONN_HTTP:
		return dest_http_new(env, job);
	case CONN_POSTGRESQL:
		return dest_pg_new(env, job);
	default:
		return NULL;
	}
}

void
dest_deliver(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	ds->ops->deliver(ds, items, n, cb, arg);
}

void
dest_delete(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	ds->ops->delete(ds, items, n, cb, arg);
}

void
dest_cancel(struct dest *ds)
{
	ds->ops->cancel(ds);
}

void
dest_aliases(struct dest *ds, char *const *cands, size_t ncands, char *const *keep,
    size_t nkeep, dest_alias_cb cb, void *arg)
{
	ds->ops->aliases(ds, cands, ncands, keep, nkeep, cb, arg);
}

void
dest_free(struct dest *ds)
{
	if (ds != NULL)
		ds->ops->free(ds);
}

void
dest_items_clear(struct dest_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].error);
		json_decref(items[i].answer);
		items[i].error = NULL;
		items[i].answer = NULL;
		items[i].outcome = DEST_PENDING;
	}
}
