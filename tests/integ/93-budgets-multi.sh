# Three instances, ten jobs, one budget of 50 requests per second: the server never sees more
# than 50 requests in any second, plus one chunk (2) per instance; every destination ends
# equal to its source. One 429 with Retry-After: 3 blocks the budget on every instance: for
# those 3 s no request under it reaches the server from any of them (100 ms allowed for the
# block to reach the others), then the work resumes and no run fails. onesyncctl budgets
# shows the budget and its shared windows.
. "$(dirname "$0")/../lib.sh"; NJOBS=10; . "$(dirname "$0")/multi.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
multi_setup
echo "budgets = ( { name = \"api\"; match = [ \"$SA/api/\" ]; rate = [ \"50/1s\" ]; } );" >>"$T/c.conf"
sa DELETE /_ctl/seen >/dev/null
inst_start a; inst_start b; inst_start c
spread() { for n in a b c; do [ "$(held_by $n)" -ge 1 ] || return 1; done; }
wait_for 30 spread || fail "the jobs did not spread: $(owners | tr '\n' ' ')"
churn_wait 60
seen() { sa GET "/_ctl/seen?$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
n=$(seen "prefix=/api/&window_ms=1000" requests)
m=$(seen "prefix=/api/&window_ms=1000" max_in_window)
note "50/1s shared by 3 instances: $n requests, at most $m in any second"
[ "$m" -le 56 ] || fail "$m requests in one second under a shared budget of 50/1s"
[ "$m" -ge 30 ] || fail "only $m requests in the busiest second: the budget starves the jobs"

# one 429 with Retry-After: 3, seen by whichever instance sends the next request
sa DELETE /_ctl/seen >/dev/null
sa POST /_ctl/block '{"prefix":"/api/","seconds":3}' >/dev/null
churn_wait 60
b=$(seen "prefix=/api/&grace_ms=100" after_block)
g=$(seen "prefix=/api/&grace_ms=100" in_grace)
s429=$(sa GET "/_ctl/seen?prefix=/api/" | python3 -c "import json,sys; print(json.load(sys.stdin)['statuses'].get('429', 0))")
note "block: $s429 answers 429, $b requests during the block, $g in its first 100 ms"
[ "$s429" = 1 ] || fail "$s429 answers 429, expected the one block"
[ "$b" = 0 ] || fail "$b requests reached the server during the 3 s block"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed'")" = 0 ] ||
	fail "runs failed: $(sql "$STATE" "SELECT job, error FROM onesync.runs WHERE result = 'failed' LIMIT 3")"
for n in a b c; do grep -q 'budget api: blocked until' "$T/inst-$n.log" && by=$n; done
[ -n "${by:-}" ] || fail "no instance logged the block"

"$CTL" -c "$T/inst-a.conf" budgets >"$T/budgets.txt" 2>&1 || fail "onesyncctl budgets: $(cat "$T/budgets.txt")"
grep -Eq '^api +50/1s' "$T/budgets.txt" || fail "onesyncctl budgets: $(cat "$T/budgets.txt")"
kill -TERM "${IPID[a]}" "${IPID[b]}" "${IPID[c]}"
for n in a b c; do wait "${IPID[$n]}" || fail "instance $n did not exit 0"; done
multi_checks
