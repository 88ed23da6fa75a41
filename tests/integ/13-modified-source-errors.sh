# The source answers 500, truncated JSON, or too slowly: the run fails with a log line naming
# the job and the URL, the watermark does not move, and a later run succeeds.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":300}' >/dev/null
TIMEOUT=1s write_conf "$T/c.conf"
once "$T/c.conf" || fail "first run"
wm0=$(sql "$STATE" "SELECT watermark FROM onesync.jobs")
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":50,"insert":20,"field":"updatedAt"}' >/dev/null
for fault in '"status":500' '"truncate":true' '"delay_ms":3000'; do
	: >"$T/daemon.log"
	sa POST /_ctl/fault "{\"coll\":\"contacts\",\"method\":\"GET\",$fault}" >/dev/null
	once "$T/c.conf" && fail "run with fault $fault exited 0"
	grep -q "job=contacts .*run failed.*$SA/api/contacts" "$T/daemon.log" || fail "no failure line naming job and URL for $fault"
	case $fault in
	*500*) grep -q 'HTTP 500' "$T/daemon.log" || fail "500 not named";;
	*truncate*) grep -q 'malformed JSON' "$T/daemon.log" || fail "truncation not named";;
	*delay*) grep -qi 'timeout\|timed out' "$T/daemon.log" || fail "timeout not named";;
	esac
	[ "$(sql "$STATE" "SELECT watermark FROM onesync.jobs")" = "$wm0" ] || fail "watermark moved on $fault"
	[ "$(last_run result)" = failed ] || fail "run not recorded as failed"
	sa DELETE /_ctl/fault >/dev/null
done
once "$T/c.conf" || fail "run after the faults exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs after recovery"
