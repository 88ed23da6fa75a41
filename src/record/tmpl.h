/* tmpl.h - {{placeholder}} templates, compiled once at config load, rendered per place. */
#ifndef ONESYNC_TMPL_H
#define ONESYNC_TMPL_H

#include <jansson.h>
#include "core/util.h"

/* Where a template is used decides its escaping. */
enum tmpl_place {
	TMPL_URL,	/* percent-encoding of every substituted value */
	TMPL_QUERY,	/* a query value: percent-encoded; missing value -> parameter left out */
	TMPL_HEADER,	/* raw; CR/LF in a value is an error */
	TMPL_BODY,	/* JSON encoding: strings quoted, numbers bare, {{record}} whole object */
	TMPL_TEXT,	/* raw text (an SQL parameter): strings as is, numbers as text,
			 * objects/arrays as compact JSON; never escaped */
};

/* Placeholder kinds; a place allows a set of them (bit mask). */
enum tmpl_var {
	TV_WATERMARK	= 1 << 0,
	TV_PAGE		= 1 << 1,
	TV_OFFSET	= 1 << 2,
	TV_LIMIT	= 1 << 3,
	TV_CURSOR	= 1 << 4,
	TV_KEY		= 1 << 5,
	TV_RECORD	= 1 << 6,	/* {{record}} and {{record.PATH}} */
	TV_DEST		= 1 << 7,	/* {{dest.PATH}} */
	TV_SECRET	= 1 << 8,	/* {{secret:NAME}}: resolved at compile time */
	TV_ENV		= 1 << 9,	/* {{env:NAME}}: resolved at compile time */
};
#define TV_READ	(TV_WATERMARK | TV_PAGE | TV_OFFSET | TV_LIMIT | TV_CURSOR | TV_SECRET | TV_ENV)
#define TV_WRITE (TV_KEY | TV_RECORD | TV_SECRET | TV_ENV)
#define TV_MARK	(TV_KEY | TV_RECORD | TV_DEST | TV_SECRET | TV_ENV)

/*
 * The inside of a template: literal parts and placeholders, as tmpl_compile.c builds it and
 * tmpl.c renders it. Every other file uses the functions below, never these fields.
 */
struct tmpl_part {
	unsigned	 var;		/* 0 = literal, else one TV_* bit */
	char		*name;		/* placeholder as written, for messages */
	char		*arg;		/* literal text, record/dest path or resolved value */
	bool		 in_string;	/* TMPL_BODY: inside a JSON string literal */
};

struct tmpl {
	char		*src;
	enum tmpl_place	 place;
	unsigned	 uses;
	bool		 has_secret;
	struct tmpl_part	*parts;
	size_t		 nparts;
};

/* Values available while rendering; `have` says which ones are set (TV_* bits). */
struct tmpl_vals {
	unsigned	 have;
	const char	*watermark;
	long long	 page, offset, limit;
	const char	*cursor;
	const char	*key;
	/* The key's fields: with them and the record, {{key}} in a BODY keeps the key's JSON
	 * type (a number stays bare; a composite key is an array); without, it is a string. */
	char *const	*key_fields;
	size_t		 nkey_fields;
	json_t		*record;
	json_t		*dest;
};

void tmpl_free(struct tmpl *);
const char *tmpl_source(const struct tmpl *);
unsigned tmpl_uses(const struct tmpl *);	/* TV_* bits that appear */
bool tmpl_has_secret(const struct tmpl *);
/* The record paths of its {{record.PATH}} placeholders, one per call from *it (start at 0);
 * NULL after the last. */
const char *tmpl_record_path(const struct tmpl *, size_t *it);
/* The same for its {{dest.PATH}} placeholders. */
const char *tmpl_dest_path(const struct tmpl *, size_t *it);
/* Append the source and the resolved secret/env values (config fingerprints only; never log). */
void tmpl_digest(const struct tmpl *, struct buf *);

/*
 * The part of a URL template the configuration fixes: its literal text and {{secret:}}
 * and {{env:}} values, rendered, up to the first placeholder whose value comes with a
 * request ({{key}}, {{record.x}}, {{page}}...). Appends it to out (it may hold a secret:
 * never log it); returns that placeholder's name, or NULL when there is none.
 */
const char *tmpl_fixed_prefix(const struct tmpl *, struct buf *out);

/*
 * Append the rendering to out. redact: secrets render as "***" (for log lines).
 * Returns 0 on success; 1 when a value is missing and place is TMPL_QUERY (leave the
 * parameter out; nothing appended); -1 on error with *err set (caller frees): missing value,
 * CR/LF in a header value, a record path that does not exist.
 */
int tmpl_render(const struct tmpl *, const struct tmpl_vals *, bool redact,
    struct buf *out, char **err) WUR;

/* Why a header value (n bytes at s) cannot be sent: "a line break", "a NUL character",
 * "a control character"; NULL when it can. */
const char *tmpl_header_bad(const char *s, size_t n);

#endif
