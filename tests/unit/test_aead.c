/* test_aead.c - core/aead.c: keys, the sealed format, and every way a sealed text can be
 * wrong (key, associated data, any bit, length, Base64, prefix) refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/aead.h"
#include "core/util.h"

static const char *KEYHEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *AD = "onesync/crm/refresh";

static void
key(unsigned char k[AEAD_KEY_LEN])
{
	assert_int_equal(aead_key_parse(KEYHEX, k), 0);
}

/* The raw bytes of a sealed text (after "v1:"). */
static unsigned char *
decode(const char *sealed, size_t *n)
{
	size_t len = strlen(sealed + 3);
	unsigned char *raw = xmalloc(len);
	int got = EVP_DecodeBlock(raw, (const unsigned char *)sealed + 3, (int)len);

	assert_true(got >= 0);
	*n = (size_t)got - (len > 0 && sealed[3 + len - 1] == '=') -
	    (len > 1 && sealed[3 + len - 2] == '=');
	return raw;
}

static char *
encode(const unsigned char *raw, size_t n)
{
	char *s = xmalloc(3 + (n + 2) / 3 * 4 + 1);

	memcpy(s, "v1:", 3);
	EVP_EncodeBlock((unsigned char *)s + 3, raw, (int)n);
	return s;
}

static void
refused(const unsigned char *k, const char *ad, const char *sealed, const char *want)
{
	const char *why = NULL;
	size_t n = 12345;
	char *p = aead_open(k, ad, sealed, &n, &why);

	assert_null(p);
	assert_non_null(why);
	if (want != NULL && strcmp(why, want) != 0)
		fail_msg("%s: refused as \"%s\", not \"%s\"", sealed, why, want);
	assert_int_equal(n, 12345);
}

static void
test_key_parse(void **state)
{
	unsigned char k[AEAD_KEY_LEN];
	char *s;

	(void)state;
	key(k);
	for (int i = 0; i < AEAD_KEY_LEN; i++)
		assert_int_equal(k[i], i);
	assert_int_equal(aead_key_parse("FFEEDDCCBBAA99887766554433221100"
	    "ffeeddccbbaa99887766554433221100", k), 0);
	assert_int_equal(k[0], 0xff);
	assert_int_equal(k[1], 0xee);
	assert_int_equal(k[31], 0x00);
	s = xasprintf("%.63s", KEYHEX);
	assert_int_equal(aead_key_parse(s, k), -1);
	free(s);
	s = xasprintf("%s0", KEYHEX);
	assert_int_equal(aead_key_parse(s, k), -1);
	free(s);
	s = xstrdup(KEYHEX);
	s[17] = 'g';
	assert_int_equal(aead_key_parse(s, k), -1);
	s[17] = ' ';
	assert_int_equal(aead_key_parse(s, k), -1);
	free(s);
	assert_int_equal(aead_key_parse("", k), -1);
	assert_int_equal(aead_key_parse(NULL, k), -1);
	/* "0x" and signs are no hex digits */
	assert_int_equal(aead_key_parse("0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b"
	    "1c1d1e1f", k), -1);
	/* a refused key leaves nothing of the input behind */
	for (int i = 0; i < AEAD_KEY_LEN; i++)
		assert_int_equal(k[i], 0);
}

static void
round_trip(const unsigned char *k, size_t len)
{
	unsigned char *plain = xmalloc(len + 1);
	const char *why = "unset";
	char *s, *p;
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		plain[i] = (unsigned char)(i * 7 + 3);	/* NULs included */
	s = aead_seal(k, AD, plain, len);
	assert_non_null(s);
	assert_memory_equal(s, "v1:", 3);
	p = aead_open(k, AD, s, &n, &why);
	assert_non_null(p);
	assert_null(why);
	assert_int_equal(n, len);
	assert_memory_equal(p, plain, len);
	assert_int_equal(p[len], '\0');
	free(p);
	free(s);
	free(plain);
}

static void
test_round_trip(void **state)
{
	unsigned char k[AEAD_KEY_LEN];
	char *a, *b;

	(void)state;
	key(k);
	round_trip(k, 0);
	round_trip(k, 1);
	round_trip(k, 10 * 1024);
	/* a fresh nonce each time: the same text sealed twice differs */
	a = aead_seal(k, AD, "token", 5);
	b = aead_seal(k, AD, "token", 5);
	assert_string_not_equal(a, b);
	free(a);
	free(b);
	/* NULL ad is the empty ad */
	a = aead_seal(k, NULL, "token", 5);
	{
		size_t n;
		const char *why;
		char *p = aead_open(k, "", a, &n, &why);

		assert_non_null(p);
		assert_string_equal(p, "token");
		free(p);
	}
	free(a);
}

/* The format is what the header says: OpenSSL alone opens it as nonce | ciphertext | tag
 * with the ad. */
static void
test_format(void **state)
{
	unsigned char k[AEAD_KEY_LEN], out[64];
	const char *text = "an access token";
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char *raw;
	size_t n;
	int m, f;
	char *s;

	(void)state;
	key(k);
	s = aead_seal(k, AD, text, strlen(text));
	raw = decode(s, &n);
	assert_int_equal(n, 12 + strlen(text) + 16);
	assert_null(memmem(raw, n, text, strlen(text)));
	assert_int_equal(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, k, raw), 1);
	assert_int_equal(EVP_DecryptUpdate(c, NULL, &m, (const unsigned char *)AD,
	    (int)strlen(AD)), 1);
	assert_int_equal(EVP_DecryptUpdate(c, out, &m, raw + 12, (int)strlen(text)), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
	    raw + 12 + strlen(text)), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, out + m, &f), 1);
	assert_memory_equal(out, text, strlen(text));
	EVP_CIPHER_CTX_free(c);
	free(raw);
	free(s);
}

static void
test_refusals(void **state)
{
	unsigned char k[AEAD_KEY_LEN], k2[AEAD_KEY_LEN], *raw;
	char *s, *t;
	size_t n;

	(void)state;
	key(k);
	memcpy(k2, k, sizeof k2);
	k2[31] ^= 1;
	s = aead_seal(k, AD, "refresh-token-1", 15);
	refused(k2, AD, s, "wrong key or altered");
	refused(k, "onesync/crm/access", s, "wrong key or altered");
	refused(k, "", s, "wrong key or altered");
	/* every bit of nonce, ciphertext and tag */
	raw = decode(s, &n);
	for (size_t i = 0; i < n; i++)
		for (int bit = 0; bit < 8; bit++) {
			raw[i] ^= (unsigned char)(1 << bit);
			t = encode(raw, n);
			refused(k, AD, t, "wrong key or altered");
			free(t);
			raw[i] ^= (unsigned char)(1 << bit);
		}
	/* truncated, by the decoded byte and by the character */
	for (size_t len = 0; len < n; len++) {
		t = encode(raw, len);
		refused(k, AD, t, NULL);
		free(t);
	}
	for (size_t len = 0; len < strlen(s); len++) {
		t = xstrndup(s, len);
		refused(k, AD, t, NULL);
		free(t);
	}
	t = encode(raw, 27);
	refused(k, AD, t, "sealed text too short");
	free(t);
	/* longer: a byte appended */
	raw = xrealloc(raw, n + 1);
	raw[n] = 0;
	t = encode(raw, n + 1);
	refused(k, AD, t, "wrong key or altered");
	free(t);
	free(raw);
	/* not Base64, not ours */
	refused(k, AD, s + 3, "not sealed by onesyncd");
	refused(k, AD, "", "not sealed by onesyncd");
	refused(k, AD, NULL, "not sealed by onesyncd");
	refused(k, AD, "v2:AAAA", "not sealed by onesyncd");
	refused(k, AD, "v1:", "not sealed by onesyncd");
	refused(k, AD, "v1:====", "not sealed by onesyncd");
	refused(k, AD, "v1:A===", "not sealed by onesyncd");
	refused(k, AD, "v1:AB=C", "not sealed by onesyncd");
	t = xstrdup(s);
	t[10] = '*';
	refused(k, AD, t, "not sealed by onesyncd");
	t[10] = ' ';
	refused(k, AD, t, "not sealed by onesyncd");
	free(t);
	t = xasprintf("%s\n", s);
	refused(k, AD, t, "not sealed by onesyncd");
	free(t);
	t = xasprintf(" %s", s);
	refused(k, AD, t, "not sealed by onesyncd");
	free(t);
	free(s);
}

/* Unused low bits of the last Base64 digit decode to the same bytes: still refused, so that
 * a sealed value has one text. */
static void
test_non_canonical(void **state)
{
	unsigned char k[AEAD_KEY_LEN];
	const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *s, *p, *last;
	size_t n;
	const char *why;

	(void)state;
	key(k);
	s = aead_seal(k, AD, "x", 1);	/* 29 bytes: one '=' of padding, 2 unused bits */
	assert_non_null(last = strchr(s, '='));
	last--;
	*last = digits[(strchr(digits, *last) - digits) ^ 1];
	refused(k, AD, s, "not sealed by onesyncd");
	*last = digits[(strchr(digits, *last) - digits) ^ 1];
	p = aead_open(k, AD, s, &n, &why);
	assert_non_null(p);
	free(p);
	free(s);
}

static void
test_too_long(void **state)
{
	unsigned char k[AEAD_KEY_LEN];

	(void)state;
	key(k);
	assert_null(aead_seal(k, AD, NULL, 1));
	assert_null(aead_seal(k, AD, "x", (size_t)17 * 1024 * 1024));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_non_canonical),
		cmocka_unit_test(test_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
