# tests/lib.sh - shared helpers for the integration tests (sourced, bash).
# Each test gets a fresh temp folder, fresh ports and its own databases; everything it
# starts is stopped by the EXIT trap. Only 127.0.0.1 and unix sockets are used.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ONESYNCD=${ONESYNCD:-$TOP/src/onesyncd}
SAMPLEAPP=$TOP/tests/sampleapp
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$TOP/tests/lsan.supp}
T=$(mktemp -d /tmp/onesync-test.XXXXXX)
chmod 755 "$T"
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done
	[ -n "${OWN_PGDATA:-}" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$OWN_PGDATA" -m immediate -w stop >/dev/null 2>&1
	if [ -n "${KEEP:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT

fail() {
	local f
	echo "FAIL: $*" >&2
	for f in "$T"/daemon.log "$T"/inst-*.log; do
		[ -f "$f" ] && { echo "--- $(basename "$f")" >&2; tail -n 15 "$f" >&2; }
	done
	exit 1
}
note() { echo "  - $*" >&2; }

# Start a private PostgreSQL for this test (for tests that restart it).
pg_private() {
	local r=$T/pg
	mkdir -p "$r"; chown postgres: "$r"
	PGPORT=$(( 20000 + RANDOM % 20000 ))
	runuser -u postgres -- "$PGBIN/initdb" -D "$r/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 -N --no-instructions >"$T/initdb.log" 2>&1 || fail "initdb"
	OWN_PGDATA=$r/data
	PGHOST=$r
	export PGHOST PGPORT PGUSER=postgres
	pg_start_own
}
pg_start_own() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$OWN_PGDATA" -l "$T/pg/server.log" -w -t 30 \
		-o "-c listen_addresses='' -p $PGPORT -k $PGHOST -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
		start >/dev/null || fail "pg_ctl start"
}
pg_stop_own() {
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$OWN_PGDATA" -m fast -w stop >/dev/null || fail "pg_ctl stop"
}

# A fresh database on the suite's (or the private) server; prints its conninfo.
new_db() {
	local name=t_$(basename "$T" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z')_$1
	psql -q -d postgres -c "CREATE DATABASE $name" >/dev/null || fail "createdb $name"
	echo "host=$PGHOST port=$PGPORT user=postgres dbname=$name"
}
sql() { local db=$1; shift; psql -X -A -t -q -v ON_ERROR_STOP=1 "$db" -c "$*"; }

# The sample application on a fresh port: sets SA (base URL).
sa_start() {
	rm -f "$T/sa.port"
	"$SAMPLEAPP" -q -p 0 --port-file "$T/sa.port" >"$T/sa.out" 2>"$T/sa.err" &
	SA_PID=$!
	PIDS+=("$SA_PID")
	local i
	for i in $(seq 100); do [ -s "$T/sa.port" ] && break; sleep 0.05; done
	[ -s "$T/sa.port" ] || fail "sampleapp did not start"
	SA=http://127.0.0.1:$(cat "$T/sa.port")
}
# sa METHOD PATH [JSON]: a control or API request to the sample application.
sa() {
	if [ $# -ge 3 ]; then
		curl -sS --max-time 30 -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$SA$2"
	else
		curl -sS --max-time 30 -X "$1" "$SA$2"
	fi
}

# Run onesyncd --once on a config; appends to daemon.log; returns its exit code.
once() {
	local conf=$1; shift
	timeout 300 "$ONESYNCD" ${VERBOSE:+-v} -c "$conf" --once "$@" >>"$T/daemon.log" 2>&1
}
# Start the daemon in the background (sets D_PID).
daemon_start() {
	"$ONESYNCD" -c "$1" >>"$T/daemon.log" 2>&1 &
	D_PID=$!
	PIDS+=("$D_PID")
}
# wait_for SECONDS CMD...: poll until CMD succeeds (bounded).
wait_for() {
	local secs=$1; shift
	local end=$(( $(date +%s) + secs ))
	while [ "$(date +%s)" -lt "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# Compare a destination table with a sample application collection:
# same_rows CONNINFO TABLE COLL "col1,col2,..." (key first).
same_rows() {
	local db=$1 table=$2 coll=$3 cols=$4
	sa GET "/_ctl/dump?coll=$coll" >"$T/src.json"
	psql -X -A -t -q "$db" -c "SELECT COALESCE(json_agg(row_to_json(t)), '[]') FROM $table t" >"$T/dst.json"
	python3 - "$T/src.json" "$T/dst.json" "$cols" <<'PY'
import json, sys
src = json.load(open(sys.argv[1])); dst = json.load(open(sys.argv[2])); cols = sys.argv[3].split(",")
def norm(rows): return {str(r.get(cols[0])): tuple(str(r.get(c)) for c in cols) for r in rows}
s, d = norm(src), norm(dst)
missing = [k for k in s if k not in d]; extra = [k for k in d if k not in s]
diff = [k for k in s if k in d and s[k] != d[k]]
if missing or extra or diff:
    print(f"source {len(s)} rows, destination {len(d)}; missing {len(missing)} {missing[:5]}, "
          f"extra {len(extra)} {extra[:5]}, different {len(diff)} " +
          "; ".join(f"{k}: {s[k]} != {d[k]}" for k in diff[:3]))
    sys.exit(1)
PY
}
# Compare two sample application collections on the given fields.
same_colls() {
	local a=$1 b=$2 cols=$3
	sa GET "/_ctl/dump?coll=$a" >"$T/a.json"; sa GET "/_ctl/dump?coll=$b" >"$T/b.json"
	python3 - "$T/a.json" "$T/b.json" "$cols" <<'PY'
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2])); cols = sys.argv[3].split(",")
def norm(rows): return {str(r.get(cols[0])): tuple(str(r.get(c)) for c in cols) for r in rows}
x, y = norm(a), norm(b)
if x != y:
    print(f"{len(x)} vs {len(y)} records; differing keys: {[k for k in set(x)|set(y) if x.get(k)!=y.get(k)][:5]}")
    sys.exit(1)
PY
}
