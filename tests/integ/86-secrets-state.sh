# Secrets never reach the state database, through any column: onesync.unmarked.last_error
# (a marking that fails with a PostgreSQL error quoting an {{env:}} value) and
# onesync.unmarked.answer (a destination echoing a body that carries a credential: only the
# values the marking's {{dest.PATH}} placeholders use are kept, and the next run marks with
# them without delivering again).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
canary() { echo "CNRY$1$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
C_ENV=$(canary env); export ONESYNC_TEST_TOKEN=$C_ENV
printf '%s\n' "$C_ENV" >"$T/canaries"
no_canary() {
	[ -s "$2" ] || fail "$1: nothing to look at ($2 is empty)"
	if grep -a -n -F -f "$T/canaries" "$2" >"$T/hits" || grep -a -n CNRY "$2" >>"$T/hits"; then
		head -5 "$T/hits" >&2
		fail "$1: a canary secret is shown"
	fi
}
sql "$SRC" "CREATE TABLE orders (id int PRIMARY KEY, customer text, synced boolean NOT NULL DEFAULT false,
	erp_id int, tok int);
	INSERT INTO orders (id, customer) SELECT i, 'c' || i FROM generate_series(1, 5) i;"
write() {	# write FILE MARK_SET_EXTRA
	cat >"$1" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; };
jobs = (
 { name = "orders"; strategy = "flag"; key = "id";
   source = { type = "postgresql"; conninfo = "$SRC"; table = "orders"; pending = "NOT synced";
	mark = { set = { synced = "true"; erp_id = "{{dest.erpId}}"; $2 }; }; };
   destination = { type = "http"; method = "POST"; url = "$SA/api/erp";
	body = "{\"id\": {{key}}, \"customer\": \"{{record.customer}}\", \"api_key\": \"{{env:ONESYNC_TEST_TOKEN}}\"}"; }; }
);
CONF
}
# tok is an integer column: PostgreSQL refuses the marking and quotes the value
write "$T/c.conf" 'tok = "{{env:ONESYNC_TEST_TOKEN}}";'
once "$T/c.conf"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE job = 'orders'")" = 5 ] ||
	fail "expected the 5 delivered records remembered as unmarked"
sa GET /_ctl/dump?coll=erp | grep -q "$C_ENV" || fail "the destination did not receive the canary (nothing to echo)"
sql "$STATE" "SELECT * FROM onesync.unmarked" >"$T/unmarked.txt"
no_canary "onesync.unmarked" "$T/unmarked.txt"
grep -q 'invalid input syntax.*"\*\*\*"' "$T/unmarked.txt" || fail "onesync.unmarked.last_error does not show the redacted PostgreSQL error"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked WHERE answer = jsonb_build_object('erpId', answer->'erpId') AND answer->>'erpId' IS NOT NULL")" = 5 ] ||
	fail "onesync.unmarked.answer keeps more than the erpId the marking uses: $(sql "$STATE" "SELECT answer FROM onesync.unmarked LIMIT 1")"
pg_dump -a -d "$STATE" >"$T/state.dump" 2>"$T/pg_dump.err" || fail "pg_dump: $(cat "$T/pg_dump.err")"
no_canary "the state database (pg_dump)" "$T/state.dump"
no_canary "daemon log" "$T/daemon.log"
# the marking works again: the kept erpId marks each row, without a second delivery
write "$T/c.conf" ""
once "$T/c.conf"
[ "$(sql "$SRC" "SELECT count(*) FROM orders WHERE NOT synced")" = 0 ] || fail "rows still pending"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.unmarked")" = 0 ] || fail "unmarked memory not cleared"
sa GET /_ctl/dump?coll=erp >"$T/erp.json"
sql "$SRC" "SELECT json_agg(json_build_object('id', id, 'erp_id', erp_id)) FROM orders" >"$T/marked.json"
python3 - "$T/erp.json" "$T/marked.json" <<'PY' || fail "erp_id written from the kept answer differs from the destination's erpId, or a record was delivered twice"
import json, sys
dump = json.load(open(sys.argv[1]))
assert len(dump) == 5, dump
erp = {r["id"]: r["erpId"] for r in dump}
bad = [m for m in json.load(open(sys.argv[2])) if erp.get(m["id"]) != m["erp_id"]]
assert not bad, bad
PY
n=$(sa GET "/_ctl/stats?coll=erp" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["deliveries"].values()))')
[ "$n" = 5 ] || fail "$n deliveries to the destination, expected 5 (the second run must only mark)"
echo "ok"
