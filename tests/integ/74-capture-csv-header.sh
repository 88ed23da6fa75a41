# A CSV snapshot whose header lacks a field the job reads (a renamed or dropped column, a
# renamed key column) does not match the job: the run fails before anything is delivered or
# deleted, naming the file, the missing fields and the header; the destination keeps its
# values (before: every row's column overwritten with NULL, the run ok).
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state); DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE t (id int PRIMARY KEY, name text, price numeric)"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; };
jobs = ( { name = "csv"; strategy = "capture"; key = "id";
	capture = { deletes = true; };
	source = { type = "file"; url = "file://$T/in.csv"; format = "csv"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t";
		columns = { id = "id"; name = "name"; price = "price"; }; }; } );
CONF
error_of() { sql "$STATE" "SELECT result||': '||coalesce(error,'') FROM onesync.runs WHERE job = 'csv' ORDER BY id DESC LIMIT 1"; }
unchanged() {	# WHAT: the destination still holds the 100 rows of the first run, priced
	[ "$(sql "$DEST" "SELECT count(*)||' '||count(price)||' '||sum(price) FROM t")" = "100 100 5000.00" ] ||
		fail "$1: the destination changed: $(sql "$DEST" "SELECT count(*)||' '||count(price)||' '||sum(price) FROM t")"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures")" = 0 ] || fail "$1: failures were queued"
}
{ echo id,name,price; for i in $(seq 1 100); do echo "$i,item $i,$((i - 1)).50"; done; } >"$T/in.csv"
once "$T/c.conf" || fail "first run: $(error_of)"
unchanged "first run"

# mismatched HEADER [MISSING...]: the run fails, names file, missing fields and header
mismatched() {
	local h=$1 e m; shift
	{ echo "$h"; for i in $(seq 1 100); do echo "$i,item $i,$((i - 1)).50"; done; } >"$T/in.csv"
	if once "$T/c.conf"; then fail "header $h: the run passed"; fi
	e=$(error_of)
	case $e in "failed: file://$T/in.csv line 1: the header row lacks the field"*"the header is: $h; the file does not match the job: nothing was delivered or deleted") ;;
	*) fail "header $h: error '$e'";; esac
	for m in "$@"; do case $e in *"\"$m\""*) ;; *) fail "header $h: the error does not name $m: $e";; esac; done
	unchanged "header $h"
}
mismatched "id,name,Price_EUR" price
note "renamed column: $(error_of | cut -c1-200)"
mismatched "ID,name,cost" id price
mismatched "id,price" name
# a header-only file without its newline: the same error, not "truncated"
printf 'id,name,Price_EUR' >"$T/in.csv"
if once "$T/c.conf"; then fail "header only: the run passed"; fi
case $(error_of) in *"lacks the field \"price\""*) ;; *) fail "header only: $(error_of)";; esac
unchanged "header only"
# extra columns and another order are fine
{ echo price,extra,name,id; for i in $(seq 1 100); do echo "$((i - 1)).50,x,item $i,$i"; done; } >"$T/in.csv"
once "$T/c.conf" || fail "reordered header: $(error_of)"
unchanged "reordered header"
exit 0
