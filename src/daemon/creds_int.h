/*
 * creds_int.h - what daemon/creds.c (the engine, the hook, reloads) and
 * daemon/creds_fetch.c (getting a token) share: one credential's state. Types only.
 */
#ifndef ONESYNC_CREDS_INT_H
#define ONESYNC_CREDS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include "config/cred.h"
#include "config/model.h"
#include "core/aead.h"

struct http_call;
struct state;

#define CRED_LEASE_MS		5000	/* a refresh's lease, renewed every third of it
					 * while its request waits */
#define CRED_BUSY_MIN_MS	20	/* another instance refreshes: read again after */
#define CRED_BUSY_MAX_MS	2000
#define CRED_RETRY_MAX_MS	60000	/* after failures: at most this between tries */
#define CRED_TOKEN_MAX		8192	/* bytes of an access or refresh token */
#define CRED_LIFE_MAX_S		(366LL * 86400)
#define CRED_STORE_MAX_MS	8000	/* storing again after a failure: at most this */
#define CRED_FRESH_MS		3000	/* a 401 to a token this young: the API refuses
					 * the credential, not the token (back off) */

struct waiter {
	struct waiter		*next;
	struct http_call	*call;
	uint64_t		 deadline;	/* monotonic ms: fails then without a token */
};

struct cred {
	struct cred		*next;
	struct creds		*e;
	struct cred_conf	 conf;		/* own copies */
	char			 origin[CRED_ORIGIN_HEX + 1];	/* whose tokens (shared) */
	char			 seed[AEAD_MAC_HEX + 1];	/* the configured refresh token's */
	char			 mark_id[CRED_ORIGIN_HEX + 1];	/* client and seed: a mark's */
	bool			 seed_used;	/* the request in flight presents it */
	bool			 requesting;	/* a token request is in flight */
	char			*token;		/* the access token, or NULL */
	char			*old_token;	/* the one before: still masked in logs */
	char			*refresh_held;	/* the last refresh token masked in logs */
	uint64_t		 expires;	/* monotonic ms */
	uint64_t		 refresh_at;	/* monotonic ms */
	uint64_t		 safety;	/* ms: not sent with less left */
	uint64_t		 adopted_at;	/* monotonic ms, of the token */
	int64_t			 generation;	/* of the token in the store; -1 */
	uint64_t		 rejected;	/* hash of the token a 401 refused, 0 */
	int			 refusals;	/* fresh tokens a 401 refused in a row */
	struct waiter		*head, *tail;
	bool			 busy;		/* a fetch is under way */
	bool			 after_gone;	/* waits for a reload's old credential */
	bool			 local;		/* this fetch keeps its token to itself */
	bool			 key_warned;	/* told that another key sealed the row */
	int64_t			 fence;		/* the lease's number (shared), -1 */
	char			*used_refresh;	/* the refresh token of the request in flight */
	char			*needs_reauth;	/* why, or NULL */
	uint64_t		 reauth_recheck;	/* monotonic ms: read the stored mark again */
	char			*last_error;	/* the last failure, while next_try is ahead */
	uint64_t		 next_try;	/* monotonic ms */
	int			 failures;
	bool			 gone;
	struct event		*timer;		/* read the row again */
	struct event		*lease_timer;	/* renew the lease of the request in flight */
	long long		 requests;	/* token requests sent */
	int			 calls;		/* state calls whose answer comes to it */
	/* a token the store has not kept yet: sealed, and the generation its refresh
	 * began from; stored again until it is (or a newer one is) */
	char			*unstored_access, *unstored_refresh;
	int64_t			 unstored_expires;	/* ms since the epoch */
	char			 unstored_kc[AEAD_MAC_HEX + 1];	/* the key and origin */
	char			 unstored_origin[CRED_ORIGIN_HEX + 1];	/* it was sealed for */
	bool			 unstored_seed;	/* its refresh began from the configured token */
	int64_t			 unstored_gen;
	int			 store_tries;
	bool			 storing;	/* a store is in flight */
	struct event		*store_timer;
	struct event		*wait_timer;	/* the first waiter's deadline */
};

struct creds {
	struct event_base	*base;
	struct state		*state;
	char			*instance;
	char			*schema;
	bool			 shared;	/* a key: tokens live in the store, sealed */
	unsigned char		 key[AEAD_KEY_LEN];
	char			 key_check[AEAD_MAC_HEX + 1];
	struct cred		*list;
	bool			 closing;
	void			(*fetch)(struct cred *);	/* creds_fetch */
	void			(*stop_done)(void *);	/* creds_stop's, while it waits */
	void			*stop_arg;
};

#endif
