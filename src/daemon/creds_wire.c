/*
 * creds_wire.c - what a token request and its answer look like on the wire (RFC 6749):
 * the form body, HTTP Basic client authentication, the tokens an answer may carry, and
 * the error codes that mean the grant or the client is refused. For daemon/creds.c.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <jansson.h>
#include <string.h>

#include "daemon/creds_wire.h"
#include "core/util.h"

#define CRED_TOKEN_MAX		8192	/* bytes of an access or refresh token */

/* application/x-www-form-urlencoded: unreserved characters as they are, the rest %XX. */
void
creds_form_add(struct buf *b, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (value == NULL)
		return;
	buf_printf(b, "%s%s=", b->len > 0 ? "&" : "", name);
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL)
			buf_add(b, p, 1);
		else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			buf_add(b, e, 3);
		}
	}
}

/* "Authorization: Basic base64(form(id):form(secret))" (RFC 6749 §2.3.1). */
char *
creds_basic_header(const struct cred_conf *c)
{
	struct buf raw, id;
	unsigned char *out;
	char *h;
	int n;

	buf_init(&raw);
	buf_init(&id);
	creds_form_add(&id, "x", c->client_id);
	buf_add(&raw, id.data + 2, id.len - 2);
	buf_add(&raw, ":", 1);
	if (c->client_secret != NULL) {
		buf_reset(&id);
		creds_form_add(&id, "x", c->client_secret);
		buf_add(&raw, id.data + 2, id.len - 2);
	}
	out = xmalloc(4 * (raw.len / 3 + 1) + 1);
	n = EVP_EncodeBlock(out, (const unsigned char *)raw.data, (int)raw.len);
	h = xasprintf("Authorization: Basic %.*s", n, (const char *)out);
	OPENSSL_cleanse(out, (size_t)n);
	OPENSSL_cleanse(raw.data, raw.len);
	if (id.len > 0)
		OPENSSL_cleanse(id.data, id.len);
	free(out);
	buf_free(&raw);
	buf_free(&id);
	return h;
}

/* A token as an endpoint may give it: 1 to 8192 visible ASCII characters. */
bool
creds_token_ok(const char *t)
{
	size_t n = t != NULL ? strlen(t) : 0;

	if (n == 0 || n > CRED_TOKEN_MAX)
		return false;
	for (; *t != '\0'; t++)
		if (*t < 0x21 || *t > 0x7e)
			return false;
	return true;
}

/* The token endpoint's error code, when it says the grant or the client is refused. */
const char *
creds_grant_refused(const struct http_response *resp)
{
	static const char *const codes[] = { "invalid_grant", "invalid_client",
	    "unauthorized_client" };
	json_t *j;
	const char *e;

	if (resp->status != 400 && resp->status != 401)
		return NULL;
	if ((j = json_loadb(resp->body, resp->len, 0, NULL)) == NULL)
		return NULL;
	e = json_string_value(json_object_get(j, "error"));
	for (size_t i = 0; e != NULL && i < NELEM(codes); i++)
		if (strcmp(e, codes[i]) == 0) {
			json_decref(j);
			return codes[i];
		}
	json_decref(j);
	return NULL;
}

