/*
 * source_http.c - an HTTP/JSON API as source: renders the URL and query for one page,
 * fetches it through http_req.c, and finds the records and the way to the next page in the
 * answer. Any answer that is not a JSON array where the records should be is an error
 * naming the URL; it never hands on a partial page. An element of that array that is not
 * an object is handed on as it is: the strategy fails that record alone (run_record_key);
 * so does a record holding a value jansson refuses (json_mend).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"
#include "core/url.h"
#include "io/http_req.h"
#include "core/log.h"
#include "record/parse.h"
#include "conn/source_http.h"
#include "conn/source_page.h"

struct source_req {
	int			 kind;	/* CONN_HTTP (source_pg.c's reads: CONN_POSTGRESQL) */
	const struct job_conf	*job;
	struct http_call	*call;
	char			*log_url;
	bool			 single;	/* fetch by key: the body is one record */
	source_cb		 cb;
	void			*arg;
};

static void
fail(struct source_req *sr, const char *fmt, ...) PRINTF(2, 3);

static void
fail(struct source_req *sr, const char *fmt, ...)
{
	va_list ap;
	char *m;

	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	sr->cb(sr->arg, -1, NULL, m);
	free(m);
}

/* True when every element is an object. */
static bool
all_objects(json_t *a, size_t *bad)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v) {
		if (!json_is_object(v)) {
			*bad = i;
			return false;
		}
	}
	return true;
}

/*
 * The most records one answer may hold: page.size when the request tells the source
 * ({{limit}} in the URL or the query; a next link is the source's own, but the run asked
 * for page.size pages), else page.max_records. A larger answer is refused before any of
 * it is looked at: every record of a page is judged, delivered and checkpointed in one
 * turn of the loop, so its size must not be the source's choice.
 */
static int64_t
page_bound(const struct source_conf *sc, bool *asked)
{
	unsigned uses = sc->url != NULL ? tmpl_uses(sc->url) : 0;

	for (size_t i = 0; i < sc->nquery; i++)
		if (sc->query[i].value != NULL)
			uses |= tmpl_uses(sc->query[i].value);
	*asked = (uses & TV_LIMIT) != 0;
	return *asked ? sc->page_size : sc->page_max_records;
}

/* Whether n records are more than the page may hold; if so the request fails. */
static bool
too_many(struct source_req *sr, long n)
{
	bool asked;
	int64_t bound = page_bound(&sr->job->src, &asked);

	if (n <= bound)
		return false;
	if (asked)
		fail(sr, "job %s: GET %s answered %ld records for a page of %lld: the source "
		    "ignores the page size", sr->job->name, sr->log_url, n, (long long)bound);
	else
		fail(sr, "job %s: GET %s answered %ld records, more than "
		    "source.page.max_records (%lld)", sr->job->name, sr->log_url, n,
		    (long long)bound);
	return true;
}

static void
answered(struct http_response *resp, void *arg)
{
	struct source_req *sr = arg;
	const struct source_conf *sc = &sr->job->src;
	struct source_page *p;
	json_error_t je;
	json_t *body, *recs;
	size_t bad;

	sr->call = NULL;
	if (resp->not_started && resp->refused) {
		/* a budget or the credential: the error names the request already */
		fail(sr, "the source request could not be sent: %s", resp->error);
		goto out;
	}
	if (resp->not_started) {
		fail(sr, "the source request GET %.200s could not be sent: %s", sr->log_url,
		    resp->error);
		goto out;
	}
	if (resp->undecodable) {
		fail(sr, "source answer from GET %s cannot be used: %s (after %d attempts)",
		    sr->log_url, resp->error, resp->attempts);
		goto out;
	}
	if (resp->status == 0) {
		fail(sr, "source unreachable: GET %s: %s (after %d attempts)", sr->log_url,
		    resp->error, resp->attempts);
		goto out;
	}
	if (resp->status < 200 || resp->status > 299) {
		fail(sr, "source answered HTTP %ld to GET %s (after %d attempts)", resp->status,
		    sr->log_url, resp->attempts);
		goto out;
	}
	/* Counted on the text first: jansson would take ~300 bytes per record. */
	if (!sr->single && too_many(sr, json_count_at(resp->body, resp->len, sc->records)))
		goto out;
	/* A value jansson refuses fails its record, not the page (json_mend). */
	body = json_load_mended(resp->body, resp->len, JSON_ALLOW_NUL, &je);
	if (body == NULL) {
		fail(sr, "source sent malformed JSON from GET %s: %s at line %d column %d "
		    "(%zu bytes received)", sr->log_url, je.text, je.line, je.column, resp->len);
		goto out;
	}
	if (sr->single) {
		recs = json_array();
		json_array_append(recs, body);
	} else {
		recs = jsonx_path_get(body, sc->records);
		if (recs == NULL || !json_is_array(recs)) {
			fail(sr, "source answer from GET %s has no array of records at '%s'",
			    sr->log_url, sc->records[0] != '\0' ? sc->records : "(the body)");
			json_decref(body);
			goto out;
		}
		json_incref(recs);
	}
	if (!sr->single && too_many(sr, (long)json_array_size(recs))) {
		json_decref(recs);
		json_decref(body);
		goto out;
	}
	if (sr->single && !all_objects(recs, &bad)) {
		fail(sr, "source answer from GET %s is not a JSON object", sr->log_url);
		json_decref(recs);
		json_decref(body);
		goto out;
	}
	p = xcalloc(1, sizeof *p);
	p->records = recs;
	p->date = resp->date != NULL ? xstrdup(resp->date) : NULL;
	p->log_url = xstrdup(sr->log_url);
	if (sc->page_style == PAGE_LINK && resp->link_next != NULL)
		p->next_url = xstrdup(resp->link_next);
	if (sc->page_style == PAGE_NEXT) {
		json_t *n = jsonx_path_get(body, sc->page_next);

		if (json_is_string(n) && json_string_length(n) > 0) {
			const char *s = json_string_value(n);

			if (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0)
				p->next_url = xstrdup(s);
			else
				p->cursor = xstrdup(s);
		} else if (json_is_integer(n))
			p->cursor = xasprintf("%lld", (long long)json_integer_value(n));
	}
	json_decref(body);
	sr->cb(sr->arg, 0, p, NULL);
out:
	free(sr->log_url);
	free(sr);
}

/* Render the job's URL and query into url (and a redacted copy for logs). */
static int
render_url(const struct source_conf *sc, const struct tmpl *ut, const struct tmpl_vals *v,
    bool with_query, bool redact, struct buf *out, char **err)
{
	struct buf q;
	bool first;

	if (tmpl_render(ut, v, redact, out, err) != 0)
		return -1;
	if (!with_query)
		return 0;
	first = strchr(out->data, '?') == NULL;
	buf_init(&q);
	for (size_t i = 0; i < sc->nquery; i++) {
		int rc;

		buf_reset(&q);
		rc = tmpl_render(sc->query[i].value, v, redact, &q, err);
		if (rc == 1)
			continue;
		if (rc != 0) {
			char *e = xasprintf("query parameter '%s': %s", sc->query[i].name, *err);

			free(*err);
			*err = e;
			buf_free(&q);
			return -1;
		}
		buf_addc(out, first ? '?' : '&');
		first = false;
		url_escape(out, sc->query[i].name, strlen(sc->query[i].name));
		buf_addc(out, '=');
		buf_add(out, q.data != NULL ? q.data : "", q.len);
	}
	buf_free(&q);
	return 0;
}

static struct source_req *
start(const struct job_conf *job, const char *url, const char *log_url, bool single,
    source_cb cb, void *arg, char **errp)
{
	const struct source_conf *sc = &job->src;
	struct source_req *sr = xcalloc(1, sizeof *sr);
	struct buf *hb = xcalloc(sc->nheaders + 1, sizeof *hb);
	const char **hv = xcalloc(sc->nheaders + 1, sizeof *hv);
	struct http_request rq;
	struct tmpl_vals none = { 0 };
	char *err = NULL;

	sr->kind = CONN_HTTP;
	sr->job = job;
	sr->cb = cb;
	sr->arg = arg;
	sr->single = single;
	sr->log_url = xstrdup(log_url);
	for (size_t h = 0; h < sc->nheaders; h++) {
		buf_init(&hb[h]);
		if (tmpl_render(sc->headers[h], &none, false, &hb[h], &err) != 0) {
			*errp = xasprintf("source header %zu: %s", h + 1, err);
			free(err);
			for (size_t k = 0; k <= h; k++)
				buf_free(&hb[k]);
			free(hb);
			free(hv);
			free(sr->log_url);
			free(sr);
			return NULL;
		}
		hv[h] = hb[h].data;
	}
	memset(&rq, 0, sizeof rq);
	rq.method = "GET";
	rq.url = url;
	rq.log_url = log_url;
	rq.headers = hv;
	rq.timeout_ms = (long)sc->http.timeout_ms;
	rq.max_bytes = sc->http.max_bytes;
	rq.tls_verify = sc->http.tls_verify;
	rq.ca_file = sc->http.ca_file;
	rq.retries = sc->http.retries;
	rq.auth = sc->auth;
	sr->call = http_send(&rq, answered, sr);
	for (size_t h = 0; h < sc->nheaders; h++)
		buf_free(&hb[h]);
	free(hb);
	free(hv);
	return sr;
}

struct source_req *
source_http_fetch(const struct conn_env *env, const struct job_conf *job,
    const struct source_read *read, source_cb cb, void *arg, char **errp)
{
	const struct tmpl_vals *v = read->vals;
	const char *url = read->url;
	struct source_req *sr;
	struct buf u, lu;
	char *err = NULL;

	(void)env;	/* http.c has its own loop */
	buf_init(&u);
	buf_init(&lu);
	if (url != NULL) {
		char *r = redact_url(url), *why = NULL;

		/* A next link comes from the answer: the job's headers go only where the
		 * configuration says they may. */
		if (http_origin_allowed(url, job->src.origin != NULL ? job->src.origin : "",
		    job->src.allow_origins, job->src.nallow_origins, &why) != 0) {
			*errp = xasprintf("job %s: the next page link %s is not followed: %s "
			    "(a next link stays on the origin of source.url or one in "
			    "source.allow_origins, and never goes from https to http)",
			    job->name, r, why);
			free(why);
			free(r);
			return NULL;
		}
		buf_adds(&u, url);
		buf_adds(&lu, r);
		free(r);
	} else if (render_url(&job->src, job->src.url, v, true, false, &u, &err) != 0 ||
	    render_url(&job->src, job->src.url, v, true, true, &lu, &err) != 0) {
		*errp = xasprintf("source URL: %s", err);
		free(err);
		buf_free(&u);
		buf_free(&lu);
		return NULL;
	}
	sr = start(job, u.data, lu.data, false, cb, arg, errp);
	buf_free(&u);
	buf_free(&lu);
	return sr;
}

struct source_req *
source_http_fetch_key(const struct job_conf *job, const char *key, source_cb cb, void *arg,
    char **errp)
{
	struct tmpl_vals v = { .have = TV_KEY, .key = key };
	struct source_req *sr;
	struct buf u, lu;
	char *err = NULL;

	buf_init(&u);
	buf_init(&lu);
	if (render_url(&job->src, job->src.fetch, &v, false, false, &u, &err) != 0 ||
	    render_url(&job->src, job->src.fetch, &v, false, true, &lu, &err) != 0) {
		*errp = xasprintf("source fetch URL: %s", err);
		free(err);
		buf_free(&u);
		buf_free(&lu);
		return NULL;
	}
	sr = start(job, u.data, lu.data, true, cb, arg, errp);
	buf_free(&u);
	buf_free(&lu);
	return sr;
}

void
source_http_cancel(struct source_req *sr)
{
	if (sr->call != NULL)
		http_cancel(sr->call);
	free(sr->log_url);
	free(sr);
}
