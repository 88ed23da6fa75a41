# "X-RateLimit-Remaining: 1500000000" (an API with a large quota) says much is left.
# parse_reset() reads any number above 10^9 as a Unix time, so the remaining count becomes
# 0 and every such answer blocks the budget until its reset (here 5 s), with park_after 2s
# the run ends throttled. A job of 3 pages must finish ok at once.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
cat >"$T/c.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; };
defaults = { interval = "1h"; retries = 0; };
budgets = ( { name = "b"; match = [ "$SA/api/" ]; rate = [ "1000/1s" ]; park_after = "2s"; } );
jobs = ( { name = "j"; strategy = "modified"; key = "id";
  modified = { field = "updatedAt"; sorted = true; };
  source = { url = "$SA/api/s"; page = { style = "page"; size = 10; };
    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
  destination = { type = "http"; method = "PUT"; url = "$SA/api/d/{{key}}"; body = "{{record}}"; }; } );
C
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null
sa POST /_ctl/fault '{"coll":"s","method":"GET","headers":{"X-RateLimit-Limit":"2000000000","X-RateLimit-Remaining":"1500000000","X-RateLimit-Reset":"5"}}' >/dev/null
once "$T/c.conf"; rc=$?
res=$(sql "$STATE" "SELECT string_agg(result || coalesce(' (' || error || ')', ''), '; ') FROM onesync.runs")
note "exit $rc; runs: $res"
[ "$rc" = 0 ] || fail "answers saying 1500000000 requests remain blocked the budget: exit $rc, $res; $(grep 'blocked until' "$T/daemon.log" | head -1)"
