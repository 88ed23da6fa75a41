# A request that libcurl refuses to start (here: a destination URL longer than the 8 MB
# libcurl accepts) is answered like any failed request, on a later loop turn: the batch
# does not wait for it forever; the record is refused into the retry queue with a readable
# error and the others of its batch are delivered.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
python3 - "$T/recs.json" <<'PY'
import json, sys
recs = [{"id": i, "name": f"n{i}", "big": "x"} for i in range(1, 11)]
recs[4]["big"] = "y" * (8 * 1024 * 1024 + 100)
json.dump(recs, open(sys.argv[1], "w"))
PY
curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' --data-binary @"$T/recs.json" \
	"$SA/_ctl/load?coll=contacts&key=id" >/dev/null || fail "load"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; };
jobs = ( { name = "contacts"; strategy = "capture"; key = "id"; batch = 10; run_timeout = "30s";
	source = { type = "http"; url = "$SA/api/contacts"; max_bytes = 100000000; };
	destination = { type = "http"; url = "$SA/api/copy/{{key}}?b={{record.big}}";
		body = "{ \"id\": {{record.id}}, \"name\": {{record.name}} }"; }; } );
CONF
daemon_start "$T/c.conf"
done_run() { [ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = 'contacts' AND result <> 'running'")" -ge 1 ]; }
wait_for 40 done_run || fail "the run never ended"
res=$(sql "$STATE" "SELECT result || ': ' || coalesce(error, '') FROM onesync.runs WHERE job = 'contacts' ORDER BY id LIMIT 1")
[ "$res" = "ok: " ] || fail "the run ended $res"
n=$(sa GET /_ctl/stats?coll=copy | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
[ "$n" = 9 ] || fail "$n records delivered, expected the 9 others"
err=$(sql "$STATE" "SELECT key || ': ' || last_error FROM onesync.failures WHERE job = 'contacts'")
case $err in "5: "*"could not be sent"*) ;; *) fail "the refused record is not queued with a readable error: $err";; esac
note "queued: ${err:0:160}"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit code $? after SIGTERM"
exit 0
