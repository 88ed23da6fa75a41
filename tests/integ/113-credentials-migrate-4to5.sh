# A state database upgraded from schema 4 holds a credential row whose rotated
# refresh token schema 4 stored, with no key_check and no origin (migration 5 adds them
# NULL). The daemon must go on with that stored refresh token (it is sealed with its key;
# the configured one was spent long ago). It takes "origin NULL" for "another
# configuration's" and refreshes with the configured refresh_token: invalid_grant, and
# the credential needs re-authorization after an upgrade.
# The row is made as migration 5 leaves it: the current daemon stores, then its two new
# columns are set NULL (schema 4 sealed with the same key and associated data).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
rt_setup
STATE=$(new_db state)
rt_conf "$T/a.conf"
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
daemon_start "$T/a.conf"
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 2 ]' ||
	fail "no rotated refresh token stored"
kill -TERM "$D_PID"; wait "$D_PID" || fail "onesyncd did not exit 0"
# as migration 5 leaves a row schema 4 wrote
sql "$STATE" "UPDATE onesync.credentials SET key_check = NULL, origin = NULL"
: >"$T/daemon.log"
daemon_start "$T/a.conf"
r0=$(oauth "o['refreshes']")
wait_for 10 eval '[ "$(oauth "o[\"refreshes\"]")" -ge $((r0 + 2)) ]' ||
	note "no refresh worked after the upgrade"
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$D_PID"; wait "$D_PID"
read -r reused <<<"$(oauth "o['reused']")"
grep -q "another configuration's" "$T/daemon.log" &&
	note "daemon: $(grep "another configuration's" "$T/daemon.log" | head -1)"
[ "$reused" = 0 ] || fail "after the upgrade the spent configured refresh token was presented ($reused reuses): $(cat "$T/creds.txt")"
grep -q 'needs re-authorization' "$T/creds.txt" && fail "needs re-authorization after the upgrade: $(cat "$T/creds.txt")"
note "a schema-4 row: its stored refresh token is used"
exit 0
