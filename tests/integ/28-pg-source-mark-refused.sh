#!/usr/bin/env bash
# Strategy flag over a PostgreSQL source whose trigger refuses the marking of one row
# (RAISE EXCEPTION, SQLSTATE P0001): the batch's marking is narrowed row by row like a
# destination's, so the other rows are marked and only that one waits, remembered as
# delivered but not marked (it is not delivered again).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, customer text, synced boolean NOT NULL DEFAULT false);
	INSERT INTO orders (id, customer) SELECT i, 'c' || i FROM generate_series(1, 20) i;
	CREATE FUNCTION no_mark_7() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
	  IF NEW.synced AND NOT OLD.synced AND NEW.id = 7 THEN
	    RAISE EXCEPTION 'order 7 may not be marked';
	  END IF;
	  RETURN NEW;
	END \$\$;
	CREATE TRIGGER no_mark_7 BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION no_mark_7();"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 20; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
	page = { size = 20; }; mark = { set = { synced = "true"; }; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/erp/{{key}}"; }; } );
CONF
once "$T/c.conf" || fail "first run exited $?"
[ "$(sql "$SRC" "SELECT string_agg(id::text, ',') FROM orders WHERE NOT synced")" = 7 ] ||
	fail "pending after the run: $(sql "$SRC" "SELECT string_agg(id::text, ',') FROM orders WHERE NOT synced") (only 7 expected)"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.unmarked WHERE job = 'orders'")" = 7 ] ||
	fail "record 7 is not remembered as delivered but not marked"
grep -q "order 7 may not be marked" "$T/daemon.log" || fail "the trigger's refusal is not in the log"
once "$T/c.conf" || fail "second run exited $?"
total=$(sa GET /_ctl/stats?coll=erp | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_deliveries"])')
[ "$total" = 20 ] || fail "$total deliveries for 20 records: record 7 went again"
note "one refused marking: 19 marked, record 7 remembered, nothing delivered twice"

# The same refusal from a row-level security policy (WITH CHECK, SQLSTATE 42501, which may
# also be the whole table's): narrowed too, so 19 rows are marked and only 6 waits.
psql -q -d postgres -c "DO \$\$BEGIN CREATE ROLE onesync_rls LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$" >/dev/null
sql "$SRC" "CREATE TABLE rls (id int PRIMARY KEY, customer text, synced boolean NOT NULL DEFAULT false);
	INSERT INTO rls (id, customer) SELECT i, 'c' || i FROM generate_series(1, 20) i;
	ALTER TABLE rls OWNER TO onesync_rls; ALTER TABLE rls ENABLE ROW LEVEL SECURITY;
	ALTER TABLE rls FORCE ROW LEVEL SECURITY;
	CREATE POLICY r ON rls USING (true) WITH CHECK (id <> 6);"
SRC_RLS=${SRC/user=postgres/user=onesync_rls}
sed -e "s|conninfo = \"$SRC\"|conninfo = \"$SRC_RLS\"|" -e 's|table = "orders"|table = "rls"|' \
    -e 's|name = "orders"|name = "rls"|' -e 's|api/erp/|api/erprls/|' "$T/c.conf" >"$T/r.conf"
once "$T/r.conf" || fail "rls: the run exited $?"
[ "$(sql "$SRC" "SELECT string_agg(id::text, ',') FROM rls WHERE NOT synced")" = 6 ] ||
	fail "rls: pending after the run: $(sql "$SRC" "SELECT string_agg(id::text, ',') FROM rls WHERE NOT synced") (only 6 expected)"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.unmarked WHERE job = 'rls'")" = 6 ] ||
	fail "rls: record 6 is not remembered as delivered but not marked"
note "rls: 19 marked, record 6 remembered"
# A role that may read the table but not update it (permission denied for the whole table,
# every row alike): no row is marked, every record is remembered as delivered but not
# marked, and none is delivered again.
sql "$SRC" "CREATE TABLE nomark (id int PRIMARY KEY, customer text, synced boolean NOT NULL DEFAULT false);
	INSERT INTO nomark (id, customer) SELECT i, 'c' || i FROM generate_series(1, 20) i;
	GRANT SELECT ON nomark TO onesync_rls;"
sed -e 's|table = "rls"|table = "nomark"|' -e 's|name = "rls"|name = "nomark"|' \
    -e 's|api/erprls/|api/erpnomark/|' "$T/r.conf" >"$T/n.conf"
once "$T/n.conf"
once "$T/n.conf"
[ "$(sql "$SRC" "SELECT count(*) FROM nomark WHERE NOT synced")" = 20 ] || fail "nomark: rows marked without the privilege"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'nomark'")" = 20 ] ||
	fail "nomark: $(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'nomark'") records remembered as not marked, expected 20"
total=$(sa GET /_ctl/stats?coll=erpnomark | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_deliveries"])')
[ "$total" = 20 ] || fail "nomark: $total deliveries for 20 records"
grep -q "permission denied for table nomark" "$T/daemon.log" || fail "nomark: the error is not in the log"
note "nomark: nothing marked, 20 remembered, nothing delivered twice"
