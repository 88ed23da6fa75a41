# SIGTERM while a refresh's token request is in flight (the server is slow: 3 s). The
# server answers, rotating the refresh token, whether onesyncd still listens or not.
# onesyncd has stop_timeout = 5s to leave. Then it is started again.
# What should hold: the stop waits for the token request within stop_timeout and stores
# its rotated refresh token (as it does for one waiting to be stored, test 119), so that
# the restart does not present the spent one (reuse: the server revokes every live token).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":4,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
rt_conf "$T/a.conf" a job1 s1
daemon_start "$T/a.conf"; pa=$D_PID
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge 2 ]' || fail "no refreshes"
sa POST /_ctl/oauth '{"delay_ms":3000}' >/dev/null
inflight() { sa GET '/_ctl/seen?prefix=/oauth/token' | python3 -c "import json,sys; print(json.load(sys.stdin)['statuses'].get('0', 0))"; }
wait_for 15 eval '[ "$(inflight)" -ge 1 ]' || fail "no refresh in flight"
kill -TERM "$pa"; wait "$pa"
sleep 4		# the server answered meanwhile
sa POST /_ctl/oauth '{"delay_ms":0}' >/dev/null
daemon_start "$T/a.conf"; pa=$D_PID
sleep 6
read -r reused live < <(oauth "o['reused'], o['live_refresh_tokens']")
kill -TERM "$pa"; wait "$pa"
[ "$reused" = 0 ] ||
	fail "SIGTERM during a token request: the restart presented the spent refresh token ($reused reuses, $live live left)"
note "SIGTERM during a token request: no reuse after the restart"
exit 0
