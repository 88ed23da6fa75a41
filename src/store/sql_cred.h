/*
 * sql_cred.h - the state schema's migration 4, second part: the credentials' shared state
 * (doc/design.md §6.7), one string appended to SQL_MIGRATION_BUDGETS in state_migrations[]
 * (sql_schema.h, whose conventions it follows: "@S@" is the quoted schema; every write a
 * single statement calling a function). The functions only store text: what the daemon
 * passes is aead_seal's output (core/aead.h), and they refuse anything else, so a token in
 * clear never reaches a row. No error message ever quotes a sealed value.
 */
#ifndef ONESYNC_SQL_CRED_H
#define ONESYNC_SQL_CRED_H

/*
 * 4 (credentials): one row per credential name. generation counts the tokens stored (and
 * an operator's new refresh token): it is the fencing number of a refresh. refreshing_by/
 * _until are the lease of the one instance refreshing now (single flight across instances,
 * without a transaction held open across the token request). needs_reauth is NULL while
 * the credential is fine, else why an operator must act.
 */
#define SQL_MIGRATION_CREDENTIALS \
	"CREATE TABLE @S@.credentials (\n" \
	"  name text PRIMARY KEY,\n" \
	"  access_sealed text,\n" \
	"  access_expires_at timestamptz,\n" \
	"  refresh_sealed text,\n" \
	"  generation bigint NOT NULL DEFAULT 0,\n" \
	"  refreshing_by text,\n" \
	"  refreshing_until timestamptz,\n" \
	"  needs_reauth text,\n" \
	"  updated_at timestamptz,\n" \
	"  updated_by text,\n" \
	"  CHECK (access_sealed LIKE 'v1:%' AND refresh_sealed LIKE 'v1:%'));\n" \
/* 4: refuse a name, an instance or a reason that is missing or absurdly long, naming the \
 * function and the argument. */ \
	"CREATE FUNCTION @S@.credential_check(p_fn text, p_name text, p_what text, p_val text)\n" \
	"RETURNS void LANGUAGE plpgsql AS $f$\n" \
	"BEGIN\n" \
	"  IF p_val IS NULL OR p_val = '' OR length(p_val) > 1000 THEN\n" \
	"    RAISE EXCEPTION '%(%): % must be 1 to 1000 characters (got % of length %)', p_fn,\n" \
	"      quote_nullable(left(p_name, 40)), p_what, quote_nullable(left(p_val, 40)),\n" \
	"      length(p_val) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"END $f$;\n" \
/* 4: refuse what is not aead_seal's output (a token in clear, by a bug), without quoting \
 * it; NULL passes (the callers say when it may be NULL). */ \
	"CREATE FUNCTION @S@.credential_check_sealed(p_fn text, p_name text, p_what text,\n" \
	"    p_val text) RETURNS void LANGUAGE plpgsql AS $f$\n" \
	"BEGIN\n" \
	"  IF p_val IS NOT NULL AND (length(p_val) > 200000\n" \
	"     OR p_val !~ '^v1:([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$') THEN\n" \
	"    RAISE EXCEPTION '%(%): the % must be sealed by onesyncd (\"v1:\" and Base64, at most '\n" \
	"      '200000 characters), not % characters of something else', p_fn,\n" \
	"      quote_nullable(left(p_name, 40)), p_what, length(p_val) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"END $f$;\n" \
/* 4: a credential's row as its callers read it; a lease that ran out reads as none (0). \
 * Volatile: it reads clock_timestamp(). */ \
	"CREATE FUNCTION @S@.credential_json(r @S@.credentials) RETURNS jsonb\n" \
	"LANGUAGE sql AS $f$\n" \
	"  SELECT jsonb_build_object('access_sealed', r.access_sealed,\n" \
	"    'access_expires_ms', @S@.budget_ms(r.access_expires_at),\n" \
	"    'refresh_sealed', r.refresh_sealed, 'generation', r.generation,\n" \
	"    'needs_reauth', r.needs_reauth,\n" \
	"    'refreshing_until_ms', CASE WHEN r.refreshing_until > clock_timestamp()\n" \
	"      THEN @S@.budget_ms(r.refreshing_until) ELSE 0 END)\n" \
	"$f$;\n" \
/* 4: credential p_name's row, created empty when missing; locked when p_lock (the single \
 * flight's queue). */ \
	"CREATE FUNCTION @S@.credential_row(p_fn text, p_name text, p_lock boolean)\n" \
	"RETURNS @S@.credentials LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check(p_fn, p_name, 'a credential name', p_name);\n" \
	"  INSERT INTO @S@.credentials (name) VALUES (p_name) ON CONFLICT DO NOTHING;\n" \
	"  IF p_lock THEN\n" \
	"    SELECT * INTO r FROM @S@.credentials WHERE name = p_name FOR UPDATE;\n" \
	"  ELSE\n" \
	"    SELECT * INTO r FROM @S@.credentials WHERE name = p_name;\n" \
	"  END IF;\n" \
	"  RETURN r;\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_get(p_name text) RETURNS jsonb LANGUAGE sql AS $f$\n" \
	"  SELECT @S@.credential_json(@S@.credential_row('credential_get', p_name, false))\n" \
	"$f$;\n" \
/* 4: ask to refresh credential p_name: the row (as credential_get) and one of \
 * "needs_reauth" (an operator must act), "busy" with "wait_ms" (another instance's lease \
 * runs that much longer), or "token" (the fencing number: the generation now) when this \
 * instance now holds the lease for p_lease_ms (its own lease still ahead is taken again). \
 * The row lock queues concurrent callers, so each reads what the one before stored. */ \
	"CREATE FUNCTION @S@.credential_begin(p_name text, p_instance text, p_lease_ms bigint)\n" \
	"RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials; t timestamptz;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_begin', p_name, 'the instance', p_instance);\n" \
	"  IF p_lease_ms IS NULL OR p_lease_ms < 1 OR p_lease_ms > 3600000 THEN\n" \
	"    RAISE EXCEPTION 'credential_begin(%): the lease must be 1 ms to 1 hour, not % ms',\n" \
	"      quote_nullable(left(p_name, 40)), p_lease_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_begin', p_name, true);\n" \
	"  t := clock_timestamp();\n" \
	"  IF r.needs_reauth IS NOT NULL THEN\n" \
	"    RETURN @S@.credential_json(r);\n" \
	"  END IF;\n" \
	"  IF r.refreshing_by <> p_instance AND r.refreshing_until > t THEN\n" \
	"    RETURN @S@.credential_json(r) || jsonb_build_object('busy', true, 'wait_ms',\n" \
	"      greatest(@S@.budget_ms(r.refreshing_until) - @S@.budget_ms(t), 1));\n" \
	"  END IF;\n" \
	"  UPDATE @S@.credentials SET refreshing_by = p_instance,\n" \
	"         refreshing_until = t + p_lease_ms * interval '1 millisecond'\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN @S@.credential_json(r) || jsonb_build_object('token', r.generation);\n" \
	"END $f$;\n" \
/* 4: store what the refresh begun with token p_generation got, if this instance still \
 * holds its lease and nothing was stored since: generation + 1, the lease ended. A NULL \
 * p_refresh_sealed keeps the refresh token (the server did not rotate it); a NULL \
 * p_expires_ms stores a token of unknown lifetime. */ \
	"CREATE FUNCTION @S@.credential_store(p_name text, p_instance text, p_generation bigint,\n" \
	"    p_access_sealed text, p_expires_ms bigint, p_refresh_sealed text)\n" \
	"RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_store', p_name, 'the instance', p_instance);\n" \
	"  IF p_access_sealed IS NULL THEN\n" \
	"    RAISE EXCEPTION 'credential_store(%): no access token', quote_nullable(left(p_name, 40))\n" \
	"      USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  PERFORM @S@.credential_check_sealed('credential_store', p_name, 'access token',\n" \
	"    p_access_sealed);\n" \
	"  PERFORM @S@.credential_check_sealed('credential_store', p_name, 'refresh token',\n" \
	"    p_refresh_sealed);\n" \
	"  IF p_generation IS NULL OR p_generation < 0 OR p_expires_ms < 0\n" \
	"     OR p_expires_ms > 253402300799999 THEN\n" \
	"    RAISE EXCEPTION 'credential_store(%): the generation must be 0 or more (got %) and the '\n" \
	"      'expiry ms since 1970 before the year 10000 (got %)', quote_nullable(left(p_name, 40)),\n" \
	"      p_generation, p_expires_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_store', p_name, true);\n" \
	"  IF r.refreshing_by IS DISTINCT FROM p_instance THEN\n" \
	"    RETURN jsonb_build_object('stored', false, 'generation', r.generation, 'why',\n" \
	"      'the refresh lease is not held by this instance (it ran out)');\n" \
	"  END IF;\n" \
	"  IF r.generation <> p_generation THEN\n" \
	"    RETURN jsonb_build_object('stored', false, 'generation', r.generation, 'why',\n" \
	"      'a newer token was stored since this refresh began');\n" \
	"  END IF;\n" \
	"  UPDATE @S@.credentials SET access_sealed = p_access_sealed,\n" \
	"         access_expires_at = timestamptz 'epoch' + p_expires_ms * interval '1 millisecond',\n" \
	"         refresh_sealed = COALESCE(p_refresh_sealed, refresh_sealed),\n" \
	"         generation = generation + 1, refreshing_by = NULL, refreshing_until = NULL,\n" \
	"         updated_at = clock_timestamp(), updated_by = p_instance\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN jsonb_build_object('stored', true, 'generation', r.generation);\n" \
	"END $f$;\n" \
/* 4: the refresh begun with token p_generation failed: its lease ends (if still this \
 * instance's). A non-NULL p_needs_reauth (invalid_grant) marks the credential, but only \
 * if no token was stored since: a refresh token another instance already replaced is \
 * expected to be refused. Answers whether the lease was ended and the mark made. */ \
	"CREATE FUNCTION @S@.credential_fail(p_name text, p_instance text, p_generation bigint,\n" \
	"    p_needs_reauth text) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials; mine boolean; mark boolean;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_fail', p_name, 'the instance', p_instance);\n" \
	"  IF p_needs_reauth IS NOT NULL THEN\n" \
	"    PERFORM @S@.credential_check('credential_fail', p_name, 'the reason', p_needs_reauth);\n" \
	"  END IF;\n" \
	"  IF p_generation IS NULL OR p_generation < 0 THEN\n" \
	"    RAISE EXCEPTION 'credential_fail(%): the generation must be 0 or more, not %',\n" \
	"      quote_nullable(left(p_name, 40)), p_generation USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_fail', p_name, true);\n" \
	"  mine := r.refreshing_by = p_instance AND r.generation = p_generation;\n" \
	"  mark := p_needs_reauth IS NOT NULL AND r.generation = p_generation;\n" \
	"  UPDATE @S@.credentials SET\n" \
	"         refreshing_by = CASE WHEN mine THEN NULL ELSE refreshing_by END,\n" \
	"         refreshing_until = CASE WHEN mine THEN NULL ELSE refreshing_until END,\n" \
	"         needs_reauth = CASE WHEN mark THEN p_needs_reauth ELSE needs_reauth END,\n" \
	"         updated_at = CASE WHEN mark THEN clock_timestamp() ELSE updated_at END,\n" \
	"         updated_by = CASE WHEN mark THEN p_instance ELSE updated_by END\n" \
	"   WHERE name = p_name;\n" \
	"  RETURN jsonb_build_object('ended', mine, 'marked', mark);\n" \
	"END $f$;\n" \
/* 4: an operator's new refresh token: stored, the access token and the mark dropped, any \
 * refresh in flight fenced off (generation + 1, its lease ended). */ \
	"CREATE FUNCTION @S@.credential_set_refresh(p_name text, p_refresh_sealed text)\n" \
	"RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials;\n" \
	"BEGIN\n" \
	"  IF p_refresh_sealed IS NULL THEN\n" \
	"    RAISE EXCEPTION 'credential_set_refresh(%): no refresh token',\n" \
	"      quote_nullable(left(p_name, 40)) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  PERFORM @S@.credential_check_sealed('credential_set_refresh', p_name, 'refresh token',\n" \
	"    p_refresh_sealed);\n" \
	"  r := @S@.credential_row('credential_set_refresh', p_name, true);\n" \
	"  UPDATE @S@.credentials SET refresh_sealed = p_refresh_sealed, access_sealed = NULL,\n" \
	"         access_expires_at = NULL, needs_reauth = NULL, generation = generation + 1,\n" \
	"         refreshing_by = NULL, refreshing_until = NULL, updated_at = clock_timestamp(),\n" \
	"         updated_by = 'operator'\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN jsonb_build_object('generation', r.generation);\n" \
	"END $f$;\n"

/*
 * 5 (credentials): whose tokens a row holds. key_check names the state.encryption_key that
 * sealed them (a MAC of a constant under it, core/aead.h); origin the client and first
 * refresh token they belong to, then the scope and audience of the access token, as two
 * MACs of 32 hex digits (config_cred_origin). The daemon takes a stored token only
 * when both are its own: instances with different keys are told so, and a configuration
 * that changed its client or its refresh_token starts from the configured one. A store
 * needs only that nothing was stored since its refresh began (the lease may have run
 * out: the answer holds the newest refresh token there is, and the generation it moves
 * fences off whoever refreshes meanwhile), keeps the refresh token passed (the rotated one,
 * or the one the refresh used), and clears a mark of re-authorization (a grant that just
 * worked needs none). credential_set_refresh records the key and origin too, and
 * credential_fail the origin of a mark (mark_origin): credential_begin lets a refresh
 * begin despite a mark made for another client or first refresh token (the configuration now names a new refresh_token), and
 * credential_renew extends the lease of a refresh whose request still waits (a budget's
 * block, a slow endpoint), so that no other instance begins with the same refresh token.
 * seeds holds MACs of the refresh tokens given to the credential (the configured ones a
 * stored refresh began from, and the operator's): the last 16. A configured refresh token
 * found there is spent: it is never presented again, the stored chain serves instead.
 * mark_origin is the client and configured refresh token a mark was made for.
 * The functions of migration 4 whose arguments changed stay beside the new ones, for an
 * instance of the previous version that still runs while another migrates.
 */
#define SQL_MIGRATION_CREDENTIALS_5 \
	"ALTER TABLE @S@.credentials ADD COLUMN key_check text, ADD COLUMN origin text,\n" \
	"  ADD COLUMN seeds text[] NOT NULL DEFAULT '{}', ADD COLUMN mark_origin text,\n" \
	"  ADD CHECK (key_check ~ '^[0-9a-f]{32}$' AND origin ~ '^[0-9a-f]{64}$'\n" \
	"    AND mark_origin ~ '^[0-9a-f]{64}$'),\n" \
	"  ADD CHECK (cardinality(seeds) <= 16);\n" \
	"CREATE FUNCTION @S@.credential_check_mac(p_fn text, p_name text, p_what text,\n" \
	"    p_val text) RETURNS void LANGUAGE plpgsql AS $f$\n" \
	"DECLARE n int := CASE WHEN p_what = 'origin' THEN 64 ELSE 32 END;\n" \
	"BEGIN\n" \
	"  IF p_val IS NULL OR p_val !~ ('^[0-9a-f]{' || n || '}$') THEN\n" \
	"    RAISE EXCEPTION '%(%): the % must be % lower-case hex digits', p_fn,\n" \
	"      quote_nullable(left(p_name, 40)), p_what, n USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_seeds(a text[], p_seed text) RETURNS text[]\n" \
	"LANGUAGE sql IMMUTABLE AS $f$\n" \
	"  SELECT CASE WHEN p_seed IS NULL OR p_seed = ANY (a) THEN a\n" \
	"    ELSE (a || p_seed)[greatest(1, cardinality(a) - 14):cardinality(a) + 1] END\n" \
	"$f$;\n" \
	"CREATE OR REPLACE FUNCTION @S@.credential_json(r @S@.credentials) RETURNS jsonb\n" \
	"LANGUAGE sql AS $f$\n" \
	"  SELECT jsonb_build_object('access_sealed', r.access_sealed,\n" \
	"    'access_expires_ms', @S@.budget_ms(r.access_expires_at),\n" \
	"    'refresh_sealed', r.refresh_sealed, 'generation', r.generation,\n" \
	"    'needs_reauth', r.needs_reauth, 'key_check', r.key_check, 'origin', r.origin,\n" \
	"    'updated_by', r.updated_by, 'seeds', to_jsonb(r.seeds), 'mark_origin', r.mark_origin,\n" \
	"    'refreshing_until_ms', CASE WHEN r.refreshing_until > clock_timestamp()\n" \
	"      THEN @S@.budget_ms(r.refreshing_until) ELSE 0 END)\n" \
	"$f$;\n" \
	"CREATE FUNCTION @S@.credential_store(p_name text, p_instance text, p_generation bigint,\n" \
	"    p_access_sealed text, p_expires_ms bigint, p_refresh_sealed text, p_key_check text,\n" \
	"    p_origin text, p_seed text) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials; lost boolean;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_store', p_name, 'the instance', p_instance);\n" \
	"  IF p_access_sealed IS NULL THEN\n" \
	"    RAISE EXCEPTION 'credential_store(%): no access token', quote_nullable(left(p_name, 40))\n" \
	"      USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  PERFORM @S@.credential_check_sealed('credential_store', p_name, 'access token',\n" \
	"    p_access_sealed);\n" \
	"  PERFORM @S@.credential_check_sealed('credential_store', p_name, 'refresh token',\n" \
	"    p_refresh_sealed);\n" \
	"  PERFORM @S@.credential_check_mac('credential_store', p_name, 'key check', p_key_check);\n" \
	"  PERFORM @S@.credential_check_mac('credential_store', p_name, 'origin', p_origin);\n" \
	"  IF p_seed IS NOT NULL THEN\n" \
	"    PERFORM @S@.credential_check_mac('credential_store', p_name, 'seed', p_seed);\n" \
	"  END IF;\n" \
	"  IF p_generation IS NULL OR p_generation < 0 OR p_expires_ms < 0\n" \
	"     OR p_expires_ms > 253402300799999 THEN\n" \
	"    RAISE EXCEPTION 'credential_store(%): the generation must be 0 or more (got %) and the '\n" \
	"      'expiry ms since 1970 before the year 10000 (got %)', quote_nullable(left(p_name, 40)),\n" \
	"      p_generation, p_expires_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_store', p_name, true);\n" \
	"  IF r.generation <> p_generation THEN\n" \
	"    RETURN jsonb_build_object('stored', false, 'generation', r.generation, 'why',\n" \
	"      'a newer token was stored since this refresh began');\n" \
	"  END IF;\n" \
	"  lost := r.refreshing_by IS DISTINCT FROM p_instance;\n" \
	"  UPDATE @S@.credentials SET access_sealed = p_access_sealed,\n" \
	"         access_expires_at = timestamptz 'epoch' + p_expires_ms * interval '1 millisecond',\n" \
	"         refresh_sealed = p_refresh_sealed, key_check = p_key_check, origin = p_origin,\n" \
	"         seeds = @S@.credential_seeds(seeds, p_seed),\n" \
	"         needs_reauth = NULL, mark_origin = NULL, generation = generation + 1,\n" \
	"         refreshing_by = NULL,\n" \
	"         refreshing_until = NULL, updated_at = clock_timestamp(), updated_by = p_instance\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN jsonb_build_object('stored', true, 'generation', r.generation, 'lease_lost', lost);\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_begin(p_name text, p_instance text, p_lease_ms bigint,\n" \
	"    p_origin text) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials; t timestamptz;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_begin', p_name, 'the instance', p_instance);\n" \
	"  PERFORM @S@.credential_check_mac('credential_begin', p_name, 'origin', p_origin);\n" \
	"  IF p_lease_ms IS NULL OR p_lease_ms < 1 OR p_lease_ms > 3600000 THEN\n" \
	"    RAISE EXCEPTION 'credential_begin(%): the lease must be 1 ms to 1 hour, not % ms',\n" \
	"      quote_nullable(left(p_name, 40)), p_lease_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_begin', p_name, true);\n" \
	"  t := clock_timestamp();\n" \
	"  IF r.needs_reauth IS NOT NULL AND (r.mark_origin IS NULL OR r.mark_origin = p_origin) THEN\n" \
	"    RETURN @S@.credential_json(r);\n" \
	"  END IF;\n" \
	"  IF r.refreshing_by <> p_instance AND r.refreshing_until > t THEN\n" \
	"    RETURN @S@.credential_json(r) || jsonb_build_object('busy', true, 'wait_ms',\n" \
	"      greatest(@S@.budget_ms(r.refreshing_until) - @S@.budget_ms(t), 1));\n" \
	"  END IF;\n" \
	"  UPDATE @S@.credentials SET refreshing_by = p_instance,\n" \
	"         refreshing_until = t + p_lease_ms * interval '1 millisecond'\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN (@S@.credential_json(r) - 'needs_reauth') || jsonb_build_object('token',\n" \
	"    r.generation);\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_renew(p_name text, p_instance text, p_generation bigint,\n" \
	"    p_lease_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE n int;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_renew', p_name, 'the instance', p_instance);\n" \
	"  IF p_lease_ms IS NULL OR p_lease_ms < 1 OR p_lease_ms > 3600000 THEN\n" \
	"    RAISE EXCEPTION 'credential_renew(%): the lease must be 1 ms to 1 hour, not % ms',\n" \
	"      quote_nullable(left(p_name, 40)), p_lease_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  UPDATE @S@.credentials\n" \
	"     SET refreshing_until = clock_timestamp() + p_lease_ms * interval '1 millisecond'\n" \
	"   WHERE name = p_name AND refreshing_by = p_instance AND generation = p_generation\n" \
	"     AND refreshing_until > clock_timestamp();\n" \
	"  GET DIAGNOSTICS n = ROW_COUNT;\n" \
	"  RETURN jsonb_build_object('renewed', n = 1);\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_fail(p_name text, p_instance text, p_generation bigint,\n" \
	"    p_needs_reauth text, p_origin text) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials; mine boolean; mark boolean;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.credential_check('credential_fail', p_name, 'the instance', p_instance);\n" \
	"  PERFORM @S@.credential_check_mac('credential_fail', p_name, 'origin', p_origin);\n" \
	"  IF p_needs_reauth IS NOT NULL THEN\n" \
	"    PERFORM @S@.credential_check('credential_fail', p_name, 'the reason', p_needs_reauth);\n" \
	"  END IF;\n" \
	"  IF p_generation IS NULL OR p_generation < 0 THEN\n" \
	"    RAISE EXCEPTION 'credential_fail(%): the generation must be 0 or more, not %',\n" \
	"      quote_nullable(left(p_name, 40)), p_generation USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  r := @S@.credential_row('credential_fail', p_name, true);\n" \
	"  mine := r.refreshing_by = p_instance AND r.generation = p_generation;\n" \
	"  mark := p_needs_reauth IS NOT NULL AND r.generation = p_generation;\n" \
	"  UPDATE @S@.credentials SET\n" \
	"         refreshing_by = CASE WHEN mine THEN NULL ELSE refreshing_by END,\n" \
	"         refreshing_until = CASE WHEN mine THEN NULL ELSE refreshing_until END,\n" \
	"         needs_reauth = CASE WHEN mark THEN p_needs_reauth ELSE needs_reauth END,\n" \
	"         mark_origin = CASE WHEN mark THEN p_origin ELSE mark_origin END,\n" \
	"         updated_at = CASE WHEN mark THEN clock_timestamp() ELSE updated_at END,\n" \
	"         updated_by = CASE WHEN mark THEN p_instance ELSE updated_by END\n" \
	"   WHERE name = p_name;\n" \
	"  RETURN jsonb_build_object('ended', mine, 'marked', mark);\n" \
	"END $f$;\n" \
	"CREATE FUNCTION @S@.credential_set_refresh(p_name text, p_refresh_sealed text,\n" \
	"    p_key_check text, p_origin text, p_seed text) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE r @S@.credentials;\n" \
	"BEGIN\n" \
	"  IF p_refresh_sealed IS NULL THEN\n" \
	"    RAISE EXCEPTION 'credential_set_refresh(%): no refresh token',\n" \
	"      quote_nullable(left(p_name, 40)) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  PERFORM @S@.credential_check_sealed('credential_set_refresh', p_name, 'refresh token',\n" \
	"    p_refresh_sealed);\n" \
	"  PERFORM @S@.credential_check_mac('credential_set_refresh', p_name, 'key check',\n" \
	"    p_key_check);\n" \
	"  PERFORM @S@.credential_check_mac('credential_set_refresh', p_name, 'origin', p_origin);\n" \
	"  PERFORM @S@.credential_check_mac('credential_set_refresh', p_name, 'seed', p_seed);\n" \
	"  r := @S@.credential_row('credential_set_refresh', p_name, true);\n" \
	"  UPDATE @S@.credentials SET refresh_sealed = p_refresh_sealed, access_sealed = NULL,\n" \
	"         access_expires_at = NULL, needs_reauth = NULL, mark_origin = NULL,\n" \
	"         generation = generation + 1, key_check = p_key_check, origin = p_origin,\n" \
	"         seeds = @S@.credential_seeds(seeds, p_seed),\n" \
	"         refreshing_by = NULL, refreshing_until = NULL, updated_at = clock_timestamp(),\n" \
	"         updated_by = 'operator'\n" \
	"   WHERE name = p_name RETURNING * INTO r;\n" \
	"  RETURN jsonb_build_object('generation', r.generation);\n" \
	"END $f$;\n"

#endif
