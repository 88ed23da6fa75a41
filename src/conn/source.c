/*
 * source.c - chooses a source's implementation by its type (source.type) through a table
 * of ops, for reading pages and for marking records done (strategy flag). It knows no
 * source's details; a new kind of source is one file and one row of the table. A file
 * source is read as a stream instead (source_file.h), not through here.
 */
#include <stddef.h>

#include "conn/source.h"
#include "conn/mark_http.h"
#include "conn/source_http.h"
#include "conn/source_pg.h"

struct source_ops {
	struct source_req	*(*fetch)(const struct conn_env *, const struct job_conf *,
				    const struct source_read *, source_cb, void *, char **);
	void			 (*cancel)(struct source_req *);
	struct source_marker	*(*mark)(const struct conn_env *, const struct job_conf *,
				    struct source_mark_item *, size_t, source_mark_cb, void *);
	void			 (*mark_cancel)(struct source_marker *);
};

/* By enum conn_type; what pages come from (HTTP being the default, as config/source.c
 * checks). */
static const struct source_ops source_http_ops = {
	source_http_fetch, source_http_cancel, mark_http_start, mark_http_cancel
};
static const struct source_ops source_pg_ops = {
	source_pg_fetch, source_pg_cancel, source_pg_mark, source_pg_mark_cancel
};

static const struct source_ops *
source_ops_of(int type)
{
	return type == CONN_POSTGRESQL ? &source_pg_ops : &source_http_ops;
}

struct source_req *
source_fetch(const struct conn_env *env, const struct job_conf *job,
    const struct source_read *read, source_cb cb, void *arg, char **err)
{
	return source_ops_of(job->src.type)->fetch(env, job, read, cb, arg, err);
}

void
source_cancel(struct source_req *sr)
{
	if (sr == NULL)
		return;
	/* Every read's struct starts with its kind. */
	source_ops_of(*(const int *)sr)->cancel(sr);
}

struct source_marker *
source_mark(const struct conn_env *env, const struct job_conf *job,
    struct source_mark_item *marks, size_t n, source_mark_cb cb, void *arg)
{
	return source_ops_of(job->src.type)->mark(env, job, marks, n, cb, arg);
}

void
source_mark_cancel(struct source_marker *m)
{
	if (m == NULL)
		return;
	source_ops_of(m->kind)->mark_cancel(m);
}
