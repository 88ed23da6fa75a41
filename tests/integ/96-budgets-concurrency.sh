# A budget's concurrency: three jobs read the same slow source (300 ms a read) and write to
# their own destinations; with concurrency = 1 the source never has two reads in flight (the
# sample application counts them), and every destination ends equal to the source. Without the
# budget the same jobs read it three at a time (the check can fail).
# Then a request waiting at its second budget does not keep the concurrency slot it took at
# the first: budget "a" (concurrency 1) covers every request, budget "b" (1 request per 15 s,
# park_after 1m) only job "zz"'s source, so zz's second read waits at "b" about 15 s. Job
# "j"'s work, under "a" alone, goes on meanwhile (it finishes within seconds, not after that
# wait), and zz finishes once "b" lets its read pass (it takes its slot at "a" again).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
job() {	# job N
	echo "{ name = \"job$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/s\"; page = { style = \"page\"; size = 5; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/d$1/{{key}}\"; body = \"{{record}}\"; }; }"
}
conf() {	# conf FILE BUDGETS
	cat >"$1" <<CONF
state = { conninfo = "$STATE"; };
daemon = { max_runs = 3; };
defaults = { interval = "1h"; retries = 0; };
$2
jobs = ( $(job 1), $(job 2), $(job 3) );
CONF
}
sa POST /_ctl/gen '{"coll":"s","n":10}' >/dev/null
sa POST /_ctl/fault '{"coll":"s","method":"GET","delay_ms":300}' >/dev/null
maxin() { sa GET "/_ctl/stats?coll=s" | python3 -c "import json,sys; print(json.load(sys.stdin)['max_inflight'])"; }
conf "$T/free.conf" ""
once "$T/free.conf" || fail "the run without a budget failed"
m0=$(maxin)
sa POST /_ctl/reset_stats >/dev/null
for i in 1 2 3; do sa DELETE "/api/d$i" >/dev/null 2>&1; done
sql "$STATE" "DROP SCHEMA onesync CASCADE"
conf "$T/one.conf" "budgets = ( { name = \"one\"; match = [ \"$SA/api/\" ]; rate = [ \"1000/1s\" ]; concurrency = 1; } );"
once "$T/one.conf" || fail "the run with concurrency 1 failed: $(tail -3 "$T/daemon.log")"
m1=$(maxin)
note "reads in flight at once: $m0 without a budget, $m1 with concurrency 1"
[ "$m0" -ge 2 ] || fail "without a budget the jobs never read at once ($m0): the check cannot tell"
[ "$m1" = 1 ] || fail "$m1 reads in flight at once under concurrency = 1"
for i in 1 2 3; do same_colls s "d$i" id,name,updatedAt,v || fail "d$i differs from the source"; done

# a request waiting at its second budget gives back its slot at the first
sql "$STATE" "DROP SCHEMA onesync CASCADE"
sa POST /_ctl/reset >/dev/null
job2() {	# job2 NAME SOURCE DEST PAGE-SIZE
	echo "{ name = \"$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/$2\"; page = { style = \"page\"; size = $4; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/$3/{{key}}\"; body = \"{{record}}\"; }; }"
}
cat >"$T/two.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; max_runs = 2; };
defaults = { interval = "1h"; retries = 0; };
budgets = (
  { name = "a"; match = [ "$SA/api/" ]; rate = [ "1000/1s" ]; concurrency = 1; park_after = "1m"; },
  { name = "b"; match = [ "$SA/api/zz" ]; rate = [ "1/15s" ]; park_after = "1m"; } );
jobs = ( $(job2 j s d 5), $(job2 zz zz dz 10) );
C
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '$1'"; }
history() { sql "$STATE" "SELECT string_agg(job || ' ' || result || coalesce(' (' || error || ')', ''), '; ' ORDER BY id) FROM onesync.runs"; }
sa POST /_ctl/gen '{"coll":"s","n":15}' >/dev/null
sa POST /_ctl/gen '{"coll":"zz","n":10}' >/dev/null
# j's reads take 200 ms each: its work lasts long enough for zz's request to take the slot
sa POST /_ctl/fault '{"coll":"s","method":"GET","delay_ms":200}' >/dev/null
t0=$(date +%s)
daemon_start "$T/two.conf"
wait_for 8 same_colls s d id,name,updatedAt,v ||
	fail "job j's work under budget a alone stopped while job zz waited at budget b: $(history); $(tail -5 "$T/daemon.log")"
t1=$(( $(date +%s) - t0 ))
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'zz' AND finished_at IS NOT NULL")" = 0 ] ||
	fail "job zz's run ended before budget b let its second read pass: the check cannot tell: $(history)"
zz_ok() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'zz' AND result = 'ok'")" = 1 ]; }
wait_for 40 zz_ok || fail "job zz's run did not end ok: $(history); $(tail -5 "$T/daemon.log")"
t2=$(( $(date +%s) - t0 ))
same_colls zz dz id,name,updatedAt,v || fail "job zz's destination differs from its source"
note "job j done after ${t1} s, job zz after ${t2} s; runs: $(history)"
[ "$t2" -ge 10 ] || fail "job zz finished after $t2 s: its second read did not wait at budget b"
[ "$(runs failed)" = 0 ] || fail "a run failed: $(history)"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon did not exit 0"
