/* dest_pg.h - a PostgreSQL table as destination (destination.type = "postgresql"). */
#ifndef ONESYNC_DEST_PG_H
#define ONESYNC_DEST_PG_H

#include "conn/conn.h"

struct dest *dest_pg_new(const struct conn_env *, const struct job_conf *);

#endif
