/*
 * url.c - the strings that name a place on the network: a value percent-encoded for a URL,
 * a URL checked against the schemes a connector takes, a URL's origin (libcurl's own URL
 * parser, so that what is compared is what libcurl will use), where its userinfo ends, a
 * listen address. Pure: no I/O, no logging, no global state; a refusal comes back as a
 * message for the caller to place (the job, the key).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/url.h"

int
url_check(const char *url, size_t len, const char *schemes, char **why)
{
	const char *end = url + len, *p, *auth, *aend, *host, *he, *q;
	bool partial = url[len] != '\0';
	char scheme[16], list[80];
	size_t n, i;

	*why = NULL;
	for (p = url; p < end && (isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	    *p == '.'); p++)
		;
	n = (size_t)(p - url);
	if (partial && p + 3 > end)
		return 1;	/* the scheme comes from a placeholder */
	for (i = 0, q = schemes; *q != '\0' && i + 3 < sizeof list; q++) {
		if (*q == ',') {
			list[i++] = ',';
			list[i++] = ' ';
		} else
			list[i++] = *q;
	}
	list[i] = '\0';
	if (n == 0 || n >= sizeof scheme || !isalpha((unsigned char)*url) || p + 3 > end ||
	    strncmp(p, "://", 3) != 0) {
		*why = xasprintf("not a URL (expected scheme://host/path, the scheme one of %s)",
		    list);
		return -1;
	}
	for (i = 0; i < n; i++)
		scheme[i] = (char)tolower((unsigned char)url[i]);
	scheme[n] = '\0';
	for (q = schemes; (q = strstr(q, scheme)) != NULL; q += n) {
		if ((q == schemes || q[-1] == ',') && (q[n] == ',' || q[n] == '\0'))
			break;
	}
	if (q == NULL) {
		*why = xasprintf("unsupported scheme '%s' (expected one of %s)", scheme, list);
		return -1;
	}
	auth = p + 3;
	aend = auth + strcspn(auth, "/?#");
	if (partial && aend > end)
		return 1;	/* the host comes from a placeholder */
	for (host = auth, q = auth; q < aend; q++) {
		if (*q == '@')
			host = q + 1;
	}
	if (*host == '[')
		he = memchr(host, ']', (size_t)(aend - host)) != NULL ? aend : host;
	else
		for (he = host; he < aend && *he != ':'; he++)
			;
	if (strcmp(scheme, "file") == 0) {
		if (he > host && ((size_t)(he - host) != 9 || strncasecmp(host, "localhost", 9) != 0)) {
			*why = xstrdup("a file:// URL names a local file (file:///path), not one "
			    "on another host");
			return -1;
		}
	} else if (he == host) {
		*why = xasprintf("no host (expected %s://host/path)", scheme);
		return -1;
	}
	return 0;
}

char *
url_origin(const char *url)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *port = NULL, *o = NULL;

	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    *host != '\0' && (strcasecmp(scheme, "http") == 0 ||
	    strcasecmp(scheme, "https") == 0)) {
		o = xasprintf("%s://%s:%s", scheme, host, port);
		for (char *p = o; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return o;
}

int
url_parse_listen(const char *s, char **host, uint16_t *port, char **err)
{
	const char *p, *ps;
	char *end;
	long n;

	*host = NULL;
	*err = NULL;
	if (s[0] == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':') {
			*err = xasprintf("'%s': expected [IPv6]:port", s);
			return -1;
		}
		*host = xstrndup(s + 1, (size_t)(p - s - 1));
		ps = p + 2;
	} else if ((p = strrchr(s, ':')) != NULL) {
		if (strchr(s, ':') != p) {
			*err = xasprintf("'%s': write an IPv6 address in brackets, [::1]:9187", s);
			return -1;
		}
		*host = xstrndup(s, (size_t)(p - s));
		ps = p + 1;
	} else {
		*host = xstrdup("127.0.0.1");
		ps = s;
	}
	errno = 0;
	n = strtol(ps, &end, 10);
	if (*ps == '\0' || *end != '\0' || errno != 0 || n < 0 || n > 65535 || (*host)[0] == '\0') {
		*err = xasprintf("'%s': expected host:port with a port from 0 to 65535", s);
		free(*host);
		*host = NULL;
		return -1;
	}
	*port = (uint16_t)n;
	return 0;
}

bool
url_is_postgres(const char *url)
{
	return strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0;
}

/*
 * Where a URL's userinfo ends (its '@'), or NULL. The last '@' before the path, so that a
 * password written with a bare '@' is hidden whole (libpq ends it at the first '@'; the
 * user meant all of it). In a postgresql:// URI, libpq reads '?' and '#' before the first
 * '@' as part of the password, but past that '@' a '?' starts the query, whose values may
 * hold an '@' of their own ("?application_name=me@host"): the userinfo ends before it.
 * curl ends the authority at '?' and '#'. Failing that, the last '@' before the query: a
 * password written with a raw '/' is cut there by libpq and curl alike, which then quote
 * its pieces as a host or a port, so it is hidden as if it were one.
 */
const char *
url_userinfo_end(const char *auth, bool pg)
{
	const char *hostend = auth + strcspn(auth, pg ? "/" : "/?#");
	const char *first = memchr(auth, '@', (size_t)(hostend - auth)), *q, *at;

	if (pg && first != NULL && (q = memchr(first, '?', (size_t)(hostend - first))) != NULL)
		hostend = q;
	at = memrchr(auth, '@', (size_t)(hostend - auth));

	if (at == NULL)
		at = memrchr(auth, '@', strcspn(auth, "?#"));
	if (at == NULL && !pg)
		/* a raw '#' or '?' in a password ("u:ab#cd@h", which -t refuses): curl
		 * cannot parse it and quotes it whole in its message */
		at = memrchr(auth, '@', strcspn(auth, "/"));
	return at;
}

void
url_escape(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			buf_addc(b, (char)c);
		else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			buf_add(b, e, 3);
		}
	}
}
