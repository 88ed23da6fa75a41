# A request waiting at its second budget does not keep the concurrency slot it took at the
# first. Budget "a" (concurrency 1) covers every request, budget "b" (1 request per 15 s,
# park_after 1m) only job "zz"'s source: zz's second read waits at "b" about 15 s. Job "j"'s
# work, under "a" alone, must go on meanwhile (it finishes within a few seconds, not after
# that wait), and job "zz" finishes once "b" lets its read pass (it takes its slot at "a"
# again); no run fails.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
job() {	# job NAME SOURCE DEST PAGE-SIZE
	echo "{ name = \"$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/$2\"; page = { style = \"page\"; size = $4; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/$3/{{key}}\"; body = \"{{record}}\"; }; }"
}
cat >"$T/c.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; max_runs = 2; };
defaults = { interval = "1h"; retries = 0; };
budgets = (
  { name = "a"; match = [ "$SA/api/" ]; rate = [ "1000/1s" ]; concurrency = 1; park_after = "1m"; },
  { name = "b"; match = [ "$SA/api/zz" ]; rate = [ "1/15s" ]; park_after = "1m"; } );
jobs = ( $(job j s d 5), $(job zz zz dz 10) );
C
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '$1'"; }
history() { sql "$STATE" "SELECT string_agg(job || ' ' || result || coalesce(' (' || error || ')', ''), '; ' ORDER BY id) FROM onesync.runs"; }
sa POST /_ctl/gen '{"coll":"s","n":15}' >/dev/null
sa POST /_ctl/gen '{"coll":"zz","n":10}' >/dev/null
# j's reads take 200 ms each: its work lasts long enough for zz's request to take the slot
sa POST /_ctl/fault '{"coll":"s","method":"GET","delay_ms":200}' >/dev/null
t0=$(date +%s)
daemon_start "$T/c.conf"
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
exit 0
