# A PostgreSQL destination that refuses some rows (a CHECK constraint): the batch is narrowed
# down, only the bad rows wait in the retry queue with the database's error, the rest land.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
sql "$DEST" 'CREATE TABLE contacts (id int PRIMARY KEY, name text, email text, amount int CHECK (amount <> 111),
	"updatedAt" text, v int)'
sa POST /_ctl/gen '{"coll":"contacts","n":1000}' >/dev/null
write_conf "$T/c.conf"
bad=$(sa GET /_ctl/dump?coll=contacts | python3 -c 'import json,sys; print(",".join(str(r["id"]) for r in json.load(sys.stdin) if r["amount"]==111))')
[ -n "$bad" ] || fail "no record with amount 111 in the data"
once "$T/c.conf" || fail "run exited $?"
n=$(sql "$DEST" "SELECT count(*) FROM contacts")
nbad=$(echo "$bad" | tr ',' '\n' | wc -l)
[ "$n" = $((1000 - nbad)) ] || fail "destination has $n rows, expected $((1000 - nbad))"
q=$(sql "$STATE" "SELECT string_agg(key, ',' ORDER BY key::int) FROM onesync.failures WHERE last_error LIKE '%check constraint%'")
[ "$q" = "$bad" ] || fail "retry queue '$q', expected '$bad'"
sql "$DEST" "ALTER TABLE contacts DROP CONSTRAINT contacts_amount_check"
once "$T/c.conf" || fail "retry run exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs after the retry"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "retry queue not empty"
