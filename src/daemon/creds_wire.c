/*
 * creds_wire.c - what a token request and its answer look like on the wire (RFC 6749):
 * the form body, HTTP Basic client authentication, the tokens an answer may carry, and
 * the error codes that mean the grant or the client is refused. For daemon/creds.c.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "daemon/creds_wire.h"
#include "core/secrets.h"
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

/* A token as an endpoint may give it: 6 to 8192 visible ASCII characters (a shorter one
 * could not be masked in logs: core/secrets.h, SECRETS_MIN). */
bool
creds_token_ok(const char *t)
{
	size_t n = t != NULL ? strlen(t) : 0;

	if (n < SECRETS_MIN || n > CRED_TOKEN_MAX)
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


/* expires_in: an integer, a real without a fraction, or a string of digits; -1 if none. */
static int64_t
expires_in(json_t *ei)
{
	const char *s;
	double d;
	int64_t n = 0;

	if (json_is_integer(ei))
		return json_integer_value(ei) >= 0 ? json_integer_value(ei) : -1;
	if (json_is_real(ei)) {
		d = json_real_value(ei);
		return d >= 0 && d < 1e15 && d == (double)(int64_t)d ? (int64_t)d : -1;
	}
	if (!json_is_string(ei) || *(s = json_string_value(ei)) == '\0' || strlen(s) > 15)
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

bool
creds_parse_answer(json_t *j, const char **access, const char **refresh, int64_t *life_s,
    const char **why)
{
	json_t *tt = json_object_get(j, "token_type"), *rt = json_object_get(j, "refresh_token");
	json_t *ei = json_object_get(j, "expires_in");

	*access = json_string_value(json_object_get(j, "access_token"));
	*refresh = json_string_value(rt);
	*life_s = 3600;
	if (!creds_token_ok(*access)) {
		*why = "no usable access_token (6 to 8192 visible ASCII characters)";
		return false;
	}
	if ((rt != NULL && !json_is_null(rt) && !json_is_string(rt)) ||
	    (*refresh != NULL && !creds_token_ok(*refresh))) {
		*why = "a refresh_token that is not 6 to 8192 visible ASCII characters";
		return false;
	}
	if (tt != NULL && !json_is_null(tt) && (!json_is_string(tt) ||
	    strcasecmp(json_string_value(tt), "bearer") != 0)) {
		*why = "a token_type other than Bearer (the only type onesyncd sends)";
		return false;
	}
	if (ei != NULL && !json_is_null(ei) && (*life_s = expires_in(ei)) < 1) {
		*why = "an expires_in that is not a whole number of seconds from 1";
		return false;
	}
	return true;
}
