# An operator repairs a credential with 'onesyncctl credentials set-refresh-token' (token
# N), and afterwards, carefully, writes N into the configuration as its refresh_token so
# that the file says what was given, and reloads. The daemon refreshed from N meanwhile (the
# server rotated it: N is spent, and presenting it again revokes every live token).
# What should hold: N is not presented again (set-refresh-token's token counts as spent
# once the endpoint answered it, as a configured one does); no reuse, no revocation.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
rt_setup
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":3,"rotate":true,"reuse_revokes":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
rt_conf "$T/a.conf" a job1 s1
daemon_start "$T/a.conf"; pa=$D_PID
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge 1 ]' || fail "no refresh"
sa POST /_ctl/oauth '{"refresh_token":"rt-oper-91c2e"}' >/dev/null
echo "rt-oper-91c2e" | "$CTL" -c "$T/a.conf" credentials set-refresh-token erp >"$T/set.txt" 2>&1 ||
	fail "set-refresh-token: $(cat "$T/set.txt")"
n=$(oauth "o['refreshes']")
wait_for 15 eval '[ "$(oauth "o[\"refreshes\"]")" -ge $((n + 2)) ]' || fail "no refresh from the operator's token"
printf '%s\n' "rt-oper-91c2e" >"$T/secrets/rt"	# the file now says what was given
kill -HUP "$pa"
sleep 8
read -r reused live < <(oauth "o['reused'], o['live_refresh_tokens']")
"$CTL" -c "$T/a.conf" credentials >"$T/creds.txt" 2>&1
kill -TERM "$pa"; wait "$pa"
[ "$reused" = 0 ] ||
	fail "set-refresh-token, then its token written into the configuration: the daemon presented the spent token again ($reused reuses, $live live refresh tokens left): $(cat "$T/creds.txt")"
note "the operator's token written into the configuration is not presented again"
exit 0
