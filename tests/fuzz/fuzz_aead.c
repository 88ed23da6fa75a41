/*
 * fuzz_aead.c - libFuzzer harness for aead_open (src/core/aead.c). Input: one position
 * byte, then the data. Invariants, each a trap when broken:
 *  - the data opened as a sealed text terminates, and a refusal always says why;
 *  - the data sealed opens back to itself (length and bytes), and to nothing under
 *    another associated data;
 *  - that sealed text with any one character changed (at the position byte, to each
 *    character that can differ) is refused: a sealed value has one text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/aead.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *CHARS =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=:v1 \n";

/* Open s: NULL (with a reason) or the plaintext of *n bytes. */
static char *
open_it(const unsigned char *key, const char *ad, const char *s, size_t *n)
{
	const char *why = NULL;
	char *p = aead_open(key, ad, s, n, &why);

	if ((p == NULL) != (why != NULL))
		__builtin_trap();
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char key[AEAD_KEY_LEN];
	static int init;
	char *text, *s, *p;
	size_t n, pos;

	if (size < 1)
		return 0;
	if (!init && aead_key_parse("9f86d081884c7d659a2feaa0c55ad015"
	    "a3bf4f1b2b0b822cd15d6c15b0f00a08", key) != 0)
		__builtin_trap();
	init = 1;
	text = xstrndup((const char *)data + 1, size - 1);
	if ((p = open_it(key, "s/c/f", text, &n)) != NULL && p[n] != '\0')
		__builtin_trap();
	free(p);
	free(text);

	if ((s = aead_seal(key, "s/c/f", data + 1, size - 1)) == NULL)
		__builtin_trap();
	if ((p = open_it(key, "s/c/f", s, &n)) == NULL || n != size - 1 ||
	    memcmp(p, data + 1, n) != 0 || p[n] != '\0')
		__builtin_trap();
	free(p);
	if ((p = open_it(key, "s/c/g", s, &n)) != NULL)
		__builtin_trap();
	pos = data[0] % strlen(s);
	for (const char *c = CHARS; *c != '\0'; c++) {
		char was = s[pos];

		if (*c == was)
			continue;
		s[pos] = *c;
		if ((p = open_it(key, "s/c/f", s, &n)) != NULL)
			__builtin_trap();
		s[pos] = was;
	}
	free(s);
	return 0;
}
