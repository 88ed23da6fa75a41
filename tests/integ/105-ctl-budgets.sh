# onesyncctl budgets (and --json budgets) with no budget configured, and on a state
# schema of version 3 (no budgets tables: a daemon not yet upgraded), must not fail and must
# keep --json output JSON; a credential in a match prefix stays masked (that part holds).
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
jobs="jobs = ( { name = \"j\"; strategy = \"modified\"; key = \"id\"; modified = { field = \"updatedAt\"; };
  source = { url = \"$SA/api/s\"; }; destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/d/{{key}}\"; body = \"{{record}}\"; }; } );"
printf 'state = { conninfo = "%s"; };\n%s\n' "$STATE" "$jobs" >"$T/none.conf"
printf 'state = { conninfo = "%s"; };\nbudgets = ( { name = "b"; match = [ "%s/api/" ]; rate = [ "5/1s" ]; } );\n%s\n' "$STATE" "$SA" "$jobs" >"$T/one.conf"
sa POST /_ctl/gen '{"coll":"s","n":3}' >/dev/null
once "$T/one.conf" || fail "the run failed: $(tail -3 "$T/daemon.log")"
errs=""
# 1. no budget configured, --json: a JSON document (an empty array), not a sentence
"$CTL" -c "$T/none.conf" --json budgets >"$T/1.out" 2>&1; rc=$?
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/1.out" 2>/dev/null ||
	errs="$errs
- 'onesyncctl --json budgets' with no budget configured (exit $rc) prints no JSON: $(cat "$T/1.out")"
# 3. a credential written in a match prefix ("key" alone is a credential, onesyncd(8)) is
# masked in onesyncctl's output, as in a source URL
printf 'state = { conninfo = "%s"; };\nbudgets = ( { name = "b"; match = [ "%s/maps?key=K3yValueN0tShown" ]; rate = [ "5/1s" ]; } );\n%s\n' "$STATE" "$SA" "$jobs" >"$T/key.conf"
"$CTL" -c "$T/key.conf" budgets >"$T/4.out" 2>&1
grep -q K3yValueN0tShown "$T/4.out" && errs="$errs
- 'onesyncctl budgets' shows the key written in a match prefix: $(cat "$T/4.out")"
# 2. a schema of version 3 (as a daemon of the previous version leaves it)
sql "$STATE" "DROP TABLE onesync.budgets, onesync.budget_windows CASCADE; UPDATE onesync.meta SET schema_version = 3" >/dev/null 2>&1 ||
	sql "$STATE" "DROP TABLE onesync.budgets, onesync.budget_windows CASCADE" >/dev/null
"$CTL" -c "$T/one.conf" budgets >"$T/2.out" 2>&1; rc=$?
[ "$rc" = 0 ] || errs="$errs
- 'onesyncctl budgets' on a schema without the budgets tables exits $rc: $(cat "$T/2.out")"
"$CTL" -c "$T/one.conf" --json budgets >"$T/3.out" 2>&1; rc=$?
[ "$rc" = 0 ] || errs="$errs
- 'onesyncctl --json budgets' on a schema without the budgets tables exits $rc: $(cat "$T/3.out")"
[ -z "$errs" ] || fail "$errs"
