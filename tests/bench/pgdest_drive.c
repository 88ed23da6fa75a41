/*
 * pgdest_drive.c - the PostgreSQL destination alone (conn/dest_pg.c through dest_deliver),
 * without a source, a strategy or the state store: NB batches of 1,000 records delivered one
 * after the other into TABLE (id int PRIMARY KEY, name text, email text, amount int,
 * "updatedAt" timestamptz, v int), with amount = id * VERSION and v = VERSION; prints the
 * wall time. Run it three times on one table: VERSION 1 (inserts), 2 (every row updated),
 * 2 again (every row unchanged). Built against a build tree's library (tests/bench/README.md):
 *   cc -O2 -Isrc tests/bench/pgdest_drive.c BUILD/src/libonesync.a $(pkg-config --cflags
 *   --libs libevent libpq jansson libconfig libcurl libsystemd libxxhash zlib) -lm
 * Usage: pgdest_drive CONNINFO TABLE NB VERSION
 */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/model.h"
#include "conn/dest.h"
#include "core/log.h"
#include "core/util.h"
#include "io/pg.h"

#define PER	1000

static struct event_base	*base;
static struct dest		*d;
static struct dest_item		 items[PER];
static char			*keys[PER];
static int			 nb, nbatches, version;

static void next_batch(void);

/* A batch is in: every record must be delivered; then the next one. */
static void
done(void *arg, int rc, const char *err)
{
	(void)arg;
	if (rc != 0) {
		fprintf(stderr, "batch %d failed: %s\n", nb, err);
		exit(1);
	}
	for (int j = 0; j < PER; j++) {
		if (items[j].outcome != DEST_OK) {
			fprintf(stderr, "record %s: %s\n", items[j].key, items[j].error);
			exit(1);
		}
		json_decref(items[j].rec);
		free(keys[j]);
	}
	dest_items_clear(items, PER);
	if (++nb == nbatches)
		event_base_loopexit(base, NULL);
	else
		next_batch();
}

static void
next_batch(void)
{
	memset(items, 0, sizeof items);
	for (int j = 0; j < PER; j++) {
		long i = (long)nb * PER + j + 1;
		char name[32], email[48];

		snprintf(name, sizeof name, "name %ld", i);
		snprintf(email, sizeof email, "user%ld@example.com", i);
		keys[j] = xasprintf("%ld", i);
		items[j].key = keys[j];
		items[j].rec = json_pack("{s:I,s:s,s:s,s:I,s:s,s:i}", "id", (json_int_t)i, "name",
		    name, "email", email, "amount", (json_int_t)(i * version), "updatedAt",
		    "2026-01-02T03:04:05.000Z", "v", version);
	}
	dest_deliver(d, items, PER, done, NULL);
}

int
main(int argc, char **argv)
{
	static const char *cols[] = { "id", "name", "email", "amount", "updatedAt", "v" };
	struct column_map map[6];
	struct job_conf job;
	struct conn_env env;
	char *keycol[] = { "id" }, *keyf[] = { "id" };
	size_t keyfield[] = { 0 };
	uint64_t t0;

	if (argc != 5) {
		fprintf(stderr, "usage: pgdest_drive CONNINFO TABLE NB VERSION\n");
		return 2;
	}
	log_init(0, "pgdest_drive");
	nbatches = atoi(argv[3]);
	version = atoi(argv[4]);
	base = event_base_new();
	env.base = base;
	env.pools = pg_pools_new(base, 10000);
	memset(&job, 0, sizeof job);
	job.name = "drive";
	job.key = keyf;
	job.nkey = 1;
	job.batch = PER;
	for (int i = 0; i < 6; i++) {
		map[i].column = (char *)cols[i];
		map[i].field = (char *)cols[i];
	}
	job.dst.type = CONN_POSTGRESQL;
	job.dst.conninfo = argv[1];
	job.dst.table = argv[2];
	job.dst.columns = map;
	job.dst.ncolumns = 6;
	job.dst.key_columns = keycol;
	job.dst.key_fields = keyfield;
	job.dst.nkey_columns = 1;
	job.dst.http.timeout_ms = 60000;
	d = dest_new(&env, &job);
	t0 = now_mono_ms();
	next_batch();
	event_base_dispatch(base);
	printf("%d batches of %d, version %d: %.3f s\n", nbatches, PER, version,
	    (double)(now_mono_ms() - t0) / 1000);
	dest_free(d);
	pg_pools_free(env.pools);
	event_base_free(base);
	return 0;
}
