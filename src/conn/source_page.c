/*
 * source_page.c - one page of records read from a source (source_http.c, source_pg.c): the
 * page owns its records and texts until the reader frees it. It knows no source.
 */
#include <stdlib.h>

#include "conn/source_page.h"

void
source_page_free(struct source_page *p)
{
	if (p == NULL)
		return;
	json_decref(p->records);
	free(p->next_url);
	free(p->cursor);
	free(p->date);
	free(p->log_url);
	free(p);
}
