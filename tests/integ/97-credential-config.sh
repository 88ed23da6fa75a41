# The credentials of the file and the auth keys that name them, as `onesyncd -t` checks them:
# each broken file gives a FILE:LINE error naming the credential or the job and the key, and
# no secret value (client id and secret, refresh token, encryption key; from a secret file,
# the environment or written in the file) ever appears in the output. A good file loads;
# a token_url in plain http to a host that is not loopback is warned about.
. "$(dirname "$0")/../lib.sh"
mkdir -p "$T/creds"
printf 'CsecQ9x8ZwPlum\n' >"$T/creds/crm_secret"
printf 'RtokP4k2LmFig\n' >"$T/creds/erp_refresh"
KEY=5f3a9c0d1e2b4a6978c5d3e1f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7
printf '%s\n' "$KEY" >"$T/creds/onesync_key"
printf '%s\n' "${KEY%?}" >"$T/creds/short_key"
printf '%s\n' "${KEY%?}g" >"$T/creds/nothex_key"
export CREDENTIALS_DIRECTORY=$T/creds
export CRM_ID=CidVal7731Quince
# every value that must never be shown: the secrets, pieces of the key, a URL's password
SECRETS='CidVal7731\|CsecQ9x8Zw\|RtokP4k2Lm\|LitSec5521\|5f3a9c0d1e2b\|Hunter3Typo'

PLAINDEST='type = "http"; url = "http://127.0.0.1:8081/items/{{key}}";'
# conf NAME KEY_LINE CREDENTIALS SOURCE_EXTRA DEST: a file with one job and those credentials
conf() {
	cat >"$T/$1.conf" <<CONF
state = { conninfo = "dbname=test"; $2 };
credentials = (
$3
);
jobs = (
 { name = "items"; strategy = "modified"; key = "id";
   modified = { field = "updatedAt"; };
   source = { url = "https://crm.example.com/api/items"; $4 };
   destination = { ${5:-$PLAINDEST} }; }
);
CONF
	chmod 600 "$T/$1.conf"	# literal secrets in it: not readable by all
}
CRM='{ name = "crm"; type = "oauth2_client_credentials";
    token_url = "https://crm.example.com/oauth/token";
    client_id = "{{env:CRM_ID}}"; client_secret = "{{secret:crm_secret}}"; scope = "contacts.read"; }'
ERP='{ name = "erp"; type = "oauth2_refresh_token"; token_url = "http://127.0.0.1:9/token";
    client_id = "erp-client"; client_secret = "LitSec5521Kiwi";
    refresh_token = "{{secret:erp_refresh}}"; client_auth = "body"; }'
GOODKEY='encryption_key = "{{secret:onesync_key}}";'
HTTPDEST='type = "http"; url = "http://127.0.0.1:8081/items/{{key}}"; auth = "erp";'

# bad NAME WANT: onesyncd -t refuses it with WANT at FILE:LINE, showing no secret
bad() {
	local out rc
	out=$("$ONESYNCD" -t -c "$T/$1.conf" 2>&1); rc=$?
	[ "$rc" = 78 ] || fail "$1: exit $rc, expected 78 ($out)"
	echo "$out" | grep -qF -- "$2" || fail "$1: expected '$2' in: $out"
	echo "$out" | grep -q "^$T/$1.conf:[0-9]*: " || fail "$1: no FILE:LINE: prefix in: $out"
	! echo "$out" | grep -q "$SECRETS" || fail "$1: a secret value is shown: $out"
}

conf good "$GOODKEY" "$CRM, $ERP" 'auth = "crm";' "$HTTPDEST"
out=$("$ONESYNCD" -t -c "$T/good.conf" 2>&1) || fail "good.conf rejected: $out"
[ "$out" = "configuration OK" ] || fail "good.conf: unexpected output: $out"

conf type "$GOODKEY" "${CRM/oauth2_client_credentials/oauth2_password}, $ERP" '' "$HTTPDEST"
bad type "credential 'crm': 'type': unknown type 'oauth2_password'"
conf norefresh "$GOODKEY" "$CRM, ${ERP/refresh_token = \"\{\{secret:erp_refresh\}\}\";/}" '' "$HTTPDEST"
bad norefresh "credential 'erp': missing required key 'refresh_token'"
conf ccrefresh "$GOODKEY" "${CRM/scope/refresh_token = \"RtokP4k2LmX\"; scope}" '' ''
bad ccrefresh "credential 'crm': 'refresh_token' has no use with type oauth2_client_credentials"
conf nokey "" "$CRM, $ERP" '' "$HTTPDEST"
bad nokey "credential 'erp': type oauth2_refresh_token needs state.encryption_key"
# the line is the credential's
"$ONESYNCD" -t -c "$T/nokey.conf" 2>&1 | grep -q "^$T/nokey.conf:5: credential 'erp'" ||
	fail "nokey: the error is not at the credential's line 5"
conf shortkey 'encryption_key = "{{secret:short_key}}";' "$CRM" '' ''
bad shortkey "'state.encryption_key' must be exactly 64 hex digits"
bad shortkey "it has 63 characters"
conf nothexkey 'encryption_key = "{{secret:nothex_key}}";' "$CRM" '' ''
bad nothexkey "'state.encryption_key' must be exactly 64 hex digits (0-9, a-f)"
conf ftpurl "" "${CRM/https:\/\/crm.example.com\/oauth/ftp://crm.example.com/oauth}" '' ''
bad ftpurl "credential 'crm': 'token_url' is not an absolute http or https URL such as \"https://auth.example.com/oauth/token\": unsupported scheme 'ftp'"
conf userinfo "" "${CRM/https:\/\/crm/https://bob:Hunter3Typo@crm}" '' ''
bad userinfo "credential 'crm': 'token_url' must not hold user information"
conf clientauth "" "${CRM/scope/client_auth = \"post\"; scope}" '' ''
bad clientauth "credential 'crm': 'client_auth': unknown 'post'"
conf dupname "$GOODKEY" "$CRM, ${ERP/\"erp\"/\"crm\"}" '' ''
bad dupname "credentials[1]: 'name': duplicate credential name 'crm' (first at line 3)"
conf unknown "" "$CRM" 'auth = "crmx";' ''
bad unknown "job 'items': 'source.auth': no credential named 'crmx'"
conf pgdest "" "$CRM" '' 'type = "postgresql"; conninfo = "dbname=d"; table = "t";
   columns = { id = "id"; }; auth = "crm";'
bad pgdest "'destination.auth' is not valid for a postgresql destination"
conf header "" "$CRM" '' 'type = "http"; url = "http://127.0.0.1:8081/items/{{key}}"; auth = "crm";
   headers = [ "authorization: Bearer {{secret:crm_secret}}" ];'
bad header "job 'items': 'destination.auth' and an Authorization header in 'destination.headers': the credential sets that header"
# a file source takes a credential only over http(s)
cat >"$T/sftp.conf" <<CONF
state = { conninfo = "dbname=test"; };
credentials = ( $CRM );
jobs = ( { name = "files"; strategy = "capture"; key = "id";
   source = { type = "file"; url = "sftp://files.example.com/x.csv"; auth = "crm"; };
   destination = { type = "http"; url = "http://127.0.0.1:8081/items/{{key}}"; }; } );
CONF
bad sftp "job 'files': 'source.auth' works only with a file over http or https (this one is sftp)"

# source.mark.auth: a credential of its own, or source.auth's, and then no Authorization
# header among the marking's headers
cat >"$T/mark.conf" <<CONF
state = { conninfo = "dbname=test"; };
credentials = ( $CRM );
jobs = ( { name = "orders"; strategy = "flag"; key = "id";
   source = { url = "https://crm.example.com/api/orders"; auth = "crm";
     mark = { url = "https://crm.example.com/api/orders/{{key}}"; auth = "crn"; }; };
   destination = { $PLAINDEST }; } );
CONF
bad mark "job 'orders': 'source.mark.auth': no credential named 'crn'"
sed -e 's|auth = "crn";|headers = [ "Authorization: Basic {{secret:crm_secret}}" ];|' "$T/mark.conf" >"$T/markhdr.conf"
bad markhdr "job 'orders': 'source.auth (which source.mark.auth defaults to)' and an Authorization header in 'source.mark.headers'"
sed -e 's|auth = "crn";||' "$T/mark.conf" >"$T/markok.conf"
out=$("$ONESYNCD" -t -c "$T/markok.conf" 2>&1) || fail "markok.conf rejected: $out"
# a file over https takes one
sed -e 's|sftp://files.example.com|https://files.example.com|' "$T/sftp.conf" >"$T/https.conf"
out=$("$ONESYNCD" -t -c "$T/https.conf" 2>&1) || fail "https.conf rejected: $out"

# plain http to a host that is not loopback: loaded, with a warning at the credential's line
conf plain "" "${CRM/https:\/\/crm/http://crm}" 'auth = "crm";' ''
out=$("$ONESYNCD" -t -c "$T/plain.conf" 2>"$T/plain.err") || fail "plain.conf rejected: $(cat "$T/plain.err")"
[ "$out" = "configuration OK" ] || fail "plain.conf: unexpected output: $out"
grep -qF "warning: $T/plain.conf:3: credential 'crm': token_url is plain http to a host that is not loopback" "$T/plain.err" ||
	fail "no plain-http warning: $(cat "$T/plain.err")"
! grep -q "$SECRETS" "$T/plain.err" || fail "plain.conf: a secret value is shown"
# ... and none for loopback (the good file's erp is http://127.0.0.1)
"$ONESYNCD" -t -c "$T/good.conf" 2>&1 | grep -q warning && fail "a warning for a loopback token_url"
exit 0
