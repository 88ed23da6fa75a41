/*
 * dest.c - a job's destination group: an HTTP destination (method, URL, body, headers,
 * the create-on-404 request, the delete request of capture.deletes) or a PostgreSQL table
 * (columns mapped from record paths, the key columns that address a row).
 */
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/dest.h"
#include "config/endpoint.h"
#include "config/source_file.h"
#include "config/strategy.h"

/*
 * destination.delete of an HTTP destination: the request that deletes a record
 * that a complete snapshot no longer has (strategy capture with capture.deletes).
 * It is rendered with {{key}} only: a deleted record no longer exists.
 */
static void
parse_delete_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*dl = ctx_group(g, "delete"), *at;
	struct dest_conf	*d = &j->dst;
	size_t			 i;

	if (ctx_member(g, "delete") != NULL && !config_strategy_is_capture(c, j)) {
		if (c->strat_ok)
			ctx_errf(c, ctx_line(c, ctx_member(g, "delete")), "destination.delete is "
			    "used only by strategy 'capture' (with capture.deletes)");
		return;
	}
	if (!config_strategy_is_capture(c, j))
		return;
	if (dl == NULL || ctx_member(dl, "url") == NULL) {
		if (j->capture.deletes && (ctx_member(g, "delete") == NULL || dl != NULL))
			ctx_errf(c, ctx_line(c, dl != NULL ? dl : g), "capture.deletes needs "
			    "destination.delete.url: the request that deletes a record");
		else if (dl != NULL)
			ctx_missing(c, dl, "jobs.*.destination.delete.url", NULL);
		return;
	}
	d->has_delete = true;
	if (ctx_get_str(c, dl, "jobs.*.destination.delete.method", false,
	    &d->delete_method) == 0)
		endpoint_method(c, dl, "destination.delete.method", d->delete_method);
	/* Compiled with the delivery's placeholders to name {{record}} clearly. */
	at = ctx_member(dl, "url");
	d->delete_url = ctx_get_tmpl(c, dl, "jobs.*.destination.delete.url", true, NULL,
	    TMPL_URL, TV_WRITE);
	endpoint_http_url(c, dl, "url", "destination.delete.url", d->delete_url, NULL);
	if (d->delete_url != NULL && (tmpl_uses(d->delete_url) & ~(TV_KEY |
	    TV_SECRET | TV_ENV)) != 0) {
		ctx_errf(c, ctx_line(c, at), "destination.delete.url: {{record}} has no "
		    "value here: a deleted record no longer exists (use {{key}})");
		tmpl_free(d->delete_url);
		d->delete_url = NULL;
	}
	/* The destination's headers go with the delete request too. */
	for (i = 0; j->capture.deletes && i < d->nheaders; i++) {
		if (tmpl_uses(d->headers[i]) & TV_RECORD)
			ctx_errf(c, ctx_line(c, ctx_member(g, "headers")), "destination.headers"
			    "[%zu]: {{record}} has no value in the delete request "
			    "(capture.deletes), which sends these headers too", i);
	}
}

static void
parse_dest_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*cr = ctx_group(g, "create"), *b;
	struct dest_conf	*d = &j->dst;
	const char		*body;

	if (ctx_get_str(c, g, "jobs.*.destination.method", false, &d->method) == 0)
		endpoint_method(c, g, "destination.method", d->method);
	d->url = ctx_get_tmpl(c, g, "jobs.*.destination.url", true, NULL, TMPL_URL,
	    TV_WRITE);
	endpoint_http_url(c, g, "url", "destination.url", d->url, NULL);
	b = ctx_member(g, "body");
	body = b != NULL ? config_setting_get_string(b) : "{{record}}";
	if (body != NULL && *body != '\0')
		d->body = ctx_get_tmpl(c, g, "jobs.*.destination.body", false, NULL,
		    TMPL_BODY, TV_WRITE);
	ctx_get_headers(c, g, "jobs.*.destination.headers", TV_WRITE, &d->headers,
	    &d->nheaders);
	if (cr != NULL) {
		d->has_create = true;
		if (ctx_get_str(c, cr, "jobs.*.destination.create.method", false,
		    &d->create_method) == 0)
			endpoint_method(c, cr, "destination.create.method",
			    d->create_method);
		d->create_url = ctx_get_tmpl(c, cr, "jobs.*.destination.create.url", true,
		    NULL, TMPL_URL, TV_WRITE);
		endpoint_http_url(c, cr, "url", "destination.create.url", d->create_url, NULL);
		b = ctx_member(cr, "body");
		if (b == NULL && body != NULL && *body != '\0')
			d->create_body = ctx_compile(c, g, "destination.create.body", body,
			    TMPL_BODY, TV_WRITE);
		else if (b != NULL && config_setting_get_string(b) != NULL &&
		    *config_setting_get_string(b) != '\0')
			d->create_body = ctx_get_tmpl(c, cr,
			    "jobs.*.destination.create.body", false, NULL, TMPL_BODY,
			    TV_WRITE);
	}
	(void)ctx_get_int32(c, g, "jobs.*.destination.concurrency", NULL,
	    &d->concurrency);
	endpoint_http_opts(c, g, "jobs.*.destination", &d->http);
	parse_delete_http(c, g, j);
}

/* The first column mapped from a record field, or d->ncolumns. */
static size_t
column_of_field(const struct dest_conf *d, const char *field)
{
	size_t	i;

	for (i = 0; i < d->ncolumns; i++) {
		if (strcmp(d->columns[i].field, field) == 0)
			break;
	}
	return i;
}

/*
 * A PostgreSQL destination addresses a row (the upsert's conflict target, a deletion) by
 * the columns mapped from the job's key fields, and nothing else: every key field must be
 * mapped to a column, and every key column must be mapped from a key field. Otherwise an
 * upsert would merge rows of different records and a deletion would remove another row.
 * Sets d->key_fields (per key column, the key field it carries).
 */
static void
check_key_columns(struct ctx *c, config_setting_t *at, bool given, struct dest_conf *d,
    const struct job_conf *j)
{
	size_t	i, k, f;
	bool	covered;

	if (d->ncolumns == 0 || j->nkey == 0)
		return;
	d->key_fields = xcalloc(d->nkey_columns + 1, sizeof *d->key_fields);
	for (k = 0; k < d->nkey_columns; k++) {
		for (i = 0; i < d->ncolumns; i++) {
			if (strcmp(d->columns[i].column, d->key_columns[k]) == 0)
				break;
		}
		if (i == d->ncolumns) {
			ctx_errf(c, ctx_line(c, at), "'destination.key_columns': '%s' is not in "
			    "destination.columns", d->key_columns[k]);
			continue;
		}
		for (f = 0; f < j->nkey; f++) {
			if (strcmp(d->columns[i].field, j->key[f]) == 0)
				break;
		}
		if (f == j->nkey)
			ctx_errf(c, ctx_line(c, at), "'destination.key_columns': column '%s' is "
			    "mapped from '%s', which is not a key field (key: %s%s): a row "
			    "is upserted and deleted by the columns mapped from the key",
			    d->key_columns[k], d->columns[i].field, j->key[0],
			    j->nkey > 1 ? ", ..." : "");
		else
			d->key_fields[k] = f;
	}
	for (f = 0; f < j->nkey; f++) {
		covered = false;
		for (k = 0; k < d->nkey_columns && d->key_fields != NULL; k++) {
			i = 0;
			while (i < d->ncolumns && strcmp(d->columns[i].column,
			    d->key_columns[k]) != 0)
				i++;
			if (i < d->ncolumns && strcmp(d->columns[i].field, j->key[f]) == 0)
				covered = true;
		}
		if (covered)
			continue;
		if (column_of_field(d, j->key[f]) == d->ncolumns)
			ctx_errf(c, ctx_line(c, at), "no column in destination.columns is mapped "
			    "from the key field '%s': a row is upserted and deleted by the "
			    "columns mapped from the key; map it (column = \"%s\";)",
			    j->key[f], j->key[f]);
		else if (given)
			ctx_errf(c, ctx_line(c, at), "'destination.key_columns' lacks column '%s', "
			    "mapped from the key field '%s': a row is upserted and deleted by "
			    "all the columns mapped from the key",
			    d->columns[column_of_field(d, j->key[f])].column, j->key[f]);
	}
}

static void
parse_dest_pg(struct ctx *c, config_setting_t *g, struct dest_conf *d,
    const struct job_conf *j)
{
	config_setting_t	*cols = ctx_group(g, "columns"), *e, *kc;
	size_t			 i, k;
	int			 n;

	if (ctx_get_str(c, g, "jobs.*.destination.conninfo", true, &d->conninfo) == 0)
		endpoint_conninfo(c, g, "destination.conninfo", d->conninfo);
	(void)ctx_get_dur(c, g, "jobs.*.destination.timeout", &c->d.src.http.timeout_ms,
	    &d->http.timeout_ms);	/* statement_timeout, lock_timeout */
	if (ctx_get_str(c, g, "jobs.*.destination.table", true, &d->table) == 0 &&
	    !endpoint_is_table(d->table))
		ctx_errf(c, ctx_line(c, ctx_member(g, "table")), "'destination.table': '%s' is "
		    "not a plain name or schema.name", d->table);
	if (cols == NULL)
		ctx_missing(c, g, "jobs.*.destination.columns", "(column = \"record.path\" "
		    "for every column written)");
	else if (config_setting_is_group(cols)) {
		n = config_setting_length(cols);
		if (n == 0)
			ctx_errf(c, ctx_line(c, cols), "'destination.columns' is empty");
		d->columns = xcalloc((size_t)n + 1, sizeof *d->columns);
		for (i = 0; i < (size_t)n; i++) {
			e = config_setting_get_elem(cols, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				continue;
			if (!ctx_is_ident(config_setting_name(e), false))
				ctx_errf(c, ctx_line(c, e), "'destination.columns': '%s' is "
				    "not a plain column name", config_setting_name(e));
			d->columns[d->ncolumns].column = xstrdup(config_setting_name(e));
			d->columns[d->ncolumns++].field =
			    xstrdup(config_setting_get_string(e));
			config_source_file_flat(c, ctx_line(c, e), j, "destination.columns",
			    config_setting_get_string(e));
		}
	}
	kc = ctx_member(g, "key_columns");
	if (kc != NULL) {
		ctx_get_strlist(kc, &d->key_columns, &d->nkey_columns);
		if (d->nkey_columns == 0)
			ctx_errf(c, ctx_line(c, kc), "'destination.key_columns' is empty");
	} else if (cols != NULL && d->ncolumns > 0) {
		/* The default: the first column mapped from each key field, in key order. */
		d->key_columns = xcalloc(j->nkey + 1, sizeof *d->key_columns);
		for (k = 0; k < j->nkey; k++) {
			if ((i = column_of_field(d, j->key[k])) < d->ncolumns)
				d->key_columns[d->nkey_columns++] =
				    xstrdup(d->columns[i].column);
		}
	}
	check_key_columns(c, kc != NULL ? kc : cols, kc != NULL, d, j);
}

void
config_dest_parse(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = ctx_group(job, "destination");
	struct dest_conf	*d = &j->dst;
	char			*type;
	int			 bad = 0;

	if (g == NULL) {
		if (ctx_member(job, "destination") == NULL)
			ctx_missing(c, job, "jobs.*.destination", NULL);
		return;
	}
	d->line = ctx_line(c, g);
	if (ctx_get_str(c, g, "jobs.*.destination.type", false, &type) != 0)
		return;
	if (strcmp(type, "http") == 0)
		d->type = CONN_HTTP;
	else if (strcmp(type, "postgresql") == 0)
		d->type = CONN_POSTGRESQL;
	else {
		if (strcmp(type, "file") == 0)
			ctx_errf(c, ctx_line(c, ctx_member(g, "type")), "'file' is a source "
			    "type only; a destination is http or postgresql");
		else
			ctx_errf(c, ctx_line(c, ctx_member(g, "type")), "unknown destination "
			    "type '%s' (expected http or postgresql)", type);
		bad = 1;
	}
	if (bad) {
		free(type);
		return;
	}
	endpoint_keys(c, g, "jobs.*.destination", d->type, type, "destination");
	free(type);
	if (d->type == CONN_HTTP)
		parse_dest_http(c, g, j);
	else
		parse_dest_pg(c, g, d, j);
}
