# Poison records never stop a job. One source page holds a key twice (the last occurrence
# wins, counted and logged), a NUL character (refused by the PostgreSQL destination; its
# failure is stored without the payload), an empty key and two identical key-less records
# (failed records, queued once), and a 1 MB field (delivered). Every strategy (modified, flag,
# capture) over HTTP, over files (CSV, NDJSON) and over a PostgreSQL table finishes its run:
# the good records are delivered and checkpointed, the bad ones wait in the retry queue with a
# readable error, and a second run finishes too. {{key}} in a JSON body keeps the key's type.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); SRC=$(new_db src)
FILES=$T/files; mkdir -p "$FILES"
python3 - "$FILES" <<'PY'
import csv, json, sys
d = sys.argv[1]
big = "x" * (1 << 20)
def ts(i): return "2026-01-01T00:00:%02dZ" % i
recs = [
    {"id": 1, "name": "good one", "updatedAt": ts(1)},
    {"id": 2, "name": "first", "updatedAt": ts(2)},
    {"id": 3, "name": "nul\u0000byte", "updatedAt": ts(3)},
    {"id": "", "name": "empty key", "updatedAt": ts(4)},
    {"id": 4, "name": big, "updatedAt": ts(5)},
    {"name": "no key", "updatedAt": ts(6)},
    {"name": "no key", "updatedAt": ts(6)},
    {"id": 2, "name": "last", "updatedAt": ts(7)},
    {"id": 5, "name": "good too", "updatedAt": ts(8)},
]
json.dump(recs, open(f"{d}/page.json", "w"))
with open(f"{d}/page.ndjson", "w") as f:
    for r in recs: f.write(json.dumps(r) + "\n")
# CSV: a key-less row is a row with an empty id (the same as an empty key); a NUL byte raw.
with open(f"{d}/page.csv", "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["id", "name", "updatedAt"])
    for r in recs:
        w.writerow([r.get("id", ""), r["name"], r["updatedAt"]])
PY
[ "$(tr -cd '\000' <"$FILES/page.csv" | wc -c)" = 1 ] || fail "the CSV has no NUL byte"
files_http_start "$FILES"
JOBS="m_http f_http c_http c_csv c_ndjson m_pg f_pg c_pg"
for j in $JOBS; do sql "$DEST" "CREATE TABLE $j (id int PRIMARY KEY, name text, \"updatedAt\" text)"; done
# A table source without a primary key: a key twice, an empty key, NULL keys, a big field.
sql "$SRC" "CREATE TABLE items (id text, name text, \"updatedAt\" text, synced boolean NOT NULL DEFAULT false);
	INSERT INTO items (id, name, \"updatedAt\") VALUES ('1', 'good one', '2026-01-01T00:00:01Z'),
	  ('2', 'twice', '2026-01-01T00:00:02Z'), ('2', 'twice', '2026-01-01T00:00:07Z'),
	  ('', 'empty key', '2026-01-01T00:00:04Z'), ('4', repeat('x', 1048576), '2026-01-01T00:00:05Z'),
	  (NULL, 'no key', '2026-01-01T00:00:06Z'), (NULL, 'no key', '2026-01-01T00:00:06Z'),
	  ('5', 'good too', '2026-01-01T00:00:08Z')"
dest() { # JOB
	cat <<D
destination = { type = "postgresql"; conninfo = "$DEST"; table = "$1";
	columns = { id = "id"; name = "name"; updatedAt = "updatedAt"; }; };
D
}
http_src() { echo "source = { type = \"http\"; url = \"$FILES_HTTP/page.json\"; page = { style = \"none\"; }; ${1:-} };"; }
pg_src() { echo "source = { type = \"postgresql\"; conninfo = \"$SRC\"; table = \"items\"; page = { size = 10; }; ${1:-} };"; }
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 3; retry_backoff = "1h"; timeout = "60s"; batch = 3; };
jobs = (
 { name = "m_http"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = false; };
   $(http_src) $(dest m_http) },
 { name = "f_http"; strategy = "flag"; key = "id";
   $(http_src "mark = { method = \"PUT\"; url = \"$SA/api/marks/{{key}}\"; body = \"{\\\"sourceId\\\": {{key}}}\"; };")
   $(dest f_http) },
 { name = "c_http"; strategy = "capture"; key = "id"; $(http_src) $(dest c_http) },
 { name = "c_csv"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "file://$FILES/page.csv"; format = "csv"; }; $(dest c_csv) },
 { name = "c_ndjson"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "file://$FILES/page.ndjson"; format = "ndjson"; }; $(dest c_ndjson) },
 { name = "m_pg"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   $(pg_src) $(dest m_pg) },
 { name = "f_pg"; strategy = "flag"; key = "id";
   $(pg_src "pending = \"NOT synced\"; mark = { set = { synced = \"true\"; }; };") $(dest f_pg) },
 { name = "c_pg"; strategy = "capture"; key = "id"; $(pg_src) $(dest c_pg) },
 { name = "m_cut"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = false; };
   $(http_src) destination = { type = "http"; method = "PUT"; url = "$SA/api/cut/{{key}}"; }; }
);
CONF
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t.log" 2>&1 || { cat "$T/t.log" >&2; fail "config refused"; }

check() { # RUN-NUMBER
	local j res rows
	for j in $JOBS; do
		res=$(sql "$STATE" "SELECT result || ' ' || COALESCE(error, '') FROM onesync.runs WHERE job = '$j' ORDER BY id DESC LIMIT 1")
		[ "$res" = "ok " ] || fail "run $1: job $j ended '$res'"
		case $j in
		*_pg) want="1:good one|2:twice|4:1048576|5:good too";;
		*) want="1:good one|2:last|4:1048576|5:good too";;
		esac
		rows=$(sql "$DEST" "SELECT string_agg(id || ':' || CASE WHEN length(name) > 100 THEN length(name)::text ELSE name END, '|' ORDER BY id) FROM $j")
		[ "$rows" = "$want" ] || fail "run $1: job $j: destination rows '$rows', expected '$want'"
	done
}
queue() { sql "$STATE" "SELECT key || ' => ' || last_error FROM onesync.failures WHERE job = '$1' ORDER BY key"; }
expect_queued() { # JOB PATTERN: one queue entry whose key and error match
	queue "$1" | grep -Eq -- "$2" || fail "job $1: no queued failure matching '$2': $(queue "$1" | cut -c1-300)"
}

# The destination refuses record 1 with an answer whose quoted excerpt (200 bytes) ends
# inside a UTF-8 character: the failure is still stored, with a readable error.
cut=$(python3 -c 'import json; print(json.dumps({"coll":"cut","method":"PUT","keys":[1],"status":422,"body":"x"*195 + "\u00e9"*5}))')
sa POST /_ctl/fault "$cut" >/dev/null
once "$T/c.conf" || fail "the first run exited $?"
check 1
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'm_cut' ORDER BY id DESC LIMIT 1")" = ok ] || fail "m_cut: run not ok"
sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'm_cut' AND key = '1'" | grep -q "HTTP 422: x\{195\}éé$(printf '\357\277\275')$" ||
	fail "m_cut: the refusal with a cut answer is not in the retry queue: $(queue m_cut | cut -c1-300)"
for j in m_http f_http c_http c_ndjson; do
	expect_queued $j "^3 => .*(Unicode|\\\\u0000|NUL)"
	expect_queued $j "^#nokey:.* => key field 'id' is an empty string"
	expect_queued $j "^#nokey:.* => record has no key field 'id'"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = '$j'")" = 3 ] ||
		fail "job $j: $(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = '$j'") queued, expected 3 (the identical key-less records once)"
	[ "$(sql "$STATE" "SELECT payload #>> '{}' FROM onesync.failures WHERE job = '$j' AND key = '3'")" = \
	  "(not stored: the record holds a NUL character or invalid UTF-8, or is larger than 8 MB)" ] || fail "job $j: the NUL record's payload"
done
# CSV: the NUL byte row is refused; the empty-id rows are one key-less failure (identical) + one
expect_queued c_csv "^3 => "
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'c_csv' AND last_error LIKE '%empty string%'")" = 2 ] ||
	fail "c_csv: empty-id rows queued: $(queue c_csv | cut -c1-200)"
for j in m_pg f_pg c_pg; do
	expect_queued $j "^#nokey:.* => key field 'id' is an empty string"
done
expect_queued c_pg "^#nokey:.* => key field 'id' is null"
grep -q "key 2 appears more than once" "$T/daemon.log" || fail "the duplicate key was not logged"
grep -q "duplicates skipped: " "$T/daemon.log" || fail "the duplicates were not counted"
# the good records were checkpointed: stored hashes (capture), marks (flag), watermark (modified)
for j in c_http c_csv c_ndjson c_pg; do
	[ "$(sql "$STATE" "SELECT string_agg(key, ',' ORDER BY key) FROM onesync.records WHERE job = '$j'")" = "1,2,4,5" ] ||
		fail "job $j: stored hashes for $(sql "$STATE" "SELECT string_agg(key, ',' ORDER BY key) FROM onesync.records WHERE job = '$j'")"
done
[ "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'm_http'")" = 2026-01-01T00:00:08Z ] || fail "m_http: watermark not moved"
[ "$(sql "$SRC" "SELECT string_agg(DISTINCT id, ',' ORDER BY id) FROM items WHERE synced")" = "1,2,4,5" ] || fail "f_pg: marked $(sql "$SRC" "SELECT string_agg(id, ',') FROM items WHERE synced")"
# {{key}} in a JSON body keeps the key's type: a number stays a number
marks=$(sa GET /_ctl/dump?coll=marks | python3 -c 'import json,sys; print(",".join("%s:%s" % (r["id"], type(r["sourceId"]).__name__) for r in json.load(sys.stdin)))')
[ "$marks" = "1:int,2:int,4:int,5:int" ] || fail "f_http marks: $marks (expected numeric sourceId for the delivered records)"

# A second run: nothing wedged; unchanged bad records wait for their backoff
once "$T/c.conf" || fail "the second run exited $?"
check 2

# The checkpoint itself takes a key twice in one list (the last element wins): a second line
# of defence behind the strategies' own de-duplication.
psql -X -A -t -q -v ON_ERROR_STOP=1 "$STATE" >"$T/dups.log" 2>&1 <<'SQL' || fail "checkpoint with duplicate keys: $(cat "$T/dups.log")"
DO $$
DECLARE e bigint; s jsonb;
BEGIN
  e := onesync.claim('dups', 'probe', 0, 60000);
  s := onesync.run_start('dups', 'probe', e, 10);
  PERFORM onesync.checkpoint('dups', 'probe', e, (s->>'run')::bigint,
    '{"seen": [["k", "h1", 1], ["k", "h2", 2]], "records_put": [["k", "a"], ["k", "b"]],
      "unmarked_add": [["k", "h1", null, "e1"], ["k", "h2", null, "e2"]],
      "failed": [{"key": "k", "error": "first", "hash": "x"}, {"key": "k", "error": "last", "hash": "y"}],
      "max_attempts": 3, "backoff_ms": 0, "backoff_max_ms": 0}');
  PERFORM onesync.release('probe', ARRAY['dups']);
END $$;
SQL
got=$(sql "$STATE" "SELECT (SELECT hash FROM onesync.seen WHERE job = 'dups') || (SELECT hash FROM onesync.records WHERE job = 'dups')
	|| (SELECT last_error FROM onesync.unmarked WHERE job = 'dups') || (SELECT last_error FROM onesync.failures WHERE job = 'dups')")
[ "$got" = "h2be2last" ] || fail "checkpoint with duplicate keys stored '$got', expected the last of each"
echo "ok"
