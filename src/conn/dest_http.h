/* dest_http.h - an HTTP API as destination (destination.type = "http"). */
#ifndef ONESYNC_DEST_HTTP_H
#define ONESYNC_DEST_HTTP_H

#include "conn/conn.h"

struct dest *dest_http_new(const struct conn_env *, const struct job_conf *);

#endif
