# Strategy capture over paged sources: a paginated HTTP API (the sample application, Link
# headers, declared stable) into an HTTP destination with deletions (DELETE by key), and a PostgreSQL
# table (keyset by key) into a PostgreSQL table. Changes, removals and additions at the
# source arrive as exactly that many upserts and deletions; an unchanged source delivers
# nothing; a source that shrank past max_delete_ratio or failed mid-read deletes nothing.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
SRC=$(new_db src)
DEST=$(new_db dest)
sa POST /_ctl/gen '{"coll":"products","n":3000}' >/dev/null
sql "$SRC" "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags text[]);
	INSERT INTO items SELECT i, 'item ' || i, (i % 500) + 0.25, ARRAY['t' || (i % 7)]
	  FROM generate_series(1, 5000) i;"
sql "$DEST" "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), tags jsonb)"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = (
 { name = "api"; strategy = "capture"; key = "id"; batch = 100;
   capture = { exclude = [ "updatedAt" ]; deletes = true; max_delete_ratio = 0.1; };
   source = { type = "http"; url = "$SA/api/products";
	query = [ "_limit={{limit}}" ]; page = { style = "link"; stable = true; size = 200; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/mirror/{{key}}"; body = "{{record}}";
	delete = { url = "$SA/api/mirror/{{key}}"; }; }; },
 { name = "table"; strategy = "capture"; key = "id"; batch = 500;
   capture = { deletes = true; };
   source = { type = "postgresql"; conninfo = "$SRC"; table = "items"; page = { size = 700; }; };
   destination = { type = "postgresql"; conninfo = "$DEST"; table = "items";
	columns = { id = "id"; name = "name"; price = "price"; tags = "tags"; }; }; }
);
CONF
run_of() { sql "$STATE" "SELECT result, records_read, delivered, skipped, deleted, failed
	FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
expect() { [ "$(run_of "$1")" = "$2" ] || fail "$3: job $1: run (result|read|delivered|skipped|deleted|failed) $(run_of "$1"), expected $2"; }
tables_equal() {
	[ "$(sql "$SRC" "SELECT md5(string_agg(id || '|' || name || '|' || price || '|' || to_jsonb(tags)::text, ',' ORDER BY id)) FROM items")" = \
	  "$(sql "$DEST" "SELECT md5(string_agg(id || '|' || name || '|' || price || '|' || tags::text, ',' ORDER BY id)) FROM items")" ]
}
list_gets() { sa GET "/_ctl/stats?coll=products" | python3 -c 'import json,sys; print(json.load(sys.stdin)["list_gets"])'; }
PCOLS=id,name,email,amount,v

# 1. first run: both destinations equal their sources
once "$T/c.conf" || fail "first run exited $?"
expect api "ok|3000|3000|0|0|0" "first run"
expect table "ok|5000|5000|0|0|0" "first run"
same_colls products mirror $PCOLS || fail "first run: the mirror differs from the source"
tables_equal || fail "first run: the tables differ"

# 2. changes, removals, additions
for k in $(seq 10 10 300); do
	sa POST /_ctl/update "{\"coll\":\"products\",\"key\":\"$k\",\"set\":{\"name\":\"renamed $k\"}}" >/dev/null
done
for k in $(seq 1005 5 1100); do sa DELETE "/api/products/$k" >/dev/null; done
for k in $(seq 3001 3010); do
	sa POST /api/products "{\"id\":$k,\"name\":\"new $k\",\"email\":\"n$k@example.com\",\"amount\":1,\"v\":1}" >/dev/null
done
sa POST /_ctl/update '{"coll":"products","key":"7","set":{"updatedAt":"2027-01-01T00:00:00.000Z"}}' >/dev/null
sql "$SRC" "UPDATE items SET price = price + 1 WHERE id % 100 = 0;
	DELETE FROM items WHERE id BETWEEN 4001 AND 4030;
	INSERT INTO items SELECT i, 'new ' || i, 1, '{}' FROM generate_series(5001, 5020) i;"
sa POST /_ctl/reset_stats >/dev/null
once "$T/c.conf" || fail "second run exited $?"
expect api "ok|2990|40|2950|20|0" "changes"
expect table "ok|4990|70|4920|30|0" "changes"
same_colls products mirror $PCOLS || fail "changes: the mirror differs from the source"
tables_equal || fail "changes: the tables differ"
[ "$(list_gets)" = 15 ] || fail "changes: $(list_gets) list GETs for 2,990 records in pages of 200 (expected 15)"
note "changes: 40 upserts + 20 DELETEs over HTTP; 70 upserts + 30 deletions PostgreSQL to PostgreSQL"

# 3. nothing changed: nothing delivered
once "$T/c.conf" || fail "third run exited $?"
expect api "ok|2990|0|2990|0|0" "unchanged"
expect table "ok|4990|0|4990|0|0" "unchanged"

# 4. the API fails on the third page: no deletion (record 2000 is gone at the source)
sa DELETE /api/products/2000 >/dev/null
sa POST /_ctl/fault '{"coll":"products","method":"GET","delay_ms":1,"times":2}' >/dev/null
sa POST /_ctl/fault '{"coll":"products","method":"GET","status":500,"times":1}' >/dev/null
if once "$T/c.conf" api; then fail "a run whose read failed succeeded"; fi
sa DELETE /_ctl/fault >/dev/null
[ "$(run_of api | cut -d'|' -f1)" = failed ] || fail "failed read: run $(run_of api)"
sa GET /api/mirror/2000 | grep -q '"id"' || fail "failed read: record 2000 was deleted"
note "failed read: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'api' ORDER BY id DESC LIMIT 1" | cut -c1-120)"
once "$T/c.conf" api || fail "the run after the failed read exited $?"
expect api "ok|2989|0|2989|1|0" "after the failed read"
same_colls products mirror $PCOLS || fail "after the failed read: the mirror differs from the source"

# 5. the source shrinks by half: the guard fails the run and deletes nothing
sa GET /_ctl/dump?coll=products | python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps(r[:len(r)//2]))' >"$T/half.json"
curl -sS -X POST -H 'Content-Type: application/json' --data-binary @"$T/half.json" "$SA/_ctl/load?coll=products&key=id" >/dev/null
sql "$SRC" "DELETE FROM items WHERE id > 2500"
if once "$T/c.conf"; then fail "the guard did not fail the runs"; fi
for j in api table; do
	e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = '$j' ORDER BY id DESC LIMIT 1")
	case $e in *max_delete_ratio*) ;; *) fail "guard: job $j: the error does not name the guard: $e";; esac
done
[ "$(sa GET /_ctl/stats?coll=mirror | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 2989 ] ||
	fail "guard: the mirror lost records"
[ "$(sql "$DEST" "SELECT count(*) FROM items")" = 4990 ] || fail "guard: the table lost rows"
note "guard: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'table' ORDER BY id DESC LIMIT 1" | cut -c1-120)"
exit 0
