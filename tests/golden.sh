#!/bin/sh
# golden.sh - the golden outputs (tests/golden/): every case in
# tests/golden/cases is run and every metric compared with its golden file to
# 1e-9 relative (status and reason exactly), except plan_overhead_s (wall
# clock).  Regenerate with tests/golden/update.sh; a commit that changes a
# golden file says which results changed and why.
. "${D2_SRCDIR:-.}/tests/lib.sh"
. "$D2_SRCDIR/tests/golden/common.sh"

cases=$(grep -v '^#' "$D2_SRCDIR/tests/golden/cases" | grep -v '^ *$')
ncase=$(printf '%s\n' "$cases" | grep -c '')
ngold=$(ls "$D2_SRCDIR"/tests/golden/*.golden | grep -c '')
[ "$ncase" -eq "$ngold" ]; ok $? "one golden file per case ($ncase cases, $ngold files)"

printf '%s\n' "$cases" > "$TMP/cases"
while read -r args; do
    name=$(golden_name $args)
    g=$D2_SRCDIR/tests/golden/$name
    if [ ! -f "$g" ]; then ok 1 "$name"; diag "missing: run tests/golden/update.sh"; continue; fi
    golden_run "$D2MOE" "$D2_SRCDIR" $args > "$TMP/got" 2> "$TMP/err"
    if [ $? -ne 0 ]; then ok 1 "$name"; diag "run failed: $(cat "$TMP/err")"; continue; fi
    grep -v '^#' "$g" > "$TMP/want"
    # name value pairs: same names in the same order; numbers within 1e-9 relative
    awk 'function abs(x) { return x < 0 ? -x : x }
         NR == FNR { wn[FNR] = $1; $1 = ""; wv[FNR] = $0; nw = FNR; next }
         { n = FNR; k = $1; $1 = "";
           if (wn[n] != k) { printf "# line %d: metric %s, golden has %s\n", n, k, wn[n]; bad++; next }
           if (k == "plan_overhead_s") next
           if (k == "status" || k == "reason") { if ($0 != wv[n]) { printf "# %s: %s, golden%s\n", k, $0, wv[n]; bad++ } next }
           a = $0 + 0; b = wv[n] + 0; d = abs(a - b); m = abs(b) > abs(a) ? abs(b) : abs(a)
           if (d > 1e-9 * m) { printf "# %s:%s, golden%s (relative %.3g)\n", k, $0, wv[n], d / m; bad++ } }
         END { if (FNR != nw) { printf "# %d metrics, golden has %d\n", FNR, nw; bad++ } exit bad > 0 }' \
        "$TMP/want" "$TMP/got" > "$TMP/diff"
    st=$?; ok $st "$name"; [ $st -eq 0 ] || cat "$TMP/diff"
done < "$TMP/cases"
done_testing
