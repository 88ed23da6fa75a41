# A token endpoint and an API that misbehave:
# 1. answers that parse but are not tokens to use: token_type "mac", expires_in 0.5, "12abc",
#    -5, a refresh_token that is a number, a token of 5 characters (too short to mask): the runs fail naming the credential and what is
#    wrong, and no such token is ever sent to the API; expires_in "3600" (a string of
#    digits) and a missing token_type are taken;
# 2. an API that refuses every token (the server ends them at once): the token endpoint is
#    asked again with a growing delay, not once per request, and the runs say why;
# 3. a run's error names the request's URL once.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"s1","n":3}' >/dev/null
sa POST /_ctl/gen '{"coll":"s2","n":3}' >/dev/null
sa POST /_ctl/protect '{"prefix":"/api/s1"}' >/dev/null
# the token endpoint: answers the JSON in $T/answer, counts requests in its output
cat >"$T/hostile.py" <<'P'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        b = open(sys.argv[2], "rb").read()
        print("token", flush=True)
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
P
python3 "$T/hostile.py" "$T/h.port" "$T/answer" >"$T/h.out" 2>&1 & PIDS+=($!)
wait_for 5 test -s "$T/h.port" || fail "the hostile token endpoint did not start"
H=http://127.0.0.1:$(cat "$T/h.port")
cat >"$T/a.conf" <<C
state = { conninfo = "$STATE"; };
defaults = { interval = "300ms"; jitter = "0s"; retries = 0; };
credentials = ( { name = "odd"; type = "oauth2_client_credentials"; token_url = "$H/token";
	client_id = "x"; client_secret = "y"; },
	{ name = "erp"; type = "oauth2_client_credentials"; token_url = "$SA/oauth/token";
	client_id = "sampleapp"; client_secret = "sampleapp-secret"; } );
jobs = ( $(http_job job1 s2 'auth = "odd";'), $(http_job job2 s1 'auth = "erp";') );
C
once_err() {	# once_err JOB: the error of one run of JOB (--once)
	"$ONESYNCD" -c "$T/a.conf" --once "$1" >>"$T/daemon.log" 2>&1
	sql "$STATE" "SELECT coalesce(error, '') FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"
}

# 1. answers not to use, then two to use
for a in '"token_type":"mac","expires_in":60|token_type other than Bearer' \
	'"token_type":"Bearer","expires_in":0.5|expires_in that is not a whole number' \
	'"token_type":"bearer","expires_in":"12abc"|expires_in that is not a whole number' \
	'"token_type":"Bearer","expires_in":-5|expires_in that is not a whole number' \
	'"token_type":"Bearer","refresh_token":12|refresh_token that is not'; do
	printf '{"access_token":"odd-token-4c1e",%s}' "${a%%|*}" >"$T/answer"
	e=$(once_err job1)
	case $e in *"credential odd"*"${a#*|}"*) ;; *) fail "answer {${a%%|*}}: the run's error is: $e";; esac
done
printf '{"access_token":"at-5x","token_type":"Bearer","expires_in":60}' >"$T/answer"
e=$(once_err job1)
case $e in *"credential odd"*"no usable access_token (6 to 8192"*) ;; *) fail "a token of 5 characters (it could not be masked in logs): $e";; esac
[ "$(sa GET /_ctl/oauth | python3 -c 'import json,sys; o = json.load(sys.stdin); print(o["unknown"])')" = 0 ] ||
	fail "a token from an answer that was refused reached the API"
for a in '"token_type":"Bearer","expires_in":"3600"' '"expires_in":3600'; do
	printf '{"access_token":"odd-token-4c1e",%s}' "$a" >"$T/answer"
	e=$(once_err job1)
	[ -z "$e" ] || fail "answer {$a} was refused: $e"
done
grep -q "odd-token-4c1e" "$T/daemon.log" && fail "the token reached the log"
note "1. six answers refused with their reason, two taken"

# 2. an API that refuses every token: tokens end 1 ms after they are issued
sa POST /_ctl/oauth '{"valid_ms":1}' >/dev/null
cp "$T/a.conf" "$T/b.conf"
daemon_start "$T/b.conf"
sleep 10
kill -TERM "$D_PID"; wait "$D_PID" || fail "onesyncd did not exit 0"
n=$(sa GET /_ctl/oauth | python3 -c 'import json,sys; o = json.load(sys.stdin); print(o["token_requests"]["total"])')
runs=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'job2'")
note "2. 10 s of an API that refuses every token, $runs runs: $n token requests"
[ "$runs" -ge 15 ] || fail "only $runs runs of job2 in 10 s"
[ "$n" -le 12 ] || fail "$n token requests in 10 s against an API that refuses every token (no backoff)"
e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job2' AND error LIKE '%new tokens in a row%' LIMIT 1")
[ -n "$e" ] || fail "no run says the API refuses the credential's tokens"

# 3. the URL once
u="$SA/api/s1?"
c=$(printf '%s' "$e" | grep -o "$u" | wc -l)
[ "$c" = 1 ] || fail "the error names the URL $c times: $e"
exit 0
