/* util.h - allocation that aborts on OOM, growable buffers, small helpers. */
#ifndef ONESYNC_UTIL_H
#define ONESYNC_UTIL_H

#include <sys/types.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WUR __attribute__((warn_unused_result))
#define PRINTF(a, b) __attribute__((format(printf, a, b)))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
/* Zeroed memory for a large table walked at random (freed with free()): from 2 MB on, on
 * huge pages where the kernel gives them (a TLB miss and a page fault per 2 MB instead of
 * per 4 KB). */
void *xcalloc_big(size_t n, size_t sz);
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
int64_t now_wall_ms(void);	/* CLOCK_REALTIME, ms since the epoch */
uint64_t now_mono_us(void);
uint64_t rand64(void);		/* non-cryptographic, seeded once */

/*
 * Open a regular file for reading, never waiting: a FIFO would block open() until a
 * writer came (and the loop with it), a device such as /dev/zero never ends. Checked by
 * stat() before the open and by fstat() of the descriptor (no race). -1 + errno; EISDIR
 * or EINVAL when the path is no regular file, and then st->st_mode says what it is
 * (0 when unknown). The descriptor is blocking and close-on-exec.
 */
struct stat;
int open_regular(const char *path, struct stat *st) WUR;
/* "a directory", "a FIFO", "a character device"...: the kind of file of a mode. */
const char *file_kind(mode_t);
/* Read a whole small regular file (secrets); NULL + errno on failure (see open_regular).
 * Strips one trailing newline. */
char *read_small_file(const char *path, size_t max);

#endif
