# kill -9 of one of three instances mid-run: its jobs resume on the others within the lease
# (6 s) + 5 s, with no overlapping runs and the destinations equal to the sources.
# tests/run: alone. Its bound is a wall-clock one (a lease + 5 s here, a lease in 63): 63 ran
# beside another test once and lost (under ASan: one job unowned after 6 s); both run by themselves.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
for n in a b c; do inst_start $n; done
all_held() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE lease_until > now()")" = "$NJOBS" ]; }
wait_for 30 all_held || fail "jobs not all held: $(owners | tr '\n' ' ')"
churn
hold_run_of b	# a run of b surely in flight when it is killed
bjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'b'")
kill -9 "${IPID[b]}"; t0=$(date +%s); release_hold
note "killed b holding $(echo "$bjobs" | wc -w) jobs, run $HRUN of $HJOB in flight"
resumed() { [ "$(sql "$STATE" "SELECT count(DISTINCT job) FROM onesync.runs WHERE instance IN ('a', 'c')
	AND started_at > to_timestamp($t0) AND job = ANY(string_to_array('$bjobs', ' '))")" = "$(echo "$bjobs" | wc -w)" ]; }
wait_for 20 resumed || fail "b's jobs did not resume elsewhere"
secs=$(( $(date +%s) - t0 )); note "all of b's jobs ran elsewhere within ${secs} s"
[ "$secs" -le 11 ] || fail "took ${secs} s, more than lease + 5 s"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $HRUN")" != running ] ||
	fail "the run b left in flight still shows as running after its job ran elsewhere"
churn_wait
multi_checks
