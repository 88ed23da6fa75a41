# strategy modified over a PostgreSQL source: a row that joins the tie at a page's last
# timestamp, with a key below the page's last key, after that page was read and while the
# same run goes on past that timestamp, is still delivered (found by the 90-differential
# test, seed 307318519 round 10: a tie_burst at the source's newest timestamp while a run
# pages at its head). The run's keyset read goes on after (timestamp, key) of the last row;
# without a second look at the tie before leaving it, the watermark moves past the row.
# To act between two page reads without guessing with a sleep: page 1's delivery is held
# (the run then reads pages 2 and 3 and waits), the reads are counted by the source view.
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state); SRC=$(new_db src)
sql "$SRC" "CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, ts timestamptz NOT NULL);
	INSERT INTO items VALUES (1, 1, '2026-01-01 00:00:01+00'), (2, 1, '2026-01-01 00:00:02+00'),
	  (3, 1, '2026-01-01 00:00:03+00'), (4, 1, '2026-01-01 00:00:04+00'),
	  (10, 1, '2026-01-01 00:00:05+00'), (50, 1, '2026-01-01 00:00:05+00');
	CREATE TABLE reads (x bigint PRIMARY KEY);
	CREATE FUNCTION note_read() RETURNS boolean LANGUAGE plpgsql VOLATILE AS \$\$
	BEGIN
		INSERT INTO reads VALUES (txid_current()) ON CONFLICT DO NOTHING;
		RETURN true;
	END \$\$;
	CREATE VIEW items_read AS SELECT * FROM items WHERE note_read();"
cat >"$T/c.conf" <<CONF
state = { conninfo = "$STATE"; };
defaults = { interval = "1h"; retries = 0; retry_backoff = "0"; batch = 10; };
jobs = ( { name = "items"; strategy = "modified"; key = "id"; modified = { field = "ts"; };
   source = { type = "postgresql"; conninfo = "$SRC"; table = "items_read"; page = { size = 2; }; };
   destination = { type = "http"; method = "PUT"; url = "$SA/api/copy/{{key}}"; body = "{{record}}"; }; } );
CONF
reads() { sql "$SRC" "SELECT count(*) FROM reads"; }
reads_ge() { [ "$(reads)" -ge "$1" ]; }
sa POST /_ctl/fault '{"coll":"copy","method":"PUT","keys":[1],"hold":true,"times":1}' >/dev/null
timeout 120 "$ONESYNCD" -c "$T/c.conf" --once >>"$T/daemon.log" 2>&1 &
RUN=$!
PIDS+=("$RUN")
# page 1 (1, 2) in delivery, page 2 (3, 4) waiting, page 3 (10, 50) read: the run waits
wait_for 60 held_ge 1 copy || fail "page 1's delivery was not held"
wait_for 60 reads_ge 3 || fail "the run did not read 3 pages while page 1 was held ($(reads))"
[ "$(reads)" = 3 ] || fail "the run read $(reads) pages while page 1 was held, expected 3"
# the tie at page 3's last timestamp grows below its last key, then the source moves on
sql "$SRC" "INSERT INTO items VALUES (37, 1, '2026-01-01 00:00:05+00')"
sql "$SRC" "INSERT INTO items VALUES (60, 1, '2026-01-01 00:00:06+00'), (61, 1, '2026-01-01 00:00:06+00')"
sa_release copy
wait "$RUN"; rc=$?
[ "$rc" = 0 ] || fail "the run exited $rc"
once "$T/c.conf" || fail "the second run exited $?"
for k in 1 2 3 4 10 37 50 60 61; do
	sa GET "/api/copy/$k" | grep -q "\"id\": *$k\b" ||
		fail "row $k is not at the destination (watermark $(sql "$STATE" "SELECT watermark || ' ' || watermark_key FROM onesync.jobs WHERE name = 'items'"))"
done
max=$(sa GET /_ctl/stats?coll=copy | python3 -c 'import json,sys; d=json.load(sys.stdin)["deliveries"]; print(max(d.values()))')
[ "$max" = 1 ] || fail "a row was delivered $max times"
