# Two processes with one daemon.instance. A second process refuses to start while the first
# lives (exit 78, saying why) and the first keeps its lease. A writer of the same name with a
# stale epoch is fenced out: the first process freezes mid-run and loses its coordination
# connection, an --once process of the same name takes the name and the job with a new
# epoch, and when the first resumes its run writes nothing more (its row is closed as
# abandoned, not by it) and it stops with 78. After kill -9 a new process takes the name
# over at once. A run whose lease cannot be renewed (the job's row
# locked) is cut a margin before the lease lapses, not after; the renewals answered late, about
# the old epoch, do not cut the run that claimed the job again.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":30}' >/dev/null
LEASE=3s INTERVAL=1s write_conf "$T/w.conf"
sed 's/^daemon = { /daemon = { instance = "dup"; /' "$T/w.conf" >"$T/c.conf"
held() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE name = 'contacts' AND owner = 'dup' AND lease_until > now()")" = 1 ]; }
epoch() { sql "$STATE" "SELECT epoch FROM onesync.jobs WHERE name = 'contacts'"; }

# 1. a second live process of the same name refuses to start
daemon_start "$T/c.conf"; P1=$D_PID
wait_for 20 held || fail "the first process does not hold the job"
e1=$(epoch)
rc=0; timeout 30 "$ONESYNCD" -c "$T/c.conf" >"$T/second.log" 2>&1 || rc=$?
[ "$rc" = 78 ] || fail "the second process exited $rc, not 78: $(tail -3 "$T/second.log")"
grep -q 'another onesyncd process .* runs as instance dup' "$T/second.log" || fail "no reason given: $(cat "$T/second.log")"
[ "$(epoch)" = "$e1" ] && held || fail "the second process disturbed the first one's lease"
kill -0 "$P1" || fail "the first process died"

# 2. a writer of the same name with a stale epoch: the first process freezes mid-run and
# its coordination connection is cut (as by a network partition); an --once process of the
# same name finds it gone, takes the name over and runs the job with a new epoch
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","delay_ms":3000}' >/dev/null
running() { sql "$STATE" "SELECT id FROM onesync.runs WHERE job = 'contacts' AND instance = 'dup' AND result = 'running' AND epoch = $1"; }
wait_for 20 eval '[ -n "$(running "$(epoch)")" ]' || fail "no run in flight"
e1=$(epoch); r1=$(running "$e1")
kill -STOP "$P1"
sql "$STATE" "SELECT pg_terminate_backend(backend_pid) FROM onesync.instances WHERE id = 'dup'" >/dev/null
once "$T/c.conf" & OP=$!
wait_for 15 eval '[ "$(epoch)" -gt "$e1" ] && [ -n "$(running "$(epoch)")" ]' || { kill -CONT "$P1"; fail "the --once process did not take the job"; }
kill -CONT "$P1"
wait_for 15 grep -q 'lease lost' "$T/daemon.log" || fail "the resumed process did not notice it lost the lease"
wait "$OP" || fail "the --once run failed"
grep -q 'took over instance name dup' "$T/daemon.log" || fail "the --once process did not say it took the name over"
res=$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $r1")
[ "$res" = abandoned ] || fail "the stale writer's run row says '$res': it wrote with a stale epoch"
wait_for 20 eval '! kill -0 "$P1"' || fail "the process whose name was taken over keeps running"
rc=0; wait "$P1" || rc=$?
[ "$rc" = 78 ] || fail "the process whose name was taken over exited $rc, not 78"
grep -q 'another onesyncd process took over the instance name dup' "$T/daemon.log" || fail "it did not say why it stopped"
sa DELETE /_ctl/fault >/dev/null

# 3. kill -9, and a new process of the same name takes over at once
daemon_start "$T/c.conf"; P1=$D_PID
wait_for 20 held || fail "a new process did not take the job"
kill -9 "$P1"; wait "$P1" 2>/dev/null
t0=$(date +%s%N)
L0=$(wc -l <"$T/daemon.log")
daemon_start "$T/c.conf"; P2=$D_PID
wait_for 20 eval "tail -n +$((L0 + 1)) '$T/daemon.log' | grep -q 'took over instance name dup'" || fail "the new process did not take the name over"
ok_after() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok' AND started_at > to_timestamp($t0 / 1e9)")" -ge 1 ]; }
wait_for 20 ok_after || fail "the new process did not run the job"
note "taken over and run within $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# 4. renewals blocked: the run is cut a margin before the lease lapses
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","delay_ms":3000}' >/dev/null
wait_for 20 eval '[ -n "$(running "$(epoch)")" ]' || fail "no run in flight"
L0=$(wc -l <"$T/daemon.log")
psql -X -A -t -q "$STATE" -c "BEGIN" -c "SELECT 1 FROM onesync.jobs WHERE name = 'contacts' FOR UPDATE" \
	-c "\\o $T/until" -c "SELECT extract(epoch FROM lease_until) FROM onesync.jobs WHERE name = 'contacts'" \
	-c "\\o" -c "SELECT pg_sleep(8)" -c "COMMIT" >/dev/null 2>&1 & LP=$!
wait_for 5 test -s "$T/until" || fail "could not lock the job"
until=$(cat "$T/until")
end=$(( $(date +%s) + 10 ))
while ! tail -n +$((L0 + 1)) "$T/daemon.log" | grep -q 'lease lost: could not renew it in time'; do
	[ "$(date +%s)" -lt "$end" ] || fail "the run was not cut"
	sleep 0.05
done
seen=$EPOCHREALTIME	# the clock read as the line is seen, not after a process starts
left=$(python3 -c "print(round($until - $seen, 3))")
note "cut ${left} s before the lease would lapse"
# The margin is lease / 6 = 0.5 s; seeing the line lags by up to one poll of the log. A cut
# without a margin would come at the lapse or after it (left <= 0).
python3 -c "import sys; sys.exit(0 if $left >= 0.1 else 1)" || fail "the run was cut ${left} s before its lease lapsed (no margin)"
wait "$LP"
sa DELETE /_ctl/fault >/dev/null
# the renewals queued behind the lock answer about the old epoch: they must not cut the run
# that claimed the job again
t1=$(date +%s%N)
wait_for 20 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '"'contacts'"' AND result = '"'ok'"' AND started_at > to_timestamp($t1 / 1e9)")" -ge 1 ]' ||
	fail "no run after the lock: $(tail -n +$((L0 + 1)) "$T/daemon.log" | tail -5)"
tail -n +$((L0 + 1)) "$T/daemon.log" | grep -q 'another instance took the job' &&
	fail "a renewal answer about an older epoch cut a run: $(grep 'another instance took' "$T/daemon.log")"
kill -TERM "$P2"; wait "$P2" || fail "the daemon did not exit 0"
