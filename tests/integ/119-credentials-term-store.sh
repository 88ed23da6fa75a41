# SIGTERM while a rotated refresh token waits to be stored again: the state database
# failed the store for a while and answers again, the next try being up to 8 s away. The
# stop stores it at once (within stop_timeout) before it leaves, so that the next start
# refreshes with it, not with the refresh token the endpoint already spent.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
rt_setup
STATE=$(new_db state)
rt_conf "$T/a.conf"
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
daemon_start "$T/a.conf"
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 1 ]' ||
	fail "no token stored"
store_away
wait_for 10 grep -q "its new token is not stored yet" "$T/daemon.log" || fail "no failed store"
sleep 9		# tries at +1, +2, +4 s; the next one 8 s later
store_back
kill -TERM "$D_PID"; wait "$D_PID" || fail "onesyncd did not exit 0"
grep -q "stops before the state database took" "$T/daemon.log" && fail "the stop abandoned the token"
grep -q "its new token is stored" "$T/daemon.log" || fail "the stop did not store the token"
: >"$T/daemon.log"
daemon_start "$T/a.conf"
sleep 4
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$D_PID"; wait "$D_PID"
reused=$(oauth "o['reused']")
grep -q 'needs re-authorization' "$T/creds.txt" &&
	fail "a stop abandoned a pending store while the database answered: the restart needs re-authorization ($reused reuses): $(cat "$T/creds.txt")"
note "a stop during a store's retry keeps the rotated refresh token"
exit 0
