# The 401 backoff counts new tokens a 401 refused in a row (within 3 s of their coming). A
# server that revokes tokens now and then (here every 5 s, each new token serving many
# requests in between) must not make onesyncd say "the API refused N new tokens in a row",
# hold the token endpoint back for growing delays and fail the runs meanwhile: every new
# token worked.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
sa_start
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/gen '{"coll":"s1","n":5}' >/dev/null
STATE=$(new_db state)
cat >"$T/a.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { instance = "a"; stop_timeout = "5s"; };
defaults = { interval = "300ms"; jitter = "0s"; retries = 0; };
credentials = ( { name = "crm"; type = "oauth2_client_credentials"; token_url = "$SA/oauth/token";
	client_id = "sampleapp"; client_secret = "sampleapp-secret"; } );
jobs = ( { name = "job1"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; sorted = true; };
	source = { url = "$SA/api/s1"; auth = "crm"; page = { style = "page"; size = 10; };
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/ds1/{{key}}"; body = "{{record}}"; auth = "crm"; }; } );
C
sa POST /_ctl/oauth '{"expires_in":3600}' >/dev/null
daemon_start "$T/a.conf"
wait_for 15 eval '[ "$(oauth "o[\"authorized\"]")" -ge 5 ]' || fail "no authorized request"
sleep 4	# the first token is older than 3 s
for i in 1 2 3; do
	a0=$(oauth "o['authorized']")
	sa POST /_ctl/oauth '{"revoke_access":true}' >/dev/null
	sleep 5
	a1=$(oauth "o['authorized']")
	[ "$((a1 - a0))" -ge 5 ] || fail "only $((a1 - a0)) requests authorized in the 5 s after revocation $i"
done
kill -TERM "$D_PID"; wait "$D_PID"
n=$(grep -c "new tokens in a row" "$T/daemon.log")
f=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed' AND error LIKE '%in a row%'")
[ "$n" = 0 ] && [ "$f" = 0 ] || fail "3 revocations 5 s apart, each new token working: $n warnings, $f runs failed: $(grep -m1 "new tokens in a row" "$T/daemon.log")"
note "revocations now and then do not block the credential"
exit 0
