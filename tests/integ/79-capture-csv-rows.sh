# Strategy capture judges a CSV row from its fields (doc/design.md §4.3): a CSV snapshot and
# the same records as NDJSON (every value a string) must give the same deliveries, the same
# stored hashes, the same failures and the same deletions. Hostile rows: quotes, escapes,
# CR/LF inside fields, control characters, a NUL, the marker U+FDD0 "onesyncd:" at the
# start of a value, invalid UTF-8 in a value and in a key (before: the CSV row was skipped
# and failed under "#line:N", the NDJSON line under its key, with its hash), empty keys,
# keys of 1024 and 1025 bytes, unicode keys, duplicate keys within a batch and across
# batches, rows that arrive while a slow destination takes a batch of 3; header names with
# dots, brackets, quotes and unicode, one that starts with the marker; capture.fields,
# capture.exclude (naming a column that is not in the header) and a composite key. Runs:
# the first, an unchanged re-run (nothing delivered), changed and deleted rows, a complete
# snapshot (deletions made), a header in another order with a new column; all as gzip too.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
# A slow destination: each write waits, so rows keep arriving while a batch is out.
sa POST /_ctl/fault '{"method":"PUT","delay_ms":5}' >/dev/null

# gen VERSION: for each profile P, $T/P.csv and $T/P.ndjson hold the same records
gen() {
	/usr/bin/python3 - "$T" "$1" <<'PY'
import gzip, json, sys
d, v = sys.argv[1], int(sys.argv[2])
CLEAN = v >= 4		# the rows that fail left out: a complete snapshot, deletions made
M = "\ufdd0onesyncd:"
HDR = ["id", "sub", "name", "a.b", "x[0]", 'q"uote', "ünï cödé", "val"]
def recs():
    r = []
    def add(k, name, val="v", sub="s"):
        r.append({"id": k, "sub": sub, "name": name, "a.b": "dot " + name[:3],
                  "x[0]": "br", 'q"uote': 'he said "hi"', "ünï cödé": "é", "val": val})
    for i in range(1, 41):
        if v >= 3 and i % 10 == 4:
            continue		# deleted
        add(str(i), "item %d%s" % (i, " changed" if v >= 3 and i % 7 == 0 else ""),
            val="v%d" % (i % 3) if v < 3 or i != 5 else "valchanged")
    add("q1", 'quote " inside, and, commas')
    add("q2", "back\\slash \\n not a newline")
    add("nl", "line one\nline two\r\nline three\rend")
    add("ctl", "tab\there \x01\x1f\x7f del")
    add("uni", "日本語 ✓ \U0001F600 \u2028 sep")
    add("ключ/with%2Fslash", "unicode key")
    if not CLEAN:
        add("poison", M + "a value that starts with the marker")
    add("poisonmid", "the marker later: " + M)
    if not CLEAN:
        add("", "an empty key")
        add("", "another empty key")
        add("K" * 1025, "a key of 1025 bytes")
        add("nul\x00key", "a NUL in the key")
    add("k" * 1024, "a key of 1024 bytes")
    add("dup", "first of a duplicate in one batch")
    add("dup", "second of a duplicate in one batch")
    add("late", "early copy, far from the later one")
    for i in range(41, 51):
        add(str(i), "filler %d" % i)
    add("late", "later copy, another batch")
    add(" spaced ", "key with spaces")
    add("nul", "a NUL \x00 inside")		# the destination refuses it
    if not CLEAN:		# invalid UTF-8 in a value, in the key
        add("badutf", "bad \udcff byte")
        add("bad\udce9key", "a key with a bad byte")
    return r
rows = recs()
def csvq(s):
    return '"' + s.replace('"', '""') + '"'
# a header that changes between runs: another order, a new column (every record changes)
hdr = HDR if v < 5 else ["new"] + HDR[::-1]
for x in rows:
    x["new"] = "n"
for p in ("plain", "fields", "exclude", "composite", "gzip", "marked"):
    o = gzip.open if p == "gzip" else open
    sfx = ".gz" if p == "gzip" else ""
    # marked: a header name that starts with the marker (every record fails, in both)
    name = {h: M + h if p == "marked" and h == "a.b" else h for h in hdr}
    with o("%s/%s.csv%s" % (d, p, sfx), "wt", encoding="utf-8", errors="surrogateescape", newline="") as f:
        f.write(",".join(csvq(name[h]) for h in hdr) + "\r\n")
        for x in rows:
            f.write(",".join(csvq(x[h]) for h in hdr) + "\r\n")
    with o("%s/%s.ndjson%s" % (d, p, sfx), "wt", encoding="utf-8", errors="surrogateescape") as f:
        for x in rows:
            f.write(json.dumps({name[h]: x[h] for h in hdr}, ensure_ascii=False) + "\n")
PY
}
gen 1
job() {	# NAME FORMAT PROFILE KEY CAPTURE-EXTRA [.gz]
	echo "{ name = \"$1\"; strategy = \"capture\"; key = $4; batch = 3;
	capture = { deletes = true; max_delete_ratio = 1.0; $5 };
	source = { type = \"file\"; url = \"file://$T/$3.$2${6:-}\"; format = \"$2\"; };
	destination = { type = \"http\"; method = \"PUT\"; url = \"$SA/api/$1/{{key}}\";
		body = \"{{record}}\"; delete = { url = \"$SA/api/$1/{{key}}\"; }; }; }"
}
PROFILES="plain fields exclude composite gzip marked"
jobs=
for p in $PROFILES; do
	case $p in
	plain|gzip|marked) k='"id"' x= ;;
	fields) k='"id"' x='fields = [ "name", "val", "id" ];' ;;
	exclude) k='"id"' x='exclude = [ "val", "not in the header", "x[0]" ];' ;;
	composite) k='[ "sub", "id" ]' x= ;;
	esac
	z=; [ $p = gzip ] && z=.gz
	jobs="$jobs${jobs:+,} $(job "$p-csv" csv $p "$k" "$x" $z), $(job "$p-nd" ndjson $p "$k" "$x" $z)"
done
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "60s"; };
jobs = ( $jobs );
CONF
"$ONESYNCD" -t -c "$T/c.conf" >"$T/check.out" 2>&1 || fail "config: $(cat "$T/check.out")"

run_of() { sql "$STATE" "SELECT records_read, delivered, skipped, deleted, failed
	FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
# What a job left: its stored hashes, its failures (the file's line cut off the message,
# a #line key kept as such), what the destination holds.
left() {
	sql "$STATE" "SELECT key || ' ' || hash FROM onesync.records WHERE job = '$1' ORDER BY key"
	echo ---
	sql "$STATE" "SELECT key || ' ' || regexp_replace(last_error, '\\(file://[^)]*\\)', '(FILE)')
		|| ' ' || COALESCE(hash, '') || ' ' || COALESCE(payload::text, '')
		FROM onesync.failures WHERE job = '$1' ORDER BY key"
	echo ---
	sa GET "/_ctl/dump?coll=$1"
	echo
}
same() {	# STEP: each CSV job left what its NDJSON twin left, and ran the same
	local p a b
	for p in $PROFILES; do
		a=$(run_of "$p-csv"); b=$(run_of "$p-nd")
		[ "$a" = "$b" ] || fail "$1: $p: the CSV run (read|delivered|skipped|deleted|failed) $a, the NDJSON run $b"
		left "$p-csv" >"$T/$p-csv.left"; left "$p-nd" >"$T/$p-nd.left"
		sed -i "s/$p-nd/$p-csv/g" "$T/$p-nd.left"
		diff "$T/$p-csv.left" "$T/$p-nd.left" >"$T/$p.diff" ||
			fail "$1: $p: CSV and NDJSON left different state: $(head -c 2000 "$T/$p.diff")"
	done
}
# Every failure of a record as read names the file and the line of its record.
lines_named() {
	local n
	n=$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job LIKE '%-csv'
		AND last_error !~ '^destination answered'
		AND last_error !~ '\\(file://$T/[a-z]+\\.csv(\\.gz)?, line [0-9]+\\)'")
	[ "$n" = 0 ] || fail "$1: $n CSV failures do not name their file and line:
$(sql "$STATE" "SELECT job, key, last_error FROM onesync.failures WHERE job LIKE '%-csv'" | head -c 1500)"
}

once "$T/c.conf" || fail "first run exited $?"
same "first run"
lines_named "first run"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'plain-csv'")" -ge 4 ] ||
	fail "first run: the empty keys, the long key and the marked value did not fail"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.records WHERE job = 'marked-csv'")" = 0 ] ||
	fail "first run: records under a marked header name were stored"
note "first run: $(run_of plain-csv) (read|delivered|skipped|deleted|failed)"
once "$T/c.conf" || fail "unchanged re-run exited $?"
same "unchanged re-run"
for p in $PROFILES; do
	[ "$(sql "$STATE" "SELECT delivered FROM onesync.runs WHERE job = '$p-csv' ORDER BY id DESC LIMIT 1")" = 0 ] ||
		fail "unchanged re-run: $p-csv delivered $(run_of $p-csv)"
done
gen 3
once "$T/c.conf"	# malformed rows are failures: a run with failures may exit non-zero
same "changed and deleted rows"
note "changed rows: $(run_of plain-csv)"
gen 4
once "$T/c.conf" || fail "complete snapshot: exited $?"
same "complete snapshot"
for p in $PROFILES; do
	# composite: the 1024-byte id makes a key text past 1024 bytes, a record that fails
	# as read: that snapshot is not known complete and deletes nothing (in both formats);
	# marked: every record fails, nothing was stored
	[ $p = composite ] || [ $p = marked ] && continue
	[ "$(sql "$STATE" "SELECT deleted FROM onesync.runs WHERE job = '$p-csv' ORDER BY id DESC LIMIT 1")" = 4 ] ||
		fail "complete snapshot: $p-csv deleted not the 4 rows gone: $(run_of $p-csv)"
done
note "complete snapshot: $(run_of plain-csv)"
gen 5
once "$T/c.conf" || fail "changed header: exited $?"
same "changed header"
note "changed header: $(run_of plain-csv)"
exit 0
