# A gzip bomb at a file source: 7.7 MB of CSV (500,000 rows, 500 keys over and over) in 50 KB
# of gzip, less than one transfer chunk, read by a capture job into PostgreSQL over file://,
# http:// (a .gz name; and Content-Encoding: gzip on a plain name) and ftp://. Every run reads
# all 500,000 rows and leaves the table equal to the file, and the daemon's peak memory (its
# maximum resident set, the VmHWM of a --once run) stays within that of the same rows read
# plain over the same transport: at most twice it, or it plus 64 MB. So do a file of two gzip
# members, and a line that inflates to 256 MB: skipped past max_record (16 MB) with a
# message naming the file and the line, the rows around it delivered.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
DEST=$(new_db dest)
FILES=$T/files
mkdir -p "$FILES"

# items.csv (and .gz): header, then rows k,"item k",k%97 for k = 1..500, 1,000 times over;
# multi.csv.gz: two members, the second with keys 501..1000; long.csv.gz: row 2 has a name
# of 256 MB between rows 1 and 3.
python3 - "$FILES" <<'PY'
import gzip, os, sys, zlib
d = sys.argv[1]
def rows(a, b): return "".join(f"{k},item {k},{k % 97}\n" for k in range(a, b + 1))
hdr = "id,name,qty\n"
data = (hdr + rows(1, 500) * 1000).encode()
open(f"{d}/items.csv", "wb").write(data)
open(f"{d}/items.csv.gz", "wb").write(gzip.compress(data, 9))
open(f"{d}/multi.csv.gz", "wb").write(gzip.compress((hdr + rows(1, 500) * 500).encode(), 9) +
                                      gzip.compress((rows(501, 1000) * 500).encode(), 9))
z = zlib.compressobj(9, zlib.DEFLATED, 31)
out = [z.compress((hdr + rows(1, 1) + "2,").encode())]
block = b"x" * (1 << 20)
for _ in range(256):
    out.append(z.compress(block))
out.append(z.compress(b",2\n" + rows(3, 3).encode()))
out.append(z.flush())
open(f"{d}/long.csv.gz", "wb").write(b"".join(out))
PY
[ "$(stat -c %s "$FILES/items.csv.gz")" -lt 65536 ] || fail "the bomb is larger than one chunk"

# A web server of its own: /plain/NAME sends the file as it is; /ce/NAME sends NAME.gz with
# Content-Encoding: gzip (the transfer is compressed, the file is not).
PORT=$(free_port)
cat >"$T/web.py" <<'PY'
import http.server, os, sys
port, root = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        kind, _, name = self.path.lstrip("/").partition("/")
        path = os.path.join(root, os.path.basename(name)) + (".gz" if kind == "ce" else "")
        if kind not in ("plain", "ce") or not os.path.isfile(path):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
            return
        body = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        if kind == "ce": self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$T/web.py" "$PORT" "$FILES" >"$T/web.log" 2>&1 &
PIDS+=("$!")
wait_port "$PORT" || fail "web server"
W=http://127.0.0.1:$PORT
ftp_start "$FILES"

# run_job NAME URL: a capture job from URL into table t_NAME, run once; its peak memory in
# KB goes to $T/NAME.rss.
run_job() {
	sql "$DEST" "CREATE TABLE t_$1 (id int PRIMARY KEY, name text, qty int)"
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = ( { name = "$1"; strategy = "capture"; key = "id"; batch = 500;
	capture = { deletes = true; };
	source = { type = "file"; url = "$2"; format = "csv"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t_$1";
		columns = { id = "id"; name = "name"; qty = "qty"; }; }; } );
CONF
	timeout 120 /usr/bin/time -f %M -o "$T/$1.rss" "$ONESYNCD" -c "$T/$1.conf" --once \
		>>"$T/daemon.log" 2>&1 || fail "$1: the run exited $?"
	note "$1: peak $(tail -1 "$T/$1.rss") KB"
}
run_of() { sql "$STATE" "SELECT result || ' ' || records_read || ' ' || failed FROM onesync.runs
	WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
# table_is NAME N: t_NAME holds exactly the rows 1..N as the files have them
table_is() {
	local got
	got=$(sql "$DEST" "SELECT count(*) || ' ' || count(*) FILTER (WHERE name = 'item ' || id AND
		qty = id % 97 AND id BETWEEN 1 AND $2) FROM t_$1")
	[ "$got" = "$2 $2" ] || fail "$1: the table holds $got (rows, rows as in the file), expected $2 $2"
}
# bounded NAME PLAIN: NAME's peak memory is within max(2 x PLAIN's, PLAIN's + 64 MB)
bounded() {
	local g p
	g=$(tail -1 "$T/$1.rss"); p=$(tail -1 "$T/$2.rss")
	[ "$g" -le $(( 2 * p > p + 65536 ? 2 * p : p + 65536 )) ] ||
		fail "$1: peak memory $g KB, the same rows read plain ($2) $p KB"
}

# 1. The same 500,000 rows, plain and gzip, over each transport.
for t in "file file://$FILES" "http $W/plain" "ftp $FTP"; do
	set -- $t
	run_job "$1_plain" "$2/items.csv"
	run_job "$1_gz" "$2/items.csv.gz"
done
run_job http_ce "$W/ce/items.csv"
for j in file_plain file_gz http_plain http_gz http_ce ftp_plain ftp_gz; do
	[ "$(run_of $j)" = "ok 500000 0" ] || fail "$j: the run (result, read, failed) is $(run_of $j)"
	table_is $j 500
done
for t in file http ftp; do bounded ${t}_gz ${t}_plain; done
bounded http_ce http_plain
note "500,000 rows in 50 KB of gzip: all read, memory as for the plain file, over file, http (.gz, Content-Encoding) and ftp"

# 2. Two gzip members in one chunk: the second one's rows arrive too, within the same bound.
run_job multi "file://$FILES/multi.csv.gz"
[ "$(run_of multi)" = "ok 500000 0" ] || fail "multi: the run (result, read, failed) is $(run_of multi)"
table_is multi 1000
bounded multi file_plain
note "two gzip members: 1,000 keys, bounded"

# 3. A row that inflates to 256 MB: skipped past max_record, named; rows 1 and 3 delivered.
run_job long "file://$FILES/long.csv.gz"
[ "$(run_of long)" = "ok 3 1" ] || fail "long: the run (result, read, failed) is $(run_of long)"
sql "$DEST" "SELECT id FROM t_long ORDER BY id" | tr '\n' ' ' | grep -qx '1 3 ' ||
	fail "long: the table holds ids $(sql "$DEST" "SELECT id FROM t_long ORDER BY id" | tr '\n' ' ')"
grep -q "job=long run=.*long.csv.gz line 3: the record is longer than 16777216 bytes (max_record): skipped" "$T/daemon.log" ||
	fail "long: no message naming the file, the line and max_record"
bounded long file_plain
note "a 256 MB line: skipped past max_record, the rest delivered, bounded"
exit 0
