/* secrets.h - the registry of what redaction hides: secret values, credential names. */
#ifndef ONESYNC_SECRETS_H
#define ONESYNC_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/util.h"

/*
 * Values shorter than this are not masked where they appear as a substring of a text (a
 * 2-character secret would mask half of every line); they are still masked where a pattern
 * finds them (URL userinfo, credential parameters, headers, conninfo passwords).
 */
#define SECRETS_MIN	6
/* What a hidden value becomes. */
#define SECRETS_MASK	"***"

/*
 * The registry: every secret the configuration resolved or holds literally. Process-wide,
 * never forgotten (a run of the previous configuration may still use a secret after a
 * reload). The value is also registered in its percent-encoded and JSON-escaped forms.
 */
void secrets_add(const char *);
/*
 * A secret for a while (an access or refresh token): registered as secrets_add does, and
 * counted; secrets_forget takes one holder away, and with the last one the value is no
 * longer masked, so that a daemon renewing tokens for months keeps a registry of the ones
 * in use, not of every one it ever had. A value also given to secrets_add stays for good.
 */
void secrets_hold(const char *);
void secrets_forget(const char *);
/* One more query parameter name to treat as a credential (daemon.redact_params). */
void secrets_add_name(const char *);
/* Learn the literal credentials of a configured URL, conninfo, header or query value. */
void secrets_learn_url(const char *);
/* The same for a URL rendered from a template ({{secret:}} and {{env:}} resolved): its
 * values are learnt, and the Base64 of its user:password, as not written in the file. */
void secrets_learn_rendered_url(const char *);
void secrets_learn_conninfo(const char *);
void secrets_learn_header(const char *);		/* "Name: value" */
/* A value that is a credential whole (source.password): its literal pieces. */
void secrets_learn_value(const char *);
/* A JSON body template: the values of members whose names are credentials. */
void secrets_learn_body(const char *);
/* base64(user:password), as "Authorization: Basic" carries it. */
void secrets_learn_basic(const char *user, const char *password);
void secrets_learn_param(const char *name, const char *value);
/* Whether a credential written literally in a configuration was learnt (not one from a
 * {{secret:}} or {{env:}}). */
bool secrets_literal_learnt(void);
/* Forget everything (tests and fuzzing only). */
void secrets_reset(void);

/*
 * Whether the n bytes at name are a credential's name (cut into words: "api_key", "apiKey",
 * "client_secret"; a name of daemon.redact_params). url: a name an API chose (a query
 * parameter, a header, a body member), where more words count ("auth", "sig", "key" alone).
 */
bool secrets_cred_name(const char *name, size_t n, bool url);
/* A copy of s with every registered value replaced by "***". */
char *secrets_mask(const char *s);

#endif
