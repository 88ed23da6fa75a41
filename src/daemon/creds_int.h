/*
 * creds_int.h - what daemon/creds.c (the engine, the hook, reloads) and
 * daemon/creds_fetch.c (getting a token) share: one credential's state. Types only.
 */
#ifndef ONESYNC_CREDS_INT_H
#define ONESYNC_CREDS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/event.h>
#include "config/model.h"
#include "core/aead.h"

struct http_call;
struct state;

#define CRED_LEASE_MS		5000	/* a refresh's lease: its request's time and this */
#define CRED_BUSY_MIN_MS	20	/* another instance refreshes: read again after */
#define CRED_BUSY_MAX_MS	2000
#define CRED_RETRY_MAX_MS	60000	/* after failures: at most this between tries */
#define CRED_TOKEN_MAX		8192	/* bytes of an access or refresh token */
#define CRED_LIFE_MAX_S		(366LL * 86400)

struct waiter {
	struct waiter		*next;
	struct http_call	*call;
};

struct cred {
	struct cred		*next;
	struct creds		*e;
	struct cred_conf	 conf;		/* own copies */
	char			*token;		/* the access token, or NULL */
	uint64_t		 expires;	/* monotonic ms */
	uint64_t		 refresh_at;	/* monotonic ms */
	uint64_t		 safety;	/* ms: not sent with less left */
	int64_t			 generation;	/* of the token in the store; -1 */
	uint64_t		 rejected;	/* hash of the token a 401 refused, 0 */
	struct waiter		*head, *tail;
	bool			 busy;		/* a fetch is under way */
	int64_t			 fence;		/* the lease's number (shared), -1 */
	char			*needs_reauth;	/* why, or NULL */
	uint64_t		 reauth_recheck;	/* monotonic ms: read the stored mark again */
	char			*last_error;	/* the last failure, while next_try is ahead */
	uint64_t		 next_try;	/* monotonic ms */
	int			 failures;
	bool			 gone;
	struct event		*timer;
	long long		 requests;	/* token requests sent */
	char			*pending;	/* a new token while the store keeps it */
	int64_t			 pending_life;	/* its life, ms from when it came */
};

struct creds {
	struct event_base	*base;
	struct state		*state;
	char			*instance;
	char			*schema;
	bool			 shared;	/* a key: tokens live in the store, sealed */
	unsigned char		 key[AEAD_KEY_LEN];
	struct cred		*list;
	bool			 closing;
};

#endif
