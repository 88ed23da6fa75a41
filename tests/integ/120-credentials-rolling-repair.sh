# A new refresh_token in the configuration and a reload, done on one instance first (a
# rolling change): that instance refreshes with the new token and stores the rotated one;
# the other, whose configuration still names the first refresh token (spent long ago), must
# not present it (a server that revokes on reuse would revoke the new chain too): it goes
# on with the stored chain of its client, and no refresh token is used twice.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
mkdir -p "$T/secrets" "$T/sa" "$T/sb"
key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
for d in sa sb; do printf '%s\n' "$key" >"$T/$d/k"; printf '%s\n' "rt-first-5b3c9" >"$T/$d/rt"; done
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/gen '{"coll":"s1","n":5}' >/dev/null
sa POST /_ctl/gen '{"coll":"s2","n":5}' >/dev/null
conf() { SECRETS="$T/s$2" rt_conf "$1" "$2" "$3" "$4"; }
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":3,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/a.conf" a job1 s1
conf "$T/b.conf" b job2 s2
daemon_start "$T/a.conf"; pa=$D_PID
daemon_start "$T/b.conf"; pb=$D_PID
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge 2 ]' || fail "no refreshes"
# the operator gives a new refresh token in a's configuration first
sa POST /_ctl/oauth '{"refresh_token":"rt-second-77aa1"}' >/dev/null
printf '%s\n' "rt-second-77aa1" >"$T/sa/rt"
kill -HUP "$pa"
sleep 10
read -r reused <<<"$(oauth "o['reused']")"
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$pa" "$pb"; wait "$pa"; wait "$pb"
[ "$reused" = 0 ] || fail "a rolling change of refresh_token: the other instance presented its spent configured refresh token ($reused reuses; the server revoked every live one): $(cat "$T/creds.txt")"
f=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job2' AND result = 'failed'")
[ "$f" = 0 ] || fail "$f runs of job2 (the instance left behind) failed: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job2' AND result = 'failed' LIMIT 1")"
grep -q "needs re-authorization" "$T/creds.txt" && fail "a needs re-authorization: $(cat "$T/creds.txt")"
note "a rolling change of refresh_token: no reuse, no run failed"
exit 0
