# A run that fails for a reason of its own must not count as throttled because its
# error text says "... by budget NAME". Job 1 is under the budget "sample" and is really
# refused (a long window used up, so the refusal lasts an hour); job 2 is under no budget
# at all: its source (hostile data) has one record whose key is "x by budget sample", and
# its destination answers 500. Job 2's run must count as "failed", not "throttled" for an hour.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
job() {	# job N
	echo "{ name = \"job$1\"; strategy = \"modified\"; key = \"id\";
	  modified = { field = \"updatedAt\"; sorted = true; };
	  source = { url = \"$SA/api/s$1\"; page = { style = \"page\"; size = 5; };
		query = [ \"updatedAt_gte={{watermark}}\", \"_sort=updatedAt,id\", \"_page={{page}}\", \"_limit={{limit}}\" ]; };
	  destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/d$1/{{key}}\"; body = \"{{record}}\"; }; }"
}
cat >"$T/c.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; };
defaults = { interval = "1h"; retries = 0; };
budgets = ( { name = "sample"; match = [ "$SA/api/s1" ]; rate = [ "100/1s", "3/1h" ]; park_after = "1s"; } );
jobs = ( $(job 1), $(job 2) );
C
sa POST /_ctl/gen '{"coll":"s1","n":20}' >/dev/null
sa POST /api/s2 '{"id":"x by budget sample","name":"n","updatedAt":"2026-01-01T00:00:00Z","v":1}' >/dev/null
# job 2's destination fails after 2 s (job 1 has been refused by then)
sa POST /_ctl/fault '{"coll":"d2","method":"PUT","status":500,"delay_ms":2000}' >/dev/null
once "$T/c.conf"
r1=$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'job1' ORDER BY id DESC LIMIT 1")
r2=$(sql "$STATE" "SELECT result FROM onesync.runs WHERE job = 'job2' ORDER BY id DESC LIMIT 1")
e2=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job2' ORDER BY id DESC LIMIT 1")
note "job1 (under the budget): $r1; job2 (under no budget, its destination failing): $r2: $e2"
[ "$r1" = throttled ] || fail "job1 was not throttled ($r1): the setup is wrong"
[ "$r2" = failed ] || fail "job2, under no budget, failed (HTTP 500) and its run counts as '$r2'; next run: $(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'job2' ORDER BY id DESC LIMIT 1")"
