# Strategy capture from files: a 50,000-row CSV over FTP, over FTPS (implicit TLS, verified
# against its CA file) and over SFTP (pinned host key, ed25519 key), and the same data as gzip
# NDJSON over HTTP, each into a PostgreSQL table with
# deletions. The first run makes each table equal to its file; after 500 changes, 100
# removals and 200 additions the next run delivers exactly 700 upserts and 100 deletions;
# an unchanged file delivers nothing, and neither does a change in an excluded field.
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
DEST=$(new_db dest)
for t in t_ftp t_ftps t_sftp t_http; do
	sql "$DEST" "CREATE TABLE $t (id int PRIMARY KEY, name text, price numeric, qty int, stamp text)"
done
FILES=$T/files
mkdir -p "$FILES"
COLS=id,name,price,qty

# gen VERSION: write items.csv and items.ndjson.gz (1: 50,000 rows; 2: 500 changed, 100
# removed, 200 added; 3: as 2 with a new stamp, the excluded field, on every row).
gen() {
	python3 - "$FILES" "$1" <<'PY'
import csv, gzip, json, os, sys
d, v = sys.argv[1], int(sys.argv[2])
ids = range(1, 50001) if v == 1 else [i for i in range(1, 50201) if i > 50000 or i % 500 != 3]
def row(i):
    name = f"item {i}"
    if i % 10 == 0: name += ', "quoted"'
    if i % 1000 == 1: name += "\nsecond line"
    cents = (i * 37) % 10000 + 1
    if v >= 2 and i % 100 == 7: cents += 5
    return {"id": i, "name": name, "price": f"{cents // 100}.{cents % 100:02d}",
            "qty": i % 97, "stamp": "2024-01-0%dT00:00:00Z" % (2 if v == 3 else 1)}
rows = [row(i) for i in ids]
with open(f"{d}/.items.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=["id", "name", "price", "qty", "stamp"], lineterminator="\n")
    w.writeheader(); w.writerows(rows)
with gzip.open(f"{d}/.items.ndjson.gz", "wt") as f:
    for r in rows: f.write(json.dumps(r) + "\n")
for n in ("items.csv", "items.ndjson.gz"):
    os.chmod(f"{d}/.{n}", 0o644); os.rename(f"{d}/.{n}", f"{d}/{n}")
PY
}
gen 1
ftp_start "$FILES"
ftps_start "$FILES"
sftp_start "$FILES"
files_http_start "$FILES"

job() { # NAME URL FORMAT [EXTRA]
	cat <<JOB
	{ name = "$1"; strategy = "capture"; key = "id"; batch = 500;
	  capture = { exclude = [ "stamp" ]; deletes = true; };
	  source = { type = "file"; url = "$2"; format = "$3"; ${4:-} };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "t_$1";
		columns = { id = "id"; name = "name"; price = "price"; qty = "qty"; stamp = "stamp"; }; }; }
JOB
}
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; timeout = "30s"; };
jobs = (
$(job ftp "$FTP/items.csv" csv),
$(job ftps "$FTPS/items.csv" csv "ca_file = \"$FTPS_CA\";"),
$(job sftp "$SFTP$FILES/items.csv" csv "ssh_key = \"$SSH_KEY\"; ssh_host_sha256 = \"$SSH_HOST_SHA256\";"),
$(job http "$FILES_HTTP/items.ndjson.gz" ndjson)
);
CONF
"$ONESYNCD" -t -c "$T/c.conf" >"$T/check.out" 2>&1 || fail "config: $(cat "$T/check.out")"

run_of() { sql "$STATE" "SELECT result, records_read, delivered, skipped, deleted, failed
	FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
check() { # STEP EXPECTED-RUN-ROW ("result|read|delivered|skipped|deleted|failed")
	local j got
	for j in ftp ftps sftp http; do
		got=$(run_of $j)
		[ "$got" = "$2" ] || fail "$1: job $j: run (result|read|delivered|skipped|deleted|failed) is $got, expected $2"
		if [ $j = http ]; then f=$FILES/items.ndjson.gz fmt=ndjson; else f=$FILES/items.csv fmt=csv; fi
		same_file "$DEST" t_$j "$f" $fmt $COLS || fail "$1: job $j: the table differs from the file"
	done
}

# 1. the first run: every row delivered, each table equals its file
once "$T/c.conf" || fail "first run exited $?"
check "first run" "ok|50000|50000|0|0|0"
note "first run: 4 x 50,000 rows over FTP, FTPS, SFTP and HTTP (gzip NDJSON)"

# 2. 500 changed, 100 removed, 200 added: 700 upserts and 100 deletions
gen 2
once "$T/c.conf" || fail "second run exited $?"
check "changes" "ok|50100|700|49400|100|0"
note "changes: 700 upserts and 100 deletions per job"

# 3. the same file again: nothing
once "$T/c.conf" || fail "third run exited $?"
check "unchanged" "ok|50100|0|50100|0|0"

# 4. only the excluded field changed: nothing either (the stale stamp stays)
gen 3
once "$T/c.conf" || fail "fourth run exited $?"
check "excluded field" "ok|50100|0|50100|0|0"
[ "$(sql "$DEST" "SELECT count(*) FROM t_ftp WHERE stamp = '2024-01-01T00:00:00Z'")" = 50100 ] ||
	fail "an excluded field's change was delivered"
note "unchanged and excluded-field-only runs deliver nothing"

# 5. the stored hashes are the files' keys
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'sftp'")" = 50100 ] ||
	fail "onesync.records holds $(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'sftp'") hashes for sftp, expected 50100"
grep -q 'password\|BEGIN OPENSSH' "$T/daemon.log" && fail "the log shows a secret"
exit 0
