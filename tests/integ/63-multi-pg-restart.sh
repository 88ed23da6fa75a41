# PostgreSQL restarted under three instances: every instance notices it went away, reconnects,
# and no job stays unowned longer than a lease.
# tests/run: alone. Its bound is a wall-clock one (a lease here, a lease + 5 s in 61): it ran
# beside another test once and lost (under ASan: one job unowned after 6 s); both run by themselves.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
pg_private
multi_setup
for n in a b c; do inst_start $n; done
all_held() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE lease_until > now()")" = "$NJOBS" ]; }
wait_for 30 all_held || fail "jobs not all held"
declare -A MARK
for n in a b c; do MARK[$n]=$(wc -l <"$T/inst-$n.log"); done
pg_stop_own
noticed() { tail -n +$((MARK[$1] + 1)) "$T/inst-$1.log" | grep -Eq 'lost connection to|cannot connect to'; }
for n in a b c; do wait_for 10 noticed $n || fail "instance $n did not notice PostgreSQL going away"; done
pg_start_own; t0=$(date +%s)
wait_for 6 all_held || fail "a job stayed unowned longer than a lease (6 s): $(owners | tr "\n" " ")"
note "every job owned again $(( $(date +%s) - t0 )) s after the restart"
for n in a b c; do kill -0 "${IPID[$n]}" || fail "instance $n died"; done
ran() { [ "$(sql "$STATE" "SELECT count(DISTINCT instance) FROM onesync.runs WHERE result = 'ok' AND started_at > to_timestamp($t0)")" = 3 ]; }
churn
wait_for 20 ran || fail "not every instance ran jobs after the restart"
churn_wait
multi_checks
