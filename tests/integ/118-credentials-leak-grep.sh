# No token (access or refresh), client secret or encryption key in clear anywhere a
# user looks: the daemon's log, the state database (pg_dump), /jobs, /metrics, onesyncctl's
# outputs (also --json), after rotations, a 401, a failed store and invalid_grant.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
mkdir -p "$T/secrets"
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$key" >"$T/secrets/k"
printf '%s\n' "rt-first-5b3c9" >"$T/secrets/rt"
printf '%s\n' "cs-7f1e0d9c2b" >"$T/secrets/cs"
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/gen '{"coll":"s1","n":5}' >/dev/null
STATE=$(new_db state)
PORT=$(free_port)
cat >"$T/a.conf" <<C
state = { conninfo = "$STATE"; encryption_key = "{{secret:k}}"; };
daemon = { instance = "a"; stop_timeout = "5s"; secrets_dir = "$T/secrets"; status_listen = "127.0.0.1:$PORT"; };
defaults = { interval = "300ms"; jitter = "0s"; retries = 0; };
credentials = ( { name = "erp"; type = "oauth2_refresh_token"; token_url = "$SA/oauth/token";
	scope = "read"; client_id = "sampleapp"; client_secret = "{{secret:cs}}";
	refresh_token = "{{secret:rt}}"; } );
jobs = ( { name = "job1"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = true; };
	source = { url = "$SA/api/s1"; auth = "erp"; page = { style = "page"; size = 10; };
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/ds1/{{key}}"; body = "{{record}}"; auth = "erp"; }; } );
C
sa POST /_ctl/oauth '{"client_secret":"cs-7f1e0d9c2b","expires_in":2,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
daemon_start "$T/a.conf"
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge 3 ]' || fail "no refreshes"
sa POST /_ctl/oauth '{"revoke_access":true}' >/dev/null
sleep 1
store_away
sleep 3
store_back
sleep 3
sa POST /_ctl/oauth '{"fail":"invalid_grant","revoke_access":true}' >/dev/null
sleep 3
curl -sS --max-time 5 "http://127.0.0.1:$PORT/jobs" >"$T/out-jobs.txt"
curl -sS --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$T/out-metrics.txt"
"$CTL" -c "$T/a.conf" credentials >"$T/out-ctl.txt" 2>&1
"$CTL" -c "$T/a.conf" --json credentials >"$T/out-ctl-json.txt" 2>&1
"$CTL" -c "$T/a.conf" jobs >"$T/out-ctl-jobs.txt" 2>&1
"$CTL" -c "$T/a.conf" --json jobs >>"$T/out-ctl-jobs.txt" 2>&1
kill -TERM "$D_PID"; wait "$D_PID"
pg_dump "$STATE" >"$T/out-dump.sql"
cp "$T/daemon.log" "$T/out-daemon.log"
n=$(oauth "o['issued']")
hits=$(grep -HoE "(at|rt)-[0-9]+-[0-9a-f]{6,}|rt-first-5b3c9|cs-7f1e0d9c2b|$key" "$T"/out-* | sort | uniq -c | head -20)
[ -z "$hits" ] || fail "secrets in clear: $hits"
note "$n tokens issued; none in logs, outputs or the state database"
exit 0
