# --once and a job that does not run: held by another instance's lease, paused, or disabled
# (named on the command line). Each is said at notice level and the exit code is 75; a run
# that happens exits 0, a failed run 1.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":20}' >/dev/null
write_conf "$T/c.conf"
once "$T/c.conf" contacts || fail "the first run exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "the first run did not copy the records"
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts'"; }
expect_rc() { # WHAT WANT GOT
	[ "$3" = "$2" ] || fail "$1: exit code $3, expected $2"
}

# another instance holds the lease
sql "$STATE" "UPDATE onesync.jobs SET owner = 'far:1', epoch = epoch + 1, lease_until = now() + interval '1 hour' WHERE name = 'contacts'"
n=$(runs); : >"$T/daemon.log"
once "$T/c.conf" contacts; expect_rc "lease held elsewhere" 75 $?
grep -q '^<5>.*job=contacts.*another instance holds the lease' "$T/daemon.log" || fail "no notice for the lease held elsewhere: $(cat "$T/daemon.log")"
[ "$(runs)" = "$n" ] || fail "a run happened while another instance held the lease"
once "$T/c.conf"; expect_rc "lease held elsewhere (all jobs)" 75 $?
sql "$STATE" "UPDATE onesync.jobs SET owner = NULL, lease_until = NULL WHERE name = 'contacts'"

# paused
sql "$STATE" "UPDATE onesync.jobs SET paused = true WHERE name = 'contacts'"
: >"$T/daemon.log"
once "$T/c.conf" contacts; expect_rc "paused" 75 $?
grep -q '^<5>.*job=contacts.*paused: no run' "$T/daemon.log" || fail "no notice for the paused job: $(cat "$T/daemon.log")"
[ "$(runs)" = "$n" ] || fail "a paused job ran"
sql "$STATE" "UPDATE onesync.jobs SET paused = false WHERE name = 'contacts'"

# disabled, and named
sed -i 's/{ name = "contacts";/{ name = "contacts"; enabled = false;/' "$T/c.conf"
: >"$T/daemon.log"
once "$T/c.conf" contacts; expect_rc "disabled" 75 $?
grep -q '^<5>.*job=contacts.*disabled' "$T/daemon.log" || fail "no notice for the disabled job: $(cat "$T/daemon.log")"
[ "$(runs)" = "$n" ] || fail "a disabled job ran"
sed -i 's/ enabled = false;//' "$T/c.conf"

# free again: it runs, exit 0; a failing run: exit 1
once "$T/c.conf" contacts; expect_rc "a run" 0 $?
[ "$(runs)" = $((n + 1)) ] || fail "no run once the job was free"
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","status":500}' >/dev/null
once "$T/c.conf" contacts; expect_rc "a failed run" 1 $?
exit 0
