# Strategy flag against the sample application (HTTP source and destination): 1,500 pending
# records over pages of 100 delivered once and marked with the id the destination answered;
# refused records stay pending in the retry queue; failed markings are retried without
# delivering again unless the record changed; a record edited in flight stays pending; a run
# with nothing pending costs one source request and writes no strategy state.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"orders","n":1500,"extra":{"synced":false}}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "http"; url = "$SA/api/orders";
		query = [ "synced=false", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; };
		mark = { method = "PATCH"; url = "$SA/api/orders/{{key}}?_if_v={{record.v}}";
			 body = "{\"synced\": true, \"erpId\": {{dest.erpId}}}"; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; body = "{{record}}"; }; } );
CONF
stats() { sa GET "/_ctl/stats?coll=$1"; }
pending() { sa GET "/api/orders?synced=false" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
deliveries() { stats erp | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), max(d.values()) if d else 0)'; }
marks_match() { # every marked order carries the erpId the destination gave its copy
	sa GET /_ctl/dump?coll=orders >"$T/o.json"; sa GET /_ctl/dump?coll=erp >"$T/e.json"
	python3 - "$T/o.json" "$T/e.json" <<'PY'
import json, sys
o = {r["id"]: r for r in json.load(open(sys.argv[1]))}; e = {r["id"]: r for r in json.load(open(sys.argv[2]))}
bad = [k for k, r in o.items() if r.get("synced") and (k not in e or r.get("erpId") != e[k]["erpId"])]
assert not bad, f"{len(bad)} marked orders without the destination's erpId: {bad[:5]}"
PY
}

# 1. 1,500 pending over 15 pages: delivered once each, all marked with the erpId
once "$T/c.conf" || fail "first run exited $?"
[ "$(pending)" = 0 ] || fail "$(pending) orders still pending"
[ "$(deliveries)" = "1500 1" ] || fail "deliveries (total, max per key): $(deliveries)"
marks_match || fail "markings do not carry the destination's id"

# 2. the destination refuses 5%: those stay pending and queued, the rest is marked
sa POST /_ctl/gen '{"coll":"orders","n":1000,"extra":{"synced":false}}' >/dev/null
sa POST /_ctl/reset_stats?coll=erp '{}' >/dev/null
refuse=$(python3 -c 'print(",".join(str(i) for i in range(1, 1001, 20)))')
sa POST /_ctl/fault "{\"coll\":\"erp\",\"method\":\"POST\",\"keys\":[$refuse],\"status\":422,\"body\":\"{\\\"error\\\":\\\"rejected\\\"}\"}" >/dev/null
once "$T/c.conf" || fail "run with refusals exited $?"
[ "$(pending)" = 50 ] || fail "$(pending) pending after refusals, expected 50"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE last_error LIKE '%422%'")" = 50 ] || fail "refused records not in the retry queue"
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "retry run exited $?"
[ "$(pending)" = 0 ] || fail "$(pending) pending after the destination accepted"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "retry queue not empty"
marks_match || fail "markings after retry"

# 3. marking fails (500 to PATCH) for 20 records: marked next run without a second delivery,
#    unless the record changed meanwhile
sa POST /_ctl/gen '{"coll":"orders","n":300,"extra":{"synced":false}}' >/dev/null
sa POST /_ctl/reset_stats?coll=erp '{}' >/dev/null
nomark=$(python3 -c 'print(",".join(str(i) for i in range(5, 300, 15)))')
sa POST /_ctl/fault "{\"coll\":\"orders\",\"method\":\"PATCH\",\"keys\":[$nomark],\"status\":500}" >/dev/null
once "$T/c.conf" || fail "run with failing markings exited $?"
[ "$(pending)" = 20 ] || fail "$(pending) pending, expected the 20 unmarked"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 20 ] || fail "unmarked records not remembered"
sa DELETE /_ctl/fault >/dev/null
sa POST /_ctl/update '{"coll":"orders","key":"5","set":{"name":"changed meanwhile","v":2}}' >/dev/null
once "$T/c.conf" || fail "marking run exited $?"
[ "$(pending)" = 0 ] || fail "$(pending) still pending"
d=$(stats erp | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), d.get("5"), d.get("20"))')
[ "$d" = "301 2 1" ] || fail "deliveries (total, key 5, key 20): $d; expected only the changed record again"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 0 ] || fail "unmarked memory not cleared"
sa GET /api/erp/5 | grep -q 'changed meanwhile' || fail "the changed record was not delivered with its new content"

# 4. a record edited while its run is in flight stays pending and goes again
sa POST /_ctl/gen '{"coll":"orders","n":10,"extra":{"synced":false}}' >/dev/null
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[7],"hold":true,"times":1}' >/dev/null
# the edit happens while the delivery of record 7 is held (surely in flight), then it is let go
( r=0; if wait_for 20 held_ge 1 erp; then
	sa POST /_ctl/update '{"coll":"orders","key":"7","set":{"name":"edited in flight","v":5}}' >/dev/null || r=1
  else r=1; fi; sa_release erp; exit $r ) &
editor=$!
once "$T/c.conf" || fail "in-flight run exited $?"
wait "$editor" || fail "the delivery of record 7 was never seen in flight (or the edit failed)"
[ "$(pending)" = 1 ] || fail "$(pending) pending; the record edited in flight must stay pending"
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "follow-up run exited $?"
[ "$(pending)" = 0 ] || fail "edited record still pending"
sa GET /api/erp/7 | grep -q 'edited in flight' || fail "the edited content did not reach the destination"

# 5. nothing pending: one source request, no strategy state written
before=$(stats orders | python3 -c 'import json,sys; print(json.load(sys.stdin)["list_gets"])')
snap() { sql "$STATE" "SELECT (SELECT count(*) || ':' || COALESCE(max(xmin::text::bigint), 0) FROM onesync.failures) || '/' ||
	(SELECT count(*) || ':' || COALESCE(max(xmin::text::bigint), 0) FROM onesync.unmarked) || '/' ||
	(SELECT count(*) || ':' || COALESCE(max(xmin::text::bigint), 0) FROM onesync.seen) || '/' ||
	(SELECT md5(string_agg(concat_ws(',', name, watermark, watermark_key, paused), ';')) FROM onesync.jobs)"; }
s1=$(snap)
once "$T/c.conf" || fail "idle run exited $?"
after=$(stats orders | python3 -c 'import json,sys; print(json.load(sys.stdin)["list_gets"])')
[ $((after - before)) = 1 ] || fail "an idle run made $((after - before)) source requests"
[ "$(snap)" = "$s1" ] || fail "an idle run wrote strategy state"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs ORDER BY id DESC LIMIT 1")" = ok ] || fail "idle run not recorded"
