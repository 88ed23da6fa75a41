/* url.h - URL and listen-address strings: scheme check, origin, host:port. */
#ifndef ONESYNC_URL_H
#define ONESYNC_URL_H

#include <stddef.h>
#include <stdint.h>
#include "core/util.h"

/*
 * Check a URL before it is used: its scheme one of `schemes` (a comma list such as
 * "http,https"), and a host (file:// takes none, or localhost). Only url[0..len) is known
 * when url[len] is not NUL (the rest comes from a placeholder): 1 when what is known
 * cannot decide. 0 when fine; -1 and *why (caller frees) when refused. http_send and
 * http_stream check every URL this way; a refused request ends with resp->error set.
 */
int url_check(const char *url, size_t len, const char *schemes, char **why) WUR;
/*
 * The origin of an absolute http or https URL as libcurl reads it: "scheme://host:port",
 * scheme and host in lower case, the port always written (80, 443 by default). NULL when
 * it is not one.
 */
char *url_origin(const char *url);
/*
 * Split a listen address, "host:port", "[v6]:port" or "port" (host 127.0.0.1). 0 on
 * success (*host allocated); -1 with a message in *err (allocated) otherwise.
 */
int url_parse_listen(const char *, char **host, uint16_t *port, char **err) WUR;
/* Whether a URL is a postgres:// or postgresql:// URI (libpq's reading applies). */
bool url_is_postgres(const char *url);
/*
 * Where the userinfo of a URL's authority (auth: just past "://") ends: its '@', or NULL.
 * pg: a PostgreSQL URI, where '?' and '#' belong to the password.
 */
const char *url_userinfo_end(const char *auth, bool pg);
/* Percent-encode for URL path segments and query values (RFC 3986 unreserved kept). */
void url_escape(struct buf *, const char *, size_t);

#endif
