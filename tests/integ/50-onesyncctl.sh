# onesyncctl against a real state: a modified job with 3 refused records, then every command
# in text and --json: jobs, runs, failures (--dead), retry (all / given keys; the next run
# delivers them), pause/resume, run (run_requested_at and the NOTIFY), reset (refused without
# a TTY and --yes, the watermark and the seen set gone, the 'reset' row naming the user, the
# queue kept unless --failures), and the exit codes: unknown job 1, usage 64, unreachable
# state database 69, bad configuration 78.
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":50}' >/dev/null
sa POST /_ctl/gen '{"coll":"leads","n":5}' >/dev/null
job() {	# job NAME COLL DEST-COLL
	cat <<JOB
	{ name = "$1"; strategy = "modified"; key = "id";
	  modified = { field = "updatedAt"; sorted = true; };
	  source = { type = "http"; url = "$SA/api/$2";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = 20; }; };
	  destination = { type = "http"; method = "PUT"; url = "$SA/api/$3/{{key}}"; body = "{{record}}"; }; }
JOB
}
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; max_attempts = 3; };
jobs = ( $(job contacts contacts customers), $(job other leads prospects) );
CONF
ctl() { "$CTL" -c "$T/c.conf" "$@"; }
# jsonq FILE EXPR: evaluate a Python expression on the parsed JSON (bound to j); prints it
jsonq() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
expect() {	# expect WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got '$2', expected '$3'"
}

# --- version, help, usage
ctl --version | grep -q '^onesyncctl [0-9]' || fail "--version"
ctl --help | grep -q 'usage: onesyncctl' || fail "--help"
"$CTL" >/dev/null 2>&1; expect "no command: exit" $? 64
ctl frobnicate >/dev/null 2>&1; expect "unknown command: exit" $? 64
ctl runs >/dev/null 2>&1; expect "runs without a job: exit" $? 64
ctl runs contacts -n 0 >/dev/null 2>&1; expect "-n 0: exit" $? 64
ctl jobs --dead >/dev/null 2>&1; expect "--dead with jobs: exit" $? 64
ctl pause contacts extra >/dev/null 2>&1; expect "extra argument: exit" $? 64

# --- before the daemon ever ran: no schema yet
ctl jobs >"$T/out" 2>"$T/err"; expect "jobs without a schema: exit" $? 0
grep -q '^contacts  *modified  *never run' "$T/out" || fail "jobs without a schema: $(cat "$T/out")"
ctl pause contacts >/dev/null 2>"$T/err"; expect "pause without a schema: exit" $? 1
grep -q 'does not exist yet' "$T/err" || fail "pause without a schema says: $(cat "$T/err")"

# --- a run with 3 refused records
sa POST /_ctl/fault '{"coll":"customers","method":"PUT","keys":[10,20,30],"status":422,"body":"{\"error\":\"email rejected\"}"}' >/dev/null
once "$T/c.conf" contacts || fail "run with refusals exited $?"
WM=$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")
[ -n "$WM" ] || fail "no watermark after the first run"

# --- jobs
ctl jobs >"$T/out" || fail "jobs exited $?"
cat "$T/out" >&2
head -1 "$T/out" | grep -q '^JOB  *STRATEGY  *STATE  *LEASE  *EPOCH  *WATERMARK  *LAST RUN  *QUEUE  *DEAD  *UNMARKED$' ||
	fail "jobs header: $(head -1 "$T/out")"
grep -q "^contacts  *modified  *ok  *- .* $WM  *#[0-9]* ok [0-9]*[smhd] ago  *3  *0  *0$" "$T/out" ||
	fail "jobs line for contacts: $(grep contacts "$T/out")"
grep -q '^other  *modified  *never run  *-' "$T/out" || fail "jobs line for other: $(grep other "$T/out")"
# aligned: the STATE column starts at the same place on every line
[ "$(awk '{ print index($0, $3) }' "$T/out" | sort -u | wc -l)" = 1 ] || fail "jobs columns are not aligned"
ctl --json jobs >"$T/j" || fail "jobs --json exited $?"
expect "jobs --json" "$(jsonq "$T/j" '[(x["name"], x["strategy"], x["state"], x["retry_queue"], x["dead"], x["unmarked"], x["last_run"] and x["last_run"]["result"], x["lease_live"]) for x in j]')" \
	"[('contacts', 'modified', 'ok', 3, 0, 0, 'ok', False), ('other', 'modified', 'never_run', 0, 0, 0, None, False)]"
expect "jobs --json watermark" "$(jsonq "$T/j" 'j[0]["watermark"]')" "$WM"
jsonq "$T/j" 'j[0]["last_run"]["finished_at"]' | grep -Eq '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+-][0-9:]+$' ||
	fail "finished_at is not an ISO timestamp: $(jsonq "$T/j" 'j[0]["last_run"]["finished_at"]')"
jsonq "$T/j" '[k for x in j for k in x if k.startswith("_")]' | grep -q '^\[\]$' || fail "private fields leak into JSON"

# --- runs
ctl runs contacts >"$T/out" || fail "runs exited $?"
cat "$T/out" >&2
head -1 "$T/out" | grep -q '^ *ID  *INSTANCE  *EPOCH  *STARTED  *DURATION  *RESULT  *READ  *DELIVERED  *SKIPPED  *FAILED  *WATERMARK AFTER  *ERROR$' ||
	fail "runs header: $(head -1 "$T/out")"
grep -Eq "^ *[0-9]+  .* 1  [0-9-]+ [0-9:]+  +[0-9.]+m?s  ok  +5[0-9]  +47  +[0-9]+  +3  $WM  +-\$" "$T/out" ||
	fail "runs line: $(tail -1 "$T/out")"
ctl runs contacts --json >"$T/j" || fail "runs --json exited $?"
# seek pagination re-reads the records at each page's last timestamp (skipped, not delivered)
expect "runs --json" "$(jsonq "$T/j" '[(r["result"], r["read"] >= 50, r["read"] - r["skipped"], r["delivered"], r["failed"], r["watermark_after"], r["epoch"]) for r in j]')" \
	"[('ok', True, 50, 47, 3, '$WM', 1)]"
jsonq "$T/j" 'j[0]["duration_s"] >= 0 and j[0]["started_at"] < j[0]["finished_at"] or j[0]["started_at"] == j[0]["finished_at"]' | grep -q True || fail "runs --json duration/times"
ctl runs other --json >"$T/j" || fail "runs of a job never run exited $?"
expect "runs of a job never run" "$(jsonq "$T/j" 'j')" "[]"

# --- failures
ctl failures contacts >"$T/out" || fail "failures exited $?"
cat "$T/out" >&2
head -1 "$T/out" | grep -q '^KEY  *ATTEMPTS  *DEAD  *FIRST FAILED  *LAST FAILED  *NEXT RETRY  *LAST ERROR$' || fail "failures header: $(head -1 "$T/out")"
expect "failures keys" "$(tail -n +2 "$T/out" | awk '{ print $1 ":" $2 ":" $3 }' | sort | tr '\n' ' ')" "10:1:no 20:1:no 30:1:no "
grep -q 'due .*422.*email rejected' "$T/out" || fail "failures text lacks the due time or the error"
sql "$STATE" "UPDATE onesync.failures SET dead = true, attempts = 3 WHERE key = '30';
	UPDATE onesync.failures SET next_retry_at = now() + interval '1 day'"
ctl failures contacts --json >"$T/j" || fail "failures --json exited $?"
expect "failures --json" "$(jsonq "$T/j" 'sorted((f["key"], f["attempts"], f["dead"], "email rejected" in f["last_error"], f["payload"]["id"]) for f in j)')" \
	"[('10', 1, False, True, 10), ('20', 1, False, True, 20), ('30', 3, True, True, 30)]"
sql "$STATE" "UPDATE onesync.failures SET payload = payload || '{\"_id\": \"m1\"}' WHERE key = '10'"
ctl failures contacts --json >"$T/j"
expect "a payload keeps its _id" "$(jsonq "$T/j" '[f["payload"].get("_id") for f in j if f["key"] == "10"]')" "['m1']"
ctl failures contacts --dead --json >"$T/j" || fail "failures --dead exited $?"
expect "failures --dead" "$(jsonq "$T/j" '[f["key"] for f in j]')" "['30']"
ctl failures contacts >"$T/out"
grep -q '^10 .* in 2[34]h ' "$T/out" || fail "failures: next retry of 10 is not 'in 23h': $(grep '^10 ' "$T/out")"
ctl --json jobs >"$T/j"
expect "jobs queue/dead" "$(jsonq "$T/j" '(j[0]["retry_queue"], j[0]["dead"])')" "(2, 1)"

# --- retry: given keys (one unknown), then all; dead ones come back, attempts are kept
ctl retry contacts 10 99 >"$T/out" 2>"$T/err"; expect "retry with an unknown key: exit" $? 1
grep -q '99' "$T/err" || fail "retry does not name the missing key: $(cat "$T/err")"
grep -q '^1 record of job contacts is due now' "$T/out" || fail "retry says: $(cat "$T/out")"
expect "retried 10" "$(sql "$STATE" "SELECT string_agg(key || ':' || (next_retry_at <= now()) || ':' || dead, ',' ORDER BY key) FROM onesync.failures")" \
	"10:true:false,20:false:false,30:false:true"
ctl retry contacts --json >"$T/j" || fail "retry all exited $?"
expect "retry --json" "$(jsonq "$T/j" '(j["job"], j["retried"], sorted(j["keys"]), j["missing"])')" "('contacts', 3, ['10', '20', '30'], [])"
expect "retried all" "$(sql "$STATE" "SELECT string_agg(key || ':' || attempts || ':' || (next_retry_at <= now()) || ':' || dead, ',' ORDER BY key) FROM onesync.failures")" \
	"10:1:true:false,20:1:true:false,30:3:true:false"
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" contacts || fail "retry run exited $?"
expect "queue after the retry run" "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" 0
same_colls contacts customers id,name,email,amount,updatedAt || fail "destination differs after the retries"
ctl runs contacts -n 1 --json >"$T/j"
expect "runs -n 1" "$(jsonq "$T/j" '(len(j), j[0]["delivered"], j[0]["failed"])')" "(1, 3, 0)"

# --- pause / resume (a job never run gets its row)
ctl pause other >"$T/out" || fail "pause exited $?"
grep -q 'job other paused' "$T/out" || fail "pause says: $(cat "$T/out")"
expect "paused" "$(sql "$STATE" "SELECT paused FROM onesync.jobs WHERE name = 'other'")" t
ctl pause other --json >"$T/j" || fail "pause again exited $?"
expect "pause again --json" "$(jsonq "$T/j" '(j["job"], j["paused"], j["changed"])')" "('other', True, False)"
ctl --json jobs >"$T/j"
expect "paused state" "$(jsonq "$T/j" 'j[1]["state"]')" paused
ctl jobs | grep -q '^other  *modified  *paused ' || fail "jobs text does not show paused"
ctl resume other --json >"$T/j" || fail "resume exited $?"
expect "resume --json" "$(jsonq "$T/j" '(j["paused"], j["changed"])')" "(False, True)"
expect "resumed" "$(sql "$STATE" "SELECT paused FROM onesync.jobs WHERE name = 'other'")" f

# --- run: run_requested_at and a NOTIFY on onesync_run with the job's name
psql -X -q "$STATE" -v ON_ERROR_STOP=1 >"$T/listen.out" 2>&1 <<'SQL' &
SET application_name = 'ctl_listener';
LISTEN onesync_run;
SELECT pg_sleep(4);
SELECT 1;
SQL
LPID=$!; PIDS+=("$LPID")
listening() { [ "$(sql "$STATE" "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ctl_listener' AND query LIKE 'SELECT pg_sleep%'")" = 1 ]; }
wait_for 10 listening || fail "the listener did not start"
ctl run contacts >"$T/out" || fail "run exited $?"
grep -q 'run of job contacts requested' "$T/out" || fail "run says: $(cat "$T/out")"
expect "run_requested_at set" "$(sql "$STATE" "SELECT run_requested_at > now() - interval '1 minute' FROM onesync.jobs WHERE name = 'contacts'")" t
wait "$LPID"
grep -q 'notification "onesync_run" with payload "contacts"' "$T/listen.out" || fail "no NOTIFY: $(cat "$T/listen.out")"
ctl run contacts --json >"$T/j" || fail "run --json exited $?"
expect "run --json" "$(jsonq "$T/j" '(j["job"], j["paused"], j["run_requested_at"] is not None)')" "('contacts', False, True)"

# --- reset
sql "$STATE" "INSERT INTO onesync.failures (job, key, attempts, last_error) VALUES ('contacts', '7', 1, 'kept')"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.seen WHERE job = 'contacts'")" -gt 0 ] || fail "no seen rows before the reset"
ctl reset contacts </dev/null >"$T/out" 2>"$T/err"; expect "reset without a TTY nor --yes: exit" $? 64
grep -q -- '--yes' "$T/err" || fail "reset refusal says: $(cat "$T/err")"
expect "watermark kept after the refusal" "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")" "$WM"
# on a terminal: a wrong name changes nothing, the right one resets
echo wrong | script -qec "$CTL -c $T/c.conf reset contacts" /dev/null >"$T/tty.out" 2>&1; rc=$?
[ "$rc" = 1 ] || fail "reset with a wrong confirmation: exit $rc: $(cat "$T/tty.out")"
grep -q 'Type the job name to confirm' "$T/tty.out" || fail "no prompt on the terminal: $(cat "$T/tty.out")"
expect "watermark kept after a wrong name" "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")" "$WM"
echo contacts | SUDO_USER=alice script -qec "$CTL -c $T/c.conf reset contacts" /dev/null >"$T/tty.out" 2>&1 ||
	fail "reset confirmed on a terminal exited $?: $(cat "$T/tty.out")"
grep -q 'job contacts reset' "$T/tty.out" || fail "reset says: $(cat "$T/tty.out")"
expect "after reset" "$(sql "$STATE" "SELECT coalesce(watermark, 'NULL') || ':' || coalesce(watermark_ns::text, 'NULL') || ':' || coalesce(watermark_key, 'NULL') FROM onesync.jobs WHERE name = 'contacts'")" "NULL:NULL:NULL"
expect "seen after reset" "$(sql "$STATE" "SELECT count(*) FROM onesync.seen WHERE job = 'contacts'")" 0
expect "failures kept by reset" "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts'")" 1
expect "reset row" "$(sql "$STATE" "SELECT result || '|' || instance || '|' || epoch || '|' || error || '|' || watermark_before || '|' || (finished_at IS NOT NULL) FROM onesync.runs WHERE job = 'contacts' ORDER BY id DESC LIMIT 1")" \
	"reset|onesyncctl:alice@$(hostname)|0|reset by alice|$WM|true"
ctl runs contacts -n 1 | grep -q ' reset .*reset by alice' || fail "runs does not show the reset"
SUDO_USER= ctl reset contacts --failures --yes --json >"$T/j" || fail "reset --failures --yes exited $?"
expect "reset --json" "$(jsonq "$T/j" '(j["job"], j["by"], j["failures_deleted"], j["watermark_before"], j["fenced_run"])')" "('contacts', '$(id -un)', 1, None, None)"
expect "failures after reset --failures" "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts'")" 0
expect "reset by the real user" "$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'contacts' ORDER BY id DESC LIMIT 1")" "reset by $(id -un)"
once "$T/c.conf" contacts || fail "run after the reset exited $?"
expect "the run after the reset reads everything" "$(sql "$STATE" "SELECT delivered || ':' || result FROM onesync.runs WHERE job = 'contacts' ORDER BY id DESC LIMIT 1")" "50:ok"
expect "watermark after the reset run" "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")" "$WM"
ctl --json jobs >"$T/j"
expect "jobs after the reset" "$(jsonq "$T/j" '(j[0]["state"], j[0]["last_run"]["result"])')" "('ok', 'ok')"

# --- a live lease and a run in flight: jobs and runs show them; reset fences the run out
E=$(sql "$STATE" "UPDATE onesync.jobs SET owner = 'far:1', lease_until = now() + interval '3 s', epoch = epoch + 1
	WHERE name = 'contacts' RETURNING epoch")
R=$(sql "$STATE" "INSERT INTO onesync.runs (job, instance, epoch) VALUES ('contacts', 'far:1', $E) RETURNING id")
ctl jobs | grep -q "^contacts  *modified  *ok  *far:1 (live)  *$E  *$WM  *#$R running [0-9]*s ago " ||
	fail "jobs with a live lease and a run in flight: $(ctl jobs | grep contacts)"
ctl runs contacts -n 1 | grep -Eq "^ *$R  far:1  +$E  .*[0-9.]+m?s\+  running " || fail "runs in flight: $(ctl runs contacts -n 1)"
ctl reset contacts --yes --json >"$T/j" || fail "reset with a run in flight exited $?"
expect "reset fenced" "$(jsonq "$T/j" 'j["fenced_run"]')" "$R"
# the holder is fenced (new epoch) but keeps its lease until it lapses: nobody else starts a
# run while its fenced run may still deliver; the run's row stays 'running', marked fenced
expect "lease after the fencing reset" "$(sql "$STATE" "SELECT coalesce(owner, '-') || ':' || (epoch = $E + 1) FROM onesync.jobs WHERE name = 'contacts'")" "far:1:true"
expect "the fenced run" "$(sql "$STATE" "SELECT result || ':' || (error LIKE 'fenced out: job reset by %') FROM onesync.runs WHERE id = $R")" "running:true"
sql "$STATE" "SELECT onesync.fence('contacts', 'far:1', $E)" >/dev/null 2>&1 && fail "the fenced-out writer still passes the fence"
wait_for 15 once "$T/c.conf" contacts || fail "no run after the fencing reset once the lease lapsed"
expect "the fenced run, closed by the next run" "$(sql "$STATE" "SELECT result || ':' || (error LIKE 'fenced out: job reset by %') FROM onesync.runs WHERE id = $R")" "abandoned:true"
expect "watermark after the fencing reset" "$(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'contacts'")" "$WM"

# --- with a daemon running: reset and run; the first run after the reset (the daemon's own
# first one or the requested one) reads everything again; then the daemon's lease shows live
daemon_start "$T/c.conf"
ctl reset contacts --yes --json >"$T/j" || fail "reset with the daemon running exited $?"
RID=$(jsonq "$T/j" 'j["run"]')
ctl run contacts >"$T/out" || fail "run with the daemon running exited $?"
grep -q 'run of job contacts requested' "$T/out" || fail "run says: $(cat "$T/out")"
after() { sql "$STATE" "SELECT $1 FROM onesync.runs WHERE job = 'contacts' AND id > $RID AND result = 'ok' ORDER BY id LIMIT 1"; }
ran_after() { [ -n "$(after id)" ]; }
wait_for 20 ran_after || fail "no run after the reset and the run-now request"
expect "the first run after the reset delivers everything" "$(after delivered)" 50
taken() { [ "$(sql "$STATE" "SELECT run_requested_at IS NULL FROM onesync.jobs WHERE name = 'contacts'")" = t ]; }
wait_for 15 taken || fail "the run-now request was not taken"
wait_for 10 sh -c "'$CTL' -c '$T/c.conf' jobs | grep -q '^contacts .* (live) '" || fail "jobs does not show the daemon's live lease: $(ctl jobs)"
kill -TERM "$D_PID"; wait "$D_PID" || fail "the daemon exited $? after SIGTERM"

# --- unknown job: 1 and the configured names; a job only in state is still known
for c in "runs nope" "failures nope" "retry nope" "reset nope --yes" "run nope" "pause nope" "resume nope"; do
	ctl $c >/dev/null 2>"$T/err"; rc=$?
	[ "$rc" = 1 ] || fail "$c: exit $rc"
	grep -q 'no job named nope (configured jobs: contacts, other)' "$T/err" || fail "$c says: $(cat "$T/err")"
done
sql "$STATE" "INSERT INTO onesync.jobs (name, watermark) VALUES ('retired', 'w1')"
ctl runs retired >/dev/null || fail "a job only in state is unknown to runs"
ctl --json jobs >"$T/j"
expect "a job only in state" "$(jsonq "$T/j" '[(x["name"], x["configured"], x["strategy"]) for x in j][2]')" "('retired', False, None)"
ctl jobs | grep -q '^retired  *-  *never run ' || fail "jobs text for a job only in state: $(ctl jobs | grep retired)"

# --- every command's --json parses
for c in "jobs" "runs contacts" "failures contacts" "failures contacts --dead" "retry contacts" \
	"pause other" "resume other" "run other" "reset other --yes"; do
	ctl --json $c >"$T/j" || fail "$c --json exited $?"
	python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/j" || fail "$c --json does not parse: $(cat "$T/j")"
done

# --- unreachable state database: 69, and the password stays out of the message
cat >"$T/down.conf" <<CONF
state = { conninfo = "host=127.0.0.1 port=1 user=x password=sekret dbname=x"; connect_timeout = "2s"; };
jobs = ( $(job contacts contacts customers) );
CONF
"$CTL" -c "$T/down.conf" jobs >/dev/null 2>"$T/err"; expect "unreachable: exit" $? 69
grep -q 'cannot connect to the state database' "$T/err" || fail "unreachable says: $(cat "$T/err")"
grep -q sekret "$T/err" && fail "the password is printed: $(cat "$T/err")"
"$CTL" -c "$T/down.conf" pause contacts >/dev/null 2>&1; expect "unreachable pause: exit" $? 69

# --- bad configuration: 78 with FILE:LINE; a missing file too
printf 'state = { conninfo = "%s"; };\njobs = ( { name = ; } );\n' "$STATE" >"$T/bad.conf"
"$CTL" -c "$T/bad.conf" jobs >/dev/null 2>"$T/err"; expect "bad config: exit" $? 78
grep -q "bad.conf:2" "$T/err" || fail "bad config says: $(cat "$T/err")"
"$CTL" -c "$T/missing.conf" jobs >/dev/null 2>&1; expect "missing config: exit" $? 78
exit 0
