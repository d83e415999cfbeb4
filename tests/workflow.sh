#!/bin/sh
# workflow.sh - the researcher's workflow (issue 14): runs of different
# variants never mix in a figure; plot --sweep and plot timeline; export and
# the runs_wide view (columns and row count against the store); the HTML
# report rendered by a real browser (SKIP without chromium); the profile
# search order; a bad spec value fails before any run and stores nothing.
. "${D2_SRCDIR:-.}/tests/lib.sh"
command -v sqlite3 >/dev/null || { skip "sqlite3 command-line tool not installed"; done_testing; exit 0; }
command -v gnuplot >/dev/null || { skip "gnuplot not installed"; done_testing; exit 0; }

cat > "$TMP/t.ini" <<'SPEC'
[sweep]
name = wt
model = llama-moe-3.5b
device = env1
sim.policy = d2moe-v1, moqe-dynaio-int4
sim.budget = 600M, 1200M
sim.requests = 2
sim.prompt = 4
sim.gen = 4
SPEC
db="$TMP/w.db"
diag "progress: sweeps"
"$D2MOE" sweep "$TMP/t.ini" --db "$db" --quiet; ok $? "sweep: 4 jobs"
[ "$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE variant = 'base'")" -eq 4 ]; ok $? "runs without overrides are variant base"

# a figure of figures.ini, pointed at this sweep (the Fig. 10 query)
mkdir -p "$TMP/plots" && cp -r "$D2_SRCDIR"/plots/*.gp "$D2_SRCDIR"/plots/*.sql "$TMP/plots/"
cat > "$TMP/plots/figures.ini" <<'FIG'
[tfig]
title = test figure
sql = fig10.sql
sweep = wt
gp = fig10.gp
model = llama-moe-3.5b
device = env1
FIG
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$db" --out "$TMP/out" > "$TMP/p1" 2>&1; ok $? "figure of the sweep"
grep -q "(4 rows" "$TMP/p1"; ok $? "figure has 4 rows"
# the .dat header names each column (fig12's panels share one query: the third column is the figure's y_column)
mkdir -p "$TMP/plots2" && cp "$TMP"/plots/*.gp "$TMP"/plots/*.sql "$TMP/plots2/"
printf '[tmem]\ntitle = test memory panel\nsql = fig12.sql\nsweep = wt\ngp = fig12.gp\nwhat = memory\ny_column = peak_mem_mb\ngp.ylab = MB\n' > "$TMP/plots2/figures.ini"
printf '[tnocol]\ntitle = test panel without y_column\nsql = fig12.sql\nsweep = wt\ngp = fig12.gp\nwhat = memory\ngp.ylab = MB\n' >> "$TMP/plots2/figures.ini"
"$D2MOE" plot tmem --plots "$TMP/plots2" --db "$db" --out "$TMP/out" > "$TMP/tmem.out" 2>&1 && grep -qx "# series requests peak_mem_mb" "$TMP/out/data/tmem.dat"
ok $? "a .dat header names its columns (fig12.sql, memory panel: series requests peak_mem_mb)"
expect 2 "fig12.sql: column 3 is named \":y_column\", but \[tnocol\] of figures.ini has no key y_column" "a column named after a key the figure lacks: exit 2" -- \
    "$D2MOE" plot tnocol --plots "$TMP/plots2" --db "$db" --out "$TMP/out"
# every ":KEY" column of a shipped query has its key in each figure that uses the query
bad=""
for f in $(sed -n 's/^\[\(.*\)\]$/\1/p' "$D2_SRCDIR/plots/figures.ini"); do
    sql=$(sed -n "/^\[$f\]$/,/^\[/s/^sql = //p" "$D2_SRCDIR/plots/figures.ini")
    [ -n "$sql" ] || continue
    for k in $(grep -o 'AS ":[a-z_]*"' "$D2_SRCDIR/plots/$sql" | sed 's/AS ":\(.*\)"/\1/'); do
        sed -n "/^\[$f\]$/,/^\[/p" "$D2_SRCDIR/plots/figures.ini" | grep -q "^$k = " || bad="$bad $f:$k"
    done
done
[ -z "$bad" ]; ok $? "every figure whose query names a column :KEY gives KEY in figures.ini${bad:+ (missing:$bad)}"

# the same sweep rerun with one changed assumption into the same store
"$D2MOE" sweep "$TMP/t.ini" --db "$db" --quiet --set device.flash_bw=7G; ok $? "rerun with --set device.flash_bw=7G"
v=$(sqlite3 "$db" "SELECT DISTINCT variant FROM runs WHERE variant != 'base'")
case "$v" in v????????) ok 0 "the rerun's runs are variant $v";; *) ok 1 "the rerun's runs get a digest variant ($v)";; esac
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$db" --out "$TMP/out" > "$TMP/p2" 2>&1; st=$?
if [ $st -eq 0 ]; then grep -q "(4 rows" "$TMP/p2"; ok $? "after the rerun the figure keeps its 4 rows"
else [ $st -eq 2 ]; ok $? "after the rerun the figure stops with exit 2"; fi
grep -q "also holds $v" "$TMP/p2"; ok $? "plot says the store holds another variant"
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$db" --out "$TMP/out" --variant "$v" > "$TMP/p3" 2>&1 && grep -q "(4 rows" "$TMP/p3"
ok $? "--variant $v: its 4 rows"
"$D2MOE" db info "$db" > "$TMP/info"; grep -Eq "^base +4 " "$TMP/info" && grep -Eq "^$v +4 .*device.flash_bw=7000000000" "$TMP/info"
ok $? "db info lists both variants with their overrides"
expect 2 "already stands for" "sweep --as NAME: a name never stands for two sets of overrides" -- \
    "$D2MOE" sweep "$TMP/t.ini" --db "$db" --quiet --as "$v" --set device.flash_bw=5G
# two variants, neither the spec's own: a figure would mix them
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/m.db" --quiet --set device.flash_bw=7G
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/m.db" --quiet --set device.flash_bw=5G
expect 2 "2 variants that differ in device.flash_bw" "figure of two variants, none the spec's own: exit 2 naming the key" -- \
    "$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/m.db" --out "$TMP/out"
expect 2 "differ in device.flash_bw" "plot --sweep of two variants: exit 2" -- \
    "$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --db "$TMP/m.db" -o "$TMP/m.png"

diag "progress: a --set of the value a job already has is no override"
# each into a fresh store first: the runs must be base, the spec's own, not a variant named after a no-op
vars() { sqlite3 "$1" "SELECT variant || ':' || count(*) FROM runs GROUP BY variant ORDER BY variant" | tr '\n' ' '; }
for s in sim.requests=2 sim.prompt=4.0 sim.kv_bits=16 device.flash_bw=3.5G seed=1 readings=datasheet; do
    rm -f "$TMP/n.db"
    "$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n.db" --set "$s" > /dev/null 2> "$TMP/n.err"; st=$?
    [ $st -eq 0 ] && [ "$(vars "$TMP/n.db")" = "base:4 " ] && grep -q "(variant base): 4 jobs" "$TMP/n.err" &&
        grep -q "^d2moe sweep: note: not overrides, as they change no job .*: --set $s\$" "$TMP/n.err"
    ok $? "--set $s (what every job has): 4 runs of variant base, said so ($(vars "$TMP/n.db"))"
    "$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n.db" 2>&1 | grep -q "(variant base): 4 jobs in this shard: 0 run, 4 already stored"
    ok $? "--set $s: the plain sweep then finds its jobs stored"
done
# one of a swept axis's values: the base grid narrowed to it, not a variant holding base jobs
rm -f "$TMP/n.db"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n.db" --set sim.budget=600M --quiet && "$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n.db" --quiet
[ "$(vars "$TMP/n.db")" = "base:4 " ]; ok $? "--set sim.budget=600M (one of the axis's values), then the spec: 4 runs of base"
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/n.db" --out "$TMP/out" > "$TMP/n.p" 2>&1 && grep -q "(4 rows" "$TMP/n.p"
ok $? "and the base figure has all 4 rows (the 600M ones were not taken away)"
# a real change stays an override; a value that is env1's (3.5 GB/s) but not raspberry-pi-5's (500 MB/s) is one
rm -f "$TMP/n.db"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n.db" --quiet --set sim.requests=3
case "$(vars "$TMP/n.db")" in "v"????????":4 ") ok 0 "--set sim.requests=3: a digest variant";; *) ok 1 "--set sim.requests=3: a digest variant ($(vars "$TMP/n.db"))";; esac
sed 's/^device = env1$/device = env1, raspberry-pi-5/' "$TMP/t.ini" > "$TMP/t2.ini"
"$D2MOE" sweep "$TMP/t2.ini" --db "$TMP/n2.db" --quiet --set device.flash_bw=3.5G
[ "$(sqlite3 "$TMP/n2.db" "SELECT count(*) FROM runs WHERE variant != 'base'")" -eq 8 ]; ok $? "--set device.flash_bw=3.5G over env1 and raspberry-pi-5: an override for all 8 jobs (the Pi's differs)"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/n3.db" --quiet --as base --set sim.requests=2; ok $? "--as base with a --set that changes nothing: accepted"

diag "progress: plot --sweep, plot timeline"
"$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --series sim.policy --db "$db" -o "$TMP/s.png" > "$TMP/s.out"
ok $? "plot --sweep"
[ -s "$TMP/s.png" ] && grep -q "4 runs, 2 series, variant base" "$TMP/s.out"; ok $? "plot --sweep: 4 runs, 2 series, base"
"$D2MOE" plot --sweep wt --x sim.policy --y peak_mem_mb --where sim.budget=600M --db "$db" -o "$TMP/s.svg" > "$TMP/s2.out"
grep -q "2 runs, 1 series" "$TMP/s2.out" && grep -q "<svg" "$TMP/s.svg"; ok $? "plot --sweep: categorical x, --where 600M keeps 2 runs, SVG"
# the run columns export writes are keys too: variant as --series draws every variant (base and the flash_bw=7G rerun)
"$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --series variant --where sim.policy=d2moe-v1 --db "$db" -o "$TMP/v.png" > "$TMP/v.out" 2> "$TMP/v.err"
[ $? -eq 0 ] && grep -q "4 runs, 2 series" "$TMP/v.out" && [ "$(grep -v '^#' "$TMP/v.png.dat" | cut -f1 | grep . | sort -u | tr '\n' ' ')" = "base $v " ]
ok $? "plot --sweep --series variant: one line per variant (base, $v)"
"$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --series sim.policy --where variant="$v" --db "$db" -o "$TMP/v2.png" > "$TMP/v2.out" 2>&1 &&
    grep -q "4 runs, 2 series" "$TMP/v2.out"; ok $? "plot --sweep --where variant=$v: that variant's 4 runs"
"$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --series status --where sim.policy=d2moe-v1 --db "$db" -o "$TMP/v3.png" > /dev/null 2>&1 &&
    [ "$(grep -v '^#' "$TMP/v3.png.dat" | cut -f1 | grep . | sort -u)" = ok ]; ok $? "plot --sweep --series status (a run column)"
expect 2 "--series varient: no parameter, metric or run column .*did you mean 'variant'" "a misspelt run column: exit 2 with a suggestion" -- \
    "$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --series varient --db "$db" -o "$TMP/v4.png"
# a sweep narrowed by --set that runs nothing still makes its grid the latest (README "What a figure shows"):
# it says so, and plot --where finds the runs outside it, with a note
cp "$db" "$TMP/g.db"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/g.db" --set sim.budget=1200M > /dev/null 2> "$TMP/g.err"
grep -q "0 run, 2 already stored" "$TMP/g.err" && grep -q "^sweep wt: note: figures now show this sweep's grid .*2 runs of variant base not shown" "$TMP/g.err"
ok $? "sweep --set sim.budget=1200M, all stored: a note says the figures now show its narrower grid"
"$D2MOE" plot --sweep wt --x sim.policy --y throughput_tps --where sim.budget=600M --db "$TMP/g.db" -o "$TMP/g.png" > "$TMP/g.out" 2> "$TMP/g2.err"
[ $? -eq 0 ] && grep -q "2 runs, 1 series, variant base" "$TMP/g.out" && grep -q "no run of the latest grid of wt matches every --where; drawn instead" "$TMP/g2.err"
ok $? "then plot --where sim.budget=600M: the 2 runs outside the latest grid drawn, with a note"
"$D2MOE" plot --sweep wt --x sim.policy --y throughput_tps --where sim.budget=1200M --db "$TMP/g.db" -o "$TMP/g.png" > /dev/null 2> "$TMP/g3.err" &&
    ! grep -q "drawn instead" "$TMP/g3.err"; ok $? "and --where sim.budget=1200M (in the latest grid): no such note"
"$D2MOE" plot --sweep wt --x sim.policy --y throughput_tps --where sim.budget=900M --db "$TMP/g.db" -o "$TMP/g.png" > /dev/null 2> "$TMP/g4.err"
[ $? -eq 2 ] && grep -q "no run has it; its values: 1200000000, 600000000" "$TMP/g4.err"; ok $? "--where of a value no run has: still exit 2"
# numeric x in numeric order (text order would put 1400M before 500M), and
# a line never joins runs that differ in another swept key
cat > "$TMP/t3.ini" <<'SPEC'
[sweep]
name = wt3
model = llama-moe-3.5b
device = env1, env2
sim.policy = d2moe-v1
sim.budget = 500M, 1400M, 2600M
sim.requests = 2
sim.prompt = 4
sim.gen = 4
SPEC
"$D2MOE" sweep "$TMP/t3.ini" --db "$TMP/w3.db" --quiet
"$D2MOE" plot --sweep wt3 --x sim.budget --y throughput_tps --where device=env1 --db "$TMP/w3.db" -o "$TMP/o3.png" > /dev/null &&
    [ "$(grep -v '^#' "$TMP/o3.png.dat" | cut -f2 | grep . | tr '\n' ' ')" = "500000000 1400000000 2600000000 " ]
ok $? "plot --sweep: x in numeric order (500M, 1400M, 2600M)"
expect 2 "differ in device; pick one with --where" "plot --sweep: a line would mix two devices at one x: exit 2 naming the key" -- \
    "$D2MOE" plot --sweep wt3 --x sim.budget --y throughput_tps --db "$TMP/w3.db" -o "$TMP/o4.png"
"$D2MOE" plot --sweep wt3 --x sim.budget --y throughput_tps --series device --db "$TMP/w3.db" -o "$TMP/o5.png" | grep -q "6 runs, 2 series"
ok $? "plot --sweep: the same runs with --series device: 2 lines"
expect 2 "did you mean 'throughput_tps'" "plot --sweep: unknown metric suggests a name" -- \
    "$D2MOE" plot --sweep wt --x sim.budget --y throughput_tp --db "$db" -o "$TMP/x.png"
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --policy d2moe-v1 --requests 2 --prompt 4 --gen 4 --timeline "$TMP/tl.csv" > /dev/null
"$D2MOE" plot timeline "$TMP/tl.csv" -o "$TMP/tl.png" > /dev/null && [ -s "$TMP/tl.png" ]; ok $? "plot timeline"
printf 'a,b\n1,2\n' > "$TMP/bad.csv"
expect 2 "bad.csv:1: not a timeline" "plot timeline of a CSV that is not one: exit 2, file:line" -- "$D2MOE" plot timeline "$TMP/bad.csv" -o "$TMP/b.png"

diag "progress: export"
"$D2MOE" export --db "$db" -o "$TMP/all.csv" 2>/dev/null; ok $? "export (CSV)"
runs=$(sqlite3 "$db" "SELECT count(*) FROM runs")
[ "$(($(grep -c '' "$TMP/all.csv") - 1))" -eq "$runs" ]; ok $? "export: one row per run ($runs)"
want=$(sqlite3 "$db" "SELECT 10 + (SELECT count(DISTINCT key) FROM params) + (SELECT count(DISTINCT name) FROM metrics)")
prov=$(sqlite3 "$db" "SELECT 5 + 2 * (SELECT count(DISTINCT role) FROM inputs)")
got=$(head -1 "$TMP/all.csv" | tr ',' '\n' | grep -c '')
[ "$got" -eq "$((want + prov))" ]; ok $? "export: columns = fixed 10 + provenance $prov + every param key + every metric ($got, want $((want + prov)))"
# provenance: the runs row's and every input file's hash and path, as stored
head -1 "$TMP/all.csv" | tr -d '\r' | tr ',' '\n' | sed -n 11,21p | tr '\n' ' ' |
    grep -q "^ended_at host cmdline rng config_hash inputs.device inputs.device.path inputs.model inputs.model.path inputs.reading inputs.reading.path $"
ok $? "export (CSV): ended_at, host, cmdline, rng, config_hash, inputs.ROLE and inputs.ROLE.path after the fixed columns"
"$D2MOE" export --db "$db" --format json 2>/dev/null | jq -r '.[] | [.run_id, .host, .cmdline, .rng, .config_hash, .["inputs.model"], .["inputs.device.path"]] | @tsv' > "$TMP/prov.j"
sqlite3 -separator '	' "$db" "SELECT r.id, r.host, r.cmdline, r.rng, r.config_hash, m.xxh128, d.path FROM runs r
    JOIN inputs m ON m.run_id = r.id AND m.role = 'model' JOIN inputs d ON d.run_id = r.id AND d.role = 'device' ORDER BY r.id" > "$TMP/prov.s"
[ -s "$TMP/prov.s" ] && cmp -s "$TMP/prov.j" "$TMP/prov.s" && grep -q "sweep" "$TMP/prov.j"
ok $? "export (JSON): each run's host, cmdline, rng, config_hash and input hashes and paths, as in the store"
head -1 "$TMP/all.csv" | tr -d '\r' | tr ',' '\n' | sed -n 1,5p | tr '\n' ' ' | grep -q "^run_id uid sweep variant status "
ok $? "export: run_id, uid, sweep, variant, status first"
head -1 "$TMP/all.csv" | tr -d '\r' | tr ',' '\n' | grep -qx "sim.budget"; ok $? "export: a column per param (sim.budget)"
[ "$(sqlite3 "$db" "SELECT count(*) FROM runs_wide")" -eq "$runs" ] &&
    [ "$(sqlite3 "$db" "SELECT count(*) FROM pragma_table_info('runs_wide')")" -eq "$want" ]
ok $? "view runs_wide: same rows and columns"
n=$("$D2MOE" export --db "$db" --sweep wt --format json 2>/dev/null | jq length 2>/dev/null)
[ "$n" = 4 ]; ok $? "export --sweep wt --format json: the 4 runs of the spec's own variant ($n)"
expect 2 "differ in device.flash_bw" "export --sweep of two variants, none the spec's own: exit 2" -- "$D2MOE" export --db "$TMP/m.db" --sweep wt

diag "progress: say what you did"
tr="$D2_SRCDIR/traces/llama-moe-3.5b.r2.p16.d32.s2.d2t"
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --trace "$tr" --requests 32 --prompt 16 --gen 32 --db "$TMP/tr.db" 2> "$TMP/tr.err" > /dev/null
grep -q "has 2 requests; the run's 32 requests reuse them: its routing is repeated 16 times" "$TMP/tr.err"; ok $? "a 2-request trace replayed for 32 requests: a line on stderr"
[ "$(sqlite3 "$TMP/tr.db" "SELECT value FROM metrics WHERE name = 'trace_repeats'")" = "16.0" ]; ok $? "and trace_repeats = 16 stored"
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --trace "$tr" --requests 2 --prompt 16 --gen 40 2> "$TMP/tr2.err" > /dev/null
grep -q "2 of them are shorter (down to 48 positions) than the run's 56" "$TMP/tr2.err"; ok $? "requests shorter than prompt + gen: said too"
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --trace "$tr" --requests 2 --prompt 16 --gen 32 2> "$TMP/tr3.err" > /dev/null
[ ! -s "$TMP/tr3.err" ]; ok $? "a trace long enough: nothing said"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/np.db" 2> "$TMP/np.err" > /dev/null
grep -q "no quantizer error table (quant_errors), so est_ppl is stored empty; 'd2moe reproduce' fills it" "$TMP/np.err"; ok $? "a sweep says why est_ppl is empty and how to fill it"

diag "progress: whole-spec validation"
sed 's/^sim.policy = .*/sim.policy = d2moe-v1, edgemo/' "$TMP/t.ini" > "$TMP/bad.ini"
expect 2 "bad.ini:5: sim.policy: \"edgemo\" is not a named system \(did you mean 'edgemoe'\?\)" \
    "a bad system name in a spec: exit 2 at file:line" -- "$D2MOE" sweep "$TMP/bad.ini" --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ] || [ "$(sqlite3 "$TMP/bad.db" "SELECT count(*) FROM runs")" -eq 0 ]; ok $? "and nothing is stored"
sed 's/^sim.budget = .*/sim.budget = 600M, 12x/' "$TMP/t.ini" > "$TMP/bad2.ini"
expect 2 "bad2.ini:6: " "a malformed value in a spec: exit 2 at file:line" -- "$D2MOE" sweep "$TMP/bad2.ini" --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ]; ok $? "and no store is created"
# reading names are checked like other names: the name, and the reading's
# own file (its settings) before any run
printf 'readings = datasheet, paper-testbd\n' >> "$TMP/t.ini.r" && cat "$TMP/t.ini" "$TMP/t.ini.r" > "$TMP/bad3.ini"
expect 2 "bad3.ini:10: readings: .*paper-testbd.*did you mean 'paper-testbed'" "an unknown reading in a spec: exit 2 at file:line with a suggestion" -- \
    "$D2MOE" sweep "$TMP/bad3.ini" --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ]; ok $? "and no store is created"
printf 'device.flash_bw = 3.5G\ndevice.compute_eff = fast\n' > "$TMP/myreading.ini"
{ cat "$TMP/t.ini"; echo "readings = datasheet, $TMP/myreading.ini"; } > "$TMP/bad4.ini"
expect 2 "bad4.ini:10: readings: .*myreading.ini:2: " "a reading file with a bad setting: exit 2 naming the spec line and the reading's line" -- \
    "$D2MOE" sweep "$TMP/bad4.ini" --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ]; ok $? "and no store is created"
expect 2 "--readings paper-testbd: .*did you mean 'paper-testbed'" "sweep --readings with an unknown name: exit 2 before any run" -- \
    "$D2MOE" sweep "$TMP/t.ini" --readings paper-testbd --db "$TMP/bad.db"
[ ! -e "$TMP/bad.db" ]; ok $? "and no store is created"

diag "progress: legacy runs (stored before variants existed)"
# a store whose runs predate variants: the 4.0 -> 5 migration marks them
# 'legacy' (overrides unknown).  Made here from a fresh store the same way.
legacy() { # legacy DB: every run of DB becomes a legacy run of an older code version
    sqlite3 "$1" "UPDATE runs SET variant = 'legacy'; DELETE FROM variants WHERE name != 'legacy';
                  INSERT OR IGNORE INTO variants(name, overrides, reading, named, created_at) VALUES('legacy', '(unknown: stored before variants existed)', '', 0, 0);
                  UPDATE sweep_jobs SET code_version = 'old';"
}
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/lg.db" --quiet && legacy "$TMP/lg.db"; ok $? "a store of legacy runs"
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/lg.db" --out "$TMP/out" > "$TMP/l1" 2>&1 && grep -q "(4 rows" "$TMP/l1"
ok $? "legacy runs only: the figure shows them (one variant, no ambiguity)"
cp "$TMP/lg.db" "$TMP/lg2.db"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/lg.db" --quiet; ok $? "the same spec rerun into it"
[ "$(sqlite3 "$TMP/lg.db" "SELECT count(*) FROM runs WHERE variant = 'base'")" -eq 4 ]; ok $? "4 new base runs beside 4 legacy ones"
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/lg.db" --out "$TMP/out" > "$TMP/l2" 2>&1; st=$?
[ $st -eq 0 ] && grep -q "(4 rows" "$TMP/l2" && grep -q "variant base shown; wt also holds legacy (4 runs" "$TMP/l2"
ok $? "legacy + base: the figure shows base's 4 rows only, and says legacy is there"
n=$("$D2MOE" export --db "$TMP/lg.db" --sweep wt --format json 2>/dev/null | jq '[.[] | select(.variant == "base")] | length')
[ "$n" = 4 ]; ok $? "export --sweep: base's 4 runs"
"$D2MOE" sweep "$TMP/t.ini" --db "$TMP/lg2.db" --quiet --set device.flash_bw=7G; ok $? "legacy store rerun with a --set"
expect 2 "2 variants that differ in device.flash_bw, \(unknown for legacy runs\): legacy \(4 runs.*\); v[0-9a-f]+ \(4 runs" \
    "legacy + an override variant: a figure stops with exit 2 naming both" -- \
    "$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/lg2.db" --out "$TMP/out"
expect 2 "unknown for legacy runs" "plot --sweep of them: exit 2 too" -- \
    "$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --db "$TMP/lg2.db" -o "$TMP/l.png"
"$D2MOE" plot tfig --plots "$TMP/plots" --db "$TMP/lg2.db" --out "$TMP/out" --variant legacy > "$TMP/l3" 2>&1 && grep -q "(4 rows" "$TMP/l3"
ok $? "--variant legacy: its 4 rows"

diag "progress: option values"
S="simulate --model llama-moe-3.5b --device env1 --requests 1 --prompt 2 --gen 2"
# shellcheck disable=SC2086
"$D2MOE" $S --budget 1500mb --json | jq -e '.params["sim.budget"] == "1500000000"' > /dev/null; ok $? "--budget 1500mb: suffixes in any case (1.5e9 bytes)"
# shellcheck disable=SC2086
expect 2 "^d2moe simulate: --budget: expected an integer, got \"1500xb\" \(suffixes k M G T or Ki Mi Gi Ti, any case" \
    "--budget 1500xb: the error names --budget and lists the suffixes" -- "$D2MOE" $S --budget 1500xb
# shellcheck disable=SC2086
expect 2 "^d2moe simulate: --requests: 0 is outside \[1, " "--requests 0: the range, naming --requests" -- "$D2MOE" simulate --model llama-moe-3.5b --device env1 --requests 0 --prompt 2 --gen 2
# shellcheck disable=SC2086
expect 2 "^d2moe: --set: sim.budget: expected an integer" "--set sim.budget=x names --set and the key as typed (sim.budget)" -- "$D2MOE" $S --set sim.budget=x
# shellcheck disable=SC2086
expect 2 "a range lo..hi:step belongs in a sweep spec" "--set with a range says ranges belong in a spec" -- "$D2MOE" $S --set sim.budget=1..2:3
# shellcheck disable=SC2086
expect 2 "outside \[1, 4096\]$" "a range message without units ends without a trailing space" -- "$D2MOE" $S --set sim.profile_requests=0
expect 2 "no sweep named wt9 \(did you mean 'wt'\?\)" "export: an unknown sweep suggests the closest" -- "$D2MOE" export --db "$db" --sweep wt9
expect 2 "no sweep named wt9 \(did you mean 'wt'\?\)" "plot --sweep: an unknown sweep suggests the closest" -- \
    "$D2MOE" plot --sweep wt9 --x sim.budget --y throughput_tps --db "$db" -o "$TMP/x.png"
expect 2 "no run has it \(did you mean 'd2moe-v1'\?\)" "plot --sweep: a --where value no run has suggests one" -- \
    "$D2MOE" plot --sweep wt --x sim.budget --y throughput_tps --where sim.policy=d2moe-v --db "$db" -o "$TMP/x.png"
# shellcheck disable=SC2086
expect 2 "^d2moe: --set: sim.bugdet: not a sim key \(did you mean 'sim.budget'\?\) \('d2moe simulate --help' lists them\)$" "--set with a misspelt key: did you mean" -- "$D2MOE" $S --set sim.bugdet=1G
expect 2 "sim.budget : not a sim key \\(no blanks around '=': --set sim.KEY=VALUE\\)" "--set 'key = value': the blanks named" -- "$D2MOE" $S --set "sim.budget = 1G"
expect 2 "--set name=foo: write the table before the key \\(model.name or device.name\\)" "--set without its table: refused, naming the tables that have the key" -- "$D2MOE" $S --set name=foo
# shellcheck disable=SC2086
expect 2 "^d2moe: --policy: \"d2moe-v3\" is not a named system \(did you mean 'd2moe-v1'\?\) \('d2moe simulate --list' lists them\)$" "--policy with an unknown system: did you mean" -- "$D2MOE" $S --policy d2moe-v3
sed 's/^sim.budget = .*/sim.budget = 600M..1200M:x/' "$TMP/t.ini" > "$TMP/bad5.ini"
expect 2 "bad5.ini:6: sim.budget: .*expected lo..hi, lo..hi:step or lo..hi\*factor, e.g. 200M..2600M:300M" \
    "a malformed range: exit 2 showing the range syntax" -- "$D2MOE" sweep "$TMP/bad5.ini" --db "$TMP/bad.db"
sed 's/^sim.budget = .*/sim.budget = 600M...1200M:300M/' "$TMP/t.ini" > "$TMP/bad6.ini"
expect 2 "bad6.ini:6: sim.budget: malformed range" "three dots: a malformed range, not lo > hi" -- "$D2MOE" sweep "$TMP/bad6.ini" --db "$TMP/bad.db"

diag "progress: profile search order"
mkdir -p "$TMP/cwd/experiments/devices" "$TMP/env/devices" "$TMP/opt/devices"
for d in "$TMP/cwd/experiments" "$TMP/env" "$TMP/opt"; do
    sed 's/^name = env1$/name = envx/' "$D2_SRCDIR/experiments/devices/env1.ini" > "$d/devices/envx.ini"
done
origin() { (cd "$TMP/cwd" && "$@" list devices | awk '$1 == "envx" { print $(NF-1) }'); }
[ "$(origin env D2MOE_PROFILES="$TMP/env" "$D2MOE" --profiles "$TMP/opt")" = "--profiles" ]; ok $? "--profiles DIR comes first"
[ "$(origin env D2MOE_PROFILES="$TMP/env" "$D2MOE")" = "\$D2MOE_PROFILES" ]; ok $? "then \$D2MOE_PROFILES"
[ "$(origin env -u D2MOE_PROFILES "$D2MOE")" = "./experiments" ]; ok $? "then ./experiments"
(cd "$TMP" && env -u D2MOE_PROFILES "$D2MOE" list devices | grep "^env1 " | grep -Eq "(installed|source tree) \(")
ok $? "then the installed folder or the source tree"
(cd "$TMP/cwd" && "$D2MOE" simulate --model llama-moe-3.5b --device envx --requests 1 --prompt 2 --gen 2 > /dev/null); ok $? "a profile of ./experiments is usable by name"

diag "progress: HTML report in a browser"
"$D2MOE" report --db "$db" --plots "$TMP/plots" -o "$TMP/r.html" > "$TMP/r.out"; ok $? "report"
nfig=$(grep -o '<figure ' "$TMP/r.html" | grep -c '')
[ "$nfig" -eq 1 ] && [ "$(grep -c 'http://\|https://' "$TMP/r.html")" -eq "$(grep -c 'xmlns' "$TMP/r.html")" ]
ok $? "report: 1 figure, no link but SVG namespaces ($nfig figures)"
grep -q "<dt>variant</dt><dd>base" "$TMP/r.html" && grep -q "xxh128" "$TMP/r.html"; ok $? "report: provenance with variant and input hashes"
grep -q '<dt>reading</dt><dd>datasheet ([0-9]* runs)' "$TMP/r.html" && ! grep -q '<dd></dd>\|not available' "$TMP/r.html"
ok $? "report: the reading of each figure's runs is named (no empty provenance line)"
grep -q 'none: every sweep here has its figures above' "$TMP/r.html"; ok $? "report: every sweep of this store has a figure"
# a researcher's own sweep that no figure draws: listed with what varies and a plot command that works
sed 's/^name = wt$/name = mine/' "$TMP/t.ini" > "$TMP/mine.ini"
"$D2MOE" sweep "$TMP/mine.ini" --db "$TMP/o.db" --quiet && "$D2MOE" report --db "$TMP/o.db" --plots "$TMP/plots" -o "$TMP/o.html" > "$TMP/o.out"
st=$?
cmd=$(grep -o '<code>.*sweep mine.*</code>' "$TMP/o.html" | sed 's/<[^>]*>//g')
[ $st -eq 0 ] && grep -q '1 other sweep listed with a plot command' "$TMP/o.out" &&
    grep -q '<td>mine</td><td>4</td><td>sim.budget, sim.policy</td>' "$TMP/o.html" &&
    [ "$cmd" = "d2moe plot --sweep mine --x sim.budget --y throughput_tps --series sim.policy --db $TMP/o.db -o mine.png" ]
ok $? "report: a sweep no figure draws is listed with its keys and a plot command ($cmd)"
# shellcheck disable=SC2086
(cd "$TMP" && "$D2MOE" ${cmd#d2moe } > /dev/null) && [ -s "$TMP/mine.png" ]; ok $? "report: that command draws the sweep"
mkdir -p "$TMP/a b" && cp "$TMP/o.db" "$TMP/a b/o.db" && "$D2MOE" report --db "$TMP/a b/o.db" --plots "$TMP/plots" -o "$TMP/o2.html" > /dev/null
grep -q -- "--db '$TMP/a b/o.db'" "$TMP/o2.html"; ok $? "report: a store path with a blank is quoted in the command"
chrome=$(command -v chromium || command -v chromium-browser)
if [ -z "$chrome" ]; then
    skip "chromium not installed (apt-get install chromium)"; skip "chromium"; skip "chromium"
else
    # --no-sandbox: chromium refuses to run as root with its sandbox; a user keeps it
    nosb=""; [ "$(id -u)" -eq 0 ] && nosb="--no-sandbox"
    flags="--headless $nosb --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync"
    mkdir "$TMP/ud1" "$TMP/ud2"
    timeout 120 "$chrome" $flags --user-data-dir="$TMP/ud1" --window-size=1200,1400 --screenshot="$TMP/r.png" "file://$TMP/r.html" > /dev/null 2>&1
    [ -s "$TMP/r.png" ]; ok $? "chromium renders the report to a PNG"
    # a blank white 1200x1400 page is ~10 KB; a page with a figure and tables is far larger
    [ "$(wc -c < "$TMP/r.png")" -gt 40000 ]; ok $? "the screenshot is not blank ($(wc -c < "$TMP/r.png") bytes)"
    timeout 120 "$chrome" $flags --user-data-dir="$TMP/ud2" --dump-dom "file://$TMP/r.html" 2>/dev/null > "$TMP/dom"
    [ "$(grep -o '<svg role="img" class="fig"' "$TMP/dom" | grep -c '')" -eq "$nfig" ] && grep -q "gnuplot_plot_1" "$TMP/dom"
    ok $? "the browser's DOM holds every figure as SVG with its plot"
fi
done_testing
