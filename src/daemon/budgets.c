/*
 * budgets.c - request budgets (doc/design.md §7.6). Every HTTP attempt asks for a permit
 * (io/http.h): it passes the budgets its URL matches one after the other, in the order of
 * their names (so two requests never hold each other's concurrency slot), each in the order
 * requests came. A budget passes a request when it is not blocked, has a concurrency slot
 * free and holds tokens for the request's cost. Tokens come from the state store in small
 * chunks (budget_take, shared by every instance) and are spent here within hold_ms, after
 * which what is left is dropped: the store counts a chunk for its window plus hold_ms, so
 * every sliding window stays within its limit whatever the instances do. A 429 or 503 (or
 * a limit header saying none is left) blocks the budget here and, through the store's
 * NOTIFY, on every instance. A request that would wait longer than park_after is refused:
 * its run ends "throttled until T by budget NAME" (run/run.c), not failed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/budgets.h"
#include "daemon/budgets_int.h"
#include "daemon/budgets_block.h"
#include "daemon/budgets_def.h"
#include "config/budget.h"
#include "core/log.h"
#include "core/util.h"
#include "io/http.h"
#include "io/http_permit.h"
#include "store/state.h"
#include "store/state_budget.h"

static void pump(struct bud *);
static void advance(struct ticket *);
static void rtt_seen(struct bud *, int64_t);


/* Windows, limits (reserve taken off the longest), chunk and hold from the configuration. */
static void
bud_settings(struct bud *b)
{
	int64_t smallest = INT64_MAX;

	b->nw = b->conf.nrate < 8 ? b->conf.nrate : 8;
	for (size_t i = 0; i < b->nw; i++) {
		b->win[i] = b->conf.rate[i].window_ms;
		b->lim[i] = b->conf.rate[i].limit;
		if (i == b->nw - 1)
			b->lim[i] = budget_share(b->lim[i], b->conf.reserve);
		if (b->lim[i] < 1)
			b->lim[i] = 1;
		if (b->lim[i] < smallest)
			smallest = b->lim[i];
	}
	/* A chunk is a twentieth of the smallest limit (1..10): one instance's overshoot
	 * of its share, and one round trip to the store per chunk. */
	b->chunk = smallest / 20;
	if (b->chunk < 1)
		b->chunk = 1;
	if (b->chunk > 10)
		b->chunk = 10;
	b->def_next = 0;	/* a reload: compared with the others' again */
	b->hold_ms = b->nw > 0 ? b->win[0] / 10 : 1000;
	if (b->hold_ms > 1000)
		b->hold_ms = 1000;
	if (b->hold_ms < 1)
		b->hold_ms = 1;
}

static void bud_reap(struct budgets *);

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct bud *b = arg;

	(void)fd; (void)what;
	pump(b);
	bud_reap(b->e);		/* b may be freed */
}

static struct bud *
bud_new(struct budgets *e, const struct budget_conf *bc)
{
	struct bud *b = xcalloc(1, sizeof *b);

	b->e = e;
	budget_conf_copy(&b->conf, bc);
	bud_settings(b);
	b->timer = evtimer_new(e->base, timer_cb, b);
	return b;
}

static void
bud_free(struct bud *b)
{
	if (b->timer != NULL)
		event_free(b->timer);
	budget_conf_free(&b->conf);
	free(b);
}

/* A removed budget lives while a ticket or a take refers to it. */
static void
bud_reap(struct budgets *e)
{
	struct bud **pp = &e->list, *b;

	while ((b = *pp) != NULL) {
		if (b->gone && b->refs == 0 && !b->taking && b->in_flight == 0) {
			*pp = b->next;
			bud_free(b);
		} else
			pp = &b->next;
	}
}

/* At the end of b's queue; a token request at its head (the requests waiting behind a full
 * concurrency may be waiting for its token); one taking its slots back next, after the
 * token requests and those before it (it has waited its turn already). */
static void
enqueue(struct bud *b, struct ticket *t)
{
	struct ticket **pp = &b->head;

	t->next = NULL;
	t->queued = true;
	b->waiting++;
	if (t->priority && b->head != NULL) {
		t->next = b->head;
		b->head = t;
		return;
	}
	if (t->reslot) {
		while (*pp != NULL && ((*pp)->priority || (*pp)->reslot))
			pp = &(*pp)->next;
		t->next = *pp;
		*pp = t;
		if (t->next == NULL)
			b->tail = t;
		return;
	}
	if (b->tail != NULL)
		b->tail->next = t;
	else
		b->head = t;
	b->tail = t;
}

static void
dequeue(struct bud *b, struct ticket *t)
{
	struct ticket **pp, *prev = NULL;

	for (pp = &b->head; *pp != NULL; prev = *pp, pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			if (b->tail == t)
				b->tail = prev;
			b->waiting--;
			break;
		}
	t->next = NULL;
	t->queued = false;
}

/* Pump b on the next turn of the loop (not inside the caller's own walk of a queue). */
static void
kick(struct bud *b)
{
	event_active(b->timer, EV_TIMEOUT, 0);
}

/* Give back what a ticket holds: its place in a queue, its slots (their budgets look
 * again on the next turn). */
static void
ticket_release(struct ticket *t)
{
	if (t->queued && t->stage < t->n)
		dequeue(t->b[t->stage], t);
	for (size_t i = 0; i < t->n; i++) {
		if (t->b[i]->probe == t) {
			t->b[i]->probe = NULL;	/* the next request tries the server */
			kick(t->b[i]);
		}
		if (t->slot[i]) {
			t->b[i]->in_flight--;
			kick(t->b[i]);
		}
		t->slot[i] = false;
		t->b[i]->refs--;
	}
}

/* Refuse every request waiting at b: they may try again at until. */
static void
refuse_all(struct bud *b, int64_t until, const char *reason)
{
	char *why;
	struct ticket *t;

	if (reason == NULL)
		why = budgets_refusal(b->e, b->conf.name, until);
	else
		why = xasprintf("budget %s: %s", b->conf.name, reason);
	if (reason == NULL && until > b->refused_until)
		b->refused_until = until;
	while ((t = b->head) != NULL) {
		struct http_call *c = t->call;

		ticket_release(t);
		*http_call_permit_slot(c) = NULL;
		free(t);
		if (reason == NULL)
			b->throttled++;
		http_permit_done(c, until, why);
	}
	free(why);
}

static void
arm(struct bud *b, int64_t delay_ms)
{
	struct timeval tv;

	if (delay_ms < 1)
		delay_ms = 1;
	tv.tv_sec = (time_t)(delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
	evtimer_add(b->timer, &tv);
}

/* The store answered a take. */
static void
taken(void *arg, int rc, json_t *res, const char *err)
{
	struct bud *b = arg;
	int64_t now = now_wall_ms(), g, wait, blocked;

	b->taking = false;
	if (b->e->closing)
		return;
	rtt_seen(b, (int64_t)(now_mono_ms() - b->take_asked));
	if (rc != STATE_OK || !json_is_integer(json_object_get(res, "granted"))) {
		if (b->state_failing == 0) {
			b->state_failing = now_mono_ms();
			log_warnx("budget %s: cannot take tokens from the state database: %s",
			    b->conf.name, err != NULL ? err : "unexpected answer");
		}
		b->full_until = now + BUD_STATE_RETRY_MS;
		pump(b);
		bud_reap(b->e);
		return;
	}
	b->state_failing = 0;
	g = json_integer_value(json_object_get(res, "granted"));
	wait = json_integer_value(json_object_get(res, "wait_ms"));
	blocked = json_integer_value(json_object_get(res, "blocked_until_ms"));
	if (blocked > b->blocked_until)
		b->blocked_until = blocked;
	if (g > 0) {
		uint64_t until = b->take_asked + (uint64_t)b->take_hold;

		if (b->tokens > 0 && now_mono_ms() < b->tokens_until) {
			/* What is left of the grant before stays, until its own (earlier)
			 * end: a partial grant adds to it, or a request costlier than what
			 * the window has free at once would drop what it gathered. */
			b->tokens += g;
			if (until < b->tokens_until)
				b->tokens_until = until;
		} else {
			b->tokens = g;
			b->tokens_until = until;
		}
		b->taken += g;
	} else
		b->full_until = now + (wait > 0 ? wait : 1);
	pump(b);
	bud_reap(b->e);
}

/*
 * A take's round trip: a hold shorter than it would bring tokens already dropped, and no
 * request would ever pass. The hold asked for is three round trips (the longest lately)
 * when that is more than the budget's own, at most 10 s; the store counts each grant for
 * the hold it was taken with, so the windows stay exact.
 */
static void
rtt_seen(struct bud *b, int64_t rtt)
{
	b->rtt = rtt > b->rtt ? rtt : (3 * b->rtt + rtt) / 4;
	if (rtt >= b->take_hold && !b->slow_logged) {
		b->slow_logged = true;
		log_warnx("budget %s: the state database answered a take after %lld ms, longer "
		    "than the %lld ms its tokens may be spent in; later takes ask to hold them "
		    "longer", b->conf.name, (long long)rtt, (long long)b->take_hold);
	}
}

static void
take(struct bud *b, int64_t cost)
{
	int64_t hold = 3 * b->rtt + 5;

	if (hold < b->hold_ms)
		hold = b->hold_ms;
	if (hold > BUD_HOLD_MAX_MS)
		hold = BUD_HOLD_MAX_MS;
	budgets_def_check(b);
	if (b->tokens > 0 && now_mono_ms() < b->tokens_until)
		cost -= b->tokens;	/* what is left counts (taken adds to it) */
	b->taking = true;
	b->take_asked = now_mono_ms();
	b->take_hold = hold;
	state_budget_take(b->e->state, b->conf.name, b->win, b->lim, b->nw,
	    cost > b->chunk ? cost : b->chunk, hold, taken, b);
}

/*
 * b will not let anyone pass for a while (a block, full windows, a state database that does
 * not answer): the requests waiting at it give back the concurrency slots they took at the
 * budgets before it, so that work under those alone goes on; they take them again, in the
 * order of the budgets, once b lets them pass (the slots are always taken in that order, so
 * two requests never wait for each other's).
 */
static void
give_back(struct bud *b)
{
	for (struct ticket *t = b->head; t != NULL; t = t->next) {
		if (t->reslot)
			continue;
		for (size_t i = 0; i < t->stage; i++)
			if (t->slot[i]) {
				t->slot[i] = false;
				t->b[i]->in_flight--;
				t->gave_back = true;
				kick(t->b[i]);
			}
	}
}

/* t, taking its slots back, is at the head of b: it takes b's slot when one is free. */
static bool
reslot_pass(struct bud *b, struct ticket *t)
{
	if (!b->gone) {
		if (b->conf.concurrency > 0 && b->in_flight >= b->conf.concurrency)
			return false;
		b->in_flight++;
		t->slot[t->stage] = true;
	}
	if (t->stage == t->resume)
		t->reslot = false;	/* back where it paid: on to the next budget */
	return true;
}

/* t paid b's tokens after giving its slots back: it takes them again from the first one. */
static void
reslot_start(struct bud *b, struct ticket *t)
{
	dequeue(b, t);
	t->gave_back = false;
	t->reslot = true;
	t->resume = t->stage;
	t->stage = 0;
	advance(t);
}

/*
 * Let the requests waiting at b pass, in order, while it can. A wait it knows the end of
 * (a block, full windows) longer than park_after refuses them all.
 */
static void
pump(struct bud *b)
{
	struct ticket *t;

	while ((t = b->head) != NULL && !b->e->closing) {
		int64_t now = now_wall_ms(), until, cost = t->cost[t->stage];

		if (t->reslot) {
			if (!reslot_pass(b, t))
				return;		/* a transfer that ends pumps again */
		} else if (!b->gone) {
			until = b->blocked_until > b->full_until ? b->blocked_until :
			    b->full_until;
			if (b->state_failing != 0 && now_mono_ms() - b->state_failing >
			    (uint64_t)b->conf.park_after_ms) {
				refuse_all(b, now + BUD_STATE_RETRY_MS,
				    "the state database does not answer");
				return;
			}
			if (until > now) {
				if (until - now > b->conf.park_after_ms) {
					refuse_all(b, until, NULL);
					return;
				}
				arm(b, until - now + (until == b->blocked_until ?
				    (int64_t)(rand64() % BUD_JITTER_MS) : 0));
				give_back(b);
				return;
			}
			if (b->conf.concurrency > 0 && b->in_flight >= b->conf.concurrency &&
			    !t->priority)
				return;		/* a transfer that ends pumps again */
			if (b->probing && b->probe != NULL)
				return;		/* its answer decides */
			if (cost > 0 && (b->tokens < cost || now_mono_ms() >= b->tokens_until)) {
				if (!b->taking)
					take(b, cost);
				return;
			}
			if (b->probing)
				b->probe = t;
			b->tokens -= cost;
			if (t->gave_back) {
				reslot_start(b, t);
				continue;
			}
			if (!t->priority) {
				b->in_flight++;
				t->slot[t->stage] = true;
			}
		} else if (t->gave_back) {
			reslot_start(b, t);	/* removed by a reload while it waited */
			continue;
		}
		dequeue(b, t);
		t->stage++;
		advance(t);
	}
}

/* The ticket goes to its next budget, or its request starts. */
static void
advance(struct ticket *t)
{
	double waited;

	if (t->stage < t->n) {
		enqueue(t->b[t->stage], t);
		pump(t->b[t->stage]);	/* also when not first: it may have to give back */
		return;
	}
	waited = (double)(now_mono_ms() - t->asked) / 1000.0;
	for (size_t i = 0; i < t->n; i++) {
		t->b[i]->waited_s += waited;
		t->b[i]->waited_n++;
	}
	http_permit_done(t->call, 0, NULL);
}

static void
permit_ask(struct http_call *c, const char *method, const char *url, void *arg)
{
	struct budgets *e = arg;
	struct ticket *t;
	char *norm;

	if (e->closing || (norm = budget_url_norm(url)) == NULL) {
		http_permit_done(c, 0, NULL);
		return;
	}
	t = xcalloc(1, sizeof *t);
	t->call = c;
	t->asked = now_mono_ms();
	t->priority = http_call_priority(c);
	for (struct bud *b = e->list; b != NULL && t->n < BUD_MAX_PER_REQUEST; b = b->next) {
		if (b->gone || !budget_match(&b->conf, norm))
			continue;
		t->b[t->n] = b;
		t->cost[t->n++] = budget_cost(&b->conf, method, norm);
		b->refs++;
	}
	free(norm);
	if (t->n == 0) {
		free(t);
		http_permit_done(c, 0, NULL);
		return;
	}
	*http_call_permit_slot(c) = t;
	http_call_budgeted(c);
	advance(t);
}

/* When b's waiting requests may go again if that is known (a block, full windows), else 0. */
static int64_t
known_end(const struct bud *b)
{
	int64_t until = b->blocked_until > b->full_until ? b->blocked_until : b->full_until;

	return !b->gone && until > now_wall_ms() ? until : 0;
}

/* A run's cut frees t: note the latest known end of a wait t was in at a budget. */
static void
cut_seen(struct budgets *e, const struct ticket *t)
{
	int64_t until;

	if (!t->queued || t->stage >= t->n || t->reslot)
		return;		/* in flight, or waiting for a slot: an end nobody knows */
	until = known_end(t->b[t->stage]);
	if (until > e->cut.until) {
		if (e->cut.b != NULL)
			e->cut.b->refs--;
		e->cut.b = t->b[t->stage];
		e->cut.b->refs++;
		e->cut.until = until;
	}
}

static void
permit_ended(struct http_call *c, const struct http_limit_info *li, void *arg)
{
	struct budgets *e = arg;
	struct ticket *t = *http_call_permit_slot(c);
	struct bud *held[BUD_MAX_PER_REQUEST];
	int64_t wait = 0;
	long status = 0;
	size_t n;

	if (t == NULL)
		return;
	*http_call_permit_slot(c) = NULL;
	if (li == NULL && e->cut.on)
		cut_seen(e, t);
	n = t->n;
	memcpy(held, t->b, n * sizeof *held);
	for (size_t i = 0; i < n && li != NULL && !e->closing; i++) {
		struct bud *b = held[i];
		bool timed = li->retry_after_ms >= BUD_DEFAULT_BLOCK_MS ||
		    li->reset_ms >= BUD_DEFAULT_BLOCK_MS;

		/* The answers of requests sent before a block are not new news: only the
		 * probe's, or one that gives a time, changes it (no doubling per answer). */
		if (b->probe != t && b->blocked_until > now_wall_ms() && !timed)
			continue;
		if ((wait = budgets_block_for(b, li, &status)) > 0)
			budgets_block(b, now_wall_ms() + wait, status);
	}
	ticket_release(t);
	free(t);
	if (e->closing)
		return;
	for (size_t i = 0; i < n; i++)
		kick(held[i]);
}

static const struct http_permit_ops permit_ops = { permit_ask, permit_ended };

/* Another instance (or this one) blocked a budget: NOTIFY onesync_budget. */
static void
notified(const char *name, int64_t until, void *arg)
{
	struct budgets *e = arg;

	for (struct bud *b = e->list; b != NULL; b = b->next)
		if (!b->gone && strcmp(b->conf.name, name) == 0 && until > b->blocked_until) {
			b->blocked_until = until;
			if (b->head != NULL)
				kick(b);
		}
}

/* Insert b into the list, kept by name. */
static void
bud_insert(struct budgets *e, struct bud *b)
{
	struct bud **pp = &e->list;

	while (*pp != NULL && strcmp((*pp)->conf.name, b->conf.name) < 0)
		pp = &(*pp)->next;
	b->next = *pp;
	*pp = b;
}

struct budgets *
budgets_new(struct event_base *base, struct state *st, const struct config *cfg)
{
	struct budgets *e;

	if (cfg->nbudgets == 0)
		return NULL;
	e = xcalloc(1, sizeof *e);
	e->base = base;
	e->state = st;
	for (size_t i = 0; i < cfg->nbudgets; i++)
		bud_insert(e, bud_new(e, &cfg->budgets[i]));
	state_listen_budgets(st, notified, e);
	http_set_permit(&permit_ops, e);
	return e;
}

struct budgets *
budgets_reload(struct budgets *e, struct event_base *base, struct state *st,
    const struct config *cfg)
{
	struct bud *b, *moved = NULL;

	if (e == NULL)
		return budgets_new(base, st, cfg);
	for (b = e->list; b != NULL; b = b->next) {
		bool kept = false;

		for (size_t i = 0; i < cfg->nbudgets && !kept; i++)
			if (strcmp(cfg->budgets[i].name, b->conf.name) == 0) {
				budget_conf_free(&b->conf);
				budget_conf_copy(&b->conf, &cfg->budgets[i]);
				bud_settings(b);
				kept = true;
			}
		b->gone = b->gone || !kept;
	}
	for (size_t i = 0; i < cfg->nbudgets; i++) {
		bool found = false;

		for (b = e->list; b != NULL && !found; b = b->next)
			found = !b->gone && strcmp(cfg->budgets[i].name, b->conf.name) == 0;
		if (!found) {
			b = bud_new(e, &cfg->budgets[i]);
			b->next = moved;
			moved = b;
		}
	}
	while ((b = moved) != NULL) {
		moved = b->next;
		bud_insert(e, b);
	}
	/* The limits may have grown, a budget may be gone: everyone waiting looks again. */
	for (b = e->list; b != NULL; b = b->next) {
		b->tokens = 0;
		kick(b);
	}
	return e;
}

void
budgets_close(struct budgets *e)
{
	if (e == NULL)
		return;
	e->closing = true;
	for (struct bud *b = e->list; b != NULL; b = b->next)
		evtimer_del(b->timer);
}

void
budgets_free(struct budgets *e)
{
	struct bud *b;

	if (e == NULL)
		return;
	http_set_permit(NULL, NULL);
	while ((b = e->list) != NULL) {
		e->list = b->next;
		bud_free(b);
	}
	free(e);
}

void
budgets_cut_begin(struct budgets *e)
{
	if (e == NULL)
		return;
	if (e->cut.b != NULL)
		e->cut.b->refs--;	/* a watch never ended */
	e->cut.on = true;
	e->cut.until = 0;
	e->cut.b = NULL;
}

char *
budgets_cut_end(struct budgets *e)
{
	struct bud *b;
	char *msg;

	if (e == NULL || !e->cut.on)
		return NULL;
	e->cut.on = false;
	if ((b = e->cut.b) == NULL)
		return NULL;
	e->cut.b = NULL;
	b->refs--;
	b->throttled++;
	if (e->cut.until > b->refused_until)
		b->refused_until = e->cut.until;
	msg = budgets_refusal(e, b->conf.name, e->cut.until);
	bud_reap(e);
	return msg;
}
