# 200 jobs on one instance run concurrently on the single loop thread: their runs overlap.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
{
	echo "state = { conninfo = \"$STATE\"; connections = 8; };"
	echo "daemon = { max_runs = 200; };"
	echo "defaults = { interval = \"1h\"; retries = 0; };"
	echo "jobs = ("
	for i in $(seq 200); do
		sa POST /_ctl/gen "{\"coll\":\"s$i\",\"n\":5}" >/dev/null
		[ "$i" -gt 1 ] && echo ","
		echo "{ name = \"job$i\"; strategy = \"modified\"; key = \"id\"; modified = { field = \"updatedAt\"; };
		  source = { url = \"$SA/api/s$i\"; query = { updatedAt_gte = \"{{watermark}}\"; }; };
		  destination = { type = \"http\"; url = \"$SA/api/d$i/{{key}}\"; }; }"
	done
	echo ");"
} >"$T/c.conf"
sa POST /_ctl/fault '{"method":"GET","delay_ms":1000}' >/dev/null
once "$T/c.conf" || fail "--once exited $?"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE result = 'ok'")" = 200 ] || fail "not 200 successful runs"
overlap=$(sql "$STATE" "SELECT max(c) FROM (SELECT (SELECT count(*) FROM onesync.runs b
	WHERE b.started_at <= a.started_at AND b.finished_at > a.started_at) c FROM onesync.runs a) x")
note "at most $overlap runs at once"
[ "$overlap" -ge 150 ] || fail "only $overlap runs overlapped"
for i in 1 7 200; do same_colls "s$i" "d$i" id,name,updatedAt || fail "job$i did not copy"; done
