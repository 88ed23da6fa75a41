/*
 * source.c - a job's source group: its type, then an HTTP source (URL, query, headers,
 * paging, the marking request of strategy flag) or a PostgreSQL one (table, columns, the
 * pending condition and marking columns of strategy flag); a file source is source_file.c.
 * Checks what a source and the job's strategy must agree on.
 */
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/endpoint.h"
#include "config/source.h"
#include "config/source_file.h"
#include "config/strategy.h"
#include "core/secrets.h"

static const char *page_styles[] = { "none", "page", "offset", "link", "next" };

/* The placeholder a page style needs in the source url or query. */
static void
check_paging(struct ctx *c, config_setting_t *g, struct source_conf *s, unsigned uses)
{
	static const struct {
		unsigned	 var;
		enum page_style	 style;
		const char	*name;
	} need[] = {
		{ TV_PAGE, PAGE_PAGE, "page" },
		{ TV_OFFSET, PAGE_OFFSET, "offset" },
		{ TV_CURSOR, PAGE_NEXT, "cursor" },
	};
	config_setting_t	*pg = ctx_group(g, "page");
	size_t			 i;

	for (i = 0; i < NELEM(need); i++) {
		if (s->page_style == need[i].style && (uses & need[i].var) == 0 &&
		    need[i].style != PAGE_NEXT)
			ctx_errf(c, ctx_line(c, pg != NULL ? pg : g), "page.style '%s' but no "
			    "{{%s}} in source url or query", page_styles[s->page_style],
			    need[i].name);
		if (s->page_style != need[i].style && (uses & need[i].var) != 0)
			ctx_errf(c, ctx_line(c, g), "{{%s}} in source url or query but "
			    "page.style is '%s' (use '%s')", need[i].name,
			    page_styles[s->page_style], page_styles[need[i].style]);
	}
}

/* Query parameters, from a group or from a list of "name=value" strings. */
static unsigned
parse_query(struct ctx *c, config_setting_t *q, struct source_conf *s)
{
	config_setting_t	*e;
	const char		*v, *eq;
	char			*name, *str, *key;
	unsigned		 uses = 0;
	int			 i, n;
	bool			 grp = config_setting_is_group(q);

	if (!grp && !ctx_is_strlist(q))
		return 0;
	n = config_setting_length(q);
	s->query = xcalloc((size_t)n + 1, sizeof *s->query);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(q, (unsigned)i);
		if (!grp) {
			v = config_setting_get_string(e);
			if ((eq = strchr(v, '=')) == NULL || eq == v)
				continue;
			name = xstrndup(v, (size_t)(eq - v));
			str = xstrdup(eq + 1);
		} else if (ctx_is_int(e)) {
			name = xstrdup(config_setting_name(e));
			str = xasprintf("%lld", config_setting_get_int64(e));
		} else if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			name = xstrdup(config_setting_name(e));
			str = xstrdup(config_setting_get_string(e));
		} else
			continue;
		key = xasprintf("source.query.%s", name);
		secrets_learn_param(name, str);
		s->query[s->nquery].value = ctx_compile(c, e, key, str, TMPL_QUERY, TV_READ);
		free(key);
		free(str);
		if (s->query[s->nquery].value == NULL) {
			free(name);
			continue;
		}
		uses |= tmpl_uses(s->query[s->nquery].value);
		s->query[s->nquery++].name = name;
	}
	return uses;
}

/* Whether the job marks at its source (strategy flag); source.mark with another is refused. */
static bool
mark_wanted(struct ctx *c, config_setting_t *g, const struct job_conf *j)
{
	if (ctx_member(g, "mark") != NULL && !config_strategy_is_flag(c, j)) {
		if (config_strategy_not_flag(c, j))
			ctx_errf(c, ctx_line(c, ctx_member(g, "mark")), "source.mark is used "
			    "only by strategy 'flag'");
		return false;
	}
	return config_strategy_is_flag(c, j);
}

/* source.mark of an HTTP source: the request that marks a record done. */
static void
parse_mark_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*mk = ctx_group(g, "mark"), *b;
	struct source_conf	*s = &j->src;
	const char		*body;

	if (!mark_wanted(c, g, j))
		return;
	if (mk == NULL || ctx_member(mk, "url") == NULL) {
		if (ctx_member(g, "mark") == NULL || mk != NULL)
			ctx_errf(c, ctx_line(c, mk != NULL ? mk : g), "strategy 'flag' needs "
			    "source.mark.url: the request that marks a record done");
		return;
	}
	s->has_mark = true;
	if (ctx_get_str(c, mk, "jobs.*.source.mark.method", false, &s->mark_method) == 0)
		endpoint_method(c, mk, "source.mark.method", s->mark_method);
	s->mark_url = ctx_get_tmpl(c, mk, "jobs.*.source.mark.url", true, NULL, TMPL_URL,
	    TV_MARK);
	endpoint_http_url(c, mk, "url", "source.mark.url", s->mark_url, NULL);
	b = ctx_member(mk, "body");
	body = b != NULL ? config_setting_get_string(b) : NULL;
	if (body != NULL && *body != '\0')
		s->mark_body = ctx_get_tmpl(c, mk, "jobs.*.source.mark.body", false, NULL,
		    TMPL_BODY, TV_MARK);
	ctx_get_headers(c, mk, "jobs.*.source.mark.headers", TV_MARK, &s->mark_headers,
	    &s->mark_nheaders);
}

/*
 * capture.deletes deletes what a snapshot lacks, so the read must not be able to miss a
 * record that exists: a page number or an offset counts records, and one that moves to an
 * earlier page while the run reads is skipped and would be deleted. One answer (style
 * none), or links/cursors over a stable order the operator declares (page.stable), can.
 */
static void
check_deletes_read(struct ctx *c, config_setting_t *g, const struct job_conf *j)
{
	const struct source_conf	*s = &j->src;
	config_setting_t		*pg = ctx_group(g, "page");
	int				 line = ctx_line(c, ctx_member(pg, "style") != NULL ?
					    ctx_member(pg, "style") : pg != NULL ? pg : g);

	if (!config_strategy_is_capture(c, j) || !j->capture.deletes)
		return;
	if (s->page_style == PAGE_PAGE || s->page_style == PAGE_OFFSET)
		ctx_errf(c, line, "capture.deletes cannot be used with page.style '%s': a "
		    "page number or an offset counts records, so a record that moves "
		    "between pages while a run reads is missed and would be deleted; "
		    "use page.style 'link' or 'next' over a stable order (page.stable = "
		    "true), a single answer (style 'none'), a file or a postgresql source",
		    page_styles[s->page_style]);
	else if ((s->page_style == PAGE_LINK || s->page_style == PAGE_NEXT) &&
	    !s->page_stable)
		ctx_errf(c, line, "capture.deletes with page.style '%s' needs page.stable = "
		    "true: declare that the API's %s walk one stable order (a cursor on "
		    "the key, not an offset), or no record may be missed and deleted",
		    page_styles[s->page_style], s->page_style == PAGE_LINK ?
		    "links" : "next cursors");
}

static void
parse_source_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	struct source_conf	*s = &j->src;
	config_setting_t	*q, *pg;
	char			*str;
	unsigned		 uses = 0;
	size_t			 i;

	s->url = ctx_get_tmpl(c, g, "jobs.*.source.url", true, NULL, TMPL_URL, TV_READ);
	if (s->url != NULL)
		uses |= tmpl_uses(s->url);
	/* No watermark on the first run, no cursor on the first page. */
	if ((uses & TV_WATERMARK) && config_strategy_is_capture(c, j))
		ctx_errf(c, ctx_line(c, ctx_member(g, "url")), "source.url: {{watermark}} has no "
		    "value with strategy 'capture' (it reads the whole data set every "
		    "run and keeps no watermark)");
	else if (uses & (TV_WATERMARK | TV_CURSOR))
		ctx_errf(c, ctx_line(c, ctx_member(g, "url")), "source.url: {{%s}} has no value "
		    "on the first %s; use it in source.query, where the parameter is "
		    "then left out", (uses & TV_WATERMARK) ? "watermark" : "cursor",
		    (uses & TV_WATERMARK) ? "run" : "page");
	if ((q = config_setting_get_member(g, "query")) != NULL) {
		unsigned	qu = parse_query(c, q, s);

		/* Strategy flag keeps no watermark: the parameter would never be sent. */
		if ((qu & TV_WATERMARK) && config_strategy_is_flag(c, j))
			ctx_errf(c, ctx_line(c, q), "source.query: {{watermark}} has no value "
			    "with strategy 'flag' (the pending records are asked by "
			    "the query itself)");
		/* Nor strategy capture, which reads everything every run. */
		if ((qu & TV_WATERMARK) && config_strategy_is_capture(c, j))
			ctx_errf(c, ctx_line(c, q), "source.query: {{watermark}} has no value "
			    "with strategy 'capture' (it reads the whole data set every "
			    "run and keeps no watermark)");
		uses |= qu;
	}
	/* Source headers are rendered once per request, without page values. */
	ctx_get_headers(c, g, "jobs.*.source.headers", TV_SECRET | TV_ENV, &s->headers,
	    &s->nheaders);
	for (i = 0; i < s->nheaders; i++)
		uses |= tmpl_uses(s->headers[i]);
	(void)ctx_get_str(c, g, "jobs.*.source.records", false, &s->records);
	pg = ctx_group(g, "page");
	if (ctx_get_str(c, pg, "jobs.*.source.page.style", false, &str) == 0) {
		for (i = 0; i < NELEM(page_styles); i++) {
			if (strcmp(str, page_styles[i]) == 0)
				break;
		}
		if (i == NELEM(page_styles))
			ctx_errf(c, ctx_line(c, ctx_member(pg, "style")), "unknown page.style "
			    "'%s' (expected none, page, offset, link or next)", str);
		else {
			s->page_style = (enum page_style)i;
			check_paging(c, g, s, uses);
		}
		free(str);
	}
	(void)ctx_get_int(c, pg, "jobs.*.source.page.first", NULL, &s->page_first);
	(void)ctx_get_int(c, pg, "jobs.*.source.page.size", NULL, &s->page_size);
	(void)ctx_get_int(c, pg, "jobs.*.source.page.max_records", NULL, &s->page_max_records);
	(void)ctx_get_str(c, pg, "jobs.*.source.page.next", s->page_style == PAGE_NEXT,
	    &s->page_next);
	(void)ctx_get_bool(c, pg, "jobs.*.source.page.stable", NULL, &s->page_stable);
	if (ctx_member(pg, "stable") != NULL && s->page_style != PAGE_LINK &&
	    s->page_style != PAGE_NEXT)
		ctx_errf(c, ctx_line(c, ctx_member(pg, "stable")), "'source.page.stable' applies "
		    "to page.style 'link' or 'next' only (a page number or an offset counts "
		    "records, which is never stable)");
	check_deletes_read(c, g, j);
	s->fetch = ctx_get_tmpl(c, g, "jobs.*.source.fetch", false, NULL, TMPL_URL,
	    TV_KEY | TV_SECRET | TV_ENV);
	endpoint_http_url(c, g, "url", "source.url", s->url, &s->origin);
	endpoint_http_url(c, g, "fetch", "source.fetch", s->fetch, NULL);
	endpoint_allow_origins(c, g, s);
	endpoint_http_opts(c, g, "jobs.*.source", &s->http);
	parse_mark_http(c, g, j);
	if (j->flag.version != NULL)
		ctx_errf(c, ctx_line(c, ctx_member(ctx_group(c->job, "flag"), "version")),
		    "'flag.version' is used only with a postgresql source; with an "
		    "http source make source.mark a conditional request (e.g. "
		    "{{record.version}} in its url or headers)");
}

/* Is column one of the columns read (always true when all columns are read)? */
static bool
src_reads(const struct source_conf *s, const char *column)
{
	size_t	i;

	if (s->ncolumns == 0)
		return true;
	for (i = 0; i < s->ncolumns; i++) {
		if (strcmp(s->columns[i], column) == 0)
			return true;
	}
	return false;
}

/* A column named by another key of a job with a postgresql source. */
static void
check_src_column(struct ctx *c, config_setting_t *at, const struct source_conf *s,
    const char *key, const char *column)
{
	if (!ctx_is_ident(column, false))
		ctx_errf(c, ctx_line(c, at), "'%s': '%s' is not a plain column name (a "
		    "postgresql source reads it as a column)", key, column);
	else if (!src_reads(s, column))
		ctx_errf(c, ctx_line(c, at), "'%s': column '%s' is not in source.columns",
		    key, column);
}

/* source.mark.set of a postgresql source: UPDATE ... SET column = value. */
static void
parse_mark_pg(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*mk = ctx_group(g, "mark"), *set, *e;
	struct source_conf	*s = &j->src;
	const char		*col;
	char			*src, *name;
	size_t			 i;
	int			 n;

	if (!mark_wanted(c, g, j))
		return;
	set = ctx_group(mk, "set");
	if (set == NULL) {
		if (ctx_member(g, "mark") == NULL || mk != NULL)
			ctx_errf(c, ctx_line(c, mk != NULL ? mk : g), "strategy 'flag' needs "
			    "source.mark.set: the columns that mark a row done");
		return;
	}
	n = config_setting_length(set);
	if (n == 0) {
		ctx_errf(c, ctx_line(c, set), "'source.mark.set' is empty");
		return;
	}
	s->mark_set = xcalloc((size_t)n + 1, sizeof *s->mark_set);
	for (i = 0; i < (size_t)n; i++) {
		e = config_setting_get_elem(set, (unsigned)i);
		col = config_setting_name(e);
		if (ctx_is_int(e))
			src = xasprintf("%lld", config_setting_get_int64(e));
		else if (config_setting_type(e) == CONFIG_TYPE_STRING)
			src = xstrdup(config_setting_get_string(e));
		else
			continue;	/* reported by walk_group() */
		if (!ctx_is_ident(col, false))
			ctx_errf(c, ctx_line(c, e), "'source.mark.set': '%s' is not a plain "
			    "column name", col);
		else if (j->nkey == 1 && strcmp(col, j->key[0]) == 0)
			ctx_errf(c, ctx_line(c, e), "'source.mark.set': '%s' is the key "
			    "column, which a marking must not change", col);
		name = xasprintf("source.mark.set.%s", col);
		s->mark_set[s->nmark_set].value = ctx_compile(c, e, name, src, TMPL_TEXT,
		    TV_MARK);
		free(name);
		free(src);
		if (s->mark_set[s->nmark_set].value != NULL)
			s->mark_set[s->nmark_set++].column = xstrdup(col);
	}
}

static void
parse_source_pg(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	struct source_conf	*s = &j->src;
	config_setting_t	*cols = ctx_member(g, "columns"), *e, *k;
	size_t			 i;

	if (ctx_get_str(c, g, "jobs.*.source.conninfo", true, &s->conninfo) == 0)
		endpoint_conninfo(c, g, "source.conninfo", s->conninfo);
	(void)ctx_get_dur(c, g, "jobs.*.source.timeout", &c->d.src.http.timeout_ms,
	    &s->http.timeout_ms);	/* statement_timeout, lock_timeout */
	if (ctx_get_str(c, g, "jobs.*.source.table", true, &s->table) == 0 &&
	    !endpoint_is_table(s->table))
		ctx_errf(c, ctx_line(c, ctx_member(g, "table")), "'source.table': '%s' is not "
		    "a plain name or schema.name", s->table);
	if (cols != NULL && ctx_is_strlist(cols)) {
		ctx_get_strlist(cols, &s->columns, &s->ncolumns);
		if (s->ncolumns == 0) {
			ctx_errf(c, ctx_line(c, cols), "'source.columns' is empty (leave it "
			    "out to read all columns)");
			free(s->columns);
			s->columns = NULL;
		}
		for (i = 0; i < s->ncolumns; i++) {
			e = config_setting_get_elem(cols, (unsigned)i);
			if (!ctx_is_ident(s->columns[i], false))
				ctx_errf(c, ctx_line(c, e), "'source.columns': '%s' is not a "
				    "plain column name", s->columns[i]);
		}
	}
	if (ctx_get_str(c, g, "jobs.*.source.where", false, &s->where) == 0 &&
	    s->where != NULL && strspn(s->where, " \t\r\n") == strlen(s->where)) {
		free(s->where);
		s->where = NULL;
	}
	(void)ctx_get_int(c, ctx_group(g, "page"), "jobs.*.source.page.size", NULL,
	    &s->page_size);
	s->page_first = 1;

	/* The key: one column, read, by which rows are paged and marked. */
	k = ctx_member(c->job, "key");
	if (j->nkey > 1)
		ctx_errf(c, ctx_line(c, k), "a postgresql source needs a single-column key");
	else if (j->nkey == 1 && *j->key[0] != '\0')
		check_src_column(c, k, s, "key", j->key[0]);
	if (c->strat_ok && j->strategy == STRAT_MODIFIED && j->modified.field != NULL)
		check_src_column(c, ctx_member(ctx_group(c->job, "modified"), "field"), s,
		    "modified.field", j->modified.field);
	if (j->flag.version != NULL)
		check_src_column(c, ctx_member(ctx_group(c->job, "flag"), "version"), s,
		    "flag.version", j->flag.version);

	if (config_strategy_is_flag(c, j)) {
		if (ctx_member(g, "pending") == NULL)
			ctx_errf(c, ctx_line(c, g), "strategy 'flag' with a postgresql source "
			    "needs source.pending: the SQL condition of a row still to "
			    "sync");
		else if (ctx_get_str(c, g, "jobs.*.source.pending", false, &s->pending) == 0 &&
		    strspn(s->pending, " \t\r\n") == strlen(s->pending))
			ctx_errf(c, ctx_line(c, ctx_member(g, "pending")), "'source.pending' is "
			    "empty");
	} else if (config_strategy_not_flag(c, j) && ctx_member(g, "pending") != NULL)
		ctx_errf(c, ctx_line(c, ctx_member(g, "pending")), "source.pending is used only "
		    "by strategy 'flag'");
	parse_mark_pg(c, g, j);
}

void
config_source_parse(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = ctx_group(job, "source");
	struct source_conf	*s = &j->src;
	char			*str;
	int			 bad = 0;

	if (g == NULL) {
		if (ctx_member(job, "source") == NULL)
			ctx_missing(c, job, "jobs.*.source", NULL);
		return;
	}
	s->line = ctx_line(c, g);
	if (ctx_get_str(c, g, "jobs.*.source.type", false, &str) != 0)
		return;
	if (strcmp(str, "http") == 0)
		s->type = CONN_HTTP;
	else if (strcmp(str, "postgresql") == 0)
		s->type = CONN_POSTGRESQL;
	else if (strcmp(str, "file") == 0)
		s->type = CONN_FILE;
	else {
		ctx_errf(c, ctx_line(c, ctx_member(g, "type")), "unknown source type '%s' "
		    "(expected http, postgresql or file)", str);
		s->type = CONN_HTTP;
		bad = 1;
	}
	if (!bad)
		endpoint_keys(c, g, "jobs.*.source", s->type, str, "source");
	free(str);
	if (bad)
		return;
	if (s->type == CONN_HTTP)
		parse_source_http(c, g, j);
	else if (s->type == CONN_POSTGRESQL)
		parse_source_pg(c, g, j);
	else
		config_source_file_parse(c, g, j);
}
