# Schema migrations: two instances starting at once migrate once (advisory lock); a state
# at version 3 (before budgets and credentials) is migrated to 5 with its jobs' state kept; a state
# schema newer than this binary understands stops it with a clear message and exit 78.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":50}' >/dev/null
write_conf "$T/c.conf"
once "$T/c.conf" & p1=$!
once "$T/c.conf" & p2=$!
# the later of the two may find the lease held by the other: exit 75, not a failure
wait $p1; r1=$?; wait $p2; r2=$?
case "$r1 $r2" in "0 0"|"0 75"|"75 0") ;; *) fail "concurrent starts exited $r1 and $r2";; esac
[ "$(sql "$STATE" "SELECT value FROM onesync.meta WHERE key = 'schema_version'")" -ge 1 ] || fail "schema not migrated"
[ "$(sql "$STATE" "SELECT value FROM onesync.meta WHERE key = 'schema_version'")" = 5 ] || fail "schema not at version 5"
# version 3: what this binary's migrations 4 and 5 added is not there yet
sql "$STATE" "DROP FUNCTION onesync.budget_status(text[]), onesync.budget_block(text, bigint),
	onesync.budget_take(text, bigint[], bigint[], bigint, bigint),
	onesync.budget_check_name(text, text), onesync.budget_ms(timestamptz);
	DROP TABLE onesync.budgets, onesync.budget_windows, onesync.budget_defs;
	DROP FUNCTION onesync.budget_define(text, text, text, jsonb);
	DROP TABLE onesync.credentials CASCADE;
	DROP FUNCTION onesync.credential_check(text, text, text, text),
	onesync.credential_check_sealed(text, text, text, text),
	onesync.credential_get(text), onesync.credential_begin(text, text, bigint, text),
	onesync.credential_begin(text, text, bigint),
	onesync.credential_store(text, text, bigint, text, bigint, text),
	onesync.credential_fail(text, text, bigint, text), onesync.credential_set_refresh(text, text),
	onesync.credential_renew(text, text, bigint, bigint), onesync.credential_seeds(text[], text),
	onesync.credential_check_mac(text, text, text, text),
	onesync.credential_store(text, text, bigint, text, bigint, text, text, text, text),
	onesync.credential_fail(text, text, bigint, text, text),
	onesync.credential_set_refresh(text, text, text, text, text);
	UPDATE onesync.meta SET value = '3' WHERE key = 'schema_version'" || fail "cannot take the state back to version 3"
wm=$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")
[ -n "$wm" ] || fail "no watermark after the first runs"
once "$T/c.conf" || fail "a run on a state at version 3"
[ "$(sql "$STATE" "SELECT value FROM onesync.meta WHERE key = 'schema_version'")" = 5 ] || fail "version 3 was not migrated to 5"
[ "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")" = "$wm" ] || fail "migrating to 5 lost the watermark"
r=$(sql "$STATE" "SELECT onesync.budget_take('x', '{1000}', '{5}', 9, 0) ->> 'granted'")
[ "$r" = 5 ] || fail "budget_take after migrating from 3: $r"
r=$(sql "$STATE" "SELECT onesync.credential_begin('x', 'i', 1000, repeat('0', 64)) ->> 'token'")
[ "$r" = 0 ] || fail "credential_begin after migrating from 3: $r"
sql "$STATE" "UPDATE onesync.meta SET value = '999' WHERE key = 'schema_version'"
"$ONESYNCD" -c "$T/c.conf" >"$T/newer.log" 2>&1 & pid=$!
wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || fail "the daemon kept running on a newer schema"
wait $pid; rc=$?
[ "$rc" = 78 ] || fail "exit code $rc on a newer schema, expected 78"
grep -q 'version 999, newer than this onesyncd understands' "$T/newer.log" || fail "no clear message: $(cat "$T/newer.log")"
