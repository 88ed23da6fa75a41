# Two instances with different job lists and definitions share one state store.
# x has only0..only9 (which y lacks), common (interval 1s) and moved (destination d-x);
# y has common (interval 2s, batch 7: harmless keys), moved (destination d-y: another
# definition), and late, which x has too but disabled. Every job runs on an instance that
# has it (x's own jobs keep running after y joins; late runs on y); y logs moved's definition
# mismatch once, at warning, naming what changed, shows it in /metrics and never runs it,
# not even once x is gone; onesyncctl jobs says so; onesyncctl reset moved lets y adopt its
# definition (the stored watermark is forgotten, the metric goes back to 0).
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
job() {	# job NAME SRC DEST [EXTRA]
	echo "{ name = \"$1\"; strategy = \"modified\"; key = \"id\"; ${4:-}
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/$2\"; page = { style = \"page\"; size = 10; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/$3/{{key}}\"; body = \"{{record}}\"; }; }"
}
conf() {	# conf NAME STATUS-PORT JOB...
	local n=$1 p=$2; shift 2
	{
		echo "state = { conninfo = \"$STATE\"; };"
		echo "daemon = { instance = \"$n\"; lease = \"3s\"; stop_timeout = \"5s\"; status_listen = \"127.0.0.1:$p\"; };"
		echo "defaults = { interval = \"1s\"; jitter = \"100ms\"; retries = 0; };"
		echo "jobs = ("
		local first=1 j
		for j in "$@"; do [ $first = 1 ] || echo ","; first=0; echo "$j"; done
		echo ");"
	} >"$T/$n.conf"
}
XJOBS=()
for i in $(seq 0 9); do
	sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":5}" >/dev/null
	XJOBS+=("$(job only$i s$i d$i)")
done
for c in common moved late; do sa POST /_ctl/gen "{\"coll\":\"$c\",\"n\":5}" >/dev/null; done
PX=$(free_port); PY=$(free_port)
conf x "$PX" "${XJOBS[@]}" "$(job common common d-common)" "$(job moved moved d-x)" \
	"$(job late late d-late 'enabled = false;')"
conf y "$PY" "$(job common common d-common 'interval = "2s"; batch = 7; run_timeout = "1m";')" \
	"$(job moved moved d-y)" "$(job late late d-late)"
"$ONESYNCD" -t -c "$T/x.conf" >/dev/null && "$ONESYNCD" -t -c "$T/y.conf" >/dev/null || fail "config check"
start() { "$ONESYNCD" -c "$T/$1.conf" >>"$T/inst-$1.log" 2>&1 & eval "P_$1=$!"; PIDS+=($!); }
ok_runs() {	# ok_runs JOB INSTANCE [AFTER-EPOCH-SECONDS]
	sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND instance = '$2'
		AND result = 'ok' AND started_at > to_timestamp(${3:-0})"
}
at_least() { [ "$(ok_runs "$1" "$2" "${4:-0}")" -ge "$3" ]; }

# x alone: its jobs run, moved's state is written with x's definition
start x
wait_for 30 at_least moved x 1 || fail "moved never ran on x"
wm=$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'moved'")
[ -n "$wm" ] || fail "moved has no watermark"

# y joins
t0=$(date +%s)
start y
in_live() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.instances WHERE id = 'y'")" = 1 ]; }
wait_for 20 in_live || fail "y did not join"
everyone_ran() {
	local i
	for i in $(seq 0 9); do at_least only$i x 2 "$t0" || return 1; done
	at_least late y 1 "$t0"
}
wait_for 30 everyone_ran || fail "not every job ran on an instance that has it since y joined: $(for i in $(seq 0 9); do echo -n "only$i:$(ok_runs only$i x "$t0") "; done)late:$(ok_runs late y "$t0")"
[ "$(ok_runs late x)" = 0 ] || fail "late ran on x, where it is disabled"
wait_for 20 grep -q 'moved.*its definition differs from the one its state was written with (changed: destination)' "$T/inst-y.log" ||
	fail "y did not log moved's definition mismatch"
grep 'moved.*its definition differs' "$T/inst-y.log" | head -1 | grep -q '^<4>' || fail "the mismatch is not logged at warning: $(grep 'its definition differs' "$T/inst-y.log" | head -1)"
grep -q 'onesyncctl reset moved' "$T/inst-y.log" || fail "the message does not say how to start over"
grep -q 'common.*definition' "$T/inst-y.log" && fail "common's harmless differences (interval, batch, run_timeout) counted as a definition change"
metric() { curl -sS --max-time 5 "http://127.0.0.1:$1/metrics" | grep "^onesync_job_definition_mismatch{job=\"$2\"}"; }
[ "$(metric "$PY" moved)" = 'onesync_job_definition_mismatch{job="moved"} 1' ] || fail "y's /metrics: $(metric "$PY" moved)"
[ "$(metric "$PY" common)" = 'onesync_job_definition_mismatch{job="common"} 0' ] || fail "y's /metrics for common: $(metric "$PY" common)"
[ "$(metric "$PX" moved)" = 'onesync_job_definition_mismatch{job="moved"} 0' ] || fail "x's /metrics: $(metric "$PX" moved)"

# x stops: y takes common, never moved (its state belongs to x's definition)
kill -TERM "$P_x"; wait "$P_x" || fail "x did not exit 0"
t1=$(date +%s)
wait_for 30 at_least common y 2 "$t1" || fail "common did not move to y"
[ "$(ok_runs moved y)" = 0 ] || fail "y ran moved with another definition"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'moved' AND instance = 'y'")" = 0 ] ||
	fail "y started a run of moved"
[ "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'moved'")" = "$wm" ] || fail "moved's watermark changed"
[ "$(sa GET /_ctl/dump?coll=d-y)" = "[]" ] || fail "records were written to y's destination of moved"
n=$(grep -c 'moved.*its definition differs' "$T/inst-y.log")
[ "$n" = 1 ] || fail "the mismatch was logged $n times, not once"
"$CTL" -c "$T/y.conf" jobs >"$T/jobs.txt" || fail "onesyncctl jobs"
grep -q '^moved .*definition changed (destination)' "$T/jobs.txt" || fail "onesyncctl jobs: $(cat "$T/jobs.txt")"
"$CTL" -c "$T/y.conf" --json jobs | python3 -c 'import json,sys; j={o["name"]: o for o in json.load(sys.stdin)}
assert j["moved"]["state"] == "definition_changed" and j["moved"]["definition_changed"] == "destination", j["moved"]
assert j["common"]["state"] != "definition_changed"' || fail "onesyncctl jobs --json"

# reset: y adopts its definition and reads everything again into its destination
"$CTL" -c "$T/y.conf" reset moved --yes >"$T/reset.txt" || fail "reset"
grep -q 'definition had changed' "$T/reset.txt" || fail "reset output: $(cat "$T/reset.txt")"
wait_for 30 at_least moved y 1 || fail "moved did not run on y after the reset"
wait_for 10 same_colls moved d-y id,name,updatedAt || fail "y's destination of moved differs from its source"
wait_for 10 eval '[ "$(metric "$PY" moved)" = "onesync_job_definition_mismatch{job=\"moved\"} 0" ]' || fail "the metric stays at 1 after the reset"
grep -q 'moved.*agrees again' "$T/inst-y.log" || fail "no notice that moved's definition agrees again"
kill -TERM "$P_y"; wait "$P_y" || fail "y did not exit 0"
