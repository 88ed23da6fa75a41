/* modified_filter.h - whether a source applies the watermark filter (modified.sorted). */
#ifndef ONESYNC_MODIFIED_FILTER_H
#define ONESYNC_MODIFIED_FILTER_H

#include "run/run.h"

/*
 * The run's error when the page, asked with modified.sorted from a bound (its text as sent,
 * and its value; NULL text: none), holds a record whose timestamp is below it by whole
 * seconds (or by the bound's own precision when coarser), read in the page's order up to
 * the first record later than the bound (the page is sorted): the source ignores the
 * filter.
 * NULL when the page is fine, was asked without a bound or without a parameter sending
 * {{watermark}}, or comes from a PostgreSQL source.
 */
char *modified_filter_error(struct run *, const struct source_page *, const char *bound_text,
    int64_t bound_ns);

#endif
