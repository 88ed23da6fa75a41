# A file read over HTTP (strategy capture) passes the request budgets too: a second run within
# the budget's window of 1 request per 20 s does not reach the server, ends "throttled" (not
# failed) at once (park_after 1 s), and onesyncd --once exits 75.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
sql "$DEST" 'CREATE TABLE c1 (id int PRIMARY KEY, name text, "updatedAt" text, v int)'
sa POST /_ctl/gen '{"coll":"s1","n":20}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; };
budgets = ( { name = "files"; match = [ "$SA/api/s1" ]; rate = [ "1/20s" ]; park_after = "1s"; } );
jobs = (
 { name = "c1"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "$SA/api/s1"; format = "json"; };
   destination = { type = "postgresql"; conninfo = "$DEST"; table = "c1";
	columns = { id = "id"; name = "name"; updatedAt = "updatedAt"; v = "v"; }; }; }
);
CONF
once "$T/c.conf" || fail "the first run failed: $(tail -3 "$T/daemon.log")"
[ "$(sql "$DEST" 'SELECT count(*) FROM c1')" = 20 ] || fail "the first run delivered $(sql "$DEST" 'SELECT count(*) FROM c1') of 20"
once "$T/c.conf"; rc=$?
[ "$rc" = 75 ] || fail "--once exited $rc on a throttled run, expected 75: $(tail -3 "$T/daemon.log")"
r=$(sql "$STATE" "SELECT result || ' ' || error FROM onesync.runs WHERE job = 'c1' ORDER BY id DESC LIMIT 1")
echo "$r" | grep -Eq '^throttled .*throttled until [0-9:]{8} by budget files' || fail "the second run: $r"
n=$(sa GET "/_ctl/seen?prefix=/api/s1" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'])")
[ "$n" = 1 ] || fail "the server saw $n reads of the file, expected 1"
grep -q 'run throttled after' "$T/daemon.log" || fail "no notice of the throttled run"
