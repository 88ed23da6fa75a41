# lookback re-reads a window below the watermark and delivers only what is new there (a late
# commit), settle keeps the newest records for a later run, and an unsorted source paged by
# RFC 8288 Link headers with epoch-millisecond timestamps moves the watermark at the end.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
job() { # name coll extra-modified extra-source
	echo "{ name = \"$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; $3 };
	  source = { url = \"$SA/api/$2\"; $4 };
	  destination = { type = \"http\"; url = \"$SA/api/$1-copy/{{key}}\"; }; }"
}
SEEK='query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; page = { style = "page"; size = 50; };'
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; };
jobs = ( $(job late contacts 'sorted = true; lookback = "1h";' "$SEEK"),
	 $(job nolook contacts 'sorted = true;' "$SEEK"),
	 $(job settled fresh 'sorted = true; settle = "30s";' "$SEEK"),
	 $(job unsorted epoch 'format = "epoch_ms";' 'query = [ "updatedAt_gte={{watermark}}", "_limit=100" ]; page = { style = "link"; };') );
CONF
runs() { sql "$STATE" "SELECT $2 FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
count() { sa GET "/_ctl/stats?coll=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }

sa POST /_ctl/gen '{"coll":"contacts","n":300}' >/dev/null
now_ms=$(( $(date +%s%3N) ))
sa POST /_ctl/gen "{\"coll\":\"fresh\",\"n\":200,\"start\":$(( now_ms - 120000 )),\"format\":\"epoch_ms\"}" >/dev/null
# the fresh collection in RFC 3339: re-load it with formatted timestamps
sa GET /_ctl/dump?coll=fresh | python3 -c '
import json,sys,datetime
rs=json.load(sys.stdin)
for r in rs: r["updatedAt"]=datetime.datetime.fromtimestamp(r["updatedAt"]/1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]+"Z"
print(json.dumps(rs))' >"$T/fresh.json"
sa POST "/_ctl/load?coll=fresh&key=id" "$(cat "$T/fresh.json")" >/dev/null
sa POST /_ctl/gen '{"coll":"epoch","n":1000,"format":"epoch_ms"}' >/dev/null

once "$T/c.conf" || fail "first run exited $?"
for j in late nolook; do [ "$(runs $j delivered)" = 300 ] || fail "$j delivered $(runs $j delivered) of 300"; done
# lookback: the window is remembered, so the re-read costs reads, not deliveries
once "$T/c.conf" late || fail "second run"
[ "$(runs late delivered)" = 0 ] && [ "$(runs late skipped)" -ge 300 ] || fail "lookback re-read delivered $(runs late delivered), skipped $(runs late skipped)"
# a late commit: a record that appears with a timestamp below the watermark
sa PUT /api/contacts/5000 '{"id":5000,"name":"late","updatedAt":"2026-01-01T00:04:00.000Z","v":1}' >/dev/null
once "$T/c.conf" late nolook || fail "third run"
[ "$(runs late delivered)" = 1 ] || fail "lookback job delivered $(runs late delivered), expected the late record only"
[ "$(runs nolook delivered)" = 0 ] || fail "without lookback the late record should be out of reach"
sa GET /api/late-copy/5000 | grep -q '"late"' || fail "late record not at the destination"

# settle: nothing newer than source time - 30 s was taken
taken=$(count settled-copy)
sa GET /_ctl/dump?coll=settled-copy >"$T/settled.json"
python3 - "$T/settled.json" "$now_ms" <<'PY' || fail "settle: records newer than the cap were taken"
import json,sys,datetime
rs=json.load(open(sys.argv[1])); now=int(sys.argv[2])
newest=max(datetime.datetime.strptime(r["updatedAt"],"%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()*1000 for r in rs)
# records were generated from now-120s one per second; the cap is source time - 30s
assert newest <= now + 60000 - 30000 + 5000, newest - now
PY
[ "$taken" -ge 60 ] && [ "$taken" -lt 200 ] || fail "settle job took $taken records"
note "settle job took $taken of 200 records"

# unsorted, Link paging, epoch ms: everything, watermark = highest value
[ "$(count unsorted-copy)" = 1000 ] || fail "unsorted job copied $(count unsorted-copy)"
wm=$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'unsorted'")
[ "$wm" = "$(sa GET /_ctl/dump?coll=epoch | python3 -c 'import json,sys; print(max(r["updatedAt"] for r in json.load(sys.stdin)))')" ] || fail "unsorted watermark $wm"
sa POST /_ctl/mutate '{"coll":"epoch","after_gets":0,"touch":10,"field":"updatedAt"}' >/dev/null
once "$T/c.conf" unsorted || fail "unsorted second run"
[ "$(runs unsorted delivered)" = 10 ] || fail "unsorted second run delivered $(runs unsorted delivered), expected 10"
same_colls epoch unsorted-copy id,updatedAt,v || fail "unsorted copy differs"
