/*
 * state_cred.c - the credentials' statements. Every rule (the lease, the fencing by
 * generation, what a mark needs, refusing a token in clear) is in the functions of
 * sql_cred.h, by the database clock; this file only passes values as parameters. It never
 * logs a value it passes: the tokens are sealed, and still not for a log.
 */
#include <stdio.h>

#include "store/state_cred.h"

void
state_cred_get(struct state *st, const char *name, state_cb cb, void *arg)
{
	const char *v[] = { name };

	state_call(st, false, "credential get", "SELECT @S@.credential_get($1)", 1, v, cb, arg);
}

void
state_cred_begin(struct state *st, const char *name, const char *instance, int64_t lease_ms,
    const char *origin, state_cb cb, void *arg)
{
	char l[32];
	const char *v[] = { name, instance, l, origin };

	snprintf(l, sizeof l, "%lld", (long long)lease_ms);
	state_call(st, false, "credential begin", "SELECT @S@.credential_begin($1, $2, $3, $4)",
	    4, v, cb, arg);
}

void
state_cred_renew(struct state *st, const char *name, const char *instance, int64_t token,
    int64_t lease_ms, state_cb cb, void *arg)
{
	char g[32], l[32];
	const char *v[] = { name, instance, g, l };

	snprintf(g, sizeof g, "%lld", (long long)token);
	snprintf(l, sizeof l, "%lld", (long long)lease_ms);
	state_call(st, false, "credential renew", "SELECT @S@.credential_renew($1, $2, $3, $4)",
	    4, v, cb, arg);
}

void
state_cred_store(struct state *st, const char *name, const char *instance, int64_t token,
    const char *access_sealed, int64_t expires_ms, const char *refresh_sealed,
    const char *key_check, const char *origin, const char *seed, state_cb cb, void *arg)
{
	char g[32], e[32];
	const char *v[] = { name, instance, g, access_sealed, expires_ms < 0 ? NULL : e,
	    refresh_sealed, key_check, origin, seed };

	snprintf(g, sizeof g, "%lld", (long long)token);
	snprintf(e, sizeof e, "%lld", (long long)expires_ms);
	state_call(st, false, "credential store", "SELECT @S@.credential_store($1, $2, $3, $4, "
	    "$5, $6, $7, $8, $9)", 9, v, cb, arg);
}

void
state_cred_fail(struct state *st, const char *name, const char *instance, int64_t token,
    const char *needs_reauth, const char *origin, state_cb cb, void *arg)
{
	char g[32];
	const char *v[] = { name, instance, g, needs_reauth, origin };

	snprintf(g, sizeof g, "%lld", (long long)token);
	state_call(st, false, "credential fail", "SELECT @S@.credential_fail($1, $2, $3, $4, $5)",
	    5, v, cb, arg);
}

void
state_cred_set_refresh(struct state *st, const char *name, const char *refresh_sealed,
    const char *key_check, const char *origin, const char *seed, state_cb cb, void *arg)
{
	const char *v[] = { name, refresh_sealed, key_check, origin, seed };

	state_call(st, false, "credential set refresh",
	    "SELECT @S@.credential_set_refresh($1, $2, $3, $4, $5)", 5, v, cb, arg);
}
