# kill -9 during a run, then a restart: the destination ends equal to the source, and at
# most one batch (one page of 50 here) was delivered twice.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":2000}' >/dev/null
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","delay_ms":10}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { instance = "node1"; };
defaults = { interval = "1h"; retries = 0; batch = 50; };
jobs = ( { name = "contacts"; strategy = "modified"; key = "id";
	modified = { field = "updatedAt"; sorted = true; };
	source = { type = "http"; url = "$SA/api/contacts";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 50; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/customers/{{key}}"; concurrency = 4; }; } );
CONF
daemon_start "$T/c.conf"
count() { sa GET /_ctl/stats?coll=customers | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
wait_for 60 bash -c "[ \$(curl -s '$SA/_ctl/stats?coll=customers' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"count\"])') -ge 700 ]" ||
	fail "the run did not get going"
kill -9 "$D_PID"; wait "$D_PID" 2>/dev/null
n=$(count); note "killed with $n of 2000 delivered"
[ "$n" -lt 2000 ] || fail "the run finished before the kill; the test proves nothing"
once "$T/c.conf" || fail "restart run exited $?"
same_colls contacts customers id,name,email,amount,updatedAt || fail "destination differs from source"
dups=$(sa GET /_ctl/stats?coll=customers | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(v-1 for v in d.values()))')
note "$dups records delivered twice"
[ "$dups" -le 50 ] || fail "$dups records delivered twice, more than one batch (50)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'abandoned'")" = 1 ] || fail "the killed run is not marked abandoned"
