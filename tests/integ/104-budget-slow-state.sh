# a budget whose shortest window is short must still let requests pass when the state
# database is not next door. rate = [ "50/100ms" ] gives a hold of 10 ms, counted from when
# the take was sent: a take answered after more than 10 ms (a state database 20 ms away,
# played here by a trigger that sleeps 20 ms in budget_take) brings tokens already dropped,
# so the request takes again, for ever, each take using up units of the shared window.
# A job of 3 pages and 20 records must finish within its run_timeout (20 s).
. "$(dirname "$0")/../lib.sh"
sa_start
STATE=$(new_db state)
cat >"$T/c.conf" <<C
state = { conninfo = "$STATE"; };
daemon = { lease = "5s"; stop_timeout = "5s"; };
defaults = { interval = "1h"; retries = 0; };
budgets = ( { name = "b"; match = [ "$SA/api/" ]; rate = [ "50/100ms" ]; } );
jobs = ( { name = "j"; strategy = "modified"; key = "id"; run_timeout = "20s";
  modified = { field = "updatedAt"; sorted = true; };
  source = { url = "$SA/api/s"; page = { style = "page"; size = 10; };
    query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_page={{page}}", "_limit={{limit}}" ]; };
  destination = { type = "http"; method = "PUT"; url = "$SA/api/d/{{key}}"; body = "{{record}}"; }; } );
C
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
