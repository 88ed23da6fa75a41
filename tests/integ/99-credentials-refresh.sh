# Rotating refresh tokens (oauth2_refresh_token, tokens living 3 s, each refresh spending the
# refresh token it used): 3 instances x 5 jobs for 20 s, instance b restarted midway; no
# refresh token is ever used twice (the server counts reuses), none is stored in clear, no
# run fails. Then the server answers invalid_grant and revokes the access tokens: the
# credential needs re-authorization after exactly one token request, the jobs fail saying so,
# onesyncctl credentials shows it; a new refresh token given with onesyncctl credentials
# set-refresh-token (on stdin) lets the jobs run again, without a restart.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
NJOBS=5
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/onesync_key"
printf '%s\n' "rt-first-5b3c9" >"$T/secrets/erp_refresh"
sa POST /_ctl/oauth '{"expires_in":3,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
{
	echo "state = { conninfo = \"$STATE\"; connections = 4; encryption_key = \"{{secret:onesync_key}}\"; };"
	echo "daemon = { lease = \"6s\"; stop_timeout = \"5s\"; secrets_dir = \"$T/secrets\"; };"
	echo "defaults = { interval = \"1s\"; jitter = \"200ms\"; retries = 0; };"
	echo "credentials = ( { name = \"erp\"; type = \"oauth2_refresh_token\"; token_url = \"$SA/oauth/token\";"
	echo "	client_id = \"sampleapp\"; client_secret = \"sampleapp-secret\"; refresh_token = \"{{secret:erp_refresh}}\"; } );"
	echo "jobs = ("
	for i in $(seq $NJOBS); do
		[ "$i" -gt 1 ] && echo ","
		http_job "job$i" "s$i" 'auth = "erp";' 'auth = "erp";'
	done
	echo ");"
} >"$T/base.conf"
for i in $(seq $NJOBS); do sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":10}" >/dev/null; done
declare -A IPID
start() {
	sed "s/^daemon = { /daemon = { instance = \"$1\"; /" "$T/base.conf" >"$T/$1.conf"
	"$ONESYNCD" -c "$T/$1.conf" >>"$T/$1.log" 2>&1 &
	IPID[$1]=$!; PIDS+=($!)
}
churn() { for i in $(seq $NJOBS); do sa POST /_ctl/mutate "{\"coll\":\"s$i\",\"after_gets\":0,\"touch\":1,\"field\":\"updatedAt\"}" >/dev/null; done; }
start a; start b; start c
for k in $(seq 10); do
	sleep 2; churn
	if [ "$k" = 5 ]; then kill -TERM "${IPID[b]}"; wait "${IPID[b]}" || fail "b did not exit 0"; start b; fi
done
sleep 2
read -r refreshes reused unknown_rt expired < <(oauth "o['refreshes'], o['reused'], o['unknown_refresh'], o['expired_used']")
note "rotation: $refreshes refreshes, $reused reused, $unknown_rt unknown refresh tokens, $expired expired access tokens used"
[ "$refreshes" -ge 5 ] || fail "only $refreshes refreshes in 20 s of 3 s tokens"
[ "$reused" = 0 ] || fail "a refresh token was used twice ($reused)"
[ "$unknown_rt" = 0 ] || fail "$unknown_rt refresh tokens the server never issued"
[ "$expired" = 0 ] || fail "$expired requests with an expired token"
f=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed'")
[ "$f" = 0 ] || fail "$f runs failed: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE result = 'failed' LIMIT 3")"
sql "$STATE" "SELECT coalesce(access_sealed, '') || coalesce(refresh_sealed, '') FROM onesync.credentials" |
	grep -E 'rt-|at-[0-9]' && fail "a token is stored in clear"
for n in a b c; do kill -TERM "${IPID[$n]}"; done
for n in a b c; do wait "${IPID[$n]}" 2>/dev/null; done

# invalid_grant: one token request, then needs re-authorization
sa POST /_ctl/oauth '{"fail":"invalid_grant","revoke_access":true}' >/dev/null
n0=$(oauth "o['token_requests']['total']")
start a
wait_for 20 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '\''failed'\'' AND error LIKE '\''%needs re-authorization%'\''")" -ge 2 ]' ||
	fail "the jobs did not fail with needs re-authorization: $(tail -5 "$T/a.log")"
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE result = 'failed' ORDER BY id DESC LIMIT 1")
echo "$e" | grep -q "credential erp needs re-authorization (.*invalid_grant): give it a new refresh token with 'onesyncctl credentials set-refresh-token erp'" ||
	fail "the failed run does not say which credential to re-authorize and how: $e"
sleep 2
n1=$(oauth "o['token_requests']['total']")
[ $(( n1 - n0 )) = 1 ] || fail "$(( n1 - n0 )) token requests after invalid_grant, expected exactly 1"
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1 || fail "onesyncctl credentials: $(cat "$T/creds.txt")"
grep -q 'erp.*needs re-authorization' "$T/creds.txt" || fail "onesyncctl credentials: $(cat "$T/creds.txt")"
# an operator gives a new refresh token
sa POST /_ctl/oauth '{"fail":null,"refresh_token":"rt-second-77aa1"}' >/dev/null
echo "rt-second-77aa1" | "$CTL" -c "$T/a.conf" credentials set-refresh-token erp >"$T/set.txt" 2>&1 ||
	fail "set-refresh-token: $(cat "$T/set.txt")"
sql "$STATE" "SELECT refresh_sealed FROM onesync.credentials" | grep -q 'rt-second' && fail "the new refresh token is stored in clear"
churn	# the running instance reads the stored mark again (every 5 s) and finds it gone
okafter() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok' AND started_at > now() - interval '3 seconds'")" -ge "$NJOBS" ]; }
wait_for 20 okafter || fail "the jobs did not run again after set-refresh-token: $(tail -5 "$T/a.log")"
for i in $(seq $NJOBS); do wait_for 10 same_colls "s$i" "ds$i" id,name,updatedAt,v || fail "ds$i differs from s$i"; done
grep -h "rt-first\|rt-second\|sampleapp-secret" "$T"/*.log "$T/creds.txt" "$T/set.txt" && fail "a secret is in a log or an output"
kill -TERM "${IPID[a]}"; wait "${IPID[a]}" || fail "a did not exit 0"
