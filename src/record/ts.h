/* ts.h - timestamps taken from records: parse, compare in UTC with full precision, format. */
#ifndef ONESYNC_TS_H
#define ONESYNC_TS_H

#include <jansson.h>
#include <stdint.h>
#include "core/util.h"

enum ts_format {
	TS_RFC3339,	/* RFC 3339 / ISO 8601: any fraction digits, Z or +hh:mm offset, 'T' or ' ' */
	TS_EPOCH,	/* seconds since 1970 (integer, decimal fraction allowed) */
	TS_EPOCH_MS,	/* milliseconds since 1970 */
};

struct ts {
	int64_t	sec;	/* UTC seconds since the epoch */
	int32_t	nsec;	/* 0..999999999 */
};

/* Parse a timestamp from text; 0 ok, -1 malformed. */
int ts_parse(const char *, enum ts_format, struct ts *) WUR;
/* Parse a record value (JSON string, or number for epoch formats); text of it into *text (malloced). */
int ts_from_json(json_t *, enum ts_format, struct ts *, char **text) WUR;
int ts_cmp(struct ts, struct ts);
/* Nanoseconds since the epoch, saturating (fits until 2262). */
int64_t ts_ns(struct ts);
struct ts ts_from_ns(int64_t);
struct ts ts_sub_ms(struct ts, int64_t ms);
/* The step of a timestamp text's last digit, in nanoseconds: a day for a date alone, a second
 * without fraction (a millisecond for an epoch_ms integer), 10^(9-n) with n fraction digits
 * (at least 1); the precision a value was written with. */
int64_t ts_text_unit_ns(const char *, enum ts_format);
/* Format in the job's format (RFC 3339 in UTC with 'Z', as many fraction digits as needed). */
char *ts_format(struct ts, enum ts_format);
int ts_format_parse(const char *name, enum ts_format *) WUR;	/* "rfc3339", "epoch", "epoch_ms" */

#endif
