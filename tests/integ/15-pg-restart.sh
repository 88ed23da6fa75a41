# PostgreSQL restarted during a run: the daemon stays up, reconnects, and the next run succeeds.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
pg_private
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":1000}' >/dev/null
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","delay_ms":150}' >/dev/null
INTERVAL=1s write_conf "$T/c.conf"
daemon_start "$T/c.conf"
wait_for 30 grep -q 'run finished' "$T/daemon.log" || fail "no first run"
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":300,"insert":100,"field":"updatedAt"}' >/dev/null
wait_for 30 bash -c "curl -s '$SA/_ctl/stats?coll=contacts' >/dev/null; grep -c 'run finished' '$T/daemon.log' | grep -qv '^1\$'" || true
sleep 0.3
pg_stop_own; note "PostgreSQL stopped"
sleep 2
kill -0 "$D_PID" || fail "the daemon died while PostgreSQL was down"
pg_start_own; note "PostgreSQL started"
: >"$T/after.log"; mark=$(wc -l <"$T/daemon.log")
wait_for 60 bash -c "tail -n +$((mark + 1)) '$T/daemon.log' | grep -q 'run finished'" || fail "no successful run after the restart"
kill -0 "$D_PID" || fail "the daemon is not running"
wait_for 30 same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs"
kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
