# The pipelined run of strategy capture (a 1,000-row CSV file, batches of 100, delivered by
# PUT to the sample application) keeps its guarantees. While batch 1's checkpoint is held
# (its job row locked in the state database), batch 2 is delivered, and no more: nothing of
# batch 3 goes before batch 2's checkpoint, and no hash is stored before batch 1's
# checkpoint commits. A refused record in batch 3 (HTTP 422) goes to the retry queue, its
# hash not stored; every other record is delivered exactly once and its hash stored; the
# next run delivers the refused one alone (the sample application counts accepted PUTs). Then the lease is taken away while batch 1's
# checkpoint waits and batch 2 is in delivery: the run stops, nothing of it is stored, no
# record after batch 2 is delivered.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/pipeline.inc"
JOB=items
sa_start
STATE=$(new_db state)
# gen START: items.csv, ids 1-1000 (in file order), every value derived from START
gen() {
	python3 - "$T/items.csv" "$1" <<'PY'
import sys
with open(sys.argv[1] + ".new", "w") as f:
    f.write("id,name,qty\n")
    for i in range(1, 1001):
        f.write(f"{i},item {i} of {sys.argv[2]},{i % 7}\n")
PY
	mv "$T/items.csv.new" "$T/items.csv"
}
gen a
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "60s"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "120s"; };
jobs = ( { name = "items"; strategy = "capture"; key = "id"; batch = 100;
	source = { type = "file"; url = "file://$T/items.csv"; format = "csv"; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/customers/{{key}}"; body = "{{record}}"; }; } );
CONF
stored() { sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'items'"; }

# 1. batch 1's delivery is held until its checkpoint can be held too
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[100],"hold":true,"times":1}' >/dev/null
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[250],"status":422}' >/dev/null
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 customers || fail "batch 1's delivery was not held"
lock_job
sa_release customers
wait_for 30 ck_waits || fail "batch 1's checkpoint did not wait for the locked job row"
wait_for 30 delivered_ge 200 || fail "batch 2 was not delivered while batch 1's checkpoint was held"
sleep 0.5	# what would go wrongly has the time to
[ "$(deliveries 1 200)" = "1 1" ] || fail "batches 1-2 delivered $(deliveries 1 200) times"
[ "$(deliveries 201 1000)" = "0 0" ] || fail "batch 3 went before batch 2's checkpoint"
[ "$(stored)" = 0 ] || fail "$(stored) hashes stored while batch 1's checkpoint was held"
unlock
wait "$O_PID" || fail "the run exited $?: $(tail -3 "$T/daemon.log")"
[ "$(deliveries 1 249)" = "1 1" ] && [ "$(deliveries 251 1000)" = "1 1" ] ||
	fail "the first run delivered $(deliveries 1 249), $(deliveries 251 1000) times per record"
[ "$(deliveries 250 250)" = "0 0" ] || fail "the refused record counts as delivered"
[ "$(stored)" = 999 ] || fail "$(stored) hashes stored, not 999 (all but the refused record)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'items' AND key = '250'")" = 0 ] ||
	fail "the refused record's hash is stored"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures WHERE job = 'items'")" = 250 ] ||
	fail "the retry queue holds: $(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures")"
[ "$(sql "$STATE" "SELECT result || ' ' || records_read || ' ' || delivered || ' ' || failed FROM onesync.runs ORDER BY id DESC LIMIT 1")" = "ok 1000 999 1" ] ||
	fail "the first run is recorded as: $(sql "$STATE" "SELECT result, records_read, delivered, failed FROM onesync.runs ORDER BY id DESC LIMIT 1")"

# 2. the next run delivers the refused record alone
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "the second run exited $?"
[ "$(deliveries 1 1000)" = "1 1" ] || fail "after the second run, records delivered $(deliveries 1 1000) times"
[ "$(stat customers "s['total_deliveries']")" = 1000 ] ||
	fail "$(stat customers "s['total_deliveries']") deliveries over both runs, not 1,000"
[ "$(stored)" = 1000 ] || fail "$(stored) hashes stored after the second run"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "the retry queue is not empty"

# 3. the lease is taken away while batch 1's checkpoint waits and batch 2 is in delivery
gen b
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[100,200],"hold":true}' >/dev/null
: >"$T/daemon.log"
runs0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs")
hashes0=$(sql "$STATE" "SELECT md5(string_agg(key || hash, ',' ORDER BY key)) FROM onesync.records")
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 customers || fail "batch 1's delivery was not held (lease test)"
lock_job "UPDATE onesync.jobs SET epoch = epoch + 1 WHERE name = 'items';"
sa_release customers
wait_for 30 held_ge 1 customers || fail "batch 2's delivery did not start while batch 1's checkpoint waited"
unlock
wait "$O_PID" && fail "the run whose lease was taken exited 0"
grep -q 'lease lost' "$T/daemon.log" || fail "no 'lease lost' line"
sa_release customers
sleep 0.5
[ "$(sql "$STATE" "SELECT md5(string_agg(key || hash, ',' ORDER BY key)) FROM onesync.records")" = "$hashes0" ] ||
	fail "hashes were stored after the lease was lost"
[ "$(sql "$STATE" "SELECT checkpoint_seq || ' ' || result FROM onesync.runs ORDER BY id DESC LIMIT 1")" = "0 running" ] ||
	fail "the run wrote state after losing its lease: $(sql "$STATE" "SELECT checkpoint_seq, result FROM onesync.runs ORDER BY id DESC LIMIT 1")"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs")" = $((runs0 + 1)) ] || fail "runs were added"
[ "$(deliveries 1 200)" = "2 2" ] || fail "batches 1-2 of the changed file delivered $(deliveries 1 200) times"
[ "$(deliveries 201 249)" = "1 1" ] && [ "$(deliveries 251 1000)" = "1 1" ] ||
	fail "records after batch 2 were delivered after the lease was lost"
exit 0
