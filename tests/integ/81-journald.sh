# journald for real, in a private mount namespace (nothing outside it changes): a real
# systemd-journald on tmpfs; onesyncd logs natively when forced (ONESYNC_LOG_TARGET=journal)
# and when its stderr is a journal stream named by JOURNAL_STREAM, as systemd sets it up;
# `journalctl ONESYNC_JOB=contacts` then tells the job's story: every run's "run finished"
# line with PRIORITY=6, the run-finished MESSAGE_ID and ONESYNC_RUN = the id in the runs
# table, the refused record's line with PRIORITY=4 and its MESSAGE_ID, nothing of the other
# job. With a JOURNAL_STREAM that is not its stderr it writes "<N>" lines on stderr instead.
# Skipped (77) only when unshare(CLONE_NEWNS) is not permitted.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
JOURNALD=/lib/systemd/systemd-journald
[ -x "$JOURNALD" ] || fail "$JOURNALD is missing (package systemd)"
if ! unshare --mount --propagation private true 2>"$T/unshare.err"; then
	echo "skipped: unshare --mount is not permitted here: $(head -1 "$T/unshare.err")"
	exit 77
fi
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":60}' >/dev/null
# record 7 of "more" is refused: a record-failed line about that job only
sa POST /_ctl/fault '{"coll":"more-copy","method":"PUT","keys":[7],"status":422}' >/dev/null
sa POST /_ctl/gen '{"coll":"more","n":10}' >/dev/null
EXTRA_JOB=', { name = "more"; strategy = "modified"; key = "id";
	modified = { field = "updatedAt"; };
	source = { url = "'$SA'/api/more"; query = { updatedAt_gte = "{{watermark}}"; }; };
	destination = { type = "http"; url = "'$SA'/api/more-copy/{{key}}"; }; }' write_conf "$T/c.conf"
sed -n '/MSGID_RUN_FINISHED/s/.*"\([0-9a-f]*\)".*/\1/p' "$TOP/src/core/log.h" >"$T/msgid.finished"
sed -n '/MSGID_RECORD_FAILED/s/.*"\([0-9a-f]*\)".*/\1/p' "$TOP/src/core/log.h" >"$T/msgid.failed"
[ -s "$T/msgid.finished" ] && [ -s "$T/msgid.failed" ] || fail "MESSAGE_IDs not found in src/core/log.h"

# Run as systemd does for StandardError=journal: connect to the journal's stream socket,
# send the stream header, make it stderr and export JOURNAL_STREAM=dev:ino of it.
cat >"$T/stream-exec.py" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/run/systemd/journal/stdout")
s.shutdown(socket.SHUT_RD)
s.sendall(b"onesyncd\n\n6\n0\n0\n0\n0\n")	# identifier, unit, priority, level prefix, fwd...
os.dup2(s.fileno(), 2)
st = os.fstat(2)
os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
os.environ.pop("ONESYNC_LOG_TARGET", None)
os.execv(sys.argv[1], sys.argv[1:])
PY

export T ONESYNCD JOURNALD JOURNALD_INC=$TOP/tests/integ/journald.inc
unshare --mount --propagation private -- bash -s >"$T/ns.log" 2>&1 <<'NS'
set -u
. "$JOURNALD_INC"
# 1: native logging forced
ONESYNC_LOG_TARGET=journal timeout 120 "$ONESYNCD" -c "$T/c.conf" --once >"$T/forced.out" 2>"$T/forced.err" ||
	{ echo "forced --once exited $?"; exit 12; }
# 2: stderr is a journal stream named by JOURNAL_STREAM
timeout 120 python3 "$T/stream-exec.py" "$ONESYNCD" -c "$T/c.conf" --once ||
	{ echo "--once on a journal stream exited $?"; exit 13; }
# 3: JOURNAL_STREAM names another file: plain "<N>" lines on stderr
JOURNAL_STREAM=1:1 timeout 120 "$ONESYNCD" -c "$T/c.conf" --once contacts 2>"$T/plain.err" ||
	{ echo "plain --once exited $?"; exit 14; }
# until journald has stored the 4 run-finished lines sent to it (2 of contacts, 2 of more)
journalctl --sync 2>/dev/null
for _ in $(seq 100); do
	[ "$(journalctl -o cat SYSLOG_IDENTIFIER=onesyncd 2>/dev/null | grep -c '^run finished in ')" -ge 4 ] && break
	sleep 0.1
done
journalctl -o json ONESYNC_JOB=contacts >"$T/contacts.json" || exit 15
journalctl -o json ONESYNC_JOB=more >"$T/more.json" || exit 15
journalctl -o json SYSLOG_IDENTIFIER=onesyncd >"$T/all.json" || exit 15
NS
rc=$?
[ "$rc" = 0 ] || { cat "$T/ns.log" "$T/journald.log" >&2 2>/dev/null; fail "inside the namespace: exit $rc"; }
[ ! -s "$T/forced.err" ] || fail "forced journal logging still wrote to stderr: $(head -3 "$T/forced.err")"

RUNS=$(sql "$STATE" "SELECT string_agg(id::text, ',' ORDER BY id) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok'")
RUNS_MORE=$(sql "$STATE" "SELECT string_agg(id::text, ',' ORDER BY id) FROM onesync.runs WHERE job = 'more' AND result = 'ok'")
note "runs in the state: contacts $RUNS, more $RUNS_MORE"
python3 - "$T/contacts.json" "$T/more.json" "$T/all.json" "$(cat "$T/msgid.finished")" \
	"$(cat "$T/msgid.failed")" "$RUNS" "$RUNS_MORE" <<'PY' || fail "journal entries"
import json, sys
def load(p): return [json.loads(l) for l in open(p) if l.strip()]
contacts, more, every = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
finished, failed = sys.argv[4], sys.argv[5]
runs, runs_more = sys.argv[6].split(","), sys.argv[7].split(",")
assert len(runs) == 3 and len(runs_more) == 2, (runs, runs_more)
runs = runs[:2]		# the third run wrote plain lines to stderr
assert contacts, "journalctl ONESYNC_JOB=contacts found nothing"
assert all(e.get("ONESYNC_JOB") == "contacts" for e in contacts)
done = [e for e in contacts if e.get("MESSAGE_ID") == finished]
assert sorted(e.get("ONESYNC_RUN") for e in done) == sorted(runs), \
    f"run-finished entries carry runs {[e.get('ONESYNC_RUN') for e in done]}, the state has {runs}"
for e in done:
    assert e.get("PRIORITY") == "6", e
    assert e.get("SYSLOG_IDENTIFIER") == "onesyncd", e
    assert e["MESSAGE"].startswith("run finished in "), e["MESSAGE"]
    assert "delivered" in e["MESSAGE"], e["MESSAGE"]
# the first run (forced journal) delivered all 60, the two later ones nothing new
first = min(done, key=lambda e: int(e["ONESYNC_RUN"]))
assert "read 60, delivered 60" in first["MESSAGE"], first["MESSAGE"]
assert not any(e.get("MESSAGE_ID") == failed for e in contacts), "a failed-record line under the wrong job"
fails = [e for e in more if e.get("MESSAGE_ID") == failed]
assert fails and all(e.get("PRIORITY") == "4" and "record 7 failed" in e["MESSAGE"] for e in fails), fails
assert all(e.get("ONESYNC_RUN") in runs_more for e in fails), fails
assert {e.get("ONESYNC_RUN") for e in more if e.get("MESSAGE_ID") == finished} == set(runs_more)
# lines that are not about a job carry no ONESYNC_JOB, and the daemon's own lines are there
plain = [e for e in every if "ONESYNC_JOB" not in e]
assert any("starting as instance" in e["MESSAGE"] for e in plain), "no start line"
print(f"  - {len(contacts)} entries for contacts, {len(more)} for more, {len(every)} in all", file=sys.stderr)
PY
grep -q "^<6>job=contacts run=${RUNS##*,}: run finished" "$T/plain.err" ||
	fail "with a foreign JOURNAL_STREAM, no '<6>job=contacts run=N: run finished' line on stderr"
