#!/usr/bin/env bash
# The sample application as the metered, token-issuing server the budget and credential
# tests rely on (tests/sampleapp.md): a limit answers 429 past N with the headers asked,
# /_ctl/seen counts the densest window and the requests sent during a block right, tokens
# are issued, expire, rotate, a reused refresh token is refused and counted, and protected
# routes refuse expired and unknown tokens. It checks the test tool, driven with curl.
. "$(dirname "$0")/../lib.sh"
sa_start
sa POST /_ctl/gen '{"coll":"c","n":5}' >/dev/null || fail "gen"
# jq-less field access: field JSON EXPR (EXPR in Python over d, the parsed JSON)
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }
# hdr FILE NAME: a header's value from curl -D output
hdr() { sed -n "s/^$2: //Ip" "$1" | tr -d '\r'; }
code() { curl -sS --max-time 30 -o /dev/null -w '%{http_code}' "$@"; }

# A limit of 3 in a window far longer than the test: the 4th and 5th requests get 429.
sa POST /_ctl/limit '{"prefix":"/api/","rate":3,"window_ms":600000,"retry_after":"seconds","headers":"ratelimit"}' >/dev/null
codes=
for i in 1 2 3 4 5; do codes="$codes $(curl -sS --max-time 30 -o /dev/null -D "$T/h$i" -w '%{http_code}' "$SA/api/c")"; done
[ "$codes" = " 200 200 200 429 429" ] || fail "limit 3: answers$codes"
[ "$(hdr "$T/h5" RateLimit-Policy)" = '"default";q=3;w=600' ] || fail "RateLimit-Policy: $(hdr "$T/h5" RateLimit-Policy)"
hdr "$T/h2" RateLimit | grep -qE '^"default";r=1;t=[0-9]+$' || fail "RateLimit on the 2nd answer: $(hdr "$T/h2" RateLimit)"
hdr "$T/h5" RateLimit | grep -qE '^"default";r=0;t=[0-9]+$' || fail "RateLimit on a 429: $(hdr "$T/h5" RateLimit)"
ra=$(hdr "$T/h4" Retry-After)
[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 600 ] || fail "Retry-After of the 429: '$ra'"
# The other styles: an HTTP date and X-RateLimit-* (a limit on another prefix).
sa POST /_ctl/limit '{"prefix":"/healthz","rate":1,"window_ms":600000,"retry_after":"http-date","headers":"x-ratelimit"}' >/dev/null
c1=$(code -D "$T/x1" "$SA/healthz") c2=$(code -D "$T/x2" "$SA/healthz")
[ "$c1 $c2" = "200 429" ] || fail "limit 1 on /healthz: $c1 $c2"
[ "$(hdr "$T/x1" X-RateLimit-Limit) $(hdr "$T/x1" X-RateLimit-Remaining) $(hdr "$T/x2" X-RateLimit-Remaining)" = "1 0 0" ] ||
	fail "X-RateLimit-Limit/Remaining: $(grep -i ratelimit "$T/x1" "$T/x2")"
date -d "$(hdr "$T/x2" Retry-After)" +%s >/dev/null 2>&1 || fail "Retry-After not an HTTP date: $(hdr "$T/x2" Retry-After)"
lim=$(sa GET /_ctl/limit)
[ "$(field "$lim" '[(l["accepted"], l["rejected"]) for l in d["limits"]]')" = "[(3, 2), (1, 1)]" ] ||
	fail "/_ctl/limit counts: $lim"
sa DELETE /_ctl/limit >/dev/null
[ "$(code "$SA/api/c")" = 200 ] || fail "a request after DELETE /_ctl/limit was refused"
note "limits: 429 past N, Retry-After in seconds or as a date, RateLimit and X-RateLimit headers"

# max_in_window: two bursts more than a window apart; the answer must equal what the
# arrival times it lists give, and no window can span both bursts.
sa DELETE /_ctl/seen >/dev/null
for i in 1 2 3; do code "$SA/api/c" >/dev/null; done
sleep 1.2
for i in 1 2; do code "$SA/api/c" >/dev/null; done
code "$SA/healthz" >/dev/null
s=$(sa GET '/_ctl/seen?prefix=/api/&window_ms=1000&list=100')
[ "$(field "$s" 'd["requests"]')" = 5 ] || fail "seen: $s"
exp=$(field "$s" 'max(sum(1 for f in d["entries"] if 0 <= f["t"] - e["t"] < 1000) for e in d["entries"])')
[ "$(field "$s" 'd["max_in_window"]')" = "$exp" ] || fail "max_in_window $(field "$s" 'd["max_in_window"]'), the times give $exp: $s"
[ "$exp" -le 3 ] || fail "a 1 s window spans two bursts 1.2 s apart: $s"
[ "$(field "$(sa GET '/_ctl/seen?prefix=/api/&window_ms=86400000')" 'd["max_in_window"]')" = 5 ] ||
	fail "max_in_window over a day is not every request"
[ "$(field "$(sa GET '/_ctl/seen')" 'd["requests"]')" = 6 ] || fail "seen without prefix: not 6 requests"

# A block: one 429 with Retry-After: 30; a request sent during it counts as after_block
# (or in_grace within grace_ms of its start); one under another prefix does not.
sa POST /_ctl/block '{"prefix":"/api/","seconds":30}' >/dev/null
[ "$(code -D "$T/b1" "$SA/api/c")" = 429 ] || fail "the block's request was not refused"
[ "$(hdr "$T/b1" Retry-After)" = 30 ] || fail "the block's Retry-After: $(hdr "$T/b1" Retry-After)"
[ "$(code "$SA/api/c")" = 200 ] || fail "the block answered more than one 429"
code "$SA/healthz" >/dev/null
s=$(sa GET '/_ctl/seen?prefix=/api/')
[ "$(field "$s" '(d["after_block"], d["in_grace"], len(d["blocks"]), d["statuses"]["429"])')" = "(1, 0, 1, 1)" ] ||
	fail "after a block: $s"
s=$(sa GET '/_ctl/seen?prefix=/api/&grace_ms=60000')
[ "$(field "$s" '(d["after_block"], d["in_grace"])')" = "(0, 1)" ] || fail "grace_ms: $s"
[ "$(field "$(sa GET '/_ctl/seen?prefix=/healthz')" 'd["after_block"]')" = 0 ] || fail "another prefix counted in a block"
sa DELETE /_ctl/seen >/dev/null
[ "$(field "$(sa GET '/_ctl/seen')" '(d["requests"], len(d["blocks"]))')" = "(0, 0)" ] || fail "DELETE /_ctl/seen"
note "seen: max_in_window, after_block and in_grace"

# Tokens: client credentials (Basic or in the body), a protected prefix.
sa POST /_ctl/oauth '{"client_id":"cid","client_secret":"s3cret","expires_in":60,"rotate":true,"refresh_token":"rt0"}' >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/"}' >/dev/null
tok() { curl -sS --max-time 30 "$@" "$SA/oauth/token"; }
r=$(tok -u cid:s3cret -d grant_type=client_credentials -d scope=contacts.read)
[ "$(field "$r" '(d["token_type"], d["expires_in"], d["scope"], "refresh_token" in d)')" = "('Bearer', 60, 'contacts.read', False)" ] ||
	fail "client_credentials: $r"
a1=$(field "$r" 'd["access_token"]')
r=$(tok -d grant_type=client_credentials -d client_id=cid -d client_secret=s3cret)
[ "$(field "$r" 'd["access_token"] != "'"$a1"'"')" = True ] || fail "client auth in the body: $r"
[ "$(code -H "Authorization: Bearer $a1" "$SA/api/c")" = 200 ] || fail "a valid token was refused"
[ "$(code -D "$T/u" -H "Authorization: Bearer at-0-nosuch" "$SA/api/c")" = 401 ] || fail "an unknown token passed"
hdr "$T/u" WWW-Authenticate | grep -q 'error="invalid_token"' || fail "401 without invalid_token: $(cat "$T/u")"
[ "$(code "$SA/api/c")" = 401 ] || fail "no token passed"
[ "$(code -u cid:wrong -d grant_type=client_credentials "$SA/oauth/token")" = 401 ] || fail "a wrong secret got a token"
# Expiry: a token living 1 s is refused once it is older than that.
sa POST /_ctl/oauth '{"expires_in":1}' >/dev/null
r=$(tok -u cid:s3cret -d grant_type=client_credentials)
a2=$(field "$r" 'd["access_token"]')
[ "$(field "$r" 'd["expires_in"]')" = 1 ] || fail "expires_in 1: $r"
sleep 1.2
[ "$(code -D "$T/e" -H "Authorization: Bearer $a2" "$SA/api/c")" = 401 ] || fail "an expired token passed"
hdr "$T/e" WWW-Authenticate | grep -q 'error="invalid_token"' || fail "expired: 401 without invalid_token"

# Rotation: each refresh answers a new refresh token and spends the one used; a spent one
# is refused with invalid_grant and counted as reused, an unknown one is not.
r=$(tok -u cid:s3cret -d grant_type=refresh_token -d refresh_token=rt0)
rt1=$(field "$r" 'd["refresh_token"]')
[ -n "$rt1" ] && [ "$rt1" != rt0 ] || fail "refresh with rt0: $r"
r=$(tok -u cid:s3cret -d grant_type=refresh_token --data-urlencode "refresh_token=$rt1")
rt2=$(field "$r" 'd["refresh_token"]')
[ -n "$rt2" ] && [ "$rt2" != "$rt1" ] || fail "refresh with the rotated token: $r"
[ "$(code -D "$T/g" -u cid:s3cret -d grant_type=refresh_token -d refresh_token=rt0 "$SA/oauth/token")" = 400 ] ||
	fail "a reused refresh token was accepted"
[ "$(code -u cid:s3cret -d grant_type=refresh_token -d refresh_token=rt-nosuch "$SA/oauth/token")" = 400 ] ||
	fail "an unknown refresh token was accepted"
r=$(tok -u cid:s3cret -d grant_type=refresh_token -d refresh_token=rt0)
[ "$(field "$r" 'd["error"]')" = invalid_grant ] || fail "reuse: $r"
# Injected failure, then hostile bodies: each a 400, and the server lives on.
sa POST /_ctl/oauth '{"fail":"invalid_grant","fail_times":1}' >/dev/null
r=$(tok -u cid:s3cret -d grant_type=refresh_token --data-urlencode "refresh_token=$rt2")
[ "$(field "$r" 'd["error"]')" = invalid_grant ] || fail "fail invalid_grant: $r"
for body in 'grant_type=client_credentials&scope=%zz' 'grant_type=a&grant_type=b' 'scope=x' \
	"grant_type=client_credentials&scope=$(head -c 9000 /dev/zero | tr '\0' x)"; do
	[ "$(code -u cid:s3cret --data-binary "$body" "$SA/oauth/token")" = 400 ] || fail "a bad form got no 400: ${body:0:60}"
done
[ "$(code -u cid:s3cret -H 'Content-Type: application/json' -d '{}' "$SA/oauth/token")" = 400 ] || fail "JSON body: no 400"
o=$(sa GET /_ctl/oauth)
[ "$(field "$o" '(d["reused"], d["unknown_refresh"], d["refreshes"], d["expired_used"], d["unknown"], d["missing"], d["authorized"])')" = \
	"(2, 1, 2, 1, 1, 1, 1)" ] || fail "oauth counters: $o"
[ "$(field "$o" '(d["token_requests"]["client_credentials"], d["token_requests"]["refresh_token"], d["token_requests"]["total"] == len(d["times"]), d["client_auth"])')" = \
	"(4, 6, True, {'basic': 8, 'body': 1})" ] || fail "token requests: $o"
[ "$(code "$SA/healthz")" = 200 ] || fail "the sample application died"
note "tokens: issued, expired, rotated, reuse refused and counted, protected routes"
