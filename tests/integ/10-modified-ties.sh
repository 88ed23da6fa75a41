# 5,000 source records, 1,200 of them sharing one timestamp across pages of 100: the
# destination holds all 5,000, equal to the source; a second run delivers none.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":5000,"ties":1200,"tie_at":1950}' >/dev/null
write_conf "$T/c.conf"
once "$T/c.conf" || fail "first run exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs from source"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts')" = 5000 ] || fail "not 5000 rows"
[ "$(last_run delivered)" = 5000 ] || fail "first run delivered $(last_run delivered), not 5000"
[ "$(last_run result)" = ok ] || fail "first run result $(last_run result)"
wm=$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")
[ "$wm" = "$(sa GET /_ctl/dump?coll=contacts | python3 -c 'import json,sys; print(max(r["updatedAt"] for r in json.load(sys.stdin)))')" ] ||
	fail "watermark $wm is not the source's highest timestamp"
once "$T/c.conf" || fail "second run exited $?"
[ "$(last_run delivered)" = 0 ] || fail "second run delivered $(last_run delivered)"
[ "$(last_run result)" = ok ] || fail "second run result"
# the tie set is bounded by the largest tie at the watermark, not by the data
seen=$(sql "$STATE" "SELECT count(*) FROM onesync.seen WHERE job = 'contacts'")
[ "$seen" -le 1 ] || fail "seen set holds $seen rows after the run"
