# PostgreSQL restarted during a run: the daemon stays up, reconnects, and the next run succeeds.
# The run is held at its source read while PostgreSQL stops, so it is surely in flight; the
# daemon must notice the lost connection before PostgreSQL comes back.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
pg_private
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":1000}' >/dev/null
INTERVAL=1s write_conf "$T/c.conf"
daemon_start "$T/c.conf"
wait_for 30 grep -q 'run finished' "$T/daemon.log" || fail "no first run"
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":300,"insert":100,"field":"updatedAt"}' >/dev/null
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","hold":true,"times":1}' >/dev/null
wait_for 10 held_ge 1 contacts || fail "no run reached the source"
[ "$(last_run result)" = running ] || fail "no run in flight while its source read is held: $(last_run result)"
run=$(last_run id); mark=$(wc -l <"$T/daemon.log")
pg_stop_own; note "PostgreSQL stopped during run $run"
sa_release contacts
wait_for 30 bash -c "tail -n +$((mark + 1)) '$T/daemon.log' | grep -Eq 'lost connection to|cannot connect to'" ||
	fail "the daemon did not notice PostgreSQL going away"
kill -0 "$D_PID" || fail "the daemon died while PostgreSQL was down"
mark=$(wc -l <"$T/daemon.log")
pg_start_own; note "PostgreSQL started"
wait_for 60 bash -c "tail -n +$((mark + 1)) '$T/daemon.log' | grep -q 'run finished'" || fail "no successful run after the restart"
kill -0 "$D_PID" || fail "the daemon is not running"
wait_for 30 same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs"
kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
