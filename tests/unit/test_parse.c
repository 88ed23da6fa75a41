/* test_parse.c - the streaming record parser: CSV, NDJSON, JSON array, gzip, chunking. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "record/json.h"
#include "record/parse.h"
#include "core/util.h"

/* What a parse produced: every record and error in order, as text. */
struct outcome {
	struct buf	 log;
	int		 feed;		/* first -1 from parser_feed, else 0 */
	int		 finish;
	long		 records, errors;
	int		 stop_after;	/* the record callback returns -1 at this record (0: never) */
	int		 seen;
};

static int
on_record(void *arg, json_t *rec, long line)
{
	struct outcome	*o = arg;
	char		*s;

	s = json_dumps(rec, JSON_COMPACT);
	buf_printf(&o->log, "%ld %s\n", line, s);
	free(s);
	if (++o->seen == o->stop_after)
		return -1;
	return 0;
}

/* parse_row_cb: the record as an object, logged the same way. */
static int
on_row(void *arg, const struct parse_row *row, long line)
{
	json_t	*rec = parse_row_json(row);
	int	 r = on_record(arg, rec, line);

	json_decref(rec);
	return r;
}

static bool rows_mode;	/* run() hands CSV records as fields (parser_set_row_cb) */

static void
on_error(void *arg, long line, const char *msg)
{
	struct outcome *o = arg;

	buf_printf(&o->log, "E%ld %s\n", line, msg);
}

/* Parse in with opts, fed in chunks of chunk bytes (0: whole). Caller frees o->log. */
static void
run(const struct parse_opts *opts, const void *in, size_t len, size_t chunk, struct outcome *o)
{
	struct parser	*p;
	size_t		 off, n;
	int		 r, stop = o->stop_after;

	memset(o, 0, sizeof(*o));
	o->stop_after = stop;
	buf_init(&o->log);
	buf_adds(&o->log, "");
	p = parser_new(opts, on_record, on_error, o);
	assert_non_null(p);
	if (rows_mode)
		parser_set_row_cb(p, on_row);
	if (chunk == 0)
		chunk = len ? len : 1;
	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		/* gzip: each step inflates at most 64 KB, as source_file.c steps */
		for (r = parser_feed(p, (const char *)in + off, n); r == 1; r = parser_step(p))
			;
		if (r == -1) {
			o->feed = -1;
			break;
		}
	}
	o->finish = parser_finish(p);
	o->records = parser_records(p);
	o->errors = parser_errors(p);
	parser_free(p);
}

static struct parse_opts
opts_of(enum parse_format f)
{
	struct parse_opts o = { .format = f };

	return o;
}

/* Parse whole and in chunks of 1 and 7 bytes, and CSV with its rows as fields: the outcomes
 * must be identical. */
static void
run_all(const struct parse_opts *opts, const char *in, size_t len, struct outcome *o)
{
	static const size_t	 sizes[] = { 1, 7, 64 * 1024 + 3, 0 };
	struct outcome		 c;

	run(opts, in, len, 0, o);
	for (size_t i = 0; i < NELEM(sizes); i++) {
		if (sizes[i] == 0 && opts->format != PARSE_CSV)
			continue;
		c.stop_after = o->stop_after;
		rows_mode = sizes[i] == 0;
		run(opts, in, len, sizes[i], &c);
		rows_mode = false;
		assert_string_equal(c.log.data, o->log.data);
		assert_int_equal(c.feed, o->feed);
		assert_int_equal(c.finish, o->finish);
		assert_int_equal(c.records, o->records);
		assert_int_equal(c.errors, o->errors);
		buf_free(&c.log);
	}
}

/* Parse a NUL-terminated input in every chunking; expect the log and finish result. */
static void
expect(enum parse_format f, const char *in, const char *log, int finish)
{
	struct parse_opts	opts = opts_of(f);
	struct outcome		o = { 0 };

	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data, log);
	assert_int_equal(o.finish, finish);
	buf_free(&o.log);
}

/* gzip (windowBits 31) of in; *outlen set. */
static unsigned char *
gzip_of(const void *in, size_t len, size_t *outlen)
{
	z_stream	 z;
	unsigned char	*out;
	size_t		 cap = compressBound(len) + 64;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	out = xmalloc(cap);
	z.next_in = (unsigned char *)in;
	z.avail_in = len;
	z.next_out = out;
	z.avail_out = cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static void
test_csv_basic(void **state)
{
	(void)state;
	expect(PARSE_CSV, "id,name,note\r\n1,Ann,\"says \"\"hi\"\", ok\"\r\n2,,x\r\n",
	    "2 {\"id\":\"1\",\"name\":\"Ann\",\"note\":\"says \\\"hi\\\", ok\"}\n"
	    "3 {\"id\":\"2\",\"name\":\"\",\"note\":\"x\"}\n", 0);
	/* LF line ends, no line end after the last record, values stay strings. */
	expect(PARSE_CSV, "n,b\n007,true\n1.5,null",
	    "2 {\"n\":\"007\",\"b\":\"true\"}\n3 {\"n\":\"1.5\",\"b\":\"null\"}\n", 0);
	/* A header only: no records, no error. */
	expect(PARSE_CSV, "a,b\n", "", 0);
	/* A quoted header name; an empty quoted value. */
	expect(PARSE_CSV, "\"a,1\",b\n\"\",\"\"\n", "2 {\"a,1\":\"\",\"b\":\"\"}\n", 0);
	/* Trailing empty field. */
	expect(PARSE_CSV, "a,b\nx,\n", "2 {\"a\":\"x\",\"b\":\"\"}\n", 0);
}

static void
test_csv_lines(void **state)
{
	(void)state;
	/* Embedded newlines count toward the physical line of the next record. */
	expect(PARSE_CSV, "id,text\n1,\"one\ntwo\r\nthree\"\n2,\"a,b\"\n3,x\n",
	    "2 {\"id\":\"1\",\"text\":\"one\\ntwo\\r\\nthree\"}\n"
	    "5 {\"id\":\"2\",\"text\":\"a,b\"}\n"
	    "6 {\"id\":\"3\",\"text\":\"x\"}\n", 0);
	/* A multi-line header. */
	expect(PARSE_CSV, "\"a\nb\",c\n1,2\n", "3 {\"a\\nb\":\"1\",\"c\":\"2\"}\n", 0);
	/* An error names the line where the bad record starts. */
	expect(PARSE_CSV, "a,b\n\"x\ny\",1,2\n3,4\n",
	    "E2 line 2: 3 fields, the header has 2\n4 {\"a\":\"3\",\"b\":\"4\"}\n", 0);
}

static void
test_csv_blank_lines(void **state)
{
	(void)state;
	/* Empty lines at the very end are not records. */
	expect(PARSE_CSV, "a,b\n1,2\n\n", "2 {\"a\":\"1\",\"b\":\"2\"}\n", 0);
	expect(PARSE_CSV, "a,b\r\n1,2\r\n\r\n\r\n", "2 {\"a\":\"1\",\"b\":\"2\"}\n", 0);
	/* In the middle an empty line is a row of one empty field. */
	expect(PARSE_CSV, "a,b\n1,2\n\n3,4\n",
	    "2 {\"a\":\"1\",\"b\":\"2\"}\nE3 line 3: 1 field, the header has 2\n"
	    "4 {\"a\":\"3\",\"b\":\"4\"}\n", 0);
	expect(PARSE_CSV, "a\n1\n\n2\n\n",
	    "2 {\"a\":\"1\"}\n3 {\"a\":\"\"}\n4 {\"a\":\"2\"}\n", 0);
}

static void
test_csv_field_count(void **state)
{
	(void)state;
	expect(PARSE_CSV, "a,b,c,d\n1,2,3,4\n1,2,3,4,5\n1,2\n5,6,7,8\n",
	    "2 {\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\"}\n"
	    "E3 line 3: 5 fields, the header has 4\n"
	    "E4 line 4: 2 fields, the header has 4\n"
	    "5 {\"a\":\"5\",\"b\":\"6\",\"c\":\"7\",\"d\":\"8\"}\n", 0);
}

/* A header without a field the job reads: fatal before any record, naming both. */
static void
test_csv_header_need(void **state)
{
	static char *const need[] = { "id", "price", "name" };
	struct parse_opts	opts = opts_of(PARSE_CSV);
	struct outcome		o = { 0 };
	const char		*in = "id,name,Price_EUR\n1,a,2\n";
	struct parser		*p;

	(void)state;
	opts.need = need;
	opts.nneed = NELEM(need);
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.feed, -1);
	assert_int_equal(o.finish, -1);
	assert_int_equal(o.records, 0);
	assert_string_equal(o.log.data, "E1 line 1: the header row lacks the field \"price\" that "
	    "the job reads (its key, destination.columns, capture.fields or a template); the "
	    "header is: id,name,Price_EUR\n");
	buf_free(&o.log);
	/* Two missing, a header without a line end. */
	in = "ID,cost";
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.finish, -1);
	assert_string_equal(o.log.data, "E1 line 1: the header row lacks the fields \"id\", "
	    "\"price\", \"name\" that the job reads (its key, destination.columns, "
	    "capture.fields or a template); the header is: ID,cost\n");
	buf_free(&o.log);
	p = parser_new(&opts, on_record, on_error, &o);
	buf_init(&o.log);
	assert_int_equal(parser_feed(p, in, strlen(in)), 0);
	assert_int_equal(parser_finish(p), -1);
	assert_true(parser_mismatch(p));
	parser_free(p);
	buf_free(&o.log);
	/* Every field there, in another order, with more: records as usual. */
	in = "x,name,price,id\n0,a,2,1\n";
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.finish, 0);
	assert_int_equal(o.records, 1);
	buf_free(&o.log);
}

static void
test_csv_header_errors(void **state)
{
	struct parse_opts	opts = opts_of(PARSE_CSV);
	struct outcome		o = { 0 };
	const char		*in = "id,name,id\n1,2,3\n";

	(void)state;
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.feed, -1);
	assert_int_equal(o.finish, -1);
	assert_int_equal(o.records, 0);
	assert_string_equal(o.log.data, "E1 line 1: column 3 of the header repeats the name "
	    "\"id\" of column 1\n");
	buf_free(&o.log);

	in = "id,,x\n1,2,3\n";
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.feed, -1);
	assert_string_equal(o.log.data, "E1 line 1: column 2 of the header has no name\n");
	buf_free(&o.log);

	/* Empty input: no header. */
	expect(PARSE_CSV, "", "E1 line 1: the input is empty: no header row\n", -1);
	expect(PARSE_CSV, "\n\n", "E3 line 3: the input is empty: no header row\n", -1);
	/* An empty first line is an empty header. */
	in = "\nid\n1\n";
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.feed, -1);
	assert_string_equal(o.log.data, "E1 line 1: column 1 of the header has no name\n");
	buf_free(&o.log);
}

static void
test_csv_quotes(void **state)
{
	(void)state;
	/* A quote in the middle of an unquoted field: that row only. */
	expect(PARSE_CSV, "a,b\n1,x\"y\n2,z\n",
	    "E2 line 2: a quote inside the unquoted field 2: row skipped\n"
	    "3 {\"a\":\"2\",\"b\":\"z\"}\n", 0);
	/* Text after a closing quote. */
	expect(PARSE_CSV, "a,b\n\"1\"x,y\n2,z\n",
	    "E2 line 2: 'x' after the closing quote of field 1: row skipped\n"
	    "3 {\"a\":\"2\",\"b\":\"z\"}\n", 0);
	/* An unclosed quote running to the end: named at finish, truncated. */
	expect(PARSE_CSV, "a,b\n1,2\n3,\"four\nfive\n6,7\n",
	    "2 {\"a\":\"1\",\"b\":\"2\"}\n"
	    "E3 line 3: the quoted field that opens here is not closed at the end of the "
	    "input (truncated?)\n", -1);
}

static void
test_csv_delimiter_bom(void **state)
{
	struct parse_opts	opts = opts_of(PARSE_CSV);
	struct outcome		o = { 0 };
	const char		*in = "a;b\n\"1;2\";3\n";

	(void)state;
	opts.delimiter = ';';
	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data, "2 {\"a\":\"1;2\",\"b\":\"3\"}\n");
	buf_free(&o.log);
	opts.delimiter = '\t';
	in = "a\tb\nx y\t,\n";
	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data, "2 {\"a\":\"x y\",\"b\":\",\"}\n");
	buf_free(&o.log);
	opts.delimiter = '"';
	assert_null(parser_new(&opts, on_record, on_error, NULL));

	/* A UTF-8 BOM at the start is skipped; elsewhere it is data. */
	expect(PARSE_CSV, "\xef\xbb\xbfid,n\n1,\xef\xbb\xbf\n",
	    "2 {\"id\":\"1\",\"n\":\"\xef\xbb\xbf\"}\n", 0);
	/* A lone BOM prefix is data (here: not valid UTF-8 in a name). */
	expect(PARSE_CSV, "\xef\xbbx\n1\n", "E1 line 1: the name of column 1 of the header "
	    "is not valid UTF-8 text\n", -1);
	expect(PARSE_NDJSON, "\xef\xbb\xbf{\"a\":1}\n", "1 {\"a\":1}\n", 0);
	expect(PARSE_JSON_ARRAY, "\xef\xbb\xbf[{\"a\":1}]", "1 {\"a\":1}\n", 0);
}

static void
test_csv_truncated(void **state)
{
	static const char	 full[] = "id,name,city\n1,Ann,Oslo\n2,\"Bo\nB\",Rome\n3,Cy,Lima\n";
	struct parse_opts	 opts = opts_of(PARSE_CSV);
	struct outcome		 o = { 0 };
	size_t			 cut;

	(void)state;
	/* Cut inside a record: the partial record is never delivered. */
	expect(PARSE_CSV, "id,name,city\n1,Ann,Oslo\n2,Bo",
	    "2 {\"id\":\"1\",\"name\":\"Ann\",\"city\":\"Oslo\"}\n"
	    "E3 line 3: the input ends inside this record (2 of 3 fields; truncated?)\n", -1);
	/* Cut inside a quoted field. */
	expect(PARSE_CSV, "id,name,city\n1,Ann,Oslo\n2,\"Bo\nB",
	    "2 {\"id\":\"1\",\"name\":\"Ann\",\"city\":\"Oslo\"}\n"
	    "E3 line 3: the quoted field that opens here is not closed at the end of the "
	    "input (truncated?)\n", -1);
	/* Every cut: never more records than before the cut, never a partial one. */
	for (cut = 0; cut <= sizeof(full) - 1; cut++) {
		run_all(&opts, full, cut, &o);
		assert_true(o.records <= 3);
		assert_null(strstr(o.log.data, "\"Bo\"}"));
		if (o.finish == 0)
			assert_int_equal(o.errors, 0);
		buf_free(&o.log);
	}
}

static void
test_csv_limits(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_CSV);
	struct outcome		 o = { 0 };
	const char		*in = "a,b\n1,2\n333333333333,4\n5,6\n\"7777\n77777\",8\n9,\xff\n";

	(void)state;
	opts.max_record = 10;
	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data,
	    "2 {\"a\":\"1\",\"b\":\"2\"}\n"
	    "E3 line 3: the record is longer than 10 bytes (max_record): skipped\n"
	    "4 {\"a\":\"5\",\"b\":\"6\"}\n"
	    "E5 line 5: the record is longer than 10 bytes (max_record): skipped\n"
	    /* as json_mend marks such a string: the record fails alone, under its key */
	    "7 {\"a\":\"9\",\"b\":\"" JSON_POISON "a string holds invalid UTF-8 (byte 0xff)\"}\n");
	assert_int_equal(o.finish, 0);
	assert_int_equal(o.errors, 2);
	buf_free(&o.log);
}

static void
test_csv_stop(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_CSV);
	struct outcome		 o = { .stop_after = 2 };
	const char		*in = "a\n1\n2\n3\n";

	(void)state;
	run_all(&opts, in, strlen(in), &o);
	assert_int_equal(o.feed, -1);
	assert_int_equal(o.finish, -1);
	assert_int_equal(o.records, 2);
	assert_int_equal(o.errors, 0);
	buf_free(&o.log);
}

static void
test_ndjson(void **state)
{
	(void)state;
	expect(PARSE_NDJSON, "{\"a\":1}\n\n  \r\n{\"b\":[1,2]}\r\n{\"c\":\"x\\ny\"}",
	    "1 {\"a\":1}\n4 {\"b\":[1,2]}\n5 {\"c\":\"x\\ny\"}\n", 0);
	/* Not an object, or not JSON: that line only. */
	expect(PARSE_NDJSON, "[1]\n{\"a\":\n\"s\"\n{\"ok\":true}\n",
	    "E1 line 1: an array, not a JSON object\n"
	    "E2 line 2: unexpected token near end of file (column 5)\n"
	    "E3 line 3: a string, not a JSON object\n"
	    "4 {\"ok\":true}\n", 0);
	expect(PARSE_NDJSON, "{\"a\":1} x\n", "E1 line 1: end of file expected near 'x' "
	    "(column 9)\n", 0);
	/* Truncated: the last line is cut. */
	expect(PARSE_NDJSON, "{\"a\":1}\n{\"b\":",
	    "1 {\"a\":1}\nE2 line 2: unexpected token near end of file (column 5) (the "
	    "input ends inside this record: truncated?)\n", -1);
	expect(PARSE_NDJSON, "", "", 0);
}

static void
test_ndjson_limits(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_NDJSON);
	struct outcome		 o = { 0 };
	const char		*in = "{\"a\":1}\n{\"a\":\"long long\"}\n{\"b\":2}\n{\"a\":\"more!\"}";

	(void)state;
	opts.max_record = 12;
	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data, "1 {\"a\":1}\n"
	    "E2 line 2: the record is longer than 12 bytes (max_record): skipped\n"
	    "3 {\"b\":2}\n"
	    "E4 line 4: the record is longer than 12 bytes (max_record): skipped (the input "
	    "ends inside this record: truncated?)\n");
	assert_int_equal(o.finish, -1);
	buf_free(&o.log);
}

static void
test_json_array(void **state)
{
	(void)state;
	expect(PARSE_JSON_ARRAY, " \n[\n {\"a\":\"}]\\\"{\"} ,\n\t{\"b\":{\"c\":[1,{}]}}\r\n]\n",
	    "3 {\"a\":\"}]\\\"{\"}\n4 {\"b\":{\"c\":[1,{}]}}\n", 0);
	expect(PARSE_JSON_ARRAY, "[]", "", 0);
	expect(PARSE_JSON_ARRAY, "[{\"a\":1},2,\"x\",[{}],null,{\"b\":true}]",
	    "1 {\"a\":1}\n"
	    "E1 line 1: element 2 is a number, not a JSON object\n"
	    "E1 line 1: element 3 is a string, not a JSON object\n"
	    "E1 line 1: element 4 is an array, not a JSON object\n"
	    "E1 line 1: element 5 is null, not a JSON object\n"
	    "1 {\"b\":true}\n", 0);
	/* Broken: stops. */
	expect(PARSE_JSON_ARRAY, "[{\"a\":1},\n{\"a\":tru},{\"b\":1}]",
	    "1 {\"a\":1}\nE2 line 2: element 2: invalid token near 'tru' (line 1 of the "
	    "element, column 8); the array cannot be read past it\n", -1);
	expect(PARSE_JSON_ARRAY, "{\"a\":1}", "E1 line 1: the input is not a JSON array (it "
	    "starts with '{', not '[')\n", -1);
	expect(PARSE_JSON_ARRAY, "[{\"a\":1} {\"b\":2}]", "1 {\"a\":1}\nE1 line 1: '{' after "
	    "element 1 of the JSON array (expected ',' or ']')\n", -1);
	expect(PARSE_JSON_ARRAY, "[{\"a\":1},]", "1 {\"a\":1}\nE1 line 1: ']' where element 2 "
	    "of the JSON array should start\n", -1);
	expect(PARSE_JSON_ARRAY, "[{\"a\":1}]x", "1 {\"a\":1}\nE1 line 1: 'x' after the end of "
	    "the JSON array\n", -1);
	/* Truncated. */
	expect(PARSE_JSON_ARRAY, "[{\"a\":1},\n{\"b\":\"x", "1 {\"a\":1}\nE2 line 2: the input "
	    "ends inside the JSON array, before its closing ']' (truncated?)\n", -1);
	expect(PARSE_JSON_ARRAY, "[{\"a\":1}\n", "1 {\"a\":1}\nE2 line 2: the input ends inside "
	    "the JSON array, before its closing ']' (truncated?)\n", -1);
	expect(PARSE_JSON_ARRAY, "[1", "E1 line 1: the input ends inside the JSON array, "
	    "before its closing ']' (truncated?)\n", -1);
	expect(PARSE_JSON_ARRAY, " ", "E1 line 1: the input is empty: no JSON array\n", -1);
}

static void
test_json_array_limits(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_JSON_ARRAY);
	struct outcome		 o = { 0 };
	const char		*in = "[{\"a\":1},{\"a\":\"long long\"},{\"b\":2}]";

	(void)state;
	opts.max_record = 12;
	run_all(&opts, in, strlen(in), &o);
	assert_string_equal(o.log.data, "1 {\"a\":1}\n"
	    "E1 line 1: element 2 is longer than 12 bytes (max_record): skipped\n"
	    "1 {\"b\":2}\n");
	assert_int_equal(o.finish, 0);
	buf_free(&o.log);
}

/* The same input gzip-compressed gives the same outcome, in every chunking. */
static void
gzip_same(enum parse_format f, const char *in)
{
	struct parse_opts	 opts = opts_of(f);
	struct outcome		 plain = { 0 }, gz = { 0 };
	unsigned char		*z;
	size_t			 zlen;

	run(&opts, in, strlen(in), 0, &plain);
	z = gzip_of(in, strlen(in), &zlen);
	opts.gzip = true;
	run_all(&opts, (const char *)z, zlen, &gz);
	assert_string_equal(gz.log.data, plain.log.data);
	assert_int_equal(gz.finish, plain.finish);
	free(z);
	buf_free(&plain.log);
	buf_free(&gz.log);
}

static void
test_gzip(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_CSV);
	struct outcome		 o = { 0 };
	struct buf		 big, two;
	unsigned char		*z, *z2;
	size_t			 zlen, z2len;

	(void)state;
	gzip_same(PARSE_CSV, "\xef\xbb\xbfid,v\r\n1,\"a\nb\"\r\n2,x\"y\r\n3,z\r\n");
	gzip_same(PARSE_NDJSON, "{\"a\":1}\n[]\n{\"b\":2}\n");
	gzip_same(PARSE_JSON_ARRAY, "[{\"a\":1}, 2, {\"b\":2}]");
	gzip_same(PARSE_CSV, "a,b\n1,\"2");
	gzip_same(PARSE_JSON_ARRAY, "[{\"a\":1},");

	/* Larger than the inflate buffer: every record arrives. */
	buf_init(&big);
	buf_adds(&big, "id,text\n");
	for (int i = 0; i < 20000; i++)
		buf_printf(&big, "%d,\"row %d, with some text\"\n", i, i);
	z = gzip_of(big.data, big.len, &zlen);
	opts.gzip = true;
	run(&opts, z, zlen, 0, &o);
	assert_int_equal(o.records, 20000);
	assert_int_equal(o.finish, 0);
	buf_free(&o.log);
	run(&opts, z, zlen, 1000, &o);
	assert_int_equal(o.records, 20000);
	buf_free(&o.log);

	/* Two gzip members back to back (concatenated files). */
	z2 = gzip_of("3,c\n", 4, &z2len);
	buf_init(&two);
	buf_add(&two, z, zlen);
	buf_add(&two, z2, z2len);
	run(&opts, two.data, two.len, 0, &o);
	assert_int_equal(o.records, 20001);
	assert_int_equal(o.finish, 0);
	buf_free(&o.log);
	buf_free(&two);
	free(z2);

	/* Truncated gzip: an error at finish, never the partial last record. */
	run(&opts, z, zlen / 2, 0, &o);
	assert_int_equal(o.finish, -1);
	assert_non_null(strstr(o.log.data, "the gzip stream ends early (truncated?)"));
	assert_true(o.records < 20000);
	buf_free(&o.log);

	/* Corrupt gzip: fatal at once with a clear message. */
	z[zlen / 2] ^= 0x55;
	z[zlen / 2 + 1] ^= 0x55;
	run(&opts, z, zlen, 0, &o);
	assert_int_equal(o.feed, -1);
	assert_int_equal(o.finish, -1);
	assert_non_null(strstr(o.log.data, "the gzip data is corrupt"));
	buf_free(&o.log);
	run(&opts, big.data, big.len, 0, &o);
	assert_int_equal(o.feed, -1);
	assert_string_equal(o.log.data, "E1 line 1: the gzip data is corrupt (incorrect header "
	    "check); is the file really gzip-compressed?\n");
	buf_free(&o.log);
	free(z);
	buf_free(&big);
}

/* Feed in whole, then step until nothing waits; the most records one call handed on. */
static int
feed_steps(struct parser *p, const void *in, size_t len, struct outcome *o, long *steps)
{
	int	 r, most = 0, before = o->seen;

	*steps = 0;
	for (r = parser_feed(p, in, len); ; r = parser_step(p)) {
		(*steps)++;
		if (o->seen - before > most)
			most = o->seen - before;
		before = o->seen;
		if (r != 1)
			break;
	}
	assert_int_equal(r, 0);
	return most;
}

/*
 * A gzip bomb fed in one chunk (8 MB of CSV in a few KB): every step hands on at most
 * 64 KB of inflated input, so no more records than 64 KB of plain input holds, and all
 * of them arrive, across two members; a line that inflates past max_record is skipped
 * and the records after it arrive.
 */
static void
test_gzip_steps(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_CSV);
	struct outcome		 o = { 0 };
	struct parser		*p;
	struct buf		 big, two;
	unsigned char		*z;
	size_t			 zlen;
	long			 steps;

	(void)state;
	buf_init(&big);
	buf_adds(&big, "id,v\n");
	for (int i = 0; i < 2000000; i++)	/* lines of 4 to 6 bytes */
		buf_printf(&big, "%d,x\n", i % 1000);
	z = gzip_of(big.data, big.len, &zlen);
	assert_true(zlen < big.len / 50);	/* one chunk inflates 50-fold or more */
	opts.gzip = true;
	buf_init(&o.log);
	p = parser_new(&opts, on_record, on_error, &o);
	assert_true(feed_steps(p, z, zlen, &o, &steps) <= 64 * 1024 / 4);
	assert_true(steps >= (long)(big.len / (64 * 1024)));
	assert_int_equal(o.seen, 2000000);
	assert_int_equal(parser_finish(p), 0);
	parser_free(p);

	/* Two members in one chunk: the second one's lines arrive too, as bounded. */
	buf_init(&two);
	buf_add(&two, z, zlen);
	buf_add(&two, z, zlen);
	buf_reset(&o.log);
	o.seen = 0;
	p = parser_new(&opts, on_record, on_error, &o);
	assert_true(feed_steps(p, two.data, two.len, &o, &steps) <= 64 * 1024 / 4);
	assert_int_equal(o.seen, 4000001);	/* the second header is a row */
	assert_int_equal(parser_finish(p), 0);
	parser_free(p);
	buf_free(&two);

	/* Bytes fed while input waits wait behind it: no step, no record (curl may hand
	 * over more of its buffer after a pause). */
	buf_reset(&o.log);
	o.seen = 0;
	p = parser_new(&opts, on_record, on_error, &o);
	assert_int_equal(parser_feed(p, z, zlen / 2), 1);
	steps = o.seen;
	assert_int_equal(parser_feed(p, z + zlen / 2, zlen - zlen / 2), 1);
	assert_int_equal(o.seen, steps);
	assert_true(feed_steps(p, "", 0, &o, &steps) <= 64 * 1024 / 4);
	assert_int_equal(o.seen, 2000000);
	assert_int_equal(parser_finish(p), 0);
	parser_free(p);
	free(z);

	/* One line of 8 MB past a max_record of 1 MB: skipped with an error, never held. */
	buf_reset(&big);
	buf_adds(&big, "id,v\n1,");
	for (int i = 0; i < 8 * 1024; i++)
		buf_printf(&big, "%01024d", 0);
	buf_adds(&big, "\n2,b\n");
	z = gzip_of(big.data, big.len, &zlen);
	opts.max_record = 1 << 20;
	buf_reset(&o.log);
	o.seen = 0;
	p = parser_new(&opts, on_record, on_error, &o);
	(void)feed_steps(p, z, zlen, &o, &steps);
	assert_int_equal(parser_finish(p), 0);
	assert_string_equal(o.log.data, "E2 line 2: the record is longer than 1048576 bytes "
	    "(max_record): skipped\n3 {\"id\":\"2\",\"v\":\"b\"}\n");
	parser_free(p);
	buf_free(&o.log);
	buf_free(&big);
	free(z);
}

/* gzip turned on after parser_new (Content-Encoding: gzip), before the first byte only;
 * a stream cut without its trailer, even at a line end, fails at finish. */
static void
test_set_gzip(void **state)
{
	struct parse_opts opts = { .format = PARSE_NDJSON };
	struct outcome o = { 0 };
	struct parser *p;
	const char *in = "{\"a\":1}\n{\"b\":2}\n";
	unsigned char *z;
	size_t zlen;

	(void)state;
	z = gzip_of(in, strlen(in), &zlen);
	buf_init(&o.log);
	p = parser_new(&opts, on_record, on_error, &o);
	assert_int_equal(parser_set_gzip(p), 0);
	assert_int_equal(parser_set_gzip(p), 0);	/* already on */
	assert_int_equal(parser_feed(p, z, zlen), 0);
	assert_int_equal(parser_finish(p), 0);
	assert_string_equal(o.log.data, "1 {\"a\":1}\n2 {\"b\":2}\n");
	parser_free(p);
	buf_reset(&o.log);

	/* Cut before the 8-byte trailer: every line is there, the end is not. */
	p = parser_new(&opts, on_record, on_error, &o);
	assert_int_equal(parser_set_gzip(p), 0);
	assert_int_equal(parser_feed(p, z, zlen - 8), 0);
	assert_int_equal(parser_finish(p), -1);
	assert_non_null(strstr(o.log.data, "the gzip stream ends early (truncated?)"));
	parser_free(p);
	buf_reset(&o.log);

	/* Too late once bytes were fed. */
	p = parser_new(&opts, on_record, on_error, &o);
	assert_int_equal(parser_feed(p, "{}", 2), 0);
	assert_int_equal(parser_set_gzip(p), -1);
	parser_free(p);
	buf_free(&o.log);
	free(z);
}

/* Feeding after the end or after a fatal error is refused. */
static void
test_lifecycle(void **state)
{
	struct parse_opts	 opts = opts_of(PARSE_NDJSON);
	struct parser		*p;

	(void)state;
	p = parser_new(&opts, NULL, NULL, NULL);
	assert_int_equal(parser_feed(p, "{}\n{}", 5), 0);
	assert_int_equal(parser_finish(p), 0);
	assert_int_equal(parser_records(p), 2);
	assert_int_equal(parser_feed(p, "{}\n", 3), -1);
	assert_int_equal(parser_finish(p), -1);
	parser_free(p);
	parser_free(NULL);
}

/* json_mend: what it rewrites (in), into what (want; NULL: nothing, out untouched). */
static void
mend(const char *in, size_t len, const char *want)
{
	struct buf	 out;
	size_t		 n;

	buf_init(&out);
	n = json_mend(in, len, &out);
	if (want == NULL) {
		assert_int_equal(n, 0);
		assert_int_equal(out.len, 0);
	} else {
		assert_true(n > 0);
		assert_non_null(out.data);
		assert_string_equal(out.data, want);
	}
	buf_free(&out);
}

#define MEND(in, want)	mend(in, sizeof(in) - 1, want)
#define P	"\"" JSON_POISON

/* jsonx_utf8_ok, which judges a CSV value, accepts exactly what json_stringn accepts (the
 * parser made each value with it before): random bytes near the edges of UTF-8. */
static void
test_utf8_ok(void **state)
{
	static const unsigned char edge[] = { 0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2,
	    0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0x9f, 0xa0, 0x8f, 0x90 };
	unsigned char s[24];
	unsigned int seed = 7;
	size_t ok = 0;

	(void)state;
	for (int round = 0; round < 200000; round++) {
		size_t n = (size_t)rand_r(&seed) % sizeof s;
		json_t *j;

		for (size_t i = 0; i < n; i++)
			s[i] = rand_r(&seed) % 3 == 0 ? (unsigned char)rand_r(&seed) :
			    edge[rand_r(&seed) % NELEM(edge)];
		j = json_stringn((const char *)s, n);
		assert_int_equal(jsonx_utf8_ok((const char *)s, n), j != NULL);
		ok += j != NULL;
		json_decref(j);
	}
	assert_true(ok > 1000 && ok < 199000);
	/* long ASCII runs around a bad byte, at every offset of the 8-byte steps */
	memset(s, 'a', sizeof s);
	assert_true(jsonx_utf8_ok((const char *)s, sizeof s));
	for (size_t i = 0; i < sizeof s; i++) {
		s[i] = 0xff;
		assert_false(jsonx_utf8_ok((const char *)s, sizeof s));
		s[i] = 'a';
	}
}

static void
test_json_mend(void **state)
{
	(void)state;
	/* Nothing to do: every value jansson can hold, escapes, pairs, edge integers. */
	MEND("[{\"a\":9223372036854775807,\"b\":-9223372036854775808,\"c\":1.5e300,"
	    "\"d\":\"\\ud83d\\ude00 \xc3\xa9 \xf0\x9f\x98\x80 \\\" \\\\\",\"e\":[true,null]}]", NULL);
	/* Integers beyond 64 bits, a double beyond its range. */
	MEND("[{\"id\":1,\"amount\":123456789012345678901234567890}]",
	    "[{\"id\":1,\"amount\":" P "integer 123456789012345678901234567890 is beyond "
	    "64 bits; onesyncd cannot carry it exactly\"}]");
	MEND("[9223372036854775808,-9223372036854775809,1e999]",
	    "[" P "integer 9223372036854775808 is beyond 64 bits; onesyncd cannot carry it "
	    "exactly\"," P "integer -9223372036854775809 is beyond 64 bits; onesyncd cannot "
	    "carry it exactly\"," P "number 1e999 is beyond the range of a double\"]");
	/* Strings: lone surrogates (high, low, high then not low), invalid UTF-8, overlong,
	 * an encoded surrogate, a raw control character; a NUL in a field name only. */
	MEND("{\"a\":\"x\\ud800\",\"b\":\"\\udc00y\",\"c\":\"\\ud800\\u0041\"}",
	    "{\"a\":" P "a string holds a lone UTF-16 surrogate U+D800\",\"b\":" P
	    "a string holds a lone UTF-16 surrogate U+DC00\",\"c\":" P "a string holds a "
	    "lone UTF-16 surrogate U+D800\"}");
	MEND("[\"\xff\",\"\xc0\xaf\",\"\xed\xa0\x80\",\"\xe2\x82\",\"a\x01\"]",
	    "[" P "a string holds invalid UTF-8 (byte 0xff)\"," P "a string holds invalid "
	    "UTF-8 (byte 0xc0)\"," P "a string holds invalid UTF-8 (byte 0xed)\"," P
	    "a string holds invalid UTF-8 (byte 0xe2)\"," P "a string holds the control "
	    "character 0x01 unescaped\"]");
	MEND("{\"v\":\"\\u0000\"}", NULL);
	MEND("{\"k\\u0000\" :1}", "{" P "a field name holds U+0000\" :1}");
	/* Malformed text is left to jansson: an unterminated string, a cut escape. */
	MEND("[\"abc", NULL);
	MEND("[\"\\u12", NULL);
}

static void
test_json_mend_depth(void **state)
{
	struct buf	 in, want;
	json_t		*v;
	json_error_t	 je;
	char		*why;
	int		 i;

	(void)state;
	/* 5000 levels in field "deep" of the second record: that subtree only. */
	buf_init(&in);
	buf_init(&want);
	buf_adds(&in, "[{\"id\":1},{\"id\":2,\"deep\":");
	for (i = 0; i < JSON_MEND_DEPTH - 2; i++)
		buf_adds(&in, "[");
	buf_adds(&want, in.data);
	buf_adds(&want, P "nesting deeper than 1000 levels\"");
	for (i = 0; i < 5000 - JSON_MEND_DEPTH + 2; i++)
		buf_adds(&in, "[\"]\",");
	buf_adds(&in, "0");
	for (i = 0; i < 5000; i++)
		buf_adds(&in, "]");
	for (i = 0; i < JSON_MEND_DEPTH - 2; i++)
		buf_adds(&want, "]");
	buf_adds(&in, "},{\"id\":3}]");
	buf_adds(&want, "},{\"id\":3}]");
	mend(in.data, in.len, want.data);
	/* Loaded: the records without poison are as sent, the other says why. */
	v = json_load_mended(in.data, in.len, 0, &je);
	assert_non_null(v);
	assert_int_equal(json_array_size(v), 3);
	assert_int_equal(json_poison(json_array_get(v, 0), &why), 0);
	assert_null(why);
	assert_int_equal(json_poison(json_array_get(v, 1), &why), -1);
	assert_true(strncmp(why, "field deep[0][0][0][0]", 22) == 0);
	assert_string_equal(strchr(why, ':'), ": nesting deeper than 1000 levels");
	assert_int_equal(strlen(why), strlen("field ") + 100 + strlen("...: nesting deeper "
	    "than 1000 levels"));
	free(why);
	json_decref(v);
	buf_free(&in);
	buf_free(&want);
}

static void
test_json_poison(void **state)
{
	static const char text[] = "[{\"id\":1,\"a\":{\"b\":[0,123456789012345678901]}},"
	    "{\"id\":\"\\ud800\"},{\"\xff\":1},{\"id\":4,\"x\":\"" JSON_POISON "data\"}]";
	json_error_t	 je;
	json_t		*v;
	char		*why;

	(void)state;
	assert_null(json_loadb(text, sizeof text - 1, 0, &je));	/* jansson alone: no */
	v = json_load_mended(text, sizeof text - 1, 0, &je);
	assert_non_null(v);
	assert_int_equal(json_poison(json_array_get(v, 0), &why), -1);
	assert_string_equal(why, "field a.b[1]: integer 123456789012345678901 is beyond 64 "
	    "bits; onesyncd cannot carry it exactly");
	free(why);
	assert_int_equal(json_poison(json_array_get(v, 1), &why), -1);
	assert_string_equal(why, "field id: a string holds a lone UTF-16 surrogate U+D800");
	free(why);
	assert_int_equal(json_poison(json_array_get(v, 2), &why), -1);
	assert_string_equal(why, "a field name: a string holds invalid UTF-8 (byte 0xff)");
	free(why);
	/* Data that starts like the sentinel fails its record too (documented). */
	assert_int_equal(json_poison(json_array_get(v, 3), &why), -1);
	assert_string_equal(why, "field x: data");
	free(why);
	json_decref(v);
	/* ...and the marker alone, as a value or a field name, still gives a reason (found by
	 * fuzz_json_mend) */
	v = json_loads("{\"id\":5,\"x\":\"" JSON_POISON "\"}", 0, &je);
	assert_int_equal(json_poison(v, &why), -1);
	assert_string_equal(why, "field x: a string starts with U+FDD0 onesyncd:, the marker "
	    "of a value onesyncd refuses");
	free(why);
	json_decref(v);
	v = json_loads("{\"" JSON_POISON "\":1}", 0, &je);
	assert_int_equal(json_poison(v, &why), -1);
	assert_string_equal(why, "a field name: a string starts with U+FDD0 onesyncd:, the "
	    "marker of a value onesyncd refuses");
	free(why);
	json_decref(v);
}

static void
test_mended_files(void **state)
{
	(void)state;
	/* A JSON array file: the element with a big integer fails alone (it reaches the
	 * strategy, which fails it by json_poison), the rest of the array goes on. */
	expect(PARSE_JSON_ARRAY, "[{\"id\":1},{\"id\":2,\"n\":99999999999999999999},{\"id\":3}]",
	    "1 {\"id\":1}\n1 {\"id\":2,\"n\":\"" JSON_POISON "integer 99999999999999999999 is "
	    "beyond 64 bits; onesyncd cannot carry it exactly\"}\n1 {\"id\":3}\n", 0);
	expect(PARSE_NDJSON, "{\"id\":1}\n{\"id\":\"\\udfff\"}\n{\"id\":3}\n",
	    "1 {\"id\":1}\n2 {\"id\":\"" JSON_POISON "a string holds a lone UTF-16 surrogate "
	    "U+DFFF\"}\n3 {\"id\":3}\n", 0);
}

static void
test_json_count_at(void **state)
{
	static const struct { const char *text, *path; long want; } t[] = {
		{ "[1,2,3]", "", 3 },
		{ " [ ] ", "", 0 },
		{ "[{\"a\":[1,2]},\"x,]\",null,-1.5e3,true]", "", 5 },
		{ "{\"data\":[1,2],\"x\":[1,2,3,4]}", "data", 2 },
		{ "{\"x\":[1,2,3,4],\"data\":[{\"id\":1}]}", "data", 1 },
		{ "{\"a\":{\"data\":[1,2,3]},\"data\":[7]}", "data", 1 },
		{ "{\"r\":{\"items\":[1,2,3]}}", "r.items", 3 },
		{ "{\"p\":[[1],[2,3]]}", "p.1", 2 },
		{ "{\"d\":5}", "d", -1 },		/* not an array: jansson's answer says so */
		{ "{\"d\\u0061ta\":[1]}", "data", -1 },	/* escaped key: counted after parsing */
		{ "[1,2", "", -1 },			/* unclosed */
		{ "7", "", -1 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		assert_int_equal(json_count_at(t[i].text, strlen(t[i].text), t[i].path), t[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_basic),
		cmocka_unit_test(test_set_gzip),
		cmocka_unit_test(test_gzip_steps),
		cmocka_unit_test(test_csv_lines),
		cmocka_unit_test(test_csv_blank_lines),
		cmocka_unit_test(test_csv_field_count),
		cmocka_unit_test(test_csv_header_errors),
		cmocka_unit_test(test_csv_header_need),
		cmocka_unit_test(test_csv_quotes),
		cmocka_unit_test(test_csv_delimiter_bom),
		cmocka_unit_test(test_csv_truncated),
		cmocka_unit_test(test_csv_limits),
		cmocka_unit_test(test_csv_stop),
		cmocka_unit_test(test_ndjson),
		cmocka_unit_test(test_ndjson_limits),
		cmocka_unit_test(test_json_array),
		cmocka_unit_test(test_json_array_limits),
		cmocka_unit_test(test_gzip),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_json_mend),
		cmocka_unit_test(test_utf8_ok),
		cmocka_unit_test(test_json_mend_depth),
		cmocka_unit_test(test_json_poison),
		cmocka_unit_test(test_mended_files),
		cmocka_unit_test(test_json_count_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
