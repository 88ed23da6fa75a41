# A careless first deployment: client_id has a typo. The token endpoint refuses the client
# (401 invalid_client) before it looks at the refresh token, which stays live there. The
# operator fixes client_id and reloads (a restart does the same).
# What should hold: the configured refresh token, which the server never accepted nor
# spent, is presented with the right client; the credential works. It must not be refused
# as "spent already" (a seed recorded for a token the server never took bricks it).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":600,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
rt_conf "$T/a.conf" a job1 s1
sed -i 's/client_id = "sampleapp"/client_id = "sampleap"/' "$T/a.conf"
daemon_start "$T/a.conf"; pa=$D_PID
wait_for 15 eval '[ "$(oauth "o[\"bad_client\"]")" -ge 1 ]' || fail "the typo never reached the endpoint"
sleep 1
read -r live refreshes < <(oauth "o['live_refresh_tokens'], o['refreshes']")
[ "$refreshes" = 0 ] && [ "$live" -ge 1 ] || fail "the server took the token: $refreshes refreshes, $live live"
# the operator fixes the typo
sed -i 's/client_id = "sampleap"/client_id = "sampleapp"/' "$T/a.conf"
kill -HUP "$pa"
sleep 8
read -r refreshes reused < <(oauth "o['refreshes'], o['reused']")
ok=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job1' AND result = 'ok'")
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' AND result = 'failed' ORDER BY id DESC LIMIT 1")
kill -TERM "$pa"; wait "$pa"
[ "$refreshes" -ge 1 ] && [ "$reused" = 0 ] ||
	fail "client_id fixed, the live configured refresh token was never presented again ($refreshes refreshes, $ok runs ok); the job fails with: ${e:0:400}"
note "a fixed client_id refreshes with the configured token ($refreshes refreshes)"
exit 0
