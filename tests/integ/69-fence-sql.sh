# The lease functions at the SQL level, with one owner name throughout: a claim whose lease
# lapsed and is claimed again gets a new epoch, and every write with the old epoch is
# refused with OSL01 (run start, checkpoint), while the new epoch writes; renewal and
# release with the old epoch change nothing; another process of the same name (another
# incarnation) cannot take a live lease; a claim with another definition is refused and
# changes nothing; the version 1 claim cannot take a job whose definition is kept.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
dest_table
write_conf "$T/c.conf"
once "$T/c.conf" || fail "creating the schema"
q() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$STATE" -c "$1" 2>&1; }
claim() { q "SELECT onesync.claim_job('j', 'o', '$1', $2, $3, 'id1', '{\"strategy\": \"flag\"}') ->> '${4:-epoch}'"; }
# a long lease first (the checks between must not race its end on a busy machine), kept
# with a 200 ms one, which then lapses
e1=$(claim inc1 0 60000)
[ -n "$e1" ] || fail "first claim: '$e1'"
[ "$(claim inc2 0 60000)" = "" ] || fail "another incarnation of the same name took a live lease"
[ "$(claim inc1 "$e1" 200)" = "$e1" ] || fail "keeping the lease changed the epoch"
q "SELECT pg_sleep(0.3)" >/dev/null
e2=$(claim inc1 "$e1" 60000)
[ "$e2" -gt "$e1" ] || fail "reclaiming a lapsed lease kept epoch $e1 (got $e2)"
out=$(q "SELECT onesync.run_start('j', 'o', $e1, 10)")
echo "$out" | grep -q 'lease lost' || fail "run_start with the stale epoch: $out"
out=$(psql -X -A -t -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$STATE" -c "SELECT onesync.checkpoint('j', 'o', $e1, 0, '{\"watermark\": \"x\", \"watermark_ns\": 1}')" 2>&1)
echo "$out" | grep -q 'OSL01' || fail "checkpoint with the stale epoch was not refused with OSL01: $out"
[ -z "$(q "SELECT watermark FROM onesync.jobs WHERE name = 'j'")" ] || fail "the stale checkpoint wrote a watermark"
[ "$(q "SELECT count(*) FROM onesync.renew_leases('o', 'inc1', '{j}', '{$e1}', 60000)")" = 0 ] || fail "renewal with the stale epoch"
q "SELECT onesync.release_leases('o', 'inc1', '{j}', '{$e1}')" >/dev/null
[ "$(q "SELECT owner FROM onesync.jobs WHERE name = 'j'")" = o ] || fail "release with the stale epoch dropped the lease"
[ "$(q "SELECT count(*) FROM onesync.renew_leases('o', 'inc2', '{j}', '{$e2}', 60000)")" = 0 ] || fail "renewal by another incarnation"
q "SELECT onesync.checkpoint('j', 'o', $e2, 0, '{\"watermark\": \"x\", \"watermark_ns\": 1}')" >/dev/null || fail "checkpoint with the current epoch"
[ "$(q "SELECT watermark FROM onesync.jobs WHERE name = 'j'")" = x ] || fail "the current epoch did not write"
# another definition: refused, nothing changes
r=$(q "SELECT onesync.claim_job('j', 'p', 'inc9', 0, 60000, 'id2', '{}')")
echo "$r" | grep -q '"epoch": null' || fail "another owner took a live lease: $r"
q "SELECT onesync.release_leases('o', 'inc1', '{j}', '{$e2}')" >/dev/null
[ -z "$(q "SELECT owner FROM onesync.jobs WHERE name = 'j'")" ] || fail "release with the current epoch"
r=$(q "SELECT onesync.claim_job('j', 'p', 'inc9', 0, 60000, 'id2', '{}')")
echo "$r" | grep -q '"refused": {"strategy": "flag"}' || fail "a claim with another definition: $r"
[ "$(q "SELECT coalesce(owner, '-') || epoch || identity FROM onesync.jobs WHERE name = 'j'")" = "-${e2}id1" ] ||
	fail "the refused claim changed the job: $(q "SELECT owner, epoch, identity FROM onesync.jobs WHERE name = 'j'")"
[ -z "$(q "SELECT onesync.claim('j', 'o', 0, 60000)")" ] || fail "the version 1 claim took a job whose definition is kept"
