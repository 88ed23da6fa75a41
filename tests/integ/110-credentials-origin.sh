# Whose tokens the state database holds (schema 5: key check and origin of a credential):
# 1. a second instance configured with another state.encryption_key is told so; it does
#    not overwrite the first one's tokens (a refresh credential fails saying why, a client
#    credential gets tokens of its own), and the first one goes on;
# 2. a credential that needs re-authorization is repaired by a new refresh_token in the
#    configuration and a reload (the configured one is used because it is new), and the
#    refresh tokens it rotates are the ones used from then on;
# 3. a changed client_id or token_url does not take the tokens of the old one;
# 4. going back to the first client, its stored tokens work again (the mark the other
#    client's refusal made is that client's).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
mkdir -p "$T/secrets"
key() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
printf '%s\n' "$(key)" >"$T/secrets/k1"
printf '%s\n' "$(key)" >"$T/secrets/k2"
printf '%s\n' "rt-first-5b3c9" >"$T/secrets/rt"
sa POST /_ctl/oauth '{"expires_in":3,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
for i in 1 2 3 4; do sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":3}" >/dev/null; done
# conf FILE INSTANCE KEY JOB COLL CLIENT_ID
conf() {
	cat >"$1" <<C
state = { conninfo = "$STATE"; encryption_key = "{{secret:$3}}"; };
daemon = { instance = "$2"; stop_timeout = "5s"; secrets_dir = "$T/secrets"; };
defaults = { interval = "300ms"; jitter = "0s"; retries = 0; };
credentials = ( { name = "erp"; type = "oauth2_refresh_token"; token_url = "$SA/oauth/token";
	client_id = "${6:-sampleapp}"; client_secret = "sampleapp-secret"; refresh_token = "{{secret:rt}}"; },
	{ name = "crm"; type = "oauth2_client_credentials"; token_url = "$SA/oauth/token";
	client_id = "sampleapp"; client_secret = "sampleapp-secret"; } );
jobs = ( $(http_job "$4" "$5" 'auth = "crm";' 'auth = "erp";') );
C
}
touch1() { sa POST /_ctl/mutate '{"coll":"s1","after_gets":0,"touch":1,"field":"updatedAt"}' >/dev/null; }
delivered() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job1' AND delivered > 0 AND result = 'ok'"; }
ok_runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND result = 'ok'"; }

# 1. another key
conf "$T/a.conf" a k1 job1 s1
conf "$T/b.conf" b k2 job2 s2
"$ONESYNCD" -c "$T/a.conf" >"$T/inst-a.log" 2>&1 & pa=$!; PIDS+=($pa)
wait_for 15 eval '[ "$(ok_runs job1)" -ge 1 ]' || fail "a did not run"
"$ONESYNCD" -c "$T/b.conf" >"$T/inst-b.log" 2>&1 & pb=$!; PIDS+=($pb)
wait_for 10 grep -q "credential erp: its tokens in the state database were sealed with another state.encryption_key (last stored by a)" "$T/inst-b.log" ||
	fail "b did not say that the tokens were sealed with another key: $(grep credential "$T/inst-b.log" | head -3)"
wait_for 10 grep -q "credential crm: its tokens in the state database were sealed with another state.encryption_key" "$T/inst-b.log" ||
	fail "b did not say so for the client credential"
n0=$(ok_runs job1)
for i in 1 2 3 4 5; do touch1; sleep 1; done	# records to deliver, with erp's token
kill -TERM "$pb"; wait "$pb" || fail "b did not exit 0"
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job2' AND result = 'failed' ORDER BY id DESC LIMIT 1")
case $e in *"credential erp"*"sealed with another state.encryption_key"*) ;; *) fail "job2's error: $e";; esac
[ "$(ok_runs job1)" -ge $((n0 + 5)) ] || fail "a stopped running while b ran"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job1' AND result <> 'ok'")" = 0 ] ||
	fail "a's runs failed while b ran: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' AND result <> 'ok' LIMIT 2")"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job1' AND delivered > 0")" -ge 3 ] ||
	fail "a delivered nothing with erp's token while b ran"
[ "$(oauth "o['reused']")" = 0 ] || fail "a refresh token was used twice"
[ "$(sql "$STATE" "SELECT count(DISTINCT key_check) FROM onesync.credentials")" = 1 ] ||
	fail "b stored tokens sealed with its key"
[ "$(sql "$STATE" "SELECT string_agg(DISTINCT updated_by, ',') FROM onesync.credentials")" = a ] ||
	fail "b stored tokens: $(sql "$STATE" "SELECT name, updated_by FROM onesync.credentials")"
"$CTL" -c "$T/b.conf" credentials >"$T/creds-b.txt" 2>&1
grep -q "erp .*tokens stored are sealed with another state.encryption_key" "$T/creds-b.txt" ||
	fail "onesyncctl credentials with b's key: $(cat "$T/creds-b.txt")"
"$CTL" -c "$T/a.conf" credentials >"$T/creds-a.txt" 2>&1
grep -q "another" "$T/creds-a.txt" && fail "onesyncctl credentials with a's key: $(cat "$T/creds-a.txt")"
note "1. b with another key said so and left a's tokens alone; a refreshed on"

# 2. needs re-authorization, repaired by a new refresh_token in the configuration
reused0=$(oauth "o['reused']")
# the server forgets every token: erp's refresh token is refused (invalid_grant)
sa DELETE /_ctl/oauth >/dev/null
sa POST /_ctl/oauth '{"expires_in":3,"rotate":true,"reuse_revokes":true}' >/dev/null
touch1
wait_for 10 eval '"$CTL" -c "$T/a.conf" credentials | grep -q "needs re-authorization"' ||
	fail "the credential does not need re-authorization after invalid_grant"
sa POST /_ctl/oauth '{"refresh_token":"rt-second-77a1"}' >/dev/null
printf '%s\n' "rt-second-77a1" >"$T/secrets/rt"
n0=$(delivered)
kill -HUP "$pa"
touch1
wait_for 15 eval '[ "$(delivered)" -gt "$n0" ]' ||
	fail "a new refresh_token in the configuration and a reload did not repair the credential"
r1=$(oauth "o['refreshes']")
for i in 1 2 3 4; do touch1; sleep 1; done
[ "$(oauth "o['refreshes']")" -gt "$r1" ] || fail "no refresh after the repair"
[ "$(oauth "o['reused']")" = 0 ] || fail "a refresh token was used twice after the repair"
grep -q "its configured refresh_token is new: it is used" "$T/inst-a.log" || fail "a did not say it took the configured refresh_token"
note "2. invalid_grant repaired by a new refresh_token and a reload"

# 3. another client_id with a new refresh_token: the stored tokens are not taken, the
# configured refresh token is presented (the server knows no such client)
sa POST /_ctl/oauth '{"refresh_token":"rt-third-90c2"}' >/dev/null
printf '%s\n' "rt-third-90c2" >"$T/secrets/rt"
conf "$T/a.conf" a k1 job1 s1 other-client
n1=$(delivered)
kill -HUP "$pa"
sleep 0.5
touch1
wait_for 10 eval '"$CTL" -c "$T/a.conf" credentials | grep -q "erp.*needs re-authorization"' ||
	fail "a credential with another client_id did not fail on its own (the server knows no such client)"
[ "$(delivered)" = "$n1" ] || fail "a credential with another client_id delivered with the old one's token"
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' ORDER BY id DESC LIMIT 1")
case $e in *"credential erp needs re-authorization"*"invalid_client"*) ;; *) fail "job1's last error: $e";; esac
note "3. another client_id took no stored token"

# 4. back to the first client and its refresh token: the stored tokens are this
# configuration's again, and the mark the other client's refusal made does not stop them
printf '%s\n' "rt-second-77a1" >"$T/secrets/rt"
conf "$T/a.conf" a k1 job1 s1
n2=$(delivered)
kill -HUP "$pa"
sleep 0.5
touch1
wait_for 10 eval '[ "$(delivered)" -gt "$n2" ]' ||
	fail "back to the first client: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job1' ORDER BY id DESC LIMIT 1")"
"$CTL" -c "$T/a.conf" credentials | grep -q "needs re-authorization" && fail "the mark stayed"
[ "$(oauth "o['reused']")" = 0 ] || fail "a refresh token was used twice"
kill -TERM "$pa"; wait "$pa" || fail "a did not exit 0"
note "4. back to the first client: its stored tokens work again"
exit 0
