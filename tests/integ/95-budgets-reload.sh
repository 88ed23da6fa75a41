# A reload while requests wait at a budget: with 1 request per 3 s, two jobs' requests queue
# (/budgets shows them waiting); a reload that raises the budget's rate lets the same waiting
# requests go at once, and the jobs finish in seconds; a second reload that removes the budget
# leaves nothing waiting. No run fails, and the daemon exits 0.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
port=$(free_port)
job() {	# job N
	echo "{ name = \"job$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/s$1\"; page = { style = \"page\"; size = 10; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/d$1/{{key}}\"; body = \"{{record}}\"; }; }"
}
conf() {	# conf BUDGETS
	cat <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; status_listen = "127.0.0.1:$port"; };
defaults = { interval = "1h"; retries = 0; };
$1
jobs = ( $(job 1), $(job 2) );
CONF
}
for i in 1 2; do sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":8}" >/dev/null; done
conf "budgets = ( { name = \"slow\"; match = [ \"$SA/api/\" ]; rate = [ \"1/3s\" ]; park_after = \"5m\"; } );" >"$T/live.conf"
daemon_start "$T/live.conf"
wait_port "$port" || fail "no status endpoint"
waiting() { curl -sS "http://127.0.0.1:$port/budgets" | python3 -c "import json,sys; print(sum(b['waiting'] for b in json.load(sys.stdin)['budgets']))"; }
wait_for 15 eval '[ "$(waiting)" -ge 1 ]' || fail "no request waits at the budget: $(curl -sS "http://127.0.0.1:$port/budgets")"
all_same() { for i in 1 2; do same_colls "s$i" "d$i" id,name,updatedAt,v || return 1; done; }
all_same && fail "the jobs finished under 1 request per 3 s before the reload"
conf "budgets = ( { name = \"slow\"; match = [ \"$SA/api/\" ]; rate = [ \"1000/1s\" ]; park_after = \"5m\"; } );" >"$T/live.conf"
t0=$(date +%s)
kill -HUP "$D_PID"
wait_for 15 all_same || fail "the waiting requests did not go on after the rate was raised: $(curl -sS "http://127.0.0.1:$port/budgets")"
note "the jobs finished $(( $(date +%s) - t0 )) s after the reload"
for i in 1 2; do sa POST /_ctl/mutate "{\"coll\":\"s$i\",\"after_gets\":0,\"touch\":3,\"field\":\"updatedAt\"}" >/dev/null; done
conf "budgets = ( { name = \"slow\"; match = [ \"$SA/api/\" ]; rate = [ \"1/3s\" ]; park_after = \"5m\"; } );" >"$T/live.conf"
kill -HUP "$D_PID"
"${ONESYNCCTL:-$TOP/src/onesyncctl}" -c "$T/live.conf" run job1 >/dev/null 2>&1
"${ONESYNCCTL:-$TOP/src/onesyncctl}" -c "$T/live.conf" run job2 >/dev/null 2>&1
wait_for 15 eval '[ "$(waiting)" -ge 1 ]' || fail "no request waits at the budget after the second reload"
conf "" >"$T/live.conf"
kill -HUP "$D_PID"
wait_for 15 all_same || fail "the requests waiting at a removed budget did not go on"
[ "$(waiting)" = 0 ] || fail "requests still wait at a removed budget"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed'")" = 0 ] || fail "a run failed"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon did not exit 0"
