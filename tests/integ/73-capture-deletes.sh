# Strategy capture deletes only from a complete, trustworthy snapshot, and exactly the row the
# stored key names:
#  1. a composite key mapped to columns in another order: a deletion removes exactly that row;
#  2. the max_delete_ratio guard counts against the records stored before the run, so new
#     records cannot dilute a deletion that is too large;
#  3. capture.min_records: a snapshot with fewer records fails the run and deletes nothing;
#  4. a local file rewritten in place while it is read (cut at a line end) fails the run;
#  5. an HTTP answer without Content-Length or chunked coding (closed early at a line end)
#     is not a complete snapshot;
#  6. HTTP deletes: the key is one escaped path segment; a refused deletion waits for its
#     backoff and is not retried once dead; a later successful deletion clears its failure;
#  7. a destination URL whose host a record field would supply is refused by -t (the origin
#     of a request comes from the configuration);
#  8. a record refused before it was ever stored, then gone from a complete snapshot: its
#     failure goes (state does not keep failures of records that no longer exist).
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE pairs (item_id int, name text, tenant_code text, PRIMARY KEY (tenant_code, item_id));
	CREATE TABLE items (id int PRIMARY KEY, name text);
	CREATE TABLE big (id int PRIMARY KEY, name text);
	CREATE TABLE web (id int PRIMARY KEY, name text);"
WEB_PORT=$(free_port)
DEFAULTS='defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };'
# conf FILE JOB...: a configuration with these jobs
conf() {
	local f=$1; shift
	{ echo "state = { conninfo = \"$STATE\"; };"; echo "$DEFAULTS"; echo "jobs = ( $(IFS=,; echo "$*") );"; } >"$f"
}
pg_job() {	# pg_job NAME FILE TABLE EXTRA-CAPTURE
	echo "{ name = \"$1\"; strategy = \"capture\"; key = \"id\"; batch = 100;
	capture = { deletes = true; ${4:-max_delete_ratio = 0.1;} };
	source = { type = \"file\"; url = \"$2\"; format = \"csv\"; };
	destination = { type = \"postgresql\"; conninfo = \"$DEST\"; table = \"$3\";
		columns = { id = \"id\"; name = \"name\"; }; }; }"
}
run_of() { sql "$STATE" "SELECT result, records_read, delivered, skipped, deleted, failed
	FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
error_of() { sql "$STATE" "SELECT error FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
# csv FILE FIRST LAST [NAME-SUFFIX]: rows FIRST..LAST, written aside and renamed into place
csv() {
	python3 - "$1" "$2" "$3" "${4:-}" <<'PY'
import sys
path, a, b, sfx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(path + ".tmp", "w") as f:
    f.write("id,name\n")
    for i in range(a, b + 1):
        f.write(f"{i},item {i}{sfx}\n")
PY
	mv "$1.tmp" "$1"
}

# --- 1. composite key, columns in another order than the key: delete exactly (a, 3)
for t in a b; do for i in $(seq 1 10); do echo "{\"tenant\":\"$t\",\"id\":$i,\"name\":\"$t$i\"}"; done; done >"$T/pairs.ndjson"
PAIRS="{ name = \"pairs\"; strategy = \"capture\"; key = [ \"tenant\", \"id\" ];
	capture = { deletes = true; max_delete_ratio = 0.1; };
	source = { type = \"file\"; url = \"file://$T/pairs.ndjson\"; format = \"ndjson\"; };
	destination = { type = \"postgresql\"; conninfo = \"$DEST\"; table = \"pairs\";
		columns = { name = \"name\"; item_id = \"id\"; tenant_code = \"tenant\"; }; }; }"
conf "$T/pairs.conf" "$PAIRS"
once "$T/pairs.conf" || fail "pairs: first run exited $?"
[ "$(run_of pairs)" = "ok|20|20|0|0|0" ] || fail "pairs: first run $(run_of pairs)"
grep -v '"tenant":"a","id":3,' "$T/pairs.ndjson" >"$T/p.tmp"; mv "$T/p.tmp" "$T/pairs.ndjson"
once "$T/pairs.conf" || fail "pairs: second run exited $?"
[ "$(run_of pairs)" = "ok|19|0|19|1|0" ] || fail "pairs: second run $(run_of pairs)"
[ "$(sql "$DEST" "SELECT string_agg(tenant_code || item_id, ',' ORDER BY tenant_code, item_id) FROM pairs WHERE item_id = 3")" = b3 ] ||
	fail "pairs: the wrong rows were deleted: $(sql "$DEST" "SELECT count(*) FROM pairs")"
[ "$(sql "$DEST" "SELECT count(*) FROM pairs")" = 19 ] || fail "pairs: $(sql "$DEST" "SELECT count(*) FROM pairs") rows left"
note "composite key: (a, 3) deleted by tenant_code and item_id, (b, 3) kept"

# --- 2. the guard's denominator: 12 of 100 stored records gone and 50 new ones = 12%, not 8%
F=$T/items.csv
csv "$F" 1 100
conf "$T/items.conf" "$(pg_job items "file://$F" items)"
once "$T/items.conf" || fail "items: first run exited $?"
[ "$(run_of items)" = "ok|100|100|0|0|0" ] || fail "items: first run $(run_of items)"
csv "$F" 13 150
if once "$T/items.conf"; then fail "ratio: 12 of 100 stored records gone (12%) passed a 10% guard"; fi
case $(error_of items) in
*max_delete_ratio*"lacks 12 of the 100 records stored before this run"*) ;;
*) fail "ratio: the error does not name the guard and 12 of 100: $(error_of items)";;
esac
[ "$(sql "$DEST" "SELECT count(*) FROM items WHERE id <= 12")" = 12 ] || fail "ratio: rows were deleted"
note "guard: $(error_of items | cut -c1-140)"

# --- 3. capture.min_records: 133 records where 134 are expected fails; 133 expected passes
csv "$F" 13 145
conf "$T/min.conf" "$(pg_job items "file://$F" items "max_delete_ratio = 0.5; min_records = 134;")"
if once "$T/min.conf"; then fail "min_records: a snapshot of 133 records passed a floor of 134"; fi
case $(error_of items) in *"capture.min_records"*"133 records, fewer than 134"*) ;;
*) fail "min_records: the error does not name the floor: $(error_of items)";; esac
note "min_records: $(error_of items | cut -c1-120)"
[ "$(sql "$DEST" "SELECT count(*) FROM items")" = 150 ] || fail "min_records: rows were deleted"
conf "$T/min.conf" "$(pg_job items "file://$F" items "max_delete_ratio = 0.5; min_records = 133;")"
once "$T/min.conf" || fail "min_records met: run exited $? ($(error_of items))"
[ "$(run_of items)" = "ok|133|0|133|17|0" ] || fail "min_records met: run $(run_of items)"
same_file "$DEST" items "$F" csv id,name || fail "min_records met: the table differs from the file"

# --- 4. the file is cut in place (at a line end) while the run reads it
B=$T/big.csv
csv "$B" 1 5000 " $(printf '%080d' 0)"
conf "$T/big.conf" "$(pg_job big "file://$B" big)"
once "$T/big.conf" || fail "big: first run exited $?"
csv "$B" 1 5000 " v2 $(printf '%080d' 0)"
# Hold the first delivery on a lock, cut the file once the run waits on it, then let go.
PGAPPNAME=locker psql -X -q "$DEST" -c "BEGIN; LOCK TABLE big IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120);" >/dev/null 2>&1 &
PIDS+=("$!")
waiting() { [ "$(sql "$DEST" "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'big' AND NOT l.granted")" -ge 1 ]; }
locked() { [ "$(sql "$DEST" "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'big' AND l.granted AND l.mode = 'AccessExclusiveLock'")" = 1 ]; }
wait_for 20 locked || fail "big: the lock was not taken"
once "$T/big.conf" &
RUN=$!
wait_for 30 waiting || fail "big: the run never waited for the destination"
python3 - "$B" <<'PY'
import sys
p = sys.argv[1]
data = open(p, "rb").read()
cut = 0
for _ in range(4901):		# the header and 4,900 rows
    cut = data.index(b"\n", cut) + 1
with open(p, "r+b") as f:
    f.truncate(cut)
PY
sql "$DEST" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker'" >/dev/null
if wait "$RUN"; then fail "big: the run over a file cut while it was read succeeded"; fi
case $(error_of big) in *"changed while it was read"*) ;;
*) fail "big: the error does not say the file changed: $(error_of big)";; esac
[ "$(sql "$DEST" "SELECT count(*) FROM big")" = 5000 ] || fail "big: rows were deleted after a cut file"
note "file cut mid-read: $(error_of big | cut -c1-160)"

# --- 5. an HTTP answer without Content-Length, closed at a line end
cat >"$T/web.py" <<'PY'
import http.server, os, sys
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = open(os.path.join(root, "web.csv"), "rb").read()
        framed = open(os.path.join(root, "web.mode")).read().strip() == "framed"
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        if framed:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$T/web.py" "$WEB_PORT" "$T" >"$T/web.log" 2>&1 &
PIDS+=("$!")
wait_port "$WEB_PORT" || fail "the web server did not start"
csv "$T/web.csv" 1 100
echo framed >"$T/web.mode"
conf "$T/web.conf" "$(pg_job web "http://127.0.0.1:$WEB_PORT/web.csv" web)"
once "$T/web.conf" || fail "web: first run exited $? ($(error_of web))"
[ "$(run_of web)" = "ok|100|100|0|0|0" ] || fail "web: first run $(run_of web)"
csv "$T/web.csv" 1 95
echo close >"$T/web.mode"
if once "$T/web.conf"; then fail "web: an unframed answer passed for a complete snapshot"; fi
case $(error_of web) in *"neither Content-Length nor chunked"*) ;;
*) fail "web: the error does not name the missing framing: $(error_of web)";; esac
[ "$(sql "$DEST" "SELECT count(*) FROM web")" = 100 ] || fail "web: rows were deleted after an unframed answer"
echo framed >"$T/web.mode"
once "$T/web.conf" || fail "web: framed run exited $? ($(error_of web))"
[ "$(run_of web)" = "ok|95|0|95|5|0" ] || fail "web: framed run $(run_of web)"
note "unframed HTTP: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'web' AND result = 'failed' ORDER BY id DESC LIMIT 1" | cut -c1-150)"

# --- 6. HTTP deletes: escaped key, backoff, dead-lettering, failures cleared
A=$T/api.ndjson
api_file() {	# api_file KEY...: one record per key
	local k
	for k in "$@"; do echo "{\"id\":\"$k\",\"name\":\"n-$k\"}"; done >"$A.tmp"; mv "$A.tmp" "$A"
}
api_job() {	# api_job BACKOFF MAX_ATTEMPTS
	echo "{ name = \"api\"; strategy = \"capture\"; key = \"id\"; retry_backoff = \"$1\";
	retry_backoff_max = \"1d\"; max_attempts = $2;
	capture = { deletes = true; max_delete_ratio = 0.5; };
	source = { type = \"file\"; url = \"file://$A\"; format = \"ndjson\"; };
	destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/mirror/{{key}}\";
		delete = { url = \"$SA/api/mirror/{{key}}\"; }; }; }"
}
conf "$T/api-now.conf" "$(api_job 0 5)"
conf "$T/api-later.conf" "$(api_job 1h 5)"
conf "$T/api-dead.conf" "$(api_job 0 1)"
deletes() { sa GET /_ctl/stats?coll=mirror | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["DELETE"])'; }
failure() { sql "$STATE" "SELECT attempts || '|' || dead FROM onesync.failures WHERE job = 'api' AND key = '$1'"; }
KEYS="k1 k2 k3 k4 k5 k6 k7 k8 k9 x x/1"
api_file $KEYS
once "$T/api-now.conf" || fail "api: first run exited $?"
[ "$(run_of api)" = "ok|11|11|0|0|0" ] || fail "api: first run $(run_of api)"
# x/1 goes (its DELETE must not touch x); k5's deletion is refused once
api_file k1 k2 k3 k4 k6 k7 k8 k9 x
sa POST /_ctl/fault '{"coll":"mirror","method":"DELETE","status":400,"keys":["k5"],"times":1}' >/dev/null
once "$T/api-later.conf" || fail "api: refused deletion run exited $?"
[ "$(run_of api)" = "ok|9|0|9|1|1" ] || fail "api: refused deletion run $(run_of api)"
sa GET /api/mirror/x | grep -q '"id"' || fail "api: deleting x/1 removed x"
sa GET /api/mirror/x%2F1 | grep -q '"id"' && fail "api: x/1 was not deleted"
[ "$(failure k5)" = "1|false" ] || fail "api: k5's refused deletion is not queued: '$(failure k5)'"
D=$(deletes)
once "$T/api-later.conf" || fail "api: backoff run exited $?"
[ "$(deletes)" = "$D" ] || fail "api: the refused deletion was retried before its backoff ($D -> $(deletes) DELETE requests)"
[ "$(failure k5)" = "1|false" ] || fail "api: k5's failure changed during its backoff: '$(failure k5)'"
"$CTL" -c "$T/api-later.conf" retry api k5 >/dev/null || fail "onesyncctl retry failed"
once "$T/api-later.conf" || fail "api: due retry run exited $?"
[ "$(run_of api)" = "ok|9|0|9|1|0" ] || fail "api: due retry run $(run_of api)"
[ "$(failure k5)" = "" ] || fail "api: k5 was deleted but its failure stays: '$(failure k5)'"
sa GET /api/mirror/k5 | grep -q '"id"' && fail "api: k5 was not deleted"
# dead-lettered after one attempt: never tried again
api_file k1 k2 k3 k4 k7 k8 k9 x
sa POST /_ctl/fault '{"coll":"mirror","method":"DELETE","status":400,"keys":["k6"],"times":5}' >/dev/null
once "$T/api-dead.conf" || fail "api: dead run exited $?"
[ "$(failure k6)" = "1|true" ] || fail "api: k6's refused deletion is not dead with max_attempts = 1: '$(failure k6)'"
D=$(deletes)
once "$T/api-dead.conf" || fail "api: after dead run exited $?"
[ "$(deletes)" = "$D" ] || fail "api: a dead deletion was tried again ($D -> $(deletes) DELETE requests)"
# k6 back in the file unchanged: the destination has it as it is, the failure goes
sa DELETE /_ctl/fault >/dev/null
api_file k1 k2 k3 k4 k6 k7 k8 k9 x
once "$T/api-dead.conf" || fail "api: k6 back run exited $?"
[ "$(failure k6)" = "" ] || fail "api: k6 is back unchanged but its failure stays: '$(failure k6)'"
note "HTTP deletes: x/1 as x%2F1; a refused deletion waits for its backoff, stops once dead, is cleared once done"

# --- 7. a URL whose host a record field would supply never loads
conf "$T/host.conf" "{ name = \"host\"; strategy = \"capture\"; key = \"id\";
	source = { type = \"file\"; url = \"file://$A\"; format = \"ndjson\"; };
	destination = { type = \"http\"; method = \"PUT\"; url = \"http://{{record.host}}/api/mirror/{{key}}\"; }; }"
out=$("$ONESYNCD" -t -c "$T/host.conf" 2>&1) && fail "host: a record field as the host passed -t"
echo "$out" | grep -q "^$T/host.conf:[0-9]*: 'destination.url': {{record.host}} may go only in the path" ||
	fail "host: -t says: $out"
note "record field as host: $(echo "$out" | cut -c1-140)"

# --- 8. refused, never stored, then gone from the source: its failure is cleared
sql "$DEST" "CREATE TABLE checked (id int PRIMARY KEY, name text CHECK (name <> 'item 3'))"
csv "$T/checked.csv" 1 5
conf "$T/checked.conf" "$(pg_job checked "file://$T/checked.csv" checked)"
once "$T/checked.conf" || fail "checked: first run exited $?"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures WHERE job = 'checked'")" = 3 ] ||
	fail "checked: record 3 should wait in the retry queue"
csv "$T/checked.csv" 4 6
conf "$T/checked.conf" "$(pg_job checked "file://$T/checked.csv" checked "max_delete_ratio = 1.0;")"
once "$T/checked.conf" || fail "checked: second run exited $?"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'checked'")" = 0 ] ||
	fail "checked: the failure of record 3, gone from the source, stays in the retry queue"
grep -q "job=checked.*1 failures of records no longer in the source cleared" "$T/daemon.log" ||
	fail "checked: no log line for the cleared failure"
[ "$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM checked")" = "4,5,6" ] ||
	fail "checked: destination $(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM checked")"
note "a refused record gone from the source leaves no failure behind"
exit 0
