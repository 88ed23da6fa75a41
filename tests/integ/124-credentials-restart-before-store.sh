# The token endpoint does not rotate refresh tokens (the configured one stays valid for
# good). onesyncd's first refresh is answered, but the state database cannot store the
# answer yet (credential_store fails), and the operator restarts onesyncd with the same
# configuration before it could.
# What should hold: the restart refreshes with the configured refresh token, which the
# server still takes; a legitimate, unchanged configuration is not refused as "spent".
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":600,"rotate":false,"delay_ms":3000,"refresh_token":"rt-first-5b3c9"}' >/dev/null
rt_conf "$T/a.conf" a job1 s1
daemon_start "$T/a.conf"; pa=$D_PID
wait_for 15 eval '[ -n "$(sql "$STATE" "SELECT oid::regprocedure FROM pg_proc WHERE proname = '"'"'credential_store'"'"' AND pronargs = 9" 2>/dev/null)" ]' ||
	fail "no schema 5"
store_away
wait_for 15 grep -q "not stored yet" "$T/daemon.log" || fail "the store never failed"
kill -TERM "$pa"; wait "$pa"
store_back
sa POST /_ctl/oauth '{"delay_ms":0}' >/dev/null
daemon_start "$T/a.conf"; pa=$D_PID
sleep 6
ok=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job1' AND result = 'ok' AND started_at > now() - interval '6 s'")
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' AND result = 'failed' ORDER BY id DESC LIMIT 1")
kill -TERM "$pa"; wait "$pa"
[ "$ok" -ge 1 ] ||
	fail "restarted with the same configuration before the first store (the server does not rotate): no run ok; $(echo "${e:0:300}")"
note "a restart before the first store refreshes again ($ok runs ok)"
exit 0
