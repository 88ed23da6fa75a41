# The README's demo command, as a user runs it: it ends with the destination filled and
# equal to the source, and prints what it did.
. "$(dirname "$0")/../lib.sh"
out=$(timeout 240 "$TOP/contrib/demo" 2>&1); rc=$?
echo "$out" | tail -n 25 >&2
[ "$rc" = 0 ] || fail "contrib/demo exited $rc"
echo "$out" | grep -q "destination filled: 2000 rows in erp.customers (equal to the CRM)" || fail "the demo did not fill the destination"
echo "$out" | grep -q "run finished" || fail "the demo does not show the run lines"
echo "$out" | grep -qi "retry queue" || fail "the demo does not show the retry queue"
# its own temp folder (named in its summary) is gone; other demos may run beside this one
dir=$(echo "$out" | sed -n 's|.*the log of these runs *\(/tmp/onesync-demo\.[^/]*\)/.*|\1|p' | head -1)
[ -n "$dir" ] || fail "the demo's summary does not name its temp folder"
[ ! -e "$dir" ] || fail "the demo left its temp folder $dir behind"
exit 0
