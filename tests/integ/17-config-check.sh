# onesyncd -t on broken configs prints FILE:LINE: ... and exits 78; on etc/onesyncd.conf
# it prints "configuration OK".
. "$(dirname "$0")/../lib.sh"
dir=$TOP/tests/configs/bad
n=0
while IFS=$'\t' read -r file expect; do
	[ -n "$file" ] || continue
	out=$("$ONESYNCD" -t -c "$dir/$file" 2>&1); rc=$?
	[ "$rc" = 78 ] || fail "$file: exit $rc, expected 78 ($out)"
	echo "$out" | grep -qF -- "$expect" || fail "$file: expected '$expect' in: $out"
	echo "$out" | grep -q "^$dir/$file:[0-9]*: " || fail "$file: no FILE:LINE: prefix in: $out"
	n=$((n + 1))
done <"$dir/EXPECTED"
[ "$n" -ge 10 ] || fail "only $n broken configs checked"
# a conninfo libpq refuses is named without its text: a piece of it may be a password
out=$("$ONESYNCD" -t -c "$dir/conninfo_space.conf" 2>&1)
! echo "$out" | grep -q 'Typo8\|Hunter3' || fail "a piece of the password is shown: $out"
# nor the password of a budget's match prefix
out=$("$ONESYNCD" -t -c "$dir/budget_userinfo.conf" 2>&1)
! echo "$out" | grep -q 'Hunter3Typo' || fail "a budget prefix's password is shown: $out"
# every error of a budget is reported, each naming the budget and the key
out=$("$ONESYNCD" -t -c "$dir/budget_many.conf" 2>&1); rc=$?
[ "$rc" = 78 ] || fail "budget_many.conf: exit $rc"
for want in "budget 'b1': 'rate[0]': '0/1s': the limit must be between 1 and 1000000000" \
    "budget 'b1': 'rate[1]': 'x/1s' is not N/W" \
    "budget 'b1': 'rate[2]': '10/1x': bad window '1x'" \
    "budget 'b1': 'concurrency' must be between 0 and 1024 (got 2000)" \
    "budget 'b1': 'park_after': bad duration 'soon'" \
    "budget 'b1': 'match' must list 1 to 64 URL prefixes (got 0)" \
    "budgets[1]: missing required key 'name'" \
    "budgets[1]: 'match[0]': a prefix must not hold a fragment" \
    "budgets[1]: 'rate[0]': '10/10': bad window '10'" \
    "budgets[2]: 'name': 'b 3' must be 1 to 64 letters" \
    "budget 'b 3', costs[0]: missing required key 'path'" \
    "budget 'b 3', costs[0]: 'cost' must be an integer" \
    "budget 'b 3': budgets[2].costs[1] must be a group" \
    "budget 'b 3', costs[2]: 'path' must not be empty"; do
	echo "$out" | grep -qF -- "$want" || fail "budget_many.conf: expected '$want' in: $out"
done
[ "$(echo "$out" | wc -l)" = 14 ] || fail "budget_many.conf: expected 14 errors, got: $out"
# a good budget loads, alone and beside another one covering the same URLs
out=$("$ONESYNCD" -t -c "$TOP/tests/configs/good/budgets.conf" 2>&1) || fail "budgets.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "budgets.conf: unexpected output: $out"
out=$("$ONESYNCD" -t -c "$TOP/etc/onesyncd.conf" 2>&1) || fail "etc/onesyncd.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "unexpected output: $out"
"$ONESYNCD" -t -c "$T/missing.conf" >/dev/null 2>&1; [ $? = 78 ] || fail "missing file is not exit 78"
