# Budgets at the SQL level (state schema 4), from psql only: three sessions taking from one
# budget concurrently never get more than the limit granted in any window of 1 s widened
# by the hold (so requests spent within the hold stay within the limit in every sliding
# window), and are not starved; with two windows the longer one caps the total; a block
# makes every take wait until it ends, is NOTIFYed with '<until_ms> <name>' and is never
# shortened; bad arguments raise an error that names them.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
dest_table
write_conf "$T/c.conf"
once "$T/c.conf" || fail "creating the schema"
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$STATE" -c "$1" 2>&1; }
[ "$(q "SELECT value FROM onesync.meta WHERE key = 'schema_version'")" = 5 ] || fail "schema not at version 5"
q "CREATE TABLE grants (test text, at bigint, granted bigint)" >/dev/null

# taker TEST NAME WINDOWS LIMITS: one session taking 3 at a time for 3 s, each answer
# recorded (committed at once: the next take must not wait on this one's row lock), and
# sleeping as wait_ms says when refused (at most 1 s, at most 2000 takes).
taker() {
	psql -X -q -v ON_ERROR_STOP=1 "$STATE" >"$T/taker.$1.$RANDOM.out" 2>&1 <<SQL
DO \$\$
DECLARE r jsonb; e timestamptz := clock_timestamp() + interval '3 s'; i int := 0;
BEGIN
  WHILE clock_timestamp() < e AND i < 2000 LOOP
    r := onesync.budget_take('$2', '$3', '$4', 3, 100);
    INSERT INTO grants VALUES ('$1', (r->>'at_ms')::bigint, (r->>'granted')::bigint);
    COMMIT;
    IF (r->>'granted')::bigint = 0 THEN
      PERFORM pg_sleep(least((r->>'wait_ms')::bigint, 1000) / 1000.0);
    END IF;
    i := i + 1;
  END LOOP;
END \$\$;
SQL
}
pids=()
for i in 1 2 3; do
	taker a b '{1000}' '{50}' & pids+=($!)
	taker b b2 '{1000,10000}' '{50,120}' & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a taker failed: $(cat "$T"/taker.*.out)"; done
# (a) every grant a: what was granted in [a - 100, a + 1000) is at most 50
over() {
	q "SELECT count(*) FROM grants g WHERE test = '$1' AND granted > 0 AND
	   (SELECT sum(granted) FROM grants h WHERE h.test = '$1'
	     AND h.at >= g.at - 100 AND h.at < g.at + 1000) > 50"
}
[ "$(over a)" = 0 ] || fail "(a) more than 50 granted within a 1 s window plus the hold: $(q "SELECT at, granted FROM grants WHERE test = 'a' AND granted > 0 ORDER BY at")"
total=$(q "SELECT sum(granted) FROM grants WHERE test = 'a'")
[ "$total" -ge 105 ] || fail "(a) only $total granted in 3 s to 3 takers of 50/1s (starved)"
[ "$(q "SELECT count(*) FROM grants WHERE test = 'a' AND granted = 0")" -ge 1 ] || fail "(a) never refused"
# (b) the 10 s window caps the total at 120; the 1 s one still holds
total=$(q "SELECT sum(granted) FROM grants WHERE test = 'b'")
[ "$total" -le 120 ] || fail "(b) $total granted over 3 s with a limit of 120 per 10 s"
[ "$total" -gt 50 ] || fail "(b) only $total granted over 3 s (the 1 s window never freed)"
[ "$(over b)" = 0 ] || fail "(b) more than 50 granted within a 1 s window plus the hold"
st=$(q "SELECT onesync.budget_status('{b2}') -> 'b2' -> 'windows' ->> '10000'")
[ "$st" = "$total" ] || fail "(b) budget_status says $st used in the 10 s window, $total were granted"

# the hold counts: 50 taken at once with a hold of 500 ms are counted for 1 s + 500 ms
# (bucket-rounded: the grant's bucket starts up to 50 ms before it)
r=$(q "SELECT onesync.budget_take('h', '{1000}', '{50}', 60, 500)")
[ "$(echo "$r" | jq .granted)" = 50 ] || fail "a take of 60 from 50 free: $r"
at=$(echo "$r" | jq .at_ms)
r=$(q "SELECT onesync.budget_take('h', '{1000}', '{50}', 1, 500)")
free=$(( $(echo "$r" | jq .at_ms) + $(echo "$r" | jq .wait_ms) - at ))
[ "$(echo "$r" | jq .granted)" = 0 ] && [ "$free" -gt 1500 ] && [ "$free" -le 1550 ] || fail "a full window frees $free ms after the grant, not 1 s + the hold: $r"

# (c) a block: every take waits for it, it is notified, an earlier one does not shorten it
psql -X -A -t "$STATE" -c "LISTEN onesync_budget" -c "SELECT pg_sleep(4)" >"$T/listen.out" 2>&1 & lpid=$!
wait_for 10 bash -c "[ \"\$(psql -X -A -t '$STATE' -c \"SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(4)'\")\" = 1 ]" || fail "the listening session did not start"
now=$(q "SELECT onesync.budget_ms(clock_timestamp())")
until=$((now + 2000))
r=$(q "SELECT onesync.budget_block('b', $until)")
[ "$(echo "$r" | jq .moved)" = true ] || fail "(c) the block did not move: $r"
r=$(q "SELECT onesync.budget_take('b', '{1000}', '{50}', 3, 100)")
w=$(echo "$r" | jq .wait_ms)
[ "$(echo "$r" | jq .granted)" = 0 ] && [ "$w" -gt 1000 ] && [ "$w" -le 2000 ] || fail "(c) a take during the block: $r"
[ "$(echo "$r" | jq .blocked_until_ms)" = "$until" ] || fail "(c) the take does not name the block: $r"
r=$(q "SELECT onesync.budget_block('b', $((now + 500)))")
[ "$(echo "$r" | jq .moved)" = false ] && [ "$(echo "$r" | jq .blocked_until_ms)" = "$until" ] || fail "(c) an earlier block shortened it: $r"
r=$(q "SELECT onesync.budget_take('b', '{1000}', '{50}', 3, 100)")
[ "$(echo "$r" | jq .granted)" = 0 ] && [ "$(echo "$r" | jq .wait_ms)" -gt 1000 ] || fail "(c) a take after the earlier block: $r"
st=$(q "SELECT onesync.budget_status('{b}') -> 'b' ->> 'blocked_until_ms'")
[ "$st" = "$until" ] || fail "(c) budget_status shows the block as $st, not $until"
odd='crm.eu-1_x y'
q "SELECT onesync.budget_block('$odd', $until)" >/dev/null || fail "(c) a block of '$odd'"
wait $lpid
grep -q "payload \"$until b\"" "$T/listen.out" || fail "(c) the LISTEN session did not get '$until b': $(cat "$T/listen.out")"
grep -q "payload \"$until $odd\"" "$T/listen.out" || fail "(c) the LISTEN session did not get '$until $odd': $(cat "$T/listen.out")"
[ "$(grep -c 'payload ".* b"' "$T/listen.out")" = 1 ] || fail "(c) the block that did not move was notified: $(cat "$T/listen.out")"

# (d) bad arguments raise, naming what is wrong
bad() {
	out=$(q "SELECT onesync.$1")
	echo "$out" | grep -q "ERROR: .*$2" || fail "(d) $1: $out"
}
bad "budget_take('b', '{1000,2000}', '{50}', 3, 100)" "same length"
bad "budget_take('b', '{}', '{}', 3, 100)" "1 to 8 values"
bad "budget_take('b', '{0}', '{50}', 3, 100)" "every window must be 1 ms"
bad "budget_take('b', '{1000}', '{-1}', 3, 100)" "every limit 1 to"
bad "budget_take('b', '{1000}', '{50}', 0, 100)" "want must be at least 1 (got 0)"
bad "budget_take('b', '{1000}', '{50}', 3, -1)" "hold 0 ms"
bad "budget_take('b', '{1000,NULL}', '{50,5}', 3, 0)" "every window"
bad "budget_take('', '{1000}', '{50}', 3, 0)" "budget name must be 1 to 1000"
bad "budget_take(NULL, '{1000}', '{50}', 3, 0)" "budget name must be 1 to 1000"
bad "budget_block('b', -1)" "until must be ms since 1970"
bad "budget_block('b', 9223372036854775807)" "until must be ms since 1970"
bad "budget_block(repeat('x', 1001), 1)" "budget name must be 1 to 1000"
# a window given twice counts once, with the smaller limit
r=$(q "SELECT onesync.budget_take('d', '{1000,1000}', '{5,2}', 9, 0)")
[ "$(echo "$r" | jq .granted)" = 2 ] || fail "a window given twice: $r"
true
