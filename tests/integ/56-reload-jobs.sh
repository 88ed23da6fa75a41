# Reload and the jobs in flight: disabling a running job lets its run finish, starts no
# further run and gives its lease back; re-enabling it runs it again; removing a running job
# lets the run finish under its lease (result ok, lease released in its last checkpoint, no
# "lease lost"); a shorter daemon.lease re-arms the renewal tick, so a run longer than the new
# lease still ends ok; a changed daemon.instance is reported as needing a restart.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":300}' >/dev/null
sa POST /_ctl/gen '{"coll":"ticks","n":5}' >/dev/null
# conf LEASE ENABLED [WITH_CONTACTS] [INSTANCE]
conf() {
	local contacts=""
	[ "${3:-yes}" = yes ] && contacts="{ name = \"contacts\"; strategy = \"capture\"; key = \"id\"; enabled = $2; interval = \"1s\";
	  source = { type = \"http\"; url = \"$SA/api/contacts\";
		query = [ \"_page={{page}}\", \"_limit={{limit}}\" ]; page = { style = \"page\"; size = 50; }; };
	  destination = { type = \"http\"; url = \"$SA/api/contacts-copy/{{key}}\"; }; },"
	cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "$1"; instance = "${4:-node1}"; stop_timeout = "5s"; };
defaults = { retries = 0; retry_backoff = "0"; };
jobs = ( $contacts
	{ name = "ticks"; strategy = "capture"; key = "id"; interval = "1s"; jitter = "0";
	  source = { type = "http"; url = "$SA/api/ticks"; };
	  destination = { type = "http"; url = "$SA/api/ticks-copy/{{key}}"; }; } );
CONF
}
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' ${2:+AND result = '$2'}"; }
at_least() { [ "$(runs "$1" "${3:-}")" -ge "$2" ]; }
in_flight() { [ "$(runs contacts running)" -ge 1 ]; }
# running_id: sets rid to the id of contacts' run in flight, in one query (a run seen in
# flight by one query may have ended by the next)
running_id() { rid=$(sql "$STATE" "SELECT max(id) FROM onesync.runs WHERE job = 'contacts' AND result = 'running'"); [ -n "$rid" ]; }
holder() { sql "$STATE" "SELECT COALESCE(owner, '-') FROM onesync.jobs WHERE name = 'contacts' AND lease_until > now()"; }
# every page of contacts takes 0.6 s: a run of 7 pages takes about 4 s
slow() { sa POST /_ctl/fault '{"coll":"contacts","method":"GET","delay_ms":600}' >/dev/null; }

conf 30s true
slow
daemon_start "$T/c.conf"

# --- 15: disable a running job
wait_for 20 in_flight || fail "no run of contacts in flight"
r0=$(runs contacts)
conf 30s false; kill -HUP "$D_PID"
wait_for 20 bash -c "[ \$(psql -X -A -t -q '$STATE' -c \"SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result = 'running'\") = 0 ]" ||
	fail "the run in flight did not end after the job was disabled"
[ "$(runs contacts)" = "$r0" ] || fail "a run started after the job was disabled"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'contacts' ORDER BY id DESC LIMIT 1")" = ok ] ||
	fail "the run in flight did not finish ok after the job was disabled"
wait_for 10 bash -c "[ -z \"\$(psql -X -A -t -q '$STATE' -c \"SELECT owner FROM onesync.jobs WHERE name = 'contacts' AND lease_until > now()\")\" ]" ||
	fail "the disabled job's lease is still held: $(holder)"
t0=$(runs ticks ok)
wait_for 20 at_least ticks $((t0 + 4)) ok || fail "the other job stopped running"
[ "$(runs contacts)" = "$r0" ] || fail "the disabled job ran again ($(runs contacts) runs, $r0 before)"
[ -z "$(holder)" ] || fail "the disabled job's lease was taken again: $(holder)"
note "disabled: the run in flight finished, no further run in 4 ticks of another job, lease free"

# --- 15: enable it again
conf 30s true; kill -HUP "$D_PID"
wait_for 20 at_least contacts $((r0 + 1)) || fail "the re-enabled job never ran again"
note "re-enabled: it runs again"

# --- 17: remove a running job
wait_for 20 running_id || fail "no run of contacts in flight before the removal"
conf 30s true no; kill -HUP "$D_PID"
wait_for 20 bash -c "[ \"\$(psql -X -A -t -q '$STATE' -c \"SELECT result FROM onesync.runs WHERE id = $rid\")\" != running ]" ||
	fail "the removed job's run never ended"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $rid")" = ok ] ||
	fail "the removed job's run ended $(sql "$STATE" "SELECT result || ': ' || coalesce(error, '') FROM onesync.runs WHERE id = $rid")"
grep -q 'job=contacts.*lease lost' "$T/daemon.log" && fail "lease lost after the job was removed"
[ -z "$(holder)" ] || fail "the removed job's lease is still held: $(holder)"
note "removed mid-run: the run finished ok and released its lease"

# --- 16: a shorter lease; 18: a changed instance name
# pages of 1 s: a run of 7 pages outlives two 3 s leases, so it needs renewals every second
sa DELETE "/_ctl/fault?coll=contacts" >/dev/null
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","delay_ms":1000}' >/dev/null
conf 3s true yes node2; kill -HUP "$D_PID"
wait_for 10 grep -q 'daemon.instance changed' "$T/daemon.log" || fail "no warning for a changed daemon.instance"
wait_for 20 running_id || fail "no run of contacts in flight with the short lease"
wait_for 30 bash -c "[ \"\$(psql -X -A -t -q '$STATE' -c \"SELECT result FROM onesync.runs WHERE id = $rid\")\" != running ]" ||
	fail "the run with the short lease never ended"
secs=$(sql "$STATE" "SELECT extract(epoch FROM finished_at - started_at)::int FROM onesync.runs WHERE id = $rid")
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $rid")" = ok ] ||
	fail "a ${secs}s run with a 3s lease ended $(sql "$STATE" "SELECT result || ': ' || coalesce(error, '') FROM onesync.runs WHERE id = $rid")"
[ "$secs" -ge 6 ] || fail "the run took ${secs}s, not longer than the lease: the test proves nothing"
grep -q 'lease lost' "$T/daemon.log" && fail "lease lost with the shorter lease"
note "lease 30s -> 3s: a ${secs}s run ended ok"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit code $? after SIGTERM"
exit 0
