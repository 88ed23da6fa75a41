# Strategy modified: a record timestamped far in the future (a typo: year 9999) must not move
# the watermark there, where it would hide every later change. A timestamp later than the
# source's clock (the Date header) plus modified.max_future (default 1d) fails that record,
# with an error naming its key and timestamp; it waits in the retry queue (a replayed retry
# fails the same way) and goes once the source corrects it. Sorted and unsorted reads.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
sa_start
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
for i in 1 2 3; do sa PUT /api/contacts/$i "{\"id\":$i,\"name\":\"n$i\",\"updatedAt\":\"$(now)\",\"v\":1}" >/dev/null; done
sa PUT /api/contacts/4 '{"id":4,"name":"typo","updatedAt":"9999-12-31T00:00:00.000Z","v":1}' >/dev/null
rows() { sql "$DEST" "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM contacts"; }
for sorted in true false; do
	STATE=$(new_db "state$sorted"); DEST=$(new_db "dest$sorted"); dest_table
	SORTED=$sorted write_conf "$T/c.conf"
	once "$T/c.conf" || fail "sorted=$sorted run 1 exited $?"
	case $(last_run watermark_after) in 9999*|"") fail "sorted=$sorted: watermark after run 1: '$(last_run watermark_after)'";; esac
	[ "$(rows)" = "1:n1,2:n2,3:n3" ] || fail "sorted=$sorted run 1: destination $(rows)"
	err=$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE key = '4'")
	case $err in *"record 4: timestamp field 'updatedAt' is 9999-12-31T00:00:00.000Z, more than 1d (modified.max_future) after 20"*"the source's Date header"*) ;;
	*) fail "sorted=$sorted: the failure of record 4 does not name key and timestamp: '$err'";; esac
	grep -q "<4>.*record 4 failed.*9999-12-31" "$T/daemon.log" || fail "sorted=$sorted: no warning for record 4"
	[ "$(last_run failed)" = 1 ] || fail "sorted=$sorted run 1: failed $(last_run failed)"

	# later changes arrive; the retry of record 4 (replayed from its payload) fails again
	sa PUT /api/contacts/2 "{\"id\":2,\"name\":\"n2b\",\"updatedAt\":\"$(now)\",\"v\":2}" >/dev/null
	sa PUT /api/contacts/5 "{\"id\":5,\"name\":\"n5\",\"updatedAt\":\"$(now)\",\"v\":1}" >/dev/null
	once "$T/c.conf" || fail "sorted=$sorted run 2 exited $?"
	[ "$(rows)" = "1:n1,2:n2b,3:n3,5:n5" ] || fail "sorted=$sorted run 2: later changes did not arrive: $(rows)"
	[ "$(sql "$STATE" "SELECT attempts FROM onesync.failures WHERE key = '4'")" -ge 2 ] ||
		fail "sorted=$sorted: record 4 left the retry queue while still in the future"

	# the source corrects it: delivered, its failure cleared
	[ $sorted = true ] && sa PUT /api/contacts/4 "{\"id\":4,\"name\":\"fixed\",\"updatedAt\":\"$(now)\",\"v\":2}" >/dev/null
	[ $sorted = true ] || sa PUT /api/contacts/4 "{\"id\":4,\"name\":\"fixed\",\"updatedAt\":\"$(now)\",\"v\":3}" >/dev/null
	once "$T/c.conf" || fail "sorted=$sorted run 3 exited $?"
	[ "$(rows)" = "1:n1,2:n2b,3:n3,4:fixed,5:n5" ] || fail "sorted=$sorted run 3: $(rows)"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "sorted=$sorted: retry queue not empty"
	# put the typo back for the next pass
	sa PUT /api/contacts/4 '{"id":4,"name":"typo","updatedAt":"9999-12-31T00:00:00.000Z","v":1}' >/dev/null
	sa PUT /api/contacts/2 "{\"id\":2,\"name\":\"n2\",\"updatedAt\":\"$(now)\",\"v\":1}" >/dev/null
	sa DELETE /api/contacts/5 >/dev/null
	note "sorted=$sorted: a year-9999 record fails alone, the watermark stays at $(last_run watermark_after | cut -c1-19)"
done

# a PostgreSQL source: its now() is the clock
SRC=$(new_db src); STATE=$(new_db statepg)
sql "$SRC" "CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
	INSERT INTO items SELECT i, 'n' || i, now() - interval '1 minute' FROM generate_series(1, 3) i;
	INSERT INTO items VALUES (4, 'typo', '9999-12-31 00:00:00+00')"
cat >"$T/pg.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = ( { name = "items"; strategy = "modified"; key = "id"; modified = { field = "updated_at"; };
	source = { type = "postgresql"; conninfo = "$SRC"; table = "items"; page = { size = 2; }; };
	destination = { type = "http"; method = "PUT"; url = "$SA/api/copy/{{key}}"; }; } );
CONF
once "$T/pg.conf" || fail "pg: run 1 exited $?"
case $(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'items'") in 9999*|"")
	fail "pg: watermark $(sql "$STATE" "SELECT watermark FROM onesync.jobs WHERE name = 'items'")";; esac
case $(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'items' AND key = '4'") in
*"record 4: timestamp field 'updated_at' is 9999-12-31"*"after 20"*"the source database's now()"*) ;;
*) fail "pg: failure of record 4: $(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'items'")";; esac
sql "$SRC" "INSERT INTO items VALUES (5, 'later', now())"
once "$T/pg.conf" || fail "pg: run 2 exited $?"
sa GET /api/copy/5 | grep -q later || fail "pg: a later row did not arrive"
note "pg source: the year-9999 row fails, later rows arrive"

# modified.max_future = 0 turns the check off (the old behaviour: the watermark follows)
STATE=$(new_db state0); DEST=$(new_db dest0); dest_table
MOD_EXTRA='max_future = "0";' write_conf "$T/c.conf"
once "$T/c.conf" || fail "max_future=0 exited $?"
case $(last_run watermark_after) in 9999*) ;; *) fail "max_future=0: watermark $(last_run watermark_after)";; esac

# a source whose clock lags (Date: 2001) and records of the last hours: the reference is
# onesyncd's clock, so they are delivered once; the retry replay and the fresh read agree, so no
# run delivers them again (before: each run replayed and delivered all 5, then refused them again)
sa POST /_ctl/date '{"date":"Mon, 01 Jan 2001 00:00:00 GMT"}' >/dev/null
recs=$(for i in 1 2 3 4 5; do
	printf '{"id":%d,"name":"old%d","updatedAt":"%s","v":1},' $i $i "$(date -u -d "-$((6 - i)) hour" +%Y-%m-%dT%H:%M:%S.000Z)"
done)
sa POST "/_ctl/load?coll=contacts&key=id" "[${recs%,}]" >/dev/null
STATE=$(new_db statelag); DEST=$(new_db destlag); dest_table
write_conf "$T/c.conf"
for run in 1 2 3; do
	once "$T/c.conf" || fail "lagging clock: run $run exited $?"
	want=0; [ $run = 1 ] && want=5
	got="$(last_run delivered) $(last_run failed)"
	[ "$got" = "$want 0" ] || fail "lagging clock: run $run delivered/failed $got, want $want 0"
done
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 5 ] || fail "lagging clock: destination rows"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "lagging clock: retry queue not empty"
case $(last_run watermark_after) in "") fail "lagging clock: no watermark";; esac
# a real typo still fails, and the error names the reference and the lagging Date
sa PUT /api/contacts/6 '{"id":6,"name":"typo","updatedAt":"9999-12-31T00:00:00.000Z","v":1}' >/dev/null
once "$T/c.conf" || fail "lagging clock: run 4 exited $?"
err=$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE key = '6'")
case $err in *"more than 1d (modified.max_future) after 20"*"(onesyncd's clock, later than the source's Date header, 2001-01-01T00:00:00"*) ;;
*) fail "lagging clock: the error does not name the reference: '$err'";; esac
sa DELETE /_ctl/date >/dev/null
note "lagging source clock: 5 records delivered once over 3 runs, the typo names its reference"

# a hostile source clock far ahead (Date: 9999) does not switch the guard off: the reference
# is onesyncd's clock, the year-9999 record fails and the watermark does not jump there; the
# warning names the job and the Date, once per run (several pages)
sa POST /_ctl/date '{"date":"Fri, 31 Dec 9999 23:59:59 GMT"}' >/dev/null
STATE=$(new_db stateahead); DEST=$(new_db destahead); dest_table
: >"$T/daemon.log"
PAGE=2 write_conf "$T/c.conf"
once "$T/c.conf" || fail "clock ahead: run exited $?"
case $(last_run watermark_after) in 9999*|"") fail "clock ahead: watermark $(last_run watermark_after)";; esac
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 5 ] || fail "clock ahead: destination rows"
err=$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE key = '6'")
case $err in *"record 6: timestamp field 'updatedAt' is 9999-12-31"*"(onesyncd's clock: the source's Date header, 'Fri, 31 Dec 9999 23:59:59 GMT', was more than 1h ahead"*) ;;
*) fail "clock ahead: the failure of record 6: '$err'";; esac
[ "$(grep -c "job=contacts.*Date header says 'Fri, 31 Dec 9999 23:59:59 GMT', more than 1h ahead of onesyncd's clock" "$T/daemon.log")" = 1 ] ||
	fail "clock ahead: want one warning naming the job and the Date: $(grep -c 'ahead of' "$T/daemon.log")"
# settle cannot use such a clock either: the run fails, as without a Date header
STATE=$(new_db statesettle); DEST=$(new_db destsettle); dest_table
MOD_EXTRA='settle = "30s";' write_conf "$T/c.conf"
once "$T/c.conf" && fail "settle with a Date at 9999: the run did not fail"
case $(last_run error) in *"settle is set but the source's Date header 'Fri, 31 Dec 9999 23:59:59 GMT' is more than 1h ahead of onesyncd's clock"*) ;;
*) fail "settle with a Date at 9999: $(last_run error)";; esac
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 0 ] || fail "settle with a Date at 9999: records were taken"
sa DELETE /_ctl/date >/dev/null
note "source clock at 9999: ignored with one warning, the year-9999 record fails, the watermark stays; settle fails the run"
exit 0
