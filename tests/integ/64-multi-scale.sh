# Scale out from one instance to three and back: the jobs spread, then come back, with no
# overlapping runs; a run-now request starts the run on the owner within 1 s.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
inst_start a
solo() { [ "$(held_by a)" = "$NJOBS" ]; }
wait_for 30 solo || fail "a alone does not hold every job"
inst_start b; inst_start c
spread() { for n in a b c; do h=$(held_by $n); [ "$h" -ge 15 ] && [ "$h" -le 25 ] || return 1; done; }
wait_for 30 spread || fail "jobs did not spread: $(owners | tr '\n' ' ')"
note "spread: $(owners | tr '\n' ' ')"
churn_wait
# run-now on a job owned by c, sent as onesyncctl does
job=$(sql "$STATE" "SELECT name FROM onesync.jobs WHERE owner = 'c' ORDER BY name LIMIT 1")
n0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$job'")
t0=$(date +%s%N)
sql "$STATE" "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = '$job'; NOTIFY onesync_run, '$job'"
started() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$job' AND instance = 'c'
	AND started_at > to_timestamp($t0 / 1e9)")" -ge 1 ]; }
wait_for 5 started || fail "the run-now request did not start a run on the owner"
ms=$(( ($(date +%s%N) - t0) / 1000000 )); note "run-now seen started after $ms ms"
[ "$ms" -le 1000 ] || fail "run-now took $ms ms"
kill -TERM "${IPID[b]}" "${IPID[c]}"; wait "${IPID[b]}"; wait "${IPID[c]}"
wait_for 15 solo || fail "the jobs did not come back to a: $(owners | tr '\n' ' ')"
churn_wait
multi_checks
