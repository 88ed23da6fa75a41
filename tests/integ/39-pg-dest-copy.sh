# A PostgreSQL destination fed by COPY through a staging table keeps every value exact and
# refuses only the rows at fault:
#  1. text with tab, newline, CR, backslash, quotes, "\N", "\.", unicode arrives exact; json,
#     jsonb, int[], a composite type, numeric, timestamptz, bool columns take the values as
#     they did through json_populate_recordset (a number or an object into a text column is
#     its JSON text, null and missing are NULL);
#  2. a value the column type refuses (the COPY itself fails) and a NUL character refuse
#     their rows alone, each with its key and the reason;
#  3. a record delivered again unchanged (an unmapped field changed) leaves its row alone
#     (same xmin: no new row version), a changed one is updated, also when the column's type
#     calls old and new equal but their text differs (numeric 12.5 -> 12.50);
#  4. deletions by a composite key (one part with a tab and a backslash) go by COPY too;
#  5. the destination's sessions are terminated between two runs of a daemon: the next run
#     opens new ones, creates the staging table again and delivers.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state); DEST=$(new_db dest)
PY=/usr/bin/python3
sql "$DEST" "CREATE TYPE pt AS (x int, y int);
CREATE TABLE v (id int PRIMARY KEY, name text, doc jsonb, raw json, tags int[], p pt,
	amount numeric, at timestamptz, ok bool, note text);
CREATE TABLE pairs (code text, n int, name text, PRIMARY KEY (code, n));"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1s"; jitter = "0"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = ( { name = "v"; strategy = "capture"; key = "id"; batch = 100;
	source = { type = "file"; url = "file://$T/v.ndjson"; format = "ndjson"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "v";
		columns = { id = "id"; name = "name"; doc = "doc"; raw = "raw"; tags = "tags";
			p = "p"; amount = "amount"; at = "at"; ok = "ok"; note = "note"; }; }; },
	{ name = "pairs"; strategy = "capture"; key = [ "code", "n" ]; batch = 100;
	capture = { deletes = true; max_delete_ratio = 0.5; };
	source = { type = "file"; url = "file://$T/pairs.ndjson"; format = "ndjson"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "pairs";
		columns = { code = "code"; n = "n"; name = "name"; }; }; } );
CONF
run_of() { sql "$STATE" "SELECT result||' delivered '||delivered||' failed '||failed||' deleted '||deleted||' '||coalesce(error,'') FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
failures() { sql "$STATE" "SELECT string_agg(key||': '||last_error, ' | ' ORDER BY key) FROM onesync.failures WHERE job = '$1'"; }
# records VERSION: v.ndjson (the records of part 1, then 6..50) and its expected rows
records() {
	"$PY" - "$T" "$1" <<'PY'
import json, sys
d, ver = sys.argv[1], int(sys.argv[2])
odd = 'a\tb\nc\rd\\e"f\'g \\N \\. \u00e9\u4e2d\U0001F600 end\\'
recs = [
	{"id": 1, "name": odd, "doc": {"k": [1, "x\ty\\"], "e": "\u00e9"}, "raw": "s\\n\t",
	 "tags": [1, 2, 3], "p": {"x": 1, "y": 2}, "amount": 12.5, "at": "2026-01-02T03:04:05.678Z",
	 "ok": True},
	{"id": 2, "name": "\\N", "doc": "just a string", "raw": None, "tags": None, "p": None,
	 "amount": "7", "ok": "false", "note": 42},
	{"id": 3, "name": "line\n", "doc": {"nested": {"a": None}}, "note": {"o": [1, "t"]},
	 "tags": "{4,5}", "p": "(3,4)"},
	{"id": 4, "name": "bad amount", "amount": "abc"},
	{"id": 5, "name": "nul\u0000inside"},
]
recs += [{"id": i, "name": f"item {i}", "amount": i} for i in range(6, 51)]
if ver == 2:
	recs[9]["extra"] = "not mapped"	# id 10: delivered again, its row unchanged
	recs[10]["name"] = "item 11 changed"
	recs[0]["amount"] = "12.50"	# id 1: numeric calls it equal, its text changed
with open(f"{d}/v.ndjson", "w") as f:
	for r in recs:
		f.write(json.dumps(r) + "\n")
json.dump(recs, open(f"{d}/v.json", "w"))
PY
}
# check: the rows of v are the records (4 and 5 absent), compared value by value
check() {
	"$PY" - "$T" "$DEST" <<'PY'
import json, sys, decimal, datetime, psycopg2
d, dsn = sys.argv[1], sys.argv[2]
recs = {r["id"]: r for r in json.load(open(f"{d}/v.json"))}
db = psycopg2.connect(dsn); cur = db.cursor()
cur.execute("SET TimeZone = 'UTC'")
cur.execute("SELECT id, name, doc, raw::text, tags, p::text, amount, at, ok, note FROM v ORDER BY id")
rows = {r[0]: r for r in cur.fetchall()}
bad = []
if sorted(rows) != sorted(k for k in recs if k not in (4, 5)):
	bad.append(f"ids {sorted(rows)}")
def want(r):
	note = r.get("note")
	tags = r.get("tags")
	p = r.get("p")
	at = r.get("at")
	return (r["id"], r.get("name"), r.get("doc"),
		json.dumps(r["raw"], separators=(",", ":")) if r.get("raw") is not None else None,
		[4, 5] if tags == "{4,5}" else tags,
		f"({p['x']},{p['y']})" if isinstance(p, dict) else p,
		decimal.Decimal(str(r["amount"])) if r.get("amount") is not None else None,
		datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc) if at else None,
		{True: True, "false": False}.get(r.get("ok")),
		note if note is None or isinstance(note, str) else json.dumps(note, separators=(",", ":")))
for k, row in rows.items():
	w = want(recs[k])
	got = list(row)
	if got[9] is not None and k == 3:
		got[9] = json.dumps(json.loads(got[9]), separators=(",", ":"))
	if tuple(got) != w:
		bad.append(f"row {k}: {tuple(got)!r} != {w!r}")
if bad:
	print("; ".join(bad[:4])); sys.exit(1)
PY
}

# --- 1, 2: exact values; rows 4 and 5 refused alone
records 1
once "$T/c.conf" v || fail "values: the run failed: $(run_of v)"
out=$(check) || fail "values: $out"
f=$(failures v)
case $f in "4: destination table refused the row of key 4: "*"invalid input syntax for type numeric"*" | 5: destination table refused the row of key 5: "*"NUL character"*) ;;
*) fail "values: failures '$f'";; esac
note "values: $(run_of v)"

# --- 3: row 10 delivered again unchanged keeps its xmin; row 11 is updated
x10=$(sql "$DEST" "SELECT xmin FROM v WHERE id = 10"); x11=$(sql "$DEST" "SELECT xmin FROM v WHERE id = 11")
records 2
once "$T/c.conf" v || fail "unchanged: the run failed: $(run_of v)"
case $(run_of v) in "ok delivered "[1-9]*) ;; *) fail "unchanged: run '$(run_of v)': nothing delivered";; esac
[ "$(sql "$DEST" "SELECT xmin FROM v WHERE id = 10")" = "$x10" ] || fail "unchanged: row 10 was written again"
[ "$(sql "$DEST" "SELECT xmin FROM v WHERE id = 11")" != "$x11" ] || fail "unchanged: row 11 was not updated"
[ "$(sql "$DEST" "SELECT amount FROM v WHERE id = 1")" = 12.50 ] || fail "unchanged: row 1 keeps amount $(sql "$DEST" "SELECT amount FROM v WHERE id = 1"), not 12.50"
out=$(check) || fail "unchanged: $out"

# --- 4: deletions by a composite key
"$PY" -c '
import json, sys
with open(sys.argv[1], "w") as f:
	for code, n in (("a", 1), ("a", 2), ("t\tb\\", 1), ("b", 1), ("c", 9)):
		f.write(json.dumps({"code": code, "n": n, "name": f"{code}/{n}"}) + "\n")' "$T/pairs.ndjson"
once "$T/c.conf" pairs || fail "deletes: the first run failed: $(run_of pairs)"
[ "$(sql "$DEST" "SELECT count(*) FROM pairs")" = 5 ] || fail "deletes: $(sql "$DEST" "SELECT count(*) FROM pairs") rows, expected 5"
"$PY" -c '
import json, sys
with open(sys.argv[1], "w") as f:
	for code, n in (("a", 1), ("b", 1), ("c", 9)):
		f.write(json.dumps({"code": code, "n": n, "name": f"{code}/{n}"}) + "\n")' "$T/pairs.ndjson"
once "$T/c.conf" pairs || fail "deletes: the second run failed: $(run_of pairs)"
left=$(sql "$DEST" "SELECT string_agg(code||n, ',' ORDER BY code, n) FROM pairs")
[ "$left" = a1,b1,c9 ] || fail "deletes: rows left '$left', expected a1,b1,c9 ($(run_of pairs))"
[ -z "$(failures pairs)" ] || fail "deletes: failures: $(failures pairs)"

# --- 5: the destination's sessions end between two runs of a daemon
daemon_start "$T/c.conf"
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'v' AND result = 'ok'"; }
more_runs() { [ "$(runs)" -gt "$1" ]; }
row12() { [ "$(sql "$DEST" "SELECT name FROM v WHERE id = 12")" = "item 12 after the reconnect" ]; }
n0=$(runs)
wait_for 30 more_runs "$n0" || fail "reconnect: no run of the daemon succeeded"
sql "$DEST" "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" >/dev/null
sed -i 's/"item 12"/"item 12 after the reconnect"/' "$T/v.ndjson"
wait_for 60 row12 ||
	fail "reconnect: row 12 not delivered after the sessions ended ($(run_of v))"
n1=$(runs)
wait_for 30 more_runs "$n1" || fail "reconnect: no run succeeded after ($(run_of v))"
note "reconnect: $(run_of v)"
exit 0
