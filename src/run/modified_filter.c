/*
 * modified_filter.c - whether an HTTP source applies the watermark filter, with
 * modified.sorted (doc/design.md §4.2). Every page is asked again from the watermark; a
 * source that ignores the filter answers its first records again, and each page would
 * read the data set from the start (10.3 million records read for 100,000 in issue 12,
 * delivering half of them again). A seek answer holding a record below the bound it asked
 * from is refused before any of its records is judged. It reads a page, never changes one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"
#include "record/tmpl.h"
#include "record/ts.h"
#include "run/modified_filter.h"
#include "run/run_record.h"

#define NS_PER_SEC	1000000000LL

/* a / b rounded down (b > 0): a time before 1970 goes to the earlier step. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b < 0);
}

/* The source's own value of a record's timestamp, parsed; -1 when it has none. A string is
 * read in place: this runs on every record of every seek page. */
static int
record_ts(const struct modified_conf *m, json_t *rec, struct ts *t)
{
	json_t *tv = jsonx_path_get(rec, m->field);
	char *text;

	if (json_is_string(tv))
		return ts_parse(json_string_value(tv), m->format, t);
	if (tv == NULL || ts_from_json(tv, m->format, t, &text) != 0)
		return -1;
	free(text);
	return 0;
}

/* The query parameters that send {{watermark}}, as the error names them ("'a', 'b'");
 * NULL when none does. */
static char *
filter_params(const struct source_conf *sc)
{
	struct buf b;

	buf_init(&b);
	for (size_t i = 0; i < sc->nquery; i++) {
		if (!(tmpl_uses(sc->query[i].value) & TV_WATERMARK))
			continue;
		buf_printf(&b, "%s'%s'", b.len > 0 ? ", " : "", sc->query[i].name);
	}
	return b.data;
}

char *
modified_filter_error(struct run *r, const struct source_page *page, const char *bound_text,
    int64_t bound_ns)
{
	const struct modified_conf *m = &r->job->modified;
	int64_t unit, bound;
	char *key = NULL, *e = NULL, *params, *err;
	const char *what;
	json_t *rec = NULL, *tv;
	struct ts t;
	size_t i;

	/* The first request has no bound; a PostgreSQL source is read by the query we write. */
	if (!m->sorted || r->job->src.type != CONN_HTTP || bound_text == NULL)
		return NULL;
	/* A request without the filter (no parameter sends it) asked from no bound: the
	 * paging guards (run_page.c) bound such a read. */
	if ((params = filter_params(&r->job->src)) == NULL)
		return NULL;
	/*
	 * Compared by whole seconds, or coarser when the bound was sent coarser (a date): a
	 * source may keep or compare its times with less precision than it writes them, and a
	 * record equal to the bound at that precision is legitimate; so is one equal to it (a
	 * tie read again, a step inside it). One that ignores the filter answers records far
	 * below: its oldest ones, first. The answer is sorted (modified.sorted says so): past
	 * its first record at or above the bound none is below, and a page that applies the
	 * filter costs one record's look (every record was 1.7% of a first sync's CPU).
	 */
	unit = ts_text_unit_ns(bound_text, m->format);
	if (unit < NS_PER_SEC)
		unit = NS_PER_SEC;
	bound = floor_div(bound_ns, unit);
	json_array_foreach(page->records, i, rec) {
		if (record_ts(m, rec, &t) != 0)
			continue;	/* it fails alone when the page is judged */
		if (floor_div(ts_ns(t), unit) < bound)
			break;
		if (ts_ns(t) > bound_ns) {
			i = json_array_size(page->records);
			break;
		}
	}
	if (i == json_array_size(page->records)) {
		free(params);
		return NULL;
	}
	if (run_record_key(r, rec, &key, &e) != 0) {
		free(key);
		key = xasprintf("%zu", i);
	}
	free(e);
	tv = jsonx_path_get(rec, m->field);
	what = json_is_string(tv) ? json_string_value(tv) : NULL;
	e = what == NULL ? json_dumps(tv, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	err = xasprintf("job %s: GET %s asked for %s from '%s' and answered record %s (element "
	    "%zu of the page) with %s '%.64s', earlier: the source ignores the filter parameter "
	    "%s (source.query); with modified.sorted every page would read the data again from "
	    "its start. The page is not taken", r->job->name, page->log_url, m->field,
	    bound_text, key, i, m->field, what != NULL ? what : e != NULL ? e : "?", params);
	free(params);
	free(key);
	free(e);
	return err;
}
