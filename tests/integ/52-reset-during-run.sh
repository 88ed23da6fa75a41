#!/usr/bin/env bash
# onesyncctl reset while a run is in flight: the run is fenced (its next write or renewal is
# refused and it stops), but the lease stays until it lapses, so no other instance can start
# a run of the job meanwhile: never two runs of one job at once. The fenced run's row stays
# 'running' (marked "fenced out") until the next run starts, so the history shows no overlap
# that was not there.
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
sa_start
STATE=$(new_db state)
sa POST /_ctl/gen '{"coll":"contacts","n":200}' >/dev/null
conf() { # INSTANCE
	cat <<CONF
state = { conninfo = "$STATE"; };
daemon = { instance = "$1"; lease = "4s"; stop_timeout = "5s"; };
defaults = { retries = 0; retry_backoff = "0"; };
jobs = ( { name = "contacts"; strategy = "capture"; key = "id"; interval = "1h"; batch = 50;
	  source = { type = "http"; url = "$SA/api/contacts";
		query = [ "_page={{page}}", "_limit={{limit}}" ]; page = { style = "page"; size = 50; }; };
	  destination = { type = "http"; url = "$SA/api/copy/{{key}}"; }; } );
CONF
}
conf A >"$T/a.conf"; conf B >"$T/b.conf"
# A's first source read is held: its run is surely in flight while the reset comes
sa POST /_ctl/fault '{"coll":"contacts","method":"GET","hold":true,"times":1}' >/dev/null
daemon_start "$T/a.conf"
wait_for 20 held_ge 1 contacts || fail "A's run did not start reading"
A_RUN=$(sql "$STATE" "SELECT id FROM onesync.runs WHERE job = 'contacts' AND result = 'running'")
[ -n "$A_RUN" ] || fail "no run of A in flight"
"$CTL" -c "$T/a.conf" reset contacts --yes >"$T/reset.out" 2>&1 || fail "reset exited $?: $(cat "$T/reset.out")"
grep -q "run #$A_RUN in flight on A was fenced out" "$T/reset.out" || fail "reset output: $(cat "$T/reset.out")"
[ "$(sql "$STATE" "SELECT result FROM onesync.runs WHERE id = $A_RUN")" = running ] ||
	fail "the reset closed the fenced run's row while it still runs"

# B may not start a run while A's fenced run may still deliver
timeout 60 "$ONESYNCD" -c "$T/b.conf" --once contacts >"$T/b.log" 2>&1; rc=$?
[ "$rc" = 75 ] || fail "B's --once during A's fenced run exited $rc (75 expected: held elsewhere): $(tail -3 "$T/b.log")"
[ "$(sql "$STATE" "SELECT count(*) FROM onesync.runs WHERE instance = 'B'")" = 0 ] ||
	fail "B started a run while A's fenced run was in flight"

# A's run goes on and is stopped by the fence
sa_release contacts
a_done() { grep -q "job=contacts run=$A_RUN.*lease lost" "$T/daemon.log"; }
wait_for 20 a_done || fail "A's fenced run did not stop with 'lease lost'"
kill -TERM "$D_PID"; wait "$D_PID"

# once A's lease has lapsed, B runs the job from scratch
b_runs() { timeout 60 "$ONESYNCD" -c "$T/b.conf" --once contacts >>"$T/b.log" 2>&1; }
wait_for 20 b_runs || fail "B could not run the job after A's lease lapsed: $(tail -3 "$T/b.log")"
[ "$(sql "$STATE" "SELECT result || ' ' || (error LIKE 'fenced out: job reset by%')::text FROM onesync.runs WHERE id = $A_RUN")" = "abandoned true" ] ||
	fail "A's fenced run row: $(sql "$STATE" "SELECT result, error FROM onesync.runs WHERE id = $A_RUN")"
overlap=$(sql "$STATE" "SELECT count(*) FROM onesync.runs a JOIN onesync.runs b ON a.id < b.id AND a.job = b.job
	WHERE a.result <> 'reset' AND b.result <> 'reset'
	  AND b.started_at < COALESCE(a.finished_at, now()) AND a.started_at < COALESCE(b.finished_at, now())")
[ "$overlap" = 0 ] || fail "$overlap overlapping runs in the history"
inflight=$(sa GET '/_ctl/stats?coll=contacts' | python3 -c 'import json,sys; print(json.load(sys.stdin)["max_inflight"])')
[ "$inflight" -le 1 ] || fail "$inflight concurrent reads of the source"
same_colls contacts copy id,name || fail "the destination differs from the source"
note "reset during a run: fenced, no second run until the lease lapsed, no overlap"
