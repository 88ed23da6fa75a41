/*
 * fuzz_parse.h - the body shared by the parser harnesses (fuzz_csv.c, fuzz_ndjson.c,
 * fuzz_json_array.c). Input: two control bytes, then the data. The data is parsed
 * whole, in two chunks split where the control bytes say, optionally byte by byte,
 * and optionally gzip-compressed in two chunks; every outcome (records, errors,
 * return values) must be identical, or the harness traps. CSV is parsed once more with
 * its rows as fields (parser_set_row_cb): the same records, and each row's hash and key
 * from canon_row equal to canon_hash's and canon_record_key's of its object.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "record/canon.h"
#include "record/parse.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fz_out {
	struct buf	 log;
	long		 cb_records, cb_errors;
};

static int
fz_record(void *arg, json_t *rec, long line)
{
	struct fz_out	*o = arg;
	char		*s;

	if (!json_is_object(rec) || line < 1)
		__builtin_trap();
	s = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
	buf_printf(&o->log, "%ld %s\n", line, s ? s : "?");
	free(s);
	o->cb_records++;
	return 0;
}

static void
fz_error(void *arg, long line, const char *msg)
{
	struct fz_out *o = arg;

	if (line < 1 || strncmp(msg, "line ", 5) != 0)
		__builtin_trap();
	buf_printf(&o->log, "E%ld %s\n", line, msg);
	o->cb_errors++;
}

/* canon_row against the general path, for one plan of the row's header. */
static void
fz_canon(const struct parse_row *row, json_t *rec, char *const *key, char *const *fields,
    size_t nfields, char *const *exclude, size_t nexclude)
{
	struct canon_plan *pl = canon_plan_new(row->names, row->n, key, 1, fields, nfields,
	    exclude, nexclude);
	char h[CANON_HASH_LEN], want[CANON_HASH_LEN], *k = NULL, *err = NULL, *why = NULL;
	const char *rk;
	size_t rklen;
	int poisoned = json_poison(rec, &why), keyed;

	free(why);
	keyed = canon_record_key(rec, key, 1, &k, &err);
	free(err);
	canon_hash(rec, fields, nfields, exclude, nexclude, want);
	if (pl == NULL) {
		/* only a dotted or poisoned name takes the general path */
		bool plain = strchr(key[0], '.') == NULL && strlen(key[0]) < 256;

		for (size_t i = 0; i < row->n; i++)
			if (strncmp(row->names[i], JSON_POISON, sizeof JSON_POISON - 1) == 0)
				plain = false;
		for (size_t i = 0; i < nfields; i++)
			if (strchr(fields[i], '.') != NULL || strlen(fields[i]) >= 256)
				plain = false;
		if (plain)
			__builtin_trap();
	} else if (canon_row(pl, row, h, &rk, &rklen) == 0) {
		if (poisoned != 0 || keyed != 0 || strcmp(h, want) != 0 ||
		    strlen(k) != rklen || memcmp(k, rk, rklen) != 0)
			__builtin_trap();
	} else if (poisoned == 0 && keyed == 0)
		__builtin_trap();
	free(k);
	canon_plan_free(pl);
}

static int fz_record(void *, json_t *, long);

/* A CSV row as fields: the same record as an object, and canon_row checked. */
static int
fz_row(void *arg, const struct parse_row *row, long line)
{
	json_t *rec = parse_row_json(row);
	char *const *nm = row->names;
	int r;

	if (row->n > 0) {
		fz_canon(row, rec, nm, NULL, 0, NULL, 0);
		fz_canon(row, rec, nm + row->n - 1, NULL, 0, nm, row->n > 1 ? 1 : 0);
		fz_canon(row, rec, nm, nm + row->n / 2, row->n - row->n / 2, nm + row->n - 1, 1);
	}
	r = fz_record(arg, rec, line);
	json_decref(rec);
	return r;
}

/* Parse data fed at the given cut points (sorted, within len); the log of what came out. */
static char *
fz_run(const struct parse_opts *opts, const uint8_t *data, size_t len, const size_t *cuts,
    size_t ncuts, size_t step, bool rows)
{
	struct fz_out	 o;
	struct parser	*p;
	size_t		 off = 0, end, i = 0;
	int		 rf = 0, rfin;

	memset(&o, 0, sizeof(o));
	buf_init(&o.log);
	buf_adds(&o.log, "");
	if ((p = parser_new(opts, fz_record, fz_error, &o)) == NULL)
		__builtin_trap();
	if (rows)
		parser_set_row_cb(p, fz_row);
	while (off < len && rf == 0) {
		if (step > 0)
			end = off + step < len ? off + step : len;
		else
			end = i < ncuts ? cuts[i++] : len;
		rf = parser_feed(p, data + off, end - off);
		while (rf == 1)		/* gzip: inflated in bounded steps */
			rf = parser_step(p);
		off = end;
	}
	rfin = parser_finish(p);
	if (rf == -1 && rfin != -1)
		__builtin_trap();
	if (parser_records(p) != o.cb_records || parser_errors(p) != o.cb_errors)
		__builtin_trap();
	buf_printf(&o.log, "feed %d finish %d\n", rf, rfin);
	parser_free(p);
	return buf_steal(&o.log);
}

/* gzip of data (windowBits 31); NULL when it does not fit the bound. */
static uint8_t *
fz_gzip(const uint8_t *data, size_t len, size_t *zlen)
{
	z_stream	 z;
	size_t		 cap = compressBound(len) + 64;
	uint8_t		*out = xmalloc(cap);

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		__builtin_trap();
	z.next_in = (uint8_t *)data;
	z.avail_in = len;
	z.next_out = out;
	z.avail_out = cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		__builtin_trap();
	*zlen = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static void
fz_parse(enum parse_format format, const uint8_t *in, size_t size)
{
	static const char	 delims[] = { ',', ';', '\t', '|' };
	struct parse_opts	 opts = { .format = format };
	const uint8_t		*data;
	size_t			 len, cut, zlen, zcut;
	uint8_t			 ctl, *z;
	char			*whole, *other;

	if (size < 2)
		return;
	ctl = in[0];
	data = in + 2;
	len = size - 2;
	cut = (size_t)in[1] * len / 255;	/* 0..len */
	opts.delimiter = delims[ctl & 3];
	if (ctl & 4)
		opts.max_record = 1 + (in[1] & 63);	/* exercise the record limit */

	whole = fz_run(&opts, data, len, NULL, 0, 0, false);
	other = fz_run(&opts, data, len, &cut, 1, 0, false);
	if (strcmp(whole, other) != 0)
		__builtin_trap();
	free(other);
	if (format == PARSE_CSV) {
		other = fz_run(&opts, data, len, &cut, 1, 0, true);
		if (strcmp(whole, other) != 0)
			__builtin_trap();
		free(other);
	}
	if (ctl & 8) {
		other = fz_run(&opts, data, len, NULL, 0, 1, false);
		if (strcmp(whole, other) != 0)
			__builtin_trap();
		free(other);
	}
	if (ctl & 16) {
		/* The same data gzip-compressed, in two chunks: the same outcome. */
		z = fz_gzip(data, len, &zlen);
		zcut = zlen ? in[1] * 7 % (zlen + 1) : 0;
		opts.gzip = true;
		other = fz_run(&opts, z, zlen, &zcut, 1, 0, false);
		if (strcmp(whole, other) != 0)
			__builtin_trap();
		free(other);
		free(z);
	}
	if (ctl & 32) {
		/* The raw data as if it were gzip: never a crash. */
		opts.gzip = true;
		free(fz_run(&opts, data, len, &cut, 1, 0, false));
	}
	free(whole);
}
