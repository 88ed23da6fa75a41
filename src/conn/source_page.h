/* source_page.h - one page of records read from a source, as every source hands it on. */
#ifndef ONESYNC_SOURCE_PAGE_H
#define ONESYNC_SOURCE_PAGE_H

#include <jansson.h>

struct source_page {
	json_t	*records;	/* JSON array, owned */
	char	*next_url;	/* absolute URL of the next page (Link header or next field) */
	char	*cursor;	/* next page token (style next, when not a URL) */
	char	*date;		/* the source's Date header */
	char	*log_url;	/* redacted URL of the request */
};

void source_page_free(struct source_page *);

#endif
