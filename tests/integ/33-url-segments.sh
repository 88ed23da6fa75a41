# A value in a URL path stays one segment. A key '..' in "PUT .../dst/{{key}}" used to become
# "PUT /api/" (libcurl resolves dot segments), '.' "PUT /api/dst/"; a marking the same way.
#  1. destination: records whose key is '.' or '..' fail with an error naming the rule and
#     wait in the retry queue; nothing is sent for them; the others are delivered, '/' in a
#     key as %2F, dots inside a longer segment as they are;
#  2. marking (strategy flag): a record field '..' in source.mark.url fails that marking
#     (unmarked, with the error), nothing is sent for it.
# The sample application's request log shows every request it received.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
run_of() { sql "$STATE" "SELECT $2 FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
# requests METHOD: the paths (raw, as sent) of the requests of that method the app received
requests() {
	sa GET /_ctl/requests | python3 -c '
import json, sys
for r in json.load(sys.stdin)["requests"]:
    if r["method"] == sys.argv[1]: print(r["uri"])' "$1"
}

# --- 1. destination
for k in .. . ok x/y .hidden ... a..b; do echo "{\"id\":\"$k\",\"name\":\"n-$k\"}"; done >"$T/items.ndjson"
cat >"$T/dst.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "1h"; };
jobs = ( { name = "dst"; strategy = "capture"; key = "id";
	source = { type = "file"; url = "file://$T/items.ndjson"; format = "ndjson"; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/dst/{{key}}"; }; } );
CONF
once "$T/dst.conf" || fail "dst: run exited $? ($(run_of dst error))"
[ "$(run_of dst "result||' '||records_read||' '||delivered||' '||failed")" = "ok 7 5 2" ] ||
	fail "dst: run $(run_of dst "result||' '||records_read||' '||delivered||' '||failed||' '||coalesce(error,'')")"
requests PUT >"$T/puts"
sort "$T/puts" | tr '\n' ' ' >"$T/puts.sorted"
[ "$(cat "$T/puts.sorted")" = "/api/dst/... /api/dst/.hidden /api/dst/a..b /api/dst/ok /api/dst/x%2Fy " ] ||
	fail "dst: the app received these PUTs: $(cat "$T/puts.sorted")"
[ "$(sa GET /_ctl/dump?coll=dst | python3 -c 'import json,sys; print(" ".join(sorted(r["id"] for r in json.load(sys.stdin))))')" = "... .hidden a..b ok x/y" ] ||
	fail "dst: the destination holds $(sa GET /_ctl/dump?coll=dst)"
for k in . ..; do
	e=$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'dst' AND key = '$k'")
	case $e in *"{{key}}: the value makes the URL path segment '$k', which would change the path"*) ;;
	*) fail "dst: the failure of key '$k' says: '$e'";; esac
done
note "key '..': $(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'dst' AND key = '..'")"

# --- 2. marking
sa DELETE /_ctl/requests >/dev/null
sa POST "/_ctl/load?coll=src&key=id" '[{"id":"a","ref":"a","synced":false},{"id":"b","ref":"..","synced":false},
	{"id":"c","ref":".","synced":false}]' >/dev/null
cat >"$T/flag.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "1h"; };
jobs = ( { name = "flag"; strategy = "flag"; key = "id";
	source = { url = "$SA/api/src"; query = [ "synced=false" ];
		mark = { method = "PATCH"; url = "$SA/api/src/{{record.ref}}"; body = "{\"synced\": true}"; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/fdst/{{key}}"; }; } );
CONF
once "$T/flag.conf" || fail "flag: run exited $? ($(run_of flag error))"
[ "$(requests PATCH | tr '\n' ' ')" = "/api/src/a " ] || fail "flag: the app received these PATCHes: $(requests PATCH | tr '\n' ' ')"
[ "$(sql "$STATE" "SELECT string_agg(key, ',' ORDER BY key) FROM onesync.unmarked WHERE job = 'flag'")" = "b,c" ] ||
	fail "flag: unmarked $(sql "$STATE" "SELECT string_agg(key, ',' ORDER BY key) FROM onesync.unmarked WHERE job = 'flag'")"
sql "$STATE" "SELECT last_error FROM onesync.unmarked WHERE job = 'flag' AND key = 'b'" |
	grep -q "{{record.ref}}: the value makes the URL path segment '..'" ||
	fail "flag: b's marking error: $(sql "$STATE" "SELECT last_error FROM onesync.unmarked WHERE job = 'flag' AND key = 'b'")"
note "marking with '..': nothing sent, unmarked with the error"
exit 0
