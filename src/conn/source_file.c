/*
 * source_file.c - file snapshots (source.type = "file"): one streamed transfer through
 * http_stream.c (file, ftp, ftps, sftp, http, https), parsed by parse.c as the bytes arrive.
 * Records reach the reader from an event of their own, never from inside libcurl or
 * inside source_file_open/resume, in file order and exactly once. What one chunk of bytes
 * yields waits in a small queue while the transfer is paused: memory holds one chunk's
 * records, never the file. A gzip chunk is inflated one bounded step per loop turn, each
 * step only once the queue is empty, with the transfer paused until the chunk is used up:
 * a chunk that inflates a thousandfold holds no more records than a plain one. It never logs the password and names the file by its redacted
 * URL.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/http_stream.h"
#include "core/log.h"
#include "record/parse.h"
#include "conn/source_file.h"
#include "record/tmpl.h"

/* A parsed item waiting for the reader: a record (an object, or a CSV row's fields in one
 * block), or a malformed record's message. */
struct fr_item {
	json_t	*rec;
	struct parse_row *row;
	char	*msg;		/* set: a malformed record */
	long	 line;
};

struct file_reader {
	char			*log_url;	/* redacted */
	struct http_call	*call;		/* the transfer, until it ends */
	struct parser		*parser;
	struct strlist		 need;		/* CSV: fields the header must name */
	file_rec_cb		 rec_cb;
	file_row_cb		 row_cb;	/* CSV rows as fields, when set */
	file_bad_cb		 bad_cb;
	file_done_cb		 done_cb;
	void			*arg;

	struct fr_item		*q;		/* parsed, not delivered yet: q[qhead..qlen) */
	size_t			 qhead, qlen, qcap;
	struct event		*ev;		/* delivers the queue (and the end) */

	bool			 paused;	/* by the reader */
	bool			 xfer_paused;	/* the transfer waits for the queue to drain */
	bool			 inflating;	/* gzip input waits for parser_step */
	bool			 at_eof;	/* the transfer ended whole while inflating */
	bool			 ended;		/* no more items will come */
	int			 end_rc;
	char			*end_err;
	bool			 done;		/* done_cb was called */
	bool			 cancelled;
	bool			 started;	/* the first bytes came (encoding settled) */
	int			 depth;		/* reader callbacks on the stack */
};

static void
fr_free(struct file_reader *fr)
{
	size_t i;

	if (fr->call != NULL)
		http_cancel(fr->call);
	for (i = fr->qhead; i < fr->qlen; i++) {
		json_decref(fr->q[i].rec);
		free(fr->q[i].row);
		free(fr->q[i].msg);
	}
	free(fr->q);
	if (fr->ev != NULL)
		event_free(fr->ev);
	parser_free(fr->parser);
	strlist_free(&fr->need);
	free(fr->log_url);
	free(fr->end_err);
	free(fr);
}

/* Deliver the queue on a later loop turn. */
static void
fr_schedule(struct file_reader *fr)
{
	static const struct timeval now = { 0, 0 };

	if (!fr->cancelled)
		evtimer_add(fr->ev, &now);
}

static struct fr_item *
fr_push(struct file_reader *fr)
{
	if (fr->qhead == fr->qlen)
		fr->qhead = fr->qlen = 0;
	if (fr->qlen == fr->qcap) {
		if (fr->qhead > 0) {
			memmove(fr->q, fr->q + fr->qhead, (fr->qlen - fr->qhead) * sizeof *fr->q);
			fr->qlen -= fr->qhead;
			fr->qhead = 0;
		} else {
			fr->qcap = fr->qcap == 0 ? 256 : fr->qcap * 2;
			fr->q = xreallocarray(fr->q, fr->qcap, sizeof *fr->q);
		}
	}
	return &fr->q[fr->qlen++];
}

/* parse_record_cb: queue it (the reader gets it from fr_deliver). */
static int
fr_parsed(void *arg, json_t *rec, long line)
{
	struct fr_item *it = fr_push(arg);

	it->rec = json_incref(rec);
	it->row = NULL;
	it->msg = NULL;
	it->line = line;
	return 0;
}

/* parse_row_cb: queue a copy of the fields, in one block (the names stay the parser's). */
static int
fr_row(void *arg, const struct parse_row *row, long line)
{
	struct fr_item *it = fr_push(arg);
	size_t len = row->n > 0 ? row->fend[row->n - 1] : 0;
	struct parse_row *c = xmalloc(sizeof *c + row->n * sizeof *row->fend + len + 1);
	size_t *fend = (size_t *)(c + 1);
	char *data = (char *)(fend + row->n);

	memcpy(fend, row->fend, row->n * sizeof *fend);
	memcpy(data, row->data, len);
	data[len] = '\0';
	c->names = row->names;
	c->n = row->n;
	c->fend = fend;
	c->data = data;
	it->rec = NULL;
	it->row = c;
	it->msg = NULL;
	it->line = line;
	return 0;
}

/* parse_error_cb: queue the message, naming the file ("URL line N: ..."). */
static void
fr_parse_error(void *arg, long line, const char *msg)
{
	struct file_reader *fr = arg;
	struct fr_item *it = fr_push(fr);

	it->rec = NULL;
	it->row = NULL;
	it->msg = xasprintf("%s %s", fr->log_url, msg);
	it->line = line;
}

/*
 * The parser failed for good (fatal error, or the input ended inside a record): its last
 * queued message becomes the reason of the end instead of a malformed record.
 */
static void
fr_end_parse_failed(struct file_reader *fr, bool at_end)
{
	struct fr_item *last = fr->qlen > fr->qhead ? &fr->q[fr->qlen - 1] : NULL;
	char *why = NULL;

	if (last != NULL && last->msg != NULL) {
		why = last->msg;
		fr->qlen--;
	}
	fr->ended = true;
	fr->end_rc = parser_mismatch(fr->parser) ? SOURCE_FILE_MISMATCH : -1;
	if (fr->end_rc == SOURCE_FILE_MISMATCH && why != NULL)
		fr->end_err = xstrdup(why);
	else if (at_end && why != NULL && strstr(why, "the input is empty") != NULL)
		fr->end_err = xasprintf("the file is empty (%s)", why);
	else if (at_end)
		fr->end_err = xasprintf("the file ends inside a record: truncated? (%s)",
		    why != NULL ? why : fr->log_url);
	else
		fr->end_err = why != NULL ? xstrdup(why) :
		    xasprintf("%s: the file cannot be parsed", fr->log_url);
	free(why);
}

/*
 * At the first bytes: an http(s) answer's Content-Encoding is decoded by the parser's own
 * inflate, which knows a stream cut before its end; libcurl's decoder would take it for a
 * whole file (and a capture would delete what the cut left out). -1: the read ends.
 */
static int
fr_encoding(struct file_reader *fr)
{
	const char *ce = http_stream_encoding(fr->call);

	fr->started = true;
	switch (http_encoding_kind(ce)) {
	case HTTP_ENC_NONE:
		return 0;
	case HTTP_ENC_ZLIB:
		/* Already on when the file itself is gzip: that is the one layer. */
		if (parser_set_gzip(fr->parser) == 0) {
			log_debug("%s: Content-Encoding %s: decoded as gzip", fr->log_url, ce);
			return 0;
		}
		fr->end_err = xasprintf("%s: cannot decode Content-Encoding %.60s (out of "
		    "memory?)", fr->log_url, ce);
		break;
	case HTTP_ENC_UNKNOWN:
		fr->end_err = xasprintf("%s: the server sent Content-Encoding '%.60s', which "
		    "onesyncd cannot decode (gzip, x-gzip, deflate or none); nothing was read",
		    fr->log_url, ce);
		break;
	}
	fr->ended = true;
	fr->end_rc = -1;
	return -1;
}

/* http_data_cb (inside libcurl): parse; pause the transfer while records or gzip input wait. */
static int
fr_data(void *arg, const char *data, size_t len)
{
	struct file_reader *fr = arg;
	int r;

	if (fr->cancelled || fr->ended)
		return -1;
	if (!fr->started && fr_encoding(fr) == -1) {
		fr_schedule(fr);
		return -1;	/* the transfer's own error is ignored: fr->ended */
	}
	if ((r = parser_feed(fr->parser, data, len)) == -1) {
		fr_end_parse_failed(fr, false);
		fr_schedule(fr);
		return -1;	/* the transfer's own error is ignored: fr->ended */
	}
	fr->inflating = r == 1;
	if (fr->inflating || fr->qlen > fr->qhead || fr->paused) {
		fr->xfer_paused = true;
		fr_schedule(fr);
		return 1;
	}
	return 0;
}

/* The whole file went through the parser: its end. */
static void
fr_finish(struct file_reader *fr)
{
	if (parser_finish(fr->parser) == -1)
		fr_end_parse_failed(fr, true);
	else {
		fr->ended = true;
		fr->end_rc = 0;
	}
}

/* One more step of held gzip input, once the queue is empty; the next turn delivers it. */
static void
fr_inflate(struct file_reader *fr)
{
	int r = parser_step(fr->parser);

	fr->inflating = r == 1;
	if (r == -1) {
		if (fr->call != NULL) {
			http_cancel(fr->call);
			fr->call = NULL;
			fr->xfer_paused = false;
		}
		fr->at_eof = false;
		fr_end_parse_failed(fr, false);
	}
	fr_schedule(fr);
}

/* http_cb: the transfer ended (whole, failed, or stopped by fr_data). */
static void
fr_transfer_done(struct http_response *resp, void *arg)
{
	struct file_reader *fr = arg;

	fr->call = NULL;	/* http_stream.c frees it */
	fr->xfer_paused = false;
	if (fr->ended || fr->cancelled)
		return;
	if (resp->error[0] != '\0') {
		fr->ended = true;
		fr->end_rc = -1;
		fr->end_err = xstrdup(resp->error);
	} else if (fr->inflating)
		fr->at_eof = true;	/* fr_deliver finishes after the last step */
	else
		fr_finish(fr);
	fr_schedule(fr);
}

/* Add the field a record path starts with (a CSV row is flat), once. */
static void
need_add(struct strlist *need, const char *path)
{
	size_t n = strcspn(path, ".");

	if (n == 0)
		return;
	for (size_t i = 0; i < need->n; i++)
		if (strncmp(need->v[i], path, n) == 0 && need->v[i][n] == '\0')
			return;
	strlist_add(need, xstrndup(path, n));
}

/* Add the record paths of a template. */
static void
need_tmpl(struct strlist *need, const struct tmpl *t)
{
	size_t it = 0;
	const char *path;

	while ((path = tmpl_record_path(t, &it)) != NULL)
		need_add(need, path);
}

/*
 * The fields a CSV header must name: those the job reads from every record (key fields,
 * destination.columns, the destination's templates, capture.fields). A header without one
 * is a snapshot that does not match the job: read on, every row would carry null there.
 * (NDJSON and JSON records name their own fields: an absent one is null by design.)
 */
static void
need_fields(struct strlist *need, const struct job_conf *job)
{
	const struct dest_conf *dc = &job->dst;

	for (size_t i = 0; i < job->nkey; i++)
		need_add(need, job->key[i]);
	for (size_t i = 0; i < dc->ncolumns; i++)
		need_add(need, dc->columns[i].field);
	need_tmpl(need, dc->url);
	need_tmpl(need, dc->body);
	for (size_t i = 0; i < dc->nheaders; i++)
		need_tmpl(need, dc->headers[i]);
	need_tmpl(need, dc->create_url);
	need_tmpl(need, dc->create_body);
	for (size_t i = 0; i < job->capture.nfields; i++)
		need_add(need, job->capture.fields[i]);
}

/*
 * Hand the queue to the reader until it pauses; then the end, the next step of gzip
 * input, or more of the transfer.
 */
static void
fr_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct file_reader *fr = arg;
	struct fr_item it;

	(void)fd; (void)what;
	fr->depth++;
	while (!fr->cancelled && !fr->paused && fr->qhead < fr->qlen) {
		it = fr->q[fr->qhead++];
		if (it.row != NULL) {
			fr->row_cb(fr->arg, it.row, it.line);
			free(it.row);
		} else if (it.rec != NULL) {
			fr->rec_cb(fr->arg, it.rec, it.line);
			json_decref(it.rec);
		} else {
			fr->bad_cb(fr->arg, it.line, it.msg);
			free(it.msg);
		}
	}
	if (fr->cancelled || fr->paused || fr->qhead < fr->qlen)
		;	/* the reader paused: source_file_resume schedules the rest */
	else if (fr->ended) {
		if (!fr->done) {
			fr->done = true;
			fr->done_cb(fr->arg, fr->end_rc, fr->end_err);
		}
	} else if (fr->inflating)
		fr_inflate(fr);
	else if (fr->at_eof) {
		fr->at_eof = false;
		fr_finish(fr);
		fr_schedule(fr);
	} else if (fr->xfer_paused && fr->call != NULL) {
		fr->xfer_paused = false;
		http_stream_resume(fr->call);
	}
	fr->depth--;
	if (fr->cancelled && fr->depth == 0)
		fr_free(fr);
}

void
source_file_rows(struct file_reader *fr, file_row_cb row_cb)
{
	fr->row_cb = row_cb;
	parser_set_row_cb(fr->parser, row_cb != NULL ? fr_row : NULL);
}

/* gzip: 1 yes, 0 no, -1 when the URL's path ends in .gz. */
static bool
fr_gzip(const struct source_conf *sc)
{
	size_t n;

	if (sc->gzip >= 0)
		return sc->gzip == 1;
	n = strcspn(sc->file_url, "?#");
	return n >= 3 && strncasecmp(sc->file_url + n - 3, ".gz", 3) == 0;
}

struct file_reader *
source_file_open(const struct conn_env *env, const struct job_conf *job,
    file_rec_cb rec_cb, file_bad_cb bad_cb, file_done_cb done_cb, void *arg, char **err)
{
	const struct source_conf *sc = &job->src;
	struct file_reader *fr;
	struct parse_opts po;
	struct http_stream_req req;
	char *e = NULL;

	if (sc->file_url == NULL || *sc->file_url == '\0') {
		*err = xstrdup("the file source has no url");
		return NULL;
	}
	fr = xcalloc(1, sizeof *fr);
	fr->log_url = redact_url(sc->file_url);
	fr->rec_cb = rec_cb;
	fr->bad_cb = bad_cb;
	fr->done_cb = done_cb;
	fr->arg = arg;
	fr->ev = evtimer_new(env->base, fr_deliver, fr);

	memset(&po, 0, sizeof po);
	po.format = sc->file_format == FILE_CSV ? PARSE_CSV :
	    sc->file_format == FILE_NDJSON ? PARSE_NDJSON : PARSE_JSON_ARRAY;
	po.delimiter = sc->delimiter;
	po.gzip = fr_gzip(sc);
	if (po.format == PARSE_CSV) {
		need_fields(&fr->need, job);
		po.need = fr->need.v;
		po.nneed = fr->need.n;
	}
	if ((fr->parser = parser_new(&po, fr_parsed, fr_parse_error, fr)) == NULL) {
		*err = xasprintf("%s: cannot set up the parser (out of memory?)", fr->log_url);
		fr_free(fr);
		return NULL;
	}

	memset(&req, 0, sizeof req);
	req.url = sc->file_url;
	req.log_url = fr->log_url;
	req.username = sc->username;
	req.password = sc->password;
	req.ssh_key = sc->ssh_key;
	req.ssh_host_sha256 = sc->ssh_host_sha256;
	req.stall_ms = (long)sc->http.timeout_ms;
	req.max_bytes = sc->http.max_bytes;
	req.tls_verify = sc->http.tls_verify;
	req.ca_file = sc->http.ca_file;
	req.auth = sc->auth;
	req.decode = !po.gzip;
	req.allow_origins = sc->allow_origins;
	req.nallow_origins = sc->nallow_origins;
	if ((fr->call = http_stream(&req, fr_data, fr_transfer_done, fr, &e)) == NULL) {
		*err = e;
		fr_free(fr);
		return NULL;
	}
	log_debug("%s: reading (%s%s)", fr->log_url, sc->file_format == FILE_CSV ? "CSV" :
	    sc->file_format == FILE_NDJSON ? "NDJSON" : "JSON array", po.gzip ? ", gzip" : "");
	return fr;
}

void
source_file_pause(struct file_reader *fr)
{
	if (fr == NULL || fr->cancelled)
		return;
	fr->paused = true;
	evtimer_del(fr->ev);
	if (fr->call != NULL && !fr->xfer_paused) {
		fr->xfer_paused = true;
		http_stream_pause(fr->call);
	}
}

void
source_file_resume(struct file_reader *fr)
{
	if (fr == NULL || fr->cancelled || !fr->paused)
		return;
	fr->paused = false;
	fr_schedule(fr);
}

void
source_file_cancel(struct file_reader *fr)
{
	if (fr == NULL || fr->cancelled)
		return;
	fr->cancelled = true;
	evtimer_del(fr->ev);
	if (fr->call != NULL) {
		http_cancel(fr->call);
		fr->call = NULL;
	}
	if (fr->depth == 0)
		fr_free(fr);
}

const char *
source_file_where(const struct file_reader *fr)
{
	return fr != NULL ? fr->log_url : "the file";
}
