# Onesyncd(8) and doc/design.md §6.1 promise that a migration leaves the functions
# the previous version calls in place, so that an instance of that version started before
# another migrated goes on until it stops. Migration 5 drops the four credential functions
# whose arguments changed: a version-4 instance still running can then neither refresh,
# store a rotated refresh token (lost: the endpoint already spent the old one), end its
# lease nor take an operator's refresh token (its onesyncctl). Each statement below is the
# text a version-4 process sends (store/state_cred.c before schema 5).
. "$(dirname "$0")/../lib.sh"
STATE=$(new_db state)
mkdir -p "$T/secrets"
printf '%s\n' "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$T/secrets/k"
cat >"$T/a.conf" <<C
state = { conninfo = "$STATE"; encryption_key = "{{secret:k}}"; };
daemon = { instance = "a"; secrets_dir = "$T/secrets"; };
jobs = ( );
C
timeout 20 "$ONESYNCD" -c "$T/a.conf" --once >"$T/once.log" 2>&1 || true
[ "$(sql "$STATE" "SELECT value FROM onesync.meta WHERE key = 'schema_version'" 2>/dev/null)" = 5 ] ||
	fail "no schema 5: $(cat "$T/once.log")"
sealed="v1:$(head -c 48 /dev/urandom | base64 -w0)"
bad=
for q in "SELECT onesync.credential_begin('erp', 'old', 5000)" \
    "SELECT onesync.credential_store('erp', 'old', 0, '$sealed', 1, '$sealed')" \
    "SELECT onesync.credential_fail('erp', 'old', 0, NULL)" \
    "SELECT onesync.credential_set_refresh('erp', '$sealed')"; do
	sql "$STATE" "$q" >/dev/null 2>"$T/err" || bad="$bad
  ${q%%(*}: $(head -1 "$T/err")"
done
[ -z "$bad" ] || fail "a version-4 instance's calls fail after migration 5:$bad"
note "the version-4 credential functions stay"
exit 0
