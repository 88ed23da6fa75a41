# A budget's concurrency: three jobs read the same slow source (300 ms a read) and write to
# their own destinations; with concurrency = 1 the source never has two reads in flight (the
# sample application counts them), and every destination ends equal to the source. Without the
# budget the same jobs read it three at a time (the check can fail).
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
