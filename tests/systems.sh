#!/bin/sh
# systems.sh - issue 15's systems experiment: the two specs (systems.ini and
# systems-belady.ini) sweep the same grid but for sim.mem; one shard of each
# quick grid runs, the gap figure draws from it and the summary table joins
# each system's run with its belady twin.
. "${D2_SRCDIR:-.}/tests/lib.sh"
E="$D2_SRCDIR/experiments"
strip() { grep -v -e '^#' -e '^name = ' -e '^description = ' -e '^sim.mem = ' "$1"; }
strip "$E/systems.ini" > "$TMP/a"; strip "$E/systems-belady.ini" > "$TMP/b"
cmp -s "$TMP/a" "$TMP/b"; ok $? "systems-belady.ini is systems.ini with sim.mem = belady (same axes)"
grep -q '^sim.mem = belady$' "$E/systems-belady.ini"; ok $? "systems-belady.ini sets sim.mem = belady"
command -v sqlite3 >/dev/null || { skip "sqlite3 command-line tool not installed"; done_testing; exit 0; }
command -v gnuplot >/dev/null || { skip "gnuplot not installed"; done_testing; exit 0; }
db="$TMP/s.db"
"$D2MOE" sweep "$E/systems.ini" --quick --shard 0/5 --db "$db" --quiet; ok $? "systems --quick, shard 0/5"
"$D2MOE" sweep "$E/systems-belady.ini" --quick --shard 0/5 --db "$db" --quiet; ok $? "systems-belady --quick, shard 0/5"
# the shard's size follows the grid (it grows as systems are added): both
# specs run the same jobs, so each sweep stores the same number of runs
na=$(sqlite3 "$db" "SELECT count(*) FROM sweep_jobs j JOIN runs r ON r.id = j.run_id WHERE j.sweep = 'systems' AND r.status = 'ok'")
nb=$(sqlite3 "$db" "SELECT count(*) FROM sweep_jobs j JOIN runs r ON r.id = j.run_id WHERE j.sweep = 'systems-belady' AND r.status = 'ok'")
[ "$na" -ge 2 ] && [ "$na" -eq "$nb" ]; ok $? "each sweep stores the shard's runs, the same count ($na, $nb)"
"$D2MOE" plot systems-gap --db "$db" --out "$TMP/plots" > /dev/null && [ -s "$TMP/plots/systems-gap.png" ]
ok $? "the gap figure draws"
rows=$(grep -c '^[a-z]' "$TMP/plots/data/systems-gap.dat")
[ "$rows" -ge 1 ]; ok $? "its data has a row per (system, budget) with a belady twin ($rows)"
sqlite3 -separator ' ' -cmd ".param set :variant base" "$db" < "$D2_SRCDIR/plots/summary/systems.sql" > "$TMP/sum.txt"
[ "$(wc -l < "$TMP/sum.txt")" -eq "$na" ] && ! grep -q ' $' "$TMP/sum.txt"
ok $? "summary: a line per stored system ($na), each with its gap to belady"
done_testing
