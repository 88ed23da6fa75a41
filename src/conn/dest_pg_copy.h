/* dest_pg_copy.h - the statements and COPY rows of the PostgreSQL destination (dest_pg.c). */
#ifndef ONESYNC_DEST_PG_COPY_H
#define ONESYNC_DEST_PG_COPY_H

#include <jansson.h>
#include <libpq-fe.h>

#include "config/model.h"
#include "core/util.h"

/* How a column's value travels in the COPY, by the column's type. */
enum dpc_kind {
	DPC_TEXT,	/* its text: a JSON string's own text, any other value's JSON text */
	DPC_JSON,	/* json, jsonb: the value's JSON text (a string with its quotes) */
	DPC_CONV,	/* array, composite, domain: json_populate_record converts it */
};

/* The staging table of one mapping and the statements around it. */
struct dpc {
	size_t		 ncols;
	enum dpc_kind	*kinds;		/* per mapped column */
	bool		*same_eq;	/* per mapped column: its = is sameness of its text */
	bool		 conv;		/* some column is DPC_CONV */
	char		*tag;		/* the staging table's name: table, columns and types */
	char		*setup;		/* CREATE TEMP TABLE, once per session */
	char		*upsert;	/* COPY the rows; INSERT ... ON CONFLICT */
	char		*del;		/* COPY the keys; DELETE ... USING */
};

/* The catalog query answering the mapped table's columns ($1: the quoted table name). */
extern const char dpc_catalog_sql[];
struct dpc *dpc_new(const struct dest_conf *, PGresult *catalog);
void dpc_free(struct dpc *);
/*
 * Append one COPY line: the mapped columns' values of rec (deleting false), or the key
 * columns' values of a stored key (deleting true; a composite key's text is its JSON
 * array). -1 (nothing appended, *why set) when the row cannot travel: a NUL character in
 * a value, a key that is not its composite key's JSON array.
 */
int dpc_row(const struct dpc *, const struct job_conf *, bool deleting, json_t *rec,
    const char *key, struct buf *, const char **why);

#endif
