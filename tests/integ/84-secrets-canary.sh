# Secrets never reach what a user sees. A canary (a unique random string) is planted in every
# place a secret can come from: a secret file ({{secret:}}), an environment variable
# ({{env:}}), a literal ?_access_token= in a source URL, the userinfo of a URL, a literal
# Authorization header, conninfo passwords ("password = x", "password= x" and the URI form),
# a daemon.redact_params name, the client ids and secrets and the refresh token of credentials
# and state.encryption_key; then good runs, failing runs (the source answering 500, the
# destination refusing records with a body that echoes the canaries, a destination database
# that cannot be reached), -v -v, -t (good and bad configurations), a reload that brings a new
# secret, onesyncctl (jobs, runs, failures, --json, the state database unreachable), /jobs and
# /metrics. Every surface (daemon log, onesync.runs and onesync.failures, ctl output, the status
# endpoint) holds no canary, and the redacted forms are there (so that it cannot pass because
# nothing was said).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
canary() { echo "CNRY$1$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
C_SECRET=$(canary sec) C_SECRET2=$(canary sec2) C_ENV=$(canary env) C_QTOK=$(canary qtok)
C_USER=$(canary user) C_HDR=$(canary hdr) C_PGKV=$(canary pgkv) C_PGURI=$(canary pguri)
C_STATE=$(canary state) C_STATE2=$(canary state2) C_PARAM=$(canary param)
C_CUST=$(canary cust) C_COOK=$(canary cook) C_BODY=$(canary body) C_UTOK=$(canary utok)
C_CID=$(canary cid) C_CSEC=$(canary csec) C_CSEC2=$(canary csec2) C_RTOK=$(canary rtok)
C_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')	# hex: no CNRY in it
# what a server sees of "http://user:C_USER@": Authorization: Basic base64(user:C_USER)
C_B64=$(printf 'user:%s' "$C_USER" | base64 -w0)
mkdir -p "$T/secrets"; printf '%s\n' "$C_SECRET" >"$T/secrets/apikey"
printf '%s\n' "$C_CSEC" >"$T/secrets/crm_secret"; printf '%s\n' "$C_KEY" >"$T/secrets/onesync_key"
printf '%s\n' "${C_KEY%?}" >"$T/secrets/short_key"
export ONESYNC_TEST_RTOK=$C_RTOK
export ONESYNC_TEST_TOKEN=$C_ENV
# a secret that is also an ordinary word (a key of every JSON document onesync shows)
export ONESYNC_TEST_WORD=delivered
sa POST /_ctl/gen '{"coll":"contacts","n":30}' >/dev/null
sa POST /_ctl/gen '{"coll":"echo","n":5}' >/dev/null
# the destination refuses two records and echoes every canary it could have seen
sa POST /_ctl/fault '{"coll":"echo-copy","method":"PUT","keys":[1,2],"status":422,"body":{"error":"rejected","token":"'$C_SECRET'","env":"'$C_ENV'","seen":"Bearer '$C_HDR' user '$C_USER' q '$C_QTOK' p '$C_PARAM'","hdr":"'$C_CUST' '$C_COOK'","body":{"key":"'$C_BODY'"},"basic":"Basic '$C_B64'"}}' >/dev/null
sa POST /_ctl/fault '{"coll":"broken","method":"GET","status":500,"body":"{\"error\":\"bad key '$C_SECRET'\"}"}' >/dev/null
PORT=${SA##*:}
write() {	# write FILE STATE_CONNINFO
	cat >"$1" <<CONF
state = { conninfo = "$2"; encryption_key = "{{secret:onesync_key}}"; };
credentials = (
	{ name = "crm"; type = "oauth2_client_credentials"; token_url = "$SA/oauth/token";
	  client_id = "$C_CID"; client_secret = "{{secret:crm_secret}}"; },
	{ name = "erp"; type = "oauth2_refresh_token"; token_url = "$SA/oauth/token";
	  client_id = "erp"; client_secret = "$C_CSEC2"; refresh_token = "{{env:ONESYNC_TEST_RTOK}}"; }
);
daemon = { lease = "10s"; stop_timeout = "5s"; secrets_dir = "$T/secrets";
	status_listen = "${LISTEN:-}"; redact_params = [ "_x-my-param" ]; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; run_timeout = "20s"; };
jobs = (
	{ name = "good"; strategy = "modified"; key = "id";
	  modified = { field = "updatedAt"; };
	  source = { type = "http";
		url = "$SA/api/contacts?_access_token=$C_QTOK&_api_key={{env:ONESYNC_TEST_TOKEN}}&_x-my-param=$C_PARAM&_sort_key=updatedAt&_author=name-1";
		headers = [ "Authorization: Bearer $C_HDR", "X-Api-Key: {{secret:apikey}}",
			    "X-Word: {{env:ONESYNC_TEST_WORD}}" ];
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}",
			  "_limit={{limit}}", "_sig={{secret:apikey}}" ];
		page = { style = "page"; size = 10; }; };
	  destination = { type = "postgresql"; conninfo = "$DEST password = $C_PGKV"; table = "contacts";
		columns = { id = "id"; name = "name"; email = "email"; amount = "amount";
			    updatedAt = "updatedAt"; v = "v"; }; }; },
	{ name = "echo"; strategy = "modified"; key = "id";
	  modified = { field = "updatedAt"; };
	  source = { type = "http"; url = "http://user:$C_USER@127.0.0.1:$PORT/api/echo";
		query = [ "updatedAt_gte={{watermark}}", "_token={{env:ONESYNC_TEST_TOKEN}}" ]; };
	  destination = { type = "http"; method = "PUT";
		url = "$SA/api/echo-copy/{{key}}?_token={{env:ONESYNC_TEST_TOKEN}}&_sig=$C_QTOK";
		body = "{\"id\": {{key}}, \"key\": \"$C_BODY\"}";
		headers = [ "Authorization: {{secret:apikey}}", "X-Custom-Thing: $C_CUST",
			    "Cookie: sid=$C_COOK; t={{env:ONESYNC_TEST_TOKEN}}" ]; }; },
	{ name = "srcfail"; strategy = "modified"; key = "id";
	  modified = { field = "updatedAt"; };
	  source = { type = "http"; url = "http://$C_UTOK@127.0.0.1:$PORT/api/broken?_token={{env:ONESYNC_TEST_TOKEN}}&_pw={{secret:apikey}}"; };
	  destination = { type = "http"; url = "$SA/api/broken-copy/{{key}}"; }; },
	{ name = "baddb"; strategy = "modified"; key = "id"; run_timeout = "4s";
	  modified = { field = "updatedAt"; };
	  source = { type = "http"; url = "$SA/api/contacts"; query = [ "updatedAt_gte={{watermark}}" ]; };
	  destination = { type = "postgresql"; table = "contacts";
		conninfo = "postgresql://postgres:$C_PGURI@127.0.0.1:1/nodb?connect_timeout=2&password=$C_PGURI";
		columns = { id = "id"; }; }; }
);
CONF
}
write "$T/c.conf" "$STATE password= $C_STATE"
# every canary, for the greps
printf '%s\n' "$C_SECRET" "$C_SECRET2" "$C_ENV" "$C_QTOK" "$C_USER" "$C_HDR" "$C_PGKV" \
	"$C_PGURI" "$C_STATE" "$C_STATE2" "$C_PARAM" "$C_CUST" "$C_COOK" "$C_BODY" "$C_UTOK" \
	"$C_B64" "$C_CID" "$C_CSEC" "$C_CSEC2" "$C_RTOK" "$C_KEY" "${C_KEY:0:16}" >"$T/canaries"
# no_canary WHAT FILE: none of the canaries (nor their common prefix) is in FILE
no_canary() {
	[ -s "$2" ] || fail "$1: nothing to look at ($2 is empty)"
	if grep -a -n -F -f "$T/canaries" "$2" >"$T/hits" || grep -a -n CNRY "$2" >>"$T/hits"; then
		head -5 "$T/hits" >&2
		fail "$1: a canary secret is shown"
	fi
}
has() { grep -q -F -- "$2" "$3" || fail "$1: '$2' is not in $3 (redaction not visible)"; }

# -t: a good configuration, and one with errors next to the secrets
chmod 644 "$T/c.conf"
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t-ok.out" 2>&1 || { cat "$T/t-ok.out" >&2; fail "-t refused the configuration"; }
no_canary "-t" "$T/t-ok.out"
# the file holds literal credentials: -t warns while every user may read it
has "-t, a configuration every user may read" "is readable by every user" "$T/t-ok.out"
chmod 600 "$T/c.conf"
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t-ok600.out" 2>&1 || fail "-t refused the configuration (mode 600)"
grep -q "readable by every user" "$T/t-ok600.out" && fail "-t warns about a configuration of mode 600"
write "$T/bad.conf" "host=h password = '$C_STATE' bogus"
"$ONESYNCD" -t -c "$T/bad.conf" >"$T/t-bad.out" 2>&1 && fail "-t accepted a bad configuration"
has "-t errors" "not a valid PostgreSQL connection" "$T/t-bad.out"
no_canary "-t errors" "$T/t-bad.out"
# every other way a configuration error is printed: the daemon's start, --once, onesyncctl
sed "s|http://user:$C_USER@|htp://user:$C_USER@|" "$T/c.conf" >"$T/bad2.conf"
: >"$T/bad2.out"
timeout 20 "$ONESYNCD" -c "$T/bad2.conf" >>"$T/bad2.out" 2>&1 && fail "the daemon started with a bad configuration"
timeout 20 "$ONESYNCD" -c "$T/bad2.conf" --once >>"$T/bad2.out" 2>&1 && fail "--once ran a bad configuration"
timeout 20 "$CTL" -c "$T/bad2.conf" jobs >>"$T/bad2.out" 2>&1 && fail "onesyncctl read a bad configuration"
[ "$(grep -c "htp://user:\*\*\*@" "$T/bad2.out")" = 3 ] || { cat "$T/bad2.out" >&2; fail "the three configuration errors do not name the redacted URL"; }
no_canary "configuration errors (daemon, --once, onesyncctl)" "$T/bad2.out"
# messages that would quote a literal credential: a header without its colon, a body that
# is not JSON next to a credential
sed -e "s|\"Authorization: Bearer $C_HDR\"|\"Authorization Bearer $C_HDR\"|" \
    -e "s|\\\\\"$C_BODY\\\\\"|$C_BODY|" "$T/c.conf" >"$T/bad3.conf"
grep -q "Authorization Bearer" "$T/bad3.conf" && grep -q -F ": $C_BODY}" "$T/bad3.conf" ||
	fail "bad3.conf: the sed did not apply"
"$ONESYNCD" -t -c "$T/bad3.conf" >"$T/t-bad3.out" 2>&1 && fail "-t accepted bad3.conf"
has "-t, header without a colon" 'expected "Name: value"' "$T/t-bad3.out"
has "-t, body not JSON" "not valid JSON" "$T/t-bad3.out"
no_canary "-t, messages about literal credentials" "$T/t-bad3.out"
# errors of the credentials and of the encryption key
sed -e 's|{{secret:onesync_key}}|{{secret:short_key}}|' \
    -e 's|"oauth2_refresh_token"|"oauth2_client_credentials"|' \
    -e "s|client_id = \"$C_CID\"|client_id = \"$C_CID\"; client_auth = \"$C_CSEC2\"|" \
    "$T/c.conf" >"$T/bad4.conf"
"$ONESYNCD" -t -c "$T/bad4.conf" >"$T/t-bad4.out" 2>&1 && fail "-t accepted bad4.conf"
has "-t, a short key" "must be exactly 64 hex digits" "$T/t-bad4.out"
has "-t, a refresh token of a client-credentials credential" "'refresh_token' has no use" "$T/t-bad4.out"
has "-t, client_auth quoting a secret" "'client_auth': unknown '***'" "$T/t-bad4.out"
no_canary "-t, errors of credentials" "$T/t-bad4.out"

# --once at -v -v: good and failing runs
timeout 120 "$ONESYNCD" -v -v -c "$T/c.conf" --once >"$T/once.log" 2>&1
n=$(sql "$STATE" "SELECT count(*) FROM onesync.runs")
[ "$n" = 4 ] || fail "expected 4 runs after --once, found $n"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'good'")" = ok ] || fail "job good did not succeed"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'srcfail'")" = failed ] || fail "job srcfail did not fail"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'baddb'")" = failed ] || fail "job baddb did not fail"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'echo'")" = 2 ] || fail "job echo: expected 2 refused records"
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 30 ] || fail "job good did not deliver"
no_canary "--once -v -v log" "$T/once.log"
has "--once log" "_access_token=***" "$T/once.log"
has "--once log" "password = ***" "$T/once.log"
has "--once log" '"token":"***"' "$T/once.log"
# names that only contain a credential word are no credentials: their values stay, and are
# not learnt as secrets (which would mask them everywhere)
has "--once log" "_sort_key=updatedAt&_author=name-1" "$T/once.log"

# the daemon, with the status endpoint, at -v -v; then a reload that brings a new secret
LISTEN=127.0.0.1:0 write "$T/c.conf" "$STATE password= $C_STATE"
"$ONESYNCD" -v -v -c "$T/c.conf" >>"$T/daemon.log" 2>&1 &
D_PID=$!; PIDS+=("$D_PID")
wait_for 10 grep -q 'status endpoint listening on http://127.0.0.1:' "$T/daemon.log" || fail "no status endpoint"
ST=http://127.0.0.1:$(sed -n 's|.*status endpoint listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T/daemon.log" | head -1)
runs_are() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result <> 'running'")" -ge "$1" ]; }
wait_for 60 runs_are 8 || fail "the daemon's runs did not end"
printf '%s\n' "$C_SECRET2" >"$T/secrets/apikey"
kill -HUP "$D_PID"
wait_for 20 grep -q 'configuration reloaded\|reload' "$T/daemon.log" || fail "no reload logged"
sa DELETE '/_ctl/fault?coll=echo-copy' >/dev/null
sa POST /_ctl/fault '{"coll":"echo-copy","method":"PUT","status":422,"body":{"error":"new key '$C_SECRET2' old '$C_SECRET'"}}' >/dev/null
sa POST /_ctl/gen '{"coll":"echo","n":3}' >/dev/null
"$CTL" -c "$T/c.conf" run echo >/dev/null 2>&1 || fail "onesyncctl run echo"
"$CTL" -c "$T/c.conf" run srcfail >/dev/null 2>&1 || fail "onesyncctl run srcfail"
wait_for 60 runs_are 10 || fail "the runs after the reload did not end"
curl -sS --max-time 10 "$ST/jobs" >"$T/jobs.json" || fail "GET /jobs"
curl -sS --max-time 10 "$ST/metrics" >"$T/metrics.txt" || fail "GET /metrics"
no_canary "/jobs" "$T/jobs.json"
has "/jobs" "_token=***" "$T/jobs.json"
no_canary "/metrics" "$T/metrics.txt"
# a secret equal to a key: the documents stay JSON, their keys and metric names intact
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all("delivered" in j["last_run"] for j in d), d' \
	"$T/jobs.json" || fail "/jobs is not JSON, or lost its keys to a secret equal to one"
has "/metrics" "delivered" "$T/metrics.txt"
kill -TERM "$D_PID"; wait "$D_PID" 2>/dev/null
no_canary "daemon log" "$T/daemon.log"
has "daemon log" "new key ***" "$T/daemon.log"

# onesyncctl, every command that shows stored text, plain and --json
# a secret an older version stored, across the cut of its cell (70 characters): redacted
# before the cut, not a piece of it shown
sql "$STATE" "INSERT INTO onesync.failures (job, key, attempts, last_error)
	VALUES ('echo', 'old', 1, '$(printf '%060d' 0) $C_SECRET2 end')"
"$CTL" -c "$T/c.conf" failures echo >"$T/ctl-cut.out" 2>&1
no_canary "onesyncctl failures, a cut cell" "$T/ctl-cut.out"
has "onesyncctl failures, a cut cell" "$(printf '%060d' 0) ***" "$T/ctl-cut.out"
sql "$STATE" "DELETE FROM onesync.failures WHERE key = 'old'"
for cmd in "jobs" "runs good" "failures echo"; do
	"$CTL" -c "$T/c.conf" --json $cmd >"$T/ctl.json" 2>&1 || fail "onesyncctl --json $cmd"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/ctl.json" ||
		fail "onesyncctl --json $cmd: not JSON (a secret equal to a key masked it)"
done
grep -q '"delivered":' "$T/ctl.json" || "$CTL" -c "$T/c.conf" --json runs good | grep -q '"delivered":' ||
	fail "onesyncctl --json runs: the key \"delivered\" is masked"
"$CTL" -c "$T/c.conf" --json failures echo | grep -q '"updatedAt":' ||
	fail "onesyncctl --json failures: the payload's key \"updatedAt\" is masked"
: >"$T/ctl.out"
for j in good echo srcfail baddb; do
	for cmd in runs failures; do
		"$CTL" -c "$T/c.conf" $cmd "$j" >>"$T/ctl.out" 2>&1
		"$CTL" -c "$T/c.conf" --json $cmd "$j" >>"$T/ctl.out" 2>&1
	done
done
"$CTL" -c "$T/c.conf" jobs >>"$T/ctl.out" 2>&1
"$CTL" -c "$T/c.conf" --json jobs >>"$T/ctl.out" 2>&1
no_canary "onesyncctl" "$T/ctl.out"
has "onesyncctl" "_token=***" "$T/ctl.out"
has "onesyncctl" "new key *** old ***" "$T/ctl.out"
# the state database unreachable: the message names the (redacted) conninfo
write "$T/down.conf" "host=127.0.0.1 port=1 user=postgres password = $C_STATE2 dbname=x connect_timeout=2"
"$CTL" -c "$T/down.conf" jobs >"$T/ctl-down.out" 2>&1 && fail "onesyncctl reached a state database on port 1"
no_canary "onesyncctl, state database down" "$T/ctl-down.out"
has "onesyncctl, state database down" "password = ***" "$T/ctl-down.out"

# the run history as stored
sql "$STATE" "SELECT * FROM onesync.runs" >"$T/runs.txt"
sql "$STATE" "SELECT * FROM onesync.failures" >"$T/failures.txt"
pg_dump -a -d "$STATE" >"$T/state.dump" 2>"$T/pg_dump.err" ||
	fail "pg_dump of the state database: $(cat "$T/pg_dump.err")"
no_canary "the state database (pg_dump)" "$T/state.dump"
no_canary "onesync.runs" "$T/runs.txt"
no_canary "onesync.failures" "$T/failures.txt"
has "onesync.runs" "_token=***" "$T/runs.txt"
has "onesync.failures" "new key *** old ***" "$T/failures.txt"
echo "ok"
