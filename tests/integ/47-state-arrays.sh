# Keys of any text through the checkpoint's arrays (onesync.checkpoint_lists): quotes,
# backslashes, braces, commas, spaces, the word NULL, unicode, a key of 1,000 bytes (the longest is 1,024). Capture: each
# key is delivered, its hash stored under exactly its text (records_put), read back unchanged
# (the next run skips every record), a refused one queued under its text (failed) and cleared
# once delivered (ok), a removed one deleted with its stored hash (records_del). Modified: the
# seen set (a tie at the watermark) holds the keys exactly, so a second run delivers nothing.
# Flag: the retry queue's entry of a refused key is found by the next run's lookup of the
# page's keys (a text[]), so its delivery clears it.
# Then at the SQL level: a checkpoint sent twice with the same seq is applied once (answered
# "repeated"), and a key twice in one array is resolved (the last one wins).
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state); DEST=$(new_db dest); SRC=$(new_db src)
PY=/usr/bin/python3
FILES=$T/files
mkdir -p "$FILES"
sql "$DEST" "CREATE TABLE t (id text PRIMARY KEY, v int CHECK (v >= 0));
	CREATE TABLE m (id text PRIMARY KEY, ts text);
	CREATE TABLE g (id text PRIMARY KEY, v int CHECK (v >= 0))"
sql "$SRC" "CREATE TABLE s (id text PRIMARY KEY, ts timestamptz NOT NULL);
	CREATE TABLE f (id text PRIMARY KEY, v int NOT NULL, synced boolean NOT NULL DEFAULT false)"
# The keys, the one refused in the first run, the one removed in the third (hostile.py).
cat >"$T/hostile.py" <<'PY'
KEYS = ['a"b\\c{d},e', 'NULL', 'null', ' spaced ', '{}', '{', '}', ',', '\\', '"', '""',
        'ключ ✓ 🙂', "it's", 'tab\there', 'line\nbreak', '\\"{,}\\', 'x' * 997 + '"}\\',
        'plain']
BAD = 'bad"{x},\\'
GONE = 'a"b\\c{d},e'
PY
# gen V: the capture job's file (1: every key, BAD refused; 2: BAD accepted; 3: without GONE)
gen() {
	$PY - "$T" "$FILES/items.ndjson" "$1" <<'PY'
import json, os, sys
sys.path.insert(0, sys.argv[1])
from hostile import KEYS, BAD, GONE
path, v = sys.argv[2], int(sys.argv[3])
rows = [{"id": k, "v": 1} for k in KEYS if v < 3 or k != GONE]
rows.append({"id": BAD, "v": -1 if v == 1 else 1})
with open(path + ".tmp", "w") as f:
    for r in rows: f.write(json.dumps(r, ensure_ascii=False) + "\n")
os.chmod(path + ".tmp", 0o644); os.rename(path + ".tmp", path)
PY
}
# check WHAT SQL: the rows of SQL (one text column) are exactly the keys the Python
# expression WHAT names (KEYS, BAD, GONE), compared as Python strings
check() {
	$PY - "$T" "$2" "$3" "$1" <<'PY' || fail "$1"
import sys, psycopg2
sys.path.insert(0, sys.argv[1])
from hostile import KEYS, BAD, GONE
db, q, what = sys.argv[2], sys.argv[3], sys.argv[4]
c = psycopg2.connect(db); cur = c.cursor(); cur.execute(q)
got = sorted(r[0] for r in cur.fetchall())
want = sorted(eval(what))
if got != want:
    print("got", [g[:40] for g in got], "\nwant", [w[:40] for w in want], file=sys.stderr)
    sys.exit(1)
PY
}
gen 1
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; batch = 7; };
jobs = (
	{ name = "cap"; strategy = "capture"; key = "id";
	  capture = { deletes = true; max_delete_ratio = 0.5; };
	  source = { type = "file"; url = "file://$FILES/items.ndjson"; format = "ndjson"; };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "t";
		columns = { id = "id"; v = "v"; }; }; },
	{ name = "mod"; strategy = "modified"; key = "id"; modified = { field = "ts"; };
	  source = { type = "postgresql"; conninfo = "$SRC"; table = "s"; page = { size = 5; }; };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "m";
		columns = { id = "id"; ts = "ts"; }; }; },
	{ name = "flg"; strategy = "flag"; key = "id";
	  source = { type = "postgresql"; conninfo = "$SRC"; table = "f"; pending = "NOT synced";
		page = { size = 5; }; mark = { set = { synced = "true"; }; }; };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "g";
		columns = { id = "id"; v = "v"; }; }; } );
CONF
$PY - "$T" "$SRC" <<'PY' || fail "loading the source table"
import sys, psycopg2
sys.path.insert(0, sys.argv[1])
from hostile import KEYS, BAD
c = psycopg2.connect(sys.argv[2]); cur = c.cursor()
for k in KEYS: cur.execute("INSERT INTO s VALUES (%s, '2026-01-01T00:00:00Z')", (k,))
for k in KEYS + [BAD]: cur.execute("INSERT INTO f (id, v) VALUES (%s, %s)", (k, -1 if k == BAD else 1))
c.commit()
PY
n=$($PY -c "import sys; sys.path.insert(0, '$T'); from hostile import KEYS; print(len(KEYS))")
run() { sql "$STATE" "SELECT result || ' ' || delivered || ' ' || skipped || ' ' || failed || ' ' || deleted
	FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }

once "$T/c.conf" || fail "the first run exited $?"
[ "$(run cap)" = "ok $n 0 1 0" ] || fail "capture, first run: $(run cap) (expected ok $n 0 1 0)"
check "KEYS" "$STATE" "SELECT key FROM onesync.records WHERE job = 'cap'"
check "[BAD]" "$STATE" "SELECT key FROM onesync.failures WHERE job = 'cap'"
check "KEYS" "$DEST" "SELECT id FROM t"
[ "$(run mod)" = "ok $n 0 0 0" ] || fail "modified, first run: $(run mod) (expected ok $n 0 0 0)"
check "KEYS" "$STATE" "SELECT key FROM onesync.seen WHERE job = 'mod'"
check "KEYS" "$DEST" "SELECT id FROM m"
[ "$(run flg)" = "ok $n 0 1 0" ] || fail "flag, first run: $(run flg) (expected ok $n 0 1 0)"
check "[BAD]" "$STATE" "SELECT key FROM onesync.failures WHERE job = 'flg'"
check "KEYS" "$SRC" "SELECT id FROM f WHERE synced"

gen 2
sql "$SRC" "UPDATE f SET v = 1 WHERE NOT synced"
once "$T/c.conf" || fail "the second run exited $?"
# every stored hash and seen row read back under its key: nothing delivered again
[ "$(run cap)" = "ok 1 $n 0 0" ] || fail "capture, second run: $(run cap) (expected ok 1 $n 0 0)"
check "KEYS + [BAD]" "$STATE" "SELECT key FROM onesync.records WHERE job = 'cap'"
check "[]" "$STATE" "SELECT key FROM onesync.failures WHERE job = 'cap'"
[ "$(run mod)" = "ok 0 $n 0 0" ] || fail "modified, second run: $(run mod) (expected ok 0 $n 0 0)"
[ "$(run flg)" = "ok 1 0 0 0" ] || fail "flag, second run: $(run flg) (expected ok 1 0 0 0)"
check "[]" "$STATE" "SELECT key FROM onesync.failures WHERE job = 'flg'"
check "KEYS + [BAD]" "$SRC" "SELECT id FROM f WHERE synced"

gen 3
once "$T/c.conf" || fail "the third run exited $?"
[ "$(run cap)" = "ok 0 $n 0 1" ] || fail "capture, third run: $(run cap) (expected ok 0 $n 0 1)"
check "[k for k in KEYS if k != GONE] + [BAD]" "$STATE" "SELECT key FROM onesync.records WHERE job = 'cap'"
check "[k for k in KEYS if k != GONE] + [BAD]" "$DEST" "SELECT id FROM t"

# The same checkpoint twice (its first answer lost with the connection): applied once.
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$STATE" -c "$1" 2>&1; }
E=$(q "SELECT onesync.claim_job('cap', 't:1', 'inc-t', 0, 60000,
	(SELECT identity FROM onesync.jobs WHERE name = 'cap'), '{}') ->> 'epoch'")
[ -n "$E" ] || fail "the test could not claim the job: $E"
R=$(q "INSERT INTO onesync.runs (job, instance, epoch) VALUES ('cap', 't:1', $E) RETURNING id")
ck() { # SEQ D: a checkpoint that fails k1 and stores k2, each twice in its list (the last wins)
	q "SELECT onesync.checkpoint_lists('cap', 't:1', $E, $R, $1, '$2',
		NULL, NULL, NULL, '{k2,k2}', '{first,last}', NULL, NULL,
		'{k1,k1}', '{early,late}', ARRAY[NULL, '{\"a\": 1}']::jsonb[], '{h1,h2}',
		NULL, NULL, NULL, NULL, NULL)"
}
D1='{"read": 5, "nfailed": 1, "max_attempts": 5, "backoff_ms": 0, "backoff_max_ms": 0}'
D2='{"read": 3, "result": "ok", "release": true, "max_attempts": 5, "backoff_ms": 0, "backoff_max_ms": 0}'
for a in "1|$D1" "1|$D1" "2|$D2" "2|$D2"; do
	ck "${a%%|*}" "${a#*|}" >>"$T/ck.out" || fail "a repeated checkpoint was refused: $(tail -1 "$T/ck.out")"
done
[ "$(grep -c '"repeated": true' "$T/ck.out")" = 2 ] || fail "repeats not answered as such: $(cat "$T/ck.out")"
got=$(q "SELECT records_read || ' ' || failed || ' ' || result FROM onesync.runs WHERE id = $R")
[ "$got" = "8 1 ok" ] || fail "run counters after repeated checkpoints: $got, expected 8 1 ok"
got=$(q "SELECT attempts || ' ' || last_error || ' ' || hash || ' ' || payload::text FROM onesync.failures
	WHERE job = 'cap' AND key = 'k1'")
# two checkpoints failed it, each sent twice: two attempts, not four
[ "$got" = '2 late h2 {"a": 1}' ] || fail "the failure after repeated checkpoints: '$got', expected '2 late h2 {\"a\": 1}'"
[ "$(q "SELECT hash FROM onesync.records WHERE job = 'cap' AND key = 'k2'")" = last ] ||
	fail "a key twice in records_put: $(q "SELECT hash FROM onesync.records WHERE job = 'cap' AND key = 'k2'")"
[ -z "$(q "SELECT owner FROM onesync.jobs WHERE name = 'cap'")" ] || fail "the last checkpoint did not give the lease back"
echo ok
