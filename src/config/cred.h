/* cred.h - OAuth2 credentials: the list read from the file, state.encryption_key, and the
 * auth keys of a job that name one (cred.c). */
#ifndef ONESYNC_CRED_H
#define ONESYNC_CRED_H

#include "config/ctx.h"
#include "config/model.h"

/* The top-level list `credentials` into c->cfg->creds, then state.encryption_key (required
 * as soon as a credential keeps a refresh token); errors name the credential and the key.
 * Before the jobs, which name the credentials. */
void config_creds_parse(struct ctx *c, config_setting_t *root);
/* source.auth, source.mark.auth (default source.auth) and destination.auth of job j: a
 * known credential, on a request that can carry its token. After the source and the
 * destination are read, before the fingerprint. */
void config_creds_auth(struct ctx *c, config_setting_t *job, struct job_conf *j);
/* The credential of that name, or NULL (name NULL: NULL). */
const struct cred_conf *config_cred(const struct config *cfg, const char *name);
/* What a job's fingerprint holds of the credential of that name (its secrets included);
 * nothing when there is none. */
void config_cred_digest(const struct config *cfg, const char *name, struct buf *b);
/* Whose tokens the state database's row of credential cr holds, as two MACs under key
 * (CRED_ORIGIN_HEX hex digits and a NUL in out): its type, token_url and client_id (the
 * client, whose refresh tokens they are), then its scope and audience (the access
 * token's). Not the client_secret, whose rotation keeps the tokens. */
#define CRED_ORIGIN_HEX	64
/* A refresh token's MAC under key (AEAD_MAC_HEX hex digits and a NUL in out): the state
 * database records those given to a credential, so that a spent one is never presented. */
void config_cred_seed(const unsigned char *key, const char *refresh_token, char *out);
void config_cred_origin(const struct cred_conf *cr, const unsigned char *key, char *out);
/* The warnings about a loaded configuration's credentials, "FILE:LINE: ..." appended to
 * out: a token_url in plain http to a host that is not loopback. */
void config_creds_warnings(const struct config *cfg, struct strlist *out);
/* Free what it holds, its secrets wiped first. */
void cred_conf_free(struct cred_conf *cr);

#endif
