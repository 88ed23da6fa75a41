# Request budgets on one instance, checked at the server (the sample application's record of
# what reached it): a rate holds in every sliding second; a 429 with Retry-After: 3 blocks the
# budget for every job, no request under it arrives during those 3 s, and no run fails; a
# long window used up ends the runs "throttled until T" (not failed) in the run history,
# onesyncctl jobs, /jobs and /metrics, and they resume at T and finish the work; a partial
# grant adds to the tokens left (a costly write gathers its cost at once).
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
NJ=3
job() {	# job N
	echo "{ name = \"job$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/s$1\"; page = { style = \"page\"; size = 10; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/d$1/{{key}}\"; body = \"{{record}}\"; }; }"
}
conf() {	# conf FILE BUDGET [DAEMON-EXTRA]
	{
		echo "state = { conninfo = \"$STATE\"; };"
		echo "daemon = { lease = \"5s\"; stop_timeout = \"5s\"; ${3:-} };"
		echo "defaults = { interval = \"1h\"; retries = 0; };"
		echo "budgets = ( { name = \"sample\"; match = [ \"$SA/api/\" ]; $2 } );"
		echo "jobs = ("
		for i in $(seq $NJ); do [ "$i" -gt 1 ] && echo ","; job "$i"; done
		echo ");"
	} >"$1"
}
seen() {	# seen QUERY FIELD
	sa GET "/_ctl/seen?$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '$1'"; }
all_same() { for i in $(seq $NJ); do same_colls "s$i" "d$i" id,name,updatedAt,v || return 1; done; }
for i in $(seq $NJ); do sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":20}" >/dev/null; done

# 1. 20 requests per second: 3 jobs x (3 reads + 20 writes) take at least 3 s
conf "$T/rate.conf" 'rate = [ "20/1s" ];'
t0=$(date +%s%N)
once "$T/rate.conf" || fail "the rated run failed: $(tail -5 "$T/daemon.log")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
all_same || fail "a destination differs from its source after the rated run"
n=$(seen "prefix=/api/&window_ms=1000" requests)
m=$(seen "prefix=/api/&window_ms=1000" max_in_window)
note "rate 20/1s: $n requests in $ms ms, at most $m in any second"
[ "$n" -ge 69 ] || fail "only $n requests reached the server"
[ "$m" -le 21 ] || fail "$m requests in one second under a budget of 20/1s (one chunk of 1 allowed)"
[ "$ms" -ge 2500 ] || fail "69 requests at 20/s took only $ms ms"

# 2. a 429 with Retry-After: 3 blocks every job under the budget for 3 s; no run fails
sa DELETE /_ctl/seen >/dev/null
for i in $(seq $NJ); do sa POST /_ctl/mutate "{\"coll\":\"s$i\",\"after_gets\":0,\"touch\":5,\"field\":\"updatedAt\"}" >/dev/null; done
sa POST /_ctl/block '{"prefix":"/api/","seconds":3}' >/dev/null
conf "$T/block.conf" 'rate = [ "1000/1s" ];'
t0=$(date +%s%N)
once "$T/block.conf" || fail "a run failed after the 429: $(grep -i 'fail\|429' "$T/daemon.log" | tail -5)"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
all_same || fail "a destination differs from its source after the block"
b=$(seen "prefix=/api/&grace_ms=100" after_block)
s429=$(sa GET "/_ctl/seen?prefix=/api/" | python3 -c "import json,sys; print(json.load(sys.stdin)['statuses'].get('429', 0))")
note "block: $s429 answers 429, $b requests during the block, the run took $ms ms"
[ "$s429" = 1 ] || fail "$s429 answers 429, expected the one block"
[ "$b" = 0 ] || fail "$b requests reached the server during the 3 s of Retry-After"
[ "$ms" -ge 2900 ] || fail "the runs ended $ms ms after a 3 s block began"
[ "$(runs failed)" = 0 ] || fail "$(runs failed) runs failed"
grep -q 'budget sample: blocked until' "$T/daemon.log" || fail "the block was not logged"

# 3. a window of 20 per 10 s used up: the runs end throttled, not failed, and resume at T
sa DELETE /_ctl/seen >/dev/null
for i in $(seq $NJ); do sa POST /_ctl/mutate "{\"coll\":\"s$i\",\"after_gets\":0,\"insert\":8,\"field\":\"updatedAt\"}" >/dev/null; done
port=$(free_port)
conf "$T/long.conf" 'rate = [ "100/1s", "20/10s" ]; park_after = "2s";' "status_listen = \"127.0.0.1:$port\";"
daemon_start "$T/long.conf"
wait_for 20 eval '[ "$(runs throttled)" -ge 1 ]' || fail "no run was throttled: $(tail -5 "$T/daemon.log")"
[ "$(runs failed)" = 0 ] || fail "$(runs failed) runs failed instead of being throttled"
err=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE result = 'throttled' LIMIT 1")
echo "$err" | grep -Eq 'throttled until [0-9]{2}:[0-9]{2}:[0-9]{2} by budget sample' || fail "the throttled run says: $err"
"$CTL" -c "$T/long.conf" jobs >"$T/jobs.txt" 2>&1 || fail "onesyncctl jobs: $(cat "$T/jobs.txt")"
grep -Eq 'throttled until [0-9]{2}:[0-9]{2}:[0-9]{2}' "$T/jobs.txt" || fail "onesyncctl jobs does not say throttled until: $(cat "$T/jobs.txt")"
wait_port "$port" || fail "no status endpoint"
curl -sS "http://127.0.0.1:$port/jobs" >"$T/jobs.json"
python3 - "$T/jobs.json" <<'PY' || fail "/jobs does not show a throttled job: $(cat "$T/jobs.json")"
import json, sys
jobs = json.load(open(sys.argv[1]))
assert any(j["state"] == "throttled" and j["throttled_until"] for j in jobs)
PY
curl -sS "http://127.0.0.1:$port/metrics" >"$T/metrics.txt"
grep -Eq '^onesync_budget_throttled_total\{budget="sample"\} [1-9]' "$T/metrics.txt" || fail "onesync_budget_throttled_total: $(grep budget "$T/metrics.txt")"
grep -Eq '^onesync_runs_total\{job="job[0-9]",result="throttled"\} [1-9]' "$T/metrics.txt" || fail "no throttled run in onesync_runs_total"
grep -q '^onesync_budget_wait_seconds_count{budget="sample"}' "$T/metrics.txt" || fail "no onesync_budget_wait_seconds"
wait_for 60 all_same || fail "the throttled jobs did not finish their work: $(tail -5 "$T/daemon.log")"
[ "$(runs failed)" = 0 ] || fail "$(runs failed) runs failed"
m=$(seen "prefix=/api/&window_ms=10000" max_in_window)
note "window 20/10s: at most $m requests in any 10 s, $(runs throttled) runs throttled"
[ "$m" -le 21 ] || fail "$m requests in 10 s under a budget of 20/10s"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon did not exit 0"

# 4. a partial grant adds to the tokens left, not replaces them: 40 per 10 s, 36 of them
# taken already (by another instance, played by psql); the run's read (cost 1) takes a chunk
# of 2 and leaves 1; its write costs 3, and the 2 that are left in the window come as a
# partial grant: with the 1 left before, that makes 3, and the write goes at once. Were the
# partial grant to replace the 1, the write would wait for the window, some 11 s.
kill -0 "$D_PID" 2>/dev/null && fail "the daemon of part 3 still runs"
sql "$STATE" "DROP SCHEMA onesync CASCADE" >/dev/null 2>&1
sa POST /_ctl/reset >/dev/null
NJ=1
conf "$T/cost.conf" 'rate = [ "40/10s" ]; park_after = "1m"; costs = ( { method = "PUT"; path = "^/api/d1/"; cost = 3; } );'
sa POST /_ctl/load?coll=s1\&key=id '[]' >/dev/null
once "$T/cost.conf" || fail "the run on an empty source failed: $(tail -3 "$T/daemon.log")"
sql "$STATE" "DELETE FROM onesync.budget_windows"
[ "$(sql "$STATE" "SELECT onesync.budget_take('sample', '{10000}', '{40}', 36, 1000)->>'granted'")" = 36 ] ||
	fail "psql could not take 36 of the budget"
sa POST /_ctl/load?coll=s1\&key=id '[{"id":1,"name":"a","updatedAt":"2026-01-01T00:00:01.000Z","v":1}]' >/dev/null
t0=$(date +%s%N)
once "$T/cost.conf" || fail "the costly run failed: $(tail -3 "$T/daemon.log")"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
used=$(sql "$STATE" "SELECT onesync.budget_status(NULL)->'sample'->'windows'->>'10000'")
note "a write of cost 3 with 1 token left and 2 in the window: the run took $ms ms; $used of 40 used"
same_colls s1 d1 id,name,updatedAt,v || fail "d1 differs from s1"
[ "$ms" -lt 6000 ] || fail "the write waited for the window ($ms ms): a partial grant replaced the token left before it"
[ "$used" = 40 ] || fail "$used of the window used, not 40"
