/*
 * sql_budget.h - the state schema's migration 4, shared budgets, as one string for
 * state_migrations[] in sql_schema.h (whose conventions it follows: "@S@" is the quoted
 * schema; every write a single statement calling a function).
 */
#ifndef ONESYNC_SQL_BUDGET_H
#define ONESYNC_SQL_BUDGET_H

/*
 * 4 (budgets): the budgets shared by every instance on this schema. A budget's row is the
 * lock its takers queue on and its block (a 429's Retry-After, for everyone); its windows
 * count grants in buckets of g = max(1, W/20) ms. A grant made at t counts in bucket
 * floor(t/g)*g until that bucket + g + W + hold: its holder may spend it up to hold ms
 * later, so every request sent in a window [x, x + W) was granted in [x - hold, x + W),
 * and all those grants still count when the last of them is made: no sliding window of
 * length W ever sees more than the limit sent, in whatever order the holders spend.
 * A process of version 3 never calls these: adding them changes nothing for it.
 */
#define SQL_MIGRATION_BUDGETS \
	"CREATE TABLE @S@.budgets (\n" \
	"  name text PRIMARY KEY,\n" \
	"  blocked_until timestamptz);\n" \
	"CREATE TABLE @S@.budget_windows (\n" \
	"  name text NOT NULL,\n" \
	"  window_ms bigint NOT NULL,\n" \
	"  bucket bigint NOT NULL,\n" \
	"  n bigint NOT NULL,\n" \
	"  hold bigint NOT NULL DEFAULT 0,\n" \
	"  PRIMARY KEY (name, window_ms, bucket));\n" \
/* 4: a time in ms since the epoch, truncated (a grant's ms is never later than the time it \
 * was made). Through whole microseconds: exact whether extract answers numeric (PostgreSQL \
 * 14 on) or float8 (before: the microseconds fit its 53 bits, the milliseconds' fraction \
 * would not). */ \
	"CREATE FUNCTION @S@.budget_ms(p timestamptz) RETURNS bigint LANGUAGE sql IMMUTABLE AS $f$\n" \
	"  SELECT (extract(epoch FROM p) * 1000000)::bigint / 1000\n" \
	"$f$;\n" \
/* 4: refuse what would make the arithmetic overflow or the payload too long, naming it. */ \
	"CREATE FUNCTION @S@.budget_check_name(p_fn text, p_name text) RETURNS void\n" \
	"LANGUAGE plpgsql AS $f$\n" \
	"BEGIN\n" \
	"  IF p_name IS NULL OR p_name = '' OR length(p_name) > 1000 THEN\n" \
	"    RAISE EXCEPTION '%: a budget name must be 1 to 1000 characters (got % of length %)',\n" \
	"      p_fn, quote_nullable(left(p_name, 40)), length(p_name) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"END $f$;\n" \
/* 4: take up to p_want units of budget p_name, with p_limit[i] per window of p_window_ms[i] \
 * ms (a window given twice counts once, with the smaller limit), to be spent within \
 * p_hold_ms. The row lock orders the takers; t is read after it, so a grant's time is the \
 * order in which grants are made. Answers granted, wait_ms (0 when granted, else how long \
 * until the budget's block ends or the fullest window frees a bucket), at_ms (t) and \
 * blocked_until_ms (a block still in force, else 0). */ \
	"CREATE FUNCTION @S@.budget_take(p_name text, p_window_ms bigint[], p_limit bigint[],\n" \
	"    p_want bigint, p_hold_ms bigint) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE k int := cardinality(p_window_ms); b timestamptz; tm bigint; bm bigint := 0;\n" \
	"  win record; g bigint; used bigint; oldest bigint; granted bigint := p_want; wt bigint := 0;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.budget_check_name('budget_take', p_name);\n" \
	"  IF k IS NULL OR k < 1 OR k > 8 OR array_ndims(p_window_ms) <> 1\n" \
	"     OR array_ndims(p_limit) IS DISTINCT FROM 1 OR cardinality(p_limit) <> k THEN\n" \
	"    RAISE EXCEPTION 'budget_take(%): windows % and limits % must be two lists of 1 to 8 values, '\n" \
	"      'of the same length', p_name, p_window_ms, p_limit USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  IF EXISTS (SELECT 1 FROM unnest(p_window_ms, p_limit) AS u(w, l) WHERE w IS NULL OR l IS NULL\n" \
	"             OR w < 1 OR w > 315360000000 OR l < 1 OR l > 1000000000000000) THEN\n" \
	"    RAISE EXCEPTION 'budget_take(%): every window must be 1 ms to 10 years (got %) and every '\n" \
	"      'limit 1 to 10^15 (got %)', p_name, p_window_ms, p_limit USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  IF p_want IS NULL OR p_want < 1 OR p_hold_ms IS NULL OR p_hold_ms < 0\n" \
	"     OR p_hold_ms > 315360000000 THEN\n" \
	"    RAISE EXCEPTION 'budget_take(%): want must be at least 1 (got %) and hold 0 ms to 10 years '\n" \
	"      '(got %)', p_name, p_want, p_hold_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  INSERT INTO @S@.budgets (name) VALUES (p_name) ON CONFLICT DO NOTHING;\n" \
	"  SELECT blocked_until INTO b FROM @S@.budgets WHERE name = p_name FOR UPDATE;\n" \
	"  tm := @S@.budget_ms(clock_timestamp());\n" \
	"  IF b IS NOT NULL AND @S@.budget_ms(b) > tm THEN\n" \
	"    bm := @S@.budget_ms(b);\n" \
	"    RETURN jsonb_build_object('granted', 0, 'wait_ms', bm - tm, 'at_ms', tm,\n" \
	"      'blocked_until_ms', bm);\n" \
	"  END IF;\n" \
/* Buckets that stopped counting go, those of windows no longer configured included; each \
 * counts for the longest hold of its grants (takers may ask with different holds). */ \
	"  DELETE FROM @S@.budget_windows WHERE name = p_name\n" \
	"     AND bucket + greatest(1, window_ms / 20) + window_ms + hold <= tm;\n" \
	"  FOR win IN SELECT u.w AS ms, min(u.l) AS lim FROM unnest(p_window_ms, p_limit) AS u(w, l)\n" \
	"            GROUP BY u.w LOOP\n" \
	"    SELECT COALESCE(sum(n), 0), min(bucket + greatest(1, window_ms / 20) + window_ms + hold)\n" \
	"      INTO used, oldest FROM @S@.budget_windows\n" \
	"     WHERE name = p_name AND window_ms = win.ms;\n" \
	"    granted := least(granted, greatest(win.lim - used, 0));\n" \
	"    IF used >= win.lim THEN\n" \
	"      wt := greatest(wt, oldest - tm, 1);\n" \
	"    END IF;\n" \
	"  END LOOP;\n" \
	"  IF granted > 0 THEN\n" \
	"    wt := 0;\n" \
	"    FOR win IN SELECT DISTINCT u.w AS ms FROM unnest(p_window_ms) AS u(w) LOOP\n" \
	"      g := greatest(1, win.ms / 20);\n" \
	"      INSERT INTO @S@.budget_windows AS o (name, window_ms, bucket, n, hold)\n" \
	"        VALUES (p_name, win.ms, tm / g * g, granted, p_hold_ms)\n" \
	"        ON CONFLICT (name, window_ms, bucket) DO UPDATE SET n = o.n + EXCLUDED.n,\n" \
	"          hold = greatest(o.hold, EXCLUDED.hold);\n" \
	"    END LOOP;\n" \
	"  END IF;\n" \
	"  RETURN jsonb_build_object('granted', granted, 'wait_ms', wt, 'at_ms', tm,\n" \
	"    'blocked_until_ms', 0);\n" \
	"END $f$;\n" \
/* 4: block budget p_name for everyone until p_until_ms: only ever later. When it moved, \
 * NOTIFY onesync_budget '<until_ms> <name>' (the name last: it may hold any character but \
 * NUL). Answers the block now in force and whether this call moved it. */ \
	"CREATE FUNCTION @S@.budget_block(p_name text, p_until_ms bigint) RETURNS jsonb\n" \
	"LANGUAGE plpgsql AS $f$\n" \
	"DECLARE u timestamptz; moved boolean;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.budget_check_name('budget_block', p_name);\n" \
	"  IF p_until_ms IS NULL OR p_until_ms < 0 OR p_until_ms > 253402300799999 THEN\n" \
	"    RAISE EXCEPTION 'budget_block(%): until must be ms since 1970 before the year 10000, not %',\n" \
	"      p_name, p_until_ms USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  u := timestamptz 'epoch' + p_until_ms * interval '1 millisecond';\n" \
	"  INSERT INTO @S@.budgets AS o (name, blocked_until) VALUES (p_name, u)\n" \
	"    ON CONFLICT (name) DO UPDATE SET blocked_until = EXCLUDED.blocked_until\n" \
	"     WHERE o.blocked_until IS NULL OR o.blocked_until < EXCLUDED.blocked_until;\n" \
	"  moved := FOUND;\n" \
	"  IF moved THEN\n" \
	"    PERFORM pg_notify('onesync_budget', p_until_ms || ' ' || p_name);\n" \
	"  END IF;\n" \
	"  RETURN jsonb_build_object('blocked_until_ms',\n" \
	"    (SELECT @S@.budget_ms(blocked_until) FROM @S@.budgets WHERE name = p_name), 'moved', moved);\n" \
	"END $f$;\n" \
/* 4: what the budgets look like now (p_names NULL: all of them): {"NAME": {"blocked_until_ms": \
 * a block in force or 0, "windows": {"W": units granted in the last W ms, by bucket}}}. A \
 * grant also counts for its hold after that (see budget_take), which the reader cannot \
 * know: this is what an operator compares with the limit. */ \
	"CREATE FUNCTION @S@.budget_status(p_names text[]) RETURNS jsonb LANGUAGE sql STABLE AS $f$\n" \
	"  SELECT COALESCE(jsonb_object_agg(b.name, jsonb_build_object(\n" \
	"      'blocked_until_ms', CASE WHEN b.blocked_until > clock_timestamp()\n" \
	"        THEN @S@.budget_ms(b.blocked_until) ELSE 0 END,\n" \
	"      'windows', COALESCE((SELECT jsonb_object_agg(x.window_ms::text, x.used)\n" \
	"          FROM (SELECT window_ms, COALESCE(sum(n) FILTER (WHERE bucket\n" \
	"                  + greatest(1, window_ms / 20) + window_ms > @S@.budget_ms(clock_timestamp())), 0)\n" \
	"                  AS used\n" \
	"                  FROM @S@.budget_windows WHERE name = b.name GROUP BY window_ms) x),\n" \
	"        '{}'::jsonb))), '{}'::jsonb)\n" \
	"    FROM @S@.budgets b WHERE p_names IS NULL OR b.name = ANY (p_names)\n" \
	"$f$;\n"

/*
 * The budgets' definitions (budget_define), part of migration 5 (after the credentials').
 * Each instance writes, per budget it uses, what of its definition the instances share the
 * windows by (rates, reserve, match prefixes, costs: not concurrency nor park_after, which
 * are its own) and a fingerprint of that; it reads back the differing definitions of the
 * other instances still registered, to warn of them. Nothing else reads these rows.
 */
#define SQL_MIGRATION_BUDGET_DEFS \
	"CREATE TABLE @S@.budget_defs (\n" \
	"  name text NOT NULL,\n" \
	"  instance text NOT NULL,\n" \
	"  fingerprint text NOT NULL,\n" \
	"  definition jsonb NOT NULL,\n" \
	"  defined_at timestamptz NOT NULL DEFAULT now(),\n" \
	"  PRIMARY KEY (name, instance));\n" \
/* Record the definition of budget p_name by the instance whose process holds p_incarnation \
 * (instances.incarnation), forget those of instances no longer registered, and answer the \
 * other instances' definitions whose fingerprint differs: [{"instance", "definition"}, ...] \
 * (at most 20, by instance). A fingerprint is 1 to 64 characters, a definition an object of \
 * at most 64 kB. */ \
	"CREATE FUNCTION @S@.budget_define(p_name text, p_incarnation text, p_fingerprint text,\n" \
	"    p_definition jsonb) RETURNS jsonb LANGUAGE plpgsql AS $f$\n" \
	"DECLARE me text;\n" \
	"BEGIN\n" \
	"  PERFORM @S@.budget_check_name('budget_define', p_name);\n" \
	"  IF p_fingerprint IS NULL OR p_fingerprint = '' OR length(p_fingerprint) > 64\n" \
	"     OR p_definition IS NULL OR jsonb_typeof(p_definition) <> 'object'\n" \
	"     OR octet_length(p_definition::text) > 65536 THEN\n" \
	"    RAISE EXCEPTION 'budget_define(%): the fingerprint must be 1 to 64 characters (got %) and '\n" \
	"      'the definition an object of at most 64 kB (got % bytes)', p_name,\n" \
	"      quote_nullable(left(p_fingerprint, 70)), octet_length(p_definition::text)\n" \
	"      USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  SELECT id INTO me FROM @S@.instances WHERE incarnation = p_incarnation;\n" \
	"  IF me IS NULL THEN\n" \
	"    RAISE EXCEPTION 'budget_define(%): no registered instance has incarnation %', p_name,\n" \
	"      quote_nullable(left(p_incarnation, 70)) USING ERRCODE = '22023';\n" \
	"  END IF;\n" \
	"  DELETE FROM @S@.budget_defs d WHERE d.name = p_name\n" \
	"     AND NOT EXISTS (SELECT 1 FROM @S@.instances i WHERE i.id = d.instance);\n" \
	"  INSERT INTO @S@.budget_defs AS o (name, instance, fingerprint, definition)\n" \
	"    VALUES (p_name, me, p_fingerprint, p_definition)\n" \
	"    ON CONFLICT (name, instance) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,\n" \
	"      definition = EXCLUDED.definition, defined_at = now();\n" \
	"  RETURN COALESCE((SELECT jsonb_agg(jsonb_build_object('instance', x.instance,\n" \
	"      'definition', x.definition) ORDER BY x.instance)\n" \
	"    FROM (SELECT instance, definition FROM @S@.budget_defs\n" \
	"           WHERE name = p_name AND instance <> me AND fingerprint <> p_fingerprint\n" \
	"           ORDER BY instance LIMIT 20) x), '[]'::jsonb);\n" \
	"END $f$;\n"

#endif
