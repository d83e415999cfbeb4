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
