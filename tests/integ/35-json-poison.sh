# One value jansson refuses never wedges a job (D2, D3): an HTTP page, a JSON array file and an
# NDJSON file each hold good records among one record per kind of poison: an integer beyond
# 64 bits, a number beyond a double, a lone surrogate (\ud800), invalid UTF-8, nesting deeper
# than jansson's limit, and a record whose key is a lone surrogate. Before, the whole page
# failed on every run, and a JSON array file stopped at the first of them. Now every job
# (modified over HTTP, flag over HTTP, capture over the files) delivers the good records; each
# poison record is in onesync.failures under its key (the key-less one as #nokey:HASH) with
# the reason; a PostgreSQL source row with a numeric beyond 64 bits fails alone too; a second
# run, after a new good record, delivers it.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); SRC=$(new_db src)
FILES=$T/files; mkdir -p "$FILES"
gen() { # VERSION: 1, or 2 with record 4 added
	python3 - "$FILES" "$1" <<'PY'
import sys
d, v = sys.argv[1], int(sys.argv[2])
def ts(i): return b'"2026-01-01T00:00:%02dZ"' % i
def good(i): return b'{"id":%d,"name":"good %d","updatedAt":%s}' % (i, i, ts(i))
deep = b"[" * 3000 + b"0" + b"]" * 3000
recs = [good(1),
    b'{"id":10,"name":"big","n":123456789012345678901234567890,"updatedAt":%s}' % ts(10),
    b'{"id":11,"name":"x\\ud800y","updatedAt":%s}' % ts(11),
    good(2),
    b'{"id":12,"name":"bad \xff\xfe utf8","updatedAt":%s}' % ts(12),
    b'{"id":13,"name":"deep","deep":%s,"updatedAt":%s}' % (deep, ts(13)),
    b'{"id":14,"name":"huge","r":1e999,"updatedAt":%s}' % ts(14),
    b'{"id":"\\udc00","name":"key unreadable","updatedAt":%s}' % ts(15),
    good(3)]
if v == 2: recs.append(good(4))
for name, data in (("page.json", b"[" + b",\n".join(recs) + b"]"), ("page.ndjson", b"\n".join(recs) + b"\n")):
    open(f"{d}/.{name}", "wb").write(data)
    import os; os.rename(f"{d}/.{name}", f"{d}/{name}")
PY
}
gen 1
files_http_start "$FILES"
JOBS="m_http f_http c_json c_ndjson"
for j in $JOBS c_pg; do sql "$DEST" "CREATE TABLE $j (id int PRIMARY KEY, name text, \"updatedAt\" text)"; done
sql "$SRC" "CREATE TABLE items (id int PRIMARY KEY, name text, n numeric, \"updatedAt\" text);
	INSERT INTO items VALUES (1, 'good 1', 1, 't1'), (10, 'big', 1e30, 't10'), (2, 'good 2', 2, 't2')"
dest() {
	echo "destination = { type = \"postgresql\"; conninfo = \"$DEST\"; table = \"$1\";
		columns = { id = \"id\"; name = \"name\"; updatedAt = \"updatedAt\"; }; };"
}
http_src="type = \"http\"; url = \"$FILES_HTTP/page.json\";"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 3; retry_backoff = "0"; timeout = "60s"; };
jobs = (
 { name = "m_http"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = false; };
   source = { $http_src }; $(dest m_http) },
 { name = "f_http"; strategy = "flag"; key = "id";
   source = { $http_src mark = { method = "PUT"; url = "$SA/api/marks/{{key}}";
	body = "{\\"sourceId\\": {{key}}}"; }; }; $(dest f_http) },
 { name = "c_json"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "file://$FILES/page.json"; format = "json"; }; $(dest c_json) },
 { name = "c_ndjson"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "file://$FILES/page.ndjson"; format = "ndjson"; }; $(dest c_ndjson) },
 { name = "c_pg"; strategy = "capture"; key = "id";
   source = { type = "postgresql"; conninfo = "$SRC"; table = "items"; }; $(dest c_pg) }
);
CONF
queue() { sql "$STATE" "SELECT key || ' => ' || last_error FROM onesync.failures WHERE job = '$1' ORDER BY key"; }
expect_queued() { # JOB PATTERN
	queue "$1" | grep -Eq -- "$2" || fail "job $1: no queued failure matching '$2': $(queue "$1" | cut -c1-200)"
}
check() { # RUN WANT-ROWS
	local j res rows
	for j in $JOBS; do
		res=$(sql "$STATE" "SELECT result || ' ' || COALESCE(error, '') FROM onesync.runs WHERE job = '$j' ORDER BY id DESC LIMIT 1")
		[ "$res" = "ok " ] || fail "run $1: job $j ended '$res'"
		rows=$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM $j")
		[ "$rows" = "$2" ] || fail "run $1: job $j: destination rows '$rows', expected '$2'"
		expect_queued $j "^10 => .*field n: integer 123456789012345678901234567890 is beyond 64 bits; onesyncd cannot carry it exactly"
		expect_queued $j "^11 => .*field name: a string holds a lone UTF-16 surrogate U\+D800"
		expect_queued $j "^12 => .*field name: a string holds invalid UTF-8 \(byte 0xff\)"
		expect_queued $j "^13 => .*field deep(\[0\])+\.\.\.: nesting deeper than 1000 levels"
		expect_queued $j "^14 => .*field r: number 1e999 is beyond the range of a double"
		expect_queued $j "^#nokey:.* => .*field id: a string holds a lone UTF-16 surrogate U\+DC00"
		[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = '$j'")" = 6 ] ||
			fail "run $1: job $j: $(queue "$j" | cut -c1-120)"
	done
}
once "$T/c.conf" || fail "the first run exited $?"
check 1 "1,2,3"
[ "$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM c_pg")" = "1,2" ] ||
	fail "c_pg: destination rows $(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM c_pg")"
expect_queued c_pg "^10 => .*field n: integer 1000000000000000000000000000000 is beyond 64 bits"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'c_pg' ORDER BY id DESC LIMIT 1")" = ok ] || fail "c_pg: run not ok"
note "one poison record per kind fails alone, under its key, with the reason; the rest is delivered"

gen 2
once "$T/c.conf" || fail "the second run exited $?"
check 2 "1,2,3,4"
note "a second run delivers a new good record; the poison ones are still queued"
