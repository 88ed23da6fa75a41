# A record the destination keeps refusing is retried with a delay that doubles per attempt
# (retry_backoff, 2x, 4x, ...) up to retry_backoff_max, as onesync.failures records it
# (next_retry_at - last_failed_at); a run before the record is due does not retry it.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":20}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "200ms"; retry_backoff_max = "1500ms";
	max_attempts = 10; };
jobs = ( { name = "contacts"; strategy = "modified"; key = "id";
	modified = { field = "updatedAt"; sorted = true; };
	source = { type = "http"; url = "$SA/api/contacts";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/customers/{{key}}"; body = "{{record}}"; }; } );
CONF
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[7],"status":422}' >/dev/null
row() { sql "$STATE" "SELECT attempts || ' ' || round(extract(epoch FROM next_retry_at - last_failed_at) * 1000)
	|| ' ' || (next_retry_at <= now()) FROM onesync.failures WHERE job = 'contacts' AND key = '7'"; }
due() { [ "$(row | cut -d' ' -f3)" = true ]; }
# attempt n waits 200 ms * 2^(n-1), at most 1500 ms
expect=(x 200 400 800 1500 1500)
for n in 1 2 3 4 5; do
	[ "$n" = 1 ] || wait_for 10 due || fail "record 7 never became due after attempt $((n - 1)): $(row)"
	once "$T/c.conf" || fail "run $n exited $?"
	r=$(row)
	[ "${r% *}" = "$n ${expect[$n]}" ] ||
		fail "after attempt $n: attempts and delay (ms) are '${r% *}', expected '$n ${expect[$n]}'"
	note "attempt $n: next retry after ${expect[$n]} ms"
done
# a run before the record is due leaves it alone (the run itself is the event we wait for)
runs0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok'")
once "$T/c.conf" || fail "early run exited $?"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok'")" = $((runs0 + 1)) ] || fail "the early run did not finish ok"
early=$(sql "$STATE" "SELECT r.started_at < f.next_retry_at FROM onesync.runs r, onesync.failures f
	WHERE f.key = '7' ORDER BY r.id DESC LIMIT 1")
if [ "$early" = t ]; then
	[ "$(row | cut -d' ' -f1)" = 5 ] || fail "a run before the record was due retried it: $(row)"
else
	note "the early run started after the record was due (slow machine): not checked"
fi
[ "$(sa GET /_ctl/stats?coll=customers | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 19 ] ||
	fail "the 19 accepted records are not all at the destination"
