/* creds_wire.h - a token request and its answer on the wire (creds_wire.c). */
#ifndef ONESYNC_CREDS_WIRE_H
#define ONESYNC_CREDS_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "config/model.h"
#include "core/util.h"
#include "io/http.h"

/* Append "name=value" to a form body ('&' between), value percent-encoded; NULL: nothing. */
void creds_form_add(struct buf *, const char *name, const char *value);
/* "Authorization: Basic ..." for the credential's client id and secret (RFC 6749 §2.3.1). */
char *creds_basic_header(const struct cred_conf *);
/* A token as an endpoint may give it: 6 to 8192 visible ASCII characters. */
bool creds_token_ok(const char *);
/* The error code of a 400/401 that refuses the grant or the client (invalid_grant,
 * invalid_client, unauthorized_client), else NULL. */
const char *creds_grant_refused(const struct http_response *);
/* A token endpoint's answer j (RFC 6749 §5.1): *access, *refresh (NULL: none) and *life_s
 * (expires_in; 3600 when missing), or NULL and *why (static text) when it is not one to
 * use: no or a bad token, a token_type other than Bearer, an expires_in that is not a
 * whole number of seconds from 1 (a string of digits counts). The pointers are j's. */
bool creds_parse_answer(json_t *j, const char **access, const char **refresh,
    int64_t *life_s, const char **why);

#endif
