/* util.h - allocation that aborts on OOM, growable buffers, small helpers. */
#ifndef ONESYNC_UTIL_H
#define ONESYNC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WUR __attribute__((warn_unused_result))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) PRINTF(1, 2);
char *xvasprintf(const char *, va_list);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
};
void buf_init(struct buf *);
void buf_free(struct buf *);
void buf_reset(struct buf *);
void buf_add(struct buf *, const void *, size_t);
void buf_adds(struct buf *, const char *);
void buf_addc(struct buf *, char);
void buf_printf(struct buf *, const char *, ...) PRINTF(2, 3);
char *buf_steal(struct buf *);	/* returns data (caller frees), buffer emptied */

/* A list of strings (error messages, names). */
struct strlist {
	char	**v;
	size_t	  n;
};
void strlist_add(struct strlist *, char *);	/* takes ownership */
void strlist_addf(struct strlist *, const char *, ...) PRINTF(2, 3);
void strlist_free(struct strlist *);

/* "500ms", "30s", "5m", "1h", "2d", or a bare integer (seconds); -1 on error. */
int64_t parse_duration_ms(const char *) WUR;

uint64_t now_mono_ms(void);	/* CLOCK_MONOTONIC */
uint64_t now_mono_us(void);
uint64_t rand64(void);		/* non-cryptographic, seeded once */

/* Percent-encode for URL path segments and query values (RFC 3986 unreserved kept). */
void url_escape(struct buf *, const char *, size_t);

/* Read a whole small file (secrets); NULL + errno on failure. Strips one trailing newline. */
char *read_small_file(const char *path, size_t max);

#endif
