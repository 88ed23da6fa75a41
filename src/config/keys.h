/* keys.h - the table of configuration keys (keys.c): types, flags, one entry per key. */
#ifndef ONESYNC_KEYS_H
#define ONESYNC_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* K_JOBS: a list of groups ( { ... }, ... ), each walked by "PATH.*.key" entries (the jobs,
 * the budgets, a budget's costs). */
enum ktype {
	K_GROUP, K_JOBS, K_STR, K_TMPL, K_INT, K_BOOL, K_DUR, K_STRLIST, K_KEY, K_MAP,
	K_QUERY, K_FLOAT, K_AUTO
};

#define F_REQ		0x01	/* required */
#define F_NORELOAD	0x02	/* a change needs a restart */
#define F_HTTP		0x04	/* source/destination: only for type http */
#define F_PG		0x08	/* source/destination: only for type postgresql */
#define F_FILE		0x10	/* source: only for type file */
#define F_CONN		(F_HTTP | F_PG | F_FILE)	/* any of these: only for those types */

#define DUR_MAX		(INT64_MAX / 4)

struct key_def {
	const char	*path;	/* "jobs.*.x" for the keys of each job */
	enum ktype	 type;
	const char	*def;	/* documented default; NULL = none */
	int64_t		 min, max;	/* integers; durations in ms; K_FLOAT: unused (0..1) */
	int		 flags;
	const char	*doc;
};

/* Every key, "jobs.*.x" for the keys of each job; keys_count entries. */
extern const struct key_def keys_table[];
extern const size_t keys_count;

#endif
