/*
 * run.c - the life of one run: take or keep the job's lease, start the run in the state
 * store (fenced), hand over to the strategy, deliver batches, write fenced checkpoints,
 * and record the result. A run never writes state without its lease epoch, and a failing
 * run cancels everything in flight before it writes its result.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <event2/event.h>

#include "record/json.h"
#include "core/log.h"
#include "core/redact.h"
#include "run/metrics.h"
#include "run/run.h"
#include "store/state.h"

static void run_free(struct run *);

static void
timed_out(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	r->timed_out = true;
	run_fail(r, "run took longer than its run_timeout of %lld ms",
	    (long long)r->job->timeout_ms);
}

/* The run's figures, for metrics.c (which knows no run). */
static void
run_metrics(const struct run *r, bool ok, bool lease_lost)
{
	struct metrics_run m = {
		.job = r->job->name, .id = r->id, .ok = ok, .cut = r->cut,
		.lease_lost = lease_lost, .claim_failed = r->claim_failed,
		.ms = now_mono_ms() - r->started, .read = r->nread, .delivered = r->ndelivered,
		.skipped = r->nskipped, .failed = r->nfailed, .deleted = r->ndeleted,
		.error = r->fail_msg, .watermark = r->wm_text, .watermark_key = r->wm_key,
		.throttled = r->throttled_until != 0,
	};

	metrics_run_ended(&m);
}

/* The run is over (its result written, or not writable): tell the daemon, free it. */
static void
run_end(struct run *r, bool ok, bool lease_lost)
{
	struct run_env env = r->env;
	struct run_outcome o = { .ok = ok, .lease_lost = lease_lost,
	    .not_run = r->not_run, .claim_failed = r->claim_failed,
	    .throttled_until = r->throttled_until };

	run_metrics(r, ok, lease_lost);	/* status: counters move by this run's counts */
	run_free(r);
	env.ended(env.arg, &o);
}

/* Stop what the run has in flight: the source's request, the destination's, the strategy's. */
static void
cancel_inflight(struct run *r)
{
	source_cancel(r->sreq);
	r->sreq = NULL;
	if (r->dest != NULL)
		dest_cancel(r->dest);
	if (r->ops != NULL && r->ops->cancel != NULL)
		r->ops->cancel(r);
}

static void
lease_lost(struct run *r, const char *err)
{
	log_job(LOG_ERR, r->job->name, r->id, MSGID_LEASE_LOST,
	    "lease lost: the run stops without writing more state (%s)", err);
	*r->env.lease.epoch = 0;
	/* The pipeline may have a page in delivery and the next one on its way: both stop. */
	cancel_inflight(r);
	run_end(r, false, true);
}

static void
result_written(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	r->state_busy = false;
	if (rc == STATE_LEASE_LOST) {
		lease_lost(r, err);
		return;
	}
	if (rc != STATE_OK)
		log_job(LOG_ERR, r->job->name, r->id, NULL,
		    "could not record the run's result: %s", err);
	run_end(r, false, false);
}

#define CK_RETRY_FIRST_MS	200
#define CK_RETRY_MAX_MS		2000

/* One checkpoint on its way, sent again while its connection is lost. */
struct ck_send {
	struct run	*r;
	struct state_ck	*ck;
	state_cb	 cb;
	void		*arg;
	struct event	*ev;
	int64_t		 backoff_ms;
	int		 attempts;
};

static void ck_sent(void *, int, json_t *, const char *);

static void
ck_resend(evutil_socket_t fd, short ev, void *arg)
{
	struct ck_send *s = arg;
	struct run *r = s->r;

	(void)fd; (void)ev;
	s->attempts++;
	state_checkpoint(r->env.state, r->job->name, r->epoch, r->id, s->ck, ck_sent, s);
}

/*
 * The answer of a checkpoint. One lost with its connection (the database restarted, a
 * network cut) is sent again after a backoff while the lease is ours by the monotonic
 * clock: its "seq" makes a second application a no-op, so what it carries (failures,
 * unmarked records, hashes) is not lost with the connection. A fenced refusal or any
 * other error goes to the caller at once.
 */
static void
ck_sent(void *arg, int rc, json_t *res, const char *err)
{
	struct ck_send *s = arg;
	struct run *r = s->r;
	state_cb cb = s->cb;
	void *cbarg = s->arg;

	if (rc == STATE_CONN_LOST && *r->env.lease.epoch == r->epoch &&
	    now_mono_ms() + (uint64_t)s->backoff_ms < *r->env.lease.deadline) {
		struct timeval tv = { (time_t)(s->backoff_ms / 1000),
		    (suseconds_t)(s->backoff_ms % 1000 * 1000) };

		if (s->attempts == 1)
			log_job(LOG_WARNING, r->job->name, r->id, NULL, "checkpoint %lld not "
			    "written: %s; sending it again while the lease lasts",
			    (long long)json_integer_value(json_object_get(s->ck->d, "seq")), err);
		if (s->ev == NULL)
			s->ev = evtimer_new(r->env.base, ck_resend, s);
		evtimer_add(s->ev, &tv);
		s->backoff_ms = s->backoff_ms * 2 > CK_RETRY_MAX_MS ? CK_RETRY_MAX_MS :
		    s->backoff_ms * 2;
		return;
	}
	if (s->attempts > 1 && rc == STATE_OK)
		log_job(LOG_INFO, r->job->name, r->id, NULL, "checkpoint %lld written after %d "
		    "attempts%s", (long long)json_integer_value(json_object_get(s->ck->d, "seq")),
		    s->attempts, json_is_true(json_object_get(res, "repeated")) ?
		    " (the first had committed)" : "");
	if (s->ev != NULL)
		event_free(s->ev);
	state_ck_free(s->ck);
	free(s);
	cb(cbarg, rc, res, err);
}

/* Write one checkpoint of the run (ck: taken): numbered, and sent again after a lost
 * connection. */
static void
ck_write(struct run *r, struct state_ck *ck, state_cb cb, void *arg)
{
	struct ck_send *s = xcalloc(1, sizeof *s);

	s->r = r;
	s->ck = ck;
	s->cb = cb;
	s->arg = arg;
	s->backoff_ms = CK_RETRY_FIRST_MS;
	s->attempts = 1;
	json_object_set_new(ck->d, "seq", json_integer(++r->ck_seq));
	state_checkpoint(r->env.state, r->job->name, r->epoch, r->id, ck, ck_sent, s);
}

/*
 * Whether the run's last write hands the lease back, in the same transaction: the job is
 * no longer ours (rebalanced away, removed or disabled by a reload), or the daemon stops.
 */
static bool
run_gives_back(const struct run *r)
{
	return !r->env.keeps_lease(r->env.arg);
}

/* The failed run's result went with the lease. */
static void
released_with_result(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	if (rc == STATE_OK)
		*r->env.lease.epoch = 0;
	result_written(arg, rc, res, err);
}

/* Write a failed run's result (once no other state call is in flight). */
static void
write_failure(struct run *r)
{
	struct state_ck *ck;
	char *msg;

	if (r->id == 0) {
		run_end(r, false, false);
		return;
	}
	/* The message may quote a source or destination (invalid UTF-8, cut mid-character). */
	msg = run_error_text(r->fail_msg);
	ck = state_ck_new();
	json_decref(ck->d);
	ck->d = json_pack("{ss ss sI sI sI sI sI}", "result", r->cut ? "cut" :
	    r->throttled_until != 0 ? "throttled" : "failed",
	    "error", msg,
	    /* what the run did since its last checkpoint, so the history shows it all */
	    "read", (json_int_t)(r->nread - r->c_read),
	    "delivered", (json_int_t)(r->ndelivered - r->c_delivered),
	    "skipped", (json_int_t)(r->nskipped - r->c_skipped),
	    "nfailed", (json_int_t)(r->nfailed - r->c_failed),
	    "ndeleted", (json_int_t)(r->ndeleted - r->c_deleted));
	free(msg);
	r->state_busy = true;
	if (run_gives_back(r)) {
		json_object_set_new(ck->d, "release", json_true());
		ck_write(r, ck, released_with_result, r);
	} else
		ck_write(r, ck, result_written, r);
}

/* A state call came back: true when the run is failing and the caller must stop. */
bool
run_state_returned(struct run *r)
{
	r->state_busy = false;
	if (r->fail_msg == NULL)
		return false;
	write_failure(r);
	return true;
}

bool
run_state_usable(struct run *r, int rc, const char *err)
{
	if (run_state_returned(r))
		return false;
	if (rc != STATE_OK) {
		run_fail(r, "%s", err);
		return false;
	}
	return true;
}

void
run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	char *msg, *why;
	bool waits;

	if (r->finishing)
		return;
	r->finishing = true;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	waits = r->timed_out && !r->cut && r->env.budget_waits != NULL;
	/* the run's history, /jobs and the log line all show it: redacted once, here */
	msg = r->fail_msg = redact_text_free(msg);
	if (waits)
		(void)r->env.budget_waits(true, r->env.arg);
	cancel_inflight(r);
	if (waits && (why = r->env.budget_waits(false, r->env.arg)) != NULL) {
		/* A budget held a request past the run's time: throttled, not timed out. */
		free(r->fail_msg);
		msg = r->fail_msg = redact_text_free(why);
	}
	evtimer_del(r->ev_timeout);
	if (!r->cut && r->env.throttled != NULL)
		r->throttled_until = r->env.throttled(msg, r->env.arg);
	if (r->throttled_until != 0)
		log_job(LOG_NOTICE, r->job->name, r->id, MSGID_RUN_FAILED,
		    "run throttled after %llu ms: %s; it stops at its last checkpoint and runs "
		    "again then (read %lld, delivered %lld, skipped %lld, failed %lld)",
		    (unsigned long long)(now_mono_ms() - r->started), msg, r->nread,
		    r->ndelivered, r->nskipped, r->nfailed);
	else if (r->ops != NULL && r->ops->shows_watermark)
		log_job(LOG_ERR, r->job->name, r->id, MSGID_RUN_FAILED,
		    "run failed after %llu ms: %s (read %lld, delivered %lld, skipped %lld, "
		    "failed %lld; the watermark stays at %s)",
		    (unsigned long long)(now_mono_ms() - r->started), msg, r->nread,
		    r->ndelivered, r->nskipped, r->nfailed,
		    r->wm_done != NULL ? r->wm_done : "(none)");
	else
		log_job(LOG_ERR, r->job->name, r->id, MSGID_RUN_FAILED,
		    "run failed after %llu ms: %s (read %lld, delivered %lld, skipped %lld, "
		    "failed %lld)", (unsigned long long)(now_mono_ms() - r->started), msg,
		    r->nread, r->ndelivered, r->nskipped, r->nfailed);
	if (!r->state_busy)
		write_failure(r);
}

void
run_cut(struct run *r, const char *why)
{
	r->cut = true;
	run_fail(r, "%s", why);
}

/* Called once the final checkpoint (with result "ok") is written. */
void
run_finish_ok(struct run *r)
{
	if (r->nduplicates > 0)
		log_job(LOG_WARNING, r->job->name, r->id, NULL, "duplicates skipped: %lld "
		    "(their key came again later in the same page or batch; the last occurrence "
		    "went)", r->nduplicates);
	r->ops->log_finished(r, (unsigned long long)(now_mono_ms() - r->started));
	evtimer_del(r->ev_timeout);
	r->finishing = true;
	run_end(r, true, false);
}

struct ck_ctx {
	struct run	*r;
	run_step_cb	 next;
	long long	 read, delivered, skipped, failed, deleted;	/* counters it covers */
	bool		 released;	/* it gives the lease back */
	char		*wm;		/* the watermark it writes, if any */
};

static void
checkpointed(void *arg, int rc, json_t *res, const char *err)
{
	struct ck_ctx *c = arg;
	struct run *r = c->r;
	run_step_cb next = c->next;

	if (rc == STATE_OK && c->released)
		*r->env.lease.epoch = 0;
	if (rc == STATE_OK && c->wm != NULL) {
		free(r->wm_done);
		r->wm_done = c->wm;
		c->wm = NULL;
	}
	free(c->wm);
	if (rc == STATE_OK) {
		r->c_read = c->read;
		r->c_delivered = c->delivered;
		r->c_skipped = c->skipped;
		r->c_failed = c->failed;
		r->c_deleted = c->deleted;
	}
	free(c);
	if (rc == STATE_LEASE_LOST) {
		r->state_busy = false;
		lease_lost(r, err);
		return;
	}
	if (!run_state_usable(r, rc, err))
		return;
	if (json_is_object(res)) {
		json_t *dead = json_object_get(res, "dead");
		size_t i;
		json_t *k;

		json_array_foreach(dead, i, k)
			log_job(LOG_ERR, r->job->name, r->id, MSGID_RECORD_DEAD,
			    "record %s dead-lettered after %d attempts; it stays in the retry queue "
			    "marked dead until an operator retries it", json_string_value(k),
			    r->job->max_attempts);
		r->have_failures = json_integer_value(json_object_get(res, "failures")) > 0;
		metrics_state_answer(r->job->name, res);	/* status: queue sizes */
	}
	next(r, 0);
}

void
run_checkpoint(struct run *r, struct state_ck *ck, run_step_cb next)
{
	struct ck_ctx *c = xcalloc(1, sizeof *c);
	json_t *doc = ck->d;

	c->r = r;
	c->next = next;
	if (json_is_string(json_object_get(doc, "watermark")))
		c->wm = xstrdup(json_string_value(json_object_get(doc, "watermark")));
	c->read = r->nread;
	c->delivered = r->ndelivered;
	c->skipped = r->nskipped;
	c->failed = r->nfailed;
	c->deleted = r->ndeleted;
	json_object_set_new(doc, "read", json_integer(r->nread - r->c_read));
	json_object_set_new(doc, "delivered", json_integer(r->ndelivered - r->c_delivered));
	json_object_set_new(doc, "skipped", json_integer(r->nskipped - r->c_skipped));
	json_object_set_new(doc, "nfailed", json_integer(r->nfailed - r->c_failed));
	json_object_set_new(doc, "ndeleted", json_integer(r->ndeleted - r->c_deleted));
	json_object_set_new(doc, "max_attempts", json_integer(r->job->max_attempts));
	json_object_set_new(doc, "backoff_ms", json_integer(r->job->retry_backoff_ms));
	json_object_set_new(doc, "backoff_max_ms", json_integer(r->job->retry_backoff_max_ms));
	/* The run's last write hands the lease back when the job is no longer ours. */
	if (json_object_get(doc, "result") != NULL && run_gives_back(r)) {
		json_object_set_new(doc, "release", json_true());
		c->released = true;
	}
	r->state_busy = true;
	ck_write(r, ck, checkpointed, c);
}

struct dest_item *
run_add_item(struct run *r, const char *key, json_t *rec)
{
	struct dest_item *it;

	if (r->nitems == r->cap_items) {
		r->cap_items = r->cap_items ? r->cap_items * 2 : 64;
		r->items = xreallocarray(r->items, r->cap_items, sizeof *r->items);
	}
	it = &r->items[r->nitems++];
	memset(it, 0, sizeof *it);
	it->key = xstrdup(key);
	it->rec = json_incref(rec);
	return it;
}

void
run_drop_item(struct run *r, size_t i)
{
	free((char *)r->items[i].key);
	json_decref(r->items[i].rec);
	r->items[i] = r->items[--r->nitems];
}

static void
items_free(struct run *r)
{
	dest_items_clear(r->items, r->nitems);
	for (size_t i = 0; i < r->nitems; i++) {
		free((char *)r->items[i].key);
		json_decref(r->items[i].rec);
	}
	r->nitems = 0;
	r->next_item = 0;
}

char *
run_error_text(const char *error)
{
	/* redacted before it is cut: a secret cut in two would escape the registry */
	char *red = redact_text(error);
	char *e = jsonx_text_storable(red, strlen(red), RUN_ERROR_MAX);

	free(red);
	return e;
}

static void deliver_next(struct run *);

static void
batch_done(void *arg, int rc, const char *err)
{
	struct run *r = arg;

	if (rc != 0) {
		run_fail(r, "delivery failed: %s", err != NULL ? err : "unknown error");
		return;
	}
	deliver_next(r);
}

/* Deliver the next `batch` items, or report to the strategy when all have an outcome. */
static void
deliver_next(struct run *r)
{
	size_t n;

	if (r->next_item >= r->nitems) {
		run_step_cb next = r->delivered_cb;

		r->delivered_cb = NULL;
		next(r, 0);
		return;
	}
	n = r->nitems - r->next_item;
	if (n > (size_t)r->job->batch)
		n = (size_t)r->job->batch;
	r->batch_end = r->next_item + n;
	r->next_item += n;
	dest_deliver(r->dest, &r->items[r->batch_end - n], n, batch_done, r);
}

void
run_deliver(struct run *r, run_step_cb next)
{
	r->delivered_cb = next;
	r->next_item = 0;
	deliver_next(r);
}

void
run_set_swap(struct run *r, struct pageset *ps)
{
	struct pageset t = *ps;

	ps->items = r->items;
	ps->nitems = r->nitems;
	ps->cap_items = r->cap_items;
	ps->ck = r->ck;
	ps->last = r->last_page;
	r->items = t.items;
	r->nitems = t.nitems;
	r->cap_items = t.cap_items;
	r->ck = t.ck;
	r->last_page = t.last;
}

void
run_items_reset(struct run *r)
{
	items_free(r);
}

void
run_items_take(struct run *r, struct pageset *ps)
{
	ps->items = r->items;
	ps->nitems = r->nitems;
	ps->cap_items = r->cap_items;
	r->items = NULL;
	r->nitems = r->cap_items = r->next_item = 0;
}

void
run_pageset_free(struct pageset *ps)
{
	dest_items_clear(ps->items, ps->nitems);
	for (size_t i = 0; i < ps->nitems; i++) {
		free((char *)ps->items[i].key);
		json_decref(ps->items[i].rec);
	}
	free(ps->items);
	state_ck_free(ps->ck);
	memset(ps, 0, sizeof *ps);
}

static void
started(void *arg, int rc, json_t *res, const char *err)
{
	struct run *r = arg;

	if (rc == STATE_LEASE_LOST) {
		r->state_busy = false;
		lease_lost(r, err);
		return;
	}
	if (rc == STATE_OK && json_is_true(json_object_get(res, "paused")) && r->fail_msg == NULL) {
		r->state_busy = false;
		log_job(r->env.once ? LOG_NOTICE : LOG_DEBUG, r->job->name, 0, NULL,
		    "paused: no run (onesyncctl resume)");
		r->not_run = true;
		r->finishing = true;
		run_end(r, true, false);
		return;
	}
	if (rc == STATE_OK && json_is_object(res))
		r->id = json_integer_value(json_object_get(res, "run"));
	if (run_state_returned(r))
		return;
	if (rc != STATE_OK || !json_is_object(res)) {
		run_fail(r, "%s", err != NULL ? err : "run start: unexpected answer");
		return;
	}
	r->id = json_integer_value(json_object_get(res, "run"));
	if (json_is_string(json_object_get(res, "watermark"))) {
		r->wm_text = xstrdup(json_string_value(json_object_get(res, "watermark")));
		r->wm_done = xstrdup(r->wm_text);
		r->wm_ns = json_integer_value(json_object_get(res, "watermark_ns"));
		if (json_is_string(json_object_get(res, "watermark_key")))
			r->wm_key = xstrdup(json_string_value(json_object_get(res, "watermark_key")));
	}
	/* The seen set, the retry queue and `unmarked` are not in the answer: the strategy
	 * reads what it needs of them in pages, or by the keys of a page. */
	r->have_seen = !json_is_false(json_object_get(res, "seen_rows"));	/* absent: read */
	r->have_failures = json_integer_value(json_object_get(res, "failures")) > 0;
	metrics_state_answer(r->job->name, res);	/* status: queue sizes */
	r->retry = json_incref(json_object_get(res, "retry"));
	log_job(LOG_DEBUG, r->job->name, r->id, NULL, "run started (watermark %s, %lld in the "
	    "retry queue, %zu retries due)", r->wm_text != NULL ? r->wm_text : "(none)",
	    (long long)json_integer_value(json_object_get(res, "failures")),
	    json_array_size(r->retry));
	if (r->ops == NULL)
		run_fail(r, "strategy not supported by this version");
	else
		r->ops->begin(r, res);
}

static void
claimed(void *arg, int rc, int64_t epoch, const char *err)
{
	struct run *r = arg;
	struct run_lease *l = &r->env.lease;

	if (run_state_returned(r))
		return;
	if (rc != STATE_OK) {
		run_fail(r, "cannot take the job's lease: %s", err);
		return;
	}
	if (epoch == 0) {
		log_job(r->env.once ? LOG_NOTICE : LOG_DEBUG, r->job->name, 0, NULL,
		    "another instance holds the lease: no run%s", r->env.once ? " (--once)" : "");
		r->claim_failed = true;
		r->not_run = true;
		r->finishing = true;
		run_end(r, true, false);
		return;
	}
	if (*l->epoch != epoch)
		log_job(LOG_INFO, r->job->name, 0, MSGID_LEASE_ACQUIRED,
		    "lease acquired (epoch %lld)", (long long)epoch);
	*l->epoch = epoch;
	*l->deadline = r->started + (uint64_t)l->ms;
	r->epoch = epoch;
	r->state_busy = true;
	state_run_start(r->env.state, r->job->name, epoch, r->job->batch, started, r);
}

struct run *
run_start(const struct job_conf *job, const struct strategy_ops *ops,
    const struct run_env *env)
{
	struct run *r = xcalloc(1, sizeof *r);
	const struct run_lease *l = &env->lease;

	r->env = *env;
	r->ops = ops;
	r->job = job;
	r->started = now_mono_ms();
	strmap_init(&r->seen);
	strmap_init(&r->failing);
	strmap_init(&r->followed);
	strmap_init(&r->pages_read);
	r->ev_timeout = evtimer_new(env->base, timed_out, r);
	if (r->job->timeout_ms > 0) {
		struct timeval tv = { r->job->timeout_ms / 1000, (r->job->timeout_ms % 1000) * 1000 };

		evtimer_add(r->ev_timeout, &tv);
	}
	r->dest = dest_new(env->conn, r->job);
	if (*l->epoch != 0 && now_mono_ms() < *l->deadline) {
		r->epoch = *l->epoch;
		r->state_busy = true;
		state_run_start(env->state, r->job->name, *l->epoch, r->job->batch, started, r);
	} else {
		r->state_busy = true;
		state_claim(env->state, r->job->name, *l->epoch, l->ms, claimed, r);
	}
	return r;
}

static void
run_free(struct run *r)
{
	source_cancel(r->sreq);
	if (r->ops != NULL)
		r->ops->free(r);
	items_free(r);
	free(r->items);
	dest_free(r->dest);
	event_free(r->ev_timeout);
	strmap_free(&r->seen, free);
	strmap_free(&r->failing, free);
	strmap_free(&r->followed, NULL);
	strmap_free(&r->pages_read, NULL);
	json_decref(r->retry);
	state_ck_free(r->retry_failed);
	json_decref(r->recs);
	state_ck_free(r->ck);
	free(r->fail_msg);
	free(r->wm_text);
	free(r->wm_done);
	free(r->wm_key);
	free(r->next_url);
	free(r->cursor);
	r->env.cfg_drop(r->env.cfg);
	free(r);
}
