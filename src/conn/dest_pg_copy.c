/*
 * dest_pg_copy.c - how a batch reaches a PostgreSQL table: COPY into a temporary staging
 * table of the session (created once per connection, ON COMMIT DELETE ROWS), then one
 * INSERT ... SELECT ... ON CONFLICT (key) DO UPDATE, or one DELETE ... USING, in the same
 * transaction (one simple-protocol string: one round trip). The values keep the meaning
 * json_populate_recordset gave them before: a JSON string is its text, any other value its
 * JSON text, null or absent is NULL, and the table's column types cast them (json and jsonb
 * columns take the JSON text; arrays, composites and domains go through
 * json_populate_record, as before). It builds text only: dest_pg.c sends it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "conn/dest_pg_copy.h"
#include "io/pg.h"
#include "record/json.h"

#define CONV_COL	"\"onesync conv\""	/* the staging column of the DPC_CONV values */

const char dpc_catalog_sql[] = "SELECT a.attname, a.atttypid::int8, a.atttypmod, t.typtype, "
    "t.typcategory FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped";

/* Types whose = holds only for values of the same text: bool, int8, int2, int4, oid,
 * date, timestamp, timestamptz, uuid (not float: 0 = -0; not numeric: 1.0 = 1.00). */
static bool
same_eq(const char *typid)
{
	static const char *const oids[] = { "16", "20", "21", "23", "26", "1082", "1114",
	    "1184", "2950" };

	for (size_t i = 0; i < NELEM(oids); i++)
		if (strcmp(typid, oids[i]) == 0)
			return true;
	return false;
}

/* The catalog row of a column, or -1 (not in the table: the statements fail, naming it). */
static int
catalog_row(PGresult *res, const char *column)
{
	for (int i = 0; i < PQntuples(res); i++)
		if (strcmp(PQgetvalue(res, i, 0), column) == 0)
			return i;
	return -1;
}

/* Whether mapped column i is a key column. */
static bool
is_key(const struct dest_conf *c, size_t i)
{
	for (size_t k = 0; k < c->nkey_columns; k++)
		if (strcmp(c->key_columns[k], c->columns[i].column) == 0)
			return true;
	return false;
}

/* Append the mapped columns (keys only: the key columns) as "pfx"."col", kind-wise. */
static void
col_list(struct buf *b, const struct dest_conf *c, const struct dpc *d, bool keys,
    const char *plain, const char *conv)
{
	size_t n = 0;

	for (size_t i = 0; i < c->ncolumns; i++) {
		const char *p;
		char *q;

		if (keys && !is_key(c, i))
			continue;
		if (conv == NULL && d->kinds[i] == DPC_CONV)
			continue;
		p = d->kinds[i] == DPC_CONV ? conv : plain;
		q = pg_quote_ident(c->columns[i].column, false);
		buf_printf(b, "%s%s%s%s", n++ ? ", " : "", p, p[0] != '\0' ? "." : "", q);
		free(q);
	}
}

/* Whether the COPY carries the conversion column: a DPC_CONV column (a key one). */
static bool
has_conv(const struct dest_conf *c, const struct dpc *d, bool keys)
{
	for (size_t i = 0; i < c->ncolumns; i++)
		if (d->kinds[i] == DPC_CONV && (!keys || is_key(c, i)))
			return true;
	return false;
}

/* COPY stage (the plain columns, the conversion column) FROM STDIN; */
static void
copy_sql(struct buf *b, const struct dest_conf *c, const struct dpc *d, bool keys)
{
	size_t mark;

	buf_printf(b, "COPY pg_temp.%s (", d->tag);
	mark = b->len;
	col_list(b, c, d, keys, "", NULL);
	if (has_conv(c, d, keys))
		buf_printf(b, "%s" CONV_COL, b->len > mark ? ", " : "");
	buf_adds(b, ") FROM STDIN; ");
}

/* FROM the staging table, with the converted columns beside it when there are some. */
static void
from_sql(struct buf *b, const struct dpc *d, const char *t, bool conv)
{
	buf_printf(b, "pg_temp.%s AS s", d->tag);
	if (conv)
		buf_printf(b, ", LATERAL json_populate_record(NULL::%s, s." CONV_COL ") AS r", t);
}

/*
 * The upsert: an unchanged row is left alone (no new row version). Columns compare by their
 * text (every type has one; json, point, xml have no equality; citext's or numeric's would
 * call a change of case or scale no change), in the C collation; those of a type whose
 * equality is sameness of text (same_eq) compare directly, which is cheaper.
 */
static char *
upsert_sql(const struct dest_conf *c, const struct dpc *d, const char *t)
{
	struct buf b;
	size_t nset = 0;

	buf_init(&b);
	copy_sql(&b, c, d, false);
	buf_printf(&b, "INSERT INTO %s AS t (", t);
	col_list(&b, c, d, false, "", "");
	buf_adds(&b, ") SELECT ");
	col_list(&b, c, d, false, "s", "r");
	buf_adds(&b, " FROM ");
	from_sql(&b, d, t, d->conv);
	buf_adds(&b, " ON CONFLICT (");
	for (size_t k = 0; k < c->nkey_columns; k++) {
		char *q = pg_quote_ident(c->key_columns[k], false);

		buf_printf(&b, "%s%s", k ? ", " : "", q);
		free(q);
	}
	buf_adds(&b, ") DO ");
	for (size_t i = 0; i < c->ncolumns; i++) {
		char *q;

		if (is_key(c, i))
			continue;
		q = pg_quote_ident(c->columns[i].column, false);
		buf_printf(&b, "%s%s = EXCLUDED.%s", nset++ ? ", " : "UPDATE SET ", q, q);
		free(q);
	}
	if (nset == 0) {
		buf_adds(&b, "NOTHING");	/* every column is part of the key */
		return buf_steal(&b);
	}
	for (size_t i = 0, n = 0; i < c->ncolumns; i++) {
		char *q;

		if (is_key(c, i))
			continue;
		q = pg_quote_ident(c->columns[i].column, false);
		if (d->same_eq[i])
			buf_printf(&b, "%st.%s IS DISTINCT FROM EXCLUDED.%s", n++ ? " OR " :
			    " WHERE ", q, q);
		else
			buf_printf(&b, "%st.%s::text IS DISTINCT FROM EXCLUDED.%s::text COLLATE \"C\"",
			    n++ ? " OR " : " WHERE ", q, q);
		free(q);
	}
	return buf_steal(&b);
}

/* The deletion by key: the key columns compare with their own types. */
static char *
delete_sql(const struct dest_conf *c, const struct dpc *d, const char *t)
{
	struct buf b;
	size_t n = 0;

	buf_init(&b);
	copy_sql(&b, c, d, true);
	buf_printf(&b, "DELETE FROM %s AS t USING ", t);
	from_sql(&b, d, t, has_conv(c, d, true));
	buf_adds(&b, " WHERE ");
	for (size_t i = 0; i < c->ncolumns; i++) {
		char *q;

		if (!is_key(c, i))
			continue;
		q = pg_quote_ident(c->columns[i].column, false);
		buf_printf(&b, "%st.%s = %s.%s", n++ ? " AND " : "", q,
		    d->kinds[i] == DPC_CONV ? "r" : "s", q);
		free(q);
	}
	return buf_steal(&b);
}

/*
 * The staging table: the plain columns as the table has them (type, typmod, collation, by
 * CREATE TABLE AS), no constraint, no default; its name says the table, the mapping and
 * the types, so a changed mapping or table gets a table of its own.
 */
struct dpc *
dpc_new(const struct dest_conf *c, PGresult *catalog)
{
	struct dpc *d = xcalloc(1, sizeof *d);
	char *t = pg_quote_ident(c->table, true);
	struct buf h, b;
	size_t mark;

	buf_init(&h);
	buf_adds(&h, t);
	d->ncols = c->ncolumns;
	d->kinds = xcalloc(c->ncolumns + 1, sizeof *d->kinds);
	d->same_eq = xcalloc(c->ncolumns + 1, sizeof *d->same_eq);
	for (size_t i = 0; i < c->ncolumns; i++) {
		int row = catalog_row(catalog, c->columns[i].column);
		const char *type = row < 0 ? "" : PQgetvalue(catalog, row, 1);
		char tt = row < 0 ? 'b' : PQgetvalue(catalog, row, 3)[0];
		char cat = row < 0 ? 'S' : PQgetvalue(catalog, row, 4)[0];

		if (strcmp(type, "114") == 0 || strcmp(type, "3802") == 0)
			d->kinds[i] = DPC_JSON;
		else if (tt == 'c' || tt == 'd' || cat == 'A')
			d->kinds[i] = DPC_CONV;
		if (d->kinds[i] == DPC_CONV)
			d->conv = true;
		d->same_eq[i] = same_eq(type);
		buf_printf(&h, "\x1f%s\x1e%d\x1e%s\x1e%s", c->columns[i].column, (int)d->kinds[i],
		    type, row < 0 ? "" : PQgetvalue(catalog, row, 2));
	}
	d->tag = xasprintf("onesync_stage_%016llx", (unsigned long long)XXH3_64bits(h.data,
	    h.len));
	buf_free(&h);
	buf_init(&b);
	buf_printf(&b, "CREATE TEMP TABLE IF NOT EXISTS pg_temp.%s ON COMMIT DELETE ROWS AS SELECT ", d->tag);
	mark = b.len;
	col_list(&b, c, d, false, "", NULL);
	if (d->conv)
		buf_printf(&b, "%sNULL::json AS " CONV_COL, b.len > mark ? ", " : "");
	buf_printf(&b, " FROM %s WITH NO DATA", t);
	d->setup = buf_steal(&b);
	d->upsert = upsert_sql(c, d, t);
	d->del = delete_sql(c, d, t);
	free(t);
	return d;
}

void
dpc_free(struct dpc *d)
{
	if (d == NULL)
		return;
	free(d->kinds);
	free(d->same_eq);
	free(d->tag);
	free(d->setup);
	free(d->upsert);
	free(d->del);
	free(d);
}

/* Append s as one COPY text field (backslash, tab, newline, CR escaped); -1 on a NUL. */
static int
copy_text(struct buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '\0':
			return -1;
		case '\\':
			buf_adds(b, "\\\\");
			break;
		case '\t':
			buf_adds(b, "\\t");
			break;
		case '\n':
			buf_adds(b, "\\n");
			break;
		case '\r':
			buf_adds(b, "\\r");
			break;
		default:
			buf_addc(b, s[i]);
			break;
		}
	}
	return 0;
}

/* Append one value as the COPY field of a column of this kind. */
static int
copy_value(struct buf *b, enum dpc_kind kind, json_t *v)
{
	struct buf j;
	int rc;

	if (v == NULL || json_is_null(v)) {
		buf_adds(b, "\\N");
		return 0;
	}
	if (kind == DPC_TEXT && json_is_string(v))
		return copy_text(b, json_string_value(v), json_string_length(v));
	buf_init(&j);
	jsonx_append(&j, v);
	rc = copy_text(b, j.data, j.len);
	buf_free(&j);
	return rc;
}

/* The value of mapped column i for the row: the record's field, or the key's part. */
static json_t *
row_value(const struct job_conf *job, size_t i, bool deleting, json_t *rec, json_t *parts,
    json_t *single)
{
	const struct dest_conf *c = &job->dst;

	if (!deleting)
		return jsonx_path_get(rec, c->columns[i].field);
	for (size_t k = 0; k < c->nkey_columns; k++)
		if (strcmp(c->key_columns[k], c->columns[i].column) == 0)
			return parts != NULL ? json_array_get(parts, c->key_fields[k]) : single;
	return NULL;
}

int
dpc_row(const struct dpc *d, const struct job_conf *job, bool deleting, json_t *rec,
    const char *key, struct buf *b, const char **why)
{
	const struct dest_conf *c = &job->dst;
	json_t *parts = NULL, *single = NULL, *conv = NULL;
	size_t mark = b->len, n = 0;
	int rc = 0;

	*why = "a value holds a NUL character, which PostgreSQL cannot store in text";
	if (deleting && job->nkey > 1 && ((parts = json_loads(key, 0, NULL)) == NULL ||
	    !json_is_array(parts) || json_array_size(parts) != job->nkey)) {
		json_decref(parts);
		*why = "the key is not a composite key's JSON array";
		return -1;
	}
	if (deleting && parts == NULL)
		single = json_string_nocheck(key);
	for (size_t i = 0; i < c->ncolumns && rc == 0; i++) {
		json_t *v;

		if (deleting && !is_key(c, i))
			continue;
		v = row_value(job, i, deleting, rec, parts, single);
		if (d->kinds[i] == DPC_CONV) {
			if (conv == NULL)
				conv = json_object();
			json_object_set(conv, c->columns[i].column, v != NULL ? v : json_null());
			continue;
		}
		if (n++ > 0)
			buf_addc(b, '\t');
		rc = copy_value(b, d->kinds[i], v);
	}
	if (rc == 0 && conv != NULL) {
		if (n > 0)
			buf_addc(b, '\t');
		rc = copy_value(b, DPC_JSON, conv);
	}
	json_decref(conv);
	json_decref(parts);
	json_decref(single);
	if (rc != 0) {
		b->len = mark;
		b->data[mark] = '\0';
		return -1;
	}
	buf_addc(b, '\n');
	return 0;
}
