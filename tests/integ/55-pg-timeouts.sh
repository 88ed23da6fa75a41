# PostgreSQL source statements cannot wedge a run: a lock wait ends at source.timeout
# (lock_timeout / statement_timeout) with a clear error; a server that does not answer at all
# (its backend stopped, as a half-open connection looks) has its connection dropped 5 s after
# source.timeout; a run cut by run_timeout cancels its statement: the server stops
# waiting for the lock at once instead of holding the pooled connection until it is free;
# and a coordination connection that stops answering is dropped and opened again, so the
# heartbeats go on.
. "$(dirname "$0")/../lib.sh"
pg_private
STATE=$(new_db state); SRC=$(new_db src); DEST=$(new_db dest)
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL DEFAULT now());
	INSERT INTO orders (id, name) SELECT i, 'n' || i FROM generate_series(1, 20) i"
sql "$DEST" "CREATE TABLE orders (id int PRIMARY KEY, name text)"
conf() { # SOURCE_TIMEOUT RUN_TIMEOUT
	cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { instance = "node1"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; };
jobs = ( { name = "orders"; strategy = "modified"; key = "id"; run_timeout = "$2";
	modified = { field = "updated_at"; };
	source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; timeout = "$1"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "orders";
		columns = { id = "id"; name = "name"; }; }; } );
CONF
}
# hold an exclusive lock on the source table (sets LOCKER)
lock() {
	psql -X -q "$SRC" -c "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;" >/dev/null 2>&1 &
	LOCKER=$!; PIDS+=("$LOCKER")
	wait_for 10 bash -c "[ \$(psql -X -A -t -q '$SRC' -c \"SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'orders' AND l.mode = 'AccessExclusiveLock' AND l.granted\") = 1 ]" ||
		fail "could not lock the source table"
}
unlock() { kill "$LOCKER" 2>/dev/null; wait "$LOCKER" 2>/dev/null; sql "$SRC" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(120)%' AND pid <> pg_backend_pid()" >/dev/null; }
# the daemon's page query, waiting at the server
waiting() { sql "$SRC" "SELECT pid FROM pg_stat_activity WHERE query LIKE '%onesync_r%' AND state = 'active' AND pid <> pg_backend_pid()"; }

# 1. a lock wait ends at source.timeout
conf 2s 0; lock
start=$(date +%s)
timeout 40 "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1; rc=$?
secs=$(( $(date +%s) - start ))
[ "$rc" = 1 ] || fail "a run waiting for a lock exited $rc after ${secs}s (124: it was still waiting)"
grep -Eq 'canceling statement due to (lock|statement) timeout' "$T/daemon.log" || fail "no lock or statement timeout error in the log"
[ "$secs" -le 15 ] || fail "the lock wait lasted ${secs}s with a 2s timeout"
note "lock wait: the run failed after ${secs}s with a lock or statement timeout"

# 2. no answer at all: the backend is stopped while it waits; the connection is dropped
conf 3s 0
timeout 60 "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1 & ONCE=$!
wait_for 10 bash -c "[ -n \"\$(psql -X -A -t -q '$SRC' -c \"SELECT pid FROM pg_stat_activity WHERE query LIKE '%onesync_r%' AND state = 'active' AND pid <> pg_backend_pid()\")\" ]" ||
	fail "the page query never waited for the lock"
BACKEND=$(waiting); kill -STOP "$BACKEND"
start=$(date +%s)
wait "$ONCE"; rc=$?
secs=$(( $(date +%s) - start ))
kill -CONT "$BACKEND"
[ "$rc" = 1 ] || fail "a run whose server stopped answering exited $rc after ${secs}s (124: it hung)"
grep -q 'no answer within 8000 ms; connection dropped' "$T/daemon.log" || fail "no 'connection dropped' error in the log"
note "a stopped server: the run failed after ${secs}s, its connection dropped"
unlock

# 3. a run cut by run_timeout cancels its waiting statement
conf 1h 2s; lock
timeout 60 "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1; rc=$?
[ "$rc" = 1 ] || fail "a run cut by run_timeout exited $rc"
grep -q 'run took longer than its run_timeout' "$T/daemon.log" || fail "the run was not cut by run_timeout"
wait_for 10 bash -c "[ -z \"\$(psql -X -A -t -q '$SRC' -c \"SELECT pid FROM pg_stat_activity WHERE query LIKE '%onesync_r%' AND state = 'active' AND pid <> pg_backend_pid()\")\" ]" ||
	fail "the cut run's statement still waits at the server: $(waiting)"
note "cut: the server stopped waiting for the lock"
unlock
conf 10s 0
once "$T/c.conf" || fail "the run after the lock was released exited $?"
[ "$(sql "$DEST" "SELECT count(*) FROM orders")" = 20 ] || fail "rows not copied once the lock was gone"

# 4. the coordination connection's backend stops answering (lease 3 s: a tick every second)
sed -i 's/daemon = { instance = "node1"; };/daemon = { instance = "node1"; lease = "3s"; };/' "$T/c.conf"
daemon_start "$T/c.conf"
coord() { sql "$STATE" "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
	AND (query LIKE 'WITH hb AS%' OR query LIKE 'LISTEN onesync_run%' OR query LIKE 'SELECT COALESCE(jsonb_agg(name)%') LIMIT 1"; }
wait_for 10 bash -c "[ -n \"\$(psql -X -A -t -q '$STATE' -c \"SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'WITH hb AS%'\")\" ]" ||
	fail "no heartbeat seen"
BACKEND=$(coord); [ -n "$BACKEND" ] || fail "coordination backend not found"
kill -STOP "$BACKEND"
stopped=$(sql "$STATE" "SELECT now()")
beat_after() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.instances WHERE id = 'node1' AND heartbeat_at > '$stopped'::timestamptz + interval '1 s'")" = 1 ]; }
wait_for 20 beat_after; ok=$?
kill -CONT "$BACKEND"
[ "$ok" = 0 ] || fail "no heartbeat after the coordination backend stopped answering"
grep -q 'coordination.*no answer within 1000 ms; connection dropped' "$T/daemon.log" ||
	fail "the coordination connection was not dropped"
note "coordination: a stopped backend was dropped and the heartbeats went on"

# 5. a long lock on the state tables (as VACUUM FULL or a migration takes): the coordination
# connection's statements end at the server by their own timeout, so connections dropped for
# not answering do not pile up as backends waiting on the lock (which once filled the server)
psql -X -q "$STATE" -c "BEGIN; LOCK TABLE onesync.instances, onesync.jobs IN ACCESS EXCLUSIVE MODE;
	SELECT pg_sleep(30); COMMIT;" >/dev/null 2>&1 &
SLOCK=$!; PIDS+=("$SLOCK")
held_8s() { [ "$(sql "$STATE" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
	AND query LIKE 'BEGIN; LOCK TABLE onesync.instances%' AND now() - xact_start > interval '8 s'")" = 1 ]; }
wait_for 15 held_8s || fail "the lock on the state tables was not taken"
waiters=$(sql "$STATE" "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
	AND wait_event_type = 'Lock'")
kill "$SLOCK" 2>/dev/null; sql "$STATE" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE datname = current_database() AND query LIKE 'BEGIN; LOCK TABLE onesync.instances%'" >/dev/null
[ "$waiters" -le 2 ] || fail "$waiters backends wait on the lock after 8 s: dropped connections pile up at the server"
note "state tables locked 8 s: $waiters backends waiting (bounded)"
kill -0 "$D_PID" || fail "the daemon died under the lock"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit code $? after SIGTERM"
exit 0
