# contrib/sql/flag-reset-trigger.sql: a marked row edited in the source becomes pending again
# and is sent again; onesyncd's own marking does not reset it.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, customer text, synced boolean NOT NULL DEFAULT false,
	erp_id int, updated_at timestamptz NOT NULL DEFAULT now());
	INSERT INTO orders (id, customer) SELECT i, 'c' || i FROM generate_series(1, 200) i;"
psql -X -q -v ON_ERROR_STOP=1 "$SRC" -f "$TOP/contrib/sql/flag-reset-trigger.sql" >/dev/null || fail "the trigger script does not load"
sql "$SRC" "CREATE TRIGGER orders_resync BEFORE UPDATE ON orders FOR EACH ROW
	EXECUTE FUNCTION onesync_reset_flag('synced', 'false', 'erp_id', 'updated_at')"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
	mark = { set = { synced = "true"; erp_id = "{{dest.erpId}}"; }; }; };
   destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; }; } );
CONF
once "$T/c.conf" || fail "first run exited $?"
[ "$(sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced")" = 0 ] || fail "the marking was undone by the trigger"
sql "$SRC" "UPDATE orders SET customer = 'new name' WHERE id = 42"
sql "$SRC" "UPDATE orders SET updated_at = now() WHERE id = 43"
[ "$(sql "$SRC" "SELECT string_agg(id::text, ',') FROM orders WHERE NOT synced")" = 42 ] ||
	fail "pending after edits: $(sql "$SRC" "SELECT string_agg(id::text, ',') FROM orders WHERE NOT synced") (expected 42 only)"
once "$T/c.conf" || fail "second run exited $?"
[ "$(sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced")" = 0 ] || fail "row 42 not marked again"
d=$(sa GET /_ctl/stats?coll=erp | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(d.get("42"), d.get("43"), sum(d.values()))')
[ "$d" = "2 1 201" ] || fail "deliveries (42, 43, total): $d"
sa GET /api/erp/42 | grep -q '"new name"' || fail "the edit did not reach the destination"
