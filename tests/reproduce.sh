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
# the HTML report beside the store: every drawn figure, provenance with a reading
nfig=$(awk '/^\[/ { if (n) print n; n = substr($0, 2, length($0) - 2) } /^optional *= *true/ { n = "" } END { if (n) print n }' "$D2_SRCDIR/plots/figures.ini" | grep -c '')
[ -s "$TMP/r/report.html" ] && [ "$(grep -o '<figure ' "$TMP/r/report.html" | grep -c '')" -ge "$nfig" ] &&
    grep -q '<dt>reading</dt><dd>[a-z(]' "$TMP/r/report.html"
ok $? "reproduce writes r/report.html with every figure ($nfig) and the readings of its runs"
for rd in $(ls "$D2_SRCDIR/experiments/readings" | sed -n 's/\.ini$//p'); do
    grep -Eq "^   readings $rd \(audit [0-9]+" "$TMP/out" && grep -Eq "^headline-tps-max-vs-edgemoe +(reproduced|exceeds-bound|not-reproduced|error) " "$TMP/out"
    ok $? "claims audit printed under reading $rd"
done
if command -v sqlite3 >/dev/null; then
    [ "$(sqlite3 "$TMP/r/d2moe.db" "SELECT count(DISTINCT bits) FROM quant_errors WHERE method = 'rtn-int'")" -eq 7 ]; ok $? "error table stored: rtn-int at 7 bit-widths"
    [ "$(sqlite3 "$TMP/r/d2moe.db" "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE m.name = 'est_ppl' AND m.value IS NULL AND r.status = 'ok'")" -eq 0 ]; ok $? "every ok run has a finite est_ppl (oom runs have none)"
    [ "$(sqlite3 "$TMP/r/d2moe.db" "SELECT count(DISTINCT readings) FROM audits")" -eq "$(ls "$D2_SRCDIR/experiments/readings" | grep -c '\.ini$')" ]; ok $? "one stored claims audit per reading"
else
    skip "sqlite3 command-line tool not installed"; skip "sqlite3 command-line tool not installed"; skip "sqlite3 command-line tool not installed"
fi
"$D2MOE" reproduce --quick --db "$TMP/r/d2moe.db" --out "$TMP/plots" --set sim.prompt=8 --set sim.gen=8 -j 2 > "$TMP/out2" 2>&1
ok $? "rerun"
grep -Eq "^ +fig10 +[0-9]+ jobs: +0 run" "$TMP/out2"; ok $? "a rerun runs no sweep job again"
grep -Eq "^   readings [a-z-]+: stored before as audit [0-9]+ in .*: [0-9]+ reproduced" "$TMP/out2"; ok $? "a rerun does not audit the same claims again"
done_testing
