# The refresh lease is renewed every 1.7 s while the token request waits, but one
# renewal the state database fails (an error, not "lease lost") stops the renewals for good:
# the lease runs out 5 s after it was taken while the request still waits, and the other
# instance begins a refresh with the same refresh token.
# What should hold: a failed renewal is tried again; one token request for one refresh.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/creds.inc"
rt_setup
sa POST /_ctl/gen '{"coll":"s2","n":5}' >/dev/null
conf() { rt_conf "$1" "$2" "$3" "$4" 'timeout = "30s";'; }
STATE=$(new_db state)
sa POST /_ctl/oauth '{"expires_in":600,"delay_ms":12000,"rotate":true,"refresh_token":"rt-first-5b3c9"}' >/dev/null
conf "$T/a.conf" a job1 s1
conf "$T/b.conf" b job2 s2
daemon_start "$T/a.conf"; pa=$D_PID
daemon_start "$T/b.conf"; pb=$D_PID
wait_for 10 eval '[ -n "$(sql "$STATE" "SELECT refreshing_by FROM onesync.credentials WHERE refreshing_until > now()" 2>/dev/null)" ]' ||
	fail "no refresh lease taken"
sql "$STATE" "ALTER FUNCTION onesync.credential_renew(text, text, bigint, bigint) RENAME TO credential_renew_away" || fail "cannot rename a function"
sleep 2.5	# one renewal (at 1.7 s) fails
sql "$STATE" "ALTER FUNCTION onesync.credential_renew_away(text, text, bigint, bigint) RENAME TO credential_renew" || fail "cannot rename a function"
sleep 20	# the first answer comes 12 s after its request; a second request 5 s later
read -r total reused < <(oauth "o['token_requests']['total'], o['reused']")
kill -TERM "$pa" "$pb"; wait "$pa"; wait "$pb"
grep "lease cannot be renewed" "$T/daemon.log" | head -1 | sed 's/^/    /' >&2
[ "$total" = 1 ] && [ "$reused" = 0 ] ||
	fail "one failed renewal: $total token requests, $reused refresh tokens presented twice"
note "a failed renewal is tried again"
exit 0
