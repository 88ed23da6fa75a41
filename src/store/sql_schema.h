/*
 * sql_schema.h - the state schema's migrations. "@S@" stands for the quoted schema name.
 * Migrations are additive and numbered; each runs once, under an advisory lock, inside the
 * transaction that bumps meta.schema_version. Every state write goes through one of the
 * functions below, each a single statement and so a single transaction, fenced by the lease.
 */
#ifndef ONESYNC_SQL_SCHEMA_H
#define ONESYNC_SQL_SCHEMA_H

#define STATE_SCHEMA_VERSION	5
#define STATE_LOCK_KEY		"7373001"
#define STATE_FENCE_SQLSTATE	"OSL01"

#include "store/sql_budget.h"
#include "store/sql_cred.h"

/* The parts of a checkpoint's body that checkpoint (2) and checkpoint_lists (3) share, word
 * for word: the watermark moved forward only and the seen set pruned; the failures' upsert
 * from its ON CONFLICT on, the run's counters, unkeyed failures cleared, the lease given
 * back, the result, and the answer. */
#define CK_SQL_WATERMARK \
"  IF d ? 'watermark' THEN\n" \
"    UPDATE @S@.jobs SET watermark = d->>'watermark', watermark_ns = (d->>'watermark_ns')::bigint,\n" \
"           watermark_key = d->>'watermark_key', updated_at = now()\n" \
"     WHERE name = p_job AND (watermark_ns IS NULL OR watermark_ns <= (d->>'watermark_ns')::bigint);\n" \
"  END IF;\n" \
"  IF d ? 'prune_below' THEN\n" \
"    DELETE FROM @S@.seen WHERE job = p_job AND ts_ns < (d->>'prune_below')::bigint;\n" \
"  END IF;\n"
#define CK_SQL_FAILED_END \
"      ON CONFLICT (job, key) DO UPDATE SET\n" \
"        attempts = o.attempts + 1,\n" \
"        last_failed_at = now(),\n" \
"        last_error = EXCLUDED.last_error,\n" \
"        payload = COALESCE(EXCLUDED.payload, o.payload),\n" \
"        hash = EXCLUDED.hash,\n" \
"        next_retry_at = now() + least((d->>'backoff_ms')::bigint * (2 ^ least(o.attempts, 40)),\n" \
"                                      (d->>'backoff_max_ms')::bigint) * interval '1 millisecond',\n" \
"        dead = o.attempts + 1 >= (d->>'max_attempts')::int\n" \
"      RETURNING key, dead)\n" \
"    SELECT COALESCE(jsonb_agg(key), '[]'::jsonb) INTO dead_keys FROM f WHERE dead;\n" \
"  END IF;\n" \
"  UPDATE @S@.runs SET\n" \
"      records_read = records_read + COALESCE((d->>'read')::bigint, 0),\n" \
"      delivered = delivered + COALESCE((d->>'delivered')::bigint, 0),\n" \
"      skipped = skipped + COALESCE((d->>'skipped')::bigint, 0),\n" \
"      failed = failed + COALESCE((d->>'nfailed')::bigint, 0),\n" \
"      deleted = deleted + COALESCE((d->>'ndeleted')::bigint, 0)\n" \
"   WHERE id = p_run;\n" \
"  IF (d->>'clear_unkeyed')::boolean THEN\n" \
"    DELETE FROM @S@.failures WHERE job = p_job\n" \
"       AND (key LIKE '#line:%' OR key LIKE '#nokey:%');\n" \
"  END IF;\n" \
"  IF (d->>'release')::boolean THEN\n" \
"    UPDATE @S@.jobs SET owner = NULL, lease_until = NULL\n" \
"     WHERE name = p_job AND owner = p_owner AND epoch = p_epoch;\n" \
"  END IF;\n" \
"  IF d ? 'result' THEN\n" \
"    UPDATE @S@.runs SET result = d->>'result', error = d->>'error', finished_at = clock_timestamp(),\n" \
"           watermark_after = (SELECT watermark FROM @S@.jobs WHERE name = p_job)\n" \
"     WHERE id = p_run;\n" \
"  END IF;\n" \
"  SELECT count(*), count(*) FILTER (WHERE dead) INTO nf, nd\n" \
"    FROM @S@.failures WHERE job = p_job;\n" \
"  RETURN jsonb_build_object('dead', COALESCE(dead_keys, '[]'::jsonb),\n" \
"    'failures', nf, 'dead_records', nd);\n" \
"END $f$;\n"

static const char *const state_migrations[] = {
/* 1: jobs and leases, seen set (tie set + lookback window), retry queue, run history. */
"CREATE TABLE @S@.instances (\n"
"  id text PRIMARY KEY,\n"
"  started_at timestamptz NOT NULL DEFAULT now(),\n"
"  heartbeat_at timestamptz NOT NULL DEFAULT now(),\n"
"  version text,\n"
"  capacity int NOT NULL DEFAULT 1);\n"
"CREATE TABLE @S@.jobs (\n"
"  name text PRIMARY KEY,\n"
"  owner text,\n"
"  epoch bigint NOT NULL DEFAULT 0,\n"
"  lease_until timestamptz,\n"
"  watermark text,\n"
"  watermark_ns bigint,\n"
"  watermark_key text,\n"
"  paused boolean NOT NULL DEFAULT false,\n"
"  run_requested_at timestamptz,\n"

"  updated_at timestamptz NOT NULL DEFAULT now());\n"
"CREATE TABLE @S@.seen (\n"
"  job text NOT NULL,\n"
"  key text NOT NULL,\n"
"  hash text NOT NULL,\n"
"  ts_ns bigint NOT NULL,\n"
"  PRIMARY KEY (job, key));\n"
"CREATE INDEX seen_job_ts ON @S@.seen (job, ts_ns);\n"
"CREATE TABLE @S@.failures (\n"
"  job text NOT NULL,\n"
"  key text NOT NULL,\n"
"  attempts int NOT NULL,\n"
"  first_failed_at timestamptz NOT NULL DEFAULT now(),\n"
"  last_failed_at timestamptz NOT NULL DEFAULT now(),\n"
"  next_retry_at timestamptz,\n"
"  last_error text NOT NULL,\n"
"  payload jsonb,\n"
"  hash text,\n"
"  dead boolean NOT NULL DEFAULT false,\n"
"  PRIMARY KEY (job, key));\n"
"CREATE INDEX failures_due ON @S@.failures (job, next_retry_at) WHERE NOT dead;\n"
/* Strategy capture: the hash of every record delivered, by key. */
"CREATE TABLE @S@.records (\n"
"  job text NOT NULL,\n"
"  key text NOT NULL,\n"
"  hash text NOT NULL,\n"
"  PRIMARY KEY (job, key));\n"
/* Strategy flag: records delivered whose marking at the source failed; the next run marks
 * them without delivering again unless their content (hash) changed. */
"CREATE TABLE @S@.unmarked (\n"
"  job text NOT NULL,\n"
"  key text NOT NULL,\n"
"  hash text NOT NULL,\n"
"  answer jsonb,\n"
"  delivered_at timestamptz NOT NULL DEFAULT now(),\n"
"  last_error text,\n"
"  PRIMARY KEY (job, key));\n"
"CREATE TABLE @S@.runs (\n"
"  id bigserial PRIMARY KEY,\n"
"  job text NOT NULL,\n"
"  instance text NOT NULL,\n"
"  epoch bigint NOT NULL,\n"
"  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),\n"
"  finished_at timestamptz,\n"
"  result text NOT NULL DEFAULT 'running',\n"
"  records_read bigint NOT NULL DEFAULT 0,\n"
"  delivered bigint NOT NULL DEFAULT 0,\n"
"  skipped bigint NOT NULL DEFAULT 0,\n"
"  failed bigint NOT NULL DEFAULT 0,\n"
"  deleted bigint NOT NULL DEFAULT 0,\n"
"  watermark_before text,\n"
"  watermark_after text,\n"
"  error text);\n"
"CREATE INDEX runs_job ON @S@.runs (job, id DESC);\n"
/* The fence: the caller must hold the job's lease with this epoch, unexpired by the
 * database clock; the lease row stays share-locked until the transaction ends. */
"CREATE FUNCTION @S@.fence(p_job text, p_owner text, p_epoch bigint) RETURNS void\n"
"LANGUAGE plpgsql AS $f$\n"
"BEGIN\n"
"  PERFORM 1 FROM @S@.jobs WHERE name = p_job AND owner = p_owner AND epoch = p_epoch\n"
"     AND lease_until > clock_timestamp() FOR SHARE;\n"
"  IF NOT FOUND THEN\n"
"    RAISE EXCEPTION 'lease lost: job % is not held by % with epoch %', p_job, p_owner, p_epoch\n"
"      USING ERRCODE = 'OSL01';\n"
"  END IF;\n"
"END $f$;\n"
/* Claim (or keep) a job's lease. The epoch stays only when the caller already holds it with
 * that epoch (p_known); a restarted instance of the same name gets a new epoch, which fences
 * out anything its previous life may still try to write. NULL when another instance holds it. */
"CREATE FUNCTION @S@.claim(p_job text, p_owner text, p_known bigint, p_lease_ms bigint)\n"
"RETURNS bigint LANGUAGE plpgsql AS $f$\n"
"DECLARE e bigint;\n"
"BEGIN\n"
"  INSERT INTO @S@.jobs (name) VALUES (p_job) ON CONFLICT DO NOTHING;\n"
"  UPDATE @S@.jobs SET\n"
"      epoch = CASE WHEN owner = p_owner AND epoch = p_known AND lease_until > clock_timestamp()\n"
"                   THEN epoch ELSE epoch + 1 END,\n"
"      owner = p_owner,\n"
"      lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n"
"    WHERE name = p_job\n"
"      AND (owner IS NULL OR owner = p_owner OR lease_until IS NULL OR lease_until <= clock_timestamp())\n"
"    RETURNING epoch INTO e;\n"
"  RETURN e;\n"
"END $f$;\n"
/* Batched renewal keyed on job + epoch + owner; returns the jobs still held. */
"CREATE FUNCTION @S@.renew(p_owner text, p_jobs text[], p_epochs bigint[], p_lease_ms bigint)\n"
"RETURNS SETOF text LANGUAGE sql AS $f$\n"
"  UPDATE @S@.jobs j SET lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n"
"    FROM unnest(p_jobs, p_epochs) AS u(name, epoch)\n"
"   WHERE j.name = u.name AND j.epoch = u.epoch AND j.owner = p_owner\n"
"     AND j.lease_until > clock_timestamp()\n"
"  RETURNING j.name\n"
"$f$;\n"
"CREATE FUNCTION @S@.release(p_owner text, p_jobs text[]) RETURNS void\n"
"LANGUAGE sql AS $f$\n"
"  UPDATE @S@.jobs SET owner = NULL, lease_until = NULL\n"
"   WHERE owner = p_owner AND name = ANY(p_jobs)\n"
"$f$;\n"
/* Start a run: fenced; closes runs a crash left open; returns what the run needs to know:
 * the watermark, the seen set (tie set and lookback window) and the retries that are due. */
"CREATE FUNCTION @S@.run_start(p_job text, p_owner text, p_epoch bigint, p_retries int)\n"
"RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE r bigint; j @S@.jobs;\n"
"BEGIN\n"
"  PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"  UPDATE @S@.runs SET result = 'abandoned', finished_at = clock_timestamp(),\n"
"         error = 'the instance running it stopped before it finished'\n"
"   WHERE job = p_job AND result = 'running';\n"
"  SELECT * INTO j FROM @S@.jobs WHERE name = p_job;\n"
"  UPDATE @S@.jobs SET run_requested_at = NULL\n"
"   WHERE name = p_job AND run_requested_at IS NOT NULL;\n"
"  IF j.paused THEN\n"
"    RETURN jsonb_build_object('paused', true);\n"
"  END IF;\n"
"  INSERT INTO @S@.runs (job, instance, epoch, watermark_before)\n"
"    VALUES (p_job, p_owner, p_epoch, j.watermark) RETURNING id INTO r;\n"

"  RETURN jsonb_build_object(\n"
"    'run', r, 'watermark', j.watermark, 'watermark_ns', j.watermark_ns,\n"
"    'watermark_key', j.watermark_key, 'paused', j.paused,\n"
"    'unmarked', COALESCE((SELECT jsonb_agg(jsonb_build_array(key, hash, answer))\n"
"                        FROM @S@.unmarked WHERE job = p_job), '[]'::jsonb),\n"
"    'failing', COALESCE((SELECT jsonb_agg(jsonb_build_array(key, hash, dead,\n"
"                          next_retry_at <= now()))\n"
"                        FROM @S@.failures WHERE job = p_job), '[]'::jsonb),\n"
"    'seen', COALESCE((SELECT jsonb_agg(jsonb_build_array(key, hash, ts_ns))\n"
"                        FROM @S@.seen WHERE job = p_job), '[]'::jsonb),\n"
"    'failures', (SELECT count(*) FROM @S@.failures WHERE job = p_job),\n"
"    'retry', COALESCE((SELECT jsonb_agg(jsonb_build_object('key', key, 'attempts', attempts,\n"
"                          'payload', payload))\n"
"                        FROM (SELECT key, attempts, payload FROM @S@.failures\n"
"                               WHERE job = p_job AND NOT dead AND next_retry_at <= now()\n"
"                               ORDER BY next_retry_at LIMIT p_retries) d), '[]'::jsonb));\n"
"END $f$;\n"
/* One fenced checkpoint: seen rows added and pruned, failures recorded or cleared, the
 * watermark moved forward only, the run's counters and (when finishing) its result. */
"CREATE FUNCTION @S@.checkpoint(p_job text, p_owner text, p_epoch bigint, p_run bigint, d jsonb)\n"
"RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE dead_keys jsonb;\n"
"BEGIN\n"
"  PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"  IF jsonb_array_length(COALESCE(d->'seen', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.seen (job, key, hash, ts_ns)\n"
"      SELECT p_job, s->>0, s->>1, (s->>2)::bigint FROM jsonb_array_elements(d->'seen') s\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, ts_ns = EXCLUDED.ts_ns;\n"
"  END IF;\n"
CK_SQL_WATERMARK
"  IF jsonb_array_length(COALESCE(d->'records_put', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.records (job, key, hash)\n"
"      SELECT p_job, x->>0, x->>1 FROM jsonb_array_elements(d->'records_put') x\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash;\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'records_del', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.records WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'records_del'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'unmarked_del', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.unmarked WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'unmarked_del'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'unmarked_add', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.unmarked (job, key, hash, answer, last_error)\n"
"      SELECT p_job, u->>0, u->>1, u->2, u->>3 FROM jsonb_array_elements(d->'unmarked_add') u\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, answer = EXCLUDED.answer,\n"
"        last_error = EXCLUDED.last_error, delivered_at = now();\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'ok', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.failures WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'ok'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'failed', '[]')) > 0 THEN\n"
"    WITH f AS (\n"
"      INSERT INTO @S@.failures AS o (job, key, attempts, next_retry_at, last_error, payload, hash, dead)\n"
"      SELECT p_job, x->>'key', 1,\n"
"             now() + (d->>'backoff_ms')::bigint * interval '1 millisecond',\n"
"             x->>'error', x->'payload', x->>'hash', (d->>'max_attempts')::int <= 1\n"
"        FROM jsonb_array_elements(d->'failed') x\n"
"      ON CONFLICT (job, key) DO UPDATE SET\n"
"        attempts = o.attempts + 1,\n"
"        last_failed_at = now(),\n"
"        last_error = EXCLUDED.last_error,\n"
"        payload = COALESCE(EXCLUDED.payload, o.payload),\n"
"        hash = EXCLUDED.hash,\n"
"        next_retry_at = now() + least((d->>'backoff_ms')::bigint * (2 ^ least(o.attempts, 40)),\n"
"                                      (d->>'backoff_max_ms')::bigint) * interval '1 millisecond',\n"
"        dead = o.attempts + 1 >= (d->>'max_attempts')::int\n"
"      RETURNING key, dead)\n"
"    SELECT COALESCE(jsonb_agg(key), '[]'::jsonb) INTO dead_keys FROM f WHERE dead;\n"
"  END IF;\n"
"  UPDATE @S@.runs SET\n"
"      records_read = records_read + COALESCE((d->>'read')::bigint, 0),\n"
"      delivered = delivered + COALESCE((d->>'delivered')::bigint, 0),\n"
"      skipped = skipped + COALESCE((d->>'skipped')::bigint, 0),\n"
"      failed = failed + COALESCE((d->>'nfailed')::bigint, 0),\n"
"      deleted = deleted + COALESCE((d->>'ndeleted')::bigint, 0)\n"
"   WHERE id = p_run;\n"
"  IF (d->>'clear_unkeyed')::boolean THEN\n"
"    DELETE FROM @S@.failures WHERE job = p_job\n"
"       AND (key LIKE '#line:%' OR key LIKE '#nokey:%');\n"
"  END IF;\n"
"  IF (d->>'release')::boolean THEN\n"
"    UPDATE @S@.jobs SET owner = NULL, lease_until = NULL\n"
"     WHERE name = p_job AND owner = p_owner AND epoch = p_epoch;\n"
"  END IF;\n"
"  IF d ? 'result' THEN\n"
"    UPDATE @S@.runs SET result = d->>'result', error = d->>'error', finished_at = clock_timestamp(),\n"
"           watermark_after = (SELECT watermark FROM @S@.jobs WHERE name = p_job)\n"
"     WHERE id = p_run;\n"

"  END IF;\n"
"  RETURN jsonb_build_object('dead', COALESCE(dead_keys, '[]'::jsonb),\n"
"    'failures', (SELECT count(*) FROM @S@.failures WHERE job = p_job),\n"
"    'dead_records', (SELECT count(*) FROM @S@.failures WHERE job = p_job AND dead));\n"
"END $f$;\n",
/* 2 (poison): a run start answers counts, the watermark and the due retries (<= batch), never
 * a whole table: the seen set, the retry queue and `unmarked` are read in pages or by the
 * keys of a page (state.c), so their size bounds neither the answer nor the memory. */
"CREATE OR REPLACE FUNCTION @S@.run_start(p_job text, p_owner text, p_epoch bigint,\n"
"    p_retries int)\n"
"RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE r bigint; j @S@.jobs; nf bigint; nd bigint;\n"
"BEGIN\n"
"  PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"  UPDATE @S@.runs SET result = 'abandoned', finished_at = clock_timestamp(),\n"
"         error = COALESCE(error, 'the instance running it stopped before it finished')\n"
"   WHERE job = p_job AND result = 'running';\n"
"  SELECT * INTO j FROM @S@.jobs WHERE name = p_job;\n"
"  UPDATE @S@.jobs SET run_requested_at = NULL\n"
"   WHERE name = p_job AND run_requested_at IS NOT NULL;\n"
"  IF j.paused THEN\n"
"    RETURN jsonb_build_object('paused', true);\n"
"  END IF;\n"
"  INSERT INTO @S@.runs (job, instance, epoch, watermark_before)\n"
"    VALUES (p_job, p_owner, p_epoch, j.watermark) RETURNING id INTO r;\n"
"  SELECT count(*), count(*) FILTER (WHERE dead) INTO nf, nd\n"
"    FROM @S@.failures WHERE job = p_job;\n"
"  RETURN jsonb_build_object(\n"
"    'run', r, 'watermark', j.watermark, 'watermark_ns', j.watermark_ns,\n"
"    'watermark_key', j.watermark_key, 'paused', j.paused,\n"
"    'failures', nf, 'dead_records', nd,\n"
"    'seen_rows', EXISTS (SELECT 1 FROM @S@.seen WHERE job = p_job),\n"
"    'retry', COALESCE((SELECT jsonb_agg(jsonb_build_object('key', key, 'attempts', attempts,\n"
"                          'payload', payload))\n"
"                        FROM (SELECT key, attempts, payload FROM @S@.failures\n"
"                               WHERE job = p_job AND NOT dead AND next_retry_at <= now()\n"
"                               ORDER BY next_retry_at LIMIT p_retries) d), '[]'::jsonb));\n"
"END $f$;\n"
/* 2 (poison): a checkpoint tolerates a key twice in one list (the last one wins), a second
 * line of defence behind the strategies' own de-duplication: ON CONFLICT DO UPDATE cannot
 * touch one row twice in a statement. */
"CREATE OR REPLACE FUNCTION @S@.checkpoint(p_job text, p_owner text, p_epoch bigint,\n"
"    p_run bigint, d jsonb)\n"
"RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE dead_keys jsonb; nf bigint; nd bigint;\n"
"BEGIN\n"
"  PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"  IF jsonb_array_length(COALESCE(d->'seen', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.seen (job, key, hash, ts_ns)\n"
"      SELECT DISTINCT ON (s->>0) p_job, s->>0, s->>1, (s->>2)::bigint\n"
"        FROM jsonb_array_elements(d->'seen') WITH ORDINALITY AS e(s, n)\n"
"       ORDER BY s->>0, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, ts_ns = EXCLUDED.ts_ns;\n"
"  END IF;\n"
CK_SQL_WATERMARK
"  IF jsonb_array_length(COALESCE(d->'records_put', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.records (job, key, hash)\n"
"      SELECT DISTINCT ON (x->>0) p_job, x->>0, x->>1\n"
"        FROM jsonb_array_elements(d->'records_put') WITH ORDINALITY AS e(x, n)\n"
"       ORDER BY x->>0, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash;\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'records_del', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.records WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'records_del'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'unmarked_del', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.unmarked WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'unmarked_del'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'unmarked_add', '[]')) > 0 THEN\n"
"    INSERT INTO @S@.unmarked (job, key, hash, answer, last_error)\n"
"      SELECT DISTINCT ON (u->>0) p_job, u->>0, u->>1, u->2, u->>3\n"
"        FROM jsonb_array_elements(d->'unmarked_add') WITH ORDINALITY AS e(u, n)\n"
"       ORDER BY u->>0, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, answer = EXCLUDED.answer,\n"
"        last_error = EXCLUDED.last_error, delivered_at = now();\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'ok', '[]')) > 0 THEN\n"
"    DELETE FROM @S@.failures WHERE job = p_job\n"
"       AND key IN (SELECT jsonb_array_elements_text(d->'ok'));\n"
"  END IF;\n"
"  IF jsonb_array_length(COALESCE(d->'failed', '[]')) > 0 THEN\n"
"    WITH f AS (\n"
"      INSERT INTO @S@.failures AS o (job, key, attempts, next_retry_at, last_error, payload, hash, dead)\n"
"      SELECT DISTINCT ON (x->>'key') p_job, x->>'key', 1,\n"
"             now() + (d->>'backoff_ms')::bigint * interval '1 millisecond',\n"
"             x->>'error', x->'payload', x->>'hash', (d->>'max_attempts')::int <= 1\n"
"        FROM jsonb_array_elements(d->'failed') WITH ORDINALITY AS e(x, n)\n"
"       ORDER BY x->>'key', n DESC\n"
CK_SQL_FAILED_END
/* 2 (inst): instance identity and job identity. An instance row belongs to one process
 * (incarnation); it publishes the definitions of its jobs (name -> identity) and the
 * backend of its coordination connection (so a process that died can be told from one
 * that lives). A job's row keeps the identity of the definition its state was written
 * with, and the incarnation that holds its lease. */
"ALTER TABLE @S@.instances ADD COLUMN incarnation text, ADD COLUMN once boolean,\n"
"  ADD COLUMN jobs jsonb NOT NULL DEFAULT '{}',\n"
"  ADD COLUMN backend_pid int, ADD COLUMN backend_start timestamptz;\n"
"ALTER TABLE @S@.jobs ADD COLUMN incarnation text, ADD COLUMN identity text,\n"
"  ADD COLUMN definition jsonb;\n"
/* 2 (inst): register a process under its instance name. Refused ('live') while another
 * process holds the name: a different incarnation whose coordination connection is still
 * open and, for a daemon, whose heartbeat is recent (an --once process does not beat).
 * Otherwise it takes the name over: the leases the previous incarnation still held are
 * released with a new epoch (its late writes are fenced out). */
"CREATE FUNCTION @S@.instance_register(p_id text, p_incarnation text, p_version text,\n"
"    p_capacity int, p_live_ms bigint, p_once boolean) RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE i @S@.instances; n bigint;\n"
"BEGIN\n"
"  PERFORM pg_advisory_xact_lock(" STATE_LOCK_KEY ", hashtext(p_id));\n"
"  SELECT * INTO i FROM @S@.instances WHERE id = p_id;\n"
"  IF FOUND AND i.incarnation IS NOT NULL AND i.incarnation <> p_incarnation\n"
"     AND (i.once OR i.heartbeat_at > now() - p_live_ms * interval '1 ms')\n"
"     AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = i.backend_pid\n"
"                 AND (a.backend_start IS NULL OR a.backend_start = i.backend_start)) THEN\n"
"    RETURN jsonb_build_object('live', true, 'version', i.version,\n"
"      'age_s', extract(epoch FROM now() - i.heartbeat_at)::float8);\n"
"  END IF;\n"
"  INSERT INTO @S@.instances AS o (id, version, capacity, incarnation, once, backend_pid,\n"
"      backend_start)\n"
"    VALUES (p_id, p_version, p_capacity, p_incarnation, p_once, pg_backend_pid(),\n"
"            (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()))\n"
"    ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, capacity = EXCLUDED.capacity,\n"
"      incarnation = EXCLUDED.incarnation, once = EXCLUDED.once,\n"
"      backend_pid = EXCLUDED.backend_pid,\n"
"      backend_start = EXCLUDED.backend_start, heartbeat_at = now(), started_at = now(),\n"
"      jobs = '{}';\n"
"  UPDATE @S@.jobs SET owner = NULL, lease_until = NULL, incarnation = NULL, epoch = epoch + 1\n"
"   WHERE owner = p_id AND incarnation IS DISTINCT FROM p_incarnation;\n"
"  GET DIAGNOSTICS n = ROW_COUNT;\n"
"  RETURN jsonb_build_object('live', false, 'took_over', i.incarnation, 'released', n);\n"
"END $f$;\n"
/* 2 (inst): claim a job's lease as one process (owner and incarnation) for one definition
 * (identity). {"epoch": null} when another process holds it; {"refused": definition}
 * when the job's state was written with another definition (and a lease this process
 * held is given back); otherwise {"epoch": n}. The epoch stays only when this process
 * already holds it with that epoch. The first claim of a job (or of one written before
 * identities were kept) adopts the caller's definition. */
"CREATE FUNCTION @S@.claim_job(p_job text, p_owner text, p_incarnation text, p_known bigint,\n"
"    p_lease_ms bigint, p_identity text, p_definition jsonb)\n"
"RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE j @S@.jobs; e bigint; mine boolean;\n"
"BEGIN\n"
"  INSERT INTO @S@.jobs (name) VALUES (p_job) ON CONFLICT DO NOTHING;\n"
"  SELECT * INTO j FROM @S@.jobs WHERE name = p_job FOR UPDATE;\n"
"  mine := COALESCE(j.owner = p_owner AND j.incarnation IS NOT DISTINCT FROM p_incarnation,\n"
"                   false);\n"
"  IF j.owner IS NOT NULL AND j.lease_until > clock_timestamp() AND NOT mine THEN\n"
"    RETURN jsonb_build_object('epoch', NULL);\n"
"  END IF;\n"
"  IF j.identity IS NOT NULL AND j.identity <> p_identity THEN\n"
"    IF mine THEN\n"
"      UPDATE @S@.jobs SET owner = NULL, lease_until = NULL WHERE name = p_job;\n"
"    END IF;\n"
"    RETURN jsonb_build_object('refused', j.definition);\n"
"  END IF;\n"
"  UPDATE @S@.jobs SET\n"
"      epoch = CASE WHEN mine AND epoch = p_known AND lease_until > clock_timestamp()\n"
"                   THEN epoch ELSE epoch + 1 END,\n"
"      owner = p_owner, incarnation = p_incarnation, identity = p_identity,\n"
"      definition = p_definition,\n"
"      lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n"
"    WHERE name = p_job RETURNING epoch INTO e;\n"
"  RETURN jsonb_build_object('epoch', e);\n"
"END $f$;\n"
/* 2 (inst): a process of version 1 still running against this schema claims through the
 * old function: it may no longer take a job whose definition is kept (it cannot say its
 * own), so it never runs one against state another definition wrote. */
"CREATE OR REPLACE FUNCTION @S@.claim(p_job text, p_owner text, p_known bigint, p_lease_ms bigint)\n"
"RETURNS bigint LANGUAGE plpgsql AS $f$\n"
"DECLARE e bigint;\n"
"BEGIN\n"
"  INSERT INTO @S@.jobs (name) VALUES (p_job) ON CONFLICT DO NOTHING;\n"
"  UPDATE @S@.jobs SET\n"
"      epoch = CASE WHEN owner = p_owner AND epoch = p_known AND lease_until > clock_timestamp()\n"
"                   THEN epoch ELSE epoch + 1 END,\n"
"      owner = p_owner, incarnation = NULL,\n"
"      lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n"
"    WHERE name = p_job AND identity IS NULL\n"
"      AND (owner IS NULL OR (owner = p_owner AND incarnation IS NULL) OR lease_until IS NULL\n"
"           OR lease_until <= clock_timestamp())\n"
"    RETURNING epoch INTO e;\n"
"  RETURN e;\n"
"END $f$;\n"
/* 2 (inst): renewal and release match owner, incarnation and epoch: a second process of
 * the same name, or an answer about an older claim, can neither extend nor drop a lease. */
"CREATE FUNCTION @S@.renew_leases(p_owner text, p_incarnation text, p_jobs text[],\n"
"    p_epochs bigint[], p_lease_ms bigint) RETURNS TABLE (name text, epoch bigint)\n"
"LANGUAGE sql AS $f$\n"
"  UPDATE @S@.jobs j SET lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n"
"    FROM unnest(p_jobs, p_epochs) AS u(name, epoch)\n"
"   WHERE j.name = u.name AND j.epoch = u.epoch AND j.owner = p_owner\n"
"     AND j.incarnation IS NOT DISTINCT FROM p_incarnation AND j.lease_until > clock_timestamp()\n"
"  RETURNING j.name, j.epoch\n"
"$f$;\n"
"CREATE FUNCTION @S@.release_leases(p_owner text, p_incarnation text, p_jobs text[],\n"
"    p_epochs bigint[]) RETURNS void LANGUAGE sql AS $f$\n"
"  UPDATE @S@.jobs j SET owner = NULL, lease_until = NULL\n"
"    FROM unnest(p_jobs, p_epochs) AS u(name, epoch)\n"
"   WHERE j.name = u.name AND j.epoch = u.epoch AND j.owner = p_owner\n"
"     AND j.incarnation IS NOT DISTINCT FROM p_incarnation\n"
"$f$;\n"
/* 2 (reload): a checkpoint's number within its run (the document's "seq"), so that a
 * checkpoint sent again after a lost connection, whose first attempt may have committed, is
 * applied once: counters and retry attempts are not added twice. A repeated one answers
 * "repeated" without writing, before the fence (its first attempt may have released the
 * lease); a concurrent first attempt still running on the server is waited for by the row
 * lock of the UPDATE. */
"ALTER TABLE @S@.runs ADD COLUMN checkpoint_seq bigint NOT NULL DEFAULT 0;\n"
"CREATE FUNCTION @S@.checkpoint_once(p_job text, p_owner text, p_epoch bigint, p_run bigint,\n"
"    d jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE seq bigint := (d->>'seq')::bigint;\n"
"BEGIN\n"
"  IF seq IS NOT NULL THEN\n"
"    IF EXISTS (SELECT 1 FROM @S@.runs WHERE id = p_run AND instance = p_owner\n"
"                AND epoch = p_epoch AND checkpoint_seq >= seq) THEN\n"
"      RETURN jsonb_build_object('repeated', true, 'dead', '[]'::jsonb,\n"
"        'failures', (SELECT count(*) FROM @S@.failures WHERE job = p_job),\n"
"        'dead_records', (SELECT count(*) FROM @S@.failures WHERE job = p_job AND dead));\n"
"    END IF;\n"
"    PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"    UPDATE @S@.runs SET checkpoint_seq = seq WHERE id = p_run AND checkpoint_seq < seq;\n"
"    IF NOT FOUND THEN\n"
"      RETURN jsonb_build_object('repeated', true, 'dead', '[]'::jsonb,\n"
"        'failures', (SELECT count(*) FROM @S@.failures WHERE job = p_job),\n"
"        'dead_records', (SELECT count(*) FROM @S@.failures WHERE job = p_job AND dead));\n"
"    END IF;\n"
"  END IF;\n"
"  RETURN @S@.checkpoint(p_job, p_owner, p_epoch, p_run, d);\n"
"END $f$;\n",
/*
 * 3 (arrays): a checkpoint's lists of keys come as parallel arrays (text[], bigint[],
 * jsonb[]: one array per column, NULL for an empty list), its scalars in a small jsonb d
 * (the fields of checkpoint's d but its lists), its number `seq` as a parameter: no
 * document of every key to build and parse. The same writes as checkpoint_once, in the
 * same order, in one transaction: a repeated seq answers "repeated" without writing, the
 * fence, then a key twice in one list resolved (the last one wins). checkpoint and
 * checkpoint_once stay as they are: a process of the previous version still running
 * while this one migrated (it checked the version when it started) writes through them.
 */
"CREATE FUNCTION @S@.checkpoint_lists(p_job text, p_owner text, p_epoch bigint, p_run bigint,\n"
"    p_seq bigint, d jsonb, seen_key text[], seen_hash text[], seen_ts bigint[],\n"
"    put_key text[], put_hash text[], del_key text[], ok_key text[],\n"
"    fail_key text[], fail_error text[], fail_payload jsonb[], fail_hash text[],\n"
"    udel_key text[], uadd_key text[], uadd_hash text[], uadd_answer jsonb[],\n"
"    uadd_error text[]) RETURNS jsonb LANGUAGE plpgsql AS $f$\n"
"DECLARE dead_keys jsonb; nf bigint; nd bigint; fresh boolean := true;\n"
"BEGIN\n"
"  IF p_seq IS NOT NULL THEN\n"
"    fresh := NOT EXISTS (SELECT 1 FROM @S@.runs WHERE id = p_run AND instance = p_owner\n"
"                          AND epoch = p_epoch AND checkpoint_seq >= p_seq);\n"
"  END IF;\n"
"  IF fresh THEN\n"
"    PERFORM @S@.fence(p_job, p_owner, p_epoch);\n"
"  END IF;\n"
"  IF fresh AND p_seq IS NOT NULL THEN\n"
"    UPDATE @S@.runs SET checkpoint_seq = p_seq WHERE id = p_run AND checkpoint_seq < p_seq;\n"
"    fresh := FOUND;\n"
"  END IF;\n"
"  IF NOT fresh THEN\n"
"    SELECT count(*), count(*) FILTER (WHERE dead) INTO nf, nd\n"
"      FROM @S@.failures WHERE job = p_job;\n"
"    RETURN jsonb_build_object('repeated', true, 'dead', '[]'::jsonb,\n"
"      'failures', nf, 'dead_records', nd);\n"
"  END IF;\n"
"  IF cardinality(seen_key) > 0 THEN\n"
"    INSERT INTO @S@.seen (job, key, hash, ts_ns)\n"
"      SELECT DISTINCT ON (k) p_job, k, h, t\n"
"        FROM unnest(seen_key, seen_hash, seen_ts) WITH ORDINALITY AS e(k, h, t, n)\n"
"       ORDER BY k, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, ts_ns = EXCLUDED.ts_ns;\n"
"  END IF;\n"
CK_SQL_WATERMARK
"  IF cardinality(put_key) > 0 THEN\n"
"    INSERT INTO @S@.records (job, key, hash)\n"
"      SELECT DISTINCT ON (k) p_job, k, h\n"
"        FROM unnest(put_key, put_hash) WITH ORDINALITY AS e(k, h, n)\n"
"       ORDER BY k, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash;\n"
"  END IF;\n"
"  IF cardinality(del_key) > 0 THEN\n"
"    DELETE FROM @S@.records WHERE job = p_job AND key = ANY (del_key);\n"
"  END IF;\n"
"  IF cardinality(udel_key) > 0 THEN\n"
"    DELETE FROM @S@.unmarked WHERE job = p_job AND key = ANY (udel_key);\n"
"  END IF;\n"
"  IF cardinality(uadd_key) > 0 THEN\n"
"    INSERT INTO @S@.unmarked (job, key, hash, answer, last_error)\n"
"      SELECT DISTINCT ON (k) p_job, k, h, a, x\n"
"        FROM unnest(uadd_key, uadd_hash, uadd_answer, uadd_error)\n"
"             WITH ORDINALITY AS e(k, h, a, x, n)\n"
"       ORDER BY k, n DESC\n"
"      ON CONFLICT (job, key) DO UPDATE SET hash = EXCLUDED.hash, answer = EXCLUDED.answer,\n"
"        last_error = EXCLUDED.last_error, delivered_at = now();\n"
"  END IF;\n"
"  IF cardinality(ok_key) > 0 THEN\n"
"    DELETE FROM @S@.failures WHERE job = p_job AND key = ANY (ok_key);\n"
"  END IF;\n"
"  IF cardinality(fail_key) > 0 THEN\n"
"    WITH f AS (\n"
"      INSERT INTO @S@.failures AS o (job, key, attempts, next_retry_at, last_error, payload, hash, dead)\n"
"      SELECT DISTINCT ON (k) p_job, k, 1,\n"
"             now() + (d->>'backoff_ms')::bigint * interval '1 millisecond',\n"
"             x, p, h, (d->>'max_attempts')::int <= 1\n"
"        FROM unnest(fail_key, fail_error, fail_payload, fail_hash)\n"
"             WITH ORDINALITY AS e(k, x, p, h, n)\n"
"       ORDER BY k, n DESC\n"
CK_SQL_FAILED_END,
SQL_MIGRATION_BUDGETS
SQL_MIGRATION_CREDENTIALS,
/* 5: whose tokens a credential's row holds (sql_cred.h); the budgets' definitions by
 * instance (sql_budget.h). */
SQL_MIGRATION_CREDENTIALS_5
SQL_MIGRATION_BUDGET_DEFS,
};

#endif
