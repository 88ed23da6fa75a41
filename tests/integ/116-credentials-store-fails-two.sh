# Two instances share a rotating refresh token; the state database fails every
# store (credential_store) for 12 s. The instance whose store fails holds the rotated
# refresh token in memory only; its refresh lease is not renewed while it retries the
# store, so the other instance takes the lease when it runs out and refreshes with the
# refresh token still in the row: the one the token endpoint already spent. A server that
# revokes on reuse then revokes the rotated one too: the credential is lost for good.
# What should hold: no refresh token is presented twice, and no re-authorization is needed.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
rt_setup
sa POST /_ctl/gen '{"coll":"s2","n":5}' >/dev/null
conf() { rt_conf "$1" "$2" "$3" "$4" 'timeout = "20s";'; }
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/a.conf" a job1 s1
conf "$T/b.conf" b job2 s2
daemon_start "$T/a.conf"; pa=$D_PID
daemon_start "$T/b.conf"; pb=$D_PID
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 2 ]' ||
	fail "no tokens stored"
store_away
sleep 12
store_back
sleep 8
read -r reused unknown < <(oauth "o['reused'], o['unknown_refresh']")
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$pa" "$pb"; wait "$pa"; wait "$pb"
[ "$reused" = 0 ] || fail "a refresh token was presented twice while the stores failed ($reused reuses); $(cat "$T/creds.txt")"
grep -q 'needs re-authorization' "$T/creds.txt" && fail "the credential needs re-authorization after 12 s of failed stores: $(cat "$T/creds.txt")"
note "12 s of failed stores, two instances: 0 reused"
exit 0
