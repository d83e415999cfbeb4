#!/bin/sh
# store.sh - what a figure shows when one store holds more than one sweep of
# a spec: a changed profile makes its jobs new (they run again); an edited
# spec rerun into the store shows its own grid, not both; runs merged from
# older code never replace newer ones; --quick then the full spec shows the
# full grid (reusing the --quick jobs); shards merged equal one sweep; a
# store without grid rows (older d2moe) shows every job as before.
. "${D2_SRCDIR:-.}/tests/lib.sh"
command -v sqlite3 >/dev/null || { skip "sqlite3 command-line tool not installed"; done_testing; exit 0; }
command -v gnuplot >/dev/null || { skip "gnuplot not installed"; done_testing; exit 0; }
command -v jq >/dev/null || { skip "jq not installed"; done_testing; exit 0; }
spec="$D2_SRCDIR/experiments/fig10.ini"
rows() { grep -vc '^#\|^$' "$1"; } # data rows of a figure's .dat
fig() { # fig DB OUT: plot fig10a from DB into OUT (stderr to OUT.err)
    "$D2MOE" plot fig10a --db "$1" --out "$2" > /dev/null 2> "$2.err"
}

diag "a changed profile: its jobs run again, the others are reused"
mkdir -p "$TMP/P"
cp -r "$D2_SRCDIR/experiments/models" "$D2_SRCDIR/experiments/devices" "$D2_SRCDIR/experiments/readings" "$TMP/P/"
sed -i 's/^flash_bw = 457.6M/flash_bw = 915.2M/' "$TMP/P/devices/env1-calibrated.ini"
grep -q '^flash_bw = 915.2M' "$TMP/P/devices/env1-calibrated.ini"; ok $? "(the copy of env1-calibrated has flash_bw 915.2M)"
"$D2MOE" sweep "$spec" --quick --db "$TMP/a.db" --quiet; ok $? "fig10 --quick into a.db"
cp "$TMP/a.db" "$TMP/q.db" # the --quick store of the original profiles, for the tests below
"$D2MOE" --profiles "$TMP/P" sweep "$spec" --quick --db "$TMP/a.db" 2> "$TMP/p.err"
grep -q "192 jobs in this shard: 48 run, 144 already stored" "$TMP/p.err"
ok $? "--profiles with the changed device: its 48 jobs run, 144 reused ($(tail -1 "$TMP/p.err"))"
"$D2MOE" --profiles "$TMP/P" sweep "$spec" --quick --db "$TMP/a.db" 2> "$TMP/p2.err"
grep -q "0 run, 192 already stored" "$TMP/p2.err"; ok $? "the same again: all 192 already stored"
n=$("$D2MOE" export --db "$TMP/a.db" --sweep fig10 --format json 2>/dev/null |
    jq -c '[.[] | select(."device.name" == "env1-calibrated") | ."device.flash_bw"] | unique')
[ "$n" = '["915200000"]' ]; ok $? "export --sweep: the env1-calibrated runs shown are the new flash_bw's ($n)"
fig "$TMP/a.db" "$TMP/fa" && [ "$(rows "$TMP/fa/data/fig10a.dat")" -eq 24 ]; ok $? "fig10a: 24 rows"
grep -qx '# reading: datasheet' "$TMP/fa/data/fig10a.dat"; ok $? "fig10a's data file names the reading of the runs it shows (the sweep's default, datasheet)"
grep -q "48 runs of variant base not shown: their jobs are not in the grid of the latest sweep of fig10 (192 jobs" "$TMP/fa.err"
ok $? "and plot says the 48 older runs are left out"
sqlite3 "$TMP/a.db" "SELECT i.xxh128 FROM inputs i JOIN sweep_jobs j ON j.run_id = i.run_id WHERE i.role = 'device'
                     AND j.job LIKE '%input.device=' || i.xxh128 || '%'" | grep -c '' | grep -qx 240
ok $? "each job names the content hash its run recorded for the device profile"

diag "an edited spec rerun into the same store: the figure shows its own grid"
sed 's/^sim.requests = 32/sim.requests = 16/' "$spec" > "$TMP/fig10r16.ini"
cp "$TMP/q.db" "$TMP/b.db"
"$D2MOE" sweep "$TMP/fig10r16.ini" --quick --db "$TMP/b.db" --quiet; ok $? "fig10 with sim.requests = 16, --quick, into the store of the original"
fig "$TMP/b.db" "$TMP/fb" && [ "$(rows "$TMP/fb/data/fig10a.dat")" -eq 24 ]; ok $? "fig10a: 24 rows, not both grids' 48"
[ "$(awk '!/^#/ && NF' "$TMP/fb/data/fig10a.dat" | cut -f1,2 | sort | uniq -d | grep -c '')" -eq 0 ]; ok $? "each (method, budget) once"
grep -q "192 runs of variant base not shown" "$TMP/fb.err"; ok $? "and plot says the other grid's 192 runs are left out"
"$D2MOE" export --db "$TMP/b.db" --sweep fig10 --format json > "$TMP/b.json" 2> "$TMP/b.err"
[ "$(jq length "$TMP/b.json")" -eq 192 ] && [ "$(jq -c '[.[]."sim.requests"] | unique' "$TMP/b.json")" = '["16"]' ]
ok $? "export --sweep: the 192 runs of the latest grid (requests 16)"
grep -q "192 runs of variant base not shown.*without --sweep lists every run" "$TMP/b.err"; ok $? "export --sweep says so too"
[ "$("$D2MOE" export --db "$TMP/b.db" --format json 2>/dev/null | jq length)" -eq 384 ]; ok $? "export without --sweep: all 384 runs"
"$D2MOE" sweep "$spec" --quick --db "$TMP/b.db" 2> "$TMP/b2.err" && grep -q "0 run, 192 already stored" "$TMP/b2.err"
ok $? "the original spec again: nothing runs"
fig "$TMP/b.db" "$TMP/fb2" && fig "$TMP/q.db" "$TMP/fq" && cmp -s "$TMP/fb2/data/fig10a.dat" "$TMP/fq/data/fig10a.dat"
ok $? "and the figure is the original's again (its grid is the latest)"

diag "runs merged from an older code version never replace newer ones"
cp "$TMP/q.db" "$TMP/old.db"
# an older store: another code version, other uids, earlier times, half the throughput
sqlite3 "$TMP/old.db" "UPDATE runs SET code_version = 'oldver', uid = uid || 'x',
                              started_at = '2026-01-01T00:00:00.000Z', ended_at = '2026-01-01T00:00:01.000Z';
                       UPDATE sweep_jobs SET code_version = 'oldver';
                       UPDATE sweep_grid SET at = '2026-01-01T00:00:00.000Z';
                       UPDATE metrics SET value = value / 2 WHERE name = 'throughput_tps';"
cp "$TMP/q.db" "$TMP/c.db"
"$D2MOE" merge "$TMP/c.db" "$TMP/old.db" | grep -q "192 runs added"; ok $? "merge the older store: its 192 runs added (higher ids)"
fig "$TMP/c.db" "$TMP/fc" && cmp -s "$TMP/fc/data/fig10a.dat" "$TMP/fq/data/fig10a.dat"
ok $? "fig10a: the newer runs' values, as before the merge"
[ "$("$D2MOE" export --db "$TMP/c.db" --sweep fig10 --format json 2>/dev/null | jq -c '[.[].code_version] | unique | length')" -eq 1 ] &&
    [ "$("$D2MOE" export --db "$TMP/c.db" --sweep fig10 --format json 2>/dev/null | jq length)" -eq 192 ]
ok $? "export --sweep: one run per job (192), of one code version"

diag "--quick, then the full spec into the same store"
cp "$TMP/q.db" "$TMP/g.db"
"$D2MOE" sweep "$spec" --db "$TMP/g.db" -j 2 2> "$TMP/g.err"
grep -q "576 jobs in this shard: 384 run, 192 already stored" "$TMP/g.err"; ok $? "the full grid reuses the 192 --quick jobs (-j 2)"
fig "$TMP/g.db" "$TMP/fg" && [ "$(rows "$TMP/fg/data/fig10a.dat")" -eq 72 ]; ok $? "fig10a: the full grid's 72 rows"
[ "$(awk '!/^#/ && NF' "$TMP/fg/data/fig10a.dat" | cut -f2 | sort -un | tr '\n' ' ')" = "200 500 800 1100 1400 1700 2000 2300 2600 " ]
ok $? "every budget of the full grid, the --quick ones included"
[ ! -s "$TMP/fg.err" ]; ok $? "and nothing is left out (no note)"

diag "shards merged equal the unsharded sweep"
# the output already holds another grid of fig10, swept before the shards
"$D2MOE" sweep "$TMP/fig10r16.ini" --quick --db "$TMP/m.db" --quiet
"$D2MOE" sweep "$spec" --quick --db "$TMP/s0.db" --shard 0/2 --quiet && "$D2MOE" sweep "$spec" --quick --db "$TMP/s1.db" --shard 1/2 --quiet
ok $? "fig10 --quick as shards 0/2 and 1/2"
[ "$(sqlite3 "$TMP/s0.db" "SELECT grid, count(*) FROM sweep_grid GROUP BY grid")" = "$(sqlite3 "$TMP/s1.db" "SELECT grid, count(*) FROM sweep_grid GROUP BY grid")" ]
ok $? "both shards record the same grid of all 192 jobs"
"$D2MOE" merge "$TMP/m.db" "$TMP/s0.db" "$TMP/s1.db" > /dev/null; ok $? "merged into a store holding an older grid"
fig "$TMP/m.db" "$TMP/fm" && cmp -s "$TMP/fm/data/fig10a.dat" "$TMP/fq/data/fig10a.dat"; ok $? "fig10a of the merged shards = the unsharded sweep's"
"$D2MOE" merge "$TMP/m.db" "$TMP/s0.db" "$TMP/s1.db" | grep -c " 0 runs added" | grep -qx 2; ok $? "merging again adds nothing"
[ "$(sqlite3 "$TMP/m.db" "SELECT count(*) FROM sweep_grid")" -eq 384 ]; ok $? "and no grid row twice (2 grids x 192 jobs)"

diag "a store without grid rows (written before grids existed): every job, as before"
sqlite3 "$TMP/b.db" "DELETE FROM sweep_grid"
fig "$TMP/b.db" "$TMP/fl" && [ "$(rows "$TMP/fl/data/fig10a.dat")" -eq 48 ]; ok $? "fig10a shows the runs of both specs (48 rows), as before grids"
done_testing
