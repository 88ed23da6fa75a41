/* redact.h - one redaction path for every text a user can see (logs, run history, status,
 * ctl): the patterns, and the values secrets.h registered. */
#ifndef ONESYNC_REDACT_H
#define ONESYNC_REDACT_H

#include <jansson.h>

#include "core/util.h"

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

#endif
