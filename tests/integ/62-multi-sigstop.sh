# SIGSTOP of one of three instances until every one of its jobs has run elsewhere, then
# SIGCONT: it writes nothing fenced out (its log says "lease lost" for the run it had in
# flight, which never finishes ok), and it goes on with its new share afterwards.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
for n in a b c; do inst_start $n; done
all_held() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE lease_until > now()")" = "$NJOBS" ]; }
wait_for 30 all_held || fail "jobs not all held"
churn
hold_run_of b	# a run of b surely in flight when it stops
bjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'b'")
t0=$(date +%s.%N); kill -STOP "${IPID[b]}"; release_hold
note "stopped b holding $(echo "$bjobs" | wc -w) jobs, run $HRUN of $HJOB in flight"
elsewhere() { sql "$STATE" "SELECT count(DISTINCT job) FROM onesync.runs WHERE instance IN ('a', 'c')
	AND started_at > to_timestamp($t0) AND job = ANY(string_to_array('$bjobs', ' '))"; }
all_elsewhere() { [ "$(elsewhere)" = "$(echo "$bjobs" | wc -w)" ]; }
# within twice the lease (12 s)
wait_for 13 all_elsewhere || fail "only $(elsewhere) of b's jobs ran elsewhere while b was stopped"
note "all of b's jobs ran elsewhere within $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"
mark=$(wc -l <"$T/inst-b.log")
kill -CONT "${IPID[b]}"
# the run b had in flight ends on b's side, and not with "run finished"
ended() { tail -n +$((mark + 1)) "$T/inst-b.log" | grep -q "run=$HRUN: \(lease lost\|run failed\|run finished\|could not record\)"; }
wait_for 10 ended || fail "b did not end its run $HRUN after waking"
tail -n +$((mark + 1)) "$T/inst-b.log" | grep -q "run=$HRUN: lease lost" || fail "b's log does not say 'lease lost' for run $HRUN"
! tail -n +$((mark + 1)) "$T/inst-b.log" | grep -q "run=$HRUN: run finished" || fail "b finished its fenced run $HRUN"
# nothing b wrote after waking up changed a job it had lost: its checkpoints were fenced out
ok_after=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'b' AND result = 'ok'
	AND finished_at > to_timestamp($t0) + interval '1 s' AND started_at < to_timestamp($t0)")
[ "$ok_after" = 0 ] || fail "$ok_after runs of b that started before the stop finished ok (more than 1 s) after it"
# b goes on with its new share
newshare() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'b' AND result = 'ok'
	AND started_at > now() - interval '1 minute' AND started_at > to_timestamp($t0) + interval '1 s'")" -ge 1 ]; }
wait_for 20 newshare || fail "b ran nothing after waking"
churn_wait
multi_checks
