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
out=$("$ONESYNCD" -t -c "$TOP/etc/onesyncd.conf" 2>&1) || fail "etc/onesyncd.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "unexpected output: $out"
"$ONESYNCD" -t -c "$T/missing.conf" >/dev/null 2>&1; [ $? = 78 ] || fail "missing file is not exit 78"
