# HTTP connector features: offset paging, cursor paging with records inside an envelope,
# the destination's create request on 404, 503 with Retry-After retried, and secrets that
# never reach a log line or the state database.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
mkdir -p "$T/secrets"; echo "s3cr3t-value" >"$T/secrets/token"
sa POST /_ctl/gen '{"coll":"items","n":450}' >/dev/null
sa POST /_ctl/coll '{"coll":"erp","put_requires_existing":true}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { secrets_dir = "$T/secrets"; };
defaults = { interval = "1h"; retries = 0; };
jobs = (
 { name = "offset"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   source = { url = "$SA/api/items"; page = { style = "offset"; size = 100; };
	query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_offset={{offset}}", "_limit={{limit}}" ]; };
   destination = { type = "http"; url = "$SA/api/offset-copy/{{key}}"; }; },
 { name = "cursor"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   source = { url = "$SA/api/items"; records = "data"; page = { style = "next"; next = "next"; size = 100; };
	query = [ "updatedAt_gte={{watermark}}", "_envelope=1", "_limit=100", "_cursor={{cursor}}" ]; };
   destination = { type = "http"; url = "$SA/api/cursor-copy/{{key}}"; }; },
 { name = "create"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   source = { url = "$SA/api/items"; query = [ "updatedAt_gte={{watermark}}" ]; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/erp/{{key}}";
	create = { method = "POST"; url = "$SA/api/erp"; }; }; },
 { name = "busy"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   source = { url = "$SA/api/items"; query = [ "updatedAt_gte={{watermark}}" ]; };
   destination = { type = "http"; url = "$SA/api/busy/{{key}}"; retries = 3; concurrency = 1; }; },
 { name = "secret"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
   source = { url = "$SA/api/guarded"; query = [ "access_token={{secret:token}}" ];
	headers = [ "Authorization: Bearer {{secret:token}}" ]; };
   destination = { type = "http"; url = "$SA/api/guarded-copy/{{key}}"; }; }
);
CONF
sa POST /_ctl/fault '{"coll":"busy","method":"PUT","status":503,"retry_after":1,"times":2}' >/dev/null
sa POST /_ctl/fault '{"coll":"guarded","method":"GET","status":500}' >/dev/null
once "$T/c.conf" offset cursor create busy || fail "runs exited $?"
for c in offset cursor; do same_colls items $c-copy id,name,updatedAt || fail "$c paging copied a different set"; done
# unsorted offset paging cannot be exact: the operator is told so; cursor paging is not flagged
grep -q "job=offset: modified.sorted = false with page.style 'offset'" "$T/daemon.log" ||
	fail "no warning for an unsorted job paged by offset"
! grep -q "job=cursor: modified.sorted = false" "$T/daemon.log" || fail "a cursor-paged job was warned about"
same_colls items erp id,name,updatedAt || fail "create fallback did not create the records"
st=$(sa GET /_ctl/stats?coll=erp)
echo "$st" | python3 -c 'import json,sys; s=json.load(sys.stdin); r=s["requests"]; assert r["PUT"]==450 and r["POST"]==450, r' ||
	fail "expected 450 PUT answered 404 then 450 POST: $st"
same_colls items busy id,name,updatedAt || fail "503 + Retry-After was not retried to success"
sa GET /_ctl/fault | grep -q '"times": *0\|"times":0' || fail "the 503 rule was not used up"

once "$T/c.conf" secret && fail "the guarded source answers 500, the run must fail"
grep -q 'job=secret.*run failed.*HTTP 500' "$T/daemon.log" || fail "no failure line for the guarded source"
grep -q 'access_token=\*\*\*' "$T/daemon.log" || fail "the token is not shown redacted"
if grep -rq 's3cr3t-value' "$T/daemon.log"; then fail "the secret appears in the log"; fi
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE error LIKE '%s3cr3t%'")" = 0 ] || fail "the secret is stored in the run history"
