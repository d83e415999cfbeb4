# lib.sh - TAP helpers for the shell tests (sourced).  $D2MOE is the built
# binary, $D2_SRCDIR the source tree (set by Makefile.am).
: "${D2MOE:=./d2moe}"
: "${D2_SRCDIR:=.}"
: "${D2_SHARED:=$D2_SRCDIR/../shared}"
tap_n=0
tap_failed=0
ok() { # ok COND-EXIT-STATUS DESCRIPTION
    tap_n=$((tap_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $tap_n - $2"; else echo "not ok $tap_n - $2"; tap_failed=$((tap_failed + 1)); fi
}
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $1"; }
diag() { echo "# $*"; }
done_testing() { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }
# expect STATUS REGEX DESCRIPTION -- CMD...: exit status and one-line stderr
expect() {
    want=$1; re=$2; desc=$3; shift 4
    err=$("$@" 2>&1 >/dev/null); got=$?
    lines=$(printf '%s' "$err" | grep -c '')
    if [ "$got" -eq "$want" ] && printf '%s' "$err" | grep -Eq -- "$re" && [ "$lines" -le 1 ]; then
        ok 0 "$desc"
    else
        ok 1 "$desc"; diag "status $got (want $want), $lines lines: $err"
    fi
}
TMP=$(mktemp -d /tmp/d2test.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
