# A PostgreSQL destination: one row never stops a job, whatever the database refuses it with.
#  1. two keys of one batch that the key column's type makes one value (1 and 01 into int):
#     the batch is written row by row (the later wins), no run fails, no record is lost;
#  2. a trigger that refuses one row (RAISE EXCEPTION, SQLSTATE P0001) refuses only that row,
#     with its key in the error, as a CHECK constraint does; a table that refuses every row
#     queues every row (nothing lost) and says so;
#  3. a deletion refused by a foreign key is refused for its key alone (queued, retried,
#     dead-lettered after max_attempts and then left alone), the other deletions happen, and
#     it is made once the reference is gone and the operator retries it;
#  4. strategy modified: source keys "1" and "01" in one page, into an int key column;
#  5. errors that may be one row's or the table's (42501, 55xxx): a row-level security policy
#     (WITH CHECK) or a trigger raising insufficient_privilege / object_not_in_prerequisite_state
#     for one row refuses that row alone; a table the role may not write at all (permission
#     denied, every row failing alike) fails the run and queues nothing.
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/common.inc"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
STATE=$(new_db state); DEST=$(new_db dest)
sql "$DEST" "CREATE TABLE a (id int PRIMARY KEY, name text);
CREATE FUNCTION no_bad() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.name LIKE 'bad%' THEN RAISE EXCEPTION 'name % is not allowed', NEW.name; END IF;
RETURN NEW; END \$\$;
CREATE TABLE t (id int PRIMARY KEY, name text);
CREATE TRIGGER t_no_bad BEFORE INSERT OR UPDATE ON t FOR EACH ROW EXECUTE FUNCTION no_bad();
CREATE TABLE parent (id int PRIMARY KEY, name text);
CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent(id));"
job() {	# NAME TABLE [DELETES]
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; timeout = "30s"; max_attempts = 2; };
jobs = ( { name = "$1"; strategy = "capture"; key = "id"; batch = 100;
	capture = { deletes = ${3:-false}; };
	source = { type = "file"; url = "file://$T/$1.csv"; format = "csv"; };
	destination = { type = "postgresql"; conninfo = "$DEST"; table = "$2";
		columns = { id = "id"; name = "name"; }; }; } );
CONF
}
run_of() { sql "$STATE" "SELECT result||' delivered '||delivered||' failed '||failed||' deleted '||deleted||' '||coalesce(error,'') FROM onesync.runs WHERE job = '$1' ORDER BY id DESC LIMIT 1"; }
failures() { sql "$STATE" "SELECT string_agg(key||': '||last_error, ' | ' ORDER BY key) FROM onesync.failures WHERE job = '$1'"; }

# --- 1. keys 1 and 01 in one batch
{ echo id,name; for i in $(seq 1 50); do echo "$i,item $i"; done; echo "01,one again"; } >"$T/a.csv"
job a a
once "$T/a.conf" || fail "alias: the run failed: $(run_of a)"
[ "$(sql "$DEST" "SELECT count(*) FROM a")" = 50 ] || fail "alias: $(sql "$DEST" "SELECT count(*) FROM a") rows, expected 50"
[ "$(sql "$DEST" "SELECT name FROM a WHERE id = 1")" = "one again" ] || fail "alias: row 1 is not the later record's"
[ -z "$(failures a)" ] || fail "alias: failures: $(failures a)"
grep -q 'two rows of one batch are one row of the table' "$T/daemon.log" || fail "alias: no warning"
once "$T/a.conf" || fail "alias: the second run failed: $(run_of a)"
note "alias: $(run_of a)"

# --- 2. a trigger refuses row 25 (P0001), rows 60..61 go through a batch of their own
{ echo id,name; for i in $(seq 1 50); do [ $i = 25 ] && echo "$i,bad one" || echo "$i,item $i"; done; } >"$T/t.csv"
job t t
once "$T/t.conf" || fail "trigger: the run failed: $(run_of t)"
[ "$(sql "$DEST" "SELECT count(*) FROM t")" = 49 ] || fail "trigger: $(sql "$DEST" "SELECT count(*) FROM t") rows, expected 49"
f=$(failures t)
case $f in "25: destination table refused the row of key 25: "*"name bad one is not allowed"*) ;;
*) fail "trigger: failures '$f'";; esac
note "trigger: $f"
# every row refused: all queued (none lost), a warning names the table; then the fix lands them
{ echo id,name; for i in 101 102 103; do echo "$i,bad $i"; done; } >"$T/t.csv"
once "$T/t.conf" || fail "trigger all: the run failed: $(run_of t)"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 't' AND key IN ('101','102','103')")" = 3 ] ||
	fail "trigger all: not every refused row is queued: $(failures t)"
grep -q 'refused every one of the 3 rows of a batch' "$T/daemon.log" || fail "trigger all: no warning"
sql "$DEST" "DROP TRIGGER t_no_bad ON t"
once "$T/t.conf" || fail "trigger all: the run after the fix failed: $(run_of t)"
[ "$(sql "$DEST" "SELECT count(*) FROM t WHERE id > 100")" = 3 ] || fail "trigger all: rows not delivered after the fix"
[ -z "$(failures t)" ] || fail "trigger all: failures left: $(failures t)"

# --- 3. deletions: 46..50 leave the source, parent 50 is referenced by a child
{ echo id,name; for i in $(seq 1 100); do echo "$i,item $i"; done; } >"$T/fk.csv"
job fk parent true
once "$T/fk.conf" || fail "fk: first run failed: $(run_of fk)"
sql "$DEST" "INSERT INTO child VALUES (1, 50)"
{ echo id,name; for i in $(seq 1 101); do [ $i -ge 46 ] && [ $i -le 50 ] && continue; echo "$i,item $i"; done; } >"$T/fk.csv"
once "$T/fk.conf" || fail "fk: the run with a refused deletion failed: $(run_of fk)"
left=$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM parent WHERE id BETWEEN 46 AND 50")
[ "$left" = 50 ] || fail "fk: parent rows left among 46..50: '$left', expected 50"
[ "$(sql "$DEST" "SELECT count(*) FROM parent WHERE id = 101")" = 1 ] || fail "fk: the new record 101 is missing"
f=$(failures fk)
case $f in "50: deletion refused: destination table refused the deletion of key 50: "*"foreign key"*) ;;
*) fail "fk: failures '$f'";; esac
note "fk: $(run_of fk)"
# attempt 2 is refused too: dead-lettered (max_attempts = 2), then no longer tried
once "$T/fk.conf" || fail "fk: the retry run failed: $(run_of fk)"
[ "$(sql "$STATE" "SELECT attempts||' '||dead FROM onesync.failures WHERE job = 'fk' AND key = '50'")" = "2 true" ] ||
	fail "fk: not dead after 2 attempts: $(sql "$STATE" "SELECT attempts||' '||dead FROM onesync.failures WHERE job = 'fk'")"
sql "$DEST" "DELETE FROM child"
once "$T/fk.conf" || fail "fk: the run after dead-lettering failed: $(run_of fk)"
[ "$(sql "$DEST" "SELECT count(*) FROM parent WHERE id = 50")" = 1 ] || fail "fk: a dead deletion was tried again"
[ "$(sql "$STATE" "SELECT attempts FROM onesync.failures WHERE job = 'fk' AND key = '50'")" = 2 ] || fail "fk: a dead deletion was tried again"
"$CTL" -c "$T/fk.conf" retry fk >/dev/null || fail "fk: onesyncctl retry"
once "$T/fk.conf" || fail "fk: the run after the retry failed: $(run_of fk)"
[ "$(sql "$DEST" "SELECT count(*) FROM parent WHERE id = 50")" = 0 ] || fail "fk: row 50 not deleted once free and retried"
[ -z "$(failures fk)" ] || fail "fk: failures left: $(failures fk)"
[ "$(sql "$DEST" "SELECT count(*) FROM parent")" = 96 ] || fail "fk: $(sql "$DEST" "SELECT count(*) FROM parent") parent rows, expected 96"

# --- 4. strategy modified, the sample application holds "1" and "01"
sa_start
dest_table
sa POST /_ctl/gen '{"coll":"contacts","n":300}' >/dev/null
sa PUT /api/contacts/01 '{"id":"01","name":"zero-one","updatedAt":"2026-01-01T00:00:00.500Z","v":1}' >/dev/null
write_conf "$T/m.conf"
once "$T/m.conf" || fail "modified alias: the run failed: $(last_run "coalesce(error,'')")"
[ "$(sql "$DEST" "SELECT count(*) FROM contacts")" = 300 ] || fail "modified alias: $(sql "$DEST" "SELECT count(*) FROM contacts") rows, expected 300"
[ "$(last_run "watermark_after IS NOT NULL AND delivered >= 300")" = t ] || fail "modified alias: the watermark did not move"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.failures WHERE job = 'contacts'")" = 0 ] || fail "modified alias: failures queued"
# --- 5. ambiguous SQLSTATEs: a non-superuser role, a row-level security policy, triggers
psql -q -d postgres -c "DO \$\$BEGIN CREATE ROLE onesync_rls LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$" >/dev/null
sql "$DEST" "CREATE TABLE rls (id int PRIMARY KEY, name text); ALTER TABLE rls OWNER TO onesync_rls;
	ALTER TABLE rls ENABLE ROW LEVEL SECURITY; ALTER TABLE rls FORCE ROW LEVEL SECURITY;
	CREATE POLICY p ON rls USING (true) WITH CHECK (name <> 'bad');
CREATE FUNCTION no_odd() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN IF NEW.name = 'priv' THEN RAISE insufficient_privilege USING MESSAGE = 'no privilege for ' || NEW.id; END IF;
IF NEW.name = 'state' THEN RAISE object_not_in_prerequisite_state USING MESSAGE = 'not ready for ' || NEW.id; END IF;
RETURN NEW; END \$\$;
CREATE TABLE trg (id int PRIMARY KEY, name text); ALTER TABLE trg OWNER TO onesync_rls;
CREATE TRIGGER trg_no_odd BEFORE INSERT OR UPDATE ON trg FOR EACH ROW EXECUTE FUNCTION no_odd();
CREATE TABLE nowrite (id int PRIMARY KEY, name text); REVOKE ALL ON nowrite FROM PUBLIC;"
DEST_RLS=${DEST/user=postgres/user=onesync_rls}
rjob() {	# NAME TABLE: job() as the non-superuser role
	job "$1" "$2"
	sed -i "s|conninfo = \"$DEST\"|conninfo = \"$DEST_RLS\"|" "$T/$1.conf"
}
printf 'id,name\n1,a\n2,bad\n3,c\n' >"$T/rls.csv"
rjob rls rls
once "$T/rls.conf" || fail "rls: the run failed: $(run_of rls)"
[ "$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM rls")" = 1,3 ] ||
	fail "rls: rows written: '$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM rls")', expected 1,3"
f=$(failures rls)
case $f in "2: destination table refused the row of key 2: "*"row-level security"*) ;;
*) fail "rls: failures '$f'";; esac
note "rls: $(run_of rls)"
printf 'id,name\n1,a\n2,priv\n3,c\n4,state\n5,e\n' >"$T/trg.csv"
rjob trg trg
once "$T/trg.conf" || fail "42501/55000 trigger: the run failed: $(run_of trg)"
[ "$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM trg")" = 1,3,5 ] ||
	fail "42501/55000 trigger: rows written: '$(sql "$DEST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM trg")', expected 1,3,5"
f=$(failures trg)
case $f in "2: "*"no privilege for 2"*" | 4: "*"not ready for 4"*) ;;
*) fail "42501/55000 trigger: failures '$f'";; esac
# the whole table refused (permission denied for table): the run fails, nothing is queued
printf 'id,name\n1,a\n2,b\n3,c\n' >"$T/nowrite.csv"
rjob nowrite nowrite
once "$T/nowrite.conf" && fail "nowrite: the run succeeded: $(run_of nowrite)"
case $(run_of nowrite) in "failed "*"permission denied"*) ;;
*) fail "nowrite: run '$(run_of nowrite)', expected failed with permission denied";; esac
[ -z "$(failures nowrite)" ] || fail "nowrite: rows queued as refused: $(failures nowrite)"
note "nowrite: $(run_of nowrite)"
exit 0
