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
grep -q '^Fig. 10 headline.* \[variant v[0-9a-f]*: .*readings=paper-testbed.*sim\.gen=8.*\]$' "$TMP/out"
ok $? "summary: a table of a variant says what the variant stands for (its overrides: the reading, --set)"
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
# sim.storage=v1k: est_ppl from the k-quant error table reproduce stored
# (kq-mwq), lower than the MWQ table's at the same bit-widths
printf '[sweep]\nname = stor\nmodel = mixtral-8x7b\ndevice = env1\nsim.policy = d2moe-v1\nsim.storage = v1, v1k\nsim.requests = 2\nsim.prompt = 8\nsim.gen = 8\n' > "$TMP/stor.ini"
"$D2MOE" sweep "$TMP/stor.ini" --db "$TMP/r/d2moe.db" --quiet > /dev/null 2>&1
if command -v sqlite3 >/dev/null; then
    q="SELECT (SELECT value FROM metrics WHERE run_id = j.run_id AND name = 'est_ppl') FROM sweep_jobs j JOIN params p ON p.run_id = j.run_id AND p.key = 'sim.storage' WHERE j.sweep = 'stor' AND p.value ="
    pv1=$(sqlite3 "$TMP/r/d2moe.db" "$q 'v1'"); pk=$(sqlite3 "$TMP/r/d2moe.db" "$q 'v1k'")
    awk -v a="$pv1" -v b="$pk" 'BEGIN { exit !(a > 0 && b > 0 && b < a) }'
    ok $? "sim.storage=v1k: est_ppl from the k-quant error table ($pk) below v1's ($pv1)"
fi
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
# a --set that most specs already give (sim.kv_on_device = false): no override there, so those sweeps
# run nothing and show the runs made above, while the others run with it; figures and tables of both
"$D2MOE" reproduce --quick --db "$TMP/r/d2moe.db" --out "$TMP/plots3" --set sim.prompt=8 --set sim.gen=8 --set sim.kv_on_device=false \
    -j 2 > "$TMP/out3" 2>&1
ok $? "reproduce --set sim.kv_on_device=false (fig10's own value): status 0"
grep -Eq "^ +fig10 +[0-9]+ jobs: +0 run" "$TMP/out3" && grep -Eq "^ +systems +[0-9]+ jobs: +[1-9][0-9]* run" "$TMP/out3"
ok $? "fig10 runs nothing (its runs above are the same jobs), systems runs with the new value"
[ -s "$TMP/plots3/fig10a.png" ] && [ -s "$TMP/plots3/systems-qwen3.png" ] && ! grep -q "no rows" "$TMP/out3" &&
    [ "$(grep '^Fig. 10 headline' "$TMP/out3")" = "$(grep '^Fig. 10 headline' "$TMP/out2")" ] &&
    [ "$(grep '^Beyond the paper: every serving system' "$TMP/out3")" != "$(grep '^Beyond the paper: every serving system' "$TMP/out2")" ]
ok $? "each sweep's figures and tables show its own variant (fig10's as before, systems' a new one)"
done_testing
