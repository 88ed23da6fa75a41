# The pipelined run of strategy flag (1,000 pending orders of the sample application, batches
# of 100 delivered by POST and marked by PATCH) keeps its guarantees. While batch 1's marking
# is held, batch 2 is delivered, and no more: batch 2 is not marked and nothing of batch 3 goes
# before batch 1's checkpoint, and nothing is checkpointed before batch 1's marking ends. A
# refused record (HTTP 422) stays pending in the retry queue; a record whose marking fails
# (HTTP 500) is remembered as delivered but not marked; every other record is delivered once
# and marked with the destination's id; the next run delivers the refused one and marks the
# unmarked one without delivering it again. Then the lease is taken away while batch 1's
# checkpoint waits and batch 2 is delivered: the run stops, batch 2 is never marked, nothing
# after it is delivered, and the run writes no state.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/pipeline.inc"
JOB=orders
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"orders","n":1000,"extra":{"synced":false}}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "60s"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; timeout = "120s"; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "http"; url = "$SA/api/orders";
		query = [ "synced=false", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; };
		mark = { method = "PATCH"; url = "$SA/api/orders/{{key}}?_if_v={{record.v}}";
			 body = "{\"synced\": true, \"erpId\": {{dest.erpId}}}"; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; body = "{{record}}"; }; } );
CONF
# erp FROM TO: how many times each order in [FROM, TO] was delivered, as "min max"
erp() { stat erp "min(s['deliveries'].get(str(k), 0) for k in range($1, $2 + 1)), max(s['deliveries'].get(str(k), 0) for k in range($1, $2 + 1))"; }
erp_ge() { [ "$(stat erp "s['deliveries'].get('$1', 0)")" -ge 1 ]; }
# marked FROM TO: how many orders in [FROM, TO] are marked (synced, with the erpId their copy got)
marked() {
	sa GET /_ctl/dump?coll=orders >"$T/o.json"; sa GET /_ctl/dump?coll=erp >"$T/e.json"
	python3 - "$T/o.json" "$T/e.json" "$1" "$2" <<'PY'
import json, sys
o = {int(r["id"]): r for r in json.load(open(sys.argv[1]))}
e = {int(r["id"]): r for r in json.load(open(sys.argv[2]))}
lo, hi = int(sys.argv[3]), int(sys.argv[4])
print(sum(1 for k in range(lo, hi + 1) if o[k].get("synced") and k in e and o[k].get("erpId") == e[k]["erpId"]))
PY
}
seq_result() { sql "$STATE" "SELECT checkpoint_seq || ' ' || result FROM onesync.runs ORDER BY id DESC LIMIT 1"; }

# 1. batch 1's marking is held: batch 2 is delivered meanwhile, and no more
sa POST /_ctl/fault '{"coll":"orders","method":"PATCH","keys":[100],"hold":true,"times":1}' >/dev/null
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[350],"status":422}' >/dev/null
sa POST /_ctl/fault '{"coll":"orders","method":"PATCH","keys":[450],"status":500}' >/dev/null
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 orders || fail "batch 1's marking was not held"
wait_for 30 erp_ge 200 || fail "batch 2 was not delivered while batch 1 was being marked"
sleep 0.5	# what would go wrongly has the time to
[ "$(erp 1 200)" = "1 1" ] || fail "batches 1-2 delivered $(erp 1 200) times"
[ "$(erp 201 1000)" = "0 0" ] || fail "batch 3 went before batch 1's checkpoint"
[ "$(marked 101 200)" = 0 ] || fail "$(marked 101 200) orders of batch 2 marked before batch 1's checkpoint"
[ "$(seq_result)" = "0 running" ] || fail "state written before batch 1's marking ended: $(seq_result)"
sa_release orders
wait "$O_PID" || fail "the run exited $?: $(tail -3 "$T/daemon.log")"
[ "$(erp 1 349)" = "1 1" ] && [ "$(erp 351 1000)" = "1 1" ] ||
	fail "the first run delivered $(erp 1 349), $(erp 351 1000) times per record"
[ "$(erp 350 350)" = "0 0" ] || fail "the refused record counts as delivered"
[ "$(marked 1 1000)" = 998 ] || fail "$(marked 1 1000) orders marked, not 998 (all but the refused and the unmarked one)"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures WHERE job = 'orders'")" = 350 ] ||
	fail "the retry queue holds: $(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures")"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.unmarked WHERE job = 'orders'")" = 450 ] ||
	fail "remembered as not marked: $(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.unmarked")"
[ "$(sql "$STATE" "SELECT result || ' ' || records_read || ' ' || delivered || ' ' || failed FROM onesync.runs ORDER BY id DESC LIMIT 1")" = "ok 1000 999 1" ] ||
	fail "the first run is recorded as: $(sql "$STATE" "SELECT result, records_read, delivered, failed FROM onesync.runs ORDER BY id DESC LIMIT 1")"

# 2. the next run delivers the refused record and marks both, delivering nothing else
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "the second run exited $?"
[ "$(erp 1 1000)" = "1 1" ] || fail "after the second run, records delivered $(erp 1 1000) times"
[ "$(marked 1 1000)" = 1000 ] || fail "$(marked 1 1000) orders marked after the second run"
[ "$(sql "$STATE" "SELECT (SELECT count(*) FROM onesync.failures) + (SELECT count(*) FROM onesync.unmarked)")" = 0 ] ||
	fail "the retry queue or the unmarked list is not empty"

# 3. the lease is taken away while batch 1's checkpoint waits and batch 2 is delivered
sa POST /_ctl/gen '{"coll":"orders","n":1000,"extra":{"synced":false}}' >/dev/null
sa POST /_ctl/reset_stats?coll=erp '{}' >/dev/null
sa POST /_ctl/fault '{"coll":"orders","method":"PATCH","keys":[100],"hold":true,"times":1}' >/dev/null
: >"$T/daemon.log"
runs0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs")
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 orders || fail "batch 1's marking was not held (lease test)"
lock_job "UPDATE onesync.jobs SET epoch = epoch + 1 WHERE name = 'orders';"
sa_release orders
wait_for 30 ck_waits || fail "batch 1's checkpoint did not wait for the locked job row"
wait_for 30 erp_ge 200 || fail "batch 2 was not delivered while batch 1's checkpoint waited"
unlock
wait "$O_PID" && fail "the run whose lease was taken exited 0"
grep -q 'lease lost' "$T/daemon.log" || fail "no 'lease lost' line"
sleep 0.5
[ "$(marked 101 1000)" = 0 ] || fail "$(marked 101 1000) orders after batch 1 marked after the lease was lost"
[ "$(erp 201 1000)" = "0 0" ] || fail "records after batch 2 were delivered after the lease was lost"
[ "$(seq_result)" = "0 running" ] || fail "the run wrote state after losing its lease: $(seq_result)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs")" = $((runs0 + 1)) ] || fail "runs were added"
exit 0
