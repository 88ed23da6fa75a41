# The README's demo command, as a user runs it: it ends with the destination filled and
# equal to the source, and prints what it did.
. "$(dirname "$0")/../lib.sh"
out=$(timeout 240 "$TOP/contrib/demo" 2>&1); rc=$?
echo "$out" | tail -n 25 >&2
[ "$rc" = 0 ] || fail "contrib/demo exited $rc"
echo "$out" | grep -q "destination filled: 2000 rows in erp.customers (equal to the CRM)" || fail "the demo did not fill the destination"
echo "$out" | grep -q "run finished" || fail "the demo does not show the run lines"
echo "$out" | grep -qi "retry queue" || fail "the demo does not show the retry queue"
# the three strategies: flag wrote the ERP's id back to every order, capture over SFTP
# follows the CSV (a change, a deletion) and its guard refused the truncated file
echo "$out" | grep -q "orders: 301 of 301 marked synced at the CRM, 301 with the ERP's id; the ERP API holds 301" ||
	fail "the demo's flag job did not mark every order with the ERP's id"
echo "$out" | grep -q "A-0007 at 99.90, A-0400 deleted, 399 rows" || fail "the demo's capture job missed the change or the deletion"
echo "$out" | grep -q "job=articles run=[0-9]*: run failed .*max_delete_ratio guard.*nothing was deleted" ||
	fail "the demo does not show the deletion guard refusing the truncated file"
echo "$out" | grep -q "articles: 399 rows in erp.articles (equal to the CSV)" || fail "erp.articles differs from the CSV"
# its own temp folder (named in its summary) is gone; other demos may run beside this one
dir=$(echo "$out" | sed -n 's|.*the log of these runs *\(/tmp/onesync-demo\.[^/]*\)/.*|\1|p' | head -1)
[ -n "$dir" ] || fail "the demo's summary does not name its temp folder"
[ ! -e "$dir" ] || fail "the demo left its temp folder $dir behind"
exit 0
