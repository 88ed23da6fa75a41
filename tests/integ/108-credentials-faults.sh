# Rotating refresh tokens when things go wrong around a refresh; no refresh token may be
# spent twice and none lost:
# 1. the state database fails the statement that stores a refresh's answer for a few
#    seconds: the rotated refresh token is stored once it answers again (the credential
#    does not need re-authorization, the next refreshes work);
# 2. two reloads in quick succession change the credential (its scope) while its refresh
#    waits for a slow token endpoint: the new credential waits for that refresh instead of
#    spending the same refresh token, and the requests that waited meanwhile go on;
# 3. two instances start together and the token endpoint takes 8 s, longer than the
#    refresh lease (5 s): the lease is renewed while the request waits, so the other
#    instance does not begin a refresh of its own with the same refresh token;
# 4. another instance's refresh lease that never ends (a row leased by "ghost" for an hour):
#    the requests waiting for a token fail after the token request's time (1 s here) and
#    10 s, naming the credential, instead of waiting for ever.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/k"
printf '%s\n' "rt-first-5b3c9" >"$T/secrets/rt"
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/gen '{"coll":"s1","n":5}' >/dev/null
sa POST /_ctl/gen '{"coll":"s2","n":5}' >/dev/null
# conf FILE INSTANCE SCOPE [JOB COLL]: one job (job1 on s1) under credential erp
conf() {
	cat >"$1" <<C
state = { conninfo = "$STATE"; encryption_key = "{{secret:k}}"; };
daemon = { instance = "$2"; stop_timeout = "5s"; secrets_dir = "$T/secrets"; };
defaults = { interval = "300ms"; jitter = "0s"; retries = 0; };
credentials = ( { name = "erp"; type = "oauth2_refresh_token"; token_url = "$SA/oauth/token";
	scope = "$3"; client_id = "sampleapp"; client_secret = "sampleapp-secret";
	refresh_token = "{{secret:rt}}"; timeout = "20s"; } );
jobs = ( $(http_job "${4:-job1}" "${5:-s1}" 'auth = "erp";' 'auth = "erp";') );
C
}
stop() { kill -TERM "$1"; wait "$1" || fail "onesyncd did not exit 0"; }

# 1. a failed store
STATE=$(new_db state1)
sa POST /_ctl/oauth '{"expires_in":2,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/1.conf" a read
daemon_start "$T/1.conf"
wait_for 15 eval '[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -ge 1 ]' ||
	fail "no token stored"
g0=$(sql "$STATE" "SELECT generation FROM onesync.credentials")
store_away
r0=$(oauth "o['refreshes']")
wait_for 10 eval '[ "$(oauth "o[\"refreshes\"]")" -gt "$r0" ]' || fail "no refresh"
wait_for 10 grep -q "its new token is not stored yet" "$T/daemon.log" ||
	fail "no word of the store that failed"
store_back
r1=$(oauth "o['refreshes']")
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge $((r1 + 2)) ]' ||
	fail "the refreshes after the store came back did not work"
"$CTL" -c "$T/1.conf" credentials >"$T/creds1.txt" 2>&1
grep -q 'needs re-authorization' "$T/creds1.txt" &&
	fail "a failed store of a rotated refresh token made the credential need re-authorization"
read -r reused invalid < <(oauth "o['reused'], o['unknown_refresh']")
[ "$reused" = 0 ] && [ "$invalid" = 0 ] || fail "refresh tokens reused: $reused, unknown: $invalid"
[ "$(sql "$STATE" "SELECT generation FROM onesync.credentials")" -gt "$((g0 + 1))" ] ||
	fail "the generation did not move on after the store came back"
stop "$D_PID"
f=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'failed' AND error LIKE '%re-authorization%'")
[ "$f" = 0 ] || fail "$f runs failed for re-authorization"
note "1. a store failed for a while: $(oauth "o['refreshes']") refreshes, 0 reused"

# 2. a reload during a slow refresh
STATE=$(new_db state2)
sa DELETE /_ctl/oauth >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/oauth '{"expires_in":8,"delay_ms":4000,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/2.conf" a read
: >"$T/daemon.log"
daemon_start "$T/2.conf"
wait_for 15 eval '[ "$(oauth "o[\"issued\"]")" -ge 1 ]' || fail "no token"
# the refresh begins at 75 % of 8 s less 5 %, 5.7 to 6 s after the first token came; the
# server answers it 4 s later (and counts it then)
sleep 6.4
conf "$T/2.conf" a "read write"
kill -HUP "$D_PID"
sleep 0.5
conf "$T/2.conf" a "read admin"
kill -HUP "$D_PID"
sleep 9
n=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok'")
wait_for 10 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '"'ok'"'")" -ge $((n + 3)) ]' ||
	fail "the job stopped running after the reloads"
read -r reused refreshes < <(oauth "o['reused'], o['refreshes']")
[ "$reused" = 0 ] || fail "a reload during a refresh spent the same refresh token twice ($reused reuses)"
[ "$refreshes" -ge 2 ] || fail "only $refreshes refreshes after the reload"
"$CTL" -c "$T/2.conf" credentials >"$T/creds2.txt" 2>&1
grep -q 'needs re-authorization' "$T/creds2.txt" && fail "the reload left the credential needing re-authorization"
stop "$D_PID"
note "2. two reloads during a refresh: $refreshes refreshes, 0 reused"

# 3. a token request longer than the lease, two instances
STATE=$(new_db state3)
sa DELETE /_ctl/oauth >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/oauth '{"expires_in":600,"delay_ms":8000,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/3a.conf" a read
conf "$T/3b.conf" b read job2 s2
: >"$T/daemon.log"
daemon_start "$T/3a.conf"; pa=$D_PID
daemon_start "$T/3b.conf"; pb=$D_PID
wait_for 20 eval '[ "$(oauth "o[\"issued\"]")" -ge 1 ]' || fail "no token in 20 s"
# a second request, begun when a 5 s lease ran out, would be answered (and counted) 5 s
# after the first
sleep 6
read -r total reused < <(oauth "o['token_requests']['total'], o['reused']")
[ "$total" = 1 ] || fail "$total token requests for one refresh that took 8 s (the lease was not renewed?)"
[ "$reused" = 0 ] || fail "$reused refresh tokens used twice"
wait_for 10 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '"'ok'"'")" -ge 2 ]' ||
	fail "the jobs did not run with the token"
stop "$pa"; stop "$pb"
note "3. a token request of 8 s, lease 5 s, two instances: $total token request"

# 4. a lease that never ends
STATE=$(new_db state4)
sa DELETE /_ctl/oauth >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
sa POST /_ctl/oauth '{"expires_in":600,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/4.conf" a read
sed -i 's/timeout = "20s"/timeout = "1s"/' "$T/4.conf"
: >"$T/daemon.log"
daemon_start "$T/4.conf"
wait_for 15 eval '[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = '"'ok'"'")" -ge 1 ]' ||
	fail "the job did not run"
sql "$STATE" "UPDATE onesync.credentials SET access_sealed = NULL, access_expires_at = NULL,
	refreshing_by = 'ghost', refreshing_until = now() + interval '1 hour'"
sa POST /_ctl/oauth '{"revoke_access":true}' >/dev/null
sa POST /_ctl/mutate '{"coll":"s1","after_gets":0,"touch":1,"field":"updatedAt"}' >/dev/null
wait_for 30 eval '[ -n "$(sql "$STATE" "SELECT error FROM onesync.runs WHERE error LIKE '"'%no token after 11 s%'"' LIMIT 1")" ]' ||
	fail "no run failed for want of a token: $(sql "$STATE" "SELECT result, error FROM onesync.runs ORDER BY id DESC LIMIT 2")"
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE error LIKE '%no token after%' LIMIT 1")
case $e in *"credential erp: no token after 11 s"*) ;; *) fail "the error: $e";; esac
stop "$D_PID"
note "4. a lease that never ends: the run failed: ${e:0:160}"
exit 0
