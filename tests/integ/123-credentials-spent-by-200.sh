# A careless first deployment: token_url names the wrong path of the server, one that
# answers any POST with 200 and JSON that is no token answer (here /healthz; a login page
# or a proxy's answer does the same). The token endpoint never saw the refresh token. The
# operator fixes token_url and reloads.
# What should hold: the configured refresh token is presented at the right URL and works;
# it is not refused as "spent already" (no seed for a token no endpoint took).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":600,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
rt_conf "$T/a.conf" a job1 s1
sed -i 's|/oauth/token"|/healthz"|' "$T/a.conf"
grep -q healthz "$T/a.conf" || fail "cannot set the wrong token_url"
daemon_start "$T/a.conf"; pa=$D_PID
wait_for 15 grep -q "answer has" "$T/daemon.log" || fail "the wrong URL was never asked"
sleep 1
[ "$(oauth "o['token_requests']['total']")" = 0 ] || fail "the endpoint was asked"
sed -i 's|/healthz"|/oauth/token"|' "$T/a.conf"
kill -HUP "$pa"
sleep 8
read -r refreshes reused < <(oauth "o['refreshes'], o['reused']")
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' AND result = 'failed' ORDER BY id DESC LIMIT 1")
kill -TERM "$pa"; wait "$pa"
[ "$refreshes" -ge 1 ] && [ "$reused" = 0 ] ||
	fail "token_url fixed, the configured refresh token (never seen by the endpoint) was never presented ($refreshes refreshes); the job fails with: ${e:0:300}"
note "a fixed token_url refreshes with the configured token"
exit 0
