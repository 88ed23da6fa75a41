# Sourced by tests: writes a config for one "contacts" job from the sample application's
# collection "contacts" into the PostgreSQL table "contacts".
# Needs STATE, DEST, SA; optional SORTED (true), PAGE (100), EXTRA_JOB, SRC_EXTRA, DEFAULTS.
dest_table() {
	sql "$DEST" 'CREATE TABLE contacts (id int PRIMARY KEY, name text, email text, amount int,
		"updatedAt" text, v int)'
}
write_conf() {
	cat >"$1" <<CONF
state = { conninfo = "$STATE"; };
daemon = { lease = "${LEASE:-10s}"; stop_timeout = "5s"; };
defaults = { interval = "${INTERVAL:-1h}"; retries = ${RETRIES:-0}; retry_backoff = "0";
	timeout = "${TIMEOUT:-10s}"; ${DEFAULTS:-} };
jobs = (
	{ name = "contacts"; strategy = "modified"; key = "id"; batch = ${BATCH:-200};
	  modified = { field = "updatedAt"; sorted = ${SORTED:-true}; ${MOD_EXTRA:-} };
	  source = { type = "http"; url = "$SA/api/contacts";
		query = [ "updatedAt_gte={{watermark}}", "_sort=updatedAt,id", "_order=asc,asc",
			  "_page={{page}}", "_limit={{limit}}" ];
		page = { style = "page"; size = ${PAGE:-100}; }; ${SRC_EXTRA:-} };
	  destination = { type = "postgresql"; conninfo = "$DEST"; table = "contacts";
		columns = { id = "id"; name = "name"; email = "email"; amount = "amount";
			    updatedAt = "updatedAt"; v = "v"; }; }; }
	${EXTRA_JOB:-}
);
CONF
}
last_run() { sql "$STATE" "SELECT $1 FROM onesync.runs WHERE job = 'contacts' ORDER BY id DESC LIMIT 1"; }
COLS=id,name,email,amount,updatedAt,v
