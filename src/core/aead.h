/*
 * aead.h - sealing small secrets (tokens) for storage: AES-256-GCM with OpenSSL's libcrypto.
 * A sealed value is text, "v1:" + Base64 of nonce (12) | ciphertext | tag (16), bound to
 * associated data (e.g. "schema/credential/field") that must match when it is opened.
 */
#ifndef ONESYNC_AEAD_H
#define ONESYNC_AEAD_H

#include <stddef.h>

#define AEAD_KEY_LEN	32

/* Parse 64 hex digits (either case) into key[32]; 0, or -1 (not 64 hex digits: key is
 * left zeroed). */
int aead_key_parse(const char *hex, unsigned char key[AEAD_KEY_LEN])
    __attribute__((warn_unused_result));
/* Seal plaintext with a fresh random 12-byte nonce (RAND_bytes) and the associated data `ad`
 * ("" when NULL): the text "v1:" + Base64 of nonce | ciphertext | 16-byte tag. NULL on
 * failure (no randomness, OpenSSL refused). Caller frees. */
char *aead_seal(const unsigned char key[AEAD_KEY_LEN], const char *ad, const void *plain,
    size_t len);
/* Open what aead_seal made with the same key and ad: the plaintext (NUL-terminated, *len
 * set; it may itself hold NULs), or NULL and *why (static text: "not sealed by onesyncd",
 * "wrong key or altered", ...). Caller frees; the plaintext is best wiped
 * (OPENSSL_cleanse) before it is. */
char *aead_open(const unsigned char key[AEAD_KEY_LEN], const char *ad, const char *sealed,
    size_t *len, const char **why);
/* The first 16 bytes of HMAC-SHA256(key, label | NUL | msg) as 32 lower-case hex digits
 * in out: a value that tells which key and msg made it, and reveals neither. */
#define AEAD_MAC_HEX	32
void aead_mac_hex(const unsigned char key[AEAD_KEY_LEN], const char *label, const void *msg,
    size_t len, char out[AEAD_MAC_HEX + 1]);
/* The key's check value (a MAC of a constant under it): equal values, equal keys. */
void aead_key_check(const unsigned char key[AEAD_KEY_LEN], char out[AEAD_MAC_HEX + 1]);
#endif
