# A hostile or broken source cannot hold a run forever. (1) A source that ignores the paging
# parameter answers the same records on every page, and a "next page" always follows: the
# run fails once ten pages in a row brought nothing new, naming the cause, and the records
# went once. Strategies capture (Link headers: distinct next links every page), flag and
# modified (page numbers). (2) A file sent at a byte a second: run_timeout ends the run as
# failed (the default is 6h; a small value here), the lease given back.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
recs="[{\"id\":1,\"name\":\"a\",\"updatedAt\":\"$now\",\"done\":false},{\"id\":2,\"name\":\"b\",\"updatedAt\":\"$now\",\"done\":false},{\"id\":3,\"name\":\"c\",\"updatedAt\":\"$now\",\"done\":false}]"
# every list GET of "loop" answers the same three records (page size 3: always a full page)
for c in loopc loopf loopm; do
	sa POST /_ctl/fault "{\"coll\":\"$c\",\"method\":\"GET\",\"status\":200,\"body\":$recs}" >/dev/null
done
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = (
 { name = "capture"; strategy = "capture"; key = "id"; batch = 10;
   source = { type = "http"; url = "$SA/api/loopc"; query = [ "_page={{page}}", "_limit={{limit}}" ];
	page = { style = "page"; size = 3; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/outc/{{key}}"; body = "{{record}}"; }; },
 { name = "flag"; strategy = "flag"; key = "id"; batch = 10;
   source = { type = "http"; url = "$SA/api/loopf"; query = [ "_page={{page}}", "_limit={{limit}}" ];
	page = { style = "page"; size = 3; };
	mark = { method = "PATCH"; url = "$SA/api/loopf/{{key}}"; body = "{\"done\": true}"; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/outf/{{key}}"; body = "{{record}}"; }; },
 { name = "modified"; strategy = "modified"; key = "id"; batch = 10;
   modified = { field = "updatedAt"; sorted = false; };
   source = { type = "http"; url = "$SA/api/loopm"; query = [ "_page={{page}}", "_limit={{limit}}" ];
	page = { style = "page"; size = 3; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/outm/{{key}}"; body = "{{record}}"; }; }
);
CONF
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t.out" 2>&1 || { cat "$T/t.out" >&2; fail "-t refused the config"; }
once "$T/c.conf"; rc=$?
[ "$rc" = 1 ] || fail "the runs exited $rc, want 1 (failed)"
for j in capture flag modified; do
	res=$(sql "$STATE" "SELECT result || '|' || coalesce(error, '') FROM onesync.runs WHERE job = '$j' ORDER BY id DESC LIMIT 1")
	case $res in "failed|"*"the source repeats the same records: 10 pages in a row"*"brought nothing new; it may ignore the paging parameter"*) ;;
	*) fail "job $j: run $res";; esac
	grep -q "job=$j .*the source repeats the same records" "$T/daemon.log" || fail "job $j: no log line"
done
# the records went once each (capture, modified: by key; flag: the first page's, delivered once)
stats() { sa GET "/_ctl/stats?coll=$1" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join("%s:%s" % (k, v) for k, v in sorted(d.get("deliveries", {}).items())))'; }
for c in outc outm; do
	[ "$(stats $c)" = "1:1,2:1,3:1" ] || fail "$c: deliveries $(stats $c), want each record once"
done
note "a source repeating the same page behind new page numbers: capture, flag and modified fail after 10 pages, records delivered once"

# (2) a file sent at a byte a second
port=$(free_port)
/usr/bin/python3 - "$port" >"$T/slow.log" 2>&1 <<'PY' &
import socket, sys, time, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
def serve(c):
    try:
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nid,name\n")
        for i in range(600):		# bounded: ten minutes at most
            c.sendall(b"1"); time.sleep(1)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
PIDS+=("$!")
wait_port "$port" || fail "the slow server did not start"
STATE=$(new_db state2)
cat >"$T/s.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; run_timeout = "3s"; };
jobs = ( { name = "slow"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "http://127.0.0.1:$port/items.csv"; format = "csv"; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/outs/{{key}}"; body = "{{record}}"; }; } );
CONF
once "$T/s.conf"; rc=$?
[ "$rc" = 1 ] || fail "the slow file: exit $rc, want 1"
res=$(sql "$STATE" "SELECT result || '|' || coalesce(error, '') FROM onesync.runs WHERE job = 'slow' ORDER BY id DESC LIMIT 1")
case $res in "failed|run took longer than its run_timeout"*) ;; *) fail "the slow file: run $res";; esac
[ -z "$(sql "$STATE" "SELECT owner FROM onesync.jobs WHERE name = 'slow' AND owner IS NOT NULL")" ] ||
	fail "the slow file: the lease was not given back"
# without run_timeout in the file the default bounds it
"$ONESYNCD" --dump-keys 2>&1 | grep -q 'defaults.run_timeout.*6h' || fail "defaults.run_timeout is not 6h by default"
note "a file at a byte a second: the run fails at run_timeout, recorded, lease given back; the default is 6h"
exit 0
