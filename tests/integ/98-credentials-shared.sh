# One OAuth2 credential (client credentials, tokens living 3 s) shared by 3 instances x 20
# jobs for 30 s against a server that checks every bearer token: the token requests across
# all instances are about one per refresh period (at most 1.5 x the periods, plus one per
# instance), far fewer than the requests that carry a token; no request arrives with an
# expired or unknown token; no run fails; every destination equals its source; no token or
# client secret reaches a log.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
NJOBS=20
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/onesync_key"
printf '%s\n' "sampleapp-secret" >"$T/secrets/crm_secret"
sa POST /_ctl/oauth '{"expires_in":3}' >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
{
	echo "state = { conninfo = \"$STATE\"; connections = 4; encryption_key = \"{{secret:onesync_key}}\"; };"
	echo "daemon = { lease = \"6s\"; stop_timeout = \"5s\"; secrets_dir = \"$T/secrets\"; };"
	echo "defaults = { interval = \"1s\"; jitter = \"200ms\"; retries = 0; };"
	echo "credentials = ( { name = \"crm\"; type = \"oauth2_client_credentials\"; token_url = \"$SA/oauth/token\";"
	echo "	client_id = \"sampleapp\"; client_secret = \"{{secret:crm_secret}}\"; scope = \"contacts.read\"; } );"
	echo "jobs = ("
	for i in $(seq $NJOBS); do
		[ "$i" -gt 1 ] && echo ","
		http_job "job$(printf %02d "$i")" "s$i" 'auth = "crm";' 'auth = "crm";'
	done
	echo ");"
} >"$T/base.conf"
for i in $(seq $NJOBS); do sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":10}" >/dev/null; done
declare -A IPID
for n in a b c; do
	sed "s/^daemon = { /daemon = { instance = \"$n\"; /" "$T/base.conf" >"$T/$n.conf"
	"$ONESYNCD" -c "$T/$n.conf" >>"$T/$n.log" 2>&1 &
	IPID[$n]=$!; PIDS+=($!)
done
t0=$(date +%s)
# 30 s of runs, each reading and writing with the shared token; changes keep them writing
for k in $(seq 10); do
	sleep 3
	for i in $(seq $NJOBS); do sa POST /_ctl/mutate "{\"coll\":\"s$i\",\"after_gets\":0,\"touch\":1,\"field\":\"updatedAt\"}" >/dev/null; done
done
sleep 3
secs=$(( $(date +%s) - t0 ))
sa GET /_ctl/oauth >"$T/oauth.json"
read -r total expired unknown missing authorized < <(python3 -c "
import json; o = json.load(open('$T/oauth.json'))
print(o['token_requests']['total'], o['expired_used'], o['unknown'], o['missing'], o['authorized'])")
periods=$(( secs * 4 / 9 + 1 ))	# a refresh every 2.25 s (75 % of 3 s)
bound=$(( periods * 3 / 2 + 3 ))
note "$secs s, 3 instances x $NJOBS jobs: $total token requests (bound $bound), $authorized requests with a valid token, $expired expired, $unknown unknown, $missing without"
[ "$total" -ge 3 ] || fail "only $total token requests in $secs s of 3 s tokens"
[ "$total" -le "$bound" ] || fail "$total token requests in $secs s, more than $bound"
[ "$authorized" -ge $(( total * 10 )) ] || fail "$authorized requests with a token for $total token requests"
[ "$expired" = 0 ] || fail "$expired requests arrived with an expired token"
[ "$unknown" = 0 ] || fail "$unknown requests arrived with an unknown token"
[ "$missing" = 0 ] || fail "$missing requests arrived without a token"
for n in a b c; do kill -TERM "${IPID[$n]}" || fail "instance $n is gone: $(tail -5 "$T/$n.log")"; done
for n in a b c; do wait "${IPID[$n]}" || fail "instance $n did not exit 0"; done
f=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed'")
[ "$f" = 0 ] || fail "$f runs failed: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE result = 'failed' LIMIT 3")"
for i in $(seq $NJOBS); do same_colls "s$i" "ds$i" id,name,updatedAt,v || fail "ds$i differs from s$i"; done
# nothing secret in the logs or the state: the client secret, and any token the server issued
grep -l "sampleapp-secret" "$T"/*.log && fail "the client secret is in a log"
grep -lE 'at-[0-9]+-[0-9a-f]+' "$T"/*.log && fail "an access token is in a log"
sql "$STATE" "SELECT access_sealed FROM onesync.credentials" | grep -E 'at-[0-9]+-' && fail "an access token is stored in clear"
true
