/*
 * fuzz_json_mend.c - libFuzzer harness for json_mend() and json_poison() (src/record/parse.c):
 * the pass that turns each value jansson refuses into a marked string before a source's
 * JSON text is parsed. Input: the text. Traps when
 * - nothing was mended but the output buffer was written;
 * - jansson reads the text, yet not the mended one (mending never breaks a readable text);
 * - mending the mended text mends again (every refused value went in one pass);
 * - the mended text fails with one of the errors mending exists for, while the pass read
 *   the text to its end (no unterminated string or container stopped it).
 * json_poison() walks whatever loads, and its reason is never empty. json_count_at() of
 * the text itself ("") and of "data" is the size of the array jansson finds there (a text
 * without duplicate keys), or -1.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/parse.h"
#include "record/json.h"
#include "record/tmpl.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Errors only a value can cause (invalid UTF-8, control characters and depth can also be
 * the text's structure: a byte outside a string, an unclosed container). */
static const char *const refused[] = {
	"too big integer", "real number overflow", "invalid Unicode", "NUL byte in object key",
};

/* Whether every string of s is closed (so json_mend read the text to its end). */
static bool
strings_closed(const uint8_t *s, size_t n)
{
	bool in = false;

	for (size_t i = 0; i < n; i++) {
		if (in && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			in = !in;
	}
	return !in;
}

static void
count(const uint8_t *data, size_t size, json_t *v, const char *path)
{
	json_t *a = v != NULL ? jsonx_path_get(v, path) : NULL;
	long c = json_count_at(data, size, path);

	if (c != -1 && (a == NULL || !json_is_array(a) || (size_t)c != json_array_size(a)))
		__builtin_trap();
}

static void
walk(json_t *v)
{
	char *why;

	if (json_poison(v, &why) != 0) {
		if (why == NULL || why[0] == '\0')
			__builtin_trap();
		free(why);
	} else if (why != NULL)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	struct buf out, again;
	json_error_t je;
	json_t *orig, *m;
	size_t n;

	if (size > 1 << 20)
		return 0;
	buf_init(&out);
	buf_init(&again);
	n = json_mend(data, size, &out);
	if (n == 0 && out.len != 0)
		__builtin_trap();
	orig = json_loadb((const char *)data, size, flags, &je);
	m = n > 0 ? json_loadb(out.data, out.len, flags, &je) : json_incref(orig);
	if (orig != NULL && m == NULL)
		__builtin_trap();
	if (m == NULL && n > 0 && strings_closed(data, size) && strstr(je.text, "premature") ==
	    NULL) {
		/* A structural error may come first; one of these may not. */
		for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
			if (strncmp(je.text, refused[i], strlen(refused[i])) == 0 &&
			    json_mend(out.data, out.len, &again) == 0)
				__builtin_trap();
	}
	if (n > 0 && json_mend(out.data, out.len, &again) != 0)
		__builtin_trap();
	if (m != NULL)
		walk(m);
	json_decref(orig);
	/* Duplicate keys: jansson keeps the last, the count the first. */
	orig = json_loadb((const char *)data, size, flags | JSON_REJECT_DUPLICATES, &je);
	if (orig != NULL) {
		count(data, size, orig, "");
		count(data, size, orig, "data");
	}
	json_decref(orig);
	json_decref(m);
	buf_free(&out);
	buf_free(&again);
	return 0;
}
