/*
 * mark_http.c - marking records done at an HTTP source (strategy flag): one templated
 * request per record (source.mark), a bounded number in flight. 2xx = marked;
 * 409/412 = the record changed since it was read (a conditional request refused),
 * MARK_CONFLICT; anything else after http_req.c's retries = MARK_FAILED, to be retried at the
 * next run. 404 is a failure too, not "gone": the run has just read the record as pending,
 * so a 404 far more likely means a wrong source.mark URL (or a method the API does not
 * route) than a record deleted in between; taken as gone, every run would deliver every
 * record again, silently. The error names the (redacted) URL. It never decides what a
 * failed mark means for the record.
 */
#include <stdlib.h>
#include <string.h>

#include "io/http_req.h"
#include "core/log.h"
#include "conn/mark_http.h"

struct http_marker {
	struct source_marker	 base;
	const struct job_conf	*job;
	struct source_mark_item	*marks;
	size_t			 n, next, inflight, limit;
	struct http_call	**calls;
	struct hm_req {
		struct http_marker	*hm;
		size_t			 i;
		char			*log_url;	/* the URL with secrets masked */
	}			*reqs;
	source_mark_cb		 cb;
	void			*arg;
	struct event		*ev_done;	/* reports on a fresh loop turn */
	bool			 done;
	char			*error;		/* a budget refused a request: the marking
						 * stops and fails (its run ends throttled) */
};

static void hm_launch(struct http_marker *);

/* Call back once every mark has an outcome. */
static void
hm_finish_if_done(struct http_marker *hm)
{
	source_mark_cb cb = hm->cb;

	if (hm->inflight > 0 || (hm->error == NULL && hm->next < hm->n) || hm->done ||
	    cb == NULL)
		return;
	hm->done = true;
	hm->cb = NULL;
	cb(hm->arg, hm->error != NULL ? -1 : 0, hm->error);
}

static void
hm_answered(struct http_response *resp, void *arg)
{
	struct hm_req *rq = arg;
	struct http_marker *hm = rq->hm;
	struct source_mark_item *m = &hm->marks[rq->i];

	hm->calls[rq->i] = NULL;
	hm->inflight--;
	if (resp->refused) {	/* a budget or the credential: the marking fails */
		m->outcome = MARK_FAILED;
		m->error = xstrdup(resp->error);
		if (hm->error == NULL)
			hm->error = xstrdup(resp->error);
	} else if (resp->status >= 200 && resp->status < 300)
		m->outcome = MARK_OK;
	else if (resp->status == 409 || resp->status == 412) {
		m->outcome = MARK_CONFLICT;
		m->error = xasprintf("the record changed since it was read (HTTP %ld to the "
		    "marking request)", resp->status);
	} else if (resp->status == 404) {
		/* Read as pending a moment ago: not "gone", most likely a wrong mark URL. */
		m->outcome = MARK_FAILED;
		m->error = xasprintf("source answered HTTP 404 to the marking request %s %s for "
		    "a record this run read as pending (is source.mark.url right?)",
		    hm->job->src.mark_method, rq->log_url != NULL ? rq->log_url : "");
	} else {
		char *ex = redact_excerpt(resp->body, resp->len, 200);

		m->outcome = MARK_FAILED;
		if (resp->status == 0)
			m->error = xasprintf("marking request failed after %d attempts: %s",
			    resp->attempts, resp->error);
		else
			m->error = xasprintf("source answered HTTP %ld to the marking request: %s",
			    resp->status, ex);
		free(ex);
	}
	hm_launch(hm);
	hm_finish_if_done(hm);
}

/* Render and send the marking request for mark i; on a render error the mark fails. */
static void
hm_send(struct http_marker *hm, size_t i)
{
	const struct source_conf *sc = &hm->job->src;
	struct source_mark_item *m = &hm->marks[i];
	struct tmpl_vals v = { .have = TV_KEY | TV_RECORD, .key = m->key, .record = m->rec,
	    .dest = m->dest, .key_fields = hm->job->key, .nkey_fields = hm->job->nkey };
	struct buf url, logurl, body, *hb;
	const char **hv;
	struct http_request rq;
	struct hm_req *r;
	char *err = NULL;
	size_t h = 0;

	if (m->dest != NULL)
		v.have |= TV_DEST;
	buf_init(&url);
	buf_init(&logurl);
	buf_init(&body);
	hb = xcalloc(sc->mark_nheaders + 1, sizeof *hb);
	hv = xcalloc(sc->mark_nheaders + 1, sizeof *hv);
	if (tmpl_render(sc->mark_url, &v, false, &url, &err) != 0 ||
	    tmpl_render(sc->mark_url, &v, true, &logurl, &err) != 0 ||
	    (sc->mark_body != NULL && tmpl_render(sc->mark_body, &v, false, &body, &err) != 0))
		goto fail;
	for (h = 0; h < sc->mark_nheaders; h++) {
		buf_init(&hb[h]);
		if (tmpl_render(sc->mark_headers[h], &v, false, &hb[h], &err) != 0) {
			h++;
			goto fail;
		}
		hv[h] = hb[h].data;
	}
	memset(&rq, 0, sizeof rq);
	rq.method = sc->mark_method;
	rq.url = url.data;
	rq.log_url = logurl.data;
	rq.headers = hv;
	rq.body = sc->mark_body != NULL ? (body.data != NULL ? body.data : "") : NULL;
	rq.body_len = body.len;
	rq.auth = sc->mark_auth;
	rq.timeout_ms = (long)sc->http.timeout_ms;
	rq.max_bytes = sc->http.max_bytes;
	rq.tls_verify = sc->http.tls_verify;
	rq.ca_file = sc->http.ca_file;
	rq.retries = sc->http.retries;
	r = &hm->reqs[i];
	r->hm = hm;
	r->i = i;
	r->log_url = buf_steal(&logurl);
	hm->inflight++;
	hm->calls[i] = http_send(&rq, hm_answered, r);	/* answers even if it cannot start */
	goto out;
fail:
	m->outcome = MARK_FAILED;
	m->error = xasprintf("cannot mark record %s: %s", m->key, err);
	free(err);
out:
	for (size_t k = 0; k < h && k < sc->mark_nheaders; k++)
		buf_free(&hb[k]);
	free(hb);
	free(hv);
	buf_free(&url);
	buf_free(&logurl);
	buf_free(&body);
}

static void
hm_launch(struct http_marker *hm)
{
	while (hm->error == NULL && hm->next < hm->n && hm->inflight < hm->limit)
		hm_send(hm, hm->next++);
}

static void
hm_start(evutil_socket_t fd, short ev, void *arg)
{
	struct http_marker *hm = arg;

	hm_launch(hm);
	hm_finish_if_done(hm);
}

struct source_marker *
mark_http_start(const struct conn_env *env, const struct job_conf *job,
    struct source_mark_item *marks, size_t n, source_mark_cb cb, void *arg)
{
	struct http_marker *hm = xcalloc(1, sizeof *hm);
	static const struct timeval zero = { 0, 0 };

	hm->base.kind = CONN_HTTP;
	hm->job = job;
	hm->marks = marks;
	hm->n = n;
	hm->limit = job->dst.concurrency > 0 ? (size_t)job->dst.concurrency : 8;
	hm->calls = xcalloc(n + 1, sizeof *hm->calls);
	hm->reqs = xcalloc(n + 1, sizeof *hm->reqs);
	hm->cb = cb;
	hm->arg = arg;
	/* Start on the next loop turn so that the callback never runs before we return. */
	hm->ev_done = evtimer_new(env->base, hm_start, hm);
	evtimer_add(hm->ev_done, &zero);
	return &hm->base;
}

void
mark_http_cancel(struct source_marker *m)
{
	struct http_marker *hm = (struct http_marker *)m;

	for (size_t i = 0; i < hm->n; i++)
		if (hm->calls[i] != NULL)
			http_cancel(hm->calls[i]);
	event_free(hm->ev_done);
	for (size_t i = 0; i < hm->n; i++)
		free(hm->reqs[i].log_url);
	free(hm->calls);
	free(hm->reqs);
	free(hm->error);
	free(hm);
}
