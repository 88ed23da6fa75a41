# Two instances share a rotating refresh token; the state database fails every
# store (credential_store) for 12 s. The instance whose store fails holds the rotated
# refresh token in memory only; its refresh lease is not renewed while it retries the
# store, so the other instance takes the lease when it runs out and refreshes with the
# refresh token still in the row: the one the token endpoint already spent. A server that
# revokes on reuse then revokes the rotated one too: the credential is lost for good.
# What should hold: no refresh token is presented twice, and no re-authorization is needed.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/k"
printf '%s\n' "rt-first-5b3c9" >"$T/secrets/rt"
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/gen '{"coll":"s1","n":5}' >/dev/null
sa POST /_ctl/gen '{"coll":"s2","n":5}' >/dev/null
oauth() { sa GET /_ctl/oauth | python3 -c "import json,sys; o = json.load(sys.stdin); print($1)"; }
conf() { rt_conf "$1" "$2" "$3" "$4" 'timeout = "20s";'; }
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/a.conf" a job1 s1
conf "$T/b.conf" b job2 s2
daemon_start "$T/a.conf"; pa=$D_PID
daemon_start "$T/b.conf"; pb=$D_PID
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 2 ]' ||
	fail "no tokens stored"
sig=$(sql "$STATE" "SELECT oid::regprocedure FROM pg_proc WHERE proname = 'credential_store' AND pronargs = 9")
sql "$STATE" "ALTER FUNCTION $sig RENAME TO credential_store_away" || fail "cannot rename a function"
sleep 12
sql "$STATE" "ALTER FUNCTION onesync.credential_store_away(text, text, bigint, text, bigint, text, text, text, text) RENAME TO credential_store" || fail "cannot rename a function"
sleep 8
read -r reused unknown < <(oauth "o['reused'], o['unknown_refresh']")
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$pa" "$pb"; wait "$pa"; wait "$pb"
[ "$reused" = 0 ] || fail "a refresh token was presented twice while the stores failed ($reused reuses); $(cat "$T/creds.txt")"
grep -q 'needs re-authorization' "$T/creds.txt" && fail "the credential needs re-authorization after 12 s of failed stores: $(cat "$T/creds.txt")"
note "12 s of failed stores, two instances: 0 reused"
exit 0
