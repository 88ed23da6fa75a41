# sd_notify as systemd sees it: READY=1; after SIGHUP with a valid new config RELOADING=1
# with MONOTONIC_USEC, then READY=1, and the new job runs; after SIGHUP with a broken config
# the errors in the log, READY=1, and the old jobs still running; after SIGTERM during a run
# STOPPING=1 and exit 0 within 10 s. WATCHDOG=1 when WATCHDOG_USEC is set.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":200}' >/dev/null
sa POST /_ctl/gen '{"coll":"more","n":50}' >/dev/null
INTERVAL=1s write_conf "$T/c.conf"
python3 "$TOP/tests/notify-listen.py" "$T/notify.sock" "$T/notify.txt" 120 & PIDS+=($!)
wait_for 10 test -S "$T/notify.sock" || fail "listener did not start"
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 "$ONESYNCD" -c "$T/c.conf" >>"$T/daemon.log" 2>&1 &
D_PID=$!; PIDS+=($D_PID)
wait_for 10 grep -qx 'READY=1' "$T/notify.txt" || fail "no READY=1"
wait_for 10 grep -q '^STATUS=.*jobs' "$T/notify.txt" || fail "no STATUS="
wait_for 10 grep -qx 'WATCHDOG=1' "$T/notify.txt" || fail "no WATCHDOG=1 with WATCHDOG_USEC set"
wait_for 20 grep -q 'job=contacts.*run finished' "$T/daemon.log" || fail "first job did not run"

# a valid new config with a second job
EXTRA_JOB=', { name = "more"; strategy = "modified"; key = "id"; interval = "1s";
	modified = { field = "updatedAt"; };
	source = { url = "'$SA'/api/more"; query = { updatedAt_gte = "{{watermark}}"; }; };
	destination = { type = "http"; url = "'$SA'/api/more-copy/{{key}}"; }; }' INTERVAL=1s write_conf "$T/c.conf"
kill -HUP "$D_PID"
wait_for 10 grep -q '^RELOADING=1|MONOTONIC_USEC=[0-9][0-9]*$' "$T/notify.txt" || fail "no RELOADING=1 with MONOTONIC_USEC"
wait_for 10 bash -c "[ \$(grep -cx 'READY=1' '$T/notify.txt') -ge 2 ]" || fail "no READY=1 after the reload"
wait_for 20 grep -q 'job=more.*run finished' "$T/daemon.log" || fail "the added job did not run"
same_colls more more-copy id,name,updatedAt || fail "the added job did not copy its records"

# a broken config: errors logged, READY=1 again, old jobs keep running
echo 'jobs = ( { name = "x"; strategy = "bogus"; } );' >>"$T/c.conf"
kill -HUP "$D_PID"
wait_for 10 bash -c "[ \$(grep -cx 'READY=1' '$T/notify.txt') -ge 3 ]" || fail "no READY=1 after a rejected reload"
grep -q "c.conf:[0-9]*: " "$T/daemon.log" || fail "the config error with FILE:LINE is not in the log"
grep -q 'configuration rejected' "$T/daemon.log" || fail "no 'configuration rejected' line"
n1=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'more'")
wait_for 20 bash -c "[ \$(psql -X -A -t -q '$STATE' -c \"SELECT count(*) FROM onesync.runs WHERE job = 'more' AND result = 'ok'\") -gt $n1 ]" ||
	fail "old jobs stopped running after a rejected reload"

# SIGTERM during a run: the source's answer is held until the daemon has seen SIGTERM; the run
# then ends normally (drained, not cut) before the daemon exits
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","hold":true}' >/dev/null
wait_for 10 held_ge 1 contacts || fail "no run of contacts reached its source"
run=$(sql "$STATE" "SELECT id FROM onesync.runs WHERE job = 'contacts' AND result = 'running'")
[ -n "$run" ] || fail "no run of contacts in flight while its source read is held"
mark=$(wc -l <"$T/daemon.log")
kill -TERM "$D_PID"; start=$(date +%s)
# (job more, every second, may be in flight too)
wait_for 10 bash -c "tail -n +$((mark + 1)) '$T/daemon.log' | grep -Eq 'received SIGTERM: stopping \\([12] runs in flight\\)'" ||
	fail "the daemon did not see SIGTERM with the run in flight: $(tail -n +$((mark + 1)) "$T/daemon.log" | grep SIGTERM)"
wait_for 5 grep -qx 'STOPPING=1' "$T/notify.txt" || fail "no STOPPING=1"
sa DELETE /_ctl/fault >/dev/null; sa_release contacts
timeout 15 tail --pid="$D_PID" -f /dev/null
wait "$D_PID"; rc=$?
secs=$(( $(date +%s) - start ))
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
[ "$secs" -le 10 ] || fail "took ${secs}s to stop"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $run")" = ok ] ||
	fail "the run in flight at SIGTERM ended '$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $run")', not ok"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE owner IS NOT NULL")" = 0 ] || fail "leases not released at stop"
