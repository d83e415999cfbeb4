#!/bin/sh
# sweep.sh - real simulator sweeps through the CLI: bad specs fail before any
# run, kill -9 mid-way + rerun equals an uninterrupted run, shards + merge
# equal one unsharded run, merge is idempotent, --quick uses [quick].
. "${D2_SRCDIR:-.}/tests/lib.sh"
command -v sqlite3 >/dev/null || { skip "sqlite3 command-line tool not installed"; done_testing; exit 0; }

cat > "$TMP/s.ini" <<'SPEC'
[sweep]
name = t
model = llama-moe-3.5b
device = env1
sim.policy = d2moe-v1, moqe-dynaio-int4, matryoshka-free
sim.budget = 300M..2400M:300M
sim.requests = 8, 16
sim.prompt = 64
sim.gen = 64
[quick]
sim.budget = 600M
SPEC
# what a run computed, without the wall-clock planner time (measured, not simulated)
digest() {
    sqlite3 "$1" "SELECT j.job_hash, m.name, quote(m.value) FROM sweep_jobs j JOIN metrics m ON m.run_id = j.run_id
                  WHERE m.name NOT LIKE '%overhead%' ORDER BY 1, 2" | md5sum | cut -d' ' -f1
}
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/full.db" -j 2 --quiet; ok $? "uninterrupted sweep, 2 workers"
n=$(sqlite3 "$TMP/full.db" "SELECT count(*) FROM sweep_jobs"); [ "$n" -eq 48 ]; ok $? "48 jobs stored ($n)"
[ "$(sqlite3 "$TMP/full.db" "SELECT count(*) FROM metrics WHERE name = 'est_ppl'")" -eq 48 ]; ok $? "every run has est_ppl"
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/full.db" -j 2 2> "$TMP/rerun.err"; ok $? "rerun"
grep -q "0 run, 48 already stored" "$TMP/rerun.err"; ok $? "a rerun skips all 48"
"$D2MOE" sweep "$TMP/s.ini" --quick --db "$TMP/quick.db" --quiet
[ "$(sqlite3 "$TMP/quick.db" "SELECT count(*) FROM sweep_jobs")" -eq 6 ]; ok $? "--quick: [quick] budget list, 6 jobs"

# bad specs fail before any run starts, naming file:line
printf '[sweep]\nname = b\nmodel = llama-moe-3.5b\ndevice = env1\nsim.colour = red\n' > "$TMP/b1.ini"
expect 2 "b1.ini:5: sim.colour: not a sim key" "unknown key: file:line, exit 2" -- "$D2MOE" sweep "$TMP/b1.ini" --db "$TMP/b.db"
printf '[sweep]\nname = b\nmodel = llama-moe-3.5b\ndevice = env1\nsim.budget =\n' > "$TMP/b2.ini"
expect 2 "b2.ini:5: sim.budget: empty list" "empty list" -- "$D2MOE" sweep "$TMP/b2.ini" --db "$TMP/b.db"
printf '[sweep]\nname = b\nmodel = llama-moe-3.5b\ndevice = env1\nsim.budget = 1G..2G:-1\n' > "$TMP/b3.ini"
expect 2 "b3.ini:5: sim.budget: .*step must be > 0" "malformed range" -- "$D2MOE" sweep "$TMP/b3.ini" --db "$TMP/b.db"
printf '[sweep]\nname = b\nmodel = no-such-model\ndevice = env1\n' > "$TMP/b4.ini"
expect 2 "b4.ini:3: model:" "unknown model" -- "$D2MOE" sweep "$TMP/b4.ini" --db "$TMP/b.db"
printf '[sweep]\nname = b\nmodel = llama-moe-3.5b\ndevice = env1\nsim.requests = 0\n' > "$TMP/b5.ini"
expect 2 "b5.ini:5: requests: 0 is outside" "out-of-range value" -- "$D2MOE" sweep "$TMP/b5.ini" --db "$TMP/b.db"
[ ! -e "$TMP/b.db" ]; ok $? "no store was created by a bad spec"
expect 2 "--shard 3/3" "bad --shard" -- "$D2MOE" sweep "$TMP/s.ini" --db "$TMP/b.db" --shard 3/3

# values that parse but that no run accepts (alone or together): every job is
# resolved before any runs, so the sweep stops naming the spec line, and
# nothing is stored (fig10 reduced to one model and device)
v() { # v NAME POLICIES LINE7: a spec whose line 7 is the value under test
    printf '[sweep]\nname = v\nmodel = mixtral-8x7b\ndevice = env1\nsim.policy = %s\nsim.budget = 500M, 1400M\n%s\nsim.requests = 2\nsim.prompt = 8\nsim.gen = 8\n[quick]\nsim.budget = 600M\n' "$2" "$3" > "$TMP/$1.ini"
}
v v1 "d2moe-v1, d2moe-v2" "sim.nested_compute = uniform, bogus"
expect 2 'v1\.ini:7: sim\.nested_compute: "bogus": expected uniform or swiglu' "sim.nested_compute = bogus: file:line, exit 2" -- "$D2MOE" sweep "$TMP/v1.ini" --db "$TMP/v.db" -j 2
v v2 "d2moe-v1, d2moe-v2" "sim.caps = 0.5/0.6/0.3"
expect 2 'v2\.ini:7: sim\.caps: "0\.5/0\.6/0\.3": capacities sum to 1\.4, not 1' "caps that do not sum to 1: file:line, exit 2" -- "$D2MOE" sweep "$TMP/v2.ini" --db "$TMP/v.db"
v v3 "d2moe-v2" "sim.storage = v1k"
expect 2 'v3\.ini:7: sim\.storage: v1k has 3 levels; system d2moe-v2 has 4' "sim.storage = v1k with d2moe-v2: the line of the key blamed, exit 2" -- "$D2MOE" sweep "$TMP/v3.ini" --db "$TMP/v.db"
[ ! -e "$TMP/v.db" ]; ok $? "no store was created by those specs"
v v6 "hold-int8, d2moe-v1" "sim.bitroute = uniform:8"
expect 2 'v6\.ini:7: sim\.bitroute: uniform:8: system d2moe-v1 stores no 8-bit level' "two axes that do not go together (a later job): the line of the key blamed" -- "$D2MOE" sweep "$TMP/v6.ini" --db "$TMP/v.db"
v v4 "d2moe-v1, d2moe-v2" "seed = 1"
expect 2 '^d2moe: --set sim\.nested_compute=bogus: sim\.nested_compute: "bogus"' "a bad --set value names the option" -- "$D2MOE" sweep "$TMP/v4.ini" --db "$TMP/v.db" --set sim.nested_compute=bogus
v v7 "d2moe-v1" "sim.caps = 0.5/0.3/0.2"
printf 'sim.caps = 0.5/0.3/0.2, 0.5/0.5/0.5\n' >> "$TMP/v7.ini"
"$D2MOE" sweep "$TMP/v7.ini" --db "$TMP/v.db" --shard 0/100 --quiet 2> /dev/null && [ -e "$TMP/v.db" ] && rm -f "$TMP/v.db"
ok $? "(the spec runs without --quick)"
expect 2 'v7\.ini:13: sim\.caps: "0\.5/0\.5/0\.5": capacities sum to 1\.5' "--quick: the [quick] line of the value used" -- "$D2MOE" sweep "$TMP/v7.ini" --db "$TMP/v.db" --quick
v v5 "d2moe-v1, d2moe-v2" "sim.nested_kernel = per-level, per-level, fused, bogus"
expect 2 'v5\.ini:7: sim\.nested_kernel: "bogus"' "--shard: every shard checks every job (the bad one is in another shard)" -- "$D2MOE" sweep "$TMP/v5.ini" --db "$TMP/v.db" --shard 0/8
expect 2 'v5\.ini:7: sim\.nested_kernel: "bogus"' "--as and --readings: the same check" -- "$D2MOE" sweep "$TMP/v5.ini" --db "$TMP/v.db" --as trial --readings paper-testbed
[ ! -e "$TMP/v.db" ]; ok $? "still no store"
"$D2MOE" sweep "$TMP/v4.ini" --db "$TMP/v.db" --quiet; ok $? "the good spec runs"
before=$(sqlite3 "$TMP/v.db" "SELECT count(*), sum(status = 'failed') FROM runs")
"$D2MOE" sweep "$TMP/v1.ini" --db "$TMP/v.db" --quiet 2> /dev/null; rc=$?
[ $rc -eq 2 ] && [ "$before" = "4|0" ] && [ "$(sqlite3 "$TMP/v.db" "SELECT count(*), sum(status = 'failed') FROM runs")" = "$before" ]
ok $? "a bad spec into an existing store: exit 2 ($rc), the store untouched ($before runs, failed)"

# kill -9 the sweep mid-way (its process group), rerun, compare
setsid "$D2MOE" sweep "$TMP/s.ini" --db "$TMP/killed.db" -j 2 --quiet &
pid=$!
i=0; n=0
while [ $i -lt 400 ]; do
    n=$(sqlite3 "$TMP/killed.db" "SELECT count(*) FROM sweep_jobs" 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 3 ] && break
    sleep 0.02; i=$((i + 1))
done
kill -9 "-$pid" 2>/dev/null; wait $pid 2>/dev/null
sleep 0.2
n=$(sqlite3 "$TMP/killed.db" "SELECT count(*) FROM sweep_jobs")
[ "$n" -gt 0 ] && [ "$n" -lt 48 ]; ok $? "killed with SIGKILL after $n of 48 jobs"
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/killed.db" -j 2 2> "$TMP/resume.err"; ok $? "the rerun completes"
grep -q "$((48 - n)) run, $n already stored" "$TMP/resume.err"; ok $? "it runs exactly the $((48 - n)) missing jobs"
[ "$(sqlite3 "$TMP/killed.db" "SELECT count(*) FROM runs")" -eq 48 ]; ok $? "48 runs: nothing lost, nothing duplicated"
[ "$(digest "$TMP/killed.db")" = "$(digest "$TMP/full.db")" ]; ok $? "same metric values as the uninterrupted run"

# shards + merge
for i in 0 1 2; do "$D2MOE" sweep "$TMP/s.ini" --db "$TMP/shard$i.db" --shard "$i/3" --quiet || exit 1; done
"$D2MOE" merge "$TMP/merged.db" "$TMP/shard0.db" "$TMP/shard1.db" "$TMP/shard2.db" > "$TMP/merge.out"; ok $? "merge 3 shards"
[ "$(digest "$TMP/merged.db")" = "$(digest "$TMP/full.db")" ]; ok $? "merged shards = one unsharded run"
"$D2MOE" merge "$TMP/merged.db" "$TMP/shard0.db" "$TMP/shard1.db" "$TMP/shard2.db" | grep -c " 0 runs added" | grep -q 3; ok $? "merging again adds nothing"
[ "$(sqlite3 "$TMP/merged.db" "SELECT count(*) FROM runs")" -eq 48 ]; ok $? "still 48 runs"
expect 2 "into itself" "merge into itself refused" -- "$D2MOE" merge "$TMP/merged.db" "$TMP/merged.db"
"$D2MOE" db info "$TMP/merged.db" | grep -Eq '^sweep_jobs +48$'; ok $? "db info counts sweep_jobs"
done_testing
