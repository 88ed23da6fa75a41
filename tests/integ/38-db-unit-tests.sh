# The unit tests that need a PostgreSQL (tests/unit/db_*: io/pg.c's pools, queue, LISTEN and
# reconnects; source_pg.c through the source dispatch: paging, marking, cancels) run against
# the test server: `make check` skips them (exit 77) when ONESYNC_TEST_CONNINFO names none.
. "$(dirname "$0")/../lib.sh"
UNIT=$(dirname "$(dirname "$ONESYNCD")")/tests/unit
n=0
for t in "$UNIT"/db_*; do
	[ -x "$t" ] && [ "${t%.c}" = "$t" ] || continue
	n=$((n + 1))
	# bounded: a timer that is never armed (the connect timeout) hangs its test
	ONESYNC_TEST_CONNINFO="host=$PGHOST port=$PGPORT user=postgres" timeout 240 "$t" \
	    >"$T/$(basename "$t").out" 2>&1
	rc=$?
	[ "$rc" = 124 ] && fail "$(basename "$t") did not end within 240 s (a timer that never fired?)"
	grep '^FAIL' "$T/$(basename "$t").out" | head -10 >&2
	[ "$rc" = 0 ] || fail "$(basename "$t") exited $rc ($(tail -1 "$T/$(basename "$t").out"))"
	grep -q '^PASSED: 0 failure' "$T/$(basename "$t").out" || fail "$(basename "$t") did not pass"
done
[ "$n" -ge 1 ] || fail "no tests/unit/db_* built (make check TESTS=)"
