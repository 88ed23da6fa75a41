# The status endpoint (daemon.status_listen): /metrics in the Prometheus text format moves by
# the numbers of known runs (120 read, 117 delivered, 3 refused with 422; then the 3 retried),
# the same numbers as the runs table; runs_total, the duration histogram, lease_held, the queue
# gauges; /jobs has the keys of `onesyncctl jobs --json`; HEAD, 404, 405; /healthz 200, then 503
# while the test's own PostgreSQL is down, 200 again once it is back; a reload that changes
# status_listen warns and keeps the endpoint; an address in use or malformed is logged and
# the daemon carries on without the endpoint; SIGTERM exits 0.
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
pg_private
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":120}' >/dev/null
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[10,20,30],"status":422,"body":"{\"error\":\"email rejected\"}"}' >/dev/null
write() {	# write LISTEN
	cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; connect_timeout = "${CONNTO:-10s}"; };
daemon = { instance = "status-test"; lease = "3s"; stop_timeout = "5s"; status_listen = "$1"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; max_attempts = ${MAXATT:-5}; };
jobs = ( { name = "contacts"; strategy = "modified"; key = "id";
	modified = { field = "updatedAt"; sorted = true; };
	source = { type = "http"; url = "$SA/api/contacts";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 200; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/customers/{{key}}"; body = "{{record}}"; }; } );
CONF
}
# Port 0: the kernel picks a free port, which the log line names.
write "127.0.0.1:0"
"$ONESYNCD" -t -c "$T/c.conf" >/dev/null || fail "config check"
daemon_start "$T/c.conf"
wait_for 10 grep -q 'status endpoint listening on http://127.0.0.1:' "$T/daemon.log" || fail "no 'status endpoint listening' line"
PORT=$(sed -n 's|.*status endpoint listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T/daemon.log" | head -1)
[ -n "$PORT" ] && [ "$PORT" != 0 ] || fail "no port in the log"
ST=http://127.0.0.1:$PORT
note "status endpoint on $ST"
runs_ok() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok'" 2>/dev/null; }
runs_is() { [ "$(runs_ok)" = "$1" ]; }
wait_for 30 runs_is 1 || fail "no first run"
row=$(sql "$STATE" "SELECT records_read || ' ' || delivered || ' ' || skipped || ' ' || failed FROM onesync.runs WHERE job = 'contacts'")
[ "$row" = "120 117 0 3" ] || fail "the first run is '$row' in the runs table, expected '120 117 0 3'"

# check_metrics FILE 'name{labels}=value' ...: the text format is well formed (HELP and TYPE
# before the samples of each family, label syntax and escaping, no duplicate series, the
# histogram cumulative with +Inf = _count), and each given series has the given value.
check_metrics() {
	python3 - "$@" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
want = sys.argv[2:]
if not text.endswith("\n"): sys.exit("the body does not end with a newline")
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label_re = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
sample_re = re.compile(r"^(%s)(\{(%s(?:,%s)*)?\})? (\S+)$" % (name_re, label_re, label_re))
help_seen, types, series, order = {}, {}, {}, []
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# HELP "):
        m = re.match(r"^# HELP (%s) (.*)$" % name_re, line)
        if not m or m.group(1) in help_seen: sys.exit(f"line {n}: bad or repeated HELP: {line}")
        help_seen[m.group(1)] = m.group(2)
        order.append(m.group(1))
        continue
    if line.startswith("# TYPE "):
        m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % name_re, line)
        if not m or m.group(1) in types: sys.exit(f"line {n}: bad or repeated TYPE: {line}")
        if m.group(1) not in help_seen: sys.exit(f"line {n}: TYPE before HELP: {line}")
        types[m.group(1)] = m.group(2)
        continue
    if line.startswith("#") or not line: sys.exit(f"line {n}: unexpected line: {line!r}")
    m = sample_re.match(line)
    if not m: sys.exit(f"line {n}: not a sample: {line!r}")
    name, labels, value = m.group(1), m.group(3) or "", m.group(4)
    fam = re.sub(r"_(bucket|sum|count)$", "", name) if re.sub(r"_(bucket|sum|count)$", "", name) in types and types[re.sub(r"_(bucket|sum|count)$", "", name)] == "histogram" else name
    if fam not in types: sys.exit(f"line {n}: sample of {name} without its TYPE line")
    if order[-1] != fam: sys.exit(f"line {n}: sample of {fam} outside its family's block")
    float(value)
    key = name + "{" + labels + "}"
    if key in series: sys.exit(f"line {n}: duplicate series {key}")
    series[key] = float(value)
# histograms: cumulative buckets, +Inf == _count
for fam, t in types.items():
    if t != "histogram": continue
    jobs = {re.search(r'job="([^"]*)"', k).group(1) for k in series if k.startswith(fam + "_bucket{")}
    for j in jobs:
        b = sorted(((float(re.search(r'le="([^"]*)"', k).group(1)), v) for k, v in series.items()
                    if k.startswith(fam + "_bucket{") and f'job="{j}"' in k))
        if [v for _, v in b] != sorted(v for _, v in b): sys.exit(f"{fam}{{job={j}}}: buckets not cumulative")
        if b[-1][0] != float("inf") or b[-1][1] != series[f'{fam}_count{{job="{j}"}}']:
            sys.exit(f"{fam}{{job={j}}}: +Inf bucket differs from _count")
bad = []
for w in want:
    k, v = w.rsplit("=", 1)
    if k not in series: bad.append(f"{k} missing")
    elif series[k] != float(v): bad.append(f"{k} is {series[k]:g}, expected {v}")
if bad: sys.exit("; ".join(bad))
PY
}
J='job="contacts"'
curl -sS --max-time 5 -D "$T/m.hdr" -o "$T/m1.txt" "$ST/metrics" || fail "GET /metrics"
grep -qi '^content-type: text/plain; version=0.0.4' "$T/m.hdr" || fail "/metrics Content-Type: $(grep -i content-type "$T/m.hdr")"
check_metrics "$T/m1.txt" \
	"onesync_records_read_total{$J}=120" "onesync_records_delivered_total{$J}=117" \
	"onesync_records_skipped_total{$J}=0" "onesync_records_failed_total{$J}=3" \
	"onesync_records_deleted_total{$J}=0" \
	"onesync_runs_total{$J,result=\"ok\"}=1" "onesync_runs_total{$J,result=\"failed\"}=0" \
	"onesync_runs_total{$J,result=\"cut\"}=0" "onesync_run_duration_seconds_count{$J}=1" \
	"onesync_run_duration_seconds_bucket{$J,le=\"+Inf\"}=1" \
	"onesync_lease_held{$J}=1" "onesync_retry_queue_records{$J}=3" "onesync_dead_records{$J}=0" \
	"onesync_state_store_up{}=1" "onesync_instance_jobs{}=1" \
	"onesync_job_interval_seconds{$J}=3600" "onesync_job_paused{$J}=0" || fail "metrics after the first run"
note "first run: $(grep -E '^onesync_records_(read|delivered|failed)_total' "$T/m1.txt" | tr '\n' ' ')"

# /jobs: JSON with the keys of `onesyncctl jobs --json`, and this instance's view.
curl -sS --max-time 5 -o "$T/jobs.json" "$ST/jobs" || fail "GET /jobs"
"$CTL" -c "$T/c.conf" --json jobs >"$T/ctl.json" || fail "onesyncctl --json jobs"
RUN1=$(sql "$STATE" "SELECT id FROM onesync.runs WHERE job = 'contacts'")
python3 - "$T/jobs.json" "$T/ctl.json" "$RUN1" <<'PY' || fail "/jobs"
import json, sys
mine, ctl, run = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
assert isinstance(mine, list) and len(mine) == 1, mine
j, c = mine[0], ctl[0]
missing = [k for k in c if k not in j]
assert not missing, f"keys of onesyncctl jobs --json missing from /jobs: {missing}"
for k in c:
    if isinstance(c[k], dict) and isinstance(j[k], dict):
        m = [x for x in c[k] if x not in j[k]]
        assert not m, f"keys of {k} missing: {m}"
assert j["name"] == "contacts" and j["strategy"] == "modified" and j["state"] == "ok", j
assert j["lease_held"] is True and j["lease_owner"] == "status-test" and j["epoch"] == c["epoch"], (j, c)
assert j["mine"] is True and j["running"] is False, j
assert j["last_run"]["id"] == run == c["last_run"]["id"] and j["last_run"]["result"] == "ok", j["last_run"]
assert (j["last_run"]["read"], j["last_run"]["delivered"], j["last_run"]["failed"]) == (120, 117, 3), j["last_run"]
assert j["retry_queue"] == 3 == c["retry_queue"] and j["dead"] == 0 == c["dead"], (j, c)
assert j["watermark"] == c["watermark"], (j["watermark"], c["watermark"])
PY

# methods and paths
code() { curl -s -o /dev/null --max-time 5 -w '%{http_code}' "$@"; }
[ "$(code -I "$ST/metrics")" = 200 ] || fail "HEAD /metrics"
[ "$(code -X POST "$ST/metrics")" = 405 ] || fail "POST /metrics is not 405"
[ "$(code -X DELETE "$ST/jobs")" = 405 ] || fail "DELETE /jobs is not 405"
[ "$(code "$ST/nope")" = 404 ] || fail "GET /nope is not 404"
[ "$(code "$ST/")" = 404 ] || fail "GET / is not 404"
[ "$(curl -s --max-time 5 "$ST/healthz")" = ok ] || fail "/healthz is not 'ok'"
[ "$(code "$ST/healthz")" = 200 ] || fail "/healthz is not 200"

# a second run once the destination accepts: the 3 retried; counters move by its numbers
sa DELETE /_ctl/fault >/dev/null
sql "$STATE" "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = 'contacts'; NOTIFY onesync_run, 'contacts'"
wait_for 20 runs_is 2 || fail "the run-now request did not run"
sums=$(sql "$STATE" "SELECT sum(records_read) || ' ' || sum(delivered) || ' ' || sum(skipped) || ' ' || sum(failed) FROM onesync.runs WHERE job = 'contacts'")
read -r R D S F <<<"$sums"
note "runs table after 2 runs: read $R, delivered $D, skipped $S, failed $F"
[ "$D" = 120 ] || fail "after the retry run the runs table says $D delivered, expected 120"
curl -sS --max-time 5 -o "$T/m2.txt" "$ST/metrics" || fail "GET /metrics"
check_metrics "$T/m2.txt" \
	"onesync_records_read_total{$J}=$R" "onesync_records_delivered_total{$J}=$D" \
	"onesync_records_skipped_total{$J}=$S" "onesync_records_failed_total{$J}=$F" \
	"onesync_runs_total{$J,result=\"ok\"}=2" "onesync_run_duration_seconds_count{$J}=2" \
	"onesync_retry_queue_records{$J}=0" "onesync_dead_records{$J}=0" \
	"onesync_lease_held{$J}=1" || fail "metrics after the retry run"

# a reload that changes status_listen and state.connect_timeout: both warned about (neither
# takes effect before a restart), the endpoint stays where it is (and max_attempts = 1, for
# the dead letter below)
MAXATT=1 CONNTO=3s write "127.0.0.1:1"
kill -HUP "$D_PID"
wait_for 10 grep -q 'daemon.status_listen changed: it takes effect only after a restart' "$T/daemon.log" ||
	fail "no warning about a changed status_listen"
grep -q 'state.\* changed: it takes effect only after a restart' "$T/daemon.log" ||
	fail "no warning about a changed state.connect_timeout"
[ "$(code "$ST/healthz")" = 200 ] || fail "/healthz after the reload"

# a record refused with max_attempts = 1 is dead at once: onesync_dead_records counts it after
# the checkpoint that dead-letters it, and again from the next run's start
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[50],"status":422}' >/dev/null
sa POST /_ctl/update '{"coll":"contacts","key":"50","set":{"name":"changed"},"touch_field":"updatedAt"}' >/dev/null
for n in 3 4; do
	sql "$STATE" "UPDATE onesync.jobs SET run_requested_at = now() WHERE name = 'contacts'; NOTIFY onesync_run, 'contacts'"
	wait_for 20 runs_is $n || fail "run $n did not happen"
	[ "$(sql "$STATE" "SELECT count(*) FILTER (WHERE dead) || ' ' || count(*) FILTER (WHERE NOT dead) FROM onesync.failures")" = "1 0" ] ||
		fail "the state does not have record 50 dead (and nothing else queued)"
	curl -sS --max-time 5 -o "$T/m-dead.txt" "$ST/metrics" || fail "GET /metrics"
	check_metrics "$T/m-dead.txt" "onesync_dead_records{$J}=1" "onesync_retry_queue_records{$J}=0" \
		"onesync_records_failed_total{$J}=$((F + 1))" "onesync_runs_total{$J,result=\"ok\"}=$n" ||
		fail "metrics after run $n with a dead record"
done
curl -sS --max-time 5 -o "$T/jobs2.json" "$ST/jobs" || fail "GET /jobs"
python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))[0]; d, q = j["dead"], j["retry_queue"]
sys.exit(0 if (d, q) == (1, 0) else "/jobs says dead %s, retry_queue %s" % (d, q))' "$T/jobs2.json" ||
	fail "/jobs with a dead record"

# the state store goes away and comes back
healthz_is() { [ "$(code "$ST/healthz")" = "$1" ]; }
pg_stop_own; note "PostgreSQL stopped"
wait_for 15 healthz_is 503 || fail "/healthz did not turn 503 with the state store down"
[ "$(curl -s --max-time 5 "$ST/healthz")" = "state store unreachable" ] || fail "/healthz body while down"
curl -sS --max-time 5 -o "$T/m3.txt" "$ST/metrics" || fail "/metrics while the state store is down"
check_metrics "$T/m3.txt" "onesync_state_store_up{}=0" "onesync_records_delivered_total{$J}=$D" ||
	fail "metrics while the state store is down"
pg_start_own; note "PostgreSQL started"
wait_for 30 healthz_is 200 || fail "/healthz did not return to 200 once the state store was back"
curl -sS --max-time 5 -o "$T/m4.txt" "$ST/metrics" || fail "GET /metrics"
check_metrics "$T/m4.txt" "onesync_state_store_up{}=1" || fail "state_store_up after the restart"

# a malformed address is a configuration error, named with its file and line
for bad in "::1:9187|IPv6 address in brackets" "127.0.0.1:99999|port from 0 to 65535"; do
	addr=${bad%%|*} why=${bad#*|}
	printf 'state = { conninfo = "%s"; };\ndaemon = { status_listen = "%s"; };\njobs = ();\n' \
		"$STATE" "$addr" >"$T/bad.conf"
	out=$("$ONESYNCD" -t -c "$T/bad.conf" 2>&1); rc=$?
	[ "$rc" = 78 ] || fail "-t on status_listen '$addr' exited $rc, expected 78"
	echo "$out" | grep -q "bad.conf:2: 'daemon.status_listen'.*$why" || fail "-t on '$addr' said: $out"
done
# an address it cannot use: logged, and the daemon carries on without the endpoint
for bad in "127.0.0.1:$PORT|Address already in use"; do
	addr=${bad%%|*} why=${bad#*|}
	cat >"$T/other.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { instance = "other"; status_listen = "$addr"; };
jobs = ();
CONF
	"$ONESYNCD" -c "$T/other.conf" >"$T/other.log" 2>&1 & O_PID=$!; PIDS+=("$O_PID")
	wait_for 10 grep -q 'carrying on without the status endpoint' "$T/other.log" ||
		{ cat "$T/other.log" >&2; fail "no 'carrying on without the status endpoint' for '$addr'"; }
	grep -q "$why" "$T/other.log" || { cat "$T/other.log" >&2; fail "the error for '$addr' does not say '$why'"; }
	grep -q '^<3>.*status_listen' "$T/other.log" || fail "the error for '$addr' is not logged at priority err"
	wait_for 10 grep -q 'state schema .* ready' "$T/other.log" || fail "the daemon with '$addr' did not carry on"
	kill -TERM "$O_PID"; wait "$O_PID"; rc=$?
	[ "$rc" = 0 ] || fail "the daemon with '$addr' exited $rc after SIGTERM"
done
[ "$(code "$ST/healthz")" = 200 ] || fail "the first daemon's endpoint stopped answering"

kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ "$rc" = 0 ] || fail "exit code $rc after SIGTERM"
[ "$(code "$ST/healthz")" = 000 ] || fail "the endpoint still answers after the daemon stopped"
