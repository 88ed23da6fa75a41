/* parse.h - streaming record parser for file sources: CSV, NDJSON, JSON array, gzip or not. */
#ifndef ONESYNC_PARSE_H
#define ONESYNC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "core/util.h"

enum parse_format { PARSE_CSV, PARSE_NDJSON, PARSE_JSON_ARRAY };

struct parse_opts {
	enum parse_format format;
	char	 delimiter;	/* CSV field delimiter; 0 means ',' */
	bool	 gzip;		/* the input is gzip (or zlib): inflated as it streams */
	size_t	 max_record;	/* bytes; 0 means PARSE_MAX_RECORD; a longer record is an error */
	/* CSV: field names the header must hold (borrowed, for the parser's life): a header
	 * without one of them is a fatal error naming them and the header (parser_mismatch). */
	char *const *need;
	size_t	 nneed;
};
#define PARSE_MAX_RECORD	((size_t)16 << 20)

/*
 * One record: rec is borrowed for the call (json_incref to keep it); line is the
 * 1-based line where the record starts (CSV: the physical line, counting newlines
 * embedded in quoted fields). Return 0 to go on, -1 to stop the parser.
 */
typedef int (*parse_record_cb)(void *arg, json_t *rec, long line);

/*
 * A CSV row as its fields, for a reader that can judge a record without building its JSON
 * object (capture's hash of an unchanged record). Field i is column i, named names[i],
 * the bytes data[start .. fend[i]) where start is 0 for the first and fend[i - 1] after;
 * every value is valid UTF-8 (it may hold a NUL, as a JSON string may). parse_row_json
 * builds the record rec_cb would have had: an object of strings, in column order.
 */
struct parse_row {
	char *const	*names;
	size_t		 n;
	const char	*data;
	const size_t	*fend;
};
typedef int (*parse_row_cb)(void *arg, const struct parse_row *, long line);
json_t *parse_row_json(const struct parse_row *);

/*
 * A malformed record or a fatal error; msg starts with "line N: ". After a record
 * error parsing goes on with the next record (CSV: the line after the bad record;
 * NDJSON: the next line); a JSON array cannot resynchronise and stops.
 */
typedef void (*parse_error_cb)(void *arg, long line, const char *msg);

struct parser;

/* The callbacks must not free the parser. */
struct parser *parser_new(const struct parse_opts *, parse_record_cb, parse_error_cb,
    void *arg);
/* CSV: hand each record to row_cb as its fields instead of to rec_cb as an object (set
 * before the first byte is fed). */
void parser_set_row_cb(struct parser *, parse_row_cb);
/* Turn gzip (or zlib) decoding on before the first byte is fed (e.g. the transfer says
 * Content-Encoding: gzip). -1 when bytes were fed already or zlib cannot start. */
int parser_set_gzip(struct parser *) WUR;
/*
 * Feed bytes as they arrive. -1: fatal (corrupt gzip, callback stopped, a broken CSV
 * header or JSON array); every later call returns -1 too. gzip input is held and
 * inflated in steps of at most 64 KB of output (as many records as 64 KB of plain
 * input), one step per call: 1 means some of it waits, to be inflated by parser_step
 * (bytes fed meanwhile wait behind it); 0 that all of it went through.
 */
int parser_feed(struct parser *, const void *data, size_t len) WUR;
/* Inflate the next step of held gzip input: 1 more waits, 0 all went through, -1 fatal. */
int parser_step(struct parser *) WUR;
/* End of input. -1 when the input ended inside a record, a quoted field, the array or
 * the gzip stream (truncated), with an error callback naming the line, or after a
 * fatal error. Input still held is inflated first, whatever its size: a caller that
 * bounds memory calls parser_step until it returns 0. */
int parser_finish(struct parser *) WUR;
long parser_records(const struct parser *);	/* records delivered */
long parser_errors(const struct parser *);	/* error callbacks made */
/* The fatal error was a CSV header without a field of parse_opts.need. */
bool parser_mismatch(const struct parser *);
void parser_free(struct parser *);

/*
 * Values jansson refuses (an integer beyond 64 bits, a number beyond a double, a lone
 * surrogate, invalid UTF-8 or a raw control character in a string, a NUL in a field
 * name, a container deeper than JSON_MEND_DEPTH) would make the whole text unreadable.
 * json_mend() writes the text with each of them replaced by the JSON string
 * JSON_POISON + reason into out and returns how many; 0 (out untouched) when the text
 * needs nothing. Data holding a string that starts with JSON_POISON (U+FDD0, a
 * noncharacter, then "onesyncd:") is taken for such a value: its record fails too.
 * json_poison() is -1 (and *why, "field a.b[2]: reason") for a value holding one.
 */
#define JSON_POISON	"\xef\xb7\x90onesyncd:"
#define JSON_MEND_DEPTH	1000
size_t json_mend(const void *text, size_t len, struct buf *out);
int json_poison(const json_t *, char **why) WUR;
/* Elements of the array at path (jsonx_path_get's syntax) counted on the text, or -1. */
long json_count_at(const void *text, size_t len, const char *path);
/* json_loadb of a text mended first. */
json_t *json_load_mended(const char *, size_t, size_t flags, json_error_t *);

#endif
