# The Debian package, as an operator gets it: contrib/build-deb builds it from a copy of
# the tree (which stays as it was); lintian finds no error and no warning beyond those
# contrib/debian/README keeps; the package holds exactly the expected files, its config is a
# conffile that passes the packaged `onesyncd -t` and names no job, its unit starts the
# packaged binary, passes `systemd-analyze verify` and scores at most 1.5 (as the tree's
# unit, 82-unit-security.sh) with a configuration directory mode the package agrees with;
# a first install neither enables nor starts the service, removal stops it, purge removes
# the service's state directory;
# both commands have bash completion, which runs nothing a hostile configuration file holds
# and does not hang on a FIFO.
# About 45 s on 2 idle cores, most of it the build (-O2, no unit tests: tests/run ran them).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/unit.inc"
if [ -n "${ONESYNC_SAN:-}" ]; then
	echo "the package is built with its own flags, not the sanitizer build: nothing to check under --asan"
	exit 77
fi
LIMIT=1.5
# lintian warnings kept, with their reasons in contrib/debian/README (none today)
KEPT_WARNINGS=""
for c in dpkg-buildpackage dh lintian systemd-analyze; do
	command -v "$c" >/dev/null || fail "$c is missing (contrib/install-deps installs it)"
done

# the tree before: the build must change nothing in it
dirty() { git -C "$TOP" status --porcelain 2>/dev/null; }
before=$(dirty)

mkdir "$T/out"
# noopt: -O0 halves the build, and what is checked here is what the package holds, not its
# code's speed (an operator's build, without DEB_BUILD_OPTIONS, is -O2).
DEB_BUILD_OPTIONS="nocheck noddebs noopt parallel=2" TMPDIR=$T nice "$TOP/contrib/build-deb" "$T/out" \
	>"$T/build.log" 2>&1 || { tail -30 "$T/build.log" >&2; fail "contrib/build-deb failed"; }
version=$(sed -n 's/^AC_INIT(\[onesyncd\], *\[\([^]]*\)\].*/\1/p' "$TOP/configure.ac")
# The package's version names the commit (and a changed tree): a build of another commit
# is a newer version, which "apt install ./FILE.deb" installs (it keeps an installed
# package of the same version, whatever the file holds).
when=$(TZ=UTC0 git -C "$TOP" log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
debversion=$version+git$when.$(git -C "$TOP" rev-parse --short HEAD)
deb=$(ls "$T/out"/onesyncd_*.deb)
[ -f "$deb" ] || fail "no single onesyncd_*.deb in $T/out: $(ls "$T/out")"
got=$(dpkg-deb -f "$deb" Version)
case $got in
"$debversion") [ -z "$before" ] || fail "the tree is changed, the version $got does not say so" ;;
"$debversion".dirty[0-9]*) [ -n "$before" ] || fail "the tree is as committed, the version $got says dirty" ;;
*) fail "the package's version is $got, not $debversion (configure.ac's and the commit)" ;;
esac
[ "$(basename "$deb")" = "onesyncd_${got}_$(dpkg --print-architecture).deb" ] ||
	fail "the package's file is $(basename "$deb")"
[ "$(dirty)" = "$before" ] || fail "the build changed the tree: $(dirty | head -5)"
note "built $(basename "$deb")"

# A git tree git refuses to read (another user's, built by root) is not built as if it
# were a release tarball (.git inside, no commit in the version): build-deb says why.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
	git clone -q "$TOP" "$T/others" && cp "$TOP/contrib/build-deb" "$T/others/contrib/" &&
		chown -R nobody "$T/others"
	if HOME=$T "$T/others/contrib/build-deb" "$T/out" >"$T/others.log" 2>&1; then
		fail "build-deb built a git tree git refuses to read"
	fi
	grep -q 'is a git tree that git does not read' "$T/others.log" ||
		fail "build-deb on a git tree git refuses to read said: $(cat "$T/others.log")"
	[ "$(ls "$T/out")" = "$(basename "$deb")" ] || fail "build-deb left $(ls "$T/out")"
fi

lintian "$deb" >"$T/lintian.txt" 2>&1
grep -v '^running with root privileges' "$T/lintian.txt" >&2
grep -q '^E: ' "$T/lintian.txt" && fail "lintian reports errors"
grep '^W: ' "$T/lintian.txt" | while read -r _ _ tag _; do
	case " $KEPT_WARNINGS " in *" $tag "*) ;; *) echo "$tag";; esac
done >"$T/new-warnings"
[ -s "$T/new-warnings" ] && fail "lintian warnings not kept in contrib/debian/README: $(cat "$T/new-warnings")"

# every file and link, nothing else (directories aside)
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|' | sort >"$T/files"
sort >"$T/expected" <<EOF
/etc/onesyncd/onesyncd.conf
/lib/systemd/system/onesyncd.service
/usr/sbin/onesyncctl
/usr/sbin/onesyncd
/usr/share/bash-completion/completions/onesyncctl
/usr/share/bash-completion/completions/onesyncd
/usr/share/doc/onesyncd/README.Debian
/usr/share/doc/onesyncd/README.md.gz
/usr/share/doc/onesyncd/SECURITY.md
/usr/share/doc/onesyncd/changelog.gz
/usr/share/doc/onesyncd/copyright
/usr/share/doc/onesyncd/examples/onesyncd.conf
/usr/share/man/man1/onesyncctl.1.gz
/usr/share/man/man5/onesyncd.conf.5.gz
/usr/share/man/man8/onesyncd.8.gz
/usr/share/onesyncd/sql/flag-reset-trigger.sql
EOF
diff "$T/expected" "$T/files" >&2 || fail "the package's files differ from the expected list (- expected, + found)"
R=$T/root
dpkg-deb -x "$deb" "$R"
dpkg-deb -e "$deb" "$T/control"
for f in "$TOP"/contrib/sql/*.sql; do
	cmp -s "$f" "$R/usr/share/onesyncd/sql/$(basename "$f")" || fail "$(basename "$f") is not packaged as in contrib/sql"
done

# the shipped conninfo logs in by peer authentication as the dynamic user, which the
# PostgreSQL server can name only through nss-systemd
dpkg-deb -f "$deb" Recommends | grep -qw libnss-systemd ||
	fail "the package does not recommend libnss-systemd: $(dpkg-deb -f "$deb" Recommends)"

# the conffile: valid for the packaged daemon, no job, the file the daemon reads by default
[ "$(cat "$T/control/conffiles")" = /etc/onesyncd/onesyncd.conf ] ||
	fail "conffiles is not /etc/onesyncd/onesyncd.conf: $(cat "$T/control/conffiles")"
out=$("$R/usr/sbin/onesyncd" -t -c "$R/etc/onesyncd/onesyncd.conf" 2>&1) ||
	fail "the packaged onesyncd -t rejects the packaged config: $out"
[ "$out" = "configuration OK" ] || fail "onesyncd -t said: $out"
tr -d ' \t\n' <"$R/etc/onesyncd/onesyncd.conf" | grep -q 'jobs=();' ||
	fail "the packaged config names a job (or has no empty jobs list)"
"$R/usr/sbin/onesyncd" --help | grep -qF '(default /etc/onesyncd/onesyncd.conf)' ||
	fail "the packaged onesyncd does not read /etc/onesyncd/onesyncd.conf by default"
"$R/usr/sbin/onesyncctl" --help | grep -qF '(default /etc/onesyncd/onesyncd.conf)' ||
	fail "the packaged onesyncctl does not read /etc/onesyncd/onesyncd.conf by default"
[ "$("$R/usr/sbin/onesyncd" --version)" = "onesyncd $version" ] ||
	fail "the packaged onesyncd is not version $version: $("$R/usr/sbin/onesyncd" --version)"

# the unit: the packaged binary, verify, exposure
U=$R/lib/systemd/system/onesyncd.service
grep -q '^ExecStart=/usr/sbin/onesyncd -c /etc/onesyncd/onesyncd.conf$' "$U" ||
	fail "the packaged unit does not start /usr/sbin/onesyncd: $(grep '^ExecStart' "$U")"
unit_verify "$U" "$R/usr/sbin/onesyncd"
# systemd leaves the mode of an existing configuration directory alone (and warns at every
# start when it differs from ConfigurationDirectoryMode=): they must agree, and let the
# dynamic user in
mode=$(sed -n 's/^ConfigurationDirectoryMode=0*//p' "$U")
[ "$mode" = "$(stat -c %a "$R/etc/onesyncd")" ] && [ "$mode" = 755 ] ||
	fail "the unit says ConfigurationDirectoryMode=$mode, the package makes /etc/onesyncd $(stat -c %a "$R/etc/onesyncd") (755 wanted: the service's dynamic user reads the file)"
unit_exposure "$U" "$LIMIT"
note "packaged unit: exposure $EXPOSURE (limit $LIMIT)"

# Not enabled on install: the postinst of a first install, run on the extracted tree
# (DPKG_ROOT) with the host's systemd out of sight (/run/systemd under a private tmpfs),
# links nothing into multi-user.target.wants, and so is not started either (deb-systemd-invoke
# starts no disabled unit). The prerm stops it on removal.
DPKG_ROOT=$R DPKG_MAINTSCRIPT_PACKAGE=onesyncd DPKG_MAINTSCRIPT_NAME=postinst \
	unshare --mount --propagation private -- sh -c '
	if [ -d /run/systemd ]; then mount -n -t tmpfs tmpfs /run/systemd || exit 10; fi
	sh "$1" configure' _ "$T/control/postinst" >"$T/postinst.log" 2>&1 ||
	fail "the postinst failed on the extracted tree: $(cat "$T/postinst.log")"
[ -d "$R/var/lib/systemd/deb-systemd-helper-enabled" ] ||
	fail "the postinst did not reach deb-systemd-helper: $(cat "$T/postinst.log")"
# (-L: the link names /lib/systemd/system/onesyncd.service, absent outside the tree)
W=$R/etc/systemd/system/multi-user.target.wants/onesyncd.service
{ [ -L "$W" ] || [ -e "$W" ]; } && fail "a first install enables the unit"
# Purge removes the state directory systemd made for the dynamic user (and its link).
mkdir -p "$R/var/lib/private/onesyncd"
: >"$R/var/lib/private/onesyncd/left"
ln -s private/onesyncd "$R/var/lib/onesyncd"
DPKG_ROOT=$R DPKG_MAINTSCRIPT_PACKAGE=onesyncd DPKG_MAINTSCRIPT_NAME=postrm \
	unshare --mount --propagation private -- sh -c '
	if [ -d /run/systemd ]; then mount -n -t tmpfs tmpfs /run/systemd || exit 10; fi
	sh "$1" purge' _ "$T/control/postrm" >"$T/postrm.log" 2>&1 ||
	fail "the postrm purge failed on the extracted tree: $(cat "$T/postrm.log")"
{ [ -e "$R/var/lib/private/onesyncd" ] || [ -L "$R/var/lib/onesyncd" ]; } &&
	fail "purge leaves the service's state directory: $(ls -la "$R/var/lib" "$R/var/lib/private")"
grep -q '"$1" = remove' "$T/control/prerm" &&
	grep -q "deb-systemd-invoke stop 'onesyncd.service'" "$T/control/prerm" ||
	fail "the prerm does not stop the unit on removal"

# bash completion: both names load, the functions complete commands and job names
C=$R/usr/share/bash-completion/completions
cat >"$T/jobs.conf" <<'CONF'
state = { conninfo = "host=/run/postgresql dbname=x"; };
jobs = ( { name = "crm-contacts"; strategy = "modified"; key = "id";
	destination = { columns = { name = "name"; }; }; },
	{ name = "orders"; strategy = "flag"; } );
CONF
got=$(bash -c '. "$1"; complete -p onesyncd onesyncctl >/dev/null || exit 1
	t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
		"$F" "$1"; echo "${COMPREPLY[*]}"; }
	F=_onesyncctl t onesyncctl ru
	F=_onesyncctl t onesyncctl -c "$2" failures ""
	F=_onesyncd t onesyncd -c "$2" --once o' _ "$C/onesyncctl" "$T/jobs.conf") ||
	fail "the completion file does not define both completions"
[ "$got" = "$(printf 'runs run\ncrm-contacts orders\norders')" ] ||
	fail "the completion answered: $got"

# A configuration file is anyone's (-c): completing its job names runs nothing it holds,
# offers only names the daemon accepts, and returns on a FIFO (reads only regular files).
cat >"$T/hostile.conf" <<CONF
state = { conninfo = "host=/run/postgresql dbname=x"; };
jobs = ( { name = "\$(touch $T/pwned1)"; }, { name = "\`touch $T/pwned2\`"; },
	{ name = "\${HOME}"; }, { name = "two words"; }, { name = "a;b"; },
	{ name = "ok.job-1"; } );
CONF
mkfifo "$T/fifo"
got=$(timeout 10 bash -c '. "$1"
	t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
		"$F" "$1"; echo "${#COMPREPLY[@]}:${COMPREPLY[*]}"; }
	F=_onesyncctl t onesyncctl -c "$2" run ""
	F=_onesyncd t onesyncd -c "$2" --once ""
	F=_onesyncctl t onesyncctl -c "$3" run ""' _ "$C/onesyncctl" "$T/hostile.conf" "$T/fifo")
rc=$?
[ "$rc" = 124 ] && fail "completing the job names of a FIFO hangs"
ls "$T"/pwned* >/dev/null 2>&1 && fail "completing job names ran a command of the configuration file"
[ "$got" = "$(printf '1:ok.job-1\n1:ok.job-1\n0:')" ] ||
	fail "completion of a hostile configuration answered (rc $rc): $got"
exit 0
