# "X-RateLimit-Remaining: 1500000000" (an API with a large quota) says much is left.
# parse_reset() reads any number above 10^9 as a Unix time, so the remaining count becomes
# 0 and every such answer blocks the budget until its reset (here 5 s), with park_after 2s
# the run ends throttled. A job of 3 pages must finish ok at once.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/budget.inc"
sa_start
STATE=$(new_db state)
budget_conf "$T/c.conf" 'rate = [ "1000/1s" ]; park_after = "2s";'
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null
sa POST /_ctl/fault '{"coll":"s","method":"GET","headers":{"X-RateLimit-Limit":"2000000000","X-RateLimit-Remaining":"1500000000","X-RateLimit-Reset":"5"}}' >/dev/null
once "$T/c.conf"; rc=$?
res=$(sql "$STATE" "SELECT string_agg(result || coalesce(' (' || error || ')', ''), '; ') FROM onesync.runs")
note "exit $rc; runs: $res"
[ "$rc" = 0 ] || fail "answers saying 1500000000 requests remain blocked the budget: exit $rc, $res; $(grep 'blocked until' "$T/daemon.log" | head -1)"
