# Values in request templates. (1) A record value that cannot go in a header (NUL, which cut
# the header where libcurl read it, "X-Name: x", the record counted delivered; any other
# control character but HTAB, sent raw) fails that record with an error naming the
# placeholder; nothing is sent for it. (2) A {{secret:}} that starts the URL fixes its origin
# ("{{secret:base}}/api/..."): -t accepts it and the run reaches the application; it was
# URL-escaped and refused. (3) A secret file that is a FIFO or /dev/zero: -t says what it is.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
mkdir -p "$T/secrets"; printf '%s\n' "$SA" >"$T/secrets/base"
# the source answers these records as JSON text (\u0000 included: jansson takes it)
body='[{"id":1,"name":"x\u0000X-Injected: 1"},{"id":2,"name":"a\u0001b"},{"id":3,"name":"tab\tok"},{"id":4,"name":"c\u0085"},{"id":5,"name":"del\u007f"}]'
sa POST /_ctl/fault "{\"coll\":\"src\",\"method\":\"GET\",\"status\":200,\"body\":\"$(printf '%s' "$body" | sed 's/\\/\\\\/g; s/"/\\"/g')\"}" >/dev/null
sa GET /api/src | grep -q 'x\\u0000X-Injected' || fail "the fault body is not what the test meant: $(sa GET /api/src)"
for i in 1 2; do sa PUT /api/plain/$i "{\"id\":$i,\"name\":\"p$i\"}" >/dev/null; done
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { secrets_dir = "$T/secrets"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = (
 { name = "hdr"; strategy = "capture"; key = "id";
   source = { type = "http"; url = "$SA/api/src"; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/outh/{{key}}"; body = "{{record}}";
	headers = [ "X-Name: {{record.name}}" ]; }; },
 { name = "base"; strategy = "capture"; key = "id";
   source = { type = "http"; url = "{{secret:base}}/api/plain"; };
   destination = { type = "http"; method = "PUT"; url = "{{secret:base}}/api/outb/{{key}}"; body = "{{record}}"; }; }
);
CONF
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t.out" 2>&1 || { cat "$T/t.out" >&2; fail "-t refused a URL starting with {{secret:base}}"; }
sa DELETE /_ctl/requests >/dev/null
once "$T/c.conf"
# (1) only record 3 (a tab is allowed) went; the others are in the retry queue, named
sent=$(sa GET /_ctl/requests | /usr/bin/python3 -c 'import json,sys; print(" ".join(sorted(r["uri"] for r in json.load(sys.stdin)["requests"] if r["method"] == "PUT" and r["uri"].startswith("/api/outh/"))))')
[ "$sent" = "/api/outh/3" ] || fail "header values with control characters were sent: PUT $sent"
sa GET /_ctl/requests | grep -q 'Injected' && fail "the injected header text reached the application"
for k in 1 2 4 5; do
	want="the value contains a control character, which cannot go in a header"
	[ $k = 1 ] && want="the value contains a NUL character, which cannot go in a header"
	case $(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'hdr' AND key = '$k'") in
	*"{{record.name}}: $want"*) ;;
	*) fail "record $k: failure '$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'hdr' AND key = '$k'")'";; esac
done
[ "$(sql "$STATE" "SELECT delivered || '/' || failed FROM onesync.runs WHERE job = 'hdr' ORDER BY id DESC LIMIT 1")" = 1/4 ] ||
	fail "hdr run: delivered/failed $(sql "$STATE" "SELECT delivered || '/' || failed FROM onesync.runs WHERE job = 'hdr' ORDER BY id DESC LIMIT 1")"
note "header values with NUL, C0, DEL or C1 fail their record, nothing sent; a tab goes"
# (2) the secret-prefixed URLs reached the application
for i in 1 2; do sa GET /api/outb/$i | grep -q "\"p$i\"" || fail "the {{secret:base}} job did not deliver record $i"; done
note "url = \"{{secret:base}}/...\": accepted by -t, the run reaches the application"
# (3) a secret that is not a regular file
mkfifo "$T/secrets/fifo"; ln -s /dev/zero "$T/secrets/zero"
for s in fifo:"a FIFO" zero:"a character device"; do
	sed "s/{{secret:base}}\/api\/plain/{{secret:${s%%:*}}}\/api\/plain/" "$T/c.conf" >"$T/f.conf"
	"$ONESYNCD" -t -c "$T/f.conf" >"$T/t.out" 2>&1 && fail "-t accepted a secret that is ${s#*:}"
	grep -q "cannot read secret '${s%%:*}' in .*: it is ${s#*:}, not a regular file" "$T/t.out" ||
		fail "secret ${s%%:*}: $(cat "$T/t.out")"
done
note "a secret that is a FIFO or /dev/zero: -t names what it is"
exit 0
