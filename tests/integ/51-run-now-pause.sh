# A run-now request (what `onesyncctl run` sends: run_requested_at + NOTIFY onesync_run)
# starts the run on the instance that owns the job at once, long before its interval; a
# paused job does not run, and runs again once resumed.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":100}' >/dev/null
INTERVAL=1h LEASE=30s write_conf "$T/c.conf"
daemon_start "$T/c.conf"
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok'" 2>/dev/null; }
runs_is() { [ "$(runs)" = "$1" ]; }
wait_for 20 runs_is 1 || fail "no first run"
request() { sql "$STATE" "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = 'contacts'; NOTIFY onesync_run, 'contacts'"; }
request; start=$(date +%s%N)
wait_for 5 runs_is 2 || fail "the run-now request did not start a run"
ms=$(( ($(date +%s%N) - start) / 1000000 )); note "run-now started and finished within ${ms} ms"
[ "$ms" -lt 1500 ] || fail "run-now took ${ms} ms"
[ "$(sql "$STATE" "SELECT run_requested_at IS NULL FROM onesync.jobs WHERE name = 'contacts'")" = t ] || fail "request not cleared"
# polling fallback: a request without NOTIFY is seen at the next lease tick (lease/3 = 10 s)
sql "$STATE" "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = 'contacts'"
wait_for 15 runs_is 3 || fail "a request without NOTIFY was not picked up by polling"
# pause: requests and schedules do nothing; resume: it runs again
sql "$STATE" "UPDATE onesync.jobs SET paused = true WHERE name = 'contacts'"
# the daemon takes up the request (run_start clears run_requested_at) and starts no run
taken_up() { [ "$(sql "$STATE" "SELECT run_requested_at IS NULL FROM onesync.jobs WHERE name = 'contacts'")" = t ]; }
request
wait_for 5 taken_up || fail "the daemon did not take up the run request of the paused job"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts'")" = 3 ] || fail "a paused job ran"
sql "$STATE" "UPDATE onesync.jobs SET paused = false WHERE name = 'contacts'"
request
wait_for 5 runs_is 4 || fail "the resumed job did not run"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit code $? after SIGTERM"
