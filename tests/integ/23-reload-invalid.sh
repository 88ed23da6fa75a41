# SIGHUP with a file that parses but fails validation (an unknown key, a bad duration, a job
# without its key, two jobs with one name): each is rejected with FILE:LINE in the log, the
# daemon answers READY=1, keeps the old configuration (STATUS= still counts the old jobs) and
# runs its jobs unchanged (new records still go to the old destination; the job the file adds
# never runs); a following valid reload is applied.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":50}' >/dev/null
sa POST /_ctl/gen '{"coll":"other","n":5}' >/dev/null
# conf DEST_COLL [EXTRA_DEFAULTS] [ADDED_JOB] [MORE_JOBS]: the file the daemon reads; the line
# meant to be rejected carries the comment "// BAD"
conf() {
	cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "10s"; stop_timeout = "5s"; };
defaults = { interval = "1s"; retries = 0; retry_backoff = "0";
	${2:-}
};
jobs = (
	{ name = "contacts"; strategy = "modified"; key = "id";
	  modified = { field = "updatedAt"; };
	  source = { url = "$SA/api/contacts"; query = { updatedAt_gte = "{{watermark}}"; }; };
	  destination = { type = "http"; url = "$SA/api/$1/{{key}}"; }; }
	${3:+, $3}
	${4:+, $4}
);
CONF
}
added() { echo "{ name = \"added\";
	  strategy = \"modified\"; ${1-key = \"id\";}
	  ${2:-}
	  modified = { field = \"updatedAt\"; };
	  source = { url = \"$SA/api/other\"; query = { updatedAt_gte = \"{{watermark}}\"; }; };
	  destination = { type = \"http\"; url = \"$SA/api/other-copy/{{key}}\"; }; }"; }
count() { sa GET "/_ctl/stats?coll=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])'; }
count_ge() { [ "$(count "$1")" -ge "$2" ]; }
readies_gt() { [ "$(readies)" -gt "$1" ]; }
readies() { grep -cx 'READY=1' "$T/notify.txt"; }
last_status() { grep '^STATUS=' "$T/notify.txt" | tail -1; }
maxrun() { sql "$STATE" "SELECT COALESCE(max(id), 0) FROM onesync.runs"; }
# a run of contacts after run id $1 that delivered something
delivered_after() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND id > $1
	AND result = 'ok' AND delivered > 0")" -ge 1 ]; }

conf copy
python3 "$TOP/tests/notify-listen.py" "$T/notify.sock" "$T/notify.txt" 120 & PIDS+=($!)
wait_for 10 test -S "$T/notify.sock" || fail "listener did not start"
NOTIFY_SOCKET=$T/notify.sock "$ONESYNCD" -c "$T/c.conf" >>"$T/daemon.log" 2>&1 &
D_PID=$!; PIDS+=($D_PID)
wait_for 10 grep -qx 'READY=1' "$T/notify.txt" || fail "no READY=1"
wait_for 20 count_ge copy 50 ||
	fail "the first run did not copy the 50 records"

# reject NAME: SIGHUP with the current file; it must be refused at the "// BAD" line
reject() {
	local name=$1 line mark r0 n0 copy0
	line=$(grep -n '// BAD' "$T/c.conf" | head -1 | cut -d: -f1)
	[ -n "$line" ] || fail "$name: no // BAD marker in the test's file"
	mark=$(wc -l <"$T/daemon.log"); r0=$(readies); copy0=$(count copy)
	kill -HUP "$D_PID"
	wait_for 10 readies_gt "$r0" || fail "$name: no READY=1 after the reload"
	tail -n +$((mark + 1)) "$T/daemon.log" >"$T/reload.log"
	grep -q "c.conf:$line: " "$T/reload.log" || fail "$name: no error at c.conf:$line in the log: $(grep -i 'c.conf' "$T/reload.log" | head -3)"
	grep -q 'configuration rejected' "$T/reload.log" || fail "$name: no 'configuration rejected' line"
	! grep -q 'configuration reloaded' "$T/reload.log" || fail "$name: the invalid configuration was applied"
	last_status | grep -q '^STATUS=1 jobs' || fail "$name: STATUS= does not show the old configuration: $(last_status)"
	last_status | grep -q 'last reload rejected ([0-9]* errors)' || fail "$name: STATUS= does not say the reload was rejected: $(last_status)"
	# the old job goes on unchanged: new records reach the old destination, and only it
	n0=$(maxrun)
	sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":2,"insert":1,"field":"updatedAt"}' >/dev/null
	wait_for 20 delivered_after "$n0" || fail "$name: the job stopped running after a rejected reload"
	wait_for 10 count_ge copy $((copy0 + 1)) ||
		fail "$name: the new record did not reach the old destination"
	[ "$(count copy2)" = 0 ] || fail "$name: records went to the rejected file's destination"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'added'")" = 0 ] || fail "$name: the rejected file's new job ran"
	kill -0 "$D_PID" || fail "$name: the daemon died"
	note "$name: rejected at c.conf:$line, old configuration still running"
}

conf copy2 'colour = "blue"; // BAD' "$(added)"
reject "unknown key"
conf copy2 '' "$(added 'key = "id";' 'interval = "soon"; // BAD')"
reject "bad duration"
conf copy2 '' "$(added '' | sed 's|name = "added";|& // BAD|')"
reject "job without its key"
conf copy2 '' "$(added)" "$(added | sed 's|name = "added";|name = "contacts"; // BAD|')"
reject "duplicate job name"

# a valid file afterwards is applied (the job keeps its destination: another one would be
# another definition, which its state refuses until a reset; see 67-job-identity)
conf copy '' "$(added)"
mark=$(wc -l <"$T/daemon.log"); r0=$(readies)
kill -HUP "$D_PID"
wait_for 10 readies_gt "$r0" || fail "no READY=1 after the valid reload"
tail -n +$((mark + 1)) "$T/daemon.log" | grep -q 'configuration reloaded' || fail "the valid configuration was not applied"
last_status | grep -q '^STATUS=2 jobs' || fail "STATUS= does not show the new configuration: $(last_status)"
! last_status | grep -q 'rejected' || fail "STATUS= still speaks of a rejected reload: $(last_status)"
wait_for 20 count_ge other-copy 5 ||
	fail "the added job did not run"
copy0=$(count copy)
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":0,"insert":1,"field":"updatedAt"}' >/dev/null
wait_for 20 count_ge copy $((copy0 + 1)) ||
	fail "the job stopped after the valid reload"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit code $? after SIGTERM"
