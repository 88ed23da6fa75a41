#!/usr/bin/env bash
# tests/run's selection: a pattern selects the tests it names, from the repository root or
# from tests/, quoted or not; a selection that matches nothing fails instead of passing green.
. "$(dirname "$0")/../lib.sh"

out=$(cd "$TOP" && tests/run --list 'integ/10-*.sh') || fail "a matching pattern failed: $out"
[ "$out" = tests/integ/10-modified-ties.sh ] || fail "integ/10-*.sh selected: $out"
out=$(cd "$TOP" && tests/run --list integ/10-*.sh) || fail "the unquoted pattern from the root failed"
[ "$out" = tests/integ/10-modified-ties.sh ] || fail "unquoted integ/10-*.sh selected: $out"
out=$(cd "$TOP/tests" && ./run --list integ/10-*.sh) || fail "the pattern from tests/ failed"
[ "$out" = tests/integ/10-modified-ties.sh ] || fail "from tests/: $out"
n=$(cd "$TOP" && tests/run --list | wc -l)
[ "$n" -ge 20 ] || fail "no selection listed only $n tests"

out=$(cd "$TOP" && tests/run --list 'integ/nosuch-*.sh' 2>&1); rc=$?
[ "$rc" != 0 ] || fail "a selection that matches nothing exited 0"
echo "$out" | grep -q "matches no integration test" || fail "no message for an empty selection: $out"
out=$(cd "$TOP" && tests/run --list 10-modified-ties nosuch 2>&1); rc=$?
[ "$rc" != 0 ] || fail "a selection with one unmatched pattern exited 0"
note "selection by pattern, path and name; an unmatched pattern fails"
