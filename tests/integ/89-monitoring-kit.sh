# The monitoring kit in contrib/monitoring: promtool accepts the alerting rules and their unit
# tests pass (a failing job alerts, a recovered one does not; a paused job is not "not run";
# dead records count on the lease holder only; ...); every expression of the Grafana dashboard
# parses as PromQL; and every metric the dashboard and the rules name is in the /metrics of a
# live daemon running one job that works and one that fails (name-level: a histogram's
# _bucket, _sum and _count count as its name), so no panel draws a metric that does not exist.
# The live metrics also say what the rules assume: the failing job has a failed run's time and
# no ok one, the working job an ok one; both have their interval, a disabled job none; a job
# paused with onesyncctl shows as paused once an attempt found it so.
. "$(dirname "$0")/../lib.sh"
KIT=$TOP/contrib/monitoring
RULES=$KIT/onesyncd.rules.yml
DASH=$KIT/onesyncd-dashboard.json
command -v promtool >/dev/null || fail "no promtool (Debian's prometheus package; contrib/install-deps installs it)"

promtool check rules "$RULES" >"$T/check.out" 2>&1 || { cat "$T/check.out" >&2; fail "promtool check rules"; }
(cd "$KIT" && promtool test rules onesyncd.rules.test.yml) >"$T/unit.out" 2>&1 ||
	{ cat "$T/unit.out" >&2; fail "promtool test rules"; }

# names.py KIND FILE: the metric names in the expressions of the dashboard (every target of
# every panel, rows' panels too) or of the rules; with --recording, the dashboard's
# expressions as recording rules (Grafana's variables given values), for promtool to parse.
cat >"$T/names.py" <<'PY'
import json, re, sys

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
            "unless", "bool", "offset", "inf", "nan"}

def exprs(kind, path):
    if kind == "dashboard":
        def panels(ps):
            for p in ps:
                yield p
                yield from panels(p.get("panels", []))
        out = []
        for p in panels(json.load(open(path))["panels"]):
            if p.get("type") == "row":
                continue
            es = [t["expr"] for t in p.get("targets", []) if t.get("expr")]
            if not es:
                sys.exit(f"dashboard panel '{p.get('title')}' has no expression")
            out += es
        return out
    import yaml
    return [r["expr"] for g in yaml.safe_load(open(path))["groups"] for r in g["rules"]]

def grafana(e):
    return e.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$job", ".*")

def names(e):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', grafana(e))
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    found = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        if m.group(2) is None and m.group(1).lower() not in KEYWORDS:
            found.add(m.group(1))
    return found

kind, path = sys.argv[1], sys.argv[2]
es = exprs(kind, path)
if len(sys.argv) > 3:
    print("groups:\n  - name: dashboard\n    rules:")
    for i, e in enumerate(es):
        print(f"      - record: dashboard_expr_{i}\n        expr: {json.dumps(grafana(e))}")
    sys.exit(0)
ns = set()
for e in es:
    ns |= names(e)
print("\n".join(sorted(ns)))
PY
python3 "$T/names.py" dashboard "$DASH" --recording >"$T/dash-rules.yml" || fail "cannot read the dashboard"
promtool check rules "$T/dash-rules.yml" >"$T/dcheck.out" 2>&1 ||
	{ cat "$T/dcheck.out" >&2; fail "a dashboard expression is not valid PromQL"; }
python3 "$T/names.py" dashboard "$DASH" >"$T/dash.names" || fail "cannot read the dashboard's expressions"
python3 "$T/names.py" rules "$RULES" >"$T/rules.names" || fail "cannot read the rules' expressions"
# not vacuous: the kit names most of the metrics
[ "$(wc -l <"$T/dash.names")" -ge 10 ] || fail "only $(wc -l <"$T/dash.names") metric names found in the dashboard"
[ "$(wc -l <"$T/rules.names")" -ge 6 ] || fail "only $(wc -l <"$T/rules.names") metric names found in the rules"
note "dashboard: $(wc -l <"$T/dash.names") metrics, rules: $(wc -l <"$T/rules.names") metrics"

# A live daemon: one job that works (contacts -> customers), one whose source answers 500.
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":30}' >/dev/null
sa POST /_ctl/gen '{"coll":"orders","n":5}' >/dev/null
sa POST /_ctl/fault '{"coll":"orders","method":"GET","status":500}' >/dev/null
job() {	# job NAME SOURCE_COLL DEST_COLL: a modified job from the sample app to the sample app
	printf '{ name = "%s"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = true; };\n' "$1"
	printf '  source = { type = "http"; url = "%s/api/%s"; page = { style = "page"; size = 200; };\n' "$SA" "$2"
	printf '    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };\n'
	printf '  destination = { type = "http"; method = "PUT"; url = "%s/api/%s/{{key}}"; body = "{{record}}"; }; }' "$SA" "$3"
}
# a budget and a credential, so that their metrics are there too
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { instance = "kit-test"; lease = "3s"; stop_timeout = "5s"; status_listen = "127.0.0.1:0"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; };
budgets = ( { name = "api"; match = [ "$SA/api/" ]; rate = [ "1000/1s" ]; } );
credentials = ( { name = "crm"; type = "oauth2_client_credentials"; token_url = "$SA/oauth/token";
	client_id = "sampleapp"; client_secret = "sampleapp-secret"; } );
jobs = ( $(job contacts contacts customers | sed 's|page = {|auth = "crm"; page = {|'), $(job orders orders orders_out),
	$(job off contacts off_out | sed 's/^{ /{ enabled = false; /') );
CONF
daemon_start "$T/c.conf"
wait_for 10 grep -q 'status endpoint listening on http://127.0.0.1:' "$T/daemon.log" || fail "no 'status endpoint listening' line"
PORT=$(sed -n 's|.*status endpoint listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T/daemon.log" | head -1)
ST=http://127.0.0.1:$PORT
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND result = '$2'" 2>/dev/null; }
ran() { [ "$(runs "$1" "$2")" -ge 1 ]; }
wait_for 30 ran contacts ok || fail "contacts did not run ok"
wait_for 30 ran orders failed || fail "orders did not fail"
[ "$(runs orders ok)" = 0 ] || fail "orders ran ok, its source should answer 500"
curl -sS --max-time 5 -o "$T/metrics.txt" "$ST/metrics" || fail "GET /metrics"

python3 - "$T/metrics.txt" "$T/dash.names" "$T/rules.names" <<'PY' || fail "metrics of the kit missing from /metrics (see above)"
import re, sys
text = open(sys.argv[1]).read()
types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
samples = {}
for line in text.splitlines():
    if line and not line.startswith("#"):
        series, value = line.rsplit(" ", 1)
        samples[series] = float(value)
have = set()
for s in samples:
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s).group(0)
    have.add(name)
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    if types.get(base) == "histogram":
        have.add(base)
bad = []
# what Prometheus itself records for every target it scrapes
have |= {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
for kind, path in (("dashboard", sys.argv[2]), ("rules", sys.argv[3])):
    for n in open(path).read().split():
        if n not in have:
            bad.append(f"the {kind} names {n}, which /metrics of a live daemon does not have")
# what the rules assume of the two jobs
ts = lambda job, res: samples.get(f'onesync_last_run_timestamp_seconds{{job="{job}",result="{res}"}}')
if ts("contacts", "ok") is None: bad.append("no ok run time for contacts")
if ts("orders", "failed") is None: bad.append("no failed run time for orders")
if ts("orders", "ok") is not None: bad.append("an ok run time for orders, which never ran ok")
for job in ("contacts", "orders"):
    if samples.get(f'onesync_job_interval_seconds{{job="{job}"}}') != 3600:
        bad.append(f"onesync_job_interval_seconds of {job} is not 3600")
    if samples.get(f'onesync_job_paused{{job="{job}"}}') != 0:
        bad.append(f"onesync_job_paused of {job} is not 0")
# a disabled job is not meant to run: no interval, so no "not run" alert
if 'onesync_job_interval_seconds{job="off"}' in samples:
    bad.append("a disabled job has an interval")
for b in bad:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY

# A paused job: the next attempt (a run-now request) finds it paused, which leaves it out of
# the "not run" alert.
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
"$CTL" -c "$T/c.conf" pause orders >"$T/ctl.out" 2>&1 || fail "onesyncctl pause"
"$CTL" -c "$T/c.conf" run orders >>"$T/ctl.out" 2>&1 || fail "onesyncctl run"
paused_is() { curl -sS --max-time 5 "$ST/metrics" | grep -qx "onesync_job_paused{job=\"$1\"} $2"; }
wait_for 20 paused_is orders 1 || fail "onesync_job_paused of orders is not 1 after a paused attempt"
paused_is contacts 0 || fail "onesync_job_paused of contacts is not 0"
promtool check metrics <"$T/metrics.txt" >"$T/lint.out" 2>&1 || { cat "$T/lint.out" >&2; fail "promtool check metrics"; }
kill -TERM "$D_PID"
wait "$D_PID" || fail "onesyncd exited $? on SIGTERM"
