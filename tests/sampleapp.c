/*
 * sampleapp: an in-memory JSON source/destination API for onesyncd's
 * integration tests, benchmarks and demo.  See tests/sampleapp.md.
 *
 * Build: cc -O2 -Wall -Wextra -o sampleapp tests/sampleapp.c \
 *          $(pkg-config --cflags --libs libevent jansson)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <event2/bufferevent.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define MAXSORT 8
#define MAXFILTERS 32
#define NCACHE 4
#define MAX_GEN 10000000L
#define DUMPF (JSON_COMPACT | JSON_ENCODE_ANY)

enum { M_GET, M_PUT, M_POST, M_PATCH, M_DELETE, M_OTHER, M_N };
static const char *mnames[M_N] = { "GET", "PUT", "POST", "PATCH", "DELETE", "OTHER" };

typedef struct fault {
	struct fault *next;
	char *coll;          /* NULL: any */
	char method[8];      /* "*" any */
	int status;          /* 0: none */
	long times;          /* -1 forever */
	long delay_ms;
	int truncate;
	int ignore_limit;    /* a list answers every record from its offset, whatever _limit */
	int ignore_filter;   /* a list ignores its range filters (_gte, _gt, _lte, _lt) */
	int hold;            /* hold matching requests until /_ctl/release */
	json_t *keys;        /* array of key texts, or NULL */
	long retry_after;    /* -1 none */
	char *body;
	json_t *headers;     /* name -> value added to the reply (replacing its own), or NULL */
} fault_t;

typedef struct trigger {
	struct trigger *next;
	long after, seen, touch, insert;
	char *field;
	json_t *extra;
} trigger_t;

typedef struct { json_t *rec; json_t *v[MAXSORT + 1]; } sent_t;

typedef struct {
	char *spec;
	int nf;
	char *fields[MAXSORT + 1];
	int desc[MAXSORT + 1];
	sent_t *ent;
	size_t n;
} sortc_t;

typedef struct coll {
	struct coll *next;
	char *name;
	char *keyf;
	int put_req_existing, post_conflict;
	json_t *recs;            /* key text -> record */
	sortc_t sc[NCACHE];
	unsigned sc_next;
	char *fspec;             /* filtered-result cache */
	bool fpartial;           /* the cached result stops early (no total) */
	json_t **fres;
	size_t fn;
	long long erp_next, dnext, mnext;
	json_t *extra;
	long req[M_N], list_gets, total_deliv, inflight, max_inflight;
	json_t *deliv, *patches;
	trigger_t *trig;
} coll_t;

static struct event_base *base;
static coll_t *colls;
static fault_t *faults;
static int g_port;
static int g_quiet;
/* The record (GET /_ctl/seen) of the request being answered, -1 for none: send_buf
 * notes the answer there. */
static long long g_seen_cur = -1;
static void seen_status(long long seq, int code);

/* ---------------------------------------------------------------- utils */

static void *xmalloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) { perror("malloc"); exit(2); } return p; }
static void *xcalloc(size_t a, size_t b) { void *p = calloc(a ? a : 1, b ? b : 1); if (!p) { perror("calloc"); exit(2); } return p; }
static char *xstrdup(const char *s) { char *p = strdup(s ? s : ""); if (!p) { perror("strdup"); exit(2); } return p; }

static int dump_cb(const char *buf, size_t size, void *data)
{
	return evbuffer_add((struct evbuffer *)data, buf, size);
}
static void buf_json(struct evbuffer *b, json_t *j)
{
	json_dump_callback(j, dump_cb, b, DUMPF);
}

/* key text of a JSON value: string as-is, numbers as text; malloc'd; NULL if unusable */
static char *keytext(json_t *v)
{
	char tmp[64];
	if (!v) return NULL;
	if (json_is_string(v)) return xstrdup(json_string_value(v));
	if (json_is_integer(v)) { snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); return xstrdup(tmp); }
	if (json_is_real(v)) { char *s = json_dumps(v, DUMPF); return s; }
	if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "true" : "false");
	return NULL;
}

static int num_parse(const char *s, double *out)
{
	char *end;
	if (!s || !*s) return 0;
	errno = 0;
	double d = strtod(s, &end);
	if (*end || errno == ERANGE || end == s) return 0;
	if (strchr(s, 'x') || strchr(s, 'X') || strcasestr(s, "inf") || strcasestr(s, "nan")) return 0;
	*out = d;
	return 1;
}

/* compare for sorting: missing first; both numbers numerically; else text */
static int cmp_vals(json_t *a, json_t *b)
{
	if (!a) return b ? -1 : 0;
	if (!b) return 1;
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_number(a) && json_is_number(b)) {
		double x = json_number_value(a), y = json_number_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_string(a) && json_is_string(b))
		return strcmp(json_string_value(a), json_string_value(b));
	char *sa = json_is_string(a) ? NULL : json_dumps(a, DUMPF);
	char *sb = json_is_string(b) ? NULL : json_dumps(b, DUMPF);
	int r = strcmp(sa ? sa : json_string_value(a), sb ? sb : json_string_value(b));
	free(sa); free(sb);
	return r;
}

/* compare record value with query text; *ok=0 when incomparable (missing) */
static int cmp_filter(json_t *v, const char *q, int *ok)
{
	double d;
	*ok = 1;
	if (!v) { *ok = 0; return -1; }
	if (json_is_boolean(v) && (!strcmp(q, "true") || !strcmp(q, "false"))) {
		int x = json_is_true(v), y = !strcmp(q, "true");
		return x - y;
	}
	if (json_is_number(v) && num_parse(q, &d)) {
		double x = json_number_value(v);
		return x < d ? -1 : x > d;
	}
	if (json_is_string(v)) return strcmp(json_string_value(v), q);
	char *s = json_dumps(v, DUMPF);
	int r = strcmp(s ? s : "", q);
	free(s);
	return r;
}

/* ----------------------------------------------------------- timestamps */

static long long now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* RFC 3339 -> epoch ms; returns 0 on failure */
static int parse_rfc3339(const char *s, long long *out)
{
	int Y, M, D, h, m, sec, n = 0;
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n == 0)
		return 0;
	const char *p = s + n;
	long long ms = 0;
	if (*p == '.' || *p == ',') {
		int digits = 0;
		p++;
		while (*p >= '0' && *p <= '9') {
			if (digits < 3) ms = ms * 10 + (*p - '0');
			digits++; p++;
		}
		if (!digits) return 0;
		for (; digits < 3; digits++) ms *= 10;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') p++;
	else if (*p == '+' || *p == '-') {
		int oh, om;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return 0;
		off = (oh * 60L + om) * 60L * (*p == '-' ? -1 : 1);
		p += 6;
	} else return 0;
	if (*p) return 0;
	struct tm tm = { 0 };
	tm.tm_year = Y - 1900; tm.tm_mon = M - 1; tm.tm_mday = D;
	tm.tm_hour = h; tm.tm_min = m; tm.tm_sec = sec;
	time_t t = timegm(&tm);
	*out = ((long long)t - off) * 1000 + ms;
	return 1;
}

static json_t *fmt_ts(long long ms, int epoch)
{
	if (epoch) return json_integer(ms);
	time_t t = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) { frac += 1000; t--; }
	struct tm tm;
	gmtime_r(&t, &tm);
	char b[64];
	size_t l = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(b + l, sizeof b - l, ".%03dZ", frac);
	return json_string(b);
}

/* ----------------------------------------------------------- collections */

static void drop_sort(sortc_t *s)
{
	free(s->spec);
	for (int f = 0; f < s->nf; f++) free(s->fields[f]);
	free(s->ent);
	memset(s, 0, sizeof *s);
}

static void drop_filtered(coll_t *c)
{
	free(c->fspec); c->fspec = NULL;
	free(c->fres); c->fres = NULL; c->fn = 0;
}

static void coll_changed(coll_t *c)
{
	for (int i = 0; i < NCACHE; i++) drop_sort(&c->sc[i]);
	drop_filtered(c);
}

static const sortc_t *g_sort; /* for qsort comparator */
static int sent_cmp(const void *pa, const void *pb);

/* one record was replaced (old -> nrec, possibly the same object modified in
 * place): keep each sorted cache when the record's position stays valid */
static void rec_replaced(coll_t *c, json_t *old, json_t *nrec)
{
	drop_filtered(c);
	for (int i = 0; i < NCACHE; i++) {
		sortc_t *s = &c->sc[i];
		if (!s->spec) continue;
		size_t j;
		for (j = 0; j < s->n && s->ent[j].rec != old; j++)
			;
		if (j == s->n) { drop_sort(s); continue; }
		s->ent[j].rec = nrec;
		for (int f = 0; f < s->nf; f++) s->ent[j].v[f] = json_object_get(nrec, s->fields[f]);
		g_sort = s;
		if ((j > 0 && sent_cmp(&s->ent[j - 1], &s->ent[j]) > 0) ||
		    (j + 1 < s->n && sent_cmp(&s->ent[j], &s->ent[j + 1]) > 0))
			drop_sort(s);
	}
}

static coll_t *coll_find(const char *name)
{
	for (coll_t *c = colls; c; c = c->next)
		if (!strcmp(c->name, name)) return c;
	return NULL;
}

static coll_t *coll_get(const char *name)
{
	coll_t *c = coll_find(name);
	if (c) return c;
	c = xcalloc(1, sizeof *c);
	c->name = xstrdup(name);
	c->keyf = xstrdup("id");
	c->recs = json_object();
	c->deliv = json_object();
	c->patches = json_object();
	c->erp_next = 1;
	c->dnext = 1;
	c->mnext = 1;
	c->next = colls;
	colls = c;
	return c;
}

static void trig_free(trigger_t *t)
{
	while (t) {
		trigger_t *n = t->next;
		free(t->field);
		json_decref(t->extra);
		free(t);
		t = n;
	}
}

static void coll_free(coll_t *c)
{
	coll_changed(c);
	free(c->name); free(c->keyf);
	json_decref(c->recs); json_decref(c->deliv); json_decref(c->patches); json_decref(c->extra);
	trig_free(c->trig);
	free(c);
}

static void reset_stats(coll_t *c)
{
	memset(c->req, 0, sizeof c->req);
	c->list_gets = 0;
	c->total_deliv = 0;
	c->max_inflight = c->inflight;
	json_object_clear(c->deliv);
	json_object_clear(c->patches);
}

static void count_key(json_t *obj, const char *k)
{
	json_t *v = json_object_get(obj, k);
	json_object_set_new(obj, k, json_integer(v ? json_integer_value(v) + 1 : 1));
}

static int sent_cmp(const void *pa, const void *pb)
{
	const sent_t *a = pa, *b = pb;
	for (int i = 0; i < g_sort->nf; i++) {
		int r = cmp_vals(a->v[i], b->v[i]);
		if (r) return g_sort->desc[i] ? -r : r;
	}
	return 0;
}

/* fields/desc describe the sort; key field appended as final tie-breaker */
static sortc_t *get_sort(coll_t *c, int nf, char **fields, int *desc)
{
	char spec[4096];
	size_t l = 0;
	char *f2[MAXSORT + 1];
	int d2[MAXSORT + 1], n2 = 0, haskey = 0;
	for (int i = 0; i < nf && i < MAXSORT; i++) {
		f2[n2] = fields[i]; d2[n2] = desc[i]; n2++;
		if (!strcmp(fields[i], c->keyf)) haskey = 1;
	}
	if (!haskey) { f2[n2] = c->keyf; d2[n2] = 0; n2++; }
	spec[0] = 0;
	for (int i = 0; i < n2 && l < sizeof spec - 1; i++) {
		int w = snprintf(spec + l, sizeof spec - l, "%s\x02%c\x01", f2[i], d2[i] ? 'd' : 'a');
		if (w < 0) break;
		l += (size_t)w;
		if (l >= sizeof spec) l = sizeof spec - 1;
	}
	for (int i = 0; i < NCACHE; i++)
		if (c->sc[i].spec && !strcmp(c->sc[i].spec, spec)) return &c->sc[i];
	sortc_t *s = &c->sc[c->sc_next++ % NCACHE];
	free(s->spec);
	for (int f = 0; f < s->nf; f++) free(s->fields[f]);
	free(s->ent);
	memset(s, 0, sizeof *s);
	s->spec = xstrdup(spec);
	s->nf = n2;
	for (int i = 0; i < n2; i++) { s->fields[i] = xstrdup(f2[i]); s->desc[i] = d2[i]; }
	s->n = json_object_size(c->recs);
	s->ent = xcalloc(s->n, sizeof(sent_t));
	size_t k = 0;
	const char *key;
	json_t *rec;
	json_object_foreach(c->recs, key, rec) {
		if (k >= s->n) break;
		s->ent[k].rec = rec;
		for (int i = 0; i < n2; i++) s->ent[k].v[i] = json_object_get(rec, f2[i]);
		k++;
	}
	s->n = k;
	g_sort = s;
	qsort(s->ent, s->n, sizeof(sent_t), sent_cmp);
	return s;
}

static sortc_t *key_sort(coll_t *c)
{
	return get_sort(c, 0, NULL, NULL);
}

static void put_record(coll_t *c, const char *k, json_t *rec /* stolen */)
{
	json_t *old = json_incref(json_object_get(c->recs, k));
	json_object_set_new(c->recs, k, rec);
	if (old) rec_replaced(c, old, rec);
	else coll_changed(c);
	json_decref(old);
}

/* max timestamp in field: returns 1 if any; *epoch set if values numeric */
static int max_ts(coll_t *c, const char *field, long long *max, int *epoch)
{
	const char *k;
	json_t *rec;
	int any = 0, nums = 0, strs = 0;
	long long m = LLONG_MIN;
	json_object_foreach(c->recs, k, rec) {
		json_t *v = json_object_get(rec, field);
		long long t;
		if (json_is_integer(v)) { t = json_integer_value(v); nums++; }
		else if (json_is_real(v)) { t = (long long)json_real_value(v); nums++; }
		else if (json_is_string(v) && parse_rfc3339(json_string_value(v), &t)) strs++;
		else continue;
		if (t > m) m = t;
		any = 1;
	}
	*epoch = nums > strs;
	*max = any ? m : now_ms();
	return any;
}

static void gen_fields(json_t *rec, long long i)
{
	char b[96];
	snprintf(b, sizeof b, "name-%lld", i);
	json_object_set_new(rec, "name", json_string(b));
	snprintf(b, sizeof b, "user%lld@example.com", i);
	json_object_set_new(rec, "email", json_string(b));
	json_object_set_new(rec, "amount", json_integer((i * 37) % 10000));
	json_object_set_new(rec, "v", json_integer(1));
}

static void run_mutation(coll_t *c, long touch, long insert, const char *field, json_t *extra)
{
	long long mx;
	int epoch;
	max_ts(c, field, &mx, &epoch);
	sortc_t *s = key_sort(c);
	size_t n = s->n;
	json_t **sel = NULL;
	size_t t = touch > 0 ? (size_t)touch : 0;
	if (t > n) t = n;
	if (t) {
		sel = xcalloc(t, sizeof *sel);
		for (size_t i = 0; i < t; i++) sel[i] = json_incref(s->ent[(size_t)((unsigned long long)i * n / t)].rec);
	}
	/* numeric keys? */
	int numkeys = n > 0;
	json_int_t maxkey = 0;
	for (size_t i = 0; i < n && numkeys; i++) {
		json_t *kv = s->ent[i].v[0];
		if (!json_is_integer(kv)) numkeys = 0;
		else if (json_integer_value(kv) > maxkey) maxkey = json_integer_value(kv);
	}
	for (size_t i = 0; i < t; i++) {
		json_t *v = json_object_get(sel[i], "v");
		json_object_set_new(sel[i], "v", json_integer(json_is_integer(v) ? json_integer_value(v) + 1 : 1));
		json_object_set_new(sel[i], field, fmt_ts(++mx, epoch));
		json_decref(sel[i]);
	}
	free(sel);
	coll_changed(c);
	json_t *ex = extra ? extra : c->extra;
	for (long i = 0; i < insert && i < MAX_GEN; i++) {
		json_t *rec = json_object();
		char kb[64];
		json_t *kv;
		if (numkeys) {
			kv = json_integer(++maxkey);
			snprintf(kb, sizeof kb, "%" JSON_INTEGER_FORMAT, maxkey);
		} else {
			int tries = 0;
			do { snprintf(kb, sizeof kb, "M-%lld", c->mnext++); } while (json_object_get(c->recs, kb) && ++tries < 1000000);
			kv = json_string(kb);
		}
		json_object_set_new(rec, c->keyf, kv);
		gen_fields(rec, numkeys ? (long long)maxkey : c->mnext);
		if (json_is_object(ex)) json_object_update(rec, ex);
		json_object_set_new(rec, field, fmt_ts(++mx, epoch));
		json_object_set_new(c->recs, kb, rec);
	}
	coll_changed(c);
}

/* --------------------------------------------------------------- replies */

/* A fixed Date header (POST /_ctl/date): a source whose clock is wrong. Empty: the real time. */
static char g_date[64];

static void add_std_headers(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	char d[64];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evhttp_remove_header(h, "Date");
	evhttp_add_header(h, "Date", g_date[0] ? g_date : d);
	if (!evhttp_find_header(h, "Content-Type"))
		evhttp_add_header(h, "Content-Type", "application/json");
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK"; case 201: return "Created"; case 204: return "No Content";
	case 400: return "Bad Request"; case 401: return "Unauthorized"; case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict"; case 422: return "Unprocessable Entity"; case 429: return "Too Many Requests";
	case 500: return "Internal Server Error"; case 502: return "Bad Gateway"; case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

static void log_req(struct evhttp_request *req, int code, const char *note)
{
	if (g_quiet) return;
	const char *mn;
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: mn = "GET"; break; case EVHTTP_REQ_PUT: mn = "PUT"; break;
	case EVHTTP_REQ_POST: mn = "POST"; break; case EVHTTP_REQ_PATCH: mn = "PATCH"; break;
	case EVHTTP_REQ_DELETE: mn = "DELETE"; break; default: mn = "OTHER"; break;
	}
	fprintf(stderr, "sampleapp: %s %s -> %d%s%s\n", mn, evhttp_request_get_uri(req), code,
	        note ? " " : "", note ? note : "");
}

/* send buf (consumed) with code; truncate: first half, status 200 */
static void send_buf(struct evhttp_request *req, int code, struct evbuffer *buf, int truncate)
{
	add_std_headers(req);
	if (truncate) {
		size_t len = evbuffer_get_length(buf);
		struct evbuffer *h = evbuffer_new();
		evbuffer_remove_buffer(buf, h, len / 2);
		evbuffer_free(buf);
		buf = h;
		code = 200;
	}
	log_req(req, code, truncate ? "(truncated)" : NULL);
	if (g_seen_cur >= 0) seen_status(g_seen_cur, code);
	evhttp_send_reply(req, code, reason(code), code == 204 ? NULL : buf);
	evbuffer_free(buf);
}

static void send_json(struct evhttp_request *req, int code, json_t *j /* stolen */)
{
	struct evbuffer *b = evbuffer_new();
	if (j) buf_json(b, j);
	json_decref(j);
	send_buf(req, code, b, 0);
}

static json_t *err_json(const char *fmt, ...)
{
	char m[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof m, fmt, ap);
	va_end(ap);
	return json_pack("{ss}", "error", m);
}

/* ------------------------------------------------------------ list GET */

enum { F_EQ, F_GTE, F_GT, F_LTE, F_LT };
typedef struct { char *field; int op; const char *val; } filter_t;

static int rec_match(json_t *rec, filter_t *fl, int nfl)
{
	for (int i = 0; i < nfl; i++) {
		int ok;
		int r = cmp_filter(json_object_get(rec, fl[i].field), fl[i].val, &ok);
		if (!ok) return 0;
		switch (fl[i].op) {
		case F_EQ: if (r != 0) return 0; break;
		case F_GTE: if (r < 0) return 0; break;
		case F_GT: if (r <= 0) return 0; break;
		case F_LTE: if (r > 0) return 0; break;
		case F_LT: if (r >= 0) return 0; break;
		}
	}
	return 1;
}

static int split_csv(char *s, char **out, int max)
{
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(s, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ') t++;
		if (*t) out[n++] = t;
	}
	return n;
}

/* absolute URL of this request with paging param replaced */
static char *next_url(struct evhttp_request *req, const char *pname, const char *pval)
{
	const char *uri = evhttp_request_get_uri(req);
	const char *q = strchr(uri, '?');
	size_t plen = q ? (size_t)(q - uri) : strlen(uri);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "http://127.0.0.1:%d", g_port);
	evbuffer_add(b, uri, plen);
	evbuffer_add(b, "?", 1);
	int first = 1;
	if (q) {
		char *qs = xstrdup(q + 1), *save = NULL;
		for (char *t = strtok_r(qs, "&", &save); t; t = strtok_r(NULL, "&", &save)) {
			size_t nl = strcspn(t, "=");
			if ((nl == 5 && !strncmp(t, "_page", 5)) || (nl == 7 && !strncmp(t, "_offset", 7)) ||
			    (nl == 7 && !strncmp(t, "_cursor", 7)))
				continue;
			evbuffer_add_printf(b, "%s%s", first ? "" : "&", t);
			first = 0;
		}
		free(qs);
	}
	evbuffer_add_printf(b, "%s%s=%s", first ? "" : "&", pname, pval);
	size_t len = evbuffer_get_length(b);
	char *s = xmalloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = 0;
	evbuffer_free(b);
	return s;
}

static int parse_long(const char *s, long *out)
{
	char *end;
	if (!s || !*s) return 0;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*end || errno) return 0;
	*out = v;
	return 1;
}

/* returns HTTP code; fills buf */
/* ------------------------------------------- write log (differential test) */
/* Per collection, outside coll_t: the last body written to each key (kept after a DELETE),
 * and how many writes repeated it exactly ("duplicate writes"), how many DELETEs found
 * nothing. GET /_ctl/writes?coll=c answers them, DELETE /_ctl/writes?coll=c clears them. */
static json_t *g_wlog;

static json_t *wlog_of(const char *coll)
{
	json_t *w;
	if (!g_wlog) g_wlog = json_object();
	w = json_object_get(g_wlog, coll);
	if (!w) {
		w = json_pack("{s{}s{}sIsIsIsI}", "last", "dup_writes", "total_dup_writes", (json_int_t)0,
		              "writes", (json_int_t)0, "deletes", (json_int_t)0, "deletes_missing", (json_int_t)0);
		json_object_set_new(g_wlog, coll, w);
	}
	return w;
}

static void wlog_bump(json_t *w, const char *field)
{
	json_object_set_new(w, field, json_integer(json_integer_value(json_object_get(w, field)) + 1));
}

static void wlog_write(const char *coll, const char *key, json_t *body)
{
	json_t *w = wlog_of(coll), *last = json_object_get(w, "last");
	json_t *prev = json_object_get(last, key);
	wlog_bump(w, "writes");
	if (prev && json_equal(prev, body)) {
		json_t *d = json_object_get(w, "dup_writes");
		json_object_set_new(d, key, json_integer(json_integer_value(json_object_get(d, key)) + 1));
		wlog_bump(w, "total_dup_writes");
	}
	json_object_set_new(last, key, json_deep_copy(body));
}

static void wlog_delete(const char *coll, int found)
{
	json_t *w = wlog_of(coll);
	wlog_bump(w, "deletes");
	if (!found) wlog_bump(w, "deletes_missing");
}

static json_t *wlog_ctl(int m, const char *coll, int *code)
{
	if (!coll) { *code = 400; return err_json("need coll"); }
	if (m == M_DELETE) {
		if (g_wlog) json_object_del(g_wlog, coll);
		return json_pack("{sb}", "ok", 1);
	}
	json_t *w = json_deep_copy(wlog_of(coll));
	json_object_del(w, "last");
	return w;
}

/* Keyset cursor: `_cursor=k<key>` starts after the record with that key (the list must be
 * sorted by key, the default); with `_keyset=1` (or a k cursor) the next token is
 * `k<last key of the page>`, so records deleted or inserted before it shift nothing. */
static size_t keyset_start(coll_t *c, json_t **res, size_t n, const char *after)
{
	size_t i;
	for (i = 0; i < n; i++) {
		int ok, r = cmp_filter(json_object_get(res[i], c->keyf), after, &ok);
		if (ok && r > 0) break;
	}
	return i;
}

/* Set while a request matched by an ignore_limit or ignore_filter fault is handled (one
 * thread, no nesting). */
static int g_ignore_limit, g_ignore_filter;

static int do_list(coll_t *c, struct evhttp_request *req, struct evbuffer *out)
{
	struct evkeyvalq q;
	TAILQ_INIT(&q);
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	if (qs && evhttp_parse_query_str(qs, &q) < 0) {
		buf_json(out, json_pack("{ss}", "error", "bad query"));
		return 400;
	}
	filter_t fl[MAXFILTERS];
	int nfl = 0, code = 200;
	char *sortf[MAXSORT], *orders[MAXSORT];
	int desc[MAXSORT] = { 0 }, nsort = 0, nord = 0;
	char *sortdup = NULL, *orddup = NULL;
	long limit = -1, page = -1, offset = -1;
	const char *cursor = NULL;
	int envelope = 0, keyset = 0;
	const char *after = NULL;
	json_t *err = NULL;
	struct evkeyval *kv;
	TAILQ_FOREACH(kv, &q, next) {
		const char *k = kv->key, *v = kv->value;
		if (k[0] == '_') {
			if (!strcmp(k, "_sort")) { free(sortdup); sortdup = xstrdup(v); nsort = split_csv(sortdup, sortf, MAXSORT); }
			else if (!strcmp(k, "_order")) { free(orddup); orddup = xstrdup(v); nord = split_csv(orddup, orders, MAXSORT); }
			else if (!strcmp(k, "_limit")) { if (!parse_long(v, &limit) || limit < 0) err = err_json("bad _limit"); }
			else if (!strcmp(k, "_page")) { if (!parse_long(v, &page) || page < 1) err = err_json("bad _page"); }
			else if (!strcmp(k, "_offset")) { if (!parse_long(v, &offset) || offset < 0) err = err_json("bad _offset"); }
			else if (!strcmp(k, "_cursor")) cursor = v;
			else if (!strcmp(k, "_envelope")) envelope = strcmp(v, "0") && strcmp(v, "false");
			else if (!strcmp(k, "_keyset")) keyset = strcmp(v, "0") && strcmp(v, "false");
			if (err) break;
			continue;
		}
		if (nfl >= MAXFILTERS) { err = err_json("too many filters"); break; }
		size_t kl = strlen(k);
		static const struct { const char *suf; int op; } sufs[] = {
			{ "_gte", F_GTE }, { "_lte", F_LTE }, { "_gt", F_GT }, { "_lt", F_LT } };
		int op = F_EQ;
		size_t fl_len = kl;
		for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
			size_t sl = strlen(sufs[i].suf);
			if (kl > sl && !strcmp(k + kl - sl, sufs[i].suf)) { op = sufs[i].op; fl_len = kl - sl; break; }
		}
		if (op != F_EQ && g_ignore_filter) continue;	/* a source that ignores it */
		fl[nfl].field = strndup(k, fl_len);
		fl[nfl].op = op;
		fl[nfl].val = v;
		nfl++;
	}
	long off = 0;
	const char *style = "_page";
	if (!err && cursor) {
		style = "_cursor";
		if (cursor[0] == 'k') { after = cursor + 1; keyset = 1; }
		else if (cursor[0] != 'c' || !parse_long(cursor + 1, &off) || off < 0) err = err_json("bad _cursor");
	} else if (!err && offset >= 0) {
		style = "_offset";
		off = offset;
	} else if (!err && page >= 1 && limit >= 0) {
		off = (page - 1) * limit;
	}
	if (err) {
		buf_json(out, err);
		json_decref(err);
		code = 400;
		goto done;
	}
	for (int i = 0; i < nsort; i++)
		desc[i] = i < nord && !strcasecmp(orders[i], "desc");
	sortc_t *s = get_sort(c, nsort, sortf, desc);

	/* filtered-result cache key: sort spec + filters */
	struct evbuffer *fk = evbuffer_new();
	evbuffer_add_printf(fk, "%s\x03", s->spec);
	for (int i = 0; i < nfl; i++) evbuffer_add_printf(fk, "%s\x02%d\x02%s\x01", fl[i].field, fl[i].op, fl[i].val);
	evbuffer_add(fk, "", 1);
	char *fspec = (char *)evbuffer_pullup(fk, -1);
	/* Without an envelope (no total) only off + limit + 1 matches are needed: a seek
	 * request then costs what an indexed API would, not a scan; such a partial
	 * result is not cached. */
	size_t need = (!envelope && !keyset && limit >= 0 && !g_ignore_limit) ? (size_t)off + (size_t)limit + 1 : (size_t)-1;
	bool partial = false;
	if (!c->fspec || strcmp(c->fspec, fspec) || c->fpartial) {
		free(c->fspec); free(c->fres);
		c->fspec = xstrdup(fspec);
		c->fres = xcalloc(s->n, sizeof(json_t *));
		c->fn = 0;
		size_t start = 0;
		/* seek: first sort field ascending with a lower bound filter on it */
		if (s->nf > 0 && !s->desc[0]) {
			for (int i = 0; i < nfl; i++) {
				if (strcmp(fl[i].field, s->fields[0]) || (fl[i].op != F_GTE && fl[i].op != F_GT)) continue;
				size_t lo = 0, hi = s->n;
				while (lo < hi) {
					size_t mid = lo + (hi - lo) / 2;
					int ok, r = cmp_filter(s->ent[mid].v[0], fl[i].val, &ok);
					int pass = ok && (fl[i].op == F_GTE ? r >= 0 : r > 0);
					if (pass) hi = mid; else lo = mid + 1;
				}
				if (lo > start) start = lo;
			}
		}
		for (size_t i = start; i < s->n && c->fn < need; i++)
			if (rec_match(s->ent[i].rec, fl, nfl)) c->fres[c->fn++] = s->ent[i].rec;
		partial = c->fn >= need;
		c->fpartial = partial;
	}
	evbuffer_free(fk);

	size_t total = c->fn;
	if (after) off = (long)keyset_start(c, c->fres, c->fn, after);
	size_t b0 = (size_t)off < total ? (size_t)off : total;
	size_t e0 = total;
	if (limit >= 0 && (size_t)limit < total - b0) e0 = b0 + (size_t)limit;
	int has_next = limit > 0 && e0 < total;
	char *nurl = NULL, tok[48];
	snprintf(tok, sizeof tok, "c%zu", e0);
	if (keyset && e0 > b0) {
		char *lk = keytext(json_object_get(c->fres[e0 - 1], c->keyf));
		snprintf(tok, sizeof tok, "k%s", lk ? lk : "");
		free(lk);
	}
	if (has_next) {
		char pv[48];
		if (!strcmp(style, "_cursor")) snprintf(pv, sizeof pv, "%s", tok);
		else if (!strcmp(style, "_offset")) snprintf(pv, sizeof pv, "%zu", e0);
		else snprintf(pv, sizeof pv, "%ld", (page >= 1 ? page : 1) + 1);
		nurl = next_url(req, style, pv);
		struct evbuffer *lb = evbuffer_new();
		evbuffer_add_printf(lb, "<%s>; rel=\"next\"", nurl);
		evbuffer_add(lb, "", 1);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Link", (char *)evbuffer_pullup(lb, -1));
		evbuffer_free(lb);
	}
	if (g_ignore_limit)
		e0 = total;	/* a source that ignores the page size: Link as if it did not */
	if (envelope) evbuffer_add_printf(out, "{\"data\":");
	evbuffer_add(out, "[", 1);
	for (size_t i = b0; i < e0; i++) {
		if (i > b0) evbuffer_add(out, ",", 1);
		buf_json(out, c->fres[i]);
	}
	evbuffer_add(out, "]", 1);
	if (envelope) {
		json_t *nx = has_next ? json_string(tok) : json_null();
		json_t *nu = has_next ? json_string(nurl) : json_null();
		evbuffer_add_printf(out, ",\"next\":");
		buf_json(out, nx);
		evbuffer_add_printf(out, ",\"next_url\":");
		buf_json(out, nu);
		evbuffer_add_printf(out, ",\"total\":%zu}", total);
		json_decref(nx); json_decref(nu);
	}
	free(nurl);
done:
	for (int i = 0; i < nfl; i++) free(fl[i].field);
	free(sortdup); free(orddup);
	evhttp_clear_headers(&q);
	return code;
}

/* --------------------------------------------------------- destination */

/* create one record from obj (borrowed); returns status, *res = result (new ref) */
static int create_one(coll_t *c, json_t *obj, json_t **stored)
{
	*stored = NULL;
	if (!json_is_object(obj)) return 400;
	json_t *kv = json_object_get(obj, c->keyf);
	char *k;
	json_t *rec = json_deep_copy(obj);
	if (!kv || json_is_null(kv)) {
		char kb[64];
		int tries = 0;
		do { snprintf(kb, sizeof kb, "D-%lld", c->dnext++); } while (json_object_get(c->recs, kb) && ++tries < 1000000);
		json_object_set_new(rec, c->keyf, json_string(kb));
		k = xstrdup(kb);
	} else {
		k = keytext(kv);
		if (!k) { json_decref(rec); return 400; }
	}
	json_t *old = json_object_get(c->recs, k);
	int status = 201;
	if (old) {
		if (c->post_conflict) { json_decref(rec); free(k); return 409; }
		status = 200;
		json_t *oe = json_object_get(old, "erpId");
		json_object_set_new(rec, "erpId", oe ? json_incref(oe) : json_integer(c->erp_next++));
	} else {
		json_object_set_new(rec, "erpId", json_integer(c->erp_next++));
	}
	put_record(c, k, json_incref(rec));
	wlog_write(c->name, k, obj);
	count_key(c->deliv, k);
	c->total_deliv++;
	free(k);
	*stored = rec;
	return status;
}

static int do_api(coll_t *c, int m, const char *key, json_t *body, const char *berr,
                  struct evhttp_request *req, struct evbuffer *out, int *is_list)
{
	json_t *rec;
	*is_list = 0;
	if ((m == M_PUT || m == M_POST || m == M_PATCH) && !body) {
		json_t *e = err_json("invalid JSON body: %s", berr ? berr : "empty");
		buf_json(out, e); json_decref(e);
		return 400;
	}
	switch (m) {
	case M_GET:
		if (!key) { *is_list = 1; return do_list(c, req, out); }
		rec = json_object_get(c->recs, key);
		if (!rec) { buf_json(out, json_pack("{ss}", "error", "not found")); return 404; }
		buf_json(out, rec);
		return 200;
	case M_PUT: {
		if (!key) { json_t *e = err_json("PUT needs a key in the URL"); buf_json(out, e); json_decref(e); return 405; }
		if (!json_is_object(body)) { json_t *e = err_json("body must be a JSON object"); buf_json(out, e); json_decref(e); return 400; }
		if (c->put_req_existing && !json_object_get(c->recs, key)) { buf_json(out, json_pack("{ss}", "error", "not found")); return 404; }
		rec = json_deep_copy(body);
		if (!json_object_get(rec, c->keyf)) json_object_set_new(rec, c->keyf, json_string(key));
		put_record(c, key, json_incref(rec));
		wlog_write(c->name, key, rec);
		count_key(c->deliv, key);
		c->total_deliv++;
		buf_json(out, rec);
		json_decref(rec);
		return 200;
	}
	case M_POST: {
		if (key) { json_t *e = err_json("POST goes to the collection URL"); buf_json(out, e); json_decref(e); return 405; }
		if (json_is_array(body)) {
			json_t *res = json_array(), *item;
			size_t i;
			json_array_foreach(body, i, item) {
				json_t *st;
				int s = create_one(c, item, &st);
				json_t *r = json_pack("{si}", "status", s);
				if (st) {
					json_object_set(r, "id", json_object_get(st, c->keyf));
					json_object_set(r, "erpId", json_object_get(st, "erpId"));
					json_decref(st);
				} else {
					json_object_set_new(r, "error", json_string(s == 409 ? "exists" : "item must be a JSON object with a usable key"));
				}
				json_array_append_new(res, r);
			}
			buf_json(out, res);
			json_decref(res);
			return 200;
		}
		json_t *st;
		int s = create_one(c, body, &st);
		if (!st) {
			json_t *e = err_json(s == 409 ? "exists" : "body must be a JSON object (or array of objects)");
			buf_json(out, e); json_decref(e);
			return s;
		}
		buf_json(out, st);
		json_decref(st);
		return s;
	}
	case M_PATCH:
		if (!key) { json_t *e = err_json("PATCH needs a key in the URL"); buf_json(out, e); json_decref(e); return 405; }
		if (!json_is_object(body)) { json_t *e = err_json("body must be a JSON object"); buf_json(out, e); json_decref(e); return 400; }
		rec = json_object_get(c->recs, key);
		if (!rec) { buf_json(out, json_pack("{ss}", "error", "not found")); return 404; }
		{
			/* Conditional update: ?_if_<field>=<value> answers 412 when the record's field
			 * has another value (compare-and-set, like If-Match). */
			struct evkeyvalq q;
			struct evkeyval *kv;
			const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
			int mismatch = 0;
			TAILQ_INIT(&q);
			if (qs && evhttp_parse_query_str(qs, &q) == 0) {
				TAILQ_FOREACH(kv, &q, next) {
					if (strncmp(kv->key, "_if_", 4)) continue;
					json_t *fv = json_object_get(rec, kv->key + 4);
					char *ft = fv ? (json_is_string(fv) ? xstrdup(json_string_value(fv)) :
					    json_dumps(fv, JSON_ENCODE_ANY | JSON_COMPACT)) : NULL;
					if (!ft || strcmp(ft, kv->value)) mismatch = 1;
					free(ft);
				}
			}
			evhttp_clear_headers(&q);
			if (mismatch) {
				json_t *e = err_json("precondition failed: the record changed");
				buf_json(out, e); json_decref(e);
				return 412;
			}
		}
		json_object_update(rec, body);
		rec_replaced(c, rec, rec);
		count_key(c->patches, key);
		buf_json(out, rec);
		return 200;
	case M_DELETE:
		if (!key) { json_t *e = err_json("DELETE needs a key in the URL"); buf_json(out, e); json_decref(e); return 405; }
		if (json_object_del(c->recs, key) != 0) {
			wlog_delete(c->name, 0);
			buf_json(out, json_pack("{ss}", "error", "not found"));
			return 404;
		}
		wlog_delete(c->name, 1);
		coll_changed(c);
		return 204;
	default: {
		json_t *e = err_json("method not allowed"); buf_json(out, e); json_decref(e);
		return 405;
	}
	}
}

/* ------------------------------------------------------------ API flow */

typedef struct rq {
	struct evhttp_request *req;
	char *coll, *key;
	int m;
	json_t *body;
	char berr[256];
	int status, truncate, ignore_limit, ignore_filter;
	long retry_after;
	char *fbody;
	json_t *fheaders;
	struct event *tev;
	int hold;                /* held until /_ctl/release, then delay_ms */
	long delay_ms;
	long long seen;          /* its record in /_ctl/seen */
	struct rq *hnext;        /* the list of held requests, oldest first */
} rq_t;

static rq_t *held;

/* Held requests of collection cname (of all without it). */
static long held_count(const char *cname)
{
	long n = 0;
	for (rq_t *r = held; r; r = r->hnext)
		if (!cname || !strcmp(r->coll, cname)) n++;
	return n;
}

static int key_in(json_t *keys, const char *k)
{
	size_t i;
	json_t *v;
	if (!k) return 0;
	json_array_foreach(keys, i, v)
		if (!strcmp(json_string_value(v), k)) return 1;
	return 0;
}

static fault_t *match_fault(rq_t *r, coll_t *c)
{
	for (fault_t *f = faults; f; f = f->next) {
		if (f->times == 0) continue;
		if (strcmp(f->method, "*") && strcmp(f->method, mnames[r->m])) continue;
		if (f->coll && strcmp(f->coll, r->coll)) continue;
		if (f->keys) {
			int hit = 0;
			if (r->key) hit = key_in(f->keys, r->key);
			else if (r->m == M_POST && r->body) {
				json_t *items = json_is_array(r->body) ? r->body : NULL, *it;
				size_t i;
				if (!items) {
					char *k = keytext(json_object_get(r->body, c->keyf));
					hit = key_in(f->keys, k);
					free(k);
				} else json_array_foreach(items, i, it) {
					char *k = keytext(json_object_get(it, c->keyf));
					hit = key_in(f->keys, k);
					free(k);
					if (hit) break;
				}
			}
			if (!hit) continue;
		}
		return f;
	}
	return NULL;
}

static void rq_finish(rq_t *r)
{
	struct evhttp_request *req = r->req;
	coll_t *c = coll_get(r->coll);
	struct evbuffer *out = evbuffer_new();
	int code, is_list = 0;
	if (r->status) {
		code = r->status;
		if (r->fbody) evbuffer_add(out, r->fbody, strlen(r->fbody));
		else evbuffer_add_printf(out, "{\"error\":\"injected %d\"}", code);
		if (r->retry_after >= 0) {
			char ra[32];
			snprintf(ra, sizeof ra, "%ld", r->retry_after);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		}
	} else {
		g_ignore_limit = r->ignore_limit;
		g_ignore_filter = r->ignore_filter;
		code = do_api(c, r->m, r->key, r->body, r->berr, req, out, &is_list);
		g_ignore_limit = g_ignore_filter = 0;
		if (r->retry_after >= 0) {
			char ra[32];
			snprintf(ra, sizeof ra, "%ld", r->retry_after);
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
		}
	}
	if (r->fheaders) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(req);
		const char *name;
		json_t *v;
		json_object_foreach(r->fheaders, name, v) {
			evhttp_remove_header(h, name);
			if (json_is_string(v)) evhttp_add_header(h, name, json_string_value(v));
		}
	}
	long long prev = g_seen_cur;
	g_seen_cur = r->seen;
	send_buf(req, code, out, r->truncate && !r->status);
	g_seen_cur = prev;
	if (c->inflight > 0) c->inflight--;
	if (is_list && code == 200) {
		c->list_gets++;
		/* one-shot triggers */
		trigger_t **pp = &c->trig;
		while (*pp) {
			trigger_t *t = *pp;
			if (++t->seen >= t->after) {
				*pp = t->next;
				t->next = NULL;
				run_mutation(c, t->touch, t->insert, t->field, t->extra);
				if (!g_quiet) fprintf(stderr, "sampleapp: mutate %s: touched %ld, inserted %ld\n", c->name, t->touch, t->insert);
				trig_free(t);
			} else pp = &t->next;
		}
	}
	if (r->tev) event_free(r->tev);
	json_decref(r->body);
	free(r->coll); free(r->key); free(r->fbody);
	json_decref(r->fheaders);
	free(r);
}

static void rq_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev;
	rq_finish(arg);
}

/* Answer a request now, or after delay ms on an evtimer (never blocking the loop). */
static void rq_go(rq_t *r, long delay)
{
	if (delay > 0) {
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
		r->tev = evtimer_new(base, rq_timer, r);
		evtimer_add(r->tev, &tv);
		return;
	}
	rq_finish(r);
}

static int method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: return M_GET;
	case EVHTTP_REQ_PUT: return M_PUT;
	case EVHTTP_REQ_POST: return M_POST;
	case EVHTTP_REQ_PATCH: return M_PATCH;
	case EVHTTP_REQ_DELETE: return M_DELETE;
	default: return M_OTHER;
	}
}

static json_t *read_body(struct evhttp_request *req, char *errbuf, size_t errlen)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (!len) { snprintf(errbuf, errlen, "empty body"); return NULL; }
	const char *p = (const char *)evbuffer_pullup(in, -1);
	json_error_t e;
	json_t *j = json_loadb(p, len, JSON_DECODE_ANY, &e);
	if (!j) snprintf(errbuf, errlen, "line %d: %s", e.line, e.text);
	return j;
}

static void api_cb(struct evhttp_request *req, const char *path)
{
	/* path = after "/api/" */
	const char *slash = strchr(path, '/');
	char *cn = slash ? strndup(path, (size_t)(slash - path)) : xstrdup(path);
	char *coll = evhttp_uridecode(cn, 0, NULL);
	free(cn);
	char *key = NULL;
	if (slash && slash[1]) key = evhttp_uridecode(slash + 1, 0, NULL);
	if (!coll || !*coll) {
		free(coll); free(key);
		send_json(req, 404, err_json("no collection in path"));
		return;
	}
	rq_t *r = xcalloc(1, sizeof *r);
	r->req = req;
	r->coll = coll;
	r->key = key;
	r->m = method_of(req);
	r->retry_after = -1;
	r->seen = g_seen_cur;
	if (r->m == M_PUT || r->m == M_POST || r->m == M_PATCH)
		r->body = read_body(req, r->berr, sizeof r->berr);
	coll_t *c = coll_get(coll);
	c->req[r->m]++;
	if (++c->inflight > c->max_inflight) c->max_inflight = c->inflight;
	fault_t *f = match_fault(r, c);
	long delay = 0;
	if (f) {
		if (f->times > 0) f->times--;
		r->status = f->status;
		r->truncate = f->truncate;
		r->ignore_limit = f->ignore_limit;
		r->ignore_filter = f->ignore_filter;
		r->retry_after = f->retry_after;
		r->fbody = f->body ? xstrdup(f->body) : NULL;
		r->fheaders = f->headers ? json_incref(f->headers) : NULL;
		delay = f->delay_ms;
	}
	if (f && f->hold) {
		rq_t **pp = &held;
		while (*pp) pp = &(*pp)->hnext;
		r->hold = 1;
		r->delay_ms = delay;
		*pp = r;
		return;
	}
	rq_go(r, delay);
}

/* Release up to n (all if n < 0) held requests of collection cname (of all without it),
 * oldest first; each then takes its rule's delay, if any. Returns how many. */
static long release_held(const char *cname, long n)
{
	long done = 0;
	rq_t **pp = &held;
	while (*pp && (n < 0 || done < n)) {
		rq_t *r = *pp;
		if (cname && strcmp(r->coll, cname)) { pp = &r->hnext; continue; }
		*pp = r->hnext;
		r->hnext = NULL;
		r->hold = 0;
		done++;
		rq_go(r, r->delay_ms);
	}
	return done;
}

/* Request log: every request but /_ctl/ ones, with its method, URI and headers, the first
 * REQLOG_MAX of them. GET /_ctl/requests answers {"requests":[...]}, DELETE clears it. */
#define REQLOG_MAX 10000
static json_t *g_reqlog;

static void reqlog_add(struct evhttp_request *req)
{
	struct evkeyval *kv;
	json_t *h = json_object();
	if (!g_reqlog) g_reqlog = json_array();
	if (json_array_size(g_reqlog) >= REQLOG_MAX) { json_decref(h); return; }
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
		json_object_set_new(h, kv->key, json_string(kv->value));
	json_array_append_new(g_reqlog, json_pack("{ssssso}", "method", mnames[method_of(req)],
	                      "uri", evhttp_request_get_uri(req), "headers", h));
}

/* --------------------------------------------------------------- control */

static const char *jstr(json_t *o, const char *k, const char *def)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : def;
}
static long long jint(json_t *o, const char *k, long long def)
{
	json_t *v = json_object_get(o, k);
	if (json_is_integer(v)) return json_integer_value(v);
	if (json_is_real(v)) return (long long)json_real_value(v);
	if (json_is_string(v)) { long x; if (parse_long(json_string_value(v), &x)) return x; }
	return def;
}
static int jbool(json_t *o, const char *k, int def)
{
	json_t *v = json_object_get(o, k);
	if (json_is_boolean(v)) return json_is_true(v);
	if (json_is_integer(v)) return json_integer_value(v) != 0;
	return def;
}

static void fault_free(fault_t *f)
{
	free(f->coll); json_decref(f->keys); free(f->body); json_decref(f->headers); free(f);
}

static json_t *fault_json(fault_t *f)
{
	json_t *o = json_pack("{ss si sI sI sb sb sI}", "method", f->method, "status", f->status,
	                      "times", (json_int_t)f->times, "delay_ms", (json_int_t)f->delay_ms,
	                      "truncate", f->truncate, "hold", f->hold,
	                      "retry_after", (json_int_t)f->retry_after);
	json_object_set_new(o, "coll", f->coll ? json_string(f->coll) : json_null());
	if (f->keys) json_object_set(o, "keys", f->keys);
	if (f->body) json_object_set_new(o, "body", json_string(f->body));
	return o;
}

/* coll name from query (?coll=) or body */
static char *ctl_coll(struct evhttp_request *req, json_t *body)
{
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	char *res = NULL;
	if (qs) {
		struct evkeyvalq q;
		TAILQ_INIT(&q);
		if (evhttp_parse_query_str(qs, &q) == 0) {
			const char *v = evhttp_find_header(&q, "coll");
			if (v && *v) res = xstrdup(v);
		}
		evhttp_clear_headers(&q);
	}
	if (!res && json_is_object(body) && jstr(body, "coll", NULL)) res = xstrdup(jstr(body, "coll", NULL));
	return res;
}

static const char *qparam(struct evhttp_request *req, const char *name, char *buf, size_t len)
{
	const char *qs = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	const char *res = NULL;
	if (qs) {
		struct evkeyvalq q;
		TAILQ_INIT(&q);
		if (evhttp_parse_query_str(qs, &q) == 0) {
			const char *v = evhttp_find_header(&q, name);
			if (v) { snprintf(buf, len, "%s", v); res = buf; }
		}
		evhttp_clear_headers(&q);
	}
	return res;
}

/* ------------------------------------- rate limits, blocks, what it saw */
/* A server that meters its clients: sliding-window limits per path prefix (POST
 * /_ctl/limit), one-shot blocks (POST /_ctl/block), and a bounded record of every request
 * but the /_ctl/ ones (GET /_ctl/seen), from which a test computes the densest window and
 * the requests that came while the client had been told to wait.  All times are
 * monotonic milliseconds: the wall clock may jump, a test's windows must not. */

#define LIMIT_MAX 16
#define LIMIT_N_MAX 1000000L
#define WINDOW_MS_MAX (31LL * 86400 * 1000)
#define PREFIX_MAX 256
#define BLOCK_MAX 1024
#define PENDING_MAX 16
#ifndef SEEN_MAX
#define SEEN_MAX 200000        /* -DSEEN_MAX=5 to watch the ring turn */
#endif
#define SEEN_LIST_MAX 10000
#define TOKEN_KEEP 128          /* bytes of a bearer token kept in the record */

enum { RA_NONE, RA_SECONDS, RA_DATE, RA_FIXED };
enum { RH_NONE, RH_IETF, RH_X, RH_X_EPOCH };

typedef struct {
	char prefix[PREFIX_MAX];
	char name[64];          /* the policy's name in RateLimit/RateLimit-Policy */
	long n;
	long long window_ms;
	int status;             /* 429 or 503 */
	int ra;                 /* RA_* */
	long ra_fixed;
	int hdr;                /* RH_* */
	long long *t;           /* accepted arrivals inside the window, oldest at off */
	size_t off, len, cap;
	long long accepted, rejected;
} limit_t;

typedef struct {
	char prefix[PREFIX_MAX];
	long long seconds;
	int ra, status, enforce;
	long long seq;          /* the request that got the 429 (-1: still pending) */
	long long start, end;   /* monotonic ms */
} block_t;

typedef struct {
	long long seq, t;
	int m, status;          /* status 0: not answered yet */
	char *path, *token;
} seen_t;

static limit_t *g_limits[LIMIT_MAX];
static int g_nlimits;
static block_t g_pending[PENDING_MAX];
static int g_npending;
static block_t g_blocks[BLOCK_MAX];     /* triggered blocks, oldest first */
static int g_nblocks;
static long long g_blocks_dropped;
static seen_t *g_seen;                  /* ring of SEEN_MAX, indexed by seq % SEEN_MAX */
static long long g_seen_next, g_seen_first;
static long long g_seen_dropped;       /* records the ring overwrote since the last clear */
static char g_protect[LIMIT_MAX][PREFIX_MAX];
static int g_nprotect;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long ceil_s(long long ms)
{
	return ms <= 0 ? 0 : (ms + 999) / 1000;
}

static int has_prefix(const char *path, const char *prefix)
{
	return !strncmp(path, prefix, strlen(prefix));
}

/* An HTTP date delta_ms from now, rounded up to the next second: a client that obeys it
 * waits at least delta_ms, whatever the Date header's truncation. */
static void http_date_in(char *b, size_t len, long long delta_ms)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	long long ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000 + delta_ms;
	time_t t = (time_t)((ms + 999) / 1000);
	gmtime_r(&t, &tm);
	strftime(b, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void set_header(struct evhttp_request *req, const char *name, const char *value)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_remove_header(h, name);
	evhttp_add_header(h, name, value);
}

static void set_retry_after(struct evhttp_request *req, int ra, long fixed, long long delta_ms)
{
	char b[64];
	if (ra == RA_NONE) return;
	if (ra == RA_DATE) http_date_in(b, sizeof b, delta_ms);
	else if (ra == RA_FIXED) snprintf(b, sizeof b, "%ld", fixed);
	else snprintf(b, sizeof b, "%lld", ceil_s(delta_ms) > 0 ? ceil_s(delta_ms) : 1);
	set_header(req, "Retry-After", b);
}

/* "seconds" | "http-date" | N (a fixed value, whatever the wait) | null. -1: bad. */
static int parse_ra(json_t *v, long *fixed)
{
	long x;
	if (!v || json_is_null(v)) return RA_NONE;
	if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 86400L * 366) {
		*fixed = (long)json_integer_value(v);
		return RA_FIXED;
	}
	if (!json_is_string(v)) return -1;
	if (!strcmp(json_string_value(v), "seconds")) return RA_SECONDS;
	if (!strcmp(json_string_value(v), "http-date")) return RA_DATE;
	if (parse_long(json_string_value(v), &x) && x >= 0 && x <= 86400L * 366) {
		*fixed = x;
		return RA_FIXED;
	}
	return -1;
}

static const char *ra_name(int ra)
{
	return ra == RA_SECONDS ? "seconds" : ra == RA_DATE ? "http-date" : ra == RA_FIXED ? "fixed" : NULL;
}

static const char *rh_name(int rh)
{
	return rh == RH_IETF ? "ratelimit" : rh == RH_X ? "x-ratelimit" : rh == RH_X_EPOCH ? "x-ratelimit-epoch" : NULL;
}

/* A path prefix from a control body: "/..." shorter than PREFIX_MAX, no control bytes. */
static const char *ctl_prefix(json_t *body)
{
	const char *p = jstr(body, "prefix", NULL);
	if (!p || p[0] != '/' || strlen(p) >= PREFIX_MAX) return NULL;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f) return NULL;
	return p;
}

/* Drop the arrivals that left the window. */
static void limit_prune(limit_t *l, long long now)
{
	while (l->len && l->t[l->off] <= now - l->window_ms) { l->off++; l->len--; }
	if (!l->len) l->off = 0;
}

static void limit_push(limit_t *l, long long now)
{
	if (l->off + l->len == l->cap) {
		if (l->off) {
			memmove(l->t, l->t + l->off, l->len * sizeof *l->t);
			l->off = 0;
		} else {
			size_t nc = l->cap ? l->cap * 2 : 64;
			if (nc > (size_t)l->n) nc = (size_t)l->n;
			long long *nt = realloc(l->t, nc * sizeof *nt);
			if (!nt) { perror("realloc"); exit(2); }
			l->t = nt;
			l->cap = nc;
		}
	}
	l->t[l->off + l->len++] = now;
}

/* Milliseconds until the oldest arrival in the window leaves it (0: window empty). */
static long long limit_reset_ms(const limit_t *l, long long now)
{
	return l->len ? l->t[l->off] + l->window_ms - now : 0;
}

static void limit_headers(struct evhttp_request *req, const limit_t *l, long long now)
{
	char b[PREFIX_MAX + 64];
	long rem = l->n - (long)l->len;
	long long reset = ceil_s(limit_reset_ms(l, now));
	if (rem < 0) rem = 0;
	if (l->hdr == RH_IETF) {
		snprintf(b, sizeof b, "\"%s\";q=%ld;w=%lld", l->name, l->n, ceil_s(l->window_ms));
		set_header(req, "RateLimit-Policy", b);
		snprintf(b, sizeof b, "\"%s\";r=%ld;t=%lld", l->name, rem, reset);
		set_header(req, "RateLimit", b);
	} else if (l->hdr == RH_X || l->hdr == RH_X_EPOCH) {
		snprintf(b, sizeof b, "%ld", l->n);
		set_header(req, "X-RateLimit-Limit", b);
		snprintf(b, sizeof b, "%ld", rem);
		set_header(req, "X-RateLimit-Remaining", b);
		snprintf(b, sizeof b, "%lld", l->hdr == RH_X ? reset : (long long)time(NULL) + reset);
		set_header(req, "X-RateLimit-Reset", b);
	}
}

static void limit_free(limit_t *l)
{
	if (l) free(l->t);
	free(l);
}

static void limits_clear(void)
{
	for (int i = 0; i < g_nlimits; i++) limit_free(g_limits[i]);
	g_nlimits = 0;
	g_npending = 0;
	for (int i = 0; i < g_nblocks; i++) g_blocks[i].enforce = 0;
}

static seen_t *seen_at(long long seq)
{
	if (!g_seen || seq < g_seen_first || seq >= g_seen_next) return NULL;
	return &g_seen[seq % SEEN_MAX];
}

static void seen_clear(void)
{
	for (long long s = g_seen_first; s < g_seen_next; s++) {
		seen_t *e = seen_at(s);
		free(e->path); free(e->token);
		e->path = e->token = NULL;
	}
	g_seen_first = g_seen_next;
	g_seen_dropped = 0;
	g_nblocks = 0;
	g_blocks_dropped = 0;
}

/* The bearer token of a request (malloc'd, at most TOKEN_KEEP bytes), or NULL. */
static char *bearer_of(struct evhttp_request *req)
{
	const char *a = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
	if (!a || strncasecmp(a, "Bearer ", 7)) return NULL;
	a += 7;
	while (*a == ' ') a++;
	return *a ? strndup(a, TOKEN_KEEP) : NULL;
}

/* Record a request on arrival; the oldest record makes room once SEEN_MAX are kept. */
static long long seen_add(struct evhttp_request *req, const char *path)
{
	if (!g_seen) g_seen = xcalloc(SEEN_MAX, sizeof *g_seen);
	if (g_seen_next - g_seen_first == SEEN_MAX) {
		seen_t *old = seen_at(g_seen_first);
		g_seen_first++;
		free(old->path); free(old->token);
		old->path = old->token = NULL;
		g_seen_dropped++;
	}
	seen_t *e = &g_seen[g_seen_next % SEEN_MAX];
	e->seq = g_seen_next;
	e->t = mono_ms();
	e->m = method_of(req);
	e->status = 0;
	e->path = strndup(path, PREFIX_MAX);
	e->token = bearer_of(req);
	if (!e->path) { perror("strndup"); exit(2); }
	return g_seen_next++;
}

static void seen_status(long long seq, int code)
{
	seen_t *e = seen_at(seq);
	if (e && !e->status) e->status = code;
}

static void block_record(const block_t *b)
{
	if (g_nblocks == BLOCK_MAX) {
		memmove(g_blocks, g_blocks + 1, (BLOCK_MAX - 1) * sizeof *g_blocks);
		g_nblocks--;
		g_blocks_dropped++;
	}
	g_blocks[g_nblocks++] = *b;
}

/* Answer a 429 (or the asked status) now, from a limit or a block, with its headers. */
static void gate_refuse(struct evhttp_request *req, int status, const char *why)
{
	send_json(req, status, json_pack("{ss}", "error", why));
}

static int oauth_check_bearer(struct evhttp_request *req);

/* Whether a request under a protected prefix, a block or a limit was answered here. */
static int gate(struct evhttp_request *req, const char *path, long long seq)
{
	long long now = mono_ms();
	int auth = 0;

	for (int i = 0; i < g_nprotect; i++)
		if (has_prefix(path, g_protect[i])) { auth = oauth_check_bearer(req); break; }
	for (int i = 0; i < g_npending; i++) {
		block_t *b = &g_pending[i];
		if (!has_prefix(path, b->prefix)) continue;
		b->seq = seq;
		b->start = now;
		b->end = now + b->seconds * 1000;
		block_record(b);
		set_retry_after(req, b->ra, (long)b->seconds, b->seconds * 1000);
		int st = b->status;
		memmove(b, b + 1, (size_t)(g_npending - i - 1) * sizeof *b);
		g_npending--;
		gate_refuse(req, st, "blocked");
		return 1;
	}
	for (int i = g_nblocks - 1; i >= 0; i--) {
		block_t *b = &g_blocks[i];
		if (!b->enforce || now >= b->end || !has_prefix(path, b->prefix)) continue;
		set_retry_after(req, b->ra, 0, b->end - now);
		gate_refuse(req, b->status, "blocked");
		return 1;
	}
	if (auth) {
		set_header(req, "WWW-Authenticate", auth == 1 ? "Bearer realm=\"sampleapp\"" :
		           "Bearer realm=\"sampleapp\", error=\"invalid_token\"");
		send_json(req, 401, json_pack("{ss}", "error", auth == 1 ? "missing bearer token" : "invalid_token"));
		return 1;
	}
	/* Every matching limit must have room; only then is the request counted in each. */
	limit_t *full = NULL, *tight = NULL;
	for (int i = 0; i < g_nlimits; i++) {
		limit_t *l = g_limits[i];
		if (!has_prefix(path, l->prefix)) continue;
		limit_prune(l, now);
		if (l->len >= (size_t)l->n &&
		    (!full || limit_reset_ms(l, now) > limit_reset_ms(full, now)))
			full = l;
	}
	if (full) {
		full->rejected++;
		limit_headers(req, full, now);
		set_retry_after(req, full->ra, full->ra_fixed, limit_reset_ms(full, now));
		gate_refuse(req, full->status, "rate limit exceeded");
		return 1;
	}
	for (int i = 0; i < g_nlimits; i++) {
		limit_t *l = g_limits[i];
		if (!has_prefix(path, l->prefix)) continue;
		limit_push(l, now);
		l->accepted++;
		if (l->hdr != RH_NONE && (!tight || l->n - (long)l->len < tight->n - (long)tight->len))
			tight = l;
	}
	if (tight) limit_headers(req, tight, now);
	return 0;
}

/* POST /_ctl/limit: add a limit (one of the same prefix and window is replaced). */
static json_t *limit_add(json_t *body, int *code)
{
	const char *prefix = ctl_prefix(body);
	long long n = jint(body, "rate", -1), w = jint(body, "window_ms", -1);
	long fixed = 0;
	int ra = parse_ra(json_object_get(body, "retry_after"), &fixed);
	const char *hs = jstr(body, "headers", NULL), *name = jstr(body, "name", "default");
	int hdr = !hs ? RH_NONE : !strcmp(hs, "ratelimit") ? RH_IETF : !strcmp(hs, "x-ratelimit") ? RH_X :
	    !strcmp(hs, "x-ratelimit-epoch") ? RH_X_EPOCH : -1;
	long long st = jint(body, "status", 429);

	*code = 400;
	if (!prefix) return err_json("prefix: a path starting with / (under %d bytes)", PREFIX_MAX);
	if (n < 1 || n > LIMIT_N_MAX) return err_json("rate: 1..%ld", LIMIT_N_MAX);
	if (w < 1 || w > WINDOW_MS_MAX) return err_json("window_ms: 1..%lld", WINDOW_MS_MAX);
	if (ra < 0) return err_json("retry_after: \"seconds\", \"http-date\", a number of seconds or null");
	if (hdr < 0 || (json_object_get(body, "headers") && !json_is_null(json_object_get(body, "headers")) && !hs))
		return err_json("headers: \"ratelimit\", \"x-ratelimit\", \"x-ratelimit-epoch\" or null");
	if (st != 429 && st != 503) return err_json("status: 429 or 503");
	if (strlen(name) >= sizeof g_limits[0]->name || strpbrk(name, "\"\\\r\n"))
		return err_json("name: under 64 bytes, no quote, backslash or line break");
	int i;
	for (i = 0; i < g_nlimits; i++)
		if (!strcmp(g_limits[i]->prefix, prefix) && g_limits[i]->window_ms == w) break;
	if (i == LIMIT_MAX) return err_json("at most %d limits", LIMIT_MAX);
	limit_t *l = xcalloc(1, sizeof *l);
	snprintf(l->prefix, sizeof l->prefix, "%s", prefix);
	snprintf(l->name, sizeof l->name, "%s", name);
	l->n = (long)n;
	l->window_ms = w;
	l->status = (int)st;
	l->ra = ra;
	l->ra_fixed = fixed;
	l->hdr = hdr;
	if (i < g_nlimits) limit_free(g_limits[i]);
	else g_nlimits++;
	g_limits[i] = l;
	*code = 200;
	return json_pack("{sbsi}", "ok", 1, "limits", g_nlimits);
}

static json_t *limit_list(void)
{
	long long now = mono_ms();
	json_t *a = json_array(), *p = json_array();
	for (int i = 0; i < g_nlimits; i++) {
		limit_t *l = g_limits[i];
		limit_prune(l, now);
		json_t *o = json_pack("{sssssIsIsIsIsIsi}", "prefix", l->prefix, "name", l->name,
		                      "rate", (json_int_t)l->n, "window_ms", (json_int_t)l->window_ms,
		                      "in_window", (json_int_t)l->len, "accepted", (json_int_t)l->accepted,
		                      "rejected", (json_int_t)l->rejected, "status", l->status);
		json_object_set_new(o, "retry_after", ra_name(l->ra) ? json_string(ra_name(l->ra)) : json_null());
		json_object_set_new(o, "headers", rh_name(l->hdr) ? json_string(rh_name(l->hdr)) : json_null());
		json_array_append_new(a, o);
	}
	for (int i = 0; i < g_npending; i++)
		json_array_append_new(p, json_pack("{sssI}", "prefix", g_pending[i].prefix,
		                      "seconds", (json_int_t)g_pending[i].seconds));
	return json_pack("{soso}", "limits", a, "blocks_pending", p);
}

/* POST /_ctl/block: the next request under prefix gets one 429 and a wait of S seconds. */
static json_t *block_add(json_t *body, int *code)
{
	const char *prefix = ctl_prefix(body);
	long long s = jint(body, "seconds", -1), st = jint(body, "status", 429);
	long fixed = 0;
	json_t *rv = json_object_get(body, "retry_after");
	int ra = rv ? parse_ra(rv, &fixed) : RA_SECONDS;

	*code = 400;
	if (!prefix) return err_json("prefix: a path starting with / (under %d bytes)", PREFIX_MAX);
	if (s < 1 || s > 86400) return err_json("seconds: 1..86400");
	if (ra == RA_FIXED) ra = RA_SECONDS;	/* the wait is "seconds" itself */
	if (ra < 0) return err_json("retry_after: \"seconds\", \"http-date\" or null");
	if (st != 429 && st != 503) return err_json("status: 429 or 503");
	if (g_npending == PENDING_MAX) return err_json("at most %d blocks pending", PENDING_MAX);
	block_t *b = &g_pending[g_npending++];
	memset(b, 0, sizeof *b);
	snprintf(b->prefix, sizeof b->prefix, "%s", prefix);
	b->seconds = s;
	b->ra = ra;
	b->status = (int)st;
	b->enforce = jbool(body, "enforce", 0);
	b->seq = -1;
	*code = 200;
	return json_pack("{sbsi}", "ok", 1, "pending", g_npending);
}

/* The densest window: the most arrivals t[j] with t[j] - t[i] < w, t sorted. */
static long max_in_window(const long long *t, size_t n, long long w, long long *at)
{
	long best = 0;
	size_t i = 0;
	for (size_t j = 0; j < n; j++) {
		while (t[j] - t[i] >= w) i++;
		if ((long)(j - i + 1) > best) { best = (long)(j - i + 1); *at = t[i]; }
	}
	return best;
}

/* The block interval an entry arrived in (after the request that got the 429), or NULL. */
static const block_t *in_block(const seen_t *e)
{
	for (int b = 0; b < g_nblocks; b++) {
		const block_t *k = &g_blocks[b];
		if (e->seq > k->seq && e->t < k->end && has_prefix(e->path, k->prefix)) return k;
	}
	return NULL;
}

static json_t *seen_entry(const seen_t *e)
{
	return json_pack("{sIsIsssssoso}", "seq", (json_int_t)e->seq, "t", (json_int_t)e->t,
	                 "method", mnames[e->m], "path", e->path,
	                 "token", e->token ? json_string(e->token) : json_null(),
	                 "status", e->status ? json_integer(e->status) : json_null());
}

/* GET /_ctl/seen?prefix=&window_ms=&grace_ms=&method=&list= */
/* Whether a record of what was seen is one a /_ctl/seen query asks about. */
static int seen_matches(const seen_t *e, const char *prefix, const char *method)
{
	return has_prefix(e->path, prefix) && (!method || !strcasecmp(method, mnames[e->m]));
}

static json_t *seen_query(struct evhttp_request *req, int *code)
{
	char pb[PREFIX_MAX], wb[32], gb[32], mb[16], lb[32];
	const char *prefix = qparam(req, "prefix", pb, sizeof pb);
	const char *ws = qparam(req, "window_ms", wb, sizeof wb), *gs = qparam(req, "grace_ms", gb, sizeof gb);
	const char *method = qparam(req, "method", mb, sizeof mb), *ls = qparam(req, "list", lb, sizeof lb);
	long w = 1000, grace = 0, list = 0;

	if ((ws && (!parse_long(ws, &w) || w < 1 || w > WINDOW_MS_MAX)) ||
	    (gs && (!parse_long(gs, &grace) || grace < 0)) ||
	    (ls && (!parse_long(ls, &list) || list < 0 || list > SEEN_LIST_MAX))) {
		*code = 400;
		return err_json("window_ms 1..%lld, grace_ms >= 0, list 0..%d", WINDOW_MS_MAX, SEEN_LIST_MAX);
	}
	if (!prefix) prefix = "";
	size_t n = 0;
	long long *t = xcalloc((size_t)(g_seen_next - g_seen_first), sizeof *t), at = 0;
	long after = 0, ingrace = 0, tokens = 0;
	json_t *st = json_object(), *entries = json_array();
	for (long long s = g_seen_first; s < g_seen_next; s++) {
		const seen_t *e = seen_at(s);
		if (!seen_matches(e, prefix, method)) continue;
		t[n++] = e->t;
		if (e->token) tokens++;
		const block_t *b = in_block(e);
		if (b && e->t < b->start + grace) ingrace++;
		else if (b) after++;
		char sk[16];
		snprintf(sk, sizeof sk, "%d", e->status);
		count_key(st, sk);
	}
	/* the last `list` matching entries, oldest first */
	for (long long s = g_seen_next - 1, k = 0; s >= g_seen_first && k < list; s--) {
		const seen_t *e = seen_at(s);
		if (!seen_matches(e, prefix, method)) continue;
		json_array_insert_new(entries, 0, seen_entry(e));
		k++;
	}
	long m = max_in_window(t, n, w, &at);
	free(t);
	json_t *blocks = json_array();
	for (int b = 0; b < g_nblocks; b++)
		json_array_append_new(blocks, json_pack("{sssIsI}", "prefix", g_blocks[b].prefix,
		                      "start", (json_int_t)g_blocks[b].start, "end", (json_int_t)g_blocks[b].end));
	json_t *res = json_pack("{sIsIsIsIsIsIsIsosIsosIsI}", "requests", (json_int_t)n,
	                        "max_in_window", (json_int_t)m, "window_ms", (json_int_t)w,
	                        "max_window_start", (json_int_t)at, "after_block", (json_int_t)after,
	                        "in_grace", (json_int_t)ingrace, "with_token", (json_int_t)tokens,
	                        "statuses", st, "dropped", (json_int_t)g_seen_dropped,
	                        "blocks", blocks, "blocks_dropped", (json_int_t)g_blocks_dropped,
	                        "now", (json_int_t)mono_ms());
	if (list) json_object_set_new(res, "entries", entries);
	else json_decref(entries);
	return res;
}

/* ------------------------------------------------- OAuth2 token endpoint */
/* POST /oauth/token (RFC 6749 §4.4, §6): client credentials and refresh grants, client
 * authentication by HTTP Basic or in the body, rotating refresh tokens with reuse
 * detection, and bearer tokens checked on protected prefixes (RFC 6750).  Tokens live in
 * two jansson objects used as hash tables; both are bounded. */

#define TOKENS_MAX 100000
#define FORM_MAX 8192
#define FORM_PARAMS_MAX 32
#define OAUTH_TIMES_MAX 10000
enum { RT_LIVE = 1, RT_USED, RT_REVOKED };
enum { AUTH_OK, AUTH_MISSING, AUTH_INVALID };

static struct oauth {
	char *client_id, *client_secret, *scope;
	long long expires_in, valid_ms;         /* valid_ms 0: expires_in seconds */
	int rotate, reuse_revokes;
	char fail[32];                          /* "", "invalid_grant", "invalid_client" */
	long long fail_times, delay_ms;
	json_t *access;                         /* token -> expiry (monotonic ms) */
	json_t *refresh;                        /* token -> RT_* */
	json_t *times;                          /* [{"t","grant","status"}] */
	json_t *last;                           /* the last token request's parameters, no secret */
	unsigned long long serial, rnd;
	long long cc, rt, other, refreshes, reused, unknown_refresh, bad_client, basic, body,
	    issued, expired_used, unknown, missing, authorized;
} g_oa;

static void oauth_free(void)
{
	free(g_oa.client_id); free(g_oa.client_secret); free(g_oa.scope);
	json_decref(g_oa.access); json_decref(g_oa.refresh); json_decref(g_oa.times); json_decref(g_oa.last);
}

/* Back to the defaults: no token, no counter, client "sampleapp" / "sampleapp-secret". */
static void oauth_reset(void)
{
	oauth_free();
	unsigned long long serial = g_oa.serial;
	memset(&g_oa, 0, sizeof g_oa);
	g_oa.serial = serial;	/* a token from before a reset stays unknown after it */
	g_oa.client_id = xstrdup("sampleapp");
	g_oa.client_secret = xstrdup("sampleapp-secret");
	g_oa.expires_in = 3600;
	g_oa.rotate = 1;
	g_oa.fail_times = -1;
	g_oa.access = json_object();
	g_oa.refresh = json_object();
	g_oa.times = json_array();
	g_oa.rnd = ((unsigned long long)time(NULL) << 20) ^ (unsigned long long)getpid() ^ 0x9e3779b97f4a7c15ULL;
}

/* A fresh token: a prefix, a serial and 64 random bits (not secret: this is a test tool). */
static char *oauth_token(const char *kind)
{
	char b[64];
	g_oa.rnd ^= g_oa.rnd << 13; g_oa.rnd ^= g_oa.rnd >> 7; g_oa.rnd ^= g_oa.rnd << 17;
	snprintf(b, sizeof b, "%s-%llu-%016llx", kind, ++g_oa.serial, g_oa.rnd);
	return xstrdup(b);
}

static long long oauth_valid_ms(void)
{
	return g_oa.valid_ms > 0 ? g_oa.valid_ms : g_oa.expires_in * 1000;
}

/* AUTH_OK, AUTH_MISSING or AUTH_INVALID (unknown or expired) for a protected request. */
static int oauth_check_bearer(struct evhttp_request *req)
{
	char *tok = bearer_of(req);
	if (!g_oa.access) oauth_reset();
	if (!tok) { g_oa.missing++; return AUTH_MISSING; }
	json_t *exp = json_object_get(g_oa.access, tok);
	free(tok);
	if (!exp) { g_oa.unknown++; return AUTH_INVALID; }
	if (json_integer_value(exp) <= mono_ms()) { g_oa.expired_used++; return AUTH_INVALID; }
	g_oa.authorized++;
	return AUTH_OK;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	    c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decode one form-encoded name or value (RFC 6749 appendix B): '+' a space, %XX a byte.
 * A bad escape, a NUL or bytes that are not UTF-8 are refused (NULL). */
static json_t *form_value(const char *s, size_t n)
{
	char *o = xmalloc(n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') o[k++] = ' ';
		else if (s[i] != '%') o[k++] = s[i];
		else if (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else { free(o); return NULL; }
		if (!o[k - 1]) { free(o); return NULL; }
	}
	json_t *v = json_stringn(o, k);
	free(o);
	return v;
}

/* Parse a form body into name -> value; a repeated name is refused (RFC 6749 §3.2). */
static json_t *form_parse(const char *s, size_t n, char *err, size_t errlen)
{
	json_t *f = json_object();
	size_t i = 0;
	int count = 0;
	while (i < n) {
		size_t e = i;
		while (e < n && s[e] != '&') e++;
		if (e > i) {
			const char *eq = memchr(s + i, '=', e - i);
			size_t nl = eq ? (size_t)(eq - (s + i)) : e - i;
			json_t *name = form_value(s + i, nl);
			json_t *val = form_value(eq ? eq + 1 : s + e, eq ? (size_t)(s + e - eq - 1) : 0);
			const char *why = !name || !val ? "bad form encoding" :
			    json_object_get(f, json_string_value(name)) ? "a parameter appears twice" :
			    ++count > FORM_PARAMS_MAX ? "too many parameters" : NULL;
			if (!why) json_object_set(f, json_string_value(name), val);
			json_decref(name); json_decref(val);
			if (why) { snprintf(err, errlen, "%s", why); json_decref(f); return NULL; }
		}
		i = e + 1;
	}
	return f;
}

/* Strict base64 (RFC 4648, padded): the decoded bytes, NUL-terminated, or NULL. */
static char *b64_decode(const char *s)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), k = 0;
	if (n % 4 || n > 4096) return NULL;
	char *o = xmalloc(n / 4 * 3 + 1);
	for (size_t i = 0; i < n; i += 4) {
		int v[4];
		for (int j = 0; j < 4; j++) {
			const char *p = s[i + j] ? strchr(al, s[i + j]) : NULL;
			v[j] = p ? (int)(p - al) : s[i + j] == '=' && i + 4 == n && j >= 2 ? -2 : -1;
			if (v[j] == -1 || (j == 3 && v[2] == -2 && v[3] != -2)) { free(o); return NULL; }
		}
		o[k++] = (char)(v[0] << 2 | v[1] >> 4);
		if (v[2] >= 0) o[k++] = (char)((v[1] & 15) << 4 | v[2] >> 2);
		if (v[3] >= 0) o[k++] = (char)((v[2] & 3) << 6 | v[3]);
	}
	o[k] = '\0';
	if (strlen(o) != k) { free(o); return NULL; }
	return o;
}

/* The client of a token request: NULL when it authenticated, else the error to answer
 * (*status 400 or 401). */
static const char *oauth_client(const char *authz, json_t *form, int *status)
{
	const char *bid = jstr(form, "client_id", NULL), *bsec = jstr(form, "client_secret", NULL);
	json_t *id = NULL, *sec = NULL;
	*status = 401;
	if (authz) {
		if (strncasecmp(authz, "Basic ", 6)) return "invalid_client";
		if (bsec) { *status = 400; return "invalid_request"; }	/* two methods at once */
		char *d = b64_decode(authz + 6), *colon = d ? strchr(d, ':') : NULL;
		if (colon) {
			id = form_value(d, (size_t)(colon - d));
			sec = form_value(colon + 1, strlen(colon + 1));
		}
		free(d);
		g_oa.basic++;
	} else if (bid && bsec) {
		id = json_string(bid);
		sec = json_string(bsec);
		g_oa.body++;
	}
	int ok = id && sec && !strcmp(json_string_value(id), g_oa.client_id) &&
	    !strcmp(json_string_value(sec), g_oa.client_secret) &&
	    (!bid || !strcmp(bid, g_oa.client_id));
	json_decref(id); json_decref(sec);
	if (!ok) { g_oa.bad_client++; return "invalid_client"; }
	return NULL;
}

/* Issue an access token (and a refresh token when rt_new): the RFC 6749 §5.1 answer. */
static json_t *oauth_issue(json_t *form, int rt_new)
{
	if (json_object_size(g_oa.access) >= TOKENS_MAX) {
		long long now = mono_ms();
		const char *k;
		json_t *v, *tmp;
		json_object_foreach_safe(g_oa.access, tmp, k, v)
			if (json_integer_value(v) <= now) json_object_del(g_oa.access, k);
		if (json_object_size(g_oa.access) >= TOKENS_MAX) return NULL;
	}
	if (rt_new && json_object_size(g_oa.refresh) >= TOKENS_MAX) return NULL;
	char *at = oauth_token("at");
	json_object_set_new(g_oa.access, at, json_integer(mono_ms() + oauth_valid_ms()));
	json_t *res = json_pack("{sssssI}", "access_token", at, "token_type", "Bearer",
	                        "expires_in", (json_int_t)g_oa.expires_in);
	free(at);
	if (rt_new) {
		char *rt = oauth_token("rt");
		json_object_set_new(g_oa.refresh, rt, json_integer(RT_LIVE));
		json_object_set_new(res, "refresh_token", json_string(rt));
		free(rt);
	}
	const char *scope = jstr(form, "scope", g_oa.scope);
	if (scope) json_object_set_new(res, "scope", json_string(scope));
	g_oa.issued++;
	return res;
}

/* The refresh grant: a live token is spent (rotation) or kept; a spent one is reuse. */
static json_t *oauth_refresh(json_t *form, const char **err)
{
	const char *rt = jstr(form, "refresh_token", NULL);
	json_t *st = rt ? json_object_get(g_oa.refresh, rt) : NULL;
	if (!rt) { *err = "invalid_request"; return NULL; }
	if (!st) { g_oa.unknown_refresh++; *err = "invalid_grant"; return NULL; }
	if (json_integer_value(st) == RT_USED) {
		g_oa.reused++;
		if (g_oa.reuse_revokes) {
			const char *k;
			json_t *v;
			json_object_foreach(g_oa.refresh, k, v)
				if (json_integer_value(v) == RT_LIVE) json_integer_set(v, RT_REVOKED);
		}
		*err = "invalid_grant";
		return NULL;
	}
	if (json_integer_value(st) != RT_LIVE) { *err = "invalid_grant"; return NULL; }
	json_t *res = oauth_issue(form, g_oa.rotate);
	if (!res) { *err = "temporarily_unavailable"; return NULL; }
	if (g_oa.rotate) json_integer_set(st, RT_USED);
	g_oa.refreshes++;
	return res;
}

/* One token request; returns its status, *res the JSON answer. */
static int oauth_handle(const char *body, size_t len, const char *ctype, const char *authz,
                        json_t **res, int *basic_challenge)
{
	char err[64] = "";
	const char *e = NULL, *grant = NULL;
	int status = 400;
	json_t *form = NULL, *ok = NULL;

	*basic_challenge = authz != NULL;
	if (!ctype || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) ||
	    (ctype[33] && ctype[33] != ';' && ctype[33] != ' '))
		snprintf(err, sizeof err, "Content-Type must be application/x-www-form-urlencoded");
	else if (len > FORM_MAX)
		snprintf(err, sizeof err, "body over %d bytes", FORM_MAX);
	else if (memchr(body, '\0', len))
		snprintf(err, sizeof err, "a NUL byte in the body");
	else
		form = form_parse(body, len, err, sizeof err);
	grant = form ? jstr(form, "grant_type", NULL) : NULL;
	const char *kind = grant && !strcmp(grant, "client_credentials") ? "client_credentials" :
	    grant && !strcmp(grant, "refresh_token") ? "refresh_token" : "other";
	if (!strcmp(kind, "client_credentials")) g_oa.cc++;
	else if (!strcmp(kind, "refresh_token")) g_oa.rt++;
	else g_oa.other++;
	if (form) {
		json_decref(g_oa.last);
		g_oa.last = json_deep_copy(form);
		json_object_del(g_oa.last, "client_secret");
		json_object_del(g_oa.last, "refresh_token");
		json_object_set_new(g_oa.last, "client_auth", json_string(authz ? "basic" : "body"));
	}
	if (!form) e = "invalid_request";
	else if (!grant) { e = "invalid_request"; snprintf(err, sizeof err, "grant_type missing"); }
	else if (g_oa.fail[0] && g_oa.fail_times != 0) {
		if (g_oa.fail_times > 0) g_oa.fail_times--;
		e = g_oa.fail;
		status = strcmp(e, "invalid_client") ? 400 : 401;
	} else if ((e = oauth_client(authz, form, &status)) != NULL)
		;
	else if (!strcmp(grant, "client_credentials")) {
		if (!(ok = oauth_issue(form, 0))) e = "temporarily_unavailable";
	} else if (!strcmp(grant, "refresh_token"))
		ok = oauth_refresh(form, &e);
	else e = "unsupported_grant_type";
	if (e && strcmp(e, "invalid_client")) status = 400;
	if (e && !strcmp(e, "temporarily_unavailable")) status = 503;
	json_decref(form);	/* grant is gone with it */
	if (json_array_size(g_oa.times) < OAUTH_TIMES_MAX)
		json_array_append_new(g_oa.times, json_pack("{sIsssi}", "t", (json_int_t)mono_ms(),
		                      "grant", kind, "status", ok ? 200 : status));
	if (ok) { *res = ok; return 200; }
	*res = json_pack("{ss}", "error", e);
	if (err[0]) json_object_set_new(*res, "error_description", json_string(err));
	return status;
}

typedef struct {
	struct evhttp_request *req;
	long long seq;
	char *body, *ctype, *authz;
	size_t len;
	struct event *ev;
} otreq_t;

static void oauth_answer(otreq_t *o)
{
	json_t *res;
	int basic;
	if (!g_oa.access) oauth_reset();
	int code = oauth_handle(o->body, o->len, o->ctype, o->authz, &res, &basic);
	if (code == 401 && basic) set_header(o->req, "WWW-Authenticate", "Basic realm=\"sampleapp\"");
	set_header(o->req, "Cache-Control", "no-store");
	set_header(o->req, "Pragma", "no-cache");
	long long prev = g_seen_cur;
	g_seen_cur = o->seq;
	send_json(o->req, code, res);
	g_seen_cur = prev;
	if (o->ev) event_free(o->ev);
	free(o->body); free(o->ctype); free(o->authz);
	free(o);
}

static void oauth_timer(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev;
	oauth_answer(arg);
}

/* POST /oauth/token: answered now, or after delay_ms on an evtimer (a slow server). */
static void oauth_cb(struct evhttp_request *req, long long seq)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *ct = evhttp_find_header(h, "Content-Type"), *az = evhttp_find_header(h, "Authorization");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		set_header(req, "Allow", "POST");
		send_json(req, 405, json_pack("{ssss}", "error", "invalid_request", "error_description", "POST only"));
		return;
	}
	otreq_t *o = xcalloc(1, sizeof *o);
	o->req = req;
	o->seq = seq;
	o->len = evbuffer_get_length(in);
	if (o->len > FORM_MAX) o->len = FORM_MAX + 1;	/* refused as too big; no need to copy it */
	o->body = xmalloc(o->len + 1);
	evbuffer_copyout(in, o->body, o->len);
	o->body[o->len] = '\0';
	o->ctype = ct ? xstrdup(ct) : NULL;
	o->authz = az ? xstrdup(az) : NULL;
	if (!g_oa.access) oauth_reset();
	if (g_oa.delay_ms > 0) {
		struct timeval tv = { g_oa.delay_ms / 1000, (g_oa.delay_ms % 1000) * 1000 };
		o->ev = evtimer_new(base, oauth_timer, o);
		evtimer_add(o->ev, &tv);
		return;
	}
	oauth_answer(o);
}

static void set_str(char **dst, json_t *v)
{
	free(*dst);
	*dst = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* POST /_ctl/oauth: the server's settings; fields left out keep their value. */
static json_t *oauth_conf(json_t *body, int *code)
{
	json_t *v;
	*code = 400;
	if (!json_is_object(body)) return err_json("POST a JSON object");
	if (!g_oa.access) oauth_reset();
	if ((v = json_object_get(body, "fail")) && !json_is_null(v) &&
	    (!json_is_string(v) || (strcmp(json_string_value(v), "invalid_grant") &&
	    strcmp(json_string_value(v), "invalid_client"))))
		return err_json("fail: \"invalid_grant\", \"invalid_client\" or null");
	long long ei = jint(body, "expires_in", g_oa.expires_in), vm = jint(body, "valid_ms", g_oa.valid_ms),
	    dm = jint(body, "delay_ms", g_oa.delay_ms);
	if (ei < 1 || ei > 86400LL * 366 || vm < 0 || vm > WINDOW_MS_MAX || dm < 0 || dm > 60000)
		return err_json("expires_in 1..31622400, valid_ms 0..%lld, delay_ms 0..60000", WINDOW_MS_MAX);
	static const char *const strs[] = { "client_id", "client_secret", "refresh_token" };
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
		if ((v = json_object_get(body, strs[i])) && (!json_is_string(v) || !json_string_length(v) ||
		    json_string_length(v) > 1024))
			return err_json("%s: a string of 1..1024 bytes", strs[i]);
	if (json_object_get(body, "refresh_token") && json_object_size(g_oa.refresh) >= TOKENS_MAX)
		return err_json("too many refresh tokens");
	if ((v = json_object_get(body, "client_id"))) set_str(&g_oa.client_id, v);
	if ((v = json_object_get(body, "client_secret"))) set_str(&g_oa.client_secret, v);
	if ((v = json_object_get(body, "scope"))) set_str(&g_oa.scope, v);
	if ((v = json_object_get(body, "refresh_token")))
		json_object_set_new(g_oa.refresh, json_string_value(v), json_integer(RT_LIVE));
	if ((v = json_object_get(body, "fail"))) {
		snprintf(g_oa.fail, sizeof g_oa.fail, "%s", json_is_string(v) ? json_string_value(v) : "");
		g_oa.fail_times = jint(body, "fail_times", -1);
	}
	g_oa.expires_in = ei;
	g_oa.valid_ms = vm;
	g_oa.delay_ms = dm;
	g_oa.rotate = jbool(body, "rotate", g_oa.rotate);
	g_oa.reuse_revokes = jbool(body, "reuse_revokes", g_oa.reuse_revokes);
	if (jbool(body, "revoke_access", 0)) {
		const char *k;
		json_t *x;
		long long now = mono_ms();
		json_object_foreach(g_oa.access, k, x) json_integer_set(x, now);
	}
	*code = 200;
	return json_pack("{sbsssIsIsbsbsosIsI}", "ok", 1, "client_id", g_oa.client_id,
	                 "expires_in", (json_int_t)g_oa.expires_in, "valid_ms", (json_int_t)oauth_valid_ms(),
	                 "rotate", g_oa.rotate, "reuse_revokes", g_oa.reuse_revokes,
	                 "fail", g_oa.fail[0] ? json_string(g_oa.fail) : json_null(),
	                 "fail_times", (json_int_t)g_oa.fail_times, "delay_ms", (json_int_t)g_oa.delay_ms);
}

/* GET /_ctl/oauth: what the token endpoint and the protected prefixes saw. */
static json_t *oauth_stats(void)
{
	long long now = mono_ms();
	long valid = 0, live = 0;
	const char *k;
	json_t *v;
	if (!g_oa.access) oauth_reset();
	json_object_foreach(g_oa.access, k, v) if (json_integer_value(v) > now) valid++;
	json_object_foreach(g_oa.refresh, k, v) if (json_integer_value(v) == RT_LIVE) live++;
	json_t *res = json_pack("{s{sIsIsIsI}sOsIsIsIsIsIsIsIsIsIs{sIsI}sIsisisI}",
	    "token_requests", "client_credentials", (json_int_t)g_oa.cc, "refresh_token", (json_int_t)g_oa.rt,
	    "other", (json_int_t)g_oa.other, "total", (json_int_t)(g_oa.cc + g_oa.rt + g_oa.other),
	    "times", g_oa.times, "issued", (json_int_t)g_oa.issued, "refreshes", (json_int_t)g_oa.refreshes,
	    "reused", (json_int_t)g_oa.reused, "unknown_refresh", (json_int_t)g_oa.unknown_refresh,
	    "bad_client", (json_int_t)g_oa.bad_client, "expired_used", (json_int_t)g_oa.expired_used,
	    "unknown", (json_int_t)g_oa.unknown, "missing", (json_int_t)g_oa.missing,
	    "authorized", (json_int_t)g_oa.authorized,
	    "client_auth", "basic", (json_int_t)g_oa.basic, "body", (json_int_t)g_oa.body,
	    "valid_tokens", (json_int_t)valid, "live_refresh_tokens", live,
	    "protected", g_nprotect, "now", (json_int_t)now);
	json_object_set_new(res, "last", g_oa.last ? json_incref(g_oa.last) : json_null());
	return res;
}

/* POST /_ctl/protect {"prefix":"/api/"}: requests under it need a bearer token. */
static json_t *protect_add(json_t *body, int *code)
{
	const char *p = ctl_prefix(body);
	*code = 400;
	if (!p) return err_json("prefix: a path starting with / (under %d bytes)", PREFIX_MAX);
	int i;
	for (i = 0; i < g_nprotect && strcmp(g_protect[i], p); i++)
		;
	if (i == LIMIT_MAX) return err_json("at most %d protected prefixes", LIMIT_MAX);
	if (i == g_nprotect) snprintf(g_protect[g_nprotect++], PREFIX_MAX, "%s", p);
	*code = 200;
	return json_pack("{sbsi}", "ok", 1, "protected", g_nprotect);
}

/* The control endpoints of this section, or NULL when `what` is none of them. */
static json_t *gate_ctl(struct evhttp_request *req, const char *what, int m, json_t *body, int *code)
{
	*code = 200;
	if (!strcmp(what, "limit") && m == M_POST) return limit_add(body, code);
	if (!strcmp(what, "limit") && m == M_GET) return limit_list();
	if (!strcmp(what, "limit") && m == M_DELETE) { limits_clear(); return json_pack("{sb}", "ok", 1); }
	if (!strcmp(what, "block") && m == M_POST) return block_add(body, code);
	if (!strcmp(what, "seen") && m == M_GET) return seen_query(req, code);
	if (!strcmp(what, "seen") && m == M_DELETE) { seen_clear(); return json_pack("{sb}", "ok", 1); }
	if (!strcmp(what, "oauth") && m == M_POST) return oauth_conf(body, code);
	if (!strcmp(what, "oauth") && m == M_GET) return oauth_stats();
	if (!strcmp(what, "oauth") && m == M_DELETE) { oauth_reset(); return json_pack("{sb}", "ok", 1); }
	if (!strcmp(what, "protect") && m == M_POST) return protect_add(body, code);
	if (!strcmp(what, "protect") && m == M_DELETE) { g_nprotect = 0; return json_pack("{sb}", "ok", 1); }
	return NULL;
}

static void ctl_cb(struct evhttp_request *req, const char *what)
{
	int m = method_of(req);
	char berr[256] = "";
	json_t *body = NULL;
	if (m == M_POST || m == M_PUT) {
		if (evbuffer_get_length(evhttp_request_get_input_buffer(req))) {
			body = read_body(req, berr, sizeof berr);
			if (!body) { send_json(req, 400, err_json("invalid JSON body: %s", berr)); return; }
		}
	}
	char *cname = ctl_coll(req, body);
	json_t *res = NULL;
	int code = 200;

	if (!strcmp(what, "fault")) {
		if (m == M_DELETE) {
			int n = 0;
			fault_t **pp = &faults;
			while (*pp) {
				fault_t *f = *pp;
				if (!cname || (f->coll && !strcmp(f->coll, cname))) { *pp = f->next; fault_free(f); n++; }
				else pp = &f->next;
			}
			res = json_pack("{si}", "removed", n);
		} else if (m == M_GET) {
			res = json_array();
			for (fault_t *f = faults; f; f = f->next) json_array_append_new(res, fault_json(f));
		} else if (m == M_POST && json_is_object(body)) {
			fault_t *f = xcalloc(1, sizeof *f);
			f->coll = cname ? xstrdup(cname) : NULL;
			snprintf(f->method, sizeof f->method, "%s", jstr(body, "method", "*"));
			for (char *p = f->method; *p; p++) if (*p >= 'a' && *p <= 'z') *p -= 32;
			f->status = (int)jint(body, "status", 0);
			f->times = jint(body, "times", -1);
			f->delay_ms = jint(body, "delay_ms", 0);
			f->truncate = jbool(body, "truncate", 0);
			f->ignore_limit = jbool(body, "ignore_limit", 0);
			f->ignore_filter = jbool(body, "ignore_filter", 0);
			f->hold = jbool(body, "hold", 0);
			f->retry_after = jint(body, "retry_after", -1);
			json_t *b = json_object_get(body, "body");
			if (json_is_string(b)) f->body = xstrdup(json_string_value(b));
			else if (b) f->body = json_dumps(b, DUMPF);
			json_t *hs = json_object_get(body, "headers");
			if (json_is_object(hs)) f->headers = json_incref(hs);
			json_t *ks = json_object_get(body, "keys");
			if (json_is_array(ks)) {
				f->keys = json_array();
				size_t i;
				json_t *v;
				json_array_foreach(ks, i, v) {
					char *t = keytext(v);
					if (t) json_array_append_new(f->keys, json_string(t));
					free(t);
				}
			}
			if (f->status && (f->status < 100 || f->status > 599)) {
				fault_free(f);
				code = 400; res = err_json("bad status");
			} else {
				fault_t **pp = &faults;
				int n = 1;
				while (*pp) { pp = &(*pp)->next; n++; }
				*pp = f;
				res = json_pack("{sbsi}", "ok", 1, "rules", n);
			}
		} else { code = 400; res = err_json("POST a JSON object, or DELETE"); }
	} else if (!strcmp(what, "mutate") && m == M_POST) {
		if (!cname || !json_is_object(body)) { code = 400; res = err_json("need coll"); }
		else {
			coll_t *c = coll_get(cname);
			trigger_t *t = xcalloc(1, sizeof *t);
			t->after = jint(body, "after_gets", 1);
			t->touch = jint(body, "touch", 0);
			t->insert = jint(body, "insert", 0);
			t->field = xstrdup(jstr(body, "field", "updatedAt"));
			json_t *ex = json_object_get(body, "extra");
			t->extra = json_is_object(ex) ? json_incref(ex) : NULL;
			if (t->after <= 0) {
				run_mutation(c, t->touch, t->insert, t->field, t->extra);
				trig_free(t);
				res = json_pack("{sbsb}", "ok", 1, "applied", 1);
			} else {
				trigger_t **pp = &c->trig;
				while (*pp) pp = &(*pp)->next;
				*pp = t;
				res = json_pack("{sbsb}", "ok", 1, "applied", 0);
			}
		}
	} else if (!strcmp(what, "gen") && m == M_POST) {
		long long n = body ? jint(body, "n", 0) : 0;
		if (!cname || n < 0 || n > MAX_GEN) { code = 400; res = err_json("need coll and 0 <= n <= %ld", MAX_GEN); }
		else {
			coll_t *c = coll_get(cname);
			const char *kf = jstr(body, "key", c->keyf);
			char *kfd = xstrdup(kf);
			free(c->keyf); c->keyf = kfd;
			const char *field = jstr(body, "field", "updatedAt");
			const char *fmt = jstr(body, "format", "rfc3339");
			int epoch = !strcmp(fmt, "epoch_ms");
			long long start = 0;
			json_t *sv = json_object_get(body, "start");
			if (json_is_integer(sv)) start = json_integer_value(sv);
			else if (!parse_rfc3339(jstr(body, "start", "2026-01-01T00:00:00.000Z"), &start)) {
				code = 400; res = err_json("bad start");
			}
			if (!res) {
				long long step = jint(body, "step_ms", 1000), ties = jint(body, "ties", 0),
				          tie_at = jint(body, "tie_at", 0);
				json_t *ex = json_object_get(body, "extra");
				json_decref(c->extra);
				c->extra = json_is_object(ex) ? json_incref(ex) : NULL;
				coll_changed(c);
				json_decref(c->recs);
				c->recs = json_object();
				for (long long i = 1; i <= n; i++) {
					json_t *rec = json_object();
					char kb[32];
					snprintf(kb, sizeof kb, "%lld", i);
					json_object_set_new(rec, c->keyf, json_integer(i));
					gen_fields(rec, i);
					long long ti = (ties > 0 && i >= tie_at && i < tie_at + ties) ? tie_at : i;
					json_object_set_new(rec, field, fmt_ts(start + ti * step, epoch));
					if (c->extra) json_object_update(rec, c->extra);
					json_object_set_new(c->recs, kb, rec);
				}
				res = json_pack("{sI}", "count", (json_int_t)n);
			}
		}
	} else if (!strcmp(what, "load") && m == M_POST) {
		char kb[256];
		const char *kf = qparam(req, "key", kb, sizeof kb);
		if (!cname || !json_is_array(body)) { code = 400; res = err_json("need ?coll= and a JSON array body"); }
		else {
			coll_t *c = coll_get(cname);
			if (kf && *kf) { free(c->keyf); c->keyf = xstrdup(kf); }
			json_t *nr = json_object(), *it;
			size_t i;
			json_array_foreach(body, i, it) {
				char *k = json_is_object(it) ? keytext(json_object_get(it, c->keyf)) : NULL;
				if (!k) { code = 400; res = err_json("item %zu: not an object with key field \"%s\"", i, c->keyf); break; }
				json_object_set(nr, k, it);
				free(k);
			}
			if (code == 200) {
				coll_changed(c);
				json_decref(c->recs);
				c->recs = nr;
				res = json_pack("{sI}", "count", (json_int_t)json_object_size(nr));
			} else json_decref(nr);
		}
	} else if (!strcmp(what, "update") && m == M_POST) {
		coll_t *c = cname ? coll_find(cname) : NULL;
		char *k = json_is_object(body) ? keytext(json_object_get(body, "key")) : NULL;
		json_t *rec = c && k ? json_object_get(c->recs, k) : NULL;
		if (!rec) { code = 404; res = err_json("not found"); }
		else {
			json_t *set = json_object_get(body, "set");
			const char *tf = jstr(body, "touch_field", NULL);
			long long mx = 0;
			int epoch = 0;
			if (tf) max_ts(c, tf, &mx, &epoch);
			if (json_is_object(set)) json_object_update(rec, set);
			if (tf) json_object_set_new(rec, tf, fmt_ts(mx + 1, epoch));
			rec_replaced(c, rec, rec);
			res = json_incref(rec);
		}
		free(k);
	} else if (!strcmp(what, "coll") && m == M_POST) {
		if (!cname) { code = 400; res = err_json("need coll"); }
		else {
			coll_t *c = coll_get(cname);
			const char *kf = jstr(body, "key", NULL);
			if (kf && *kf && strcmp(kf, c->keyf)) { free(c->keyf); c->keyf = xstrdup(kf); coll_changed(c); }
			c->put_req_existing = jbool(body, "put_requires_existing", c->put_req_existing);
			c->post_conflict = jbool(body, "post_conflict", c->post_conflict);
			res = json_pack("{sssssbsb}", "coll", c->name, "key", c->keyf,
			                "put_requires_existing", c->put_req_existing, "post_conflict", c->post_conflict);
		}
	} else if (!strcmp(what, "dump") && m == M_GET) {
		coll_t *c = cname ? coll_find(cname) : NULL;
		if (!c) res = json_array();
		else {
			/* stream it */
			free(cname);
			sortc_t *s = key_sort(c);
			struct evbuffer *out = evbuffer_new();
			evbuffer_add(out, "[", 1);
			for (size_t i = 0; i < s->n; i++) {
				if (i) evbuffer_add(out, ",", 1);
				buf_json(out, s->ent[i].rec);
			}
			evbuffer_add(out, "]", 1);
			send_buf(req, 200, out, 0);
			return;
		}
	} else if (!strcmp(what, "stats") && m == M_GET) {
		if (!cname) { code = 400; res = err_json("need coll"); }
		else {
			coll_t *c = coll_get(cname);
			json_t *rq = json_object();
			for (int i = 0; i < M_N; i++) json_object_set_new(rq, mnames[i], json_integer(c->req[i]));
			res = json_pack("{sIsosIsOsOsIsIsIsIss}", "count", (json_int_t)json_object_size(c->recs),
			                "requests", rq, "list_gets", (json_int_t)c->list_gets,
			                "deliveries", c->deliv, "patches", c->patches,
			                "total_deliveries", (json_int_t)c->total_deliv,
			                "max_inflight", (json_int_t)c->max_inflight, "inflight", (json_int_t)c->inflight,
			                "held", (json_int_t)held_count(cname), "key", c->keyf);
		}
	} else if (!strcmp(what, "reset_stats") && m == M_POST) {
		for (coll_t *c = colls; c; c = c->next)
			if (!cname || !strcmp(cname, c->name)) reset_stats(c);
		res = json_pack("{sb}", "ok", 1);
	} else if (!strcmp(what, "release") && m == M_POST) {
		res = json_pack("{sI}", "released",
		                (json_int_t)release_held(cname, jint(body, "n", -1)));
	} else if (!strcmp(what, "held") && m == M_GET) {
		res = json_pack("{sI}", "held", (json_int_t)held_count(cname));
	} else if (!strcmp(what, "requests") && (m == M_GET || m == M_DELETE)) {
		if (m == M_DELETE) { json_decref(g_reqlog); g_reqlog = NULL; }
		res = json_pack("{so}", "requests", g_reqlog ? json_incref(g_reqlog) : json_array());
	} else if (!strcmp(what, "writes") && (m == M_GET || m == M_DELETE)) {
		res = wlog_ctl(m, cname, &code);
	} else if (!strcmp(what, "date") && m == M_POST && json_is_string(json_object_get(body, "date"))
	    && strlen(json_string_value(json_object_get(body, "date"))) < sizeof g_date
	    && !strpbrk(json_string_value(json_object_get(body, "date")), "\r\n")) {
		snprintf(g_date, sizeof g_date, "%s", json_string_value(json_object_get(body, "date")));
		res = json_pack("{ss}", "date", g_date);
	} else if (!strcmp(what, "date") && m == M_DELETE) {
		g_date[0] = '\0';
		res = json_pack("{sb}", "ok", 1);
	} else if ((res = gate_ctl(req, what, m, body, &code)) != NULL) {
		;
	} else if (!strcmp(what, "reset") && m == M_POST) {
		g_date[0] = '\0';
		limits_clear();
		g_nprotect = 0;
		oauth_reset();
		json_decref(g_wlog);
		g_wlog = NULL;
		while (colls) { coll_t *n = colls->next; coll_free(colls); colls = n; }
		while (faults) { fault_t *n = faults->next; fault_free(faults); faults = n; }
		release_held(NULL, -1);
		res = json_pack("{sb}", "ok", 1);
	} else {
		code = 404;
		res = err_json("unknown control endpoint or method: %s", what);
	}
	free(cname);
	json_decref(body);
	send_json(req, code, res);
}

static void gen_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	{
		/* Like real servers, answer without Nagle's delay on keep-alive connections. */
		struct evhttp_connection *conn = evhttp_request_get_connection(req);
		struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn) : NULL;
		int one = 1;

		if (bev != NULL && bufferevent_getfd(bev) >= 0)
			(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (!path) path = "/";
	if (!strncmp(path, "/_ctl/", 6)) {
		ctl_cb(req, path + 6);
		return;
	}
	reqlog_add(req);
	g_seen_cur = seen_add(req, path);
	if (gate(req, path, g_seen_cur))
		;
	else if (!strncmp(path, "/api/", 5)) api_cb(req, path + 5);
	else if (!strcmp(path, "/oauth/token")) oauth_cb(req, g_seen_cur);
	else if (!strcmp(path, "/healthz")) send_json(req, 200, json_pack("{sb}", "ok", 1));
	else send_json(req, 404, err_json("no such path"));
	g_seen_cur = -1;
}

static void sig_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	event_base_loopbreak(base);
}

static void usage(void)
{
	fprintf(stderr, "usage: sampleapp [-p PORT] [--port-file FILE] [-q]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	int port = 0;
	const char *port_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-p") && i + 1 < argc) {
			long p;
			if (!parse_long(argv[++i], &p) || p < 0 || p > 65535) usage();
			port = (int)p;
		} else if (!strcmp(argv[i], "--port-file") && i + 1 < argc) port_file = argv[++i];
		else if (!strncmp(argv[i], "--port-file=", 12)) port_file = argv[i] + 12;
		else if (!strcmp(argv[i], "-q")) g_quiet = 1;
		else usage();
	}
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (!base) { fprintf(stderr, "sampleapp: event_base_new failed\n"); return 1; }
	struct evhttp *http = evhttp_new(base);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
	                                 EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
	evhttp_set_max_body_size(http, (ev_ssize_t)1 << 30);
	evhttp_set_timeout(http, 120);
	evhttp_set_gencb(http, gen_cb, NULL);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
	if (!bs) { fprintf(stderr, "sampleapp: cannot bind 127.0.0.1:%d: %s\n", port, strerror(errno)); return 1; }
	struct sockaddr_in sin;
	socklen_t sl = sizeof sin;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl) != 0) { perror("getsockname"); return 1; }
	g_port = ntohs(sin.sin_port);
	if (port_file) {
		size_t l = strlen(port_file) + 8;
		char *tmp = xmalloc(l);
		snprintf(tmp, l, "%s.tmp", port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", g_port) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
			fprintf(stderr, "sampleapp: cannot write %s: %s\n", port_file, strerror(errno));
			return 1;
		}
		free(tmp);
	}
	printf("listening on 127.0.0.1:%d\n", g_port);
	fflush(stdout);
	struct event *s1 = evsignal_new(base, SIGTERM, sig_cb, NULL);
	struct event *s2 = evsignal_new(base, SIGINT, sig_cb, NULL);
	evsignal_add(s1, NULL);
	evsignal_add(s2, NULL);
	event_base_dispatch(base);
	event_free(s1);
	event_free(s2);
	evhttp_free(http);
	while (colls) { coll_t *n = colls->next; coll_free(colls); colls = n; }
	while (faults) { fault_t *n = faults->next; fault_free(faults); faults = n; }
	limits_clear();
	seen_clear();
	free(g_seen);
	oauth_free();
	json_decref(g_reqlog);
	json_decref(g_wlog);
	event_base_free(base);
	return 0;
}
