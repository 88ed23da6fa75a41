# Strategy flag, HTTP source: a marking request answered 404 (here a typo in source.mark.url)
# for a record this run has just read as pending is a failed marking, not a record gone: it
# is logged at warning with the URL and remembered in `unmarked`, so the next run marks it
# without delivering it again. (Taken as "gone", every run delivered every record again,
# silently.)
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"orders","n":50,"extra":{"synced":false}}' >/dev/null
conf() {	# FILE MARK-PATH
	cat >"$1" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "http"; url = "$SA/api/orders";
		query = [ "synced=false", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; };
		mark = { method = "PATCH"; url = "$SA/api/$2/{{key}}";
			 body = "{\"synced\": true}"; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; body = "{{record}}"; }; } );
CONF
}
deliveries() { sa GET "/_ctl/stats?coll=erp" | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), max(d.values()) if d else 0)'; }
pending() { sa GET "/api/orders?synced=false" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

conf "$T/typo.conf" order	# the collection is "orders": PATCH /api/order/N answers 404
once "$T/typo.conf" || fail "first run exited $?"
[ "$(deliveries)" = "50 1" ] || fail "first run: deliveries (total, max per key) $(deliveries)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 50 ] ||
	fail "the 50 records answered 404 to their marking are not in unmarked: $(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")"
grep -q '<4>.*record 7 delivered but not marked: source answered HTTP 404 to the marking request PATCH http://[^ ]*/api/order/7' "$T/daemon.log" ||
	fail "no warning naming the 404 and the marking URL: $(grep -m1 'record 7 ' "$T/daemon.log")"
once "$T/typo.conf" || fail "second run exited $?"
[ "$(deliveries)" = "50 1" ] || fail "second run delivered again: deliveries $(deliveries)"
[ "$(pending)" = 50 ] || fail "pending $(pending), expected 50 (marking still fails)"
note "a 404 to the marking request: no second delivery, warned with the URL"

conf "$T/c.conf" orders		# the URL corrected: marked without delivering again
once "$T/c.conf" || fail "run with the corrected URL exited $?"
[ "$(pending)" = 0 ] || fail "$(pending) orders still pending after the URL was corrected"
[ "$(deliveries)" = "50 1" ] || fail "the corrected run delivered again: deliveries $(deliveries)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 0 ] || fail "unmarked not emptied"
[ "$(sql "$STATE" "SELECT skipped FROM onesync.runs ORDER BY id DESC LIMIT 1")" = 50 ] ||
	fail "the corrected run should count 50 mark-only records as skipped"
note "corrected URL: the 50 records marked, none delivered twice"
exit 0
