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

# Interrupted while PostgreSQL starts (SIGTERM to the demo, as kill or a closed terminal
# sends): the demo handles it once pg_ctl has returned, the server up; nothing of it stays
# behind, no postgres, no folder. The demo runs in its own session, so only it gets the signal.
ancestor() {	# ancestor PID ANCESTOR
	local p=$1 n
	for n in $(seq 20); do
		[ "$p" = "$2" ] && return 0
		p=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')
		[ -n "$p" ] && [ "$p" -gt 1 ] || return 1
	done
	return 1
}
setsid "$TOP/contrib/demo" >"$T/int.out" 2>&1 &
demo=$!
PIDS+=("$demo")
pgdir=
for _ in $(seq 6000); do	# 2 minutes at most: install-deps and make come first
	for p in $(pgrep -x pg_ctl); do
		cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
		case $cmd in *" start"*) ;; *) continue ;; esac
		ancestor "$p" "$demo" || continue
		pgdir=$(echo "$cmd" | sed -n 's|.* -D \(/tmp/onesync-demo\.[^/ ]*\)/pg/data .*|\1|p')
		break 2
	done
	kill -0 "$demo" 2>/dev/null || break
	sleep 0.02
done
[ -n "$pgdir" ] || { cat "$T/int.out" >&2; fail "never saw the demo's pg_ctl start"; }
kill -TERM "$demo"
wait "$demo"; rc=$?
[ "$rc" = 143 ] || { cat "$T/int.out" >&2; fail "the demo exited $rc on SIGTERM, not 143"; }
left() { pgrep -f "$pgdir/" >/dev/null; }
if left; then
	note "left behind: $(pgrep -af "$pgdir/" | head -3)"
	for p in $(pgrep -f "$pgdir/pg/data"); do kill -TERM "$p"; done
	fail "the demo interrupted while PostgreSQL started left its processes behind"
fi
[ ! -e "$pgdir" ] || fail "the demo interrupted while PostgreSQL started left $pgdir behind"
exit 0
