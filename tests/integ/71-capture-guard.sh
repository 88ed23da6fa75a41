# Strategy capture's safety nets on a file source: an empty file, a header-only file and a
# file cut in half (at a line end, or inside a line) fail the run on the max_delete_ratio
# guard and leave the destination as it was. Malformed rows are failed records that name
# the file and line, the other rows are delivered, and that run deletes nothing. Records the
# destination refuses (a CHECK constraint) keep no hash, so the next run sends them again.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, qty int, stamp text)"
F=$T/items.csv
URL=file://$F

# gen [python statements editing `rows` (a dict id -> row)]: write items.csv, 1,000 rows.
gen() {
	python3 - "$F" "${1:-}" <<'PY'
import csv, sys
path, edit = sys.argv[1], sys.argv[2]
rows = {i: {"id": i, "name": f"item {i}", "price": f"{i % 50}.25", "qty": i % 80, "stamp": "s1"}
        for i in range(1, 1001)}
exec(edit)
with open(path + ".tmp", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["id", "name", "price", "qty", "stamp"], lineterminator="\n")
    w.writeheader(); w.writerows(rows[k] for k in sorted(rows))
PY
	mv "$F.tmp" "$F"
}
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = ( { name = "items"; strategy = "capture"; key = "id"; batch = 100;
	capture = { exclude = [ "stamp" ]; deletes = true; max_delete_ratio = 0.1; };
	source = { type = "file"; url = "$URL"; format = "csv"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "items";
		columns = { id = "id"; name = "name"; price = "price"; qty = "qty"; stamp = "stamp"; }; }; } );
CONF
last_run() { sql "$STATE" "SELECT result, records_read, delivered, skipped, deleted, failed
	FROM onesync.runs WHERE job = 'items' ORDER BY id DESC LIMIT 1"; }
last_error() { sql "$STATE" "SELECT error FROM onesync.runs WHERE job = 'items' ORDER BY id DESC LIMIT 1"; }
table_sum() { sql "$DEST" "SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM items t"; }
COLS=id,name,price,qty

# 1. the first run
gen
once "$T/c.conf" || fail "first run exited $?"
[ "$(last_run)" = "ok|1000|1000|0|0|0" ] || fail "first run: $(last_run)"
same_file "$DEST" items "$F" csv $COLS || fail "first run: the table differs from the file"
BEFORE=$(table_sum)

# guarded NAME: the run fails on the guard, names it, and changes nothing.
guarded() {
	if once "$T/c.conf"; then fail "$1: the run succeeded"; fi
	case $(last_error) in
	*max_delete_ratio*) ;;
	*) fail "$1: the error does not name the guard: $(last_error)";;
	esac
	[ "$(table_sum)" = "$BEFORE" ] || fail "$1: the destination changed"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'items'")" = 1000 ] ||
		fail "$1: stored hashes changed"
	note "$1: $(last_error | cut -c1-150)"
}

# 2. an empty file, a header-only file, the first half, and a cut inside a line
: >"$F"
guarded "empty file"
echo "id,name,price,qty,stamp" >"$F"
guarded "header only"
gen; head -n 501 "$F" >"$F.half"; mv "$F.half" "$F"
guarded "cut at a line end"
gen; head -n 501 "$F" >"$F.half"; printf '501,item 5' >>"$F.half"; mv "$F.half" "$F"
guarded "cut inside a line"
case $(last_error) in *"line 502"*truncated*|*truncated*"line 502"*) ;; *) fail "cut inside a line: the error does not name line 502 and truncation: $(last_error)";; esac

# 3. malformed rows: failed records naming the file and line; the rest is delivered; no
#    deletion in that run although 5 rows are gone
gen 'rows[500]["price"] = "99.99"
for i in range(990, 995): del rows[i]'
python3 - "$F" <<'PY'
import sys
p = sys.argv[1]; lines = open(p).read().split("\n")
lines[100] = '100,item "100,0.25,20,s1'          # a quote inside an unquoted field
lines[200] = '200,"item 200"x,0.25,40,s1'        # text after a closing quote
lines[300] = '300,item 300,0.25,60'              # a field missing
lines[400] = '400,item 400,0.25,0,s1,extra'      # a field too many
open(p, "w").write("\n".join(lines))
PY
once "$T/c.conf" || fail "malformed rows: run exited $?"
[ "$(last_run)" = "ok|995|1|990|0|4" ] || fail "malformed rows: run $(last_run), expected ok|995|1|990|0|4"
[ "$(sql "$DEST" "SELECT price FROM items WHERE id = 500")" = 99.99 ] || fail "row 500 was not delivered"
[ "$(sql "$DEST" "SELECT count(*) FROM items")" = 1000 ] || fail "rows were deleted in a run with malformed rows"
grep -q 'no deletions in this run' "$T/daemon.log" || fail "no log line says why nothing was deleted"
for l in 101 201 301 401; do
	e=$(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE job = 'items' AND key = '#line:$l'")
	case $e in "$URL line $l: "*) ;; *) fail "failure of line $l: '$e' does not name the file and line";; esac
done
note "malformed rows: $(sql "$STATE" "SELECT last_error FROM onesync.failures WHERE key = '#line:101'")"

# 4. the same rows, well-formed: the 5 deletions happen now
gen 'rows[500]["price"] = "99.99"
for i in range(990, 995): del rows[i]'
once "$T/c.conf" || fail "clean file: run exited $?"
[ "$(last_run)" = "ok|995|0|995|5|0" ] || fail "clean file: run $(last_run), expected ok|995|0|995|5|0"
same_file "$DEST" items "$F" csv $COLS || fail "clean file: the table differs from the file"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'items' AND key LIKE '#%'")" = 0 ] ||
	fail "failures of malformed rows stay after a clean snapshot"

# 5. the destination refuses some records: no hash is stored for them, they are sent again
sql "$DEST" "ALTER TABLE items ADD CONSTRAINT qty_small CHECK (qty < 90) NOT VALID"
H10=$(sql "$STATE" "SELECT hash FROM onesync.records WHERE job = 'items' AND key = '10'")
EDIT='rows[500]["price"] = "99.99"
for i in range(990, 995): del rows[i]
for i in range(10, 15): rows[i]["qty"] = 95
for i in range(20, 25): rows[i]["qty"] = 5
for i in range(2001, 2006): rows[i] = {"id": i, "name": f"new {i}", "price": "1.00", "qty": 99, "stamp": "s1"}'
gen "$EDIT"
once "$T/c.conf" || fail "refusals: run exited $?"
[ "$(last_run)" = "ok|1000|5|985|0|10" ] || fail "refusals: run $(last_run), expected ok|1000|5|985|0|10"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'items' AND key IN ('2001','2002','2003','2004','2005')")" = 0 ] ||
	fail "hashes of refused new records were stored"
[ "$(sql "$STATE" "SELECT hash FROM onesync.records WHERE job = 'items' AND key = '10'")" = "$H10" ] ||
	fail "the hash of a refused change was stored"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'items' AND key IN ('10','11','12','13','14','2001','2002','2003','2004','2005')")" = 10 ] ||
	fail "refused records are not in onesync.failures"
once "$T/c.conf" || fail "refusals again: run exited $?"
[ "$(last_run)" = "ok|1000|0|990|0|10" ] || fail "refusals again: run $(last_run), expected the 10 sent and refused again"
sql "$DEST" "ALTER TABLE items DROP CONSTRAINT qty_small"
once "$T/c.conf" || fail "accepted: run exited $?"
[ "$(last_run)" = "ok|1000|10|990|0|0" ] || fail "accepted: run $(last_run), expected the 10 delivered"
same_file "$DEST" items "$F" csv $COLS || fail "accepted: the table differs from the file"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'items'")" = 1000 ] || fail "hashes after delivery"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'items' AND key NOT LIKE '#%'")" = 0 ] ||
	fail "delivered records are still in onesync.failures"
note "refused records: sent again until accepted; their hashes stored only then"

# 6. with a retry backoff, a refused and unchanged record waits for its retry instead of
#    being sent on every run; a change to it sends it at once
sql "$DEST" "ALTER TABLE items ADD CONSTRAINT qty_small CHECK (qty < 90) NOT VALID"
sed 's/retry_backoff = "0"/retry_backoff = "1h"/' "$T/c.conf" >"$T/backoff.conf"
EDIT2="$EDIT
rows[30]['qty'] = 97"
gen "$EDIT2"
once "$T/backoff.conf" || fail "backoff: run exited $?"
[ "$(last_run)" = "ok|1000|0|999|0|1" ] || fail "backoff: run $(last_run), expected record 30 refused"
once "$T/backoff.conf" || fail "backoff again: run exited $?"
[ "$(last_run)" = "ok|1000|0|1000|0|0" ] || fail "backoff again: run $(last_run), expected record 30 to wait"
gen "$EDIT2
rows[30]['qty'] = 98"
once "$T/backoff.conf" || fail "backoff changed: run exited $?"
[ "$(last_run)" = "ok|1000|0|999|0|1" ] || fail "backoff changed: run $(last_run), expected the changed record 30 sent (and refused)"
exit 0
