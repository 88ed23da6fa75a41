# An answer larger than the page asked for is refused before any of its records is looked at
# (D1: an 8 MiB page of 600,000 records for a page of 2 held the loop for 100 s and wedged the
# job):
# 1. a source that ignores _limit (sampleapp fault ignore_limit) answers 5000 records for a
#    page of 2: the run fails at once, naming the job, the URL, the count and the size; the
#    run row is 'failed', nothing is delivered, no watermark, seen set or retry queue entry is
#    written; another job of the same daemon keeps running and /healthz answers;
# 2. without {{limit}} in the request (page.style none) the bound is source.page.max_records:
#    150 records with a bound of 100 fail the same way, with 150 the job syncs them all.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state); DEST=$(new_db dest)
. "$(dirname "$0")/common.inc"
dest_table
sql "$DEST" 'CREATE TABLE other (id int PRIMARY KEY, name text)'
sa_start
sa POST /_ctl/gen '{"coll":"contacts","n":5000}' >/dev/null
sa POST /_ctl/gen '{"coll":"other","n":3}' >/dev/null
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","ignore_limit":true}' >/dev/null
ST=127.0.0.1:$(free_port)
PAGE=2
EXTRA_JOB=", { name = \"other\"; strategy = \"capture\"; key = \"id\"; interval = \"1s\";
	source = { type = \"http\"; url = \"$SA/api/other\"; };
	destination = { type = \"postgresql\"; conninfo = \"$DEST\"; table = \"other\";
		columns = { id = \"id\"; name = \"name\"; }; }; }"
write_conf "$T/a.conf"
sed -i "s|^daemon = { |daemon = { status_listen = \"$ST\"; |" "$T/a.conf"
daemon_start "$T/a.conf"
runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND result = '$2'"; }
ended() { [ "$(runs contacts failed)" -ge 1 ]; }
wait_for 60 ended || fail "no failed run of contacts: $(last_run "result, error")"
want="job contacts: GET $SA/api/contacts?updatedAt_gte=&_sort=updatedAt%2Cid&_order=asc%2Casc&_page=1&_limit=2 answered 5000 records for a page of 2: the source ignores the page size"
err=$(last_run error)
case $err in *"answered 5000 records for a page of 2: the source ignores the page size"*) ;;
*) fail "run error: '$err' (wanted something like '$want')" ;; esac
case $err in *"job contacts: GET $SA/api/contacts?"*) ;; *) fail "run error names no job/URL: $err" ;; esac
grep -q "answered 5000 records for a page of 2" "$T/daemon.log" || fail "not logged"
[ "$(runs contacts running)" = 0 ] || fail "a run of contacts left 'running'"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts')" = 0 ] || fail "records delivered"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.jobs WHERE name = 'contacts' AND watermark IS NOT NULL")" = 0 ] ||
	fail "a watermark was checkpointed"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.seen WHERE job = 'contacts'")" = 0 ] || fail "seen set written"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts'")" = 0 ] || fail "retry queue written"
# the other job goes on: two more runs end ok after the failure, and /healthz answers
n0=$(runs other ok)
more_ok() { [ "$(runs other ok)" -ge $((n0 + 2)) ]; }
wait_for 30 more_ok || fail "job other did not keep running ($(runs other ok) ok runs, was $n0)"
[ "$(sql "$DEST" 'SELECT count(*) FROM other')" = 3 ] || fail "job other delivered nothing"
[ "$(curl -s --max-time 5 "http://$ST/healthz")" = ok ] || fail "/healthz does not answer ok"
kill "$D_PID"; wait "$D_PID" 2>/dev/null
note "a page of 5000 records for a page of 2 fails the run; the other job and /healthz go on"

# 2. page.style none: no {{limit}} is sent, source.page.max_records bounds the answer
sa POST /_ctl/gen '{"coll":"flat","n":150}' >/dev/null
cat >"$T/b.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = ( { name = "flat"; strategy = "modified"; key = "id"; modified = { field = "updatedAt"; };
	source = { type = "http"; url = "$SA/api/flat"; page = { max_records = MAX; }; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "contacts";
		columns = { id = "id"; name = "name"; email = "email"; amount = "amount";
			    updatedAt = "updatedAt"; v = "v"; }; }; } );
CONF
sed 's/MAX/100/' "$T/b.conf" >"$T/b100.conf"
sed 's/MAX/150/' "$T/b.conf" >"$T/b150.conf"
once "$T/b100.conf"; rc=$?
[ "$rc" != 0 ] || fail "--once with 150 records over max_records 100 exited 0"
err=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'flat' ORDER BY id DESC LIMIT 1")
case $err in "job flat: GET $SA/api/flat answered 150 records, more than source.page.max_records (100)") ;;
*) fail "run error: $err" ;; esac
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts')" = 0 ] || fail "records delivered over the bound"
once "$T/b150.conf" || fail "--once with 150 records within max_records 150 exited $?"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts')" = 150 ] || fail "not all 150 records delivered"
note "page.style none: 150 records over max_records 100 fail the run, within 150 they sync"
