# While a new token waits to be stored again (the state database fails the store),
# the credential stays busy; once its token expires (here after 2 s) the requests that ask
# for one queue up behind that store. When the store finally succeeds the credential goes
# idle without answering them: they wait until another request happens to start a fetch.
# With one job, none does: its run waits for a token until its run_timeout (6 h).
# What should hold: once the store is taken, the waiting requests get a token (or fail).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
STATE=$(new_db state)
rt_conf "$T/a.conf"
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
daemon_start "$T/a.conf"
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 1 ]' ||
	fail "no token stored"
store_away
wait_for 10 grep -q "its new token is not stored yet" "$T/daemon.log" || fail "no failed store"
sleep 5		# the token (2 s) expires meanwhile: the run's next request waits
store_back
wait_for 15 grep -q "its new token is stored" "$T/daemon.log" || fail "the store was not taken"
ok0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok'")
wait_for 15 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '"'ok'"'")" -gt "$ok0" ]' ||
	fail "no run ended in 15 s after the store was taken: $(sql "$STATE" "SELECT id, result, round(extract(epoch FROM now() - started_at)) || ' s ago' FROM onesync.runs ORDER BY id DESC LIMIT 1")"
kill -TERM "$D_PID"; wait "$D_PID"
note "requests waiting behind a store get their token"
exit 0
