# tests/lib.sh - shared helpers for the integration tests (sourced, bash).
# Each test gets a fresh temp folder, fresh ports and its own databases; everything it
# starts is stopped by the EXIT trap. Only 127.0.0.1 and unix sockets are used.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The binaries under test: tests/run --asan points these at its sanitizer build.
ONESYNCD=${ONESYNCD:-$TOP/src/onesyncd}
SAMPLEAPP=${SAMPLEAPP:-$TOP/tests/sampleapp}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
# The system's tools first: the Debian python3 has psycopg2 and starts in 0.05 s, where a
# python3 shim of a version manager (pyenv) earlier on PATH took 2 s a call and made the
# multi-instance tests, which call it hundreds of times, run out of time.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$TOP/tests/lsan.supp}
T=$(mktemp -d /tmp/onesync-test.XXXXXX)
chmod 755 "$T"
PIDS=()

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${st%% *}" != Z ]
}
cleanup() {
	local p i left
	# Under tests/run --asan, ask first (bounded: 5 s): a process killed with -9 never runs
	# its leak check, so a daemon left running to the end would hide its leaks.
	if [ -n "${ONESYNC_SAN:-}" ] && [ ${#PIDS[@]} -gt 0 ]; then
		for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
		for i in $(seq 50); do
			left=
			for p in "${PIDS[@]}"; do alive "$p" && left=1; done
			[ -z "$left" ] && break
			sleep 0.1
		done
	fi
	for p in "${PIDS[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done
	# ASan and LSan write their reports to files of $ONESYNC_SAN; UBSan (gcc's) writes only
	# to stderr: a file of the test (the daemon's log above all) that holds any report is
	# kept there too, and tests/run fails the test.
	if [ -n "${ONESYNC_SAN:-}" ]; then
		grep -rIl --exclude-dir=pg -E 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)' "$T" 2>/dev/null |
		while read -r p; do cp "$p" "$ONESYNC_SAN/stderr-$(basename "$p")"; done
	fi
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
	# The fixture: under --asan its memory errors count, not what it still holds when a
	# test kills it (its records, a held request), which LeakSanitizer calls leaks.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
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

# http_job NAME COLL [SOURCE_EXTRA [DEST_EXTRA [JOB_EXTRA]]]: a job of a configuration's
# jobs list, strategy modified, from the sample application's collection COLL (sorted by
# updatedAt, pages of 10) to collection dCOLL by PUT; the extras are keys added to the
# source, the destination and the job ('auth = "x";').
http_job() {
	cat <<J
{ name = "$1"; strategy = "modified"; key = "id"; ${5:-}
  modified = { field = "updatedAt"; sorted = true; };
  source = { url = "$SA/api/$2"; page = { style = "page"; size = 10; }; ${3:-}
    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
  destination = { type = "http"; method = "PUT"; url = "$SA/api/d$2/{{key}}"; body = "{{record}}"; ${4:-} }; }
J
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

# A free TCP port on 127.0.0.1 (nothing listens on it now).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# wait_port PORT: until something accepts on 127.0.0.1:PORT (bounded: 10 s).
wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# ftp_start DIR: anonymous read-only vsftpd on 127.0.0.1 serving DIR (made root-owned, files
# world-readable), in the foreground of a background job; sets FTP=ftp://127.0.0.1:PORT.
ftp_start() {
	vsftpd_start "$1" ftp
	FTP=ftp://127.0.0.1:$VSFTPD_PORT
}
# ftps_start DIR: the same with implicit TLS on the control and data connections and a fresh
# self-signed certificate for 127.0.0.1; sets FTPS=ftps://127.0.0.1:PORT and FTPS_CA (the
# certificate, for source.ca_file).
ftps_start() {
	FTPS_CA=$T/ftps-cert.pem
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ftps-key.pem" -out "$FTPS_CA" -days 2 \
		-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl req"
	vsftpd_start "$1" ftps "ssl_enable=YES
implicit_ssl=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
require_ssl_reuse=NO
rsa_cert_file=$FTPS_CA
rsa_private_key_file=$T/ftps-key.pem"
	FTPS=ftps://127.0.0.1:$VSFTPD_PORT
}
# vsftpd_start DIR NAME [EXTRA_CONFIG]: sets VSFTPD_PORT.
vsftpd_start() {
	local dir=$1 conf=$T/vsftpd-$2.conf pasv
	command -v /usr/sbin/vsftpd >/dev/null || fail "vsftpd is not installed (contrib/install-deps)"
	chown root: "$dir"; chmod 755 "$dir"
	mkdir -p "$T/vsftpd-empty"; chmod 755 "$T/vsftpd-empty"
	VSFTPD_PORT=$(free_port)
	pasv=$(( 30000 + RANDOM % 20000 ))
	cat >"$conf" <<FTPCONF
listen=YES
listen_ipv6=NO
background=NO
listen_address=127.0.0.1
listen_port=$VSFTPD_PORT
anonymous_enable=YES
no_anon_password=YES
local_enable=NO
write_enable=NO
anon_root=$dir
secure_chroot_dir=$T/vsftpd-empty
seccomp_sandbox=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$pasv
pasv_max_port=$(( pasv + 20 ))
xferlog_enable=NO
dirmessage_enable=NO
use_localtime=NO
${3:-}
FTPCONF
	/usr/sbin/vsftpd "$conf" >"$T/vsftpd-$2.log" 2>&1 &
	PIDS+=("$!")
	wait_port "$VSFTPD_PORT" || { cat "$T/vsftpd-$2.log" >&2; fail "vsftpd ($2) did not start on port $VSFTPD_PORT"; }
}

# sftp_start DIR: sshd on 127.0.0.1 with its own ed25519 host key and a fresh ed25519 client
# key for root (sftp only, internal-sftp); sets SFTP=sftp://root@127.0.0.1:PORT (append the
# absolute path of a file in DIR), SSH_KEY (the client's private key) and SSH_HOST_SHA256
# (the host key's SHA256 fingerprint in base64, as ssh-keygen -l prints it after "SHA256:").
sftp_start() {
	local dir=$1 port conf=$T/sshd_config
	command -v /usr/sbin/sshd >/dev/null || fail "openssh-server is not installed (contrib/install-deps)"
	mkdir -p /run/sshd; chmod 755 /run/sshd
	rm -f "$T/ssh_host_ed25519" "$T/ssh_client_ed25519"
	ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_host_ed25519" || fail "ssh-keygen (host)"
	ssh-keygen -q -t ed25519 -N '' -f "$T/ssh_client_ed25519" || fail "ssh-keygen (client)"
	cp "$T/ssh_client_ed25519.pub" "$T/ssh_authorized_keys"
	chmod 600 "$T/ssh_host_ed25519" "$T/ssh_client_ed25519" "$T/ssh_authorized_keys"
	port=$(free_port)
	cat >"$conf" <<SSHCONF
ListenAddress 127.0.0.1
Port $port
HostKey $T/ssh_host_ed25519
PidFile $T/sshd.pid
AuthorizedKeysFile $T/ssh_authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
AllowTcpForwarding no
X11Forwarding no
Subsystem sftp internal-sftp
SSHCONF
	/usr/sbin/sshd -D -e -f "$conf" >"$T/sshd.log" 2>&1 &
	SFTP_PID=$!
	PIDS+=("$SFTP_PID")
	wait_port "$port" || { cat "$T/sshd.log" >&2; fail "sshd did not start on port $port"; }
	SFTP=sftp://root@127.0.0.1:$port
	SSH_KEY=$T/ssh_client_ed25519
	SSH_HOST_SHA256=$(ssh-keygen -l -E sha256 -f "$T/ssh_host_ed25519.pub" | awk '{ print $2 }')
	SSH_HOST_SHA256=${SSH_HOST_SHA256#SHA256:}
}

# files_http_start DIR: python3's http.server serving DIR on 127.0.0.1 (files as they are:
# a .gz file is sent compressed, without Content-Encoding); sets FILES_HTTP=http://127.0.0.1:PORT.
files_http_start() {
	local port
	port=$(free_port)
	python3 -m http.server --bind 127.0.0.1 --directory "$1" "$port" >"$T/files-http.log" 2>&1 &
	PIDS+=("$!")
	wait_port "$port" || { cat "$T/files-http.log" >&2; fail "http.server did not start"; }
	FILES_HTTP=http://127.0.0.1:$port
}

# same_file CONNINFO TABLE FILE FORMAT "key,col,...": the table holds exactly the file's
# records (CSV, NDJSON or a JSON array, gzip by a .gz suffix), compared as text on the columns.
same_file() {
	psql -X -A -t -q "$1" -c "SELECT COALESCE(json_agg(row_to_json(t)), '[]') FROM $2 t" >"$T/dst.json"
	python3 - "$T/dst.json" "$3" "$4" "$5" <<'PY'
import csv, gzip, io, json, sys
dst, path, fmt, cols = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
raw = gzip.open(path, "rb").read() if path.endswith(".gz") else open(path, "rb").read()
text = raw.decode("utf-8")
if fmt == "csv":
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
elif fmt == "ndjson":
    rows = [json.loads(l, parse_float=str) for l in text.splitlines() if l.strip()]
else:
    rows = json.loads(text, parse_float=str)
def norm(rs): return {str(r.get(cols[0])): tuple(str(r.get(c)) for c in cols) for r in rs}
s, d = norm(rows), norm(json.load(open(dst), parse_float=str))
missing = [k for k in s if k not in d]; extra = [k for k in d if k not in s]
diff = [k for k in s if k in d and s[k] != d[k]]
if missing or extra or diff or len(s) != len(rows):
    print(f"file {len(rows)} records ({len(s)} keys), table {len(d)} rows; missing {len(missing)} "
          f"{missing[:5]}, extra {len(extra)} {extra[:5]}, different {len(diff)} " +
          "; ".join(f"{k}: {s[k]} != {d[k]}" for k in diff[:3]))
    sys.exit(1)
PY
}

# Requests held by a sample application fault rule with "hold": true (see tests/sampleapp.md).
# sa_held [COLL]: how many are held now; held_ge N [COLL]: at least N are;
# sa_release [COLL]: let them all go.
sa_held() { sa GET "/_ctl/held${1:+?coll=$1}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["held"])'; }
held_ge() { [ "$(sa_held "${2:-}")" -ge "$1" ]; }
sa_release() { sa POST "/_ctl/release${1:+?coll=$1}" >/dev/null; }
