# Strategy capture with deletes into PostgreSQL: two key texts that name one destination row
# must never make a deletion remove a row the source still has.
#  B. a CSV key changes from 5 to 05 (int column): 05 is upserted (row 5), and the stored key
#     5, missing from the snapshot, is not deleted (the destination equates it with 05): 20
#     rows for 20 records, after this run and the next; its stored state is dropped.
#  C. the same with a uuid key whose letter case changes (NDJSON).
#  D. a composite key ["tenant","id"] whose id turns from 7 into "7": one key (a number and
#     its decimal text are the same key component), so nothing is delivered or deleted.
#  E. upgrade: composite keys stored in the older text (["t",7]) still match: nothing is
#     delivered again or deleted, the stored texts are rewritten; a gone one is deleted.
#  F. a real deletion beside an alias is still made.
#  G. aliases canon_key_fold does not see, which only the column type equates: citext Émile ->
#     émile, numeric 10 -> 1e1, timestamptz 2020-01-01 00:00:00+00 -> 2020-01-01T00:00:00Z
#     (CSV, 4 records each): the row stays, after this run and the next two; the new text is
#     stored, the old one forgotten, and nothing more is delivered or deleted.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE b (id int PRIMARY KEY, name text); CREATE TABLE u (id uuid PRIMARY KEY, name text);
	CREATE TABLE p (tenant text, id int, name text, PRIMARY KEY (tenant, id));
	CREATE TABLE e (tenant text, id int, name text, PRIMARY KEY (tenant, id))"
job() {	# NAME FILE TABLE FORMAT KEY
	local key=${5:-'"id"'}
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = ( { name = "$1"; strategy = "capture"; key = $key; batch = 100;
	capture = { deletes = true; max_delete_ratio = 0.5; };
	source = { type = "file"; url = "file://$2"; format = "${4:-csv}"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "$3";
		columns = { tenant = "tenant"; id = "id"; name = "name"; }; }; } );
CONF
	case $3 in b | u | g*) sed -i 's/tenant = "tenant"; //' "$T/$1.conf" ;; esac
	return 0
}
run_of() { sql "$STATE" "SELECT result, records_read, delivered, skipped, deleted, failed FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
rows() { sql "$DEST" "SELECT count(*) FROM $1"; }

echo "== B"
{ echo id,name; for i in $(seq 1 20); do echo "$i,item $i"; done; } >"$T/b.csv"
job b "$T/b.csv" b
once "$T/b.conf" || fail "B: first run exited $?"
{ echo id,name; for i in $(seq 1 20); do if [ $i = 5 ]; then echo "05,item 5"; else echo "$i,item $i"; fi; done; } >"$T/b.csv"
once "$T/b.conf" || fail "B: second run exited $?"
[ "$(run_of b)" = "ok|20|1|19|0|0" ] || fail "B: second run: $(run_of b)"
[ "$(rows b)" = 20 ] || fail "B: $(rows b) rows for 20 records: the row of 05 was deleted as 5"
grep -q "<4>.*job=b.*record 5 is gone from the source but not deleted" "$T/daemon.log" || fail "B: no warning"
once "$T/b.conf" || fail "B: third run exited $?"
[ "$(rows b)" = 20 ] || fail "B: $(rows b) rows after the third run"
[ "$(sql "$DEST" "SELECT name FROM b WHERE id = 5")" = "item 5" ] || fail "B: row 5 lost"
[ "$(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.records WHERE job = 'b' AND key IN ('5', '05')")" = 05 ] ||
	fail "B: stored keys $(sql "$STATE" "SELECT string_agg(key, ',') FROM onesync.records WHERE job = 'b' AND key IN ('5', '05')")"
note "B: 5 -> 05 in an int key: the row stays, the stale stored key goes"

echo "== C"
U=a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a
for i in $(seq 10 29); do echo "{\"id\":\"${U}$i\",\"name\":\"n$i\"}"; done >"$T/u.ndjson"
job u "$T/u.ndjson" u ndjson
once "$T/u.conf" || fail "C: first run exited $?"
sed -i 's/a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a10/A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A10/' "$T/u.ndjson"
once "$T/u.conf" || fail "C: second run exited $?"
once "$T/u.conf" || fail "C: third run exited $?"
[ "$(rows u)" = 20 ] || fail "C: $(rows u) rows for 20 records"
note "C: uuid letter case: the row stays"

echo "== D"
for i in $(seq 1 20); do echo "{\"tenant\":\"t\",\"id\":$i,\"name\":\"n$i\"}"; done >"$T/p.ndjson"
job p "$T/p.ndjson" p ndjson '[ "tenant", "id" ]'
once "$T/p.conf" || fail "D: first run exited $?"
sed -i 's/"id":7,/"id":"7",/' "$T/p.ndjson"
once "$T/p.conf" || fail "D: second run exited $?"
[ "$(run_of p)" = "ok|20|1|19|0|0" ] || fail "D: 7 and \"7\" are not one key (its record changed: delivered, nothing deleted): $(run_of p)"
[ "$(rows p)" = 20 ] || fail "D: $(rows p) rows"
k7() { sql "$STATE" "SELECT string_agg(key, ' ') FROM onesync.records WHERE job = 'p' AND key IN ('[\"t\",7]', '[\"t\",\"7\"]')"; }
[ "$(k7)" = '["t","7"]' ] || fail "D: stored key of 7: $(k7)"
note "D: a number and its text are one key component"

echo "== E"
for i in $(seq 1 20); do echo "{\"tenant\":\"t\",\"id\":$i,\"name\":\"n$i\"}"; done >"$T/e.ndjson"
job e "$T/e.ndjson" e ndjson '[ "tenant", "id" ]'
once "$T/e.conf" || fail "E: first run exited $?"
# the text an older version stored: numbers as JSON numbers; and one key in both texts
sql "$STATE" "UPDATE onesync.records SET key = regexp_replace(key, ',\"([0-9]+)\"\]\$', ',\1]') WHERE job = 'e';
	INSERT INTO onesync.records (job, key, hash) SELECT job, '[\"t\",\"3\"]', hash FROM onesync.records WHERE job = 'e' AND key = '[\"t\",3]'"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'e' AND key LIKE '%\"]'")" = 1 ] || fail "E: setup"
grep -v '"id":9,' "$T/e.ndjson" >"$T/e2.ndjson"; mv "$T/e2.ndjson" "$T/e.ndjson"
once "$T/e.conf" || fail "E: upgrade run exited $?"
[ "$(run_of e)" = "ok|19|0|19|1|0" ] || fail "E: upgrade run: $(run_of e)"
[ "$(rows e)" = 19 ] || fail "E: $(rows e) rows for 19 records"
[ "$(sql "$DEST" "SELECT count(*) FROM e WHERE id = 9")" = 0 ] || fail "E: row 9 not deleted"
[ "$(sql "$STATE" "SELECT count(*) || ' ' || count(*) FILTER (WHERE key ~ '^\[\"t\",\"[0-9]+\"\]\$') FROM onesync.records WHERE job = 'e'")" = "19 19" ] ||
	fail "E: stored keys not rewritten: $(sql "$STATE" "SELECT string_agg(key, ' ') FROM onesync.records WHERE job = 'e'")"
once "$T/e.conf" || fail "E: run after the upgrade exited $?"
[ "$(run_of e)" = "ok|19|0|19|0|0" ] || fail "E: run after the upgrade: $(run_of e)"
note "E: older composite key texts match, are rewritten, and a gone one is deleted"

echo "== F"
{ echo id,name; for i in $(seq 1 20); do case $i in 5) echo "005,item 5";; 6) ;; *) echo "$i,item $i";; esac; done; } >"$T/b.csv"
once "$T/b.conf" || fail "F: run exited $?"
[ "$(rows b)" = 19 ] || fail "F: $(rows b) rows, expected 19 (6 deleted, 5 kept)"
[ "$(sql "$DEST" "SELECT count(*) FROM b WHERE id IN (5, 6)")" = 1 ] || fail "F: rows 5/6 wrong"
note "F: a real deletion beside an alias is made"

echo "== G"
sql "$DEST" "CREATE EXTENSION IF NOT EXISTS citext" >/dev/null || fail "G: no citext extension"
g=0
alias_case() {	# TYPE OLD NEW KEY2 KEY3 KEY4
	g=$((g + 1))
	sql "$DEST" "CREATE TABLE g$g (id $1 PRIMARY KEY, name text)"
	printf 'id,name\n"%s",a\n"%s",b\n"%s",c\n"%s",d\n' "$2" "$4" "$5" "$6" >"$T/g$g.csv"
	job g$g "$T/g$g.csv" g$g
	once "$T/g$g.conf" || fail "G $1: first run exited $?"
	[ "$(rows g$g)" = 4 ] || fail "G $1: $(rows g$g) rows after the first run"
	printf 'id,name\n"%s",a\n"%s",b\n"%s",c\n"%s",d\n' "$3" "$4" "$5" "$6" >"$T/g$g.csv"
	once "$T/g$g.conf" || fail "G $1: second run exited $?"
	[ "$(run_of g$g)" = "ok|4|1|3|0|0" ] || fail "G $1: second run: $(run_of g$g)"
	[ "$(rows g$g)" = 4 ] || fail "G $1: $(rows g$g) rows for 4 records: '$3' was deleted as '$2'"
	grep -q "<4>.*job=g$g.*record $2 is gone from the source but not deleted" "$T/daemon.log" ||
		fail "G $1: no warning"
	for n in 3 4; do
		once "$T/g$g.conf" || fail "G $1: run $n exited $?"
		[ "$(run_of g$g)" = "ok|4|0|4|0|0" ] || fail "G $1: run $n: $(run_of g$g)"
		[ "$(rows g$g)" = 4 ] || fail "G $1: $(rows g$g) rows after run $n"
	done
	[ "$(sql "$DEST" "SELECT name FROM g$g WHERE id = '$3'")" = a ] || fail "G $1: the row of '$3' lost"
	[ "$(sql "$STATE" "SELECT string_agg(key, '|') FROM onesync.records WHERE job = 'g$g' AND key IN ('$2', '$3')")" = "$3" ] ||
		fail "G $1: stored keys $(sql "$STATE" "SELECT string_agg(key, '|') FROM onesync.records WHERE job = 'g$g'")"
	note "G: $1 '$2' -> '$3': the row stays, the stale stored key goes"
}
alias_case citext 'Émile' 'émile' k2 k3 k4
alias_case numeric 10 1e1 2 3 4
alias_case timestamptz '2020-01-01 00:00:00+00' '2020-01-01T00:00:00Z' 2020-01-02 2020-01-03 2020-01-04
exit 0
