/* source.h - reading one page of records from a source. */
#ifndef ONESYNC_SOURCE_H
#define ONESYNC_SOURCE_H

#include <jansson.h>
#include "config.h"

struct source_page {
	json_t	*records;	/* JSON array, owned */
	char	*next_url;	/* absolute URL of the next page (Link header or next field) */
	char	*cursor;	/* next page token (style next, when not a URL) */
	char	*date;		/* the source's Date header */
	char	*log_url;	/* redacted URL of the request */
};

struct source_req;
/* rc 0: page is set (caller owns it: source_page_free). rc -1: err says what and where. */
typedef void (*source_cb)(void *arg, int rc, struct source_page *page, const char *err);

/*
 * Fetch a page: url (when not NULL, e.g. a next link) or the job's rendered URL and query.
 * The callback never runs before this returns; NULL and *err when nothing could be sent.
 */
struct source_req *source_http_fetch(const struct job_conf *, const struct tmpl_vals *,
    const char *url, source_cb, void *arg, char **err);
/* Fetch one record by key with source.fetch; page->records holds it as a 1-element array. */
struct source_req *source_http_fetch_key(const struct job_conf *, const char *key,
    source_cb, void *arg, char **err);
void source_cancel(struct source_req *);
void source_page_free(struct source_page *);

#endif
