/* redact.h - one redaction path for every text a user can see (logs, run history, status, ctl). */
#ifndef ONESYNC_REDACT_H
#define ONESYNC_REDACT_H

#include <jansson.h>

#include "core/util.h"

/*
 * Values shorter than this are not masked where they appear as a substring of a text (a
 * 2-character secret would mask half of every line); they are still masked where a pattern
 * finds them (URL userinfo, credential parameters, headers, conninfo passwords).
 */
#define REDACT_MIN	6

/*
 * The registry: every secret the configuration resolved or holds literally. Process-wide,
 * never forgotten (a run of the previous configuration may still use a secret after a
 * reload). The value is also registered in its percent-encoded and JSON-escaped forms.
 */
void redact_add_secret(const char *);
/* One more query parameter name to treat as a credential (daemon.redact_params). */
void redact_add_param(const char *);
/* Learn the literal credentials of a configured URL, conninfo, header or query value. */
void redact_learn_url(const char *);
/* The same for a URL rendered from a template ({{secret:}} and {{env:}} resolved): its
 * values are learnt, and the Base64 of its user:password, as not written in the file. */
void redact_learn_rendered_url(const char *);
void redact_learn_conninfo(const char *);
void redact_learn_header(const char *);		/* "Name: value" */
/* A value that is a credential whole (source.password): its literal pieces. */
void redact_learn_value(const char *);
/* A JSON body template: the values of members whose names are credentials. */
void redact_learn_body(const char *);
/* base64(user:password), as "Authorization: Basic" carries it. */
void redact_learn_basic(const char *user, const char *password);
void redact_learn_param(const char *name, const char *value);
/* Whether a credential written literally in a configuration was learnt (not one from a
 * {{secret:}} or {{env:}}). */
bool redact_literal_learnt(void);
/* Forget everything (tests and fuzzing only). */
void redact_reset(void);

/*
 * A copy of any text with the registry's values and whatever the patterns recognise
 * (URLs, key=value and "key": "value" credentials, Authorization/Cookie header values,
 * conninfo passwords) replaced by "***".
 */
char *redact_text(const char *);
/* The same, on a text the caller no longer needs (freed). */
char *redact_text_free(char *);
/* A JSON document's string values redacted in place (never its keys nor numbers), and the
 * values of members whose names are credentials: how a document is redacted, never by its
 * serialised text. */
void redact_json(json_t *);

/* The first max bytes of an answer's body for a message: redacted before it is cut (a
 * secret cut in two would escape the registry), one line. */
char *redact_excerpt(const char *body, size_t len, size_t max);

/* A copy of a PostgreSQL conninfo (key=value in any spacing, or a URI) / a URL, redacted. */
char *redact_conninfo(const char *);
char *redact_url(const char *);

/* Append s with control characters (and DEL) escaped as \n, \r, \t or \xNN, bytes that
 * are not UTF-8 as \xNN, and C1, separator and bidirectional/zero-width format characters
 * as \uNNNN: a logged value never starts a new line, never reorders or hides the text
 * around it, and the line stays valid UTF-8 (a backslash is kept as is). */
void escape_controls(struct buf *, const char *);

#endif
