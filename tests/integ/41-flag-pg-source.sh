# PostgreSQL as a source: strategy flag (pending condition, marking by UPDATE with the
# destination's id, compare-and-set on updated_at, failed markings retried without a second
# delivery, refusals kept pending) and strategy modified (keyset on (updated_at, id): 2,000
# rows sharing one updated_at across pages delivered exactly once; a row joining that tie
# later with a lower key found; a later change picked up).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, customer text, total numeric(10,2),
	synced boolean NOT NULL DEFAULT false, erp_id int, updated_at timestamptz NOT NULL DEFAULT now());
	INSERT INTO orders (id, customer, total, updated_at)
	SELECT i, 'c' || i, (i % 500) + 0.99, '2026-03-01 12:00:00.123456+00'::timestamptz + (i / 1000) * interval '1 ms'
	  FROM generate_series(1, 2500) i;
	UPDATE orders SET updated_at = '2026-03-01 12:00:05+00' WHERE id BETWEEN 300 AND 2299;"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; };
jobs = (
 { name = "orders-flag"; strategy = "flag"; key = "id"; flag = { version = "updated_at"; };
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
	page = { size = 100; };
	mark = { set = { synced = "true"; erp_id = "{{dest.erpId}}"; }; }; };
   destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; }; },
 { name = "orders-modified"; strategy = "modified"; key = "id";
   modified = { field = "updated_at"; };
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders";
	columns = [ "id", "customer", "total", "updated_at" ]; page = { size = 100; }; };
   destination = { type = "http"; url = "$SA/api/copy/{{key}}"; }; },
 { name = "orders-settled"; strategy = "modified"; key = "id";
   modified = { field = "updated_at"; settle = "1h"; };
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; page = { size = 500; }; };
   destination = { type = "http"; url = "$SA/api/settled/{{key}}"; }; }
);
CONF
pending() { sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced"; }
deliv() { sa GET "/_ctl/stats?coll=$1" | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), max(d.values()) if d else 0)'; }

# flag: refuse 5%, fail the marking of 20 rows by making erp_id refuse them (CHECK)
sql "$SRC" "ALTER TABLE orders ADD CONSTRAINT no_13 CHECK (erp_id IS NULL OR erp_id % 1000 <> 13)"
refuse=$(python3 -c 'print(",".join(str(i) for i in range(7, 2501, 20)))')
sa POST /_ctl/fault "{\"coll\":\"erp\",\"method\":\"POST\",\"keys\":[$refuse],\"status\":422}" >/dev/null
once "$T/c.conf" orders-flag || fail "flag run exited $?"
n=$(pending); note "$n pending after the first flag run"
marked=$(sql "$SRC" "SELECT count(*) FROM orders WHERE synced AND erp_id IS NOT NULL")
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'orders-flag'")" = 125 ] || fail "refused rows not queued"
unm=$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'orders-flag'")
[ "$unm" = 3 ] || fail "$unm rows remembered as delivered-but-unmarked; the CHECK refuses exactly 3 markings (erp ids 13, 1013, 2013) and only those"
[ "$n" = $((125 + unm)) ] || fail "$n pending, expected 125 refused + $unm unmarked"
[ "$((marked + n))" = 2500 ] || fail "marked $marked + pending $n != 2500"
# every marked row carries the erpId its copy got
sa GET /_ctl/dump?coll=erp >"$T/erp.json"
sql "$SRC" "SELECT json_agg(json_build_object('id', id, 'erp_id', erp_id)) FROM orders WHERE synced" >"$T/marked.json"
python3 - "$T/erp.json" "$T/marked.json" <<'PY' || fail "erp_id written back differs from the destination's erpId"
import json, sys
erp = {r["id"]: r["erpId"] for r in json.load(open(sys.argv[1]))}
bad = [m for m in json.load(open(sys.argv[2])) if erp.get(m["id"]) != m["erp_id"]]
assert not bad, bad[:5]
PY
# the destination accepts again, the CHECK goes: the next run delivers the refused rows and
# marks the unmarked ones without delivering them again
sa DELETE /_ctl/fault >/dev/null
sql "$SRC" "ALTER TABLE orders DROP CONSTRAINT no_13"
before=$(deliv erp | cut -d' ' -f1)
once "$T/c.conf" orders-flag || fail "second flag run exited $?"
[ "$(pending)" = 0 ] || fail "$(pending) rows still pending"
after=$(deliv erp | cut -d' ' -f1)
[ $((after - before)) = 125 ] || fail "second run delivered $((after - before)), expected only the 125 refused"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 0 ] || fail "unmarked memory not cleared"

# compare-and-set: a row edited after it was read stays pending
sql "$SRC" "UPDATE orders SET synced = false WHERE id <= 10"
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[4],"hold":true,"times":1}' >/dev/null
# the edit happens while the delivery of row 4 is held (surely in flight), then it is let go
( r=0; if wait_for 20 held_ge 1 erp; then
	sql "$SRC" "UPDATE orders SET customer = 'edited', updated_at = now() WHERE id = 4" || r=1
  else r=1; fi; sa_release erp; exit $r ) & ed=$!
once "$T/c.conf" orders-flag || fail "CAS run exited $?"
wait "$ed" || fail "the delivery of row 4 was never seen in flight (or the edit failed)"
[ "$(sql "$SRC" "SELECT string_agg(id::text, ',') FROM orders WHERE NOT synced")" = 4 ] || fail "row 4 should stay pending"
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" orders-flag || fail "run after CAS exited $?"
[ "$(pending)" = 0 ] || fail "row 4 not synced after the edit"
sa GET /api/erp/4 | grep -q '"edited"' || fail "the edited content did not reach the destination"

# nothing pending: one read, a run row, nothing else
once "$T/c.conf" orders-flag || fail "idle run"
[ "$(sql "$STATE" "SELECT delivered FROM onesync.runs WHERE job = 'orders-flag' ORDER BY id DESC LIMIT 1")" = 0 ] || fail "idle run delivered"

# modified: 2,000 rows share one updated_at across pages of 100: each delivered exactly once
once "$T/c.conf" orders-modified || fail "modified run exited $?"
[ "$(deliv copy)" = "2500 1" ] || fail "modified deliveries (total, max per key): $(deliv copy)"
wm=$(sql "$STATE" "SELECT watermark || ' ' || watermark_key FROM onesync.jobs WHERE name = 'orders-modified'")
note "watermark $wm"
once "$T/c.conf" orders-modified || fail "second modified run"
[ "$(deliv copy)" = "2500 1" ] || fail "second modified run delivered again: $(deliv copy)"
# a row that reaches the watermark's timestamp after it was read, with a key below the
# watermark's key (a timestamp column coarser than the rate of changes): found by the next run
T9=$(sql "$SRC" "SELECT now()")
sql "$SRC" "UPDATE orders SET total = 9.10, updated_at = '$T9' WHERE id IN (10, 20)"
once "$T/c.conf" orders-modified || fail "modified run of the new tie"
[ "$(deliv copy)" = "2502 2" ] || fail "the new tie was not delivered once: $(deliv copy)"
[ "$(sql "$STATE" "SELECT watermark_key || ' ' || string_agg(key, ',' ORDER BY key) FROM onesync.jobs j
	JOIN onesync.seen s ON s.job = j.name WHERE j.name = 'orders-modified' GROUP BY j.watermark_key")" = "20 10,20" ] ||
	fail "the seen set should hold the tie at the watermark (10, 20)"
sql "$SRC" "UPDATE orders SET total = 7.5, updated_at = '$T9' WHERE id = 15"
once "$T/c.conf" orders-modified || fail "modified run after a late row in the tie"
[ "$(deliv copy)" = "2503 2" ] || fail "a row joining the tie below the watermark's key was not delivered once (or the tie again): $(deliv copy)"
sa GET /api/copy/15 | grep -q '"total": *7.5' || fail "row 15's change not at the destination: $(sa GET /api/copy/15)"
sql "$SRC" "UPDATE orders SET total = 1.23, updated_at = now() WHERE id IN (1, 1500, 2500)"
once "$T/c.conf" orders-modified || fail "third modified run"
[ "$(deliv copy)" = "2506 2" ] || fail "changed rows not delivered once more: $(deliv copy)"
sa GET /api/copy/1500 | grep -q '"total": *1.23' || fail "changed total not at the destination: $(sa GET /api/copy/1500)"
sa GET /api/copy/2 | grep -q '"total": *2.99' || fail "numeric value changed on the way: $(sa GET /api/copy/2)"

# settle by the source database's clock: rows changed within the last hour wait
once "$T/c.conf" orders-settled || fail "settled run exited $?"
recent=$(sql "$SRC" "SELECT count(*) FROM orders WHERE updated_at > now() - interval '1 hour'")
got=$(sa GET /_ctl/stats?coll=settled | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$recent" -ge 1 ] && [ "$got" = $((2500 - recent)) ] || fail "settle: took $got rows, expected $((2500 - recent)) ($recent are recent)"
