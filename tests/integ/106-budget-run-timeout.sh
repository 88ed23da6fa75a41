# A budget's wait longer than what is left of the run's run_timeout ends the run as
# "throttled until T" at its last checkpoint, as a wait past park_after does: not timed out,
# not failed. run_timeout 2s, park_after 1m, the server blocks the budget for 6 s (429 with
# Retry-After: 6). The run history, onesyncctl jobs and --once's exit status (75) say
# throttled; no run counts as failed; the daemon runs the job again at T and finishes it.
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
cat >"$T/c.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; };
defaults = { interval = "1h"; retries = 0; run_timeout = "2s"; };
budgets = ( { name = "b"; match = [ "$SA/api/" ]; rate = [ "1000/1s" ]; park_after = "1m"; } );
jobs = ( { name = "j"; strategy = "modified"; key = "id";
  modified = { field = "updatedAt"; sorted = true; };
  source = { url = "$SA/api/s"; page = { style = "page"; size = 10; };
    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
  destination = { type = "http"; method = "PUT"; url = "$SA/api/d/{{key}}"; body = "{{record}}"; }; } );
C
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '$1'"; }
history() { sql "$STATE" "SELECT string_agg(result || coalesce(' (' || error || ')', ''), '; ' ORDER BY id) FROM onesync.runs"; }
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null

# 1. --once: the run ends throttled when its time is up, exit 75
sa POST /_ctl/block '{"prefix":"/api/","seconds":6}' >/dev/null
t0=$(date +%s%N)
once "$T/c.conf"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
note "run_timeout 2s, Retry-After 6: exit $rc after $ms ms; runs: $(history)"
[ "$rc" = 75 ] || fail "--once exited $rc, not 75 (throttled); runs: $(history)"
[ "$(runs throttled)" = 1 ] || fail "no throttled run: $(history)"
[ "$(runs failed)" = 0 ] || fail "a run failed: $(history)"
err=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE result = 'throttled'")
echo "$err" | grep -Eq '^throttled until [0-9]{2}:[0-9]{2}:[0-9]{2} by budget b \(refusal [0-9a-f]{16}\): a wait longer than what was left of its run_timeout of 2000 ms$' ||
	fail "the throttled run says: $err"
"$CTL" -c "$T/c.conf" jobs >"$T/jobs.txt" 2>&1 || fail "onesyncctl jobs: $(cat "$T/jobs.txt")"
grep -Eq '^j .*throttled until [0-9]{2}:[0-9]{2}:[0-9]{2}' "$T/jobs.txt" ||
	fail "onesyncctl jobs does not say throttled until: $(cat "$T/jobs.txt")"
grep -q 'run took longer than its run_timeout' "$T/daemon.log" && fail "a run was reported as timed out"
[ "$ms" -lt 5500 ] || fail "the run ended $ms ms after it began: not at its run_timeout of 2 s"

# 2. the daemon: throttled again, then the next run at T finishes the work, none failed
sa POST /_ctl/reset_stats >/dev/null
sleep 6	# the first block is over
sa POST /_ctl/block '{"prefix":"/api/","seconds":6}' >/dev/null
daemon_start "$T/c.conf"
wait_for 15 eval '[ "$(runs throttled)" -ge 2 ]' || fail "the daemon's run was not throttled: $(history)"
t1=$(date +%s)
wait_for 20 same_colls s d id,name,updatedAt,v || fail "the job did not resume: $(history); $(tail -5 "$T/daemon.log")"
note "resumed $(( $(date +%s) - t1 )) s after the throttled run; runs: $(history)"
[ "$(runs ok)" -ge 1 ] || fail "no run ended ok: $(history)"
[ "$(runs failed)" = 0 ] || fail "a run failed: $(history)"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon did not exit 0"
grep -q 'run took longer than its run_timeout' "$T/daemon.log" && fail "a run was reported as timed out"
exit 0
