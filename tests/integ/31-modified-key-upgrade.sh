# Strategy modified with a composite key: the tie set (seen) an older version stored with bare
# numbers (["n1",1]) still matches today's key text (["n1","1"]): nothing is delivered again.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
TS=2026-01-01T00:00:00.000Z
for i in 1 2 3; do sa PUT /api/contacts/$i "{\"id\":$i,\"name\":\"n$i\",\"updatedAt\":\"$TS\",\"v\":1}" >/dev/null; done
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sql "$DEST" "ALTER TABLE contacts ADD UNIQUE (name, id)"
write_conf "$T/c.conf"
sed -i 's/key = "id";/key = [ "name", "id" ];/' "$T/c.conf"
once "$T/c.conf" || fail "run 1 exited $?"
[ "$(last_run delivered)" = 3 ] || fail "run 1 delivered $(last_run delivered)"
[ "$(sql "$STATE" "SELECT string_agg(key, ' ' ORDER BY key) FROM onesync.seen")" = '["n1","1"] ["n2","2"] ["n3","3"]' ] ||
	fail "seen: $(sql "$STATE" "SELECT string_agg(key, ' ' ORDER BY key) FROM onesync.seen")"
# the text an older version stored
sql "$STATE" "UPDATE onesync.seen SET key = regexp_replace(key, ',\"([0-9]+)\"\]\$', ',\1]')"
once "$T/c.conf" || fail "run 2 exited $?"
[ "$(last_run delivered)/$(last_run skipped)" = 0/3 ] ||
	fail "run 2 after the upgrade: delivered $(last_run delivered), skipped $(last_run skipped)"
note "a tie stored as [\"n1\",1] is skipped as [\"n1\",\"1\"]"
exit 0
