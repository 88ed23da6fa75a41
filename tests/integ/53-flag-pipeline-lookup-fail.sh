# A pipelined flag run over a PostgreSQL source of two pages fails while the second page's
# state lookup is out, after the first batch's marking ended: that batch's checkpoint (its
# refused record for the retry queue, its record whose marking failed for `unmarked`) is
# written before the run's failure, not dropped. So the next run delivers the refused record
# and marks the unmarked one without delivering it again: each record is delivered once.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
JOB=orders
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, synced boolean NOT NULL DEFAULT false, erp_id int,
		CONSTRAINT no_13 CHECK (erp_id IS NULL OR erp_id <> 13));
	INSERT INTO orders (id) SELECT i FROM generate_series(1, 200) i"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "60s"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 100; timeout = "120s"; };
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
	source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
		page = { size = 100; }; mark = { set = { synced = "true"; erp_id = "{{dest.erpId}}"; }; }; };
	destination = { type = "http"; method = "POST"; url = "$SA/api/erp"; }; } );
CONF
sql "$STATE" "CREATE TABLE test_go (x int)"
go_wait="DO \$\$ BEGIN FOR i IN 1..2000 LOOP EXIT WHEN EXISTS (SELECT 1 FROM test_go); PERFORM pg_sleep(0.05); END LOOP; END \$\$;"
waits() { [ "$(sql "$1" "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%$2%'")" -ge 1 ]; }
app_waits() { [ "$(sql "$STATE" "SELECT count(*) FROM pg_stat_activity WHERE application_name = '$1' AND wait_event = 'PgSleep'")" = 1 ]; }

# batch 1's delivery is held until the state's `unmarked` table is locked (page 1 looked up)
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[1],"hold":true,"times":1}' >/dev/null
sa POST /_ctl/fault '{"coll":"erp","method":"POST","keys":[7],"status":422}' >/dev/null
# batch 1's marking waits for row 1 of the source
sql "$SRC" "CREATE TABLE go_src (x int)"
PGAPPNAME=srclock psql -X -q "$SRC" -c "BEGIN; SELECT 1 FROM orders WHERE id = 1 FOR UPDATE;
	DO \$\$ BEGIN FOR i IN 1..2000 LOOP EXIT WHEN EXISTS (SELECT 1 FROM go_src); PERFORM pg_sleep(0.05); END LOOP; END \$\$; COMMIT;" >/dev/null 2>&1 &
PIDS+=("$!")
src_locked() { [ "$(sql "$SRC" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'srclock' AND wait_event = 'PgSleep'")" = 1 ]; }
once "$T/c.conf" & O_PID=$!
PIDS+=("$O_PID")
wait_for 30 held_ge 1 erp || fail "batch 1's delivery was not held"
wait_for 20 src_locked || fail "the source row was not locked"
PGAPPNAME=statelock psql -X -q "$STATE" -c "BEGIN; LOCK TABLE onesync.unmarked IN ACCESS EXCLUSIVE MODE; $go_wait COMMIT;" >/dev/null 2>&1 &
PIDS+=("$!")
wait_for 20 app_waits statelock || fail "the state's unmarked table was not locked"
sa_release erp
wait_for 30 waits "$STATE" unmarked || fail "page 2's lookup did not wait for the locked table while batch 1 was marked"
wait_for 30 waits "$SRC" UPDATE || fail "batch 1's marking did not wait for the locked row"
sql "$SRC" "INSERT INTO go_src VALUES (1)"
wait_for 30 grep -q 'delivered but not marked' "$T/daemon.log" || fail "batch 1's marking did not end"
# the lookup's connection goes: the run fails
sql "$STATE" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%unmarked%' AND application_name <> 'statelock'" >/dev/null
sql "$STATE" "INSERT INTO test_go VALUES (1)"
wait "$O_PID" && fail "the run whose lookup failed exited 0"
grep -q 'run failed' "$T/daemon.log" || fail "no 'run failed' line"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures WHERE job = 'orders'")" = 7 ] ||
	fail "batch 1's refused record is not in the retry queue: '$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.failures")'"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'orders'")" = 1 ] ||
	fail "batch 1's record whose marking failed is not remembered as delivered but not marked"

# the next run delivers what is left once, and marks the unmarked record without delivering it
sa DELETE /_ctl/fault >/dev/null
sql "$SRC" "ALTER TABLE orders DROP CONSTRAINT no_13"
once "$T/c.conf" || fail "the second run exited $?"
[ "$(sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced")" = 0 ] || fail "records still pending at the source"
read -r total most < <(sa GET /_ctl/stats?coll=erp | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(sum(d.values()), max(d.values()))')
[ "$most" = 1 ] || fail "$total deliveries for 200 records: some delivered twice"
exit 0
