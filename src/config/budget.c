/*
 * budget.c - the shared API budgets of the file (`budgets = ( { ... } );`): which URLs each
 * covers, its windows ("N/W"), its concurrency, reserve and cost rules, all checked so that
 * a budget the daemon gets can be kept (no window a request's cost exceeds, no reserve that
 * leaves nothing). And the pure functions the runtime asks of one: a URL normalised for
 * matching, whether a budget covers it, what a request costs. Never acts on a budget: the
 * tokens, the waits and the shared windows are the runtime's.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/budget.h"
#include "config/ctx.h"

#define BUDGET_MAX_LIMIT	INT64_C(1000000000)
#define BUDGET_MAX_WINDOW_MS	(INT64_C(31) * 86400000)
#define BUDGET_MAX_MATCH	64
#define BUDGET_MAX_RATE		8
#define BUDGET_MAX_COSTS	64

/* The host and port of an authority [host, end) (userinfo already skipped), written into b
 * lower case, without a final dot, with a default port dropped; -1 when they are not a
 * host and a port. */
static int
norm_authority(struct buf *b, const char *host, const char *end, bool https)
{
	const char	*hend, *p;
	long		 port = 0;

	if (host < end && *host == '[') {
		if ((hend = memchr(host, ']', (size_t)(end - host))) == NULL || hend - host < 2)
			return -1;
		hend++;
	} else
		for (hend = host; hend < end && *hend != ':'; hend++)
			;
	if (hend == host || (hend < end && *hend != ':'))
		return -1;
	for (p = hend < end ? hend + 1 : end; p < end; p++) {
		if (!isdigit((unsigned char)*p) || (port = port * 10 + (*p - '0')) > 65535)
			return -1;
	}
	if (hend + 1 < end && port == 0)
		return -1;	/* ":0" or ":000" */
	/* "a.example." is the same host as "a.example" to DNS, and to a budget */
	for (p = host; p < hend - (*host != '[' && hend - host > 1 && hend[-1] == '.'); p++)
		buf_addc(b, (char)tolower((unsigned char)*p));
	if (port != 0 && port != (https ? 443 : 80))
		buf_printf(b, ":%ld", port);
	return 0;
}

/* Hand-written rather than through libcurl's URL API: that one resolves "." and ".."
 * segments and re-encodes, and a budget must see the path the request names as written. A
 * fragment is dropped: no request carries it. */
char *
budget_url_norm(const char *url)
{
	const char	*p, *auth, *host, *end, *at, *frag;
	struct buf	 b;
	bool		 https;

	if (url == NULL)
		return NULL;
	for (p = url; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return NULL;
	}
	if (strncasecmp(url, "http://", 7) == 0) {
		https = false;
		auth = url + 7;
	} else if (strncasecmp(url, "https://", 8) == 0) {
		https = true;
		auth = url + 8;
	} else
		return NULL;
	end = auth + strcspn(auth, "/?#");
	host = (at = memrchr(auth, '@', (size_t)(end - auth))) != NULL ? at + 1 : auth;
	buf_init(&b);
	buf_adds(&b, https ? "https://" : "http://");
	if (norm_authority(&b, host, end, https) != 0) {
		buf_free(&b);
		return NULL;
	}
	frag = end + strcspn(end, "#");
	if (*end != '/')
		buf_addc(&b, '/');
	buf_add(&b, end, (size_t)(frag - end));
	return buf_steal(&b);
}

bool
budget_match(const struct budget_conf *bc, const char *norm_url)
{
	size_t	i;

	if (norm_url == NULL)
		return false;
	for (i = 0; i < bc->nmatch; i++) {
		if (strncmp(norm_url, bc->match[i], strlen(bc->match[i])) == 0)
			return true;
	}
	return false;
}

int64_t
budget_cost(const struct budget_conf *bc, const char *method, const char *norm_url)
{
	const struct budget_cost	*r;
	const char			*path, *p;
	size_t				 i;

	if (norm_url == NULL)
		return 1;
	p = strstr(norm_url, "://");
	path = p != NULL && (p = strchr(p + 3, '/')) != NULL ? p : "/";
	for (i = 0; i < bc->ncosts; i++) {
		r = &bc->costs[i];
		if (r->method != NULL && (method == NULL || strcasecmp(r->method, method) != 0))
			continue;
		if (regexec(&r->re, path, 0, NULL, 0) == 0)
			return r->cost;
	}
	return 1;
}

/* The window W of "N/W": a duration with its unit, or a bare unit meaning one of it. */
static int64_t
rate_window(const char *w)
{
	static const struct { const char *u; int64_t ms; } bare[] = {
		{ "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	size_t	i, n = strlen(w);

	for (i = 0; i < NELEM(bare); i++) {
		if (strcmp(w, bare[i].u) == 0)
			return bare[i].ms;
	}
	/* "10/30" could mean seconds or anything: a window names its unit */
	if (n == 0 || !isalpha((unsigned char)w[n - 1]))
		return -1;
	return parse_duration_ms(w);
}

int
budget_rate_parse(const char *s, struct budget_window *w, char **why)
{
	const char	*p = s;
	int64_t		 n = 0, ms;

	*why = NULL;
	if (!isdigit((unsigned char)*p) || strchr(p, '/') == NULL) {
		*why = xasprintf("'%s' is not N/W: a number of cost units, '/', then a window "
		    "such as \"10s\" (\"100/10s\", \"250000/1d\")", s);
		return -1;
	}
	for (; isdigit((unsigned char)*p); p++) {
		if ((n = n * 10 + (*p - '0')) > BUDGET_MAX_LIMIT)
			break;
	}
	if (n < 1 || n > BUDGET_MAX_LIMIT) {
		*why = xasprintf("'%s': the limit must be between 1 and %" PRId64, s,
		    BUDGET_MAX_LIMIT);
		return -1;
	}
	if (*p != '/') {
		*why = xasprintf("'%s': expected '/' after the limit %" PRId64, s, n);
		return -1;
	}
	if ((ms = rate_window(++p)) < 0) {
		*why = xasprintf("'%s': bad window '%s' (expected a duration with its unit: "
		    "\"500ms\", \"10s\", \"1m\", \"1h\", \"1d\", or \"s\", \"m\", \"h\", \"d\")",
		    s, p);
		return -1;
	}
	if (ms < 1 || ms > BUDGET_MAX_WINDOW_MS) {
		*why = xasprintf("'%s': the window must be between 1ms and 31d", s);
		return -1;
	}
	w->limit = n;
	w->window_ms = ms;
	return 0;
}

void
budget_conf_free(struct budget_conf *bc)
{
	size_t	i;

	free(bc->name);
	for (i = 0; i < bc->nmatch; i++)
		free(bc->match[i]);
	free(bc->match);
	free(bc->rate);
	for (i = 0; i < bc->ncosts; i++) {
		free(bc->costs[i].method);
		free(bc->costs[i].path);
		regfree(&bc->costs[i].re);
	}
	free(bc->costs);
	memset(bc, 0, sizeof *bc);
}

void
budget_conf_copy(struct budget_conf *dst, const struct budget_conf *src)
{
	memset(dst, 0, sizeof *dst);
	dst->name = xstrdup(src->name);
	dst->line = src->line;
	dst->match = xcalloc(src->nmatch + 1, sizeof *dst->match);
	for (size_t i = 0; i < src->nmatch; i++)
		dst->match[i] = xstrdup(src->match[i]);
	dst->nmatch = src->nmatch;
	dst->rate = xcalloc(src->nrate + 1, sizeof *dst->rate);
	memcpy(dst->rate, src->rate, src->nrate * sizeof *dst->rate);
	dst->nrate = src->nrate;
	dst->concurrency = src->concurrency;
	dst->reserve = src->reserve;
	dst->park_after_ms = src->park_after_ms;
	dst->costs = xcalloc(src->ncosts + 1, sizeof *dst->costs);
	for (size_t i = 0; i < src->ncosts; i++) {
		struct budget_cost *c = &dst->costs[dst->ncosts];

		c->method = src->costs[i].method != NULL ? xstrdup(src->costs[i].method) : NULL;
		c->path = xstrdup(src->costs[i].path);
		c->cost = src->costs[i].cost;
		if (regcomp(&c->re, c->path, REG_EXTENDED | REG_NOSUB) != 0) {
			free(c->method);	/* it compiled when the configuration was read */
			free(c->path);
			continue;
		}
		dst->ncosts++;
	}
}

/* match: 1 to 64 http(s) URL prefixes, normalised; none with userinfo or a fragment. */
static void
parse_match(struct ctx *c, config_setting_t *g, struct budget_conf *bc)
{
	config_setting_t	*s = ctx_member(g, "match");
	const char		*u, *auth;
	char			*n;
	int			 i, len;

	if (s == NULL) {
		ctx_missing(c, g, "budgets.*.match", "(the URL prefixes the budget covers)");
		return;
	}
	if (!ctx_is_strlist(s))
		return;		/* reported by walk_group() */
	if ((len = config_setting_length(s)) < 1 || len > BUDGET_MAX_MATCH) {
		ctx_errf(c, ctx_line(c, s), "'match' must list 1 to %d URL prefixes (got %d)",
		    BUDGET_MAX_MATCH, len);
		return;
	}
	bc->match = xcalloc((size_t)len + 1, sizeof *bc->match);
	for (i = 0; i < len; i++) {
		u = config_setting_get_string_elem(s, i);
		auth = strstr(u, "://");
		if (auth != NULL && memchr(auth + 3, '@', strcspn(auth + 3, "/?#")) != NULL) {
			/* not quoted: the userinfo may be a password */
			ctx_errf(c, ctx_line(c, s), "'match[%d]': a prefix must not hold user "
			    "information (user:password@): requests are matched without it", i);
			continue;
		}
		if (strchr(u, '#') != NULL) {
			ctx_errf(c, ctx_line(c, s), "'match[%d]': a prefix must not hold a "
			    "fragment ('#'): no request carries one", i);
			continue;
		}
		if ((n = budget_url_norm(u)) == NULL) {
			ctx_errf(c, ctx_line(c, s), "'match[%d]': %s%s%sis not an absolute http "
			    "or https URL (\"https://api.example.com/v1/\")", i,
			    strchr(u, '@') == NULL ? "'" : "", strchr(u, '@') == NULL ? u : "",
			    strchr(u, '@') == NULL ? "' " : "");
			continue;
		}
		for (size_t k = 0; k < bc->nmatch; k++) {
			if (strcmp(bc->match[k], n) == 0)
				ctx_errf(c, ctx_line(c, s), "'match[%d]' repeats an earlier "
				    "prefix, '%s'", i, n);
		}
		bc->match[bc->nmatch++] = n;
	}
}

static int
window_cmp(const void *a, const void *b)
{
	const struct budget_window *x = a, *y = b;

	return x->window_ms < y->window_ms ? -1 : x->window_ms > y->window_ms;
}

/* rate: 1 to 8 windows "N/W", no two the same length; sorted shortest first. */
static void
parse_rate(struct ctx *c, config_setting_t *g, struct budget_conf *bc)
{
	config_setting_t	*s = ctx_member(g, "rate");
	struct budget_window	 w;
	char			*why, b1[32];
	int			 i, len;

	if (s == NULL) {
		ctx_missing(c, g, "budgets.*.rate", "(windows such as [ \"100/10s\" ])");
		return;
	}
	if (!ctx_is_strlist(s))
		return;		/* reported by walk_group() */
	if ((len = config_setting_length(s)) < 1 || len > BUDGET_MAX_RATE) {
		ctx_errf(c, ctx_line(c, s), "'rate' must list 1 to %d windows (got %d)",
		    BUDGET_MAX_RATE, len);
		return;
	}
	bc->rate = xcalloc((size_t)len, sizeof *bc->rate);
	for (i = 0; i < len; i++) {
		if (budget_rate_parse(config_setting_get_string_elem(s, i), &w, &why) != 0) {
			ctx_errf(c, ctx_line(c, s), "'rate[%d]': %s", i, why);
			free(why);
			continue;
		}
		for (size_t k = 0; k < bc->nrate; k++) {
			if (bc->rate[k].window_ms == w.window_ms)
				ctx_errf(c, ctx_line(c, s), "'rate[%d]': a second limit for the "
				    "window %s: give each window one limit", i,
				    ctx_fmt_dur(w.window_ms, b1, sizeof b1));
		}
		bc->rate[bc->nrate++] = w;
	}
	qsort(bc->rate, bc->nrate, sizeof *bc->rate, window_cmp);
}

int64_t
budget_share(int64_t limit, double reserve)
{
	/* 10 x (1 - 0.9) is 0.99999... in binary: a millionth more rounds it as meant */
	return (int64_t)floor((double)limit * (1.0 - reserve) + 1e-6);
}

/* reserve: 0 to 0.9, and something of the longest window left to this instance. */
static void
parse_reserve(struct ctx *c, config_setting_t *g, struct budget_conf *bc)
{
	config_setting_t	*s = ctx_member(g, "reserve");
	const struct budget_window *lw;
	double			 v;
	char			 b1[32];

	bc->reserve = 0;
	if (s == NULL)
		return;
	if (ctx_is_int(s))
		v = (double)config_setting_get_int64(s);
	else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else
		return;		/* reported by walk_group() */
	if (!(v >= 0.0 && v <= 0.9)) {
		ctx_errf(c, ctx_line(c, s), "'reserve' must be between 0 and 0.9 (got %g)", v);
		return;
	}
	bc->reserve = v;
	if (bc->nrate == 0)
		return;
	lw = &bc->rate[bc->nrate - 1];
	if (budget_share(lw->limit, v) < 1)
		ctx_errf(c, ctx_line(c, s), "'reserve' %g leaves nothing of the longest window "
		    "(%" PRId64 "/%s): lower it or raise that limit", v, lw->limit,
		    ctx_fmt_dur(lw->window_ms, b1, sizeof b1));
}

/* A request of this cost can pass: no window's limit, nor what the reserve leaves of the
 * longest one, is below it. */
static void
cost_fits(struct ctx *c, config_setting_t *at, const struct budget_conf *bc, int64_t cost)
{
	const struct budget_window *lo = NULL, *lw;
	int64_t			 left;
	char			 b1[32];

	if (bc->nrate == 0)
		return;
	for (size_t k = 0; k < bc->nrate; k++) {
		if (lo == NULL || bc->rate[k].limit < lo->limit)
			lo = &bc->rate[k];
	}
	lw = &bc->rate[bc->nrate - 1];
	left = budget_share(lw->limit, bc->reserve);
	if (cost > lo->limit)
		ctx_errf(c, ctx_line(c, at), "'cost' %" PRId64 " is above the limit of the "
		    "window %" PRId64 "/%s: such a request could never pass", cost, lo->limit,
		    ctx_fmt_dur(lo->window_ms, b1, sizeof b1));
	else if (cost > left && left >= 1)
		ctx_errf(c, ctx_line(c, at), "'cost' %" PRId64 " is above the %" PRId64 " that "
		    "'reserve' leaves of the window %" PRId64 "/%s: such a request could never "
		    "pass", cost, left, lw->limit, ctx_fmt_dur(lw->window_ms, b1, sizeof b1));
}

/* One cost rule; 0 when complete (its expression compiled), -1 when not kept. */
static int
parse_cost(struct ctx *c, config_setting_t *e, const struct budget_conf *bc,
    struct budget_cost *r)
{
	const int64_t		 zero = 0;
	char			 msg[256], *p;
	int			 rc;

	memset(r, 0, sizeof *r);
	if (ctx_get_str(c, e, "budgets.*.costs.*.method", false, &r->method) == 0 &&
	    r->method != NULL) {
		for (p = r->method; *p != '\0' && (isalnum((unsigned char)*p) ||
		    strchr("!#$%&'*+-.^_`|~", *p) != NULL); p++)
			*p = (char)toupper((unsigned char)*p);
		if (*p != '\0' || p == r->method)
			ctx_errf(c, ctx_line(c, ctx_member(e, "method")), "'method': '%s' is not "
			    "an HTTP method (one token, such as \"POST\")",
			    config_setting_get_string(ctx_member(e, "method")));
	}
	(void)ctx_get_int(c, e, "budgets.*.costs.*.cost", &zero, &r->cost);
	cost_fits(c, ctx_member(e, "cost"), bc, r->cost);
	if (ctx_get_str(c, e, "budgets.*.costs.*.path", false, &r->path) != 0 ||
	    r->path == NULL) {
		free(r->method);
		return -1;
	}
	if (*r->path == '\0') {
		/* POSIX leaves an empty expression undefined */
		ctx_errf(c, ctx_line(c, ctx_member(e, "path")), "'path' must not be empty (\"^/\" "
		    "matches every request)");
		free(r->method);
		free(r->path);
		return -1;
	}
	if ((rc = regcomp(&r->re, r->path, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, &r->re, msg, sizeof msg);
		ctx_errf(c, ctx_line(c, ctx_member(e, "path")), "'path': bad regular expression "
		    "'%s' (POSIX extended): %s", r->path, msg);
		free(r->method);
		free(r->path);
		return -1;
	}
	return 0;
}

/* costs: at most 64 rules, in order. */
static void
parse_costs(struct ctx *c, config_setting_t *g, struct budget_conf *bc)
{
	config_setting_t	*l = ctx_member(g, "costs"), *e;
	const char		*outer = c->scope;
	char			*sc;
	int			 i, len;

	if (l == NULL || !config_setting_is_list(l))
		return;		/* absent, or reported by walk_group() */
	if ((len = config_setting_length(l)) > BUDGET_MAX_COSTS) {
		ctx_errf(c, ctx_line(c, l), "'costs' holds %d rules; at most %d", len,
		    BUDGET_MAX_COSTS);
		return;
	}
	bc->costs = xcalloc((size_t)len + 1, sizeof *bc->costs);
	for (i = 0; i < len; i++) {
		e = config_setting_get_elem(l, (unsigned)i);
		if (!config_setting_is_group(e))
			continue;	/* reported by walk_group() */
		sc = xasprintf("%s, costs[%d]", outer, i);
		c->scope = sc;
		if (parse_cost(c, e, bc, &bc->costs[bc->ncosts]) == 0)
			bc->ncosts++;
		c->scope = outer;
		free(sc);
	}
}

/* name: well formed and unique among the budgets before it. */
static void
parse_budget_name(struct ctx *c, config_setting_t *g, struct budget_conf *bc)
{
	config_setting_t	*s = ctx_member(g, "name");
	size_t			 i;

	if (ctx_get_str(c, g, "budgets.*.name", false, &bc->name) != 0)
		return;
	if (!ctx_is_name(bc->name))
		ctx_errf(c, ctx_line(c, s), "'name': '%s' must be 1 to 64 letters, digits, '_', "
		    "'.' or '-'", bc->name);
	for (i = 0; c->cfg->budgets + i < bc; i++) {
		if (c->cfg->budgets[i].name != NULL &&
		    strcmp(c->cfg->budgets[i].name, bc->name) == 0) {
			ctx_errf(c, ctx_line(c, s), "'name': duplicate budget name '%s' (first at "
			    "line %d)", bc->name, c->cfg->budgets[i].line);
			break;
		}
	}
}

static void
parse_budget(struct ctx *c, config_setting_t *g, struct budget_conf *bc, int idx)
{
	char	*sc;

	bc->line = c->line = ctx_line(c, g);
	sc = xasprintf("budgets[%d]", idx);
	c->scope = sc;
	parse_budget_name(c, g, bc);
	if (bc->name != NULL) {
		free(sc);
		c->scope = sc = xasprintf("budget '%s'", bc->name);
	}
	parse_match(c, g, bc);
	parse_rate(c, g, bc);
	(void)ctx_get_int32(c, g, "budgets.*.concurrency", NULL, &bc->concurrency);
	parse_reserve(c, g, bc);
	(void)ctx_get_dur(c, g, "budgets.*.park_after", NULL, &bc->park_after_ms);
	parse_costs(c, g, bc);
	c->scope = NULL;
	free(sc);
}

void
config_budgets_parse(struct ctx *c, struct config_setting_t *root)
{
	config_setting_t	*l = config_setting_get_member(root, "budgets"), *e;
	int			 i, n;

	if (l == NULL || !config_setting_is_list(l))
		return;		/* none, or reported by walk_group() */
	n = config_setting_length(l);
	c->cfg->budgets = xcalloc((size_t)n + 1, sizeof *c->cfg->budgets);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(l, (unsigned)i);
		if (!config_setting_is_group(e))
			continue;
		parse_budget(c, e, &c->cfg->budgets[c->cfg->nbudgets++], i);
	}
	c->line = 1;
}
