# A next page link comes from the source's answer: it is followed, with the job's headers,
# only to the origin of source.url or one that source.allow_origins names.
#  1. a Link header to another origin (another port) fails the run, naming the job, the
#     redacted link and the rule; the other host receives nothing (no Authorization); the
#     page already delivered stays checkpointed and the next run goes on from there;
#  2. the same with a scheme-relative link (//host:port/...) and a next field (style next);
#  3. source.allow_origins (written in upper case, with a trailing slash) lets the link go
#     there, headers included: the other host's records arrive;
#  4. a file source over http: a redirect to another origin is not followed (the other host
#     receives nothing), one to an allowed origin is;
#  5. a destination request answered by a redirect is not followed at all (a guard: libcurl
#     does not follow unless asked, and would send X-Api-Key along).
. "$(dirname "$0")/../lib.sh"
sa_start
SA1=$SA
# The other host: a second sample application on another port.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
"$SAMPLEAPP" -q -p 0 --port-file "$T/sa2.port" >"$T/sa2.out" 2>"$T/sa2.err" &
PIDS+=("$!")
for i in $(seq 100); do [ -s "$T/sa2.port" ] && break; sleep 0.05; done
[ -s "$T/sa2.port" ] || fail "second sampleapp did not start"
P2=$(cat "$T/sa2.port")
SA2=http://127.0.0.1:$P2
sa2() { SA=$SA2 sa "$@"; }
STATE=$(new_db state)
DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE t (id int PRIMARY KEY, name text, \"updatedAt\" text)"
mkdir -p "$T/secrets"; echo "tok-SECRET-42" >"$T/secrets/token"
sa POST /_ctl/gen '{"coll":"items","n":30}' >/dev/null
# The other host has records of its own: 1001..1030 (shifted keys), so following shows.
sa2 POST /_ctl/gen '{"coll":"items","n":30}' >/dev/null
sa2 GET /_ctl/dump?coll=items | python3 -c '
import json, sys
print(json.dumps([dict(r, id=r["id"] + 1000) for r in json.load(sys.stdin)]))' >"$T/other.json"
sa2 POST "/_ctl/load?coll=items&key=id" "$(cat "$T/other.json")" >/dev/null

MODIFIED='strategy = "modified"; modified = { field = "updatedAt"; };'
conf() {	# NAME SOURCE-BITS [STRATEGY-BITS]
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { secrets_dir = "$T/secrets"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = ( { name = "$1"; key = "id"; ${3:-$MODIFIED}
	source = { $2
		headers = [ "Authorization: Bearer {{secret:token}}", "X-Api-Key: {{secret:token}}" ]; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t";
		columns = { id = "id"; name = "name"; updatedAt = "updatedAt"; }; }; } );
CONF
}
LINKSRC="url = \"$SA1/api/items\"; page = { style = \"link\"; size = 10; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_limit={{limit}}\" ];"
run_of() { sql "$STATE" "SELECT $2 FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
rows() { sql "$DEST" "SELECT count(*) FROM t WHERE id $1"; }
other_got() { sa2 GET /_ctl/requests | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["requests"]))'; }
# link_fault LINK: the next list GET of items (once) answers with this Link header
link_fault() {
	sa DELETE /_ctl/fault >/dev/null
	sa POST /_ctl/fault "{\"coll\":\"items\",\"method\":\"GET\",\"times\":1,
		\"headers\":{\"Link\":\"<$1>; rel=\\\"next\\\"\"}}" >/dev/null
}

# --- 1. a Link header to another port: refused, nothing sent there, page 1 kept
conf link "$LINKSRC"
link_fault "$SA2/api/items?_page=2&_limit=10&access_token=LEAKED-IN-LINK"
if once "$T/link.conf"; then fail "link: a run that met a link to another origin succeeded"; fi
[ "$(run_of link result)" = failed ] || fail "link: run $(run_of link "result||' '||coalesce(error,'')")"
err=$(run_of link error)
case $err in
*"job link: the next page link $SA2/api/items?_page=2&_limit=10&access_token=***"*"is not followed"*"origin http://127.0.0.1:$P2 is not the origin of source.url"*"source.allow_origins"*) ;;
*) fail "link: the error does not name the job, the redacted link and the rule: $err";; esac
case $err in *LEAKED-IN-LINK*) fail "link: the link's token is shown: $err";; esac
grep -q "LEAKED-IN-LINK\|tok-SECRET-42" "$T/daemon.log" && fail "link: a token is in the log"
[ "$(other_got)" = 0 ] || fail "link: the other host received $(other_got) requests: $(sa2 GET /_ctl/requests)"
# page 1 may have been delivered (and checkpointed) before the run met the link
d1=$(run_of link delivered)
[ "$(rows "< 1000")" = "$d1" ] || fail "link: $(rows "< 1000") rows, the run says it delivered $d1"
[ "$(rows "> 1000")" = 0 ] || fail "link: records of the other host arrived"
# unsorted: the watermark moves only at the end of a run; page 1's checkpoint holds its
# deliveries (the seen set), which the next run skips
[ -z "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'link'")" ] ||
	fail "link: the failed run moved the watermark"
sa DELETE /_ctl/fault >/dev/null
once "$T/link.conf" || fail "link: the retry run exited $? ($(run_of link error))"
[ "$(run_of link "result||' '||delivered||' '||skipped")" = "ok $((30 - d1)) $d1" ] ||
	fail "link: the retry run $(run_of link "result||' '||delivered||' '||skipped")"
[ "$(rows "< 1000")" = 30 ] || fail "link: after the retry $(rows "< 1000") of 30 records"
[ "$(other_got)" = 0 ] || fail "link: the other host received requests"
note "Link to another port: $(echo "$err" | cut -c1-220)"

# --- 2. a scheme-relative link, and a next field with an absolute URL
sql "$DEST" "TRUNCATE t"
conf rel "$LINKSRC"
link_fault "//127.0.0.1:$P2/api/items?_page=2&_limit=10"
if once "$T/rel.conf"; then fail "rel: a scheme-relative link to another origin was followed"; fi
run_of rel error | grep -q "job rel: the next page link $SA2/api/items?_page=2&_limit=10 is not followed" ||
	fail "rel: $(run_of rel "result||' '||coalesce(error,'')")"
conf next "url = \"$SA1/api/items\"; records = \"data\"; page = { style = \"next\"; next = \"next\"; size = 10; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_envelope=1\", \"_limit=10\" ];"
sa DELETE /_ctl/fault >/dev/null
body=$(sa GET "/api/items?_sort=updatedAt,id&_limit=10&_envelope=1" | python3 -c '
import json, sys
b = json.load(sys.stdin); b["next"] = sys.argv[1]; print(json.dumps(b))' "$SA2/api/items?_envelope=1&_limit=10&_cursor=c10")
sa POST /_ctl/fault "{\"coll\":\"items\",\"method\":\"GET\",\"times\":1,\"status\":200,\"body\":$body}" >/dev/null
if once "$T/next.conf"; then fail "next: a next field to another origin was followed"; fi
run_of next error | grep -q "job next: the next page link $SA2/api/items?_envelope=1&_limit=10&_cursor=c10 is not followed" ||
	fail "next: $(run_of next "result||' '||coalesce(error,'')")"
[ "$(other_got)" = 0 ] || fail "rel/next: the other host received requests: $(sa2 GET /_ctl/requests)"
note "scheme-relative Link and next field to another port: refused, nothing sent"

# --- 3. an allowed origin is followed, with the job's headers
sql "$DEST" "TRUNCATE t"
conf allowed "url = \"$SA1/api/items\"; page = { style = \"link\"; size = 10; }; query = [ \"_limit={{limit}}\" ];
		allow_origins = [ \"HTTP://127.0.0.1:$P2/\" ];" 'strategy = "capture";'
"$ONESYNCD" -t -c "$T/allowed.conf" >/dev/null || fail "allowed: -t refuses the configuration"
link_fault "$SA2/api/items?_sort=updatedAt,id&_limit=10&_page=1"
once "$T/allowed.conf" || fail "allowed: run exited $? ($(run_of allowed error))"
[ "$(rows "> 1000")" = 30 ] || fail "allowed: $(rows "> 1000") of the other host's 30 records arrived"
sa2 GET /_ctl/requests | python3 -c '
import json, sys
r = json.load(sys.stdin)["requests"]
assert r and all(x["headers"].get("Authorization") == "Bearer tok-SECRET-42" for x in r), r' ||
	fail "allowed: the other host did not get the job's headers"
note "allow_origins: the link is followed, with the job's headers"

# --- 4. a file source over http: redirects stay on the origin
sa2 DELETE /_ctl/requests >/dev/null
fconf() {	# NAME EXTRA
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = ( { name = "$1"; key = "id"; strategy = "capture";
	source = { type = "file"; url = "$SA1/api/items"; format = "json";
		username = "user"; password = "pw-SECRET"; $2 };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t";
		columns = { id = "id"; name = "name"; updatedAt = "updatedAt"; }; }; } );
CONF
}
redirect() {
	sa DELETE /_ctl/fault >/dev/null
	sa POST /_ctl/fault "{\"coll\":\"items\",\"method\":\"GET\",\"status\":302,
		\"headers\":{\"Location\":\"$SA2/api/items\"}}" >/dev/null
}
sql "$DEST" "TRUNCATE t"
fconf fredir ""
redirect
if once "$T/fredir.conf"; then fail "fredir: a redirect to another origin was followed"; fi
run_of fredir error | grep -q "a redirect to $SA2/api/items is not followed: its origin http://127.0.0.1:$P2 is not the origin of source.url" ||
	fail "fredir: $(run_of fredir "result||' '||coalesce(error,'')")"
[ "$(other_got)" = 0 ] || fail "fredir: the other host received: $(sa2 GET /_ctl/requests)"
[ "$(rows ">= 0")" = 0 ] || fail "fredir: records arrived"
fconf fallow "allow_origins = [ \"$SA2\" ];"
once "$T/fallow.conf" || fail "fallow: run exited $? ($(run_of fallow error))"
[ "$(rows "> 1000")" = 30 ] || fail "fallow: $(rows "> 1000") of the other host's 30 records"
sa DELETE /_ctl/fault >/dev/null
note "file over http: a redirect to another origin is refused, to an allowed one followed"

# --- 5. a destination's 302 is an answer, not a way elsewhere
sa2 DELETE /_ctl/requests >/dev/null
sa POST /_ctl/fault "{\"coll\":\"out\",\"method\":\"PUT\",\"status\":302,
	\"headers\":{\"Location\":\"$SA2/api/out/x\"}}" >/dev/null
cat >"$T/dst.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { secrets_dir = "$T/secrets"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = ( { name = "dst"; key = "id"; strategy = "capture";
	source = { url = "$SA1/api/items"; };
	destination = { type = "http"; url = "$SA1/api/out/{{key}}";
		headers = [ "X-Api-Key: {{secret:token}}" ]; }; } );
CONF
if once "$T/dst.conf"; then fail "dst: a run whose deliveries were answered 302 succeeded"; fi
run_of dst error | grep -q "destination answered HTTP 302" || fail "dst: $(run_of dst "result||' '||coalesce(error,'')")"
[ "$(other_got)" = 0 ] || fail "dst: the other host received: $(sa2 GET /_ctl/requests)"
note "destination: a 302 is not followed"
exit 0
