# Every configuration key that `onesyncd --dump-keys` prints (the key table of config/keys.c) is
# documented: as an item `.It Ic KEY` of man/onesyncd.conf.5 (full dotted path, jobs.*.x as
# the page writes them), and as a setting at that path in etc/onesyncd.conf (commented-out
# settings count: the example shows optional keys that way; jobs.*.x is a setting of any
# element of the jobs list). Every metric of src/run/metrics.c and src/daemon/budgets_show.c is an
# item of man/onesyncd.8, and the page lists no metric that does not exist.
. "$(dirname "$0")/../lib.sh"
"$ONESYNCD" --dump-keys >"$T/keys.tsv" || fail "onesyncd --dump-keys exited $?"
[ "$(wc -l <"$T/keys.tsv")" -gt 20 ] || fail "--dump-keys printed only $(wc -l <"$T/keys.tsv") keys"
python3 - "$T/keys.tsv" "$TOP/man/onesyncd.conf.5" "$TOP/etc/onesyncd.conf" \
	"$TOP/src/run/metrics.c" "$TOP/man/onesyncd.8" "$TOP/src/daemon/budgets_show.c" "$TOP/src/daemon/creds.c" \
	<<'PY' || fail "undocumented keys or metrics (see above)"
import re, sys
keys_f, man5_f, etc_f, metrics_f, man8_f, budgets_f, creds_f = sys.argv[1:8]
keys = [l.split("\t")[0] for l in open(keys_f) if l.strip()]
bad = []

# man/onesyncd.conf.5: ".It Ic KEY" (optionally followed by more macros)
man5 = set()
for l in open(man5_f, encoding="utf-8"):
    m = re.match(r"^\.It Ic (\S+)", l)
    if m:
        man5.add(m.group(1))
for k in keys:
    if k not in man5:
        bad.append(f"onesyncd.conf(5) has no '.It Ic {k}'")

# etc/onesyncd.conf: the dotted path of every setting, list elements as '*'. Commented-out
# settings ('#   name = value;', '#   name = {', '#,{', '#}') are read as settings; prose
# comments are skipped. Strings are blanked before brackets are counted.
paths = set()
stack = []		# per open bracket: (name or '' or '*', bracket)
live = re.compile(r'^\s*([A-Za-z][A-Za-z0-9_]*)\s*[=:]\s*(.*)$')
commented = re.compile(r'^\s*([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*?[;{(\[])\s*$')
structural = re.compile(r'^[\s,;{}()\[\]]*$')
for raw in open(etc_f, encoding="utf-8"):
    line = raw.rstrip("\n")
    is_comment = re.match(r"^\s*(#|//)", line) is not None
    body = re.sub(r"^\s*(#|//)", "", line, count=1) if is_comment else line
    body = re.sub(r'"(?:[^"\\]|\\.)*"', '""', body)	# blank strings
    body = re.sub(r"(^|\s)(#|//).*$", "", body)	# trailing comment
    m = (commented if is_comment else live).match(body)
    if is_comment and not m and not (structural.match(body) and body.strip()):
        continue	# prose
    rest, name = body, None
    if m:
        name = m.group(1)
        paths.add(".".join([s for s, _ in stack if s] + [name]))
        rest = m.group(2)
    for ch in rest:
        if ch in "{([":
            if name is not None:
                stack.append((name, ch))
            elif ch == "{" and stack and stack[-1][1] == "(":
                stack.append(("*", ch))
            else:
                stack.append(("", ch))
            name = None
        elif ch in "})]":
            if stack:
                stack.pop()
            name = None
        elif not ch.isspace():
            name = None
if stack:
    bad.append(f"etc/onesyncd.conf: brackets do not balance (still open: {stack})")
for k in keys:
    if k not in paths:
        bad.append(f"etc/onesyncd.conf has no setting {k}")

# metrics: every name of src/run/metrics.c is an item of onesyncd(8), and only those
metrics = set(re.findall(r'"((?:onesync|process)_[a-z0-9_]+)"', open(metrics_f).read()))
budget_metrics = set(re.findall(r'"((?:onesync)_budget_[a-z0-9_]+)"', open(budgets_f).read()))
if len(budget_metrics) < 6:
    bad.append(f"only {len(budget_metrics)} metric names found in src/daemon/budgets_show.c")
metrics |= budget_metrics
cred_metrics = set(re.findall(r'\b(onesync_credential_[a-z_]+)\b', open(creds_f).read()))
if len(cred_metrics) < 2:
    bad.append(f"only {len(cred_metrics)} metric names found in src/daemon/creds.c")
metrics |= cred_metrics
if len(metrics) < 10:
    bad.append(f"only {len(metrics)} metric names found in src/run/metrics.c")
man8 = open(man8_f, encoding="utf-8").read()
items = set(re.findall(r"^\.It (?:Sy|Li|Cm|Ic) ((?:onesync|process)_[a-z0-9_]+)", man8, re.M))
for name in sorted(metrics - items):
    bad.append(f"onesyncd(8) has no item for the metric {name}")
for name in sorted(items - metrics):
    bad.append(f"onesyncd(8) documents the metric {name}, which neither src/run/metrics.c, src/daemon/budgets_show.c nor src/daemon/creds.c has")

for b in bad:
    print(b, file=sys.stderr)
print(f"  - {len(keys)} keys, {len(metrics)} metrics checked", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
