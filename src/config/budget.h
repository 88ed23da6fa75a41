/* budget.h - shared API budgets: the list read from the file, and what a request's URL and
 * method mean under one (budget.c). */
#ifndef ONESYNC_BUDGET_H
#define ONESYNC_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "config/model.h"

struct ctx;
struct config_setting_t;

/* url normalised for matching: scheme and host lower case, userinfo dropped, default port
 * (80 for http, 443 for https) dropped, an empty path made "/"; path and query as they
 * are. NULL when url is not an absolute http(s) URL. Caller frees. (Also: a host's final
 * dot and a fragment are dropped; a URL with a space or control character is refused.) */
char *budget_url_norm(const char *url);
/* Does the budget cover this (normalised) URL: one of its prefixes starts it. */
bool budget_match(const struct budget_conf *, const char *norm_url);
/* What a request costs under the budget: the first cost rule whose method (if any) and path
 * expression match (path = the normalised URL from the first '/' after the authority), else 1. */
int64_t budget_cost(const struct budget_conf *, const char *method, const char *norm_url);
/* "N/W": N (1..1e9) per W, W a duration "500ms", "10s", "1m", "1h", "1d" or a bare unit "s",
 * "m", "h", "d" meaning 1 of it; W from 1 ms to 31 days. 0, or -1 and *why (caller frees). */
int budget_rate_parse(const char *s, struct budget_window *, char **why) WUR;
void budget_conf_free(struct budget_conf *);
/* What reserve leaves of a window's limit to onesyncd: limit x (1 - reserve), rounded down
 * (exactly: 10 with reserve 0.9 leaves 1). */
int64_t budget_share(int64_t limit, double reserve);
/* A deep copy of src in dst (its regular expressions compiled again; a cost rule whose
 * expression no longer compiles is left out), for the budgets' runtime across reloads. */
void budget_conf_copy(struct budget_conf *dst, const struct budget_conf *src);	/* what it holds, not itself */

/* The top-level list `budgets` into c->cfg->budgets; errors name the budget and the key. */
void config_budgets_parse(struct ctx *c, struct config_setting_t *root);

#endif
