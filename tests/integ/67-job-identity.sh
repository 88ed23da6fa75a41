# A job's state belongs to one definition. The first run stores it (no host, path, table or
# password in clear); harmless keys (interval, batch, timeouts, a password) change freely;
# a run whose strategy, key, source or destination changed is refused, naming the job and
# what changed, and the state stays as it was; onesyncctl reset starts over with the new
# definition; a job whose state has no stored definition (written before identities were
# kept) adopts the current one. In the daemon a reload that changes the key stops the job:
# one warning per change, not one per tick, then runs again once the definition is restored.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state); DEST=$(new_db dest)
dest_table
sql "$DEST" 'CREATE TABLE other (LIKE contacts INCLUDING ALL)'
sa POST /_ctl/gen '{"coll":"contacts","n":30}' >/dev/null
DEST="$DEST password=hunter2secret"	# trust authentication: a password that must never show
write_conf "$T/a.conf"
wm() { sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'"; }
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result <> 'reset'"; }

once "$T/a.conf" || fail "first run"
W1=$(wm); R1=$(runs)

# harmless changes: interval, batch, timeouts, page size, a password
INTERVAL=5m BATCH=3 TIMEOUT=20s PAGE=7 DEST="${DEST/hunter2secret/other}" write_conf "$T/b.conf"
once "$T/b.conf" || fail "a run after harmless changes was refused: $(tail -3 "$T/daemon.log")"

# the destination table changes: refused, state untouched
sed 's/table = "contacts"/table = "other"/' "$T/a.conf" >"$T/c.conf"
W2=$(wm); R2=$(runs)
once "$T/c.conf" && fail "a run with another destination was not refused"
grep -q "job contacts: its definition differs from the one its state was written with (changed: destination).*onesyncctl reset contacts" "$T/daemon.log" ||
	fail "the refusal does not say what changed: $(tail -3 "$T/daemon.log")"
[ "$(wm)" = "$W2" ] && [ "$(runs)" = "$R2" ] || fail "the refused run changed the state"
[ "$(sql "$DEST" 'SELECT count(*) FROM other')" = 0 ] || fail "the refused run wrote to the new destination"
# the key changes: refused too
sed 's/key = "id"/key = "email"/' "$T/a.conf" >"$T/k.conf"
once "$T/k.conf" && fail "a run with another key was not refused"
grep -q "(changed: key)" "$T/daemon.log" || fail "the refusal does not name the key"

# what is stored: the definition, without secrets or places in clear
def=$(sql "$STATE" "SELECT definition FROM onesync.jobs WHERE name = 'contacts'")
[ -n "$(sql "$STATE" "SELECT identity FROM onesync.jobs WHERE name = 'contacts'")" ] || fail "no identity stored"
echo "$def" | grep -q '"strategy": "modified"' || fail "stored definition: $def"
for s in hunter2secret 127.0.0.1 "$(basename "$T" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z')" api/contacts; do
	echo "$def" | grep -qi -- "$s" && fail "the stored definition shows '$s' in clear: $def"
done

# reset: the new definition starts over and is stored
"$CTL" -c "$T/c.conf" reset contacts --yes >/dev/null || fail "reset"
[ -z "$(sql "$STATE" "SELECT identity FROM onesync.jobs WHERE name = 'contacts'")" ] || fail "reset kept the stored definition"
once "$T/c.conf" || fail "the run after reset was refused"
[ "$(sql "$DEST" 'SELECT count(*) FROM other')" = 30 ] || fail "after reset the new destination has $(sql "$DEST" 'SELECT count(*) FROM other') rows"

# state written before identities were kept: the current definition is adopted
sql "$STATE" "UPDATE onesync.jobs SET identity = NULL, definition = NULL WHERE name = 'contacts'"
once "$T/a.conf" || fail "a job without a stored definition refused its first run"
[ -n "$(sql "$STATE" "SELECT identity FROM onesync.jobs WHERE name = 'contacts'")" ] || fail "the definition was not adopted"

# the daemon: a reload changes the key
LEASE=3s INTERVAL=1s write_conf "$T/d.conf"
cp "$T/d.conf" "$T/live.conf"
L0=$(wc -l <"$T/daemon.log")
daemon_start "$T/live.conf"
n0=$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok'")
okruns() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'ok'"; }
wait_for 20 eval '[ "$(okruns)" -gt "$n0" ]' || fail "the daemon did not run the job"
since() { tail -n +$((L0 + 1)) "$T/daemon.log"; }
# A heartbeat sent before the reload answers for the old definition: hold one back (a lock
# on the instances table) until the reload is done; its answer must not decide what changed.
mkfifo "$T/lock"
psql -X -q "$STATE" <"$T/lock" >/dev/null &
LK=$!
exec 7>"$T/lock"
echo "BEGIN; LOCK onesync.instances IN EXCLUSIVE MODE;" >&7
waiting() { sql "$STATE" "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%instances%'"; }
wait_for 10 eval '[ "$(waiting)" -gt 0 ]' || fail "no heartbeat waited for the lock"
sed 's/key = "id"/key = "email"/' "$T/d.conf" >"$T/live.conf"
kill -HUP "$D_PID"
wait_for 10 eval "since | grep -q 'configuration reloaded'" || fail "the reload was not logged"
echo "COMMIT;" >&7; exec 7>&-
wait "$LK"
wait_for 20 eval "since | grep -q 'contacts.*its definition differs.*(changed: key)'" || fail "no warning after the reload: $(since | grep 'definition differs')"
sleep 0.5	# a run in flight at the reload may still end
n1=$(runs)
hb() { sql "$STATE" "SELECT extract(epoch FROM heartbeat_at) FROM onesync.instances LIMIT 1"; }
for i in 1 2 3; do h=$(hb); wait_for 10 eval '[ "$(hb)" != "$h" ]' || fail "no heartbeat"; done
[ "$(runs)" = "$n1" ] || fail "runs went on after the key changed"
n=$(since | grep -c 'contacts.*its definition differs')
[ "$n" -le 2 ] || fail "the refusal was logged $n times in 3 heartbeats"	# a run started before the heartbeat saw it may be refused by its claim too
cp "$T/d.conf" "$T/live.conf"
kill -HUP "$D_PID"
n2=$(okruns)
wait_for 20 eval '[ "$(okruns)" -gt "$n2" ]' || fail "the job did not run again once its definition was restored"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon did not exit 0"
