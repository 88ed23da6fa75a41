# SIGSTOP of one of three instances for twice the lease, then SIGCONT: its jobs ran elsewhere
# meanwhile, it writes nothing fenced out (its log says "lease lost"), and it goes on with
# its new share afterwards.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
for n in a b c; do inst_start $n; done
all_held() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE lease_until > now()")" = "$NJOBS" ]; }
wait_for 30 all_held || fail "jobs not all held"
churn
running_b() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'b' AND result = 'running'")" -ge 1 ]; }
wait_for 20 running_b || fail "b never had a run in flight"
bjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'b'")
t0=$(date +%s.%N); kill -STOP "${IPID[b]}"
sleep 12
elsewhere=$(sql "$STATE" "SELECT count(DISTINCT job) FROM onesync.runs WHERE instance IN ('a', 'c')
	AND started_at > to_timestamp($t0) AND job = ANY(string_to_array('$bjobs', ' '))")
[ "$elsewhere" = "$(echo "$bjobs" | wc -w)" ] || fail "only $elsewhere of b's jobs ran elsewhere while b was stopped"
before=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'b'")
kill -CONT "${IPID[b]}"
wait_for 10 grep -q "lease lost" "$T/inst-b.log" || fail "b's log does not say 'lease lost'"
sleep 3
# nothing b wrote after waking up changed a job it had lost: its checkpoints were fenced out
ok_after=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'b' AND result = 'ok'
	AND finished_at > to_timestamp($t0) + interval '1 s' AND started_at < to_timestamp($t0)")
[ "$ok_after" = 0 ] || fail "$ok_after runs of b that started before the stop finished ok (more than 1 s) after it"
churn; sleep 5
multi_checks
