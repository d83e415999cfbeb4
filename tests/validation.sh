#!/bin/sh
# validation.sh - issue 7's CI check: the simulator's makespan against
# `d2moe execute` on this machine, for the quick variant of
# experiments/validation.ini (tiny-moe, d2moe-v1, hebf, 4 requests, budgets
# 100M and 160M), 5 rounds, a fresh calibration before every run and the
# kernel-probe gate (a run during which the machine changed speed by more
# than 10% is measured again).  Asserts every point's median paired error
# within 25% and reports each error.  It measures time, so it is not in the
# parallel `make check` list: tests/run-tests.sh runs it alone afterwards
# (`make check TESTS=tests/validation.sh`), and the sanitizer build skips it.
. "${D2_SRCDIR:-.}/tests/lib.sh"

SPEC="${D2_SRCDIR:-.}/experiments/validation.ini"
NICE=""
[ "$(id -u)" -eq 0 ] && NICE="--nice -20"
mkdir -p "$TMP/m" "$TMP/rc"
# shellcheck disable=SC2086
"$D2MOE" execute --spec "$SPEC" --quick --repeat 5 --db "$TMP/v.db" --mwq-dir "$TMP/m" --recalibrate "$TMP/rc" \
    --max-retries 4 $NICE > "$TMP/out" 2> "$TMP/err"
st=$?
[ $st -eq 0 ]; ok $? "quick validation runs (status $st)"
[ -s "$TMP/err" ] && diag "$(cat "$TMP/err")"
grep -E 'runs rejected' "$TMP/out" | while read -r l; do diag "$l"; done
n=0
for p in 0 1; do
    line=$(grep -E "^$p +[0-9]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+%" "$TMP/out")
    if [ -z "$line" ]; then
        ok 1 "point $p has a result"
        continue
    fi
    set -- $line
    rounds=$2 sim=$3 real=$4 err=${5%\%}
    diag "point $p: $rounds accepted rounds, simulated $sim s, measured $real s (medians), error $err% ($(echo "$line" | sed 's/.*rounds://'))"
    awk -v e="$err" 'BEGIN { exit !(e <= 25 && e >= -25) }'; ok $? "point $p: makespan error $err% within 25% ($rounds accepted rounds)"
    n=$((n + 1))
done
diag "$n of 2 points checked"
done_testing
