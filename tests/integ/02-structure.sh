#!/usr/bin/env bash
# The source tree keeps its layers (doc/design.md §12): tests/structure reads src/ from its
# #include lines and definitions and names every upward include, circle, header declaring
# what its own file does not define, file over 700 lines (but the named state machines) and
# function over 120 lines. It must also catch them: a planted upward include and a planted
# circle in a copy of src/ are reported.
. "$(dirname "$0")/../lib.sh"

out=$("$TOP/tests/structure" "$TOP") || fail "the layers are broken:
$out"
note "$(echo "$out" | tail -1)"

# a planted upward include, then (in a second copy) a planted circle between two core files
plant() {
	rm -rf "$T/copy"
	mkdir -p "$T/copy"
	cp -R "$TOP/src" "$T/copy/src"
}
plant
printf '#include "daemon/daemon.h"\n' >>"$T/copy/src/core/util.c"
out=$("$TOP/tests/structure" "$T/copy") && fail "a planted upward include passed"
echo "$out" | grep -q 'src/core/util.c: includes "daemon/daemon.h", a layer above core/' ||
	fail "the upward include is not named: $out"
plant
printf '#include "core/strmap.h"\n' >>"$T/copy/src/core/util.h"
out=$("$TOP/tests/structure" "$T/copy") && fail "a planted circle passed"
echo "$out" | grep -qx 'circle: core/strmap -> core/util' || fail "the circle is not named: $out"
note "a planted upward include and a planted circle are named"
