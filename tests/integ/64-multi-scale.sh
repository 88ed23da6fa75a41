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
# The request's time and the run's start are both read from the database's clock: the
# figure is the daemon's reaction, not this script's polling.
t0=$(psql -X -A -t -q "$STATE" -c "BEGIN" -c "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = '$job'" \
	-c "NOTIFY onesync_run, '$job'" -c "SELECT extract(epoch FROM now())" -c "COMMIT")
started() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$job' AND instance = 'c'
	AND started_at > to_timestamp($t0)")" -ge 1 ]; }
wait_for 5 started || fail "the run-now request did not start a run on the owner"
ms=$(sql "$STATE" "SELECT round(extract(epoch FROM min(started_at) - to_timestamp($t0)) * 1000) FROM onesync.runs
	WHERE job = '$job' AND instance = 'c' AND started_at > to_timestamp($t0)")
note "run-now: the run started $ms ms after the request"
[ "$ms" -le 1000 ] || fail "run-now took $ms ms"
kill -TERM "${IPID[b]}" "${IPID[c]}"; wait "${IPID[b]}"; wait "${IPID[c]}"
wait_for 15 solo || fail "the jobs did not come back to a: $(owners | tr '\n' ' ')"
churn_wait
multi_checks
