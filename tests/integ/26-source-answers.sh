# Source answers that must not be taken at face value (a small HTTP server of its own):
# 1. a file sent with Content-Encoding: gzip whose deflate stream is cut at a flush point
#    (no trailer, Content-Length matching) fails the capture run, nothing deleted; so does
#    an API page cut the same way; an encoding onesyncd cannot decode is a clear error;
# 2. a next link or cursor that comes back (same page, or a cycle A -> B -> A) fails the run
#    naming the link or cursor and the page, for capture, modified and flag, even without
#    a run timeout;
# 3. an element of an API page that is not an object (null) fails alone, for modified,
#    capture and flag: the rest of the page is delivered, the run is ok, again and again.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state); DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE t (id int PRIMARY KEY, name text, ts text)"
PORT=$(free_port)
cat >"$T/web.py" <<'PY'
import http.server, json, sys, zlib
port, mode_file, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lines = [json.dumps({"id": i, "name": f"item {i}", "ts": "2024-01-01T00:00:00Z"}).encode() + b"\n"
         for i in range(1, 101)]
def gz(chunks, cut):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)	# gzip wrapper
    out = b""
    for i, l in enumerate(chunks):
        if cut is not None and i == cut:
            return out				# cut after a flush point: no trailer
        out += c.compress(l) + c.flush(zlib.Z_FULL_FLUSH)
    return out + c.flush()
def rec(i, **kw): return dict({"id": i, "name": f"r{i}", "ts": f"2024-01-01T00:00:0{i}Z"}, **kw)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, body, ce=None, link=None):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if ce: self.send_header("Content-Encoding", ce)
        if link: self.send_header("Link", f'<http://127.0.0.1:{port}{link}>; rel="next"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def do_PATCH(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(b"{}")
    def do_GET(self):
        c = int(open(count_file).read().strip() or 0) + 1	# reset by the test
        open(count_file, "w").write(str(c))
        mode = open(mode_file).read().strip()
        p = self.path
        if p.startswith("/items.ndjson"):
            if mode == "br": return self.answer(b"".join(lines), "br")
            return self.answer(gz(lines, 92 if mode == "cut" else None), "gzip")
        if p.startswith("/api/items"):
            chunks = [b"["] + [l.rstrip(b"\n") + (b"," if i < 99 else b"]") for i, l in enumerate(lines)]
            return self.answer(gz(chunks, 60 if mode == "cut" else None), "x-gzip")
        if p.startswith("/link"):	# the next page is this page, forever
            return self.answer(json.dumps([rec(1), rec(2)]).encode(), link="/link?x=1")
        if p.startswith("/cycle"):	# a -> b -> a
            nxt = "/cycle?p=b" if "p=b" not in p else "/cycle?p=a"
            return self.answer(json.dumps([rec(1), rec(2)]).encode(), link=nxt)
        if p.startswith("/cur"):	# the same cursor, forever
            return self.answer(json.dumps({"data": [rec(1), rec(2)], "next": "tok"}).encode())
        if p.startswith("/null"):
            return self.answer(json.dumps([rec(1), None, rec(2)]).encode())
        self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
echo full >"$T/mode"; echo 0 >"$T/count"
python3 "$T/web.py" "$PORT" "$T/mode" "$T/count" >"$T/web.log" 2>&1 &
PIDS+=("$!")
wait_port "$PORT" || fail "web server"
W=http://127.0.0.1:$PORT

conf() {	# NAME STRATEGY-BITS SOURCE-BITS
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; run_timeout = "0"; };
jobs = ( { name = "$1"; key = "id"; $2
	source = { $3 };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t";
		columns = { id = "id"; name = "name"; ts = "ts"; }; }; } );
CONF
}
run_of() { sql "$STATE" "SELECT $2 FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
rows() { sql "$DEST" "SELECT count(*) FROM t"; }
# once_bounded NAME: one --once run that must end by itself (exit code in $rc)
once_bounded() {
	echo 0 >"$T/count"
	timeout 60 "$ONESYNCD" -c "$T/$1.conf" --once >>"$T/daemon.log" 2>&1; rc=$?
	[ "$rc" != 124 ] || fail "$1: the run did not end (after $(cat "$T/count") requests)"
}

# 1. Content-Encoding: gzip, cut short
conf fgz 'strategy = "capture"; capture = { deletes = true; };' \
	"type = \"file\"; url = \"$W/items.ndjson\"; format = \"ndjson\";"
once "$T/fgz.conf" || fail "full gzip-encoded file: exit $?"
[ "$(run_of fgz "result||' '||delivered")" = "ok 100" ] || fail "full gzip-encoded file: $(run_of fgz "result||' '||delivered")"
echo cut >"$T/mode"
once "$T/fgz.conf"
[ "$(run_of fgz "result||' '||deleted")" = "failed 0" ] || fail "cut gzip-encoded file: $(run_of fgz "result||' '||deleted||' '||coalesce(error,'')")"
run_of fgz error | grep -q "gzip stream ends early" || fail "cut gzip-encoded file: error $(run_of fgz error)"
[ "$(rows)" = 100 ] || fail "cut gzip-encoded file deleted rows: $(rows) left"
echo br >"$T/mode"
once "$T/fgz.conf"
run_of fgz "result||' '||error" | grep -q "^failed .*Content-Encoding 'br'.*cannot decode" || fail "unknown encoding: $(run_of fgz "result||' '||coalesce(error,'')")"
[ "$(rows)" = 100 ] || fail "unknown encoding deleted rows"
note "file: cut gzip encoding fails the run (nothing deleted); unknown encoding named"

conf agz 'strategy = "capture"; capture = { deletes = true; };' \
	"type = \"http\"; url = \"$W/api/items\"; page = { style = \"none\"; };"
echo full >"$T/mode"
once "$T/agz.conf" || fail "full gzip-encoded page: exit $?"
[ "$(run_of agz "result||' '||records_read")" = "ok 100" ] || fail "full gzip-encoded page: $(run_of agz "result||' '||records_read||' '||coalesce(error,'')")"
echo cut >"$T/mode"
once "$T/agz.conf"
run_of agz "result||' '||deleted||' '||error" | grep -q "^failed 0 .*x-gzip stream ends early" || fail "cut gzip-encoded page: $(run_of agz "result||' '||deleted||' '||coalesce(error,'')")"
[ "$(rows)" = 100 ] || fail "cut gzip-encoded page deleted rows"
note "API: a cut gzip-encoded page fails the run"

# 2. next links and cursors that come back
conf caplink 'strategy = "capture";' "type = \"http\"; url = \"$W/link\"; page = { style = \"link\"; size = 2; };"
conf modlink 'strategy = "modified"; modified = { field = "ts"; };' "type = \"http\"; url = \"$W/link\"; page = { style = \"link\"; size = 2; };"
conf modcur 'strategy = "modified"; modified = { field = "ts"; sorted = true; };' \
	"type = \"http\"; url = \"$W/cur\"; query = [ \"c={{cursor}}\" ]; records = \"data\"; page = { style = \"next\"; next = \"next\"; size = 2; };"
conf flagcyc 'strategy = "flag";' "type = \"http\"; url = \"$W/cycle\"; page = { style = \"link\"; size = 2; };
		mark = { method = \"PATCH\"; url = \"$W/mark/{{key}}\"; body = \"{}\"; };"
for j in caplink modlink flagcyc; do
	once_bounded $j
	run_of $j "result||' '||error" | grep -q "^failed the source's next page http://127.0.0.1:$PORT/[a-z]*?[px]=[a-z0-9] (page [0-9]*) was already read in this run" ||
		fail "$j: $(run_of $j "result||' '||coalesce(error,'')")"
	[ "$(cat "$T/count")" -le 4 ] || fail "$j: $(cat "$T/count") requests"
done
once_bounded modcur
run_of modcur "result||' '||error" | grep -q "^failed the source's next cursor 'tok' (page [0-9]*) was already followed" ||
	fail "modcur: $(run_of modcur "result||' '||coalesce(error,'')")"
note "a next link or cursor that comes back fails the run, naming it and the page"

# 3. a page element that is not an object
sql "$DEST" "TRUNCATE t"
conf modnull 'strategy = "modified"; modified = { field = "ts"; };' "type = \"http\"; url = \"$W/null\"; page = { style = \"none\"; };"
conf capnull 'strategy = "capture";' "type = \"http\"; url = \"$W/null\"; page = { style = \"none\"; };"
conf flagnull 'strategy = "flag";' "type = \"http\"; url = \"$W/null\"; page = { style = \"none\"; };
		mark = { method = \"PATCH\"; url = \"$W/mark/{{key}}\"; body = \"{}\"; };"
for j in modnull capnull flagnull; do
	for n in 1 2; do
		once "$T/$j.conf" || fail "$j run $n: exit $?"
		[ "$(run_of $j result)" = ok ] || fail "$j run $n: $(run_of $j "result||' '||coalesce(error,'')")"
	done
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = '$j' AND key LIKE '#nokey:%'
		AND last_error LIKE '%is null, not a JSON object%record 1 of %http://127.0.0.1:$PORT/null%'")" = 1 ] ||
		fail "$j: failures $(sql "$STATE" "SELECT key, last_error FROM onesync.failures WHERE job = '$j'")"
done
[ "$(rows)" = 2 ] || fail "null element: $(rows) rows delivered, expected 2"
note "a null element fails alone (modified, capture, flag); the rest is delivered"
