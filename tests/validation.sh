#!/bin/sh
# validation.sh - issue 7's CI check: the simulator's makespan against
# `d2moe execute` on this machine, for the quick variant of
# experiments/validation.ini (tiny-moe, d2moe-v1, hebf, 4 requests, budgets
# 100M and 160M), 5 rounds, a fresh calibration before every run and the
# kernel-probe gates (a run during which the machine changed speed by more
# than 10% is measured again).  Asserts every point's median paired error
# within 25% and reports each error.  On this shared VM a session's
# calibrations can sit 10-20% off for minutes, so when a point misses, 5 more
# rounds are measured and the median over all 10 accepted rounds decides
# (both medians are reported; nothing is discarded).  It measures time, so it
# is not in the parallel `make check` list: tests/run-tests.sh runs it alone
# afterwards (`make check TESTS=tests/validation.sh`); the sanitizer build
# does not run it.
. "${D2_SRCDIR:-.}/tests/lib.sh"

SPEC="${D2_SRCDIR:-.}/experiments/validation.ini"
NICE=""
[ "$(id -u)" -eq 0 ] && NICE="--nice -20"
mkdir -p "$TMP/m" "$TMP/rc"

measure() { # measure OUT: 5 rounds into $TMP/v.db; exit status of execute
    # shellcheck disable=SC2086
    "$D2MOE" execute --spec "$SPEC" --quick --repeat 5 --db "$TMP/v.db" --mwq-dir "$TMP/m" --recalibrate "$TMP/rc" \
        --max-retries 4 $NICE > "$1" 2> "$TMP/err"
}

# point P's median error (percent) over every accepted pair in the store
pooled() {
    sqlite3 "$TMP/v.db" "SELECT 100.0 * (ms.value - mr.value) / mr.value
        FROM runs rs JOIN runs rr ON rr.id = rs.id + 1 AND rr.config_hash = rs.config_hash AND rr.mode = 'real'
        JOIN params pt ON pt.run_id = rs.id AND pt.key = 'exec.point' AND CAST(pt.value AS INTEGER) = $1
        JOIN metrics ms ON ms.run_id = rs.id AND ms.name = 'makespan_s'
        JOIN metrics mr ON mr.run_id = rr.id AND mr.name = 'makespan_s'
        WHERE rs.mode = 'sim' AND rs.status = 'ok'
          AND coalesce((SELECT value FROM metrics WHERE run_id = rr.id AND name = 'probe_ok'), 1) != 0
        ORDER BY 1" | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %d\n", m, NR }'
}

LIMIT=${D2_VALIDATION_LIMIT:-25} # percent; the issue's CI bar (the variable only exercises the second path)
within() { awk -v e="$1" -v l="$LIMIT" 'BEGIN { exit !(e <= l && e >= -l) }'; }

measure "$TMP/out"; st=$?
[ $st -eq 0 ]; ok $? "quick validation runs (status $st)"
[ -s "$TMP/err" ] && diag "$(cat "$TMP/err")"
grep -E 'rejected' "$TMP/out" | grep -E '^[0-9]+ (runs|calibrations)' | while read -r l; do diag "$l"; done
miss=0
for p in 0 1; do
    line=$(grep -E "^$p +[0-9]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+%" "$TMP/out")
    if [ -z "$line" ]; then miss=1; diag "point $p: no accepted round"; continue; fi
    set -- $line
    diag "point $p: $2 accepted rounds, simulated $3 s, measured $4 s (medians), error $5 ($(echo "$line" | sed 's/.*rounds://'))"
    within "${5%\%}" || miss=1
done
if [ $miss -eq 1 ] && command -v sqlite3 > /dev/null; then
    diag "a point missed $LIMIT%: 5 more rounds, then the median over all accepted rounds"
    measure "$TMP/out2" || diag "second measurement: status $?"
    grep -E '^[0-9] ' "$TMP/out2" | while read -r l; do diag "second: $l"; done
fi
for p in 0 1; do
    if [ $miss -eq 1 ] && command -v sqlite3 > /dev/null; then
        r=$(pooled $p) || { ok 1 "point $p: has accepted rounds"; continue; }
        set -- $r
        within "$1"; ok $? "point $p: median error over all $2 accepted rounds $1% within $LIMIT%"
    else
        line=$(grep -E "^$p +[0-9]+ +[0-9.]+ +[0-9.]+ +-?[0-9.]+%" "$TMP/out")
        [ -n "$line" ] || { ok 1 "point $p: has accepted rounds"; continue; }
        set -- $line
        within "${5%\%}"; ok $? "point $p: makespan error $5 within $LIMIT% ($2 accepted rounds)"
    fi
done
done_testing
