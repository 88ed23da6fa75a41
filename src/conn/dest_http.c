/*
 * dest_http.c - an HTTP API as destination: one templated request per record, up to
 * `concurrency` in flight, the `create` request when the first answers 404. A 4xx other
 * than 408/429 refuses that record; anything still failing after http_req.c's retries fails
 * the batch. It never decides what happens to a refused record: the run does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn/dest_http.h"
#include "io/http_req.h"
#include "core/log.h"

struct dest_http {
	struct dest		 base;
	struct dest_item	*items;
	size_t			 n, next, inflight;
	struct http_call	**calls;	/* per item, while in flight */
	bool			*created;	/* per item: the create request was sent */
	bool			 deleting;	/* this batch deletes (destination.delete) */
	struct dh_req {
		struct dest_http	*dh;
		size_t			 i;
	}			*reqs;		/* per item: the callback's argument */
	bool			 failed;
	char			*error;
	dest_cb			 cb;
	void			*arg;
};

static void dh_launch(struct dest_http *);
static void dest_http_done(struct http_response *, void *);

/* Render and send the request (or the create request) for item i. */
static int
dh_send(struct dest_http *dh, size_t i, bool create, char **err)
{
	const struct dest_conf *c = &dh->base.job->dst;
	struct dest_item *it = &dh->items[i];
	struct tmpl_vals v = { .have = TV_KEY | TV_RECORD, .key = it->key, .record = it->rec,
	    .key_fields = dh->base.job->key, .nkey_fields = dh->base.job->nkey };
	const struct tmpl *ut = dh->deleting ? c->delete_url : create ? c->create_url : c->url;
	const struct tmpl *bt = dh->deleting ? NULL : create ? c->create_body : c->body;
	struct buf url, logurl, body;
	struct buf *hb = NULL;
	const char **hv = NULL;
	struct http_request rq;
	struct dh_req *r;
	int rc = -1;

	buf_init(&url);
	buf_init(&logurl);
	buf_init(&body);
	/* A value that would make a path segment "", "." or ".." (the collection, the
	 * parent) is refused by tmpl_render: that record fails, nothing is sent. */
	if (tmpl_render(ut, &v, false, &url, err) != 0 ||
	    tmpl_render(ut, &v, true, &logurl, err) != 0)
		goto out;
	if (bt != NULL && tmpl_render(bt, &v, false, &body, err) != 0)
		goto out;
	hb = xcalloc(c->nheaders + 1, sizeof *hb);
	hv = xcalloc(c->nheaders + 1, sizeof *hv);
	for (size_t h = 0; h < c->nheaders; h++) {
		buf_init(&hb[h]);
		if (tmpl_render(c->headers[h], &v, false, &hb[h], err) != 0)
			goto out;
		hv[h] = hb[h].data;
	}
	memset(&rq, 0, sizeof rq);
	rq.method = dh->deleting ? c->delete_method : create ? c->create_method : c->method;
	rq.url = url.data;
	rq.log_url = logurl.data;
	rq.headers = hv;
	rq.body = bt != NULL ? (body.data != NULL ? body.data : "") : NULL;
	rq.body_len = body.len;
	rq.auth = c->auth;
	rq.timeout_ms = (long)c->http.timeout_ms;
	rq.max_bytes = c->http.max_bytes;
	rq.tls_verify = c->http.tls_verify;
	rq.ca_file = c->http.ca_file;
	rq.retries = c->http.retries;
	r = &dh->reqs[i];
	r->dh = dh;
	r->i = i;
	dh->created[i] = create;
	dh->inflight++;
	dh->calls[i] = NULL;
	dh->calls[i] = http_send(&rq, dest_http_done, r);
	rc = 0;
out:
	if (hb != NULL)
		for (size_t h = 0; h < c->nheaders; h++)
			buf_free(&hb[h]);
	free(hb);
	free(hv);
	buf_free(&url);
	buf_free(&logurl);
	buf_free(&body);
	return rc;
}

static void
dh_finish_if_done(struct dest_http *dh)
{
	dest_cb cb;

	if (dh->inflight > 0 || (!dh->failed && dh->next < dh->n) || dh->cb == NULL)
		return;
	cb = dh->cb;
	dh->cb = NULL;
	if (dh->failed)
		cb(dh->arg, -1, dh->error);
	else
		cb(dh->arg, 0, NULL);
}

/* One answer: accepted, refused, retried as create, or the batch fails. */
static void
dest_http_done(struct http_response *resp, void *arg)
{
	struct dh_req *r = arg;
	struct dest_http *dh = r->dh;
	const struct dest_conf *c = &dh->base.job->dst;
	struct dest_item *it = &dh->items[r->i];
	size_t i = r->i;

	dh->calls[i] = NULL;
	dh->inflight--;
	if (dh->deleting && resp->status == 404) {
		it->outcome = DEST_OK;		/* already gone */
	} else if (resp->status >= 200 && resp->status < 300) {
		it->outcome = DEST_OK;
		if (resp->len > 0)
			it->answer = json_loadb(resp->body, resp->len, JSON_DECODE_ANY, NULL);
	} else if (resp->status == 404 && c->has_create && !dh->created[i] && !dh->deleting) {
		char *err = NULL;

		if (dh_send(dh, i, true, &err) != 0) {
			it->outcome = DEST_REFUSED;
			it->error = err;
		}
	} else if (resp->refused) {
		/* A budget or the credential refused it, not the record: the batch fails
		 * (a budget's refusal ends the run throttled). */
		if (!dh->failed) {
			dh->failed = true;
			dh->error = xstrdup(resp->error);
		}
	} else if (resp->not_started) {
		/* This record's request cannot be made (e.g. its URL is too long): refuse
		 * it, the others go on. */
		it->outcome = DEST_REFUSED;
		it->error = xasprintf("the request could not be sent: %s", resp->error);
	} else if (resp->status >= 400 && resp->status < 500 && !http_retryable(resp->status)) {
		char *ex = redact_excerpt(resp->body, resp->len, 200);

		it->outcome = DEST_REFUSED;
		it->error = xasprintf("destination answered HTTP %ld: %s", resp->status, ex);
		free(ex);
	} else if (!dh->failed) {
		dh->failed = true;
		if (resp->status == 0)
			dh->error = xasprintf("destination unreachable for key %s after %d "
			    "attempts: %s", it->key, resp->attempts, resp->error);
		else
			dh->error = xasprintf("destination answered HTTP %ld for key %s after %d "
			    "attempts", resp->status, it->key, resp->attempts);
	}
	dh_launch(dh);
	dh_finish_if_done(dh);
}

/* Start requests until `concurrency` are in flight. */
static void
dh_launch(struct dest_http *dh)
{
	const struct dest_conf *c = &dh->base.job->dst;

	while (!dh->failed && dh->next < dh->n && dh->inflight < (size_t)c->concurrency) {
		size_t i = dh->next++;
		char *err = NULL;

		if (dh_send(dh, i, false, &err) != 0) {
			dh->items[i].outcome = DEST_REFUSED;
			dh->items[i].error = err;
		}
	}
}

static void
dh_start(struct dest *ds, bool deleting, struct dest_item *items, size_t n, dest_cb cb,
    void *arg)
{
	struct dest_http *dh = (struct dest_http *)ds;

	free(dh->calls);
	free(dh->created);
	free(dh->reqs);
	free(dh->error);
	dh->deleting = deleting;
	dh->reqs = xcalloc(n + 1, sizeof *dh->reqs);
	dh->items = items;
	dh->n = n;
	dh->next = 0;
	dh->inflight = 0;
	dh->failed = false;
	dh->error = NULL;
	dh->calls = xcalloc(n + 1, sizeof *dh->calls);
	dh->created = xcalloc(n + 1, sizeof *dh->created);
	dh->cb = cb;
	dh->arg = arg;
	dh_launch(dh);
	dh_finish_if_done(dh);
}

static void
dh_deliver(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	dh_start(ds, false, items, n, cb, arg);
}

static void
dh_delete(struct dest *ds, struct dest_item *items, size_t n, dest_cb cb, void *arg)
{
	if (!ds->job->dst.has_delete) {
		cb(arg, -1, "destination.delete is not configured");
		return;
	}
	dh_start(ds, true, items, n, cb, arg);
}

static void
dh_cancel(struct dest *ds)
{
	struct dest_http *dh = (struct dest_http *)ds;

	for (size_t i = 0; dh->calls != NULL && i < dh->n; i++)
		if (dh->calls[i] != NULL) {
			http_cancel(dh->calls[i]);
			dh->calls[i] = NULL;
		}
	dh->inflight = 0;
	dh->cb = NULL;
}

static void
dh_free(struct dest *ds)
{
	struct dest_http *dh = (struct dest_http *)ds;

	dh_cancel(ds);
	free(dh->calls);
	free(dh->created);
	free(dh->reqs);
	free(dh->error);
	free(dh);
}

static const struct dest_ops dh_ops = { dh_deliver, dh_cancel, dh_free, dh_delete, NULL };

struct dest *
dest_http_new(const struct conn_env *env, const struct job_conf *job)
{
	struct dest_http *dh = xcalloc(1, sizeof *dh);

	dh->base.ops = &dh_ops;
	dh->base.env = env;
	dh->base.job = job;
	return &dh->base;
}
