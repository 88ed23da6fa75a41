/*
 * status.c - the HTTP status endpoint on daemon.status_listen: GET /healthz, /metrics
 * (metrics.c) and /jobs (this instance's view, shaped like `onesyncctl jobs --json`),
 * served by evhttp on the daemon's event base. Every answer is built from memory: it
 * never waits for the state store or anything else, so it never blocks the loop.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#include "core/log.h"
#include "core/url.h"
#include "daemon/budgets.h"
#include "daemon/budgets_show.h"
#include "daemon/creds.h"
#include "daemon/daemon_int.h"
#include "run/metrics.h"
#include "run/run.h"
#include "daemon/status.h"

#define STATUS_TIMEOUT_S	10	/* a client gets this long to send its request */
#define STATUS_MAX_HEADERS	8192
#define STATUS_MAX_BODY		1024

/*
 * Connections open at once. A client beyond them waits in the listen backlog (the listeners
 * stop accepting) instead of taking a descriptor: 1,100 idle connections once took every
 * file descriptor the jobs needed, and libevent logged each failed accept().
 */
#define STATUS_MAX_CONNS	64
#define STATUS_MAX_LISTENERS	8

struct status {
	struct daemon		*d;
	struct evhttp		*http;
	struct evconnlistener	*lev[STATUS_MAX_LISTENERS];
	int			 nlev;
	/* evhttp has no connection count (libevent 2.1): each connection's bufferevent is
	 * made here (evhttp_set_bevcb) with a reference of ours, so its descriptor stays open
	 * until sweep() sees evhttp has freed it (its callbacks cleared) and lets it go. */
	struct bufferevent	*conn[STATUS_MAX_CONNS];
	int			 nconn;
	bool			 paused;	/* the listeners stopped at the cap */
	time_t			 capped;	/* when that was last logged */
	struct event		*sweep_ev;
	int64_t			 started_ms;	/* wall clock: with the daemon, for /metrics */
};

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
    const char *body, size_t len)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evbuffer_new();

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	if (code == 405)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	evbuffer_add(out, body, len);
	evhttp_send_reply(req, code, reason, out);	/* evhttp leaves the body out for HEAD */
	evbuffer_free(out);
}

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
	reply(req, code, reason, "text/plain; charset=utf-8", text, strlen(text));
}


/* A wall-clock time as PostgreSQL's JSON writes a timestamptz in UTC. */
static json_t *
json_time(int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[64];

	gmtime_r(&t, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
	return json_sprintf("%s.%03d+00:00", s, (int)(ms % 1000));
}

static json_t *
json_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}


/* The daemon's job of that name (not one removed from the configuration), or NULL. */
static const struct jobrt *
find_jobrt(const struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->njobs; i++)
		if (!d->jobs[i]->removed && strcmp(d->jobs[i]->name, name) == 0)
			return d->jobs[i];
	return NULL;
}

/* One job: the keys of `onesyncctl jobs --json` first, then this instance's own. */
static json_t *
job_json(const struct daemon *d, const struct job_conf *jc)
{
	const struct job_stats *s = metrics_job(jc->name);
	const struct jobrt *jr = find_jobrt(d, jc->name);
	const char *state, *last = s != NULL ? metrics_result_name(s->last_result) : NULL;
	uint64_t now = now_mono_ms();
	bool held, live;
	json_t *o = json_object(), *lr = json_null();

	held = jr != NULL && jr->epoch != 0;
	live = held && now < jr->lease_deadline;
	if (s != NULL && s->paused)
		state = "paused";
	else if (!jc->enabled)
		state = "disabled";
	else if (last == NULL)
		state = "never_run";
	else if (s->last_result == RESULT_FAILED)
		state = "failing";
	else if (s->last_result == RESULT_THROTTLED)
		state = "throttled";	/* until throttled_until, by a request budget */
	else
		state = "ok";
	if (last != NULL) {
		lr = json_object();
		json_object_set_new(lr, "id", s->last_id != 0 ? json_integer(s->last_id) :
		    json_null());
		json_object_set_new(lr, "result", json_string(last));
		json_object_set_new(lr, "instance", json_string(d->instance));
		json_object_set_new(lr, "started_at", json_time(s->last_started_ms));
		json_object_set_new(lr, "finished_at", json_time(s->last_finished_ms));
		json_object_set_new(lr, "error", json_str_or_null(s->last_error));
		json_object_set_new(lr, "duration_s",
		    json_real((double)(s->last_finished_ms - s->last_started_ms) / 1000.0));
		json_object_set_new(lr, "read", json_integer(s->last_read));
		json_object_set_new(lr, "delivered", json_integer(s->last_delivered));
		json_object_set_new(lr, "skipped", json_integer(s->last_skipped));
		json_object_set_new(lr, "failed", json_integer(s->last_failed));
		json_object_set_new(lr, "deleted", json_integer(s->last_deleted));
	}
	json_object_set_new(o, "name", json_string(jc->name));
	json_object_set_new(o, "configured", json_true());
	json_object_set_new(o, "strategy", json_string(config_strategy_name(jc->strategy)));
	json_object_set_new(o, "enabled", json_boolean(jc->enabled));
	json_object_set_new(o, "state", json_string(state));
	json_object_set_new(o, "throttled_until", jr != NULL && jr->throttled_until != 0 &&
	    s != NULL && s->last_result == RESULT_THROTTLED ? json_time(jr->throttled_until) :
	    json_null());
	json_object_set_new(o, "paused", json_boolean(s != NULL && s->paused));
	json_object_set_new(o, "lease_owner", held ? json_string(d->instance) : json_null());
	json_object_set_new(o, "lease_until", held ? json_time(now_wall_ms() +
	    (int64_t)jr->lease_deadline - (int64_t)now) : json_null());
	json_object_set_new(o, "lease_live", json_boolean(live));
	json_object_set_new(o, "epoch", json_integer(held ? jr->epoch : 0));
	json_object_set_new(o, "watermark", json_str_or_null(s != NULL ? s->watermark : NULL));
	json_object_set_new(o, "watermark_key", json_str_or_null(s != NULL ? s->watermark_key :
	    NULL));
	json_object_set_new(o, "run_requested_at", json_null());
	json_object_set_new(o, "last_run", lr);
	json_object_set_new(o, "retry_queue", s != NULL && s->have_queue ?
	    json_integer(s->queue) : json_null());
	json_object_set_new(o, "dead", s != NULL && s->have_queue ? json_integer(s->dead) :
	    json_null());
	json_object_set_new(o, "unmarked", json_null());
	/* This instance's own view. */
	json_object_set_new(o, "instance", json_string(d->instance));
	json_object_set_new(o, "mine", json_boolean(jr != NULL && (d->once || jr->mine)));
	json_object_set_new(o, "lease_held", json_boolean(held));
	json_object_set_new(o, "running", json_boolean(jr != NULL && jr->run != NULL));
	json_object_set_new(o, "run", jr != NULL && jr->run != NULL && jr->run->id != 0 ?
	    json_integer(jr->run->id) : json_null());
	json_object_set_new(o, "queued", json_boolean(jr != NULL && jr->queued));
	return o;
}

static void
serve_jobs(struct status *st, struct evhttp_request *req)
{
	const struct config *cfg = st->d->ref->cfg;
	json_t *arr = json_array();
	char *text;

	for (size_t i = 0; i < cfg->njobs; i++)
		json_array_append_new(arr, job_json(st->d, &cfg->jobs[i]));
	/* a run's error, a job's name: redacted as values, the document stays JSON */
	redact_json(arr);
	text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
	json_decref(arr);
	if (text == NULL) {
		reply_text(req, 500, "Internal Server Error", "cannot encode the jobs\n");
		return;
	}
	{
		size_t n = strlen(text);

		text = xrealloc(text, n + 2);
		text[n] = '\n';
		text[n + 1] = '\0';
		reply(req, 200, "OK", "application/json", text, n + 1);
	}
	free(text);
}

/* /metrics: what metrics.c counted, and the daemon's view of each configured job now. */
static void
serve_metrics(struct status *st, struct evhttp_request *req)
{
	const struct daemon *d = st->d;
	const struct config *cfg = d->ref->cfg;
	struct metrics_job_view *jobs = xcalloc(cfg->njobs + 1, sizeof *jobs);
	struct metrics_view v = { .jobs = jobs, .njobs = cfg->njobs,
	    .state_up = daemon_state_reachable(d), .instance_jobs = d->balanced ? d->nmine : 0,
	    .start_ms = st->started_ms };
	struct buf b;

	for (size_t i = 0; i < cfg->njobs; i++) {
		const struct jobrt *jr = find_jobrt(d, cfg->jobs[i].name);

		jobs[i].name = cfg->jobs[i].name;
		jobs[i].lease_held = jr != NULL && jr->epoch != 0;
		jobs[i].mismatch = jr != NULL && jr->mismatch != NULL;
		jobs[i].enabled = cfg->jobs[i].enabled;
		jobs[i].interval_ms = cfg->jobs[i].interval_ms;
	}
	buf_init(&b);
	metrics_render(&v, &b);
	budgets_render(st->d->budgets, &b);
	creds_render(st->d->creds, &b);
	reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	buf_free(&b);
	free(jobs);
}

/* This instance's view of the request budgets (onesyncctl budgets). */
static void
serve_budgets(struct status *st, struct evhttp_request *req)
{
	json_t *o = json_pack("{so}", "budgets", budgets_json(st->d->budgets));
	char *text = json_dumps(o, JSON_COMPACT);

	reply(req, 200, "OK", "application/json", text, strlen(text));
	free(text);
	json_decref(o);
}

static void
serve_healthz(struct status *st, struct evhttp_request *req)
{
	if (st->d->stopping)
		reply_text(req, 503, "Service Unavailable", "stopping\n");
	else if (!daemon_state_reachable(st->d))
		reply_text(req, 503, "Service Unavailable", "state store unreachable\n");
	else
		reply_text(req, 200, "OK", "ok\n");
}

/* Every request: route by path; GET and HEAD only. */
static void
serve(struct evhttp_request *req, void *arg)
{
	struct status *st = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	void (*fn)(struct status *, struct evhttp_request *) = NULL;

	if (path == NULL)
		path = "";
	if (strcmp(path, "/healthz") == 0)
		fn = serve_healthz;
	else if (strcmp(path, "/metrics") == 0)
		fn = serve_metrics;
	else if (strcmp(path, "/jobs") == 0)
		fn = serve_jobs;
	else if (strcmp(path, "/budgets") == 0)
		fn = serve_budgets;
	if (fn == NULL)
		reply_text(req, 404, "Not Found", "not found: try /healthz, /metrics, /jobs or "
		    "/budgets\n");
	else if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD)
		reply_text(req, 405, "Method Not Allowed", "method not allowed: GET or HEAD\n");
	else
		fn(st, req);
}

/* Forget the connections evhttp is done with; accept again below the cap. */
static void
sweep(struct status *st)
{
	bufferevent_event_cb ecb;

	for (int i = 0; i < st->nconn; ) {
		bufferevent_getcb(st->conn[i], NULL, NULL, &ecb, NULL);
		if (ecb != NULL) {
			i++;
			continue;
		}
		bufferevent_free(st->conn[i]);	/* our reference: closes the descriptor */
		st->conn[i] = st->conn[--st->nconn];
	}
	if (st->paused && st->nconn < STATUS_MAX_CONNS) {
		for (int i = 0; i < st->nlev; i++)
			evconnlistener_enable(st->lev[i]);
		st->paused = false;
	}
}

static void
sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	sweep(arg);
}

/* A new connection (evhttp_set_bevcb): its bufferevent, counted. */
static struct bufferevent *
new_conn(struct event_base *base, void *arg)
{
	struct status *st = arg;
	struct bufferevent *bev;

	sweep(st);
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;		/* evhttp makes one of its own, uncounted */
	if (st->nconn == STATUS_MAX_CONNS)
		return bev;	/* not reached: the listeners stop at the cap (below) */
	bufferevent_incref(bev);
	st->conn[st->nconn++] = bev;
	if (st->nconn == STATUS_MAX_CONNS && !st->paused) {
		for (int i = 0; i < st->nlev; i++)
			evconnlistener_disable(st->lev[i]);
		st->paused = true;
		if (time(NULL) - st->capped < 60)
			return bev;
		st->capped = time(NULL);
		log_job(LOG_WARNING, NULL, 0, NULL, "status endpoint: %d connections open, the "
		    "most it serves at once; others wait until one closes (logged once a minute)",
		    STATUS_MAX_CONNS);
	}
	return bev;
}

static struct status *the_status;	/* one endpoint per process */

/*
 * accept() failed (no descriptor left: EMFILE, ENFILE): stop accepting for a second (the
 * sweep starts again) and say so once a minute. libevent would retry at once, and log every
 * failure: 90,777 lines in one test.
 */
static void
accept_error(struct evconnlistener *lev, void *arg)
{
	static time_t last;
	static long long quiet;
	struct status *st = the_status;	/* arg is evhttp's (the listener's user data) */
	int e = EVUTIL_SOCKET_ERROR();
	time_t now = time(NULL);

	if (st == NULL) {
		evconnlistener_disable(lev);	/* not reached */
		return;
	}
	for (int i = 0; i < st->nlev; i++)
		evconnlistener_disable(st->lev[i]);
	st->paused = true;
	if (now - last < 60) {
		quiet++;
		return;
	}
	log_job(LOG_WARNING, NULL, 0, NULL, "status endpoint: cannot accept a connection: %s; "
	    "not accepting for a second (%lld more such failures since the last line)",
	    evutil_socket_error_to_string(e), quiet);
	last = now;
	quiet = 0;
}

/* Bind and listen on one address; the listening socket, or -1 with errno. */
static int
listen_on(const struct addrinfo *ai)
{
	int fd, one = 1, e;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ai->ai_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 64) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* "host:port" of a bound socket, for the log (names the port that 0 picked). */
static char *
bound_name(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, len, host, sizeof host, serv, sizeof serv,
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return xstrdup("?");
	return xasprintf(ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

struct status *
status_start(struct daemon *d)
{
	const char *listen = d->ref->cfg->daemon.status_listen;
	struct addrinfo hints, *res = NULL, *ai;
	struct status *st;
	char *host, *err, portbuf[8];
	uint16_t port;
	int rc, n = 0;

	if (listen == NULL || listen[0] == '\0')
		return NULL;
	if (url_parse_listen(listen, &host, &port, &err) != 0) {
		log_job(LOG_ERR, NULL, 0, NULL, "daemon.status_listen %s; carrying on without "
		    "the status endpoint", err);
		free(err);
		return NULL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portbuf, sizeof portbuf, "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, portbuf, &hints, &res)) != 0) {
		log_job(LOG_ERR, NULL, 0, NULL, "daemon.status_listen '%s': cannot resolve %s: %s; "
		    "carrying on without the status endpoint", listen, host, gai_strerror(rc));
		free(host);
		return NULL;
	}
	st = xcalloc(1, sizeof *st);
	st->started_ms = now_wall_ms();	/* the endpoint starts with the daemon */
	st->d = d;
	st->http = evhttp_new(d->base);
	evhttp_set_timeout(st->http, STATUS_TIMEOUT_S);
	evhttp_set_max_headers_size(st->http, STATUS_MAX_HEADERS);
	evhttp_set_max_body_size(st->http, STATUS_MAX_BODY);
	evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);	/* 405, not 501 */
	evhttp_set_gencb(st->http, serve, st);
	evhttp_set_bevcb(st->http, new_conn, st);
	the_status = st;
	st->sweep_ev = event_new(d->base, -1, EV_PERSIST, sweep_cb, st);
	if (st->sweep_ev != NULL) {
		struct timeval tv = { 1, 0 };

		event_add(st->sweep_ev, &tv);
	}
	for (ai = res; ai != NULL && st->nlev < STATUS_MAX_LISTENERS; ai = ai->ai_next) {
		struct evhttp_bound_socket *bs;
		int fd = listen_on(ai);
		char *name;

		if (fd == -1) {
			log_job(LOG_ERR, NULL, 0, NULL, "daemon.status_listen '%s': cannot listen: %s",
			    listen, strerror(errno));
			continue;
		}
		if ((bs = evhttp_accept_socket_with_handle(st->http, fd)) == NULL) {
			log_job(LOG_ERR, NULL, 0, NULL, "daemon.status_listen '%s': cannot accept "
			    "connections", listen);
			close(fd);
			continue;
		}
		st->lev[st->nlev] = evhttp_bound_socket_get_listener(bs);
		evconnlistener_set_error_cb(st->lev[st->nlev++], accept_error);
		name = bound_name(fd);
		log_info("status endpoint listening on http://%s (/healthz, /metrics, /jobs, "
		    "/budgets)", name);
		free(name);
		n++;
	}
	freeaddrinfo(res);
	free(host);
	if (n == 0) {
		log_job(LOG_ERR, NULL, 0, NULL, "carrying on without the status endpoint "
		    "(daemon.status_listen '%s'); fix the address or free the port, then restart",
		    listen);
		status_free(st);
		return NULL;
	}
	return st;
}

void
status_free(struct status *st)
{
	if (st == NULL)
		return;
	if (the_status == st)
		the_status = NULL;
	evhttp_free(st->http);
	for (int i = 0; i < st->nconn; i++)
		bufferevent_free(st->conn[i]);
	if (st->sweep_ev != NULL)
		event_free(st->sweep_ev);
	free(st);
}
