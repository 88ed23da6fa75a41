# The status endpoint holds at most 64 connections at once: 150 idle clients do not take 150
# file descriptors from the daemon (1,100 once took every one the jobs needed); the others wait
# in the listen backlog, and /healthz answers again once the clients go. With descriptors
# short all the same (ulimit -n 40), a failing accept() is logged once a minute, not at every
# retry (libevent logged "Error from accept() call" 90,777 times), and the endpoint recovers.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "10s"; stop_timeout = "5s"; status_listen = "127.0.0.1:0"; };
defaults = { interval = "1h"; retries = 0; };
jobs = ( { name = "contacts"; strategy = "capture"; key = "id";
	source = { type = "http"; url = "$SA/api/contacts"; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/out/{{key}}"; body = "{{record}}"; }; } );
CONF
start() {	# start [ULIMIT]: the daemon, PORT and ST
	: >"$T/daemon.log"
	if [ -n "${1:-}" ]; then
		( ulimit -n "$1"; exec "$ONESYNCD" -c "$T/c.conf" ) >>"$T/daemon.log" 2>&1 &
	else
		"$ONESYNCD" -c "$T/c.conf" >>"$T/daemon.log" 2>&1 &
	fi
	D_PID=$!; PIDS+=("$D_PID")
	wait_for 10 grep -q 'status endpoint listening on http://127.0.0.1:' "$T/daemon.log" || fail "no status endpoint"
	PORT=$(sed -n 's|.*status endpoint listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T/daemon.log" | head -1)
	ST=http://127.0.0.1:$PORT
	wait_for 10 curl -sf -m 2 "$ST/healthz" -o /dev/null || fail "no /healthz"
}
# hold N idle connections to PORT for SECS seconds (bounded), printing "open" once they are
hold() {
	/usr/bin/python3 - "$PORT" "$1" "$2" <<'PY' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(); s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))	# completes from the backlog too
        socks.append(s)
    except OSError:
        s.close()
print("open %d" % len(socks), flush=True)
time.sleep(secs)
PY
	HOLD=$!; PIDS+=("$HOLD")
}
fds() { ls /proc/"$D_PID"/fd | wc -l; }

start
base=$(fds)
hold 150 8 >"$T/hold.out"
wait_for 20 grep -q '^open' "$T/hold.out" || fail "the clients did not connect"
sleep 1		# let the daemon accept what it will (not a timing assertion: bounded either way)
n=$(fds)
[ "$n" -le $((base + 64 + 4)) ] || fail "150 idle status clients: the daemon holds $n descriptors (was $base)"
grep -q 'status endpoint: 64 connections open' "$T/daemon.log" || fail "no warning at the cap"
wait "$HOLD" 2>/dev/null
wait_for 30 curl -sf -m 2 "$ST/healthz" -o /dev/null || fail "/healthz does not answer after the clients left"
note "150 idle clients: $n descriptors (was $base), /healthz answers once they go"
kill "$D_PID"; wait "$D_PID" 2>/dev/null

# descriptors short anyway: the accept failure is logged once, no libevent flood
start 40
hold 100 5 >"$T/hold.out"
wait_for 20 grep -q '^open' "$T/hold.out" || fail "the clients did not connect (ulimit)"
wait "$HOLD" 2>/dev/null
wait_for 30 curl -sf -m 2 "$ST/healthz" -o /dev/null || fail "/healthz does not answer after the clients left (ulimit)"
flood=$(grep -c 'Error from accept' "$T/daemon.log")
[ "$flood" -le 10 ] || fail "libevent logged accept() errors $flood times"
lines=$(grep -c 'cannot accept a connection' "$T/daemon.log")
[ "$lines" -le 2 ] || fail "the accept failure was logged $lines times"
note "ulimit -n 40: accept failures logged $lines times, libevent lines $flood; /healthz recovers"
kill "$D_PID"; wait "$D_PID" 2>/dev/null
exit 0
