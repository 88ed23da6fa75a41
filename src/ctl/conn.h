/*
 * conn.h - onesyncctl's state database connection and output helpers (conn.c). Every
 * text these print is redacted first; a failed statement prints its error and sets the
 * exit code through *rc.
 */
#ifndef ONESYNC_CTL_CONN_H
#define ONESYNC_CTL_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "core/util.h"
#include "ctl/ctl.h"

/* A table of text cells, printed in aligned columns under a header. */
struct ctl_table {
	size_t		 ncol;
	const char	*const *hdr;
	const char	*right;		/* per column: 'r' right-aligned, else left */
	struct strlist	 cells;
};

char *ctl_cell_text(const char *text, size_t max);
void ctl_table_add(struct ctl_table *, char *cell);	/* takes the cell */
void ctl_table_print(struct ctl_table *);		/* and empties it */
char *ctl_fmt_age(double secs);
char *ctl_fmt_duration(double secs);

/* A member of a JSON object: the string, null or missing, the number, the text of a cell. */
const char *ctl_jstr(json_t *, const char *k);
bool ctl_jnull(json_t *, const char *k);
double ctl_jnum(json_t *, const char *k);
char *ctl_jtext(json_t *, const char *k);
void ctl_print_json(json_t *);

/* 0, or the exit code (the error printed): unreachable 69, else 1. */
int ctl_connect(struct ctl *) WUR;
int ctl_need_schema(const struct ctl *) WUR;
/* The state schema has this table (an older onesyncd's schema may lack it). */
bool ctl_has_table(struct ctl *, const char *table);
int ctl_check_job(struct ctl *, const char *job) WUR;

PGresult *ctl_q(struct ctl *, const char *what, const char *sql, int n,
    const char *const *v, int *rc) WUR;
json_t *ctl_q_json(struct ctl *, const char *what, const char *sql, int n,
    const char *const *v, int *rc) WUR;
bool ctl_tx(struct ctl *, const char *sql, int *rc) WUR;
void ctl_rollback(struct ctl *);

#endif
