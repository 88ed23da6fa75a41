# Three instances share 60 jobs: each runs between 15 and 25 of them; a stall shorter than
# the lease causes no takeover; a graceful stop hands its jobs over within 2 s.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
for n in a b c; do inst_start $n; done
balanced() { for n in a b c; do h=$(held_by $n); [ "$h" -ge 15 ] && [ "$h" -le 25 ] || return 1; done; }
wait_for 30 balanced || fail "not balanced: $(owners | tr '\n' ' ')"
note "balance: $(owners | tr '\n' ' ')"
churn_wait
# a stall shorter than the lease (6 s), while b has a run in flight: no takeover
hold_run_of b
ep=$(sql "$STATE" "SELECT string_agg(name || epoch, ',' ORDER BY name) FROM onesync.jobs WHERE owner = 'b'")
bjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'b'"); nb=$(echo "$bjobs" | wc -w)
kill -STOP "${IPID[b]}"; release_hold; sleep 2.5; kill -CONT "${IPID[b]}"
tc=$(sql "$STATE" "SELECT now()"); mark=$(wc -l <"$T/inst-b.log")
# b renews every lease after waking (lease_until beyond what it was before the stall), and a
# and c have each looked at the leases (a heartbeat) since: they had their chance to take over
renewed_b() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE owner = 'b'
	AND name = ANY(string_to_array('$bjobs', ' ')) AND lease_until > '$tc'::timestamptz + interval '5 s'")" = "$nb" ]; }
wait_for 10 renewed_b || fail "b did not renew its $nb leases after the stall: $(owners | tr '\n' ' ')"
wait_for 10 beat_since a "$tc" || fail "a sent no heartbeat after the stall"
wait_for 10 beat_since c "$tc" || fail "c sent no heartbeat after the stall"
[ "$(sql "$STATE" "SELECT string_agg(name || epoch, ',' ORDER BY name) FROM onesync.jobs WHERE owner = 'b'")" = "$ep" ] ||
	fail "a 2.5 s stall moved jobs away from b"
wait_for 10 bash -c "[ \"\$(psql -X -A -t -q '$STATE' -c \"SELECT result FROM onesync.runs WHERE id = $HRUN\")\" = ok ]" ||
	fail "the run of $HJOB in flight during the stall did not finish ok"
! tail -n +$((mark + 1)) "$T/inst-b.log" | grep -q 'lease lost' || fail "b lost a lease over a 2.5 s stall"
# graceful stop of c: its jobs are taken within 2 s
cjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'c'")
kill -TERM "${IPID[c]}"; wait "${IPID[c]}" || fail "c did not exit 0"
t0=$(date +%s%N)
taken() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE owner IN ('a', 'b') AND lease_until > now()
	AND name = ANY(string_to_array('$cjobs', ' '))")" = "$(echo "$cjobs" | wc -w)" ]; }
wait_for 10 taken || fail "c's jobs were not taken over"
ms=$(( ($(date +%s%N) - t0) / 1000000 )); note "c's $(echo "$cjobs" | wc -w) jobs taken within $ms ms"
[ "$ms" -le 2000 ] || fail "taking c's jobs took $ms ms"
churn_wait
multi_checks
