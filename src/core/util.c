/*
 * util.c - allocation that aborts on out-of-memory, growable buffers, string lists,
 * durations, clocks, small files (URL escaping is in url.c, redaction in redact.c). Owns
 * no global state except the PRNG seed; never logs (callers decide what is worth saying).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

static void
oom(void)
{
	fputs("onesyncd: out of memory\n", stderr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	if (p == NULL)
		oom();
	return p;
}

void *
xcalloc_big(size_t n, size_t sz)
{
	const size_t huge = (size_t)2 << 20;
	size_t len;
	void *p;

	if (sz != 0 && n > SIZE_MAX / sz)
		oom();
	len = n * sz;
	if (len < huge)
		return xcalloc(n, sz);
	len = (len + huge - 1) & ~(huge - 1);
	if (posix_memalign(&p, huge, len) != 0)
		oom();
	(void)madvise(p, len, MADV_HUGEPAGE);	/* a hint: without it, small pages */
	memset(p, 0, len);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *
xreallocarray(void *p, size_t n, size_t sz)
{
	if (sz != 0 && n > SIZE_MAX / sz)
		oom();
	return xrealloc(p, n * sz);
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
	char *s;

	if (vasprintf(&s, fmt, ap) == -1)
		oom();
	return s;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	return s;
}

void
buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	buf_init(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

/* Make room for n more bytes plus the terminating NUL. */
static void
buf_grow(struct buf *b, size_t n)
{
	size_t need = b->len + n + 1;

	if (need <= b->cap)
		return;
	if (b->cap == 0)
		b->cap = 64;
	while (b->cap < need)
		b->cap *= 2;
	b->data = xrealloc(b->data, b->cap);
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap, ap2;
	int n;

	va_start(ap, fmt);
	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return;
	}
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	b->len += (size_t)n;
}

char *
buf_steal(struct buf *b)
{
	char *p = b->data != NULL ? b->data : xstrdup("");

	buf_init(b);
	return p;
}

void
strlist_add(struct strlist *l, char *s)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
	l->v[l->n++] = s;
}

void
strlist_addf(struct strlist *l, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	strlist_add(l, xvasprintf(fmt, ap));
	va_end(ap);
}

void
strlist_free(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int64_t
parse_duration_ms(const char *s)
{
	static const struct { const char *u; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		{ "d", 86400000 }, { "", 1000 },
	};
	const char *p = s;
	int64_t v = 0;

	if (s == NULL || !isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		if (v > INT64_MAX / 10 - 10)
			return -1;
		v = v * 10 + (*p++ - '0');
	}
	for (size_t i = 0; i < NELEM(units); i++) {
		if (strcmp(p, units[i].u) == 0) {
			if (v > INT64_MAX / units[i].ms)
				return -1;
			return v * units[i].ms;
		}
	}
	return -1;
}

uint64_t
now_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
now_mono_ms(void)
{
	return now_mono_us() / 1000;
}

int64_t
now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64; seeded from the clock and pid on first use. */
uint64_t
rand64(void)
{
	static uint64_t state;
	uint64_t z;

	if (state == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    ((uint64_t)getpid() << 40) ^ 0x9e3779b97f4a7c15ULL;
	}
	z = (state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int
open_regular(const char *path, struct stat *st)
{
	int fd, saved;

	/* stat() first: opening a device can act on it (a tape rewinds). */
	st->st_mode = 0;
	if (stat(path, st) == 0 && !S_ISREG(st->st_mode))
		goto notreg;
	st->st_mode = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		saved = errno;
		close(fd);
		st->st_mode = 0;
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		goto notreg;
	}
	/* O_NONBLOCK means nothing to a regular file's reads; cleared all the same. */
	if ((saved = fcntl(fd, F_GETFL)) == -1 || fcntl(fd, F_SETFL, saved & ~O_NONBLOCK) == -1) {
		saved = errno;
		close(fd);
		st->st_mode = 0;
		errno = saved;
		return -1;
	}
	return fd;
notreg:
	errno = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
	return -1;
}

const char *
file_kind(mode_t m)
{
	static const struct {
		mode_t		 type;
		const char	*name;
	} kinds[] = {
		{ S_IFREG, "a regular file" }, { S_IFDIR, "a directory" },
		{ S_IFIFO, "a FIFO" }, { S_IFCHR, "a character device" },
		{ S_IFBLK, "a block device" }, { S_IFSOCK, "a socket" },
		{ S_IFLNK, "a symbolic link" },
	};

	for (size_t i = 0; i < NELEM(kinds); i++)
		if ((m & S_IFMT) == kinds[i].type)
			return kinds[i].name;
	return "a special file";
}

char *
read_small_file(const char *path, size_t max)
{
	struct buf b;
	char tmp[4096];
	ssize_t n;
	struct stat st;
	int fd, saved;

	if ((fd = open_regular(path, &st)) == -1)
		return NULL;
	buf_init(&b);
	buf_adds(&b, "");
	while ((n = read(fd, tmp, sizeof tmp)) > 0) {
		if (b.len + (size_t)n > max) {
			close(fd);
			buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
		buf_add(&b, tmp, (size_t)n);
	}
	saved = errno;
	close(fd);
	if (n == -1) {
		buf_free(&b);
		errno = saved;
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\n')
		b.data[--b.len] = '\0';
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		b.data[--b.len] = '\0';
	return buf_steal(&b);
}
