# While a run pages, the source changes 200 records (new timestamps) and inserts 100 more:
# after one more run the destination equals the source. Ties across pages included.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":5000,"ties":1200,"tie_at":1000}' >/dev/null
# fire inside the tie (page 12 of 100 records is within ids 1000..2199)
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":12,"touch":200,"insert":100,"field":"updatedAt"}' >/dev/null
write_conf "$T/c.conf"
once "$T/c.conf" || fail "first run exited $?"
[ "$(sa GET /_ctl/stats?coll=contacts | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')" = 5100 ] ||
	fail "the mutation did not happen"
once "$T/c.conf" || fail "second run exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs from source after one more run"
# and a trigger late in the run, outside the tie
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":200,"insert":100,"field":"updatedAt"}' >/dev/null
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":2,"touch":200,"insert":100,"field":"updatedAt"}' >/dev/null
once "$T/c.conf" || fail "third run exited $?"
once "$T/c.conf" || fail "fourth run exited $?"
same_rows "$DEST" contacts contacts "$COLS" || fail "destination differs from source"
