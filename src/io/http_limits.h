/* http_limits.h - the limit headers of an answer (http_limits.c), for io/http_req.c. */
#ifndef ONESYNC_HTTP_LIMITS_H
#define ONESYNC_HTTP_LIMITS_H

#include <stddef.h>

struct http_call;

/* One header (name of namelen bytes, value v): a limit header sets c->rl_remaining (the
 * fewest left of every limit) and c->rl_reset_ms (its reset, ms from now); others are
 * left alone. */
void http_limits_header(struct http_call *, const char *name, size_t namelen, const char *v);

#endif
