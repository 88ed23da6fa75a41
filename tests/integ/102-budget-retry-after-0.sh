# A server that answers 429 with "Retry-After: 0" (or an HTTP date in the past, a server
# clock behind ours) is not hammered: such a 429 blocks the budget 1 s, doubling while the
# server gives no time, and when a block ends one request tries the server before the others
# go. Here the server allows 1 request per 10 s and always says Retry-After: 0: in 20 s the
# daemon sends its first burst (the requests in flight before the first 429), then probes at
# growing intervals, and a burst again only after a probe got through (no storm: before,
# 81 answers 429 came in 9 s).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/budget.inc"
sa_start
STATE=$(new_db state)
budget_conf "$T/c.conf" 'rate = [ "1000/1s" ];'
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null
sa POST /_ctl/limit '{"prefix":"/api/","rate":1,"window_ms":10000,"retry_after":0}' >/dev/null
t0=$(date +%s%N)
timeout 20 "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
read -r s429 n m < <(sa GET "/_ctl/seen?prefix=/api/&window_ms=1000" | python3 -c "
import json,sys; o = json.load(sys.stdin); print(o['statuses'].get('429', 0), o['requests'], o['max_in_window'])")
# the first second: the read and the writes it started (destination concurrency 10)
m2=$(sa GET "/_ctl/seen?prefix=/api/&window_ms=1000&list=10000" | python3 -c "
import json,sys
e = json.load(sys.stdin)['entries']
t0 = e[0]['t'] if e else 0
late = [x['t'] for x in e if x['t'] >= t0 + 1500]
best = 0
for i, t in enumerate(late):
    best = max(best, sum(1 for u in late[i:] if u < t + 1000))
print(best)")
note "Retry-After: 0 for $ms ms: $n requests, $s429 answered 429, at most $m in a second, at most $m2 in a second after the first"
[ "$m2" -le 11 ] || fail "$m2 requests in one second after the first burst: the 429s with Retry-After: 0 are not waited out"
[ "$n" -le 40 ] || fail "$n requests in 20 s to a server that allows 1 per 10 s"
