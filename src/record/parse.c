/*
 * parse.c - streaming record parser for file sources: CSV (RFC 4180, header row),
 * NDJSON and JSON array, optionally gzip-compressed, fed with bytes as they arrive
 * and emitting one JSON object per record. It holds only the current record (at
 * most max_record bytes) plus a fixed inflate buffer: memory never grows with the
 * number of records. It never does I/O and never logs: errors go to the error
 * callback with the line they concern.
 *
 * Written by hand because no Debian-packaged library streams CSV into jansson;
 * JSON values themselves are parsed by jansson (json_loadb), and the JSON array
 * scanner only finds where each element ends. A value jansson refuses (a too big
 * integer, a lone surrogate...) is first mended into one its record fails on
 * (json_mend, also used for HTTP and PostgreSQL sources), so the rest still goes.
 * One state machine over one record buffer, kept whole (tests/structure names it): the
 * CSV, NDJSON and JSON-array states share the buffer, the line count, the error reports
 * and the gzip step, and cutting them apart would hand that state across files.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "record/json.h"
#include "record/parse.h"

#define ZOUT_SIZE	(64 * 1024)	/* inflated bytes per step: a plain chunk's worth */
#define SHRINK_ABOVE	((size_t)1 << 20)	/* free the record buffer past this size */

/* CSV states. */
enum { CS_REC, CS_FIELD, CS_UNQ, CS_QUO, CS_QQ };
/* JSON array states. */
enum { JA_START, JA_FIRST, JA_NEXT, JA_IN, JA_AFTER, JA_DONE };

/* Byte classes. */
#define C_UNQ	0x01	/* ends a span of an unquoted CSV field: delimiter, '"', CR, LF */
#define C_WS	0x02	/* JSON whitespace */
#define C_SCAL	0x04	/* ends a JSON scalar: whitespace, ',', ']' */

struct parser {
	struct parse_opts o;
	parse_record_cb	 rec_cb;
	parse_row_cb	 row_cb;	/* CSV: records as fields, when set */
	parse_error_cb	 err_cb;
	void		*arg;
	bool		 dead;		/* a fatal error happened: everything returns -1 */
	long		 records, errors;
	long		 line;		/* current physical line, 1-based */
	int		 bom;		/* bytes of a UTF-8 BOM matched; 3 = settled */
	unsigned char	 cls[256];

	z_stream	 z;
	bool		 z_init, z_end;
	bool		 z_full;	/* the last step filled zout: inflate may hold more */
	bool		 fed;		/* bytes were fed: gzip can no longer be turned on */
	unsigned char	*zout;
	unsigned char	*zin;		/* compressed input held: z.next_in points into it */
	size_t		 zin_cap;

	/* The current record: CSV fields back to back, an NDJSON line, a JSON element. */
	char		*rb;
	size_t		 rlen, rcap;
	bool		 toolong;	/* went past max_record: skipped, not stored */
	long		 rline;		/* line where the record starts */

	/* CSV */
	int		 cs;
	bool		 skip_lf;	/* the last line ended with CR: swallow one LF */
	char		*badmsg;	/* first error of the current row */
	size_t		*fend;		/* end offset of each field in rb */
	size_t		 nf, fcap;
	char		**hdr;
	size_t		 nhdr;
	bool		 have_hdr;
	bool		 mismatch;	/* the header lacks a field of o.need */
	long		 nblank, blank_line;	/* empty lines held back (a run at the end is dropped) */
	long		 quote_line;

	/* NDJSON */
	bool		 open;		/* a line has started */

	/* JSON array */
	int		 js;
	long		 depth, elem;
	bool		 in_str, esc, scalar;
};

static int fmt_feed(struct parser *, const unsigned char *, size_t);

/* Report an error for line; counts it. */
PRINTF(3, 4) static void
report(struct parser *p, long line, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg, *full;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	full = xasprintf("line %ld: %s", line, msg);
	p->errors++;
	if (p->err_cb != NULL)
		p->err_cb(p->arg, line, full);
	free(full);
	free(msg);
}

/* Report a fatal error: the parser is dead afterwards. Returns -1. */
PRINTF(3, 4) static int
fatal(struct parser *p, long line, const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	report(p, line, "%s", msg);
	free(msg);
	p->dead = true;
	return -1;
}

/* What the reader answered a record: -1 when it asks to stop (the parser is dead then). */
static int
delivered(struct parser *p, int r)
{
	if (r == -1)
		p->dead = true;
	return r == -1 ? -1 : 0;
}

/* Hand a record to the callback; -1 when it asks to stop. */
static int
deliver(struct parser *p, json_t *rec, long line)
{
	int r = 0;

	p->records++;
	if (p->rec_cb != NULL)
		r = p->rec_cb(p->arg, rec, line);
	json_decref(rec);
	return delivered(p, r);
}

/* Append to the current record, or mark it too long (the bytes are then dropped). */
static inline void
rec_add(struct parser *p, const void *s, size_t n)
{
	if (p->toolong || n == 0)
		return;
	if (p->rlen + n + p->nf > p->o.max_record) {
		p->toolong = true;
		return;
	}
	if (p->rlen + n >= p->rcap) {
		while (p->rlen + n >= p->rcap)
			p->rcap *= 2;
		p->rb = xrealloc(p->rb, p->rcap);
	}
	memcpy(p->rb + p->rlen, s, n);
	p->rlen += n;
}

/* Forget the current record. */
static void
rec_reset(struct parser *p)
{
	p->rlen = 0;
	p->nf = 0;
	p->toolong = false;
	free(p->badmsg);
	p->badmsg = NULL;
	if (p->rcap > SHRINK_ABOVE) {
		p->rcap = 4096;
		p->rb = xrealloc(p->rb, p->rcap);
	}
}

/* The name of a JSON value's type, for messages. */
static const char *
json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "an object";
	case JSON_ARRAY:	return "an array";
	case JSON_STRING:	return "a string";
	case JSON_INTEGER:
	case JSON_REAL:		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:	return "a boolean";
	default:		return "null";
	}
}

/* A printable form of byte c for messages. */
static const char *
show_byte(unsigned char c, char out[8])
{
	if (c >= 0x20 && c < 0x7f)
		snprintf(out, 8, "'%c'", c);
	else
		snprintf(out, 8, "0x%02x", c);
	return out;
}

/* ---- CSV ---- */

/* Remember the first error of the current row; the row is skipped at its end. */
PRINTF(2, 3) static void
csv_bad(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->badmsg != NULL)
		return;
	va_start(ap, fmt);
	p->badmsg = xvasprintf(fmt, ap);
	va_end(ap);
}

/* Close the current field. */
static inline void
csv_field_end(struct parser *p)
{
	if (p->toolong)
		return;
	if (p->rlen + p->nf + 1 > p->o.max_record) {
		p->toolong = true;
		return;
	}
	if (p->nf == p->fcap) {
		p->fcap = p->fcap ? p->fcap * 2 : 32;
		p->fend = xreallocarray(p->fend, p->fcap, sizeof(*p->fend));
	}
	p->fend[p->nf++] = p->rlen;
}

/*
 * Whether the header (names in seen) holds every field of o.need: a header that lacks one
 * is a snapshot that does not match the job (a renamed or dropped column would otherwise
 * be read as null in every row). Fatal, naming the missing fields and the header; returns
 * how many are missing.
 */
static size_t
csv_need(struct parser *p, json_t *seen)
{
	struct buf miss, hdr;
	size_t n = 0;

	buf_init(&miss);
	for (size_t i = 0; i < p->o.nneed; i++) {
		if (json_object_get(seen, p->o.need[i]) != NULL)
			continue;
		buf_printf(&miss, "%s\"%s\"", n++ > 0 ? ", " : "", p->o.need[i]);
	}
	if (n == 0) {
		buf_free(&miss);
		return 0;
	}
	buf_init(&hdr);
	for (size_t i = 0; i < p->nhdr && hdr.len <= 1000; i++)
		buf_printf(&hdr, "%s%s", i > 0 ? "," : "", p->hdr[i]);
	if (hdr.len > 1000) {	/* cut at a character's start */
		hdr.len = 1000;
		while (hdr.len > 0 && ((unsigned char)hdr.data[hdr.len] & 0xc0) == 0x80)
			hdr.len--;
		hdr.data[hdr.len] = '\0';
		buf_adds(&hdr, "...");
	}
	p->mismatch = true;
	fatal(p, p->rline, "the header row lacks the field%s %s that the job reads (its key, "
	    "destination.columns, capture.fields or a template); the header is: %s",
	    n > 1 ? "s" : "", miss.data, hdr.data);
	buf_free(&miss);
	buf_free(&hdr);
	return n;
}

/* The complete first row: field names. Any problem with it is fatal. */
static int
csv_header(struct parser *p)
{
	json_t	*seen, *v;
	size_t	 i, start, len;
	char	*name;
	json_int_t first;

	if (p->toolong)
		return fatal(p, p->rline, "the header row is longer than %zu bytes (max_record)",
		    p->o.max_record);
	if (p->badmsg != NULL)
		return fatal(p, p->rline, "%s in the header row", p->badmsg);
	p->hdr = xcalloc(p->nf, sizeof(*p->hdr));
	seen = json_object();
	for (i = 0; i < p->nf; i++) {
		start = i ? p->fend[i - 1] : 0;
		len = p->fend[i] - start;
		name = xstrndup(p->rb + start, len);
		p->hdr[p->nhdr++] = name;
		if (len == 0) {
			json_decref(seen);
			return fatal(p, p->rline, "column %zu of the header has no name", i + 1);
		}
		if (strlen(name) != len || (v = json_stringn(name, len)) == NULL) {
			json_decref(seen);
			return fatal(p, p->rline, "the name of column %zu of the header is not "
			    "valid UTF-8 text", i + 1);
		}
		json_decref(v);
		if ((v = json_object_get(seen, name)) != NULL) {
			first = json_integer_value(v);
			json_decref(seen);
			return fatal(p, p->rline, "column %zu of the header repeats the name \"%s\" "
			    "of column %lld", i + 1, name, (long long)first);
		}
		json_object_set_new_nocheck(seen, name, json_integer((long long)i + 1));
	}
	i = csv_need(p, seen);
	json_decref(seen);
	if (i > 0)
		return -1;
	p->have_hdr = true;
	return 0;
}

json_t *
parse_row_json(const struct parse_row *row)
{
	json_t *o = json_object();
	size_t start = 0;

	for (size_t i = 0; i < row->n; i++) {
		json_object_set_new_nocheck(o, row->names[i],
		    json_stringn_nocheck(row->data + start, row->fend[i] - start));
		start = row->fend[i];
	}
	return o;
}

/* A row of fields to the reader: as fields (row_cb) or as an object. */
static int
csv_deliver(struct parser *p)
{
	struct parse_row row = { p->hdr, p->nf, p->rb, p->fend };

	if (p->row_cb == NULL)
		return deliver(p, parse_row_json(&row), p->rline);
	p->records++;
	return delivered(p, p->row_cb(p->arg, &row, p->rline));
}

/*
 * A row with a value that is not UTF-8 text: that value becomes the marked string
 * json_mend makes of a JSON string with the same bytes, so the record fails alone, under
 * its key, with the error and hash the same record as an NDJSON line gets (skipping the
 * row instead failed it under its line, and its key's stored state went unnoticed).
 */
static void
csv_mend(struct parser *p)
{
	struct buf b;
	size_t i, start, end, ok;

	buf_init(&b);
	for (i = 0, start = 0; i < p->nf; start = end, i++) {
		end = p->fend[i];
		if ((ok = jsonx_utf8_span(p->rb + start, end - start)) == end - start)
			buf_add(&b, p->rb + start, end - start);
		else
			buf_printf(&b, "%sa string holds invalid UTF-8 (byte 0x%02x)", JSON_POISON,
			    (unsigned char)p->rb[start + ok]);
		p->fend[i] = b.len;	/* the end in the new text */
	}
	free(p->rb);
	p->rb = b.data;
	p->rlen = b.len;
	p->rcap = b.cap;
}

/* A complete row: the header, a record, or an error for the row. Resets the row. */
static int
csv_row(struct parser *p)
{
	size_t	 i, start;
	int	 r = 0;

	if (!p->have_hdr)
		r = csv_header(p);
	else if (p->toolong)
		report(p, p->rline, "the record is longer than %zu bytes (max_record): skipped",
		    p->o.max_record);
	else if (p->badmsg != NULL)
		report(p, p->rline, "%s: row skipped", p->badmsg);
	else if (p->nf != p->nhdr)
		report(p, p->rline, "%zu field%s, the header has %zu", p->nf,
		    p->nf == 1 ? "" : "s", p->nhdr);
	else {
		for (i = 0, start = 0; i < p->nf; start = p->fend[i++])
			if (!jsonx_utf8_ok(p->rb + start, p->fend[i] - start))
				break;
		if (i < p->nf)
			csv_mend(p);
		r = csv_deliver(p);
	}
	rec_reset(p);
	return r;
}

/* Empty lines held back turn out not to be at the end: each is a one-field row. */
static int
csv_flush_blank(struct parser *p)
{
	long n = p->nblank;

	p->nblank = 0;
	for (long i = 0; i < n; i++) {
		p->rline = p->blank_line + i;
		csv_field_end(p);
		if (csv_row(p) == -1)
			return -1;
	}
	return 0;
}

/* The end of a line outside quotes: close the field and the row. */
static int
csv_line_end(struct parser *p, unsigned char c)
{
	p->line++;
	p->skip_lf = c == '\r';
	p->cs = CS_REC;
	csv_field_end(p);
	return csv_row(p);
}

static int
csv_feed(struct parser *p, const unsigned char *s, size_t n)
{
	const unsigned char	*e = s + n, *t, *q, *nl;
	const unsigned char	*cls = p->cls;
	unsigned char		 c;
	char			 sb[8];

	while (s < e) {
		switch (p->cs) {
		case CS_REC:
			if (p->skip_lf) {
				p->skip_lf = false;
				if (*s == '\n') {
					s++;
					continue;
				}
			}
			if (*s == '\n' || *s == '\r') {
				if (p->nblank++ == 0)
					p->blank_line = p->line;
				p->line++;
				p->skip_lf = *s++ == '\r';
				continue;
			}
			if (p->nblank > 0 && csv_flush_blank(p) == -1)
				return -1;
			p->rline = p->line;
			p->cs = CS_FIELD;
			/* FALLTHROUGH */
		case CS_FIELD:
			if (*s == '"') {
				p->quote_line = p->line;
				p->cs = CS_QUO;
				s++;
				continue;
			}
			p->cs = CS_UNQ;
			/* FALLTHROUGH */
		case CS_UNQ:
			for (t = s; t < e && !(cls[*t] & C_UNQ); t++)
				;
			rec_add(p, s, t - s);
			if (t == e)
				return 0;
			s = t + 1;
			if ((c = *t) == (unsigned char)p->o.delimiter) {
				csv_field_end(p);
				p->cs = CS_FIELD;
			} else if (c == '"') {
				csv_bad(p, "a quote inside the unquoted field %zu", p->nf + 1);
				rec_add(p, t, 1);
			} else if (csv_line_end(p, c) == -1)
				return -1;
			break;
		case CS_QUO:
			q = memchr(s, '"', e - s);
			t = q ? q : e;
			for (nl = s; (nl = memchr(nl, '\n', t - nl)) != NULL; nl++)
				p->line++;
			rec_add(p, s, t - s);
			if (q == NULL)
				return 0;
			s = q + 1;
			p->cs = CS_QQ;
			break;
		case CS_QQ:
			/* After a quote in a quoted field: "" or the field's end. */
			if (*s == '"') {
				rec_add(p, s++, 1);
				p->cs = CS_QUO;
				break;
			}
			if (!(cls[*s] & C_UNQ))
				csv_bad(p, "%s after the closing quote of field %zu",
				    show_byte(*s, sb), p->nf + 1);
			p->cs = CS_UNQ;
			break;
		}
	}
	return 0;
}

/* End of input for CSV. */
static int
csv_finish(struct parser *p)
{
	switch (p->cs) {
	case CS_REC:
		break;	/* empty lines at the end are not records */
	case CS_QUO:
		report(p, p->quote_line, "the quoted field that opens here is not closed at the "
		    "end of the input (truncated?)");
		return -1;
	default:
		/* The last line has no line end. */
		csv_field_end(p);
		if (p->have_hdr && !p->toolong && p->nf < p->nhdr) {
			report(p, p->rline, "the input ends inside this record (%zu of %zu "
			    "fields; truncated?)", p->nf, p->nhdr);
			return -1;
		}
		p->cs = CS_REC;
		if (csv_row(p) == -1)
			return -1;
	}
	if (!p->have_hdr) {
		report(p, p->line, "the input is empty: no header row");
		return -1;
	}
	return 0;
}

/* ---- NDJSON ---- */

json_t *
json_load_mended(const char *s, size_t n, size_t flags, json_error_t *je)
{
	struct buf b;
	json_t *v;

	buf_init(&b);
	if (json_mend(s, n, &b) > 0)
		v = json_loadb(b.data, b.len, flags, je);
	else
		v = json_loadb(s, n, flags, je);
	buf_free(&b);
	return v;
}

/* One line: a record, nothing (blank), or an error. 1 when it was an error. */
static int
nd_line(struct parser *p, const char *s, size_t n, const char *note)
{
	json_error_t	 je;
	json_t		*v;
	size_t		 i;

	if (p->toolong) {
		report(p, p->rline, "the record is longer than %zu bytes (max_record): skipped%s",
		    p->o.max_record, note);
		return 1;
	}
	if (n > 0 && s[n - 1] == '\r')
		n--;
	for (i = 0; i < n && (p->cls[(unsigned char)s[i]] & C_WS); i++)
		;
	if (i == n)
		return 0;
	if ((v = json_load_mended(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)) == NULL) {
		report(p, p->rline, "%s (column %d)%s", je.text, je.column, note);
		return 1;
	}
	if (!json_is_object(v)) {
		report(p, p->rline, "%s, not a JSON object%s", json_kind(v), note);
		json_decref(v);
		return 1;
	}
	return deliver(p, v, p->rline);
}

static int
nd_feed(struct parser *p, const unsigned char *s, size_t n)
{
	const unsigned char	*nl;
	size_t			 len;
	int			 r;

	while (n > 0) {
		if (!p->open) {
			p->open = true;
			p->rline = p->line;
		}
		if ((nl = memchr(s, '\n', n)) == NULL) {
			rec_add(p, s, n);
			return 0;
		}
		len = nl - s;
		if (p->rlen == 0 && !p->toolong && len <= p->o.max_record)
			r = nd_line(p, (const char *)s, len, "");	/* whole in this chunk */
		else {
			rec_add(p, s, len);
			r = nd_line(p, p->rb, p->rlen, "");
		}
		if (r == -1)
			return -1;
		rec_reset(p);
		p->open = false;
		p->line++;
		n -= len + 1;
		s = nl + 1;
	}
	return 0;
}

static int
nd_finish(struct parser *p)
{
	int r;

	if (!p->open)
		return 0;
	r = nd_line(p, p->rb, p->rlen, " (the input ends inside this record: truncated?)");
	p->open = false;
	return r == 0 ? 0 : -1;
}

/* ---- JSON array ---- */

/* A complete element: a record, an error, or (unreadable JSON) fatal. */
static int
ja_elem(struct parser *p)
{
	json_error_t	 je;
	json_t		*v;
	int		 r = 0;

	if (p->toolong)
		report(p, p->rline, "element %ld is longer than %zu bytes (max_record): skipped",
		    p->elem, p->o.max_record);
	else if ((v = json_load_mended(p->rb, p->rlen,
	    JSON_DECODE_ANY | JSON_ALLOW_NUL, &je)) == NULL)
		r = fatal(p, p->rline, "element %ld: %s (line %d of the element, column %d); the "
		    "array cannot be read past it", p->elem, je.text, je.line, je.column);
	else if (!json_is_object(v)) {
		report(p, p->rline, "element %ld is %s, not a JSON object", p->elem, json_kind(v));
		json_decref(v);
	} else
		r = deliver(p, v, p->rline);
	rec_reset(p);
	p->js = JA_AFTER;
	return r;
}

/* Scan an element; 1 when it is complete (s advanced past its last byte). */
static int
ja_scan(struct parser *p, const unsigned char **sp, const unsigned char *e)
{
	const unsigned char	*s = *sp, *t = s;
	unsigned char		 c;
	int			 done = 0;

	if (p->scalar) {
		while (t < e && !(p->cls[*t] & C_SCAL))
			t++;
		done = t < e;
	} else {
		while (t < e) {
			c = *t++;
			if (p->in_str) {
				if (p->esc)
					p->esc = false;
				else if (c == '\\')
					p->esc = true;
				else if (c == '"') {
					p->in_str = false;
					if (p->depth == 0) {
						done = 1;
						break;
					}
				} else if (c == '\n')
					p->line++;
			} else if (c == '"')
				p->in_str = true;
			else if (c == '{' || c == '[')
				p->depth++;
			else if (c == '}' || c == ']') {
				if (--p->depth <= 0) {
					done = 1;
					break;
				}
			} else if (c == '\n')
				p->line++;
		}
	}
	rec_add(p, s, t - s);
	*sp = t;
	return done;
}

static int
ja_feed(struct parser *p, const unsigned char *s, size_t n)
{
	const unsigned char	*e = s + n;
	char			 sb[8];

	while (s < e) {
		if (p->js == JA_IN) {
			if (ja_scan(p, &s, e) && ja_elem(p) == -1)
				return -1;
			continue;
		}
		if (p->cls[*s] & C_WS) {
			if (*s++ == '\n')
				p->line++;
			continue;
		}
		switch (p->js) {
		case JA_START:
			if (*s != '[')
				return fatal(p, p->line, "the input is not a JSON array (it starts "
				    "with %s, not '[')", show_byte(*s, sb));
			p->js = JA_FIRST;
			s++;
			break;
		case JA_FIRST:
		case JA_NEXT:
			if (*s == ']' && p->js == JA_FIRST) {
				p->js = JA_DONE;
				s++;
				break;
			}
			if (*s == ']' || *s == ',')
				return fatal(p, p->line, "%s where element %ld of the JSON array "
				    "should start", show_byte(*s, sb), p->elem + 1);
			p->js = JA_IN;
			p->rline = p->line;
			p->elem++;
			p->depth = 0;
			p->in_str = *s == '"';
			p->esc = false;
			p->scalar = *s != '{' && *s != '[' && *s != '"';
			if (p->in_str)
				rec_add(p, s++, 1);
			break;
		case JA_AFTER:
			if (*s != ',' && *s != ']')
				return fatal(p, p->line, "%s after element %ld of the JSON array "
				    "(expected ',' or ']')", show_byte(*s, sb), p->elem);
			p->js = *s++ == ',' ? JA_NEXT : JA_DONE;
			break;
		case JA_DONE:
			return fatal(p, p->line, "%s after the end of the JSON array",
			    show_byte(*s, sb));
		}
	}
	return 0;
}

static int
ja_finish(struct parser *p)
{
	if (p->js == JA_DONE)
		return 0;
	if (p->js == JA_START)
		report(p, p->line, "the input is empty: no JSON array");
	else
		report(p, p->js == JA_IN ? p->rline : p->line, "the input ends inside the JSON "
		    "array, before its closing ']' (truncated?)");
	return -1;
}

/* ---- common ---- */

/* Feed decoded bytes: skip a UTF-8 BOM at the start, then the format's scanner. */
static int
fmt_feed(struct parser *p, const unsigned char *s, size_t n)
{
	static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };
	int	matched;

	if (p->bom < 3) {
		while (p->bom < 3 && n > 0 && *s == bom[p->bom]) {
			p->bom++;
			s++;
			n--;
		}
		if (n == 0)
			return 0;
		if (p->bom < 3) {
			/* Not a BOM after all: the bytes matched so far are data. */
			matched = p->bom;
			p->bom = 3;
			if (matched > 0 && fmt_feed(p, bom, matched) == -1)
				return -1;
		}
	}
	switch (p->o.format) {
	case PARSE_CSV:
		return csv_feed(p, s, n);
	case PARSE_NDJSON:
		return nd_feed(p, s, n);
	default:
		return ja_feed(p, s, n);
	}
}

/* Whether compressed input (or inflated output zlib holds) waits for parser_step. */
static bool
gz_pending(const struct parser *p)
{
	return p->o.gzip && !p->dead && (p->z.avail_in > 0 || p->z_full);
}

/* Hold a chunk of compressed input after what is left of the previous one. */
static void
gz_hold(struct parser *p, const unsigned char *s, size_t n)
{
	z_stream	*z = &p->z;
	size_t		 left = z->avail_in;

	if (left > 0 && z->next_in != p->zin)
		memmove(p->zin, z->next_in, left);
	if (left + n > p->zin_cap) {
		p->zin_cap = left + n;
		p->zin = xrealloc(p->zin, p->zin_cap);
	}
	memcpy(p->zin + left, s, n);
	z->next_in = p->zin;
	z->avail_in = left + n;
}

/*
 * One step of inflate: at most ZOUT_SIZE bytes out, into the format's scanner. A
 * whole chunk inflated at once could be a thousand times its size (a gzip bomb).
 * 1 when more waits, 0 when the held input is used up, -1 fatal.
 */
static int
gz_step(struct parser *p)
{
	z_stream	*z = &p->z;
	size_t		 got;
	uInt		 in_before;
	int		 r;

	if (p->z_end) {
		if (z->avail_in == 0)
			return 0;
		/* Another gzip member follows (concatenated files). */
		if (inflateReset(z) != Z_OK)
			return fatal(p, p->line, "cannot restart the gzip stream");
		p->z_end = false;
	}
	in_before = z->avail_in;
	z->next_out = p->zout;
	z->avail_out = ZOUT_SIZE;
	r = inflate(z, Z_NO_FLUSH);
	if (r == Z_STREAM_END)
		p->z_end = true;
	else if (r != Z_OK && r != Z_BUF_ERROR)
		return fatal(p, p->line, "the gzip data is corrupt (%s); is the file "
		    "really gzip-compressed?", z->msg ? z->msg : zError(r));
	got = ZOUT_SIZE - z->avail_out;
	p->z_full = !p->z_end && z->avail_out == 0;
	if (got > 0 && fmt_feed(p, p->zout, got) == -1)
		return -1;
	if (got == 0 && z->avail_in > 0 && z->avail_in == in_before && !p->z_end)
		return fatal(p, p->line, "the gzip data is corrupt (inflate makes no "
		    "progress); is the file really gzip-compressed?");
	return gz_pending(p) ? 1 : 0;
}

struct parser *
parser_new(const struct parse_opts *o, parse_record_cb rec_cb, parse_error_cb err_cb,
    void *arg)
{
	struct parser	*p;
	unsigned char	 d;

	d = o->delimiter ? (unsigned char)o->delimiter : ',';
	if (o->format == PARSE_CSV && (d == '"' || d == '\r' || d == '\n'))
		return NULL;
	p = xcalloc(1, sizeof(*p));
	p->o = *o;
	p->o.delimiter = (char)d;
	if (p->o.max_record == 0)
		p->o.max_record = PARSE_MAX_RECORD;
	p->rec_cb = rec_cb;
	p->err_cb = err_cb;
	p->arg = arg;
	p->line = 1;
	p->rcap = 4096;
	p->rb = xmalloc(p->rcap);
	p->cls[d] |= C_UNQ;
	p->cls['"'] |= C_UNQ;
	p->cls['\r'] |= C_UNQ | C_WS | C_SCAL;
	p->cls['\n'] |= C_UNQ | C_WS | C_SCAL;
	p->cls[' '] |= C_WS | C_SCAL;
	p->cls['\t'] |= C_WS | C_SCAL;
	p->cls[','] |= C_SCAL;
	p->cls[']'] |= C_SCAL;
	if (o->gzip) {
		p->o.gzip = false;
		if (parser_set_gzip(p) != 0) {
			free(p->rb);
			free(p);
			return NULL;
		}
	}
	return p;
}

void
parser_set_row_cb(struct parser *p, parse_row_cb row_cb)
{
	p->row_cb = row_cb;
}

int
parser_set_gzip(struct parser *p)
{
	if (p->o.gzip)
		return 0;
	if (p->fed || inflateInit2(&p->z, 15 + 32) != Z_OK)
		return -1;
	p->o.gzip = true;
	p->z_init = true;
	p->zout = xmalloc(ZOUT_SIZE);
	return 0;
}

int
parser_step(struct parser *p)
{
	if (p->dead)
		return -1;
	if (!gz_pending(p))
		return 0;
	return gz_step(p);
}

int
parser_feed(struct parser *p, const void *data, size_t len)
{
	bool waiting;

	if (p->dead)
		return -1;
	if (len == 0)
		return gz_pending(p) ? 1 : 0;
	p->fed = true;
	if (!p->o.gzip)
		return fmt_feed(p, data, len);
	/* Input held already: this waits behind it (no step, so no more records). */
	waiting = gz_pending(p);
	gz_hold(p, data, len);
	return waiting ? 1 : gz_step(p);
}

int
parser_finish(struct parser *p)
{
	static const unsigned char bom[3] = { 0xef, 0xbb, 0xbf };
	int	matched, r;

	if (p->dead)
		return -1;
	/* Input still held: inflated here (a caller that bounds memory steps first). */
	while ((r = parser_step(p)) == 1)
		;
	if (r == -1)
		return -1;
	if (p->o.gzip && !p->z_end) {
		report(p, p->line, "the gzip stream ends early (truncated?)");
		p->dead = true;
		return -1;
	}
	if (p->bom > 0 && p->bom < 3) {
		/* The input was a lone prefix of a BOM: those bytes are data. */
		matched = p->bom;
		p->bom = 3;
		if (fmt_feed(p, bom, matched) == -1)
			return -1;
	}
	p->dead = true;	/* nothing may follow the end */
	switch (p->o.format) {
	case PARSE_CSV:
		return csv_finish(p);
	case PARSE_NDJSON:
		return nd_finish(p);
	default:
		return ja_finish(p);
	}
}

long
parser_records(const struct parser *p)
{
	return p->records;
}

long
parser_errors(const struct parser *p)
{
	return p->errors;
}

bool
parser_mismatch(const struct parser *p)
{
	return p->mismatch;
}

void
parser_free(struct parser *p)
{
	size_t i;

	if (p == NULL)
		return;
	if (p->z_init)
		inflateEnd(&p->z);
	free(p->zout);
	free(p->zin);
	free(p->rb);
	free(p->badmsg);
	free(p->fend);
	for (i = 0; i < p->nhdr; i++)
		free(p->hdr[i]);
	free(p->hdr);
	free(p);
}

/* ---- values jansson refuses, one record at a time ---- */

/*
 * jansson refuses a whole text for one value it cannot hold: an integer beyond 64 bits,
 * a number beyond a double, a lone UTF-16 surrogate, invalid UTF-8 or a raw control
 * character in a string, nesting deeper than its limit. json_mend() rewrites each such
 * value (a too-deep container: the whole of it) into a JSON string made of
 * JSON_POISON and the reason, so that the text loads and only the record holding it
 * fails (json_poison()). One pass, no allocation while nothing needs rewriting.
 */

/* The value of 4 hex digits, or -1. */
static long
hex4(const unsigned char *s)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * How many bytes from s on (at most n) are plain string bytes: printable ASCII other than
 * '"' and '\\'. Eight at a time (the classic has-zero-byte test on the word), as both
 * pre-scans of a page (json_mend, json_count_at) spent most of their time here, byte by
 * byte.
 */
static size_t
plain_run(const unsigned char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	size_t i = 0;
	uint64_t w, q, b;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		/* a byte >= 0x80, < 0x20, == '"' or == '\\' stops the run */
		if (((w | ((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) &
		    high) != 0)
			break;
	}
	while (i < n && s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' && s[i] != '\\')
		i++;
	return i;
}

/* Where a string starts and ends; 0 when the text ends inside it. The reason it is
 * unreadable (NULL: it is fine) goes to *why, at most whysz bytes. */
static int
mend_string(const unsigned char *s, size_t n, size_t *end, char *why, size_t whysz,
    bool *bad, bool *nul)
{
	size_t i = 1;

	*bad = false;
	*nul = false;
	while (i < n) {
		unsigned char c;

		i += plain_run(s + i, n - i);
		if (i >= n)
			break;
		c = s[i];
		if (c == '"') {
			*end = i + 1;
			return 1;
		}
		if (c == '\\') {
			long u, lo;

			if (i + 1 >= n)
				return 0;
			if (s[i + 1] != 'u' || i + 6 > n || (u = hex4(s + i + 2)) < 0) {
				i += 2;	/* a short escape (or malformed: jansson says so) */
				continue;
			}
			i += 6;
			if (u == 0)
				*nul = true;
			if (u >= 0xdc00 && u <= 0xdfff && !*bad) {
				snprintf(why, whysz, "a string holds a lone UTF-16 surrogate "
				    "U+%04lX", u);
				*bad = true;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				if (i + 6 <= n && s[i] == '\\' && s[i + 1] == 'u' &&
				    (lo = hex4(s + i + 2)) >= 0xdc00 && lo <= 0xdfff)
					i += 6;
				else if (!*bad) {
					snprintf(why, whysz, "a string holds a lone UTF-16 "
					    "surrogate U+%04lX", u);
					*bad = true;
				}
			}
			continue;
		}
		if (c < 0x20) {
			if (!*bad)
				snprintf(why, whysz, "a string holds the control character "
				    "0x%02x unescaped", c);
			*bad = true;
			i++;
			continue;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		/* UTF-8: the shortest form of a scalar value, nothing else. */
		{
			size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2, k;
			unsigned long cp = c & (len == 4 ? 0x07 : len == 3 ? 0x0f : 0x1f);
			bool ok = c >= 0xc2 && c <= 0xf4 && i + len <= n;

			for (k = 1; ok && k < len; k++) {
				if ((s[i + k] & 0xc0) != 0x80)
					ok = false;
				cp = cp << 6 | (s[i + k] & 0x3f);
			}
			if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
			    (len == 4 && (cp < 0x10000 || cp > 0x10ffff))))
				ok = false;
			if (!ok) {
				if (!*bad)
					snprintf(why, whysz, "a string holds invalid UTF-8 "
					    "(byte 0x%02x)", c);
				*bad = true;
				i++;
				continue;
			}
			i += len;
		}
	}
	return 0;
}

/* Whether a number token is one jansson can hold; if not, why. */
static bool
mend_number(const unsigned char *s, size_t n, char *why, size_t whysz)
{
	static const char max[] = "9223372036854775807";
	size_t i, d = s[0] == '-';
	bool real = false;

	for (i = 0; i < n; i++)
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			real = true;
	if (!real) {
		size_t nd = n - d;
		int cmp = nd == sizeof max - 1 ? memcmp(s + d, max, nd) : 0;

		/* -9223372036854775808 is the one negative beyond the positive bound. */
		if (nd < sizeof max - 1 || (nd == sizeof max - 1 && (cmp <= 0 ||
		    (d && memcmp(s + d, "9223372036854775808", nd) == 0))))
			return true;
		snprintf(why, whysz, "integer %.*s%s is beyond 64 bits; onesyncd cannot carry "
		    "it exactly", (int)(n < 40 ? n : 40), s, n > 40 ? "..." : "");
		return false;
	} else {
		char buf[64], *t = n < sizeof buf ? buf : xmalloc(n + 1);
		double v;

		memcpy(t, s, n);
		t[n] = '\0';
		v = strtod(t, NULL);
		if (t != buf)
			free(t);
		if (v - v == 0)	/* finite */
			return true;
		snprintf(why, whysz, "number %.*s%s is beyond the range of a double",
		    (int)(n < 40 ? n : 40), s, n > 40 ? "..." : "");
		return false;
	}
}

/* The length of the number token at s[0], as JSON's grammar (and jansson) reads it. */
static size_t
number_end(const unsigned char *s, size_t n)
{
	size_t i = s[0] == '-';

	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i < n && s[i] == '.')
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i > 0 ? i : 1;
}

/* The end of the container that starts at s[0] (past its closing bracket), or 0. */
static size_t
mend_skip(const unsigned char *s, size_t n)
{
	size_t i = 0, depth = 0, end;
	char why[8];
	bool bad, nul;

	while (i < n) {
		if (s[i] == '"') {
			if (!mend_string(s + i, n - i, &end, why, sizeof why, &bad, &nul))
				return 0;
			i += end;
			continue;
		}
		if (s[i] == '[' || s[i] == '{')
			depth++;
		else if ((s[i] == ']' || s[i] == '}') && --depth == 0)
			return i + 1;
		i++;
	}
	return 0;
}

size_t
json_mend(const void *text, size_t n, struct buf *out)
{
	const unsigned char *s = text;
	size_t i = 0, from = 0, count = 0, end = 0;
	long depth = 0;
	unsigned char obj[JSON_MEND_DEPTH / 8 + 1];	/* bit: that level is an object */
	char why[160], prev = 0;	/* last of '{' '[' ',' ':' or 'v' (a value) */

	while (i < n) {
		unsigned char c = s[i];
		bool bad = false, nul;

		if (c == '"') {
			if (!mend_string(s + i, n - i, &end, why, sizeof why, &bad, &nul))
				break;	/* the text ends inside: jansson says so */
			/* jansson holds a NUL in a value, not in a field name (a string
			 * after '{', or after ',' in an object) */
			if (nul && !bad && (prev == '{' || (prev == ',' && depth > 0 &&
			    (obj[(depth - 1) / 8] & 1 << (depth - 1) % 8)))) {
				snprintf(why, sizeof why, "a field name holds U+0000");
				bad = true;
			}
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			end = number_end(s + i, n - i);
			bad = !mend_number(s + i, end, why, sizeof why);
		} else if (c == '[' || c == '{') {
			if (++depth <= JSON_MEND_DEPTH) {
				if (c == '{')
					obj[(depth - 1) / 8] |= 1 << (depth - 1) % 8;
				else
					obj[(depth - 1) / 8] &= ~(1 << (depth - 1) % 8);
				prev = c;
				i++;
				continue;
			}
			depth--;
			if ((end = mend_skip(s + i, n - i)) == 0)
				break;
			snprintf(why, sizeof why, "nesting deeper than %d levels", JSON_MEND_DEPTH);
			bad = true;
		} else {
			if (c == ']' || c == '}') {
				if (depth > 0)	/* unbalanced: jansson says so */
					depth--;
				prev = 'v';
			} else if (c == ',' || c == ':')
				prev = c;
			else if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
				prev = 'v';
			i++;
			continue;
		}
		prev = 'v';
		if (bad) {
			buf_add(out, s + from, i - from);
			buf_addc(out, '"');
			buf_adds(out, JSON_POISON);
			buf_adds(out, why);	/* never a '"', '\\' or control character */
			buf_addc(out, '"');
			from = i + end;
			count++;
		}
		i += end;
	}
	if (count > 0)
		buf_add(out, s + from, n - from);
	return count;
}

/* The reason of the first marked value in v (NULL: none); path is left where it is, and
 * *name says whether it is a field name. */
static const char *
poison_walk(const json_t *v, struct buf *path, bool *name)
{
	static const size_t plen = sizeof JSON_POISON - 1;
	/* data that holds the marker alone (documented: its record fails) still has a reason */
	static const char forged[] = "a string starts with U+FDD0 onesyncd:, the marker of a "
	    "value onesyncd refuses";
	const char *k, *why = NULL;
	json_t *e;
	size_t i, at = path->len;

	switch (json_typeof(v)) {
	case JSON_STRING:
		if (json_string_length(v) >= plen &&
		    memcmp(json_string_value(v), JSON_POISON, plen) == 0)
			why = json_string_length(v) > plen ? json_string_value(v) + plen : forged;
		break;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, e) {
			if (strncmp(k, JSON_POISON, plen) == 0) {
				*name = true;
				return k[plen] != '\0' ? k + plen : forged;
			}
			if (path->len > 0)
				buf_addc(path, '.');
			buf_adds(path, k);
			if ((why = poison_walk(e, path, name)) != NULL)
				return why;
			path->len = at;
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, e) {
			buf_printf(path, "[%zu]", i);
			if ((why = poison_walk(e, path, name)) != NULL)
				return why;
			path->len = at;
		}
		break;
	default:
		break;
	}
	return why;
}

/* Whether v holds a marked value or field name: the walk above without the path, which
 * costs a copy of every field name. It runs on every record of every page and finds
 * nothing almost always. */
static bool
poisoned(const json_t *v)
{
	static const size_t plen = sizeof JSON_POISON - 1;
	const char *k;
	json_t *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_STRING:
		return json_string_length(v) >= plen &&
		    memcmp(json_string_value(v), JSON_POISON, plen) == 0;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, e)
			if ((k[0] == JSON_POISON[0] && strncmp(k, JSON_POISON, plen) == 0) ||
			    poisoned(e))
				return true;
		return false;
	case JSON_ARRAY:
		json_array_foreach(v, i, e)
			if (poisoned(e))
				return true;
		return false;
	default:
		return false;
	}
}

int
json_poison(const json_t *v, char **why)
{
	struct buf path;
	const char *r;
	bool name = false;
	int cut;

	*why = NULL;
	if (!poisoned(v))
		return 0;
	buf_init(&path);
	if ((r = poison_walk(v, &path, &name)) != NULL) {
		/* A path 1000 levels deep is cut: the reason must still be read. */
		cut = path.len > 100 ? 100 : (int)path.len;
		if (path.len == 0)
			*why = name ? xasprintf("a field name: %s", r) : xstrdup(r);
		else
			*why = xasprintf("%s %.*s%s: %s", name ? "a field name in" : "field", cut,
			    path.data, path.len > 100 ? "..." : "", r);
	}
	buf_free(&path);
	return r != NULL ? -1 : 0;
}

/* A byte of a number, true, false or null (a switch, not strchr: once per byte). */
static bool
token_char(unsigned char c)
{
	switch (c) {
	case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7':
	case '8': case '9': case '+': case '-': case '.': case 'e': case 'E': case 't':
	case 'r': case 'u': case 'f': case 'a': case 'l': case 's': case 'n':
		return true;
	default:
		return false;
	}
}

/*
 * How many elements the array at path (jsonx_path_get's syntax: "" the text itself,
 * "data", "result.items", "pages.0") holds, counted on the text without parsing it: one
 * pass, no allocation, so that an answer far larger than asked is refused before jansson
 * builds it. -1 when it cannot tell (no such array, a path deeper than 32, a key written
 * with escapes); the caller then counts after parsing.
 */
long
json_count_at(const void *text, size_t n, const char *path)
{
	enum { MAXP = 32 };
	const unsigned char *s = text;
	const char *comp[MAXP + 1], *key = NULL;
	size_t clen[MAXP + 1], klen = 0, i = 0, end, k = 0;
	long idx[MAXP + 2], count = -1, depth = 0, on = 0;
	bool isobj[MAXP + 2], bad, nul;
	char prev = 0, why[8];

	for (const char *p = path; *p != '\0'; k++) {
		const char *dot = strchr(p, '.');

		if (k == MAXP)
			return -1;
		comp[k] = p;
		clen[k] = dot != NULL ? (size_t)(dot - p) : strlen(p);
		p = dot != NULL ? dot + 1 : p + clen[k];
	}
	/* on: the depth down to which the containers are the path's; the array at path is
	 * the container at depth k + 1. */
	while (i < n) {
		unsigned char c = s[i];
		bool value = c == '"' || c == '[' || c == '{' || c == '-' ||
		    (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
		bool iskey = c == '"' && depth > 0 && depth <= MAXP + 1 && isobj[depth] &&
		    (prev == '{' || prev == ',');

		if (value && !iskey && depth > 0 && depth <= MAXP + 1) {
			if (on == depth && depth == (long)k + 1 && !isobj[depth])
				count++;	/* an element of the array at path */
			else if (!isobj[depth])
				idx[depth]++;
		}
		if (value && c != '"' && c != '[' && c != '{') {
			/* a number, true, false or null: the whole token */
			while (i < n && token_char(s[i]))
				i++;
			prev = 'v';
			continue;
		}
		if (c == '"') {
			if (!mend_string(s + i, n - i, &end, why, sizeof why, &bad, &nul))
				return -1;
			if (iskey) {
				key = (const char *)s + i + 1;
				klen = end - 2;
			}
			i += end;
			prev = iskey ? 'k' : 'v';
			continue;
		}
		if (c == '[' || c == '{') {
			bool onpath = depth == 0 ? on == 0 : on == depth && depth <= (long)k &&
			    (isobj[depth] ? key != NULL && klen == clen[depth - 1] &&
			    memcmp(key, comp[depth - 1], klen) == 0 && memchr(key, '\\', klen) == NULL :
			    clen[depth - 1] > 0 && idx[depth] == strtol(comp[depth - 1], NULL, 10) &&
			    strspn(comp[depth - 1], "0123456789") == clen[depth - 1]);

			depth++;
			if (depth <= MAXP + 1) {
				isobj[depth] = c == '{';
				idx[depth] = -1;
			}
			if (onpath) {
				on = depth;
				if (depth == (long)k + 1) {
					if (c != '[')
						return -1;
					count = 0;
				}
			}
		} else if (c == ']' || c == '}') {
			if (on == depth && depth == (long)k + 1 && count >= 0)
				return count;
			if (on == depth)
				on = depth - 1;
			if (depth > 0)
				depth--;
		} else if (c == ',' || c == ':')
			prev = c;
		if (c == '[' || c == '{')
			prev = c;
		else if (c != ',' && c != ':' && c != ' ' && c != '\t' && c != '\r' && c != '\n')
			prev = 'v';
		i++;
	}
	return -1;
}
