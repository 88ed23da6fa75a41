# A PostgreSQL restart (state and source on one cluster) while a flag batch is out: its
# marking fails ("delivered but not marked"), and its checkpoint, which remembers those
# records, is sent again once the database is back instead of failing the run; so the next
# run marks them without delivering them again: every record is delivered exactly once.
. "$(dirname "$0")/../lib.sh"
pg_private
sa_start
STATE=$(new_db state); SRC=$(new_db src)
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, name text, synced boolean NOT NULL DEFAULT false);
	INSERT INTO orders (id, name) SELECT i, 'n' || i FROM generate_series(1, 40) i"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "20s"; instance = "node1"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 10; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
		page = { size = 10; }; mark = { set = { synced = "true"; }; }; };
	destination = { type = "http"; url = "$SA/api/erp/{{key}}"; concurrency = 10; }; } );
CONF
# The batch's deliveries are held until the database is down: a delay would race with
# pg_ctl stop on a loaded machine (or under ASan) and let the marking succeed first.
sa POST /_ctl/fault '{"coll":"erp","method":"PUT","hold":true}' >/dev/null
daemon_start "$T/c.conf"
wait_for 20 held_ge 1 erp || fail "no batch went out"
pg_stop_own
note "PostgreSQL stopped while a batch was being delivered"
sa DELETE /_ctl/fault >/dev/null
sa_release erp
wait_for 20 grep -q 'delivered but not marked' "$T/daemon.log" || fail "no marking failed while the database was down"
wait_for 20 grep -Eq 'checkpoint [0-9]+ not written|run failed' "$T/daemon.log" || fail "no checkpoint attempt while the database was down"
pg_start_own
note "PostgreSQL started again"
sa DELETE /_ctl/fault >/dev/null
ended() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'orders' AND result <> 'running'")" -ge 1 ]; }
wait_for 30 ended || fail "the run did not end"
res=$(sql "$STATE" "SELECT result || ' ' || coalesce(error, '') FROM onesync.runs WHERE job = 'orders' ORDER BY id LIMIT 1")
note "first run: $res"
unm=$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'orders'")
note "$unm records remembered as delivered but not marked"
kill -TERM "$D_PID"; wait "$D_PID"
once "$T/c.conf" || fail "the second run exited $?"
[ "$(sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced")" = 0 ] || fail "records still pending at the source"
read -r total most < <(sa GET /_ctl/stats?coll=erp | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), max(d.values()))')
[ "$most" = 1 ] || fail "$total deliveries for 40 records: some delivered twice after the restart"
[ "$total" = 40 ] || fail "$total deliveries for 40 records"
[ "$res" = "ok " ] || fail "the run during the restart ended $res"

# The same checkpoint twice (its first answer lost with the connection): applied once, the
# second answered "repeated" even after the first released the lease.
E=$(sql "$STATE" "SELECT onesync.claim_job('orders', 't:1', 'inc-t', 0, 60000,
	(SELECT identity FROM onesync.jobs WHERE name = 'orders'), '{}') ->> 'epoch'")
[ -n "$E" ] || fail "the test could not claim the job"
R=$(sql "$STATE" "INSERT INTO onesync.runs (job, instance, epoch) VALUES ('orders', 't:1', $E) RETURNING id")
D1='{"seq": 1, "read": 5, "nfailed": 1, "max_attempts": 5, "backoff_ms": 0, "backoff_max_ms": 0,
	"failed": [{"key": "k1", "error": "refused", "hash": "h"}]}'
D2='{"seq": 2, "read": 3, "result": "ok", "release": true, "max_attempts": 5, "backoff_ms": 0, "backoff_max_ms": 0}'
for d in "$D1" "$D1" "$D2" "$D2"; do
	sql "$STATE" "SELECT onesync.checkpoint_once('orders', 't:1', $E, $R, '$d'::jsonb)" >>"$T/ck.out" ||
		fail "a repeated checkpoint was refused: $(tail -1 "$T/ck.out")"
done
[ "$(grep -c '"repeated": true' "$T/ck.out")" = 2 ] || fail "repeats not answered as such: $(cat "$T/ck.out")"
got=$(sql "$STATE" "SELECT records_read || ' ' || failed || ' ' || result FROM onesync.runs WHERE id = $R")
[ "$got" = "8 1 ok" ] || fail "run counters after repeated checkpoints: $got, expected 8 1 ok"
[ "$(sql "$STATE" "SELECT attempts FROM onesync.failures WHERE job = 'orders' AND key = 'k1'")" = 1 ] ||
	fail "a repeated checkpoint counted a failure twice"
exit 0
