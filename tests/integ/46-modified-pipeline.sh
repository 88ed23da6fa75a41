# The pipelined run of strategy modified (sorted, seek paging, 100-record pages: page 1 holds
# records 1-100, page 2 101-199 (its request starts at record 100's timestamp, inclusive),
# page 3 200-298...) keeps its guarantees. While page 1's checkpoint is held (its job row locked in the state database),
# page 2 is delivered, and no more: nothing of page 3 goes before page 2's checkpoint, and
# the source is read at most two pages ahead. Page 3's delivery then fails (HTTP 500): the
# watermark stays at page 2's last record, and the next run delivers the rest, every record
# of pages 1, 2 and 4-11 exactly once over both runs, the runs' counts adding up to 1,000.
# Then the lease is taken away while page 1's checkpoint waits and page 2 is in delivery:
# the run stops, its watermark and checkpoints stay as they were, nothing after page 2 is
# written.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/pipeline.inc"
JOB=contacts
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":1000}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "60s"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "120s"; };
jobs = ( { name = "contacts"; strategy = "modified"; key = "id"; batch = 100;
	modified = { field = "updatedAt"; sorted = true; };
	source = { type = "http"; url = "$SA/api/contacts";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/customers/{{key}}"; body = "{{record}}"; }; } );
CONF
wm() { sql "$STATE" "SELECT coalesce(watermark, '(none)') FROM onesync.jobs WHERE name = 'contacts'"; }
PAGE2_LAST=2026-01-01T00:03:19.000Z	# record 199's updatedAt

# 1. page 1's delivery is held until its checkpoint can be held too
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[100],"hold":true,"times":1}' >/dev/null
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[250],"status":500}' >/dev/null
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 customers || fail "page 1's delivery was not held"
lock_job
sa_release customers
wait_for 30 ck_waits || fail "page 1's checkpoint did not wait for the locked job row"
wait_for 30 delivered_ge 199 || fail "page 2 was not delivered while page 1's checkpoint was held"
[ "$(deliveries 1 199)" = "1 1" ] || fail "pages 1-2 delivered $(deliveries 1 199) times"
[ "$(deliveries 200 298)" = "0 0" ] || fail "page 3 went before page 2's checkpoint"
gets=$(stat contacts "s['list_gets']")
[ "$gets" -le 4 ] || fail "the source was read $gets pages deep while page 1's checkpoint was held"
[ "$(wm)" = "(none)" ] || fail "a watermark was written while page 1's checkpoint was held: $(wm)"
unlock
wait "$O_PID" && fail "the run with a failing page 3 exited 0"
[ "$(wm)" = "$PAGE2_LAST" ] || fail "the watermark is $(wm), not page 2's last record $PAGE2_LAST"
grep -q "run failed.*HTTP 500.*watermark stays at $PAGE2_LAST" "$T/daemon.log" ||
	fail "no failure line with page 2's watermark"
[ "$(sql "$STATE" "SELECT result || ' ' || delivered FROM onesync.runs ORDER BY id DESC LIMIT 1")" = "failed 199" ] ||
	fail "first run recorded as: $(sql "$STATE" "SELECT result, delivered FROM onesync.runs ORDER BY id DESC LIMIT 1")"
[ "$(deliveries 299 1000)" = "0 0" ] || fail "pages after 3 were delivered by the failed run"

# 2. the next run reads again from page 2's watermark and delivers the rest once
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "the second run exited $?"
[ "$(stat customers "s['count']")" = 1000 ] || fail "the destination holds $(stat customers "s['count']") records"
[ "$(deliveries 1 199)" = "1 1" ] || fail "pages 1-2 delivered $(deliveries 1 199) times over both runs"
[ "$(deliveries 299 1000)" = "1 1" ] || fail "pages 4-11 delivered $(deliveries 299 1000) times over both runs"
d3=$(deliveries 200 298)
[ "$d3" = "1 1" ] || [ "$d3" = "1 2" ] || fail "page 3 delivered $d3 times (its partial delivery once more at most)"
[ "$(sql "$STATE" "SELECT sum(delivered) FROM onesync.runs")" = 1000 ] ||
	fail "the runs count $(sql "$STATE" "SELECT sum(delivered) FROM onesync.runs") deliveries, not 1000"
[ "$(wm)" = 2026-01-01T00:16:40.000Z ] || fail "the watermark ends at $(wm)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "the retry queue is not empty"

# 3. the lease is taken away while page 1's checkpoint waits and page 2 is in delivery
sa POST /_ctl/reset >/dev/null
sa POST /_ctl/gen '{"coll":"contacts","n":1000,"start":"2026-06-01T00:00:00.000Z"}' >/dev/null
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[100,199],"hold":true}' >/dev/null
: >"$T/daemon.log"
runs0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs")
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 customers || fail "page 1's delivery was not held (lease test)"
lock_job "UPDATE onesync.jobs SET epoch = epoch + 1 WHERE name = 'contacts';"
sa_release customers
wait_for 30 held_ge 1 customers || fail "page 2's delivery did not start while page 1's checkpoint waited"
unlock
wait "$O_PID" && fail "the run whose lease was taken exited 0"
grep -q 'lease lost' "$T/daemon.log" || fail "no 'lease lost' line"
sa_release customers
[ "$(wm)" = 2026-01-01T00:16:40.000Z ] || fail "the watermark moved after the lease was lost: $(wm)"
[ "$(sql "$STATE" "SELECT checkpoint_seq || ' ' || result FROM onesync.runs ORDER BY id DESC LIMIT 1")" = "0 running" ] ||
	fail "the run wrote state after losing its lease: $(sql "$STATE" "SELECT checkpoint_seq, result FROM onesync.runs ORDER BY id DESC LIMIT 1")"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs")" = $((runs0 + 1)) ] || fail "runs were added"
[ "$(deliveries 200 1000)" = "0 0" ] || fail "records after page 2 were written after the lease was lost"
