/* escape.h - escapes in text: a value shown on one line, the end of a quoted value. */
#ifndef ONESYNC_ESCAPE_H
#define ONESYNC_ESCAPE_H

#include "core/util.h"

/* Append s with control characters (and DEL) escaped as \n, \r, \t or \xNN, bytes that
 * are not UTF-8 as \xNN, and C1, separator and bidirectional/zero-width format characters
 * as \uNNNN: a logged value never starts a new line, never reorders or hides the text
 * around it, and the line stays valid UTF-8 (a backslash is kept as is). */
void escape_controls(struct buf *, const char *);

/* Where a quoted value (its opening quote at *p) ends: past its closing quote, a backslash
 * escaping the next character; at the NUL when it is not closed. */
const char *escape_quoted_end(const char *p);

#endif
