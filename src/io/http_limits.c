/*
 * http_limits.c - what an answer's headers say of the server's limits, for the request
 * budgets (io/http_permit.h's http_limit_info): RateLimit (draft-ietf-httpapi-ratelimit-
 * headers, its items or the earlier drafts' keys), RateLimit-Remaining/-Reset and
 * X-RateLimit-Remaining/-Reset (a reset in delta seconds or, when that large, a Unix time).
 * Retry-After stays with the request's retries (io/http_req.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "io/http_limits.h"
#include "io/http_int.h"

#define HTTP_LIMIT_CAP_MS	120000L	/* as Retry-After: a longer wait is asked again */

/* A reset time: delta seconds, or Unix epoch seconds when it is that large (some servers'
 * X-RateLimit-Reset): ms from now, capped like Retry-After; -1 if unparsable. */
static long
parse_reset(const char *v)
{
	char *end;
	long long n;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != ' ' && *end != ',' && *end != ';'))
		return -1;
	if (n > 1000000000LL && (n -= (long long)time(NULL)) < 0)
		n = 0;	/* an epoch time, now past */
	if (n > HTTP_LIMIT_CAP_MS / 1000)
		return HTTP_LIMIT_CAP_MS;
	return (long)(n * 1000);
}

/* A count of requests left: digits (capped, never read as a time); -1 if unparsable. */
static long
parse_count(const char *v)
{
	long n = 0;

	if (*v < '0' || *v > '9')
		return -1;
	for (; *v >= '0' && *v <= '9'; v++)
		if (n < 1000000000L)
			n = n * 10 + (*v - '0');
	return *v == '\0' || *v == ' ' || *v == ',' || *v == ';' ? n : -1;
}

/* Keep the fewest remaining of every limit header, with its reset. */
static void
limit_seen(struct http_call *c, long remaining, long reset_ms)
{
	if (remaining < 0 || (c->rl_remaining >= 0 && remaining > c->rl_remaining))
		return;
	c->rl_remaining = remaining;
	if (reset_ms >= 0)
		c->rl_reset_ms = reset_ms;
}

/*
 * RateLimit: draft-ietf-httpapi-ratelimit-headers-10 items ("name";r=0;t=3, ...), or the
 * earlier drafts' "limit=100, remaining=0, reset=3": the item with the fewest remaining.
 */
static void
parse_ratelimit(struct http_call *c, const char *v)
{
	long r = -1, t = -1, t_alone = -1;
	const char *p = v;

	while (*p != '\0') {
		size_t n = strcspn(p, ",;");
		const char *eq = memchr(p, '=', n);

		p += strspn(p, " \t");
		if (eq != NULL) {
			size_t k = (size_t)(eq - p);
			long val = parse_reset(eq + 1 + strspn(eq + 1, " \t"));

			if ((k == 1 && *p == 'r') || (k == 9 && strncasecmp(p, "remaining", 9) == 0))
				r = parse_count(eq + 1 + strspn(eq + 1, " \t"));
			else if ((k == 1 && *p == 't') || (k == 5 && strncasecmp(p, "reset", 5) == 0))
				t = val;
		}
		p += strcspn(p, ",;");
		if (*p == ',' || *p == '\0') {	/* an item ends */
			if (r >= 0)
				limit_seen(c, r, t);
			else if (t >= 0)
				t_alone = t;
			r = t = -1;
		}
		if (*p != '\0')
			p++;
	}
	if (c->rl_remaining >= 0 && c->rl_reset_ms < 0)
		c->rl_reset_ms = t_alone;
}

void
http_limits_header(struct http_call *c, const char *name, size_t namelen, const char *v)
{
	if (namelen == 9 && strncasecmp(name, "ratelimit", 9) == 0)
		parse_ratelimit(c, v);
	else if ((namelen == 19 && strncasecmp(name, "ratelimit-remaining", 19) == 0) ||
	    (namelen == 21 && strncasecmp(name, "x-ratelimit-remaining", 21) == 0))
		limit_seen(c, parse_count(v), -1);
	else if ((namelen == 15 && strncasecmp(name, "ratelimit-reset", 15) == 0) ||
	    (namelen == 17 && strncasecmp(name, "x-ratelimit-reset", 17) == 0)) {
		if (c->rl_reset_ms < 0 || c->rl_remaining < 0)
			c->rl_reset_ms = parse_reset(v);
	}
}
