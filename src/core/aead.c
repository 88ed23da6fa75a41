/*
 * aead.c - AES-256-GCM sealing of small secrets with libcrypto (OpenSSL, which libcurl
 * already brings), for the tokens the state database keeps. It owns the sealed format
 * ("v1:" + Base64 of nonce | ciphertext | tag) and nothing else: where the key comes from
 * and what is sealed are its callers'. It never logs and never keeps a plaintext: every
 * buffer it allocates that held one is wiped before it is freed.
 */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "core/aead.h"
#include "core/util.h"

#define NONCE_LEN	12
#define TAG_LEN		16
#define PREFIX		"v1:"
/* Tokens are small; the bound keeps every length within OpenSSL's int arithmetic. */
#define MAX_PLAIN	(16 * 1024 * 1024)

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
aead_key_parse(const char *hex, unsigned char key[AEAD_KEY_LEN])
{
	int hi, lo;

	if (hex == NULL || strlen(hex) != 2 * AEAD_KEY_LEN)
		goto bad;
	for (size_t i = 0; i < AEAD_KEY_LEN; i++) {
		if ((hi = hexval(hex[2 * i])) < 0 || (lo = hexval(hex[2 * i + 1])) < 0)
			goto bad;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
bad:
	OPENSSL_cleanse(key, AEAD_KEY_LEN);
	return -1;
}

/* A cipher context keyed for one direction, with the associated data already fed. */
static EVP_CIPHER_CTX *
gcm_start(bool enc, const unsigned char *key, const unsigned char *nonce, const char *ad)
{
	EVP_CIPHER_CTX *c;
	size_t adlen = ad != NULL ? strlen(ad) : 0;
	int n;

	if (adlen > INT_MAX || (c = EVP_CIPHER_CTX_new()) == NULL)
		return NULL;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
	    (adlen > 0 && EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)ad,
	    (int)adlen) != 1)) {
		EVP_CIPHER_CTX_free(c);
		return NULL;
	}
	return c;
}

char *
aead_seal(const unsigned char key[AEAD_KEY_LEN], const char *ad, const void *plain,
    size_t len)
{
	EVP_CIPHER_CTX *c = NULL;
	unsigned char *raw = NULL;
	size_t rawlen = NONCE_LEN + len + TAG_LEN;
	char *out = NULL;
	int n = 0, fin = 0;

	if (len > MAX_PLAIN || (plain == NULL && len > 0))
		return NULL;
	raw = xmalloc(rawlen);
	if (RAND_bytes(raw, NONCE_LEN) != 1 || (c = gcm_start(true, key, raw, ad)) == NULL)
		goto done;
	if ((len > 0 && EVP_EncryptUpdate(c, raw + NONCE_LEN, &n, plain, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(c, raw + NONCE_LEN + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != len ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, raw + NONCE_LEN + len) != 1)
		goto done;
	/* Base64 of rawlen bytes: 4 per 3, rounded up, and the NUL */
	out = xmalloc(strlen(PREFIX) + (rawlen + 2) / 3 * 4 + 1);
	memcpy(out, PREFIX, strlen(PREFIX));
	EVP_EncodeBlock((unsigned char *)out + strlen(PREFIX), raw, (int)rawlen);
done:
	EVP_CIPHER_CTX_free(c);
	free(raw);
	return out;
}

/* Strict Base64 (the alphabet, '=' only as the last one or two of a length that is a
 * multiple of 4, the canonical form of its bytes): the bytes, or NULL. */
static unsigned char *
b64_decode(const char *s, size_t *len)
{
	size_t n = strlen(s), pad = 0;
	unsigned char *raw;
	char *again;
	int got;

	if (n == 0 || n % 4 != 0 || n > INT_MAX / 2)
		return NULL;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	if (strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") !=
	    n - pad)
		return NULL;
	raw = xmalloc(n / 4 * 3 + 1);
	if ((got = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)n)) < 0 ||
	    (size_t)got < pad) {
		free(raw);
		return NULL;
	}
	*len = (size_t)got - pad;
	/* unused bits set would decode to the same bytes: one sealed value, one text */
	again = xmalloc(n + 1);
	EVP_EncodeBlock((unsigned char *)again, raw, (int)*len);
	if (strcmp(again, s) != 0) {
		free(raw);
		raw = NULL;
	}
	free(again);
	return raw;
}

char *
aead_open(const unsigned char key[AEAD_KEY_LEN], const char *ad, const char *sealed,
    size_t *len, const char **why)
{
	EVP_CIPHER_CTX *c = NULL;
	unsigned char *raw = NULL, *tag;
	char *out = NULL;
	size_t rawlen = 0, clen;
	int n = 0, fin = 0;

	*why = "not sealed by onesyncd";
	if (sealed == NULL || strncmp(sealed, PREFIX, strlen(PREFIX)) != 0 ||
	    (raw = b64_decode(sealed + strlen(PREFIX), &rawlen)) == NULL)
		return NULL;
	if (rawlen < NONCE_LEN + TAG_LEN) {
		*why = "sealed text too short";
		goto done;
	}
	clen = rawlen - NONCE_LEN - TAG_LEN;
	tag = raw + NONCE_LEN + clen;
	*why = "cannot decrypt (OpenSSL refused)";
	if ((c = gcm_start(false, key, raw, ad)) == NULL)
		goto done;
	out = xmalloc(clen + 1);
	if ((clen > 0 && EVP_DecryptUpdate(c, (unsigned char *)out, &n, raw + NONCE_LEN,
	    (int)clen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		goto fail;
	*why = "wrong key or altered";
	if (EVP_DecryptFinal_ex(c, (unsigned char *)out + n, &fin) != 1 ||
	    (size_t)n + (size_t)fin != clen)
		goto fail;
	out[clen] = '\0';
	*len = clen;
	*why = NULL;
	goto done;
fail:
	/* what GCM decrypted before the tag was checked is not to be trusted nor kept */
	OPENSSL_cleanse(out, clen + 1);
	free(out);
	out = NULL;
done:
	EVP_CIPHER_CTX_free(c);
	free(raw);
	return out;
}

void
aead_mac_hex(const unsigned char key[AEAD_KEY_LEN], const char *label, const void *msg,
    size_t len, char out[AEAD_MAC_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], *in;
	unsigned int mdlen = 0;
	size_t ll = strlen(label);

	in = xmalloc(ll + 1 + len);
	memcpy(in, label, ll + 1);
	if (len > 0)
		memcpy(in + ll + 1, msg, len);
	if (HMAC(EVP_sha256(), key, AEAD_KEY_LEN, in, ll + 1 + len, md, &mdlen) == NULL)
		mdlen = 0;	/* out of memory inside OpenSSL: zeros, which match nothing made */
	OPENSSL_cleanse(in, ll + 1 + len);
	free(in);
	for (size_t i = 0; i < AEAD_MAC_HEX / 2; i++) {
		out[2 * i] = i < mdlen ? hex[md[i] >> 4] : '0';
		out[2 * i + 1] = i < mdlen ? hex[md[i] & 15] : '0';
	}
	out[AEAD_MAC_HEX] = '\0';
	OPENSSL_cleanse(md, sizeof md);
}

void
aead_key_check(const unsigned char key[AEAD_KEY_LEN], char out[AEAD_MAC_HEX + 1])
{
	aead_mac_hex(key, "onesyncd key check", "", 0, out);
}
