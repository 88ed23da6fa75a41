/* tmpl_compile.h - a template compiled from its source text (tmpl_compile.c). */
#ifndef ONESYNC_TMPL_COMPILE_H
#define ONESYNC_TMPL_COMPILE_H

#include "record/tmpl.h"

/*
 * Compile src for place; placeholders outside `allowed` are errors. Secrets are read from
 * secrets_dir (or $CREDENTIALS_DIRECTORY when secrets_dir is NULL) now.
 * On error returns NULL and sets *err (caller frees) to a message without file/line.
 */
struct tmpl *tmpl_compile(const char *src, enum tmpl_place place, unsigned allowed,
    const char *secrets_dir, char **err);

#endif
