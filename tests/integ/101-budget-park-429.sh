# park_after bounds every wait for a budget, also the wait of the request that met
# the 429. One job, park_after 2s; the server answers its first request 429 with
# Retry-After: 30. The run must end "throttled" within a few seconds (and not sleep 30 s on
# the request's own retry timer, then finish as if nothing had happened).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/budget.inc"
sa_start
STATE=$(new_db state)
budget_conf "$T/c.conf" 'rate = [ "1000/1s" ]; park_after = "2s";'
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null
sa POST /_ctl/block '{"prefix":"/api/","seconds":30}' >/dev/null
t0=$(date +%s%N)
once "$T/c.conf"; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
res=$(sql "$STATE" "SELECT string_agg(result || coalesce(' (' || error || ')', ''), '; ') FROM onesync.runs")
note "park_after 2s, Retry-After 30: exit $rc after $ms ms; runs: $res"
[ "$ms" -lt 10000 ] || fail "with park_after 2s the run waited $ms ms on a 429's Retry-After: 30 (exit $rc, runs: $res)"
