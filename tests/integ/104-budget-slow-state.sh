# a budget whose shortest window is short must still let requests pass when the state
# database is not next door. rate = [ "50/100ms" ] gives a hold of 10 ms, counted from when
# the take was sent: a take answered after more than 10 ms (a state database 20 ms away,
# played here by a trigger that sleeps 20 ms in budget_take) brings tokens already dropped,
# so the request takes again, for ever, each take using up units of the shared window.
# A job of 3 pages and 20 records must finish within its run_timeout (20 s).
. "$(dirname "$0")/../lib.sh"; . "$(dirname "$0")/budget.inc"
sa_start
STATE=$(new_db state)
budget_conf "$T/c.conf" 'rate = [ "50/100ms" ];' 'run_timeout = "20s";'
"$ONESYNCD" -t -c "$T/c.conf" >"$T/t.out" 2>&1 || fail "config: $(cat "$T/t.out")"
once "$T/c.conf" || fail "the first run (no record yet) failed"	# creates the schema
sa POST /_ctl/gen '{"coll":"s","n":20}' >/dev/null
sql "$STATE" "CREATE TABLE public.takes (n bigint); CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN INSERT INTO public.takes VALUES (NEW.n); PERFORM pg_sleep(0.02); RETURN NEW; END \$\$;
  CREATE TRIGGER slow BEFORE INSERT OR UPDATE ON onesync.budget_windows FOR EACH ROW EXECUTE FUNCTION public.slow()" >/dev/null ||
	fail "cannot add the trigger: the schema is not there"
t0=$(date +%s)
once "$T/c.conf"; rc=$?
secs=$(( $(date +%s) - t0 ))
res=$(sql "$STATE" "SELECT string_agg(result || coalesce(' (' || error || ')', ''), '; ') FROM onesync.runs WHERE id > 1")
n=$(sa GET "/_ctl/seen?prefix=/api/" | python3 -c "import json,sys; print(json.load(sys.stdin)['requests'])")
takes=$(sql "$STATE" "SELECT count(*) || ' takes granting ' || sum(n) || ' units' FROM public.takes")
note "rate 50/100ms, state database 20 ms away: exit $rc after $secs s, $n requests reached the server, $takes; runs: $res"
[ "$rc" = 0 ] || fail "--once exited $rc after $secs s ($n requests reached the server): $res"
