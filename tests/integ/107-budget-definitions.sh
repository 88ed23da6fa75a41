# Instances that define one budget name differently are warned of it: instance "a" defines
# budget "api" as 100 per second, instance "b", started while "a" runs, as 50 per second: b's
# log names the budget, what differs (the rates, here and there) and instance a. With the
# same definitions on both, neither warns. A definition another process wrote into the
# state database is shown escaped and cut short (it cannot start a log line of its own).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
conf() {	# conf INSTANCE JOB RATE
	cat >"$T/$1.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { instance = "$1"; lease = "5s"; stop_timeout = "5s"; };
defaults = { interval = "1h"; retries = 0; };
budgets = ( { name = "api"; match = [ "$SA/api/" ]; rate = [ "$3", "100000/1d" ]; concurrency = 4; } );
jobs = ( { name = "$2"; strategy = "modified"; key = "id";
  modified = { field = "updatedAt"; sorted = true; };
  source = { url = "$SA/api/s$2"; page = { style = "page"; size = 10; };
    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
  destination = { type = "http"; method = "PUT"; url = "$SA/api/d$2/{{key}}"; body = "{{record}}"; }; } );
C
}
ran() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND result = 'ok'")" -ge 1 ]; }
start() {	# start INSTANCE JOB: run it until its job ran once
	"$ONESYNCD" -c "$T/$1.conf" >>"$T/$1.log" 2>&1 &
	PIDS+=("$!"); eval "PID_$1=$!"
	wait_for 20 ran "$2" || fail "instance $1 did not run job $2: $(tail -5 "$T/$1.log")"
}
stop() { local p; eval "p=\$PID_$1"; kill -TERM "$p"; wait "$p" || fail "instance $1 did not exit 0"; }
for j in 1 2 3 4; do sa POST /_ctl/gen "{\"coll\":\"s$j\",\"n\":5}" >/dev/null; done

# 1. differing rates: the second instance warns, naming the budget, what differs, the other
conf a 1 "100/1s"; conf b 2 "50/1s"
start a 1
start b 2
grep -F 'budget api: instance a defines it otherwise (rate ["50/1s","100000/1d"] here, ["100/1s","100000/1d"] there)' "$T/b.log" ||
	fail "instance b did not warn of a's definition: $(grep -i budget "$T/b.log")"
[ "$(grep -c 'defines it otherwise' "$T/b.log")" = 1 ] || fail "the warning is not logged once: $(grep 'defines it otherwise' "$T/b.log")"
grep -q 'concurrency' "$T/b.log" && fail "concurrency (each instance's own) was compared"

# 2. a definition written by another process: shown escaped, on one line
psql -X -q -v ON_ERROR_STOP=1 "$STATE" >/dev/null <<'Q' || fail "cannot write the forged definition"
INSERT INTO onesync.instances (id, incarnation, heartbeat_at)
  VALUES (E'evil\n<3>forged' || repeat('é', 100), 'x', now() + interval '1 hour');
INSERT INTO onesync.budget_defs (name, instance, fingerprint, definition)
  VALUES ('api', E'evil\n<3>forged' || repeat('é', 100), 'f', '{"rate": "a\nb", "match": 1}');
Q
kill -HUP "$PID_b"	# a reload compares again at the next take
sleep 1
"${ONESYNCCTL:-$TOP/src/onesyncctl}" -c "$T/b.conf" run 2 >/dev/null 2>&1 || fail "onesyncctl run 2 failed"
wait_for 20 grep -q 'instance evil' "$T/b.log" || fail "no warning of the forged definition: $(grep -i budget "$T/b.log")"
grep -q '^<3>forged' "$T/b.log" && fail "a stored instance name started a log line of its own"
grep -F 'instance evil\n<3>forged' "$T/b.log" | grep -F 'ééé... defines it otherwise (rate ["50/1s","100000/1d"] here, "a\nb" there; reserve' ||
	fail "the forged definition is not shown escaped and cut: $(grep 'evil' "$T/b.log")"
iconv -f UTF-8 -t UTF-8 "$T/b.log" >/dev/null || fail "the log is not UTF-8 (a character cut in two)"
stop b; stop a

# 3. the same definitions: no warning
sql "$STATE" "DROP SCHEMA onesync CASCADE"
conf a 3 "100/1s"; conf b 4 "100/1s"
: >"$T/a.log"; : >"$T/b.log"
start a 3; start b 4
sleep 1
grep -i 'defines it otherwise\|cannot compare' "$T/a.log" "$T/b.log" && fail "a warning with the same definitions"
stop b; stop a
exit 0
