/*
 * escape.c - escapes in text, both ways: a text made safe to show on one line (control,
 * invisible and non-UTF-8 characters escaped), and where a quoted value ends when a
 * backslash escapes the next character. Pure functions on strings; no state.
 */
#include <stdint.h>

#include "core/escape.h"

/* Where a quoted value (opening quote at *p) ends, past its closing quote. */
const char *
escape_quoted_end(const char *p)
{
	char q = *p++;

	while (*p != '\0' && *p != q) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	return *p == q ? p + 1 : p;
}

/*
 * The length of the well-formed UTF-8 sequence at p (1..4) and its code point, or 0 when
 * the bytes there are not one (a stray continuation byte, an overlong form, a surrogate,
 * past U+10FFFF, or cut short by the end of the text).
 */
static size_t
utf8_next(const unsigned char *p, uint32_t *cp)
{
	size_t n, i;
	uint32_t c;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		c = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		c = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		c = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)	/* also stops at the terminating NUL */
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Code points that change how a terminal shows the rest of a line without being text:
 * C1 controls (0x9b is an 8-bit CSI), line and paragraph separators, and the
 * bidirectional and zero-width format characters (U+202E would show a key backwards).
 */
static bool
invisible(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x180e ||
	    (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2060 && c <= 0x2069) || c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb);
}

void
escape_controls(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t c;
	size_t n;

	while (*p != '\0') {
		if ((n = utf8_next(p, &c)) == 0) {
			/* not UTF-8: shown as the byte, so the line stays valid text */
			buf_printf(b, "\\x%02x", *p++);
			continue;
		}
		if (c == '\n')
			buf_adds(b, "\\n");
		else if (c == '\r')
			buf_adds(b, "\\r");
		else if (c == '\t')
			buf_adds(b, "\\t");
		else if (c < 0x20 || c == 0x7f)
			buf_printf(b, "\\x%02x", (unsigned)c);
		else if (invisible(c))
			buf_printf(b, "\\u%04x", (unsigned)c);
		else
			buf_add(b, (const char *)p, n);
		p += n;
	}
}
