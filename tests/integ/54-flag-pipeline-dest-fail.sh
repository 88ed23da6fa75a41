# A pipelined flag run whose next batch fails at the destination (HTTP 500, no retries) while
# the batch before it is being marked: the run fails, but what it costs stays what it was
# before batches overlapped (doc/design.md §4.1, §3.2): only the failing batch, delivered and
# not marked, goes again. The batch being marked is marked (and its refused record is in the
# retry queue), so the next run does not deliver it a second time.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"orders","n":300,"extra":{"synced":false}}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "60s"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; timeout = "120s"; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "http"; url = "$SA/api/orders";
		query = [ "synced=false", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 100; };
		mark = { method = "PATCH"; url = "$SA/api/orders/{{key}}"; body = "{\"synced\": true}"; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; body = "{{record}}"; }; } );
CONF
erp() { sa GET "/_ctl/stats?coll=erp" | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin)['deliveries']; n=[s.get(str(k), 0) for k in range($1, $2 + 1)]; print(min(n), max(n))"; }

sa POST /_ctl/fault '{"coll":"orders","method":"PATCH","keys":[1],"hold":true,"times":1}' >/dev/null
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[50],"status":422}' >/dev/null
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[150],"status":500}' >/dev/null
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 orders || fail "batch 1's marking was not held"
# batch 2 fails meanwhile when it goes during the marking (it may wait for it: then at once)
wait_for 10 grep -q 'run failed' "$T/daemon.log"
sa_release orders
wait "$O_PID" && fail "the run whose batch failed at the destination exited 0"
grep -q 'run failed.*HTTP 500' "$T/daemon.log" || fail "the run did not fail on batch 2's HTTP 500"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures WHERE job = 'orders'")" = 50 ] ||
	fail "batch 1's refused record is not in the retry queue: '$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures")'"

sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "the second run exited $?"
[ "$(erp 1 49)" = "1 1" ] && [ "$(erp 51 100)" = "1 1" ] ||
	fail "batch 1, being marked when batch 2 failed, was delivered $(erp 1 49), $(erp 51 100) times per record"
[ "$(erp 201 300)" = "1 1" ] || fail "batch 3 delivered $(erp 201 300) times per record"
exit 0
