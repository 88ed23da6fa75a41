# 'onesyncctl credentials set-refresh-token NAME' on a terminal turns echo off for
# the token; interrupted there (Ctrl-C, SIGINT; or SIGTERM, SIGHUP), it leaves the terminal
# with echo off: what the operator types next (another token, a password) is invisible.
# What should hold: the terminal's modes are restored however the prompt ends.
. "$(dirname "$0")/../lib.sh"
CTL=${ONESYNCCTL:-$TOP/src/onesyncctl}
STATE=$(new_db state)
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/k"
cat >"$T/a.conf" <<C
state = { conninfo = "$STATE"; encryption_key = "{{secret:k}}"; };
daemon = { instance = "a"; secrets_dir = "$T/secrets"; };
credentials = ( { name = "erp"; type = "oauth2_refresh_token"; token_url = "http://127.0.0.1:9/t";
	client_id = "x"; refresh_token = "rt-first-5b3c9"; } );
jobs = ( );
C
timeout 20 "$ONESYNCD" -c "$T/a.conf" --once >"$T/once.log" 2>&1 || true
out=$(python3 - "$CTL" "$T/a.conf" <<'PY'
import os, pty, signal, subprocess, sys, termios, time
m, s = pty.openpty()
p = subprocess.Popen([sys.argv[1], "-c", sys.argv[2], "credentials", "set-refresh-token", "erp"],
    stdin=s, stdout=s, stderr=s)
buf = b""
end = time.time() + 10
while b"not echoed" not in buf and time.time() < end:
    buf += os.read(m, 1024)
time.sleep(0.3)
p.send_signal(signal.SIGINT)
p.wait()
print("prompt" if b"not echoed" in buf else "noprompt",
      "echo-on" if termios.tcgetattr(s)[3] & termios.ECHO else "echo-off")
PY
)
note "$out"
case $out in
prompt\ echo-on) ;;
prompt\ echo-off) fail "Ctrl-C at the set-refresh-token prompt leaves the terminal without echo" ;;
*) fail "no prompt: $out" ;;
esac
exit 0
