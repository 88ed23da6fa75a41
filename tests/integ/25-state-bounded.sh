# State that grows must not stop a job or fill its memory. With 100,000 dead records in the
# retry queue, onesync.run_start answers a small document quickly (it loads counts and the due
# retries, never the queue), and a --once run's peak memory stays close to that of a run with
# an empty queue. Strategy flag over HTTP does not starve: with max_records = 5 and records
# 1-5 refused (waiting for their retry), records 6-8 go in the next run.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"orders","n":8,"extra":{"synced":false}}' >/dev/null
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 3; retry_backoff = "1h"; batch = 100; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id"; max_records = 5;
	source = { type = "http"; url = "$SA/api/orders";
		query = [ "synced=false", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 3; };
		mark = { method = "PATCH"; url = "$SA/api/orders/{{key}}"; body = "{\"synced\": true}"; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; body = "{{record}}"; }; } );
CONF
delivered() { sa GET /_ctl/stats?coll=erp | python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["deliveries"], key=int)))'; }

# 1. starvation: 1-5 refused and waiting; 6-8 go next run
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[1,2,3,4,5],"status":422}' >/dev/null
once "$T/c.conf" || fail "first run exited $?"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'orders'")" = 5 ] || fail "records 1-5 not queued"
once "$T/c.conf" || fail "second run exited $?"
[ "$(delivered)" = "6,7,8" ] || fail "delivered after two runs: '$(delivered)', expected 6,7,8 (the refused ones wait)"
[ "$(sa GET '/api/orders?synced=false' | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 5 ] ||
	fail "records 6-8 not marked"

# 2. 100,000 dead records: the run start's answer and time, and a run's memory
dead() { # JOB N: N dead records (with payloads) in JOB's retry queue
	sql "$STATE" "DELETE FROM onesync.failures WHERE job = '$1';
		INSERT INTO onesync.failures (job, key, attempts, last_error, payload, hash, dead, next_retry_at)
		SELECT '$1', 'dead-' || i, 3, 'destination answered HTTP 422: rejected',
		       jsonb_build_object('id', i, 'name', 'record ' || i, 'synced', false),
		       '1:' || md5(i::text), true, now() FROM generate_series(1, $2) i"
}
# run_start on the state database itself: answer size and mean time of 20 calls
probe() { # N -> "bytes ms"
	dead probe "$1"
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$STATE" 2>&1 <<'SQL' | sed -n 's/.*NOTICE:  //p'
DO $$
DECLARE e bigint; a jsonb; t0 timestamptz;
BEGIN
  e := onesync.claim('probe', 'probe-instance', 0, 600000);
  t0 := clock_timestamp();
  FOR i IN 1..20 LOOP
    a := onesync.run_start('probe', 'probe-instance', e, 100);
  END LOOP;
  RAISE NOTICE '% %', length(a::text),
    round((extract(epoch FROM clock_timestamp() - t0) * 1000 / 20)::numeric, 2);
  PERFORM onesync.release('probe-instance', ARRAY['probe']);
END $$;
SQL
}
p0=$(probe 0); p100k=$(probe 100000)
note "run_start with 0 dead records: ${p0#* } ms, answer ${p0% *} bytes"
note "run_start with 100,000 dead records: ${p100k#* } ms, answer ${p100k% *} bytes"
[ -n "$p100k" ] || fail "run_start with 100,000 dead records failed"
[ "${p100k% *}" -lt 2000 ] || fail "run_start's answer is ${p100k% *} bytes with 100,000 dead records: it carries the queue"
# (the time is reported, not asserted: a timing target belongs in a benchmark; the answer's
# size above is what grew with the queue)

# peak memory of a --once run (nothing pending) with 0 and with 100,000 dead records
sa POST /_ctl/fault '{"coll":"orders","method":"GET","status":200,"body":[]}' >/dev/null
rss() { /usr/bin/time -f %M -o "$T/rss" "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1 || fail "--once run exited $?"; cat "$T/rss"; }
dead orders 0; r0=$(rss)
dead orders 100000; r100k=$(rss)
note "peak RSS of a --once run: ${r0} kB with 0 dead records, ${r100k} kB with 100,000"
[ $((r100k - r0)) -lt 8192 ] || fail "100,000 dead records cost $((r100k - r0)) kB more memory in a run"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'orders' ORDER BY id DESC LIMIT 1")" = ok ] || fail "the run with 100,000 dead records did not end ok"
echo ok
