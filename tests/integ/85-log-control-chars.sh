# A value from the data never starts a line of its own in the log: record keys holding a
# newline followed by a forged "<3>job=... run=...:" line, a carriage return, an escape
# sequence, a tab, C1's NEL and U+2028 are logged escaped (\n, \r, \x1b, \t, \u0085, \u2028),
# and so are the format characters that reorder or hide text (a right-to-left override
# U+202E shows "k3<U+202E>lave" as "k3eval"; a zero-width space U+200B)
# on stderr, and, in journald mode, in the MESSAGE field (when a private journald can be
# run, as in 81-journald.sh). The records themselves go on: they are refused (no timestamp)
# and wait in the retry queue with their keys intact.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":5}' >/dev/null
# two records without their timestamp: each is logged by its key, which forges lines
sa POST /api/contacts '{"id":"k1\n<3>job=contacts run=1: FORGED one","name":"x"}' >/dev/null
sa POST /api/contacts '{"id":"k2\r<3>FORGED two\u001b[31m\t\u0085NEL\u2028LS","name":"x"}' >/dev/null
sa POST /api/contacts '{"id":"k3 FORGED \u202elave\u200bx","name":"x"}' >/dev/null
write_conf "$T/c.conf"
once "$T/c.conf" || fail "--once failed"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts' AND key LIKE E'k1\n%'")" = 1 ] ||
	fail "the record with a newline in its key is not in the retry queue with its key intact"
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 5 ] || fail "the other records were not delivered"
grep -a -n 'FORGED' "$T/daemon.log" >"$T/forged" || fail "the keys are not logged at all"
# every line of the log is one of onesyncd's: "<N>" then text; none starts with the forgery
if grep -a -n -v '^<[0-7]>' "$T/daemon.log" >"$T/bad" || grep -a -q $'\r' "$T/daemon.log"; then
	cat "$T/bad" >&2; fail "a line of the log was started by a record's key"
fi
grep -a -q -F 'record k1\n<3>job=contacts run=1: FORGED one' "$T/daemon.log" || fail "the newline is not shown escaped"
grep -a -q -F 'record k2\r<3>FORGED two\x1b[31m\t\u0085NEL\u2028LS' "$T/daemon.log" ||
	fail "CR, ESC, tab, NEL or U+2028 not shown escaped"
grep -a -q -F 'record k3 FORGED \u202elave\u200bx' "$T/daemon.log" ||
	fail "a right-to-left override or a zero-width space is not shown escaped"

# journald: the MESSAGE field holds no line break either
JOURNALD=/lib/systemd/systemd-journald
if [ -x "$JOURNALD" ] && unshare --mount --propagation private true 2>/dev/null; then
	# a state of its own: the same records are read and refused again
	STATE=$(new_db state2) write_conf "$T/c.conf"
	export T ONESYNCD JOURNALD JOURNALD_INC=$TOP/tests/integ/journald.inc
	unshare --mount --propagation private -- bash -s >"$T/ns.log" 2>&1 <<'NS'
set -u
. "$JOURNALD_INC"
ONESYNC_LOG_TARGET=journal timeout 120 "$ONESYNCD" -c "$T/c.conf" --once >"$T/j.out" 2>"$T/j.err" ||
	{ echo "journal --once exited $?"; exit 12; }
journalctl --sync 2>/dev/null
for _ in $(seq 50); do
	journalctl -o json ONESYNC_JOB=contacts >"$T/j.json" 2>/dev/null
	grep -q FORGED "$T/j.json" && break; sleep 0.1
done
NS
	rc=$?
	[ $rc = 0 ] || { cat "$T/ns.log" >&2; fail "journald part failed ($rc)"; }
	python3 - "$T/j.json" <<'PY' || fail "journald: a MESSAGE holds a line break or the key is not escaped"
import json, sys
msgs = [json.loads(l).get("MESSAGE") for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
msgs = [m if isinstance(m, str) else bytes(m).decode("utf-8", "replace") for m in msgs if m is not None]
forged = [m for m in msgs if "FORGED" in m]
if not forged: sys.exit("no message names the keys")
for m in forged:
    if any(c in m for c in "\n\r\x1b\x85\u2028\u202e\u200b"): sys.exit("raw control character in %r" % m)
if not any("k1\\n<3>job=contacts run=1: FORGED one" in m for m in forged): sys.exit("k1 not escaped")
PY
else
	note "journald part skipped: no systemd-journald or unshare not permitted"
fi
echo ok
