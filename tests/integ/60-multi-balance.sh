# Three instances share 60 jobs: each runs between 15 and 25 of them; a stall shorter than
# the lease causes no takeover; a graceful stop hands its jobs over within 2 s.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/multi.inc"
multi_setup
for n in a b c; do inst_start $n; done
balanced() { for n in a b c; do h=$(held_by $n); [ "$h" -ge 15 ] && [ "$h" -le 25 ] || return 1; done; }
wait_for 30 balanced || fail "not balanced: $(owners | tr '\n' ' ')"
note "balance: $(owners | tr '\n' ' ')"
churn; sleep 3
# a stall shorter than the lease (6 s): no takeover
ep=$(sql "$STATE" "SELECT string_agg(name || epoch, ',' ORDER BY name) FROM onesync.jobs WHERE owner = 'b'")
kill -STOP "${IPID[b]}"; sleep 2.5; kill -CONT "${IPID[b]}"
sleep 3
[ "$(sql "$STATE" "SELECT string_agg(name || epoch, ',' ORDER BY name) FROM onesync.jobs WHERE owner = 'b'")" = "$ep" ] ||
	fail "a 2.5 s stall moved jobs away from b"
# graceful stop of c: its jobs are taken within 2 s
cjobs=$(sql "$STATE" "SELECT string_agg(name, ' ') FROM onesync.jobs WHERE owner = 'c'")
kill -TERM "${IPID[c]}"; wait "${IPID[c]}" || fail "c did not exit 0"
t0=$(date +%s%N)
taken() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE owner IN ('a', 'b') AND lease_until > now()
	AND name = ANY(string_to_array('$cjobs', ' '))")" = "$(echo "$cjobs" | wc -w)" ]; }
wait_for 10 taken || fail "c's jobs were not taken over"
ms=$(( ($(date +%s%N) - t0) / 1000000 )); note "c's $(echo "$cjobs" | wc -w) jobs taken within $ms ms"
[ "$ms" -le 2000 ] || fail "taking c's jobs took $ms ms"
churn; sleep 4
multi_checks
