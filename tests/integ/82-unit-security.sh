# The shipped unit, systemd/onesyncd.service: `systemd-analyze security --offline=true`
# scores it at or below the committed baseline (and so at or below 1.5), and
# `systemd-analyze verify --man=no` has no complaint about it (on a copy whose ExecStart
# names the built binary, since verify wants the binary to exist). A change that raises the
# exposure fails here: lower BASELINE when the unit gets better, never raise it silently.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/unit.inc"
BASELINE=1.1
LIMIT=1.5
UNIT=$TOP/systemd/onesyncd.service
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (package systemd)"
[ -x "$ONESYNCD" ] || fail "$ONESYNCD is not built"

# the baseline is at most the limit: staying at or below it is enough
unit_exposure "$UNIT" "$BASELINE"
note "exposure $EXPOSURE (baseline $BASELINE, limit $LIMIT)"

# no core file: a dump would hold every credential the daemon resolved
grep -q '^LimitCORE=0$' "$UNIT" || fail "the unit does not set LimitCORE=0"

# the daemon makes itself not dumpable before it reads a credential: run as another user,
# its /proc/PID/mem belongs to root (no core, no ptrace or memory reading by that user)
mkdir -m 755 "$T/nd"
cat >"$T/nd/c.conf" <<CONF
state = { conninfo = "host=127.0.0.1 port=1 dbname=x connect_timeout=1"; };
jobs = ( { name = "a"; strategy = "modified"; key = "id"; modified = { field = "u"; };
	source = { type = "http"; url = "http://127.0.0.1:1/x"; };
	destination = { type = "http"; url = "http://127.0.0.1:1/y/{{key}}"; }; } );
CONF
chmod 644 "$T/nd/c.conf"
runuser -u postgres -- "$ONESYNCD" -c "$T/nd/c.conf" >"$T/nd/log" 2>&1 &
ND_PID=$!; PIDS+=("$ND_PID")
nd_pid() { pgrep -u postgres -f "$T/nd/c.conf" | head -1 | grep -q .; }
wait_for 10 nd_pid || fail "the daemon did not start as user postgres: $(cat "$T/nd/log")"
nd=$(pgrep -u postgres -f "$T/nd/c.conf" | head -1)
# The process exists from exec on; it turns itself undumpable in daemon_main, before the
# config is read. Look once it has said "starting" (after that point), not before: an
# ASan build spends a while in its runtime before main().
nd_started() { grep -q 'starting as instance' "$T/nd/log"; }
wait_for 20 nd_started || fail "the daemon never said it was starting: $(cat "$T/nd/log")"
owner=$(stat -c %U "/proc/$nd/mem")
kill -TERM "$nd"; wait "$ND_PID" 2>/dev/null
[ "$owner" = root ] || fail "the daemon is dumpable (its /proc/PID/mem belongs to $owner, not root)"

# verify: a copy in its own directory, ExecStart pointing at the built binary
unit_verify "$UNIT" "$ONESYNCD"
exit 0
