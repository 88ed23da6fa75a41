# A file:// source that names no regular file: a FIFO without a writer, a symbolic link to
# one, a directory, /dev/zero and /dev/urandom (they never end). Each run of such a job fails
# at once with an error naming the job and the path, reads nothing and changes nothing (its
# table stays empty, no stored hash), again at every interval; meanwhile the daemon stays
# responsive: another job reads its file run after run and the status endpoint answers.
# A {{secret:NAME}} file that is a FIFO or a directory is refused the same way by -t, and so
# is a source.ca_file or source.ssh_key that is a FIFO or a device (libcurl would read it on
# the loop).
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
DEST=$(new_db dest)
mkfifo "$T/fifo"
ln -s "$T/fifo" "$T/link"
mkdir "$T/dir"
printf 'id,name\n1,one\n2,two\n3,three\n' >"$T/good.csv"
BAD="fifo link dir zero urandom"

job() {	# NAME PATH
	sql "$DEST" "CREATE TABLE t_$1 (id int PRIMARY KEY, name text)"
	cat <<JOB
	{ name = "$1"; strategy = "capture"; key = "id"; interval = "1s"; jitter = "0";
	  source = { type = "file"; url = "file://$2"; format = "csv"; };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "t_$1";
		columns = { id = "id"; name = "name"; }; }; },
JOB
}
{
	cat <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "10s"; stop_timeout = "5s"; status_listen = "127.0.0.1:0"; };
defaults = { retries = 0; retry_backoff = "0"; timeout = "10s"; };
jobs = (
CONF
	job fifo "$T/fifo"
	job link "$T/link"
	job dir "$T/dir"
	job zero /dev/zero
	job urandom /dev/urandom
	job good "$T/good.csv" | sed '$ s/},$/}/'
	echo ");"
} >"$T/c.conf"
"$ONESYNCD" -t -c "$T/c.conf" >"$T/check.out" 2>&1 || fail "config: $(cat "$T/check.out")"
daemon_start "$T/c.conf"
wait_for 10 grep -q 'status endpoint listening on http://127.0.0.1:' "$T/daemon.log" ||
	fail "no 'status endpoint listening' line"
PORT=$(sed -n 's|.*status endpoint listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T/daemon.log" | head -1)
ST=http://127.0.0.1:$PORT

runs() { sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$1' AND result = '$2'" 2>/dev/null; }
# every bad job failed twice or more, and the good one ran twice more after that
bad_failed_twice() {
	local j
	for j in $BAD; do [ "$(runs $j failed)" -ge 2 ] || return 1; done
}
wait_for 60 bad_failed_twice || fail "the jobs on special files did not fail twice each: $(for j in $BAD; do echo -n "$j $(runs $j failed) "; done)"
n=$(runs good ok)
good_ran() { [ "$(runs good ok)" -ge $(( n + 2 )) ]; }
wait_for 30 good_ran || fail "the good job did not run again while the others failed ($(runs good ok) ok runs)"
[ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$ST/healthz")" = 200 ] ||
	fail "the status endpoint does not answer /healthz with 200"
curl -s --max-time 5 "$ST/jobs" | grep -q '"fifo"' || fail "the status endpoint's /jobs does not list the job fifo"
note "special files refused run after run; the good job ran $(runs good ok) times, /healthz answered"

# what each run says: the job (log line), the path, what it is
expect() {	# JOB TEXT
	local e
	e=$(sql "$STATE" "SELECT error FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1")
	case $e in *"$2, not a regular file: refused"*) ;; *) fail "$1: the run's error is '$e', expected '$2, not a regular file'";; esac
	grep -qF "job=$1 run=" "$T/daemon.log" || fail "$1: no log line naming the job"
	grep "job=$1 run=" "$T/daemon.log" | grep -qF "$2, not a regular file" || fail "$1: no log line naming the path"
}
expect fifo "$T/fifo is a FIFO"
expect link "$T/link is a FIFO"
expect dir "$T/dir is a directory"
expect zero "/dev/zero is a character device"
expect urandom "/dev/urandom is a character device"

# nothing read, nothing changed
for j in $BAD; do
	[ "$(sql "$DEST" "SELECT count(*) FROM t_$j")" = 0 ] || fail "$j: its table is not empty"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = '$j'")" = 0 ] ||
		fail "$j: stored hashes after a refused file"
	[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE job = '$j' AND (records_read > 0 OR result <> 'failed')")" = 0 ] ||
		fail "$j: a run read records or did not fail"
done
[ "$(sql "$DEST" "SELECT string_agg(id || ':' || name, ' ' ORDER BY id) FROM t_good")" = "1:one 2:two 3:three" ] ||
	fail "the good job's table is $(sql "$DEST" "SELECT string_agg(id || ':' || name, ' ' ORDER BY id) FROM t_good")"
note "refused runs read nothing and changed nothing; the good table holds its file"

# a secret that is a FIFO or a directory: -t ends at once with an error naming it
mkdir "$T/secrets" "$T/secrets/dir"
mkfifo "$T/secrets/fifo"
for s in fifo dir; do
	cat >"$T/s.conf" <<CONF
state = { conninfo = "$STATE"; };
daemon = { secrets_dir = "$T/secrets"; };
jobs = ( { name = "api"; strategy = "capture"; key = "id";
	source = { type = "http"; url = "http://127.0.0.1:1/items"; headers = [ "Authorization: Bearer {{secret:$s}}" ]; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t_good"; columns = { id = "id"; }; }; } );
CONF
	timeout 10 "$ONESYNCD" -t -c "$T/s.conf" >"$T/s.out" 2>&1; rc=$?
	[ "$rc" != 124 ] || fail "-t waits on a secret that is a $s"
	[ "$rc" != 0 ] || fail "-t accepts a secret that is a $s"
	grep -q "{{secret:$s}}: cannot read secret '$s' in $T/secrets" "$T/s.out" ||
		fail "-t on a secret that is a $s: $(cat "$T/s.out")"
done
note "secrets that are a FIFO or a directory: refused by -t at once"
for f in "ca_file $T/secrets/fifo https://127.0.0.1:1/items" "ssh_key /dev/zero sftp://127.0.0.1:1/items"; do
	set -- $f
	cat >"$T/f.conf" <<CONF
state = { conninfo = "$STATE"; };
jobs = ( { name = "tls"; strategy = "capture"; key = "id";
	source = { type = "file"; url = "$3"; format = "csv"; $1 = "$2"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "t_good"; columns = { id = "id"; }; }; } );
CONF
	timeout 10 "$ONESYNCD" -t -c "$T/f.conf" >"$T/f.out" 2>&1; rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "-t on a source.$1 that is $2 exited $rc"
	grep -q "f.conf:[0-9]*: 'source.$1' names $2, which is a" "$T/f.out" || fail "-t on a source.$1 that is $2: $(cat "$T/f.out")"
done
note "a source.ca_file that is a FIFO, a source.ssh_key that is /dev/zero: refused by -t"

# the FIFO got no reader that a writer could feed: a writer still finds none (bounded)
timeout 2 sh -c "echo x >'$T/fifo'" && fail "a writer found the FIFO open for reading"
kill -TERM "$D_PID"
wait "$D_PID" || fail "the daemon exited $? on SIGTERM"
exit 0
