# A source that ignores the watermark filter (issue 12 item 5: with modified.sorted a first
# sync of 100,000 records read 10.3 million and delivered 5.1 million): a seek request whose
# answer holds records below the bound it asked from fails the run at once, naming the job
# and the filter parameter, and nothing of that page is delivered.
# 1. first sync (sampleapp fault ignore_filter: range filters ignored): the first request has
#    no bound and goes; the second, asked from page 1's last timestamp, answers page 1 again:
#    the run fails after 2 requests; the watermark is none or page 1's (its checkpoint may
#    land first), at most page 1 is in the destination;
# 2. a later run, the watermark stored: its first request fails the run; the watermark stays,
#    no change is delivered;
# 3. legitimate answers go: a record equal to the bound, and one below it by less than a
#    second (a source that compares by whole seconds); one a second below fails.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/common.inc"
sa_start
STATE=$(new_db state); DEST=$(new_db dest); dest_table
PAGE=100
write_conf "$T/c.conf"
wm() { sql "$STATE" "SELECT coalesce(watermark, '(none)') FROM onesync.jobs WHERE name = '$1'"; }
gets() {
	sa GET /_ctl/requests | /usr/bin/python3 -c 'import json,sys
print(sum(1 for q in json.load(sys.stdin)["requests"] if q["method"] == "GET" and q["uri"].startswith("/api/" + sys.argv[1])))' "$1"
}
ignores() {
	case $(last_run "result || '|' || coalesce(error, '')") in
	"failed|"*"job contacts: GET $SA/api/contacts?updatedAt_gte="*"answered record"*"the source ignores the filter parameter 'updatedAt_gte' (source.query)"*) ;;
	*) fail "$1: run $(last_run "result || '|' || coalesce(error, '')")" ;; esac
	grep -q "job=contacts .*the source ignores the filter parameter 'updatedAt_gte'" "$T/daemon.log" ||
		fail "$1: not logged"
}
# ignored WHAT N: a run against the source ignoring the filter fails after N list requests
ignored() {
	sa POST /_ctl/fault '{"coll":"contacts","method":"GET","ignore_filter":true}' >/dev/null
	sa DELETE /_ctl/requests >/dev/null
	once "$T/c.conf"; rc=$?
	[ "$rc" = 1 ] || fail "$1: exited $rc, want 1"
	ignores "$1"
	[ "$(gets contacts)" = "$2" ] || fail "$1: $(gets contacts) GET requests, want $2"
}

# 1. first sync against a source that ignores the filter
sa POST /_ctl/gen '{"coll":"contacts","n":1000}' >/dev/null
ignored "first sync" 2
case $(wm contacts) in "(none)"|2026-01-01T00:01:40.000Z) ;; *) fail "watermark $(wm contacts)" ;; esac
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts WHERE id > 100')" = 0 ] || fail "records past page 1 delivered"
note "first sync: the seek request that answers page 1 again fails the run after 2 requests"

# 2. a later run: the first request carries the stored watermark
sa DELETE /_ctl/fault >/dev/null
once "$T/c.conf" || fail "the sync with a working source exited $?"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts')" = 1000 ] || fail "not 1000 rows"
w=$(wm contacts)
[ "$w" = 2026-01-01T00:16:40.000Z ] || fail "watermark $w after the full sync"
sa POST /_ctl/mutate '{"coll":"contacts","after_gets":0,"touch":10}' >/dev/null
ignored "second run" 1
[ "$(wm contacts)" = "$w" ] || fail "watermark moved to $(wm contacts)"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts WHERE v > 1')" = 0 ] || fail "a change was delivered"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts'")" = 0 ] || fail "retry queue written"
note "a later run: its first request fails the run, the watermark stays at $w"

# 3. what a source that applies the filter may answer: the bound asked from is the watermark,
#    2026-01-01T00:16:40.000Z; the answer is one short page (the read ends with it)
rec() { echo "{\"id\":$1,\"name\":\"n$1\",\"v\":3,\"updatedAt\":\"$2\"}"; }
sa DELETE /_ctl/fault >/dev/null
sa POST /_ctl/fault "{\"coll\":\"contacts\",\"method\":\"GET\",\"status\":200,\"body\":[$(rec 1000 2026-01-01T00:16:40.000Z),$(rec 5 2026-01-01T00:16:40.000001Z),$(rec 6 2026-01-01T00:16:41.5Z)]}" >/dev/null
once "$T/c.conf" || fail "equal to the bound: exited $?"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts WHERE v = 3')" = 3 ] || fail "equal to the bound: not delivered"
[ "$(wm contacts)" = 2026-01-01T00:16:41.5Z ] || fail "equal to the bound: watermark $(wm contacts)"
sa DELETE /_ctl/fault >/dev/null
sa POST /_ctl/fault "{\"coll\":\"contacts\",\"method\":\"GET\",\"status\":200,\"body\":[$(rec 7 2026-01-01T00:16:41.2Z),$(rec 8 2026-01-01T00:16:42Z)]}" >/dev/null
once "$T/c.conf" || fail "below by less than a second: exited $?"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts WHERE v = 3')" = 5 ] || fail "below by less than a second: not delivered"
[ "$(wm contacts)" = 2026-01-01T00:16:42Z ] || fail "below by less than a second: watermark $(wm contacts)"
note "records equal to the bound, or below it within its second, are taken"
sa DELETE /_ctl/fault >/dev/null
sa POST /_ctl/fault "{\"coll\":\"contacts\",\"method\":\"GET\",\"status\":200,\"body\":[$(rec 9 2026-01-01T00:16:41.999Z),$(rec 10 2026-01-01T00:16:43Z)]}" >/dev/null
once "$T/c.conf"; rc=$?
[ "$rc" = 1 ] || fail "a second below: exited $rc, want 1"
ignores "a second below"
[ "$(wm contacts)" = 2026-01-01T00:16:42Z ] || fail "a second below: watermark moved to $(wm contacts)"
[ "$(sql "$DEST" 'SELECT count(*) FROM contacts WHERE v = 3')" = 5 ] || fail "a second below: delivered"
note "a record a second below the bound fails the run; nothing of the page goes"
