#!/bin/sh
# sweep.sh - real simulator sweeps through the CLI: bad specs fail before any
# run, kill -9, SIGTERM or SIGINT mid-way (batches of runs per transaction)
# + rerun equals an uninterrupted run, shards + merge
# equal one unsharded run, merge is idempotent, --quick uses [quick].
. "${D2_SRCDIR:-.}/tests/lib.sh"
# process groups of sweeps stopped on purpose (D2MOE_SWEEP_STOP_AFTER): killed
# on exit, so an aborted run of this file leaves no stopped process behind
PGS="" PIDS=""
trap 'for g in $PGS; do kill -KILL -- "-$g" 2> /dev/null; kill -CONT -- "-$g" 2> /dev/null; done
      for p in $PIDS; do kill -KILL "$p" 2> /dev/null; kill -CONT "$p" 2> /dev/null; done; rm -rf "$TMP"' EXIT
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
grep -q "already stored, 0 failed; reading datasheet; " "$TMP/rerun.err"; ok $? "the summary names the reading (datasheet, the default)"
"$D2MOE" sweep "$TMP/s.ini" --quick --db "$TMP/quick.db" 2> "$TMP/quick.err"
[ "$(sqlite3 "$TMP/quick.db" "SELECT count(*) FROM sweep_jobs")" -eq 6 ]; ok $? "--quick: [quick] budget list, 6 jobs"
! grep -q "no \[quick\] section" "$TMP/quick.err"; ok $? "--quick with a [quick] section: no note"
# --quick on a spec without [quick]: the full grid, with a note before any run
sed '/^\[quick\]/,$d' "$TMP/s.ini" | sed 's/^name = t$/name = tnq/; s/^sim.budget = .*/sim.budget = 600M/; s/^sim.requests = .*/sim.requests = 2/' > "$TMP/nq.ini"
printf 'readings = datasheet, paper-testbed\n' >> "$TMP/nq.ini"
"$D2MOE" sweep "$TMP/nq.ini" --quick --db "$TMP/nq.db" 2> "$TMP/nq.err"; st=$?
[ $st -eq 0 ] && grep -q "^d2moe sweep: note: --quick: .*nq.ini has no \[quick\] section, so its full grid of 6 jobs runs$" "$TMP/nq.err" &&
    [ "$(sqlite3 "$TMP/nq.db" "SELECT count(*) FROM sweep_jobs")" -eq 6 ]
ok $? "--quick without a [quick] section: the full 6 jobs, said on stderr"
grep -q "; readings datasheet, paper-testbed; " "$TMP/nq.err"; ok $? "a readings axis: the summary names both"

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
expect 2 "b5.ini:5: sim.requests: 0 is outside" "out-of-range value" -- "$D2MOE" sweep "$TMP/b5.ini" --db "$TMP/b.db"
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

# Killed sweeps.  A sweep commits its finished runs in batches (sweep.h);
# the test hook D2MOE_SWEEP_STOP_AFTER=K makes each sweep process stop
# itself (SIGSTOP) after its K-th job, after its batch check, so a signal
# lands at a known point whatever the machine's speed: K runs finished,
# K - K % BATCH of them committed.
state() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1; }
# wait_stopped PID N: until N processes (PID itself for N = 0, else its
# children, the workers) have stopped; 1 after a minute
wait_stopped() {
    i=0
    while [ $i -lt 1200 ]; do
        if [ "$2" -eq 0 ]; then [ "$(state "$1")" = T ] && return 0
        else
            ns=0
            for c in $(pgrep -P "$1"); do [ "$(state "$c")" = T ] && ns=$((ns + 1)); done
            [ "$ns" -ge "$2" ] && return 0
        fi
        sleep 0.05; i=$((i + 1))
    done
    return 1
}
stored() { sqlite3 "$1" "SELECT count(*) FROM sweep_jobs"; }
# resumed DB N WHAT: the rerun runs exactly the 48 - N missing jobs and
# the store then equals the uninterrupted sweep's
resumed() {
    "$D2MOE" sweep "$TMP/s.ini" --db "$1" -j 2 2> "$TMP/resume.err"; ok $? "$3: the rerun completes"
    grep -q "$((48 - $2)) run, $2 already stored" "$TMP/resume.err"; ok $? "$3: it runs exactly the $((48 - $2)) missing jobs"
    [ "$(sqlite3 "$1" "SELECT count(*) FROM runs")" -eq 48 ]; ok $? "$3: 48 runs, nothing lost, nothing duplicated"
    [ "$(digest "$1")" = "$(digest "$TMP/full.db")" ]; ok $? "$3: same metric values as the uninterrupted run"
}
# start_stopped BATCH K J DB ERR: a sweep (-j J, batches of BATCH runs, no
# time bound) whose processes stop themselves after K jobs each, stderr to
# ERR; with J > 1 in a process group of its own (signals to "-$pid" reach
# its workers).  Sets $pid and registers it for the EXIT trap.
start_stopped() {
    if [ "$3" -gt 1 ]; then
        D2MOE_SWEEP_BATCH=$1 D2MOE_SWEEP_BATCH_MS=600000 D2MOE_SWEEP_STOP_AFTER=$2 \
            setsid "$D2MOE" sweep "$TMP/s.ini" --db "$4" -j "$3" --quiet 2> "$5" &
        pid=$!; PGS="$PGS $pid"
    else
        D2MOE_SWEEP_BATCH=$1 D2MOE_SWEEP_BATCH_MS=600000 D2MOE_SWEEP_STOP_AFTER=$2 \
            "$D2MOE" sweep "$TMP/s.ini" --db "$4" -j 1 --quiet 2> "$5" &
        pid=$!; PIDS="$PIDS $pid"
    fi
}

# kill -9 of the process group, two workers, batches of 4: each worker had
# run 10 jobs and committed 8 (its third batch, 2 runs, is lost)
start_stopped 4 10 2 "$TMP/killed.db" /dev/null
wait_stopped $pid 2; ok $? "SIGKILL: both workers stopped after 10 jobs each"
kill -9 "-$pid" 2>/dev/null; kill -CONT "-$pid" 2>/dev/null; wait $pid 2>/dev/null
n=$(stored "$TMP/killed.db")
[ "$n" -eq 16 ]; ok $? "SIGKILL after 2 x 10 jobs in batches of 4: the 16 committed runs stored ($n)"
resumed "$TMP/killed.db" 16 "SIGKILL"

# SIGTERM, one worker: the 10 finished runs waiting in the batch (none
# committed yet) are committed before it exits, by the signal
start_stopped 1000 10 1 "$TMP/term.db" "$TMP/term.err"
wait_stopped $pid 0; ok $? "SIGTERM: the sweep stopped after 10 jobs"
n=$(stored "$TMP/term.db")
[ "$n" -eq 0 ]; ok $? "SIGTERM: nothing committed before the signal ($n)"
kill -TERM $pid; kill -CONT $pid; wait $pid; st=$?
[ $st -eq 143 ]; ok $? "SIGTERM: the sweep ends by the signal (status $st)"
grep -q "interrupted (signal 15)" "$TMP/term.err"; ok $? "SIGTERM: it says so"
n=$(stored "$TMP/term.db")
[ "$n" -eq 10 ]; ok $? "SIGTERM: the 10 finished runs committed ($n)"
resumed "$TMP/term.db" 10 "SIGTERM"

# SIGTERM while the store refuses the commit (its sweep_jobs table dropped
# while the sweep is stopped): no claim that the runs are stored, the error
# said, and the exit status is the error's, not the signal's
start_stopped 1000 4 1 "$TMP/termf.db" "$TMP/termf.err"
wait_stopped $pid 0 && sqlite3 "$TMP/termf.db" "DROP TABLE sweep_jobs"
kill -TERM $pid; kill -CONT $pid; wait $pid; st=$?
[ $st -ne 0 ] && [ $st -lt 128 ] && grep -q "interrupted (signal 15), and storing the finished runs failed" "$TMP/termf.err" &&
    ! grep -q "the runs that finished are stored" "$TMP/termf.err" && grep -q "sweep_jobs" "$TMP/termf.err"
ok $? "SIGTERM with a failing commit: the error said, no claim of stored runs, exit $st (not by the signal)"
[ $st -ne 0 ] && [ $st -lt 128 ] || sed 's/^/# /' "$TMP/termf.err"

# SIGINT to the process group (a ^C), two workers with 5 finished runs each
start_stopped 1000 5 2 "$TMP/int.db" /dev/null
wait_stopped $pid 2; ok $? "SIGINT: both workers stopped after 5 jobs each"
kill -INT "-$pid"; kill -CONT "-$pid"; wait $pid; st=$?
n=$(stored "$TMP/int.db")
[ $st -eq 130 ] && [ "$n" -eq 10 ]; ok $? "SIGINT to the group: status $st, the 2 x 5 finished runs committed ($n)"
resumed "$TMP/int.db" 10 "SIGINT"

# SIGTERM to the sweep alone (not its workers): it tells them to stop (a
# worker may start another job before it is told: at least 2 x 3 runs)
start_stopped 1000 3 2 "$TMP/term2.db" /dev/null
wait_stopped $pid 2; ok $? "SIGTERM to the parent: both workers stopped after 3 jobs each"
kill -TERM $pid; kill -CONT "-$pid"; wait $pid; st=$?
n=$(stored "$TMP/term2.db")
[ $st -eq 143 ] && [ "$n" -ge 6 ]; ok $? "SIGTERM to the parent: status $st, the workers' finished runs committed ($n >= 6)"
resumed "$TMP/term2.db" "$n" "SIGTERM to the parent"

# SIGTERM to one worker: every process stops, the sweep ends by the signal
start_stopped 1000 3 2 "$TMP/term3.db" /dev/null
wait_stopped $pid 2; ok $? "SIGTERM to a worker: both workers stopped after 3 jobs each"
kill -TERM "$(pgrep -P $pid | head -n 1)"; kill -CONT "-$pid"; wait $pid; st=$?
n=$(stored "$TMP/term3.db")
[ $st -eq 143 ] && [ "$n" -ge 6 ]; ok $? "SIGTERM to a worker: status $st, the finished runs committed ($n >= 6)"
resumed "$TMP/term3.db" "$n" "SIGTERM to a worker"

# two sweeps of the same spec into one store at once (two Slurm tasks given
# the same shard): each job is stored once, whichever commits it first; a
# copy the other process finds stored at its commit is left out
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/twice.db" -j 1 --quiet & p1=$!
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/twice.db" -j 2 --quiet & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
[ $r1 -eq 0 ] && [ $r2 -eq 0 ]; ok $? "two sweeps into one store at once: both succeed ($r1, $r2)"
[ "$(sqlite3 "$TMP/twice.db" "SELECT count(*) FROM runs")" -eq 48 ] && [ "$(stored "$TMP/twice.db")" -eq 48 ]
ok $? "two sweeps at once: 48 runs, 48 jobs, none twice"
[ "$(digest "$TMP/twice.db")" = "$(digest "$TMP/full.db")" ]; ok $? "two sweeps at once: same metric values as one"
# the same, at a known point: the first sweep stops with 10 finished runs
# in its batch, the second stores the whole grid, then the first goes on:
# its 10 copies are left out at its commit, its other jobs skipped
D2MOE_SWEEP_BATCH=1000 D2MOE_SWEEP_BATCH_MS=600000 D2MOE_SWEEP_STOP_AFTER=10 \
    "$D2MOE" sweep "$TMP/s.ini" --db "$TMP/late.db" -j 1 2> "$TMP/late.err" &
PIDS="$PIDS $!" # stopped on purpose: the EXIT trap kills what an aborted test leaves
pid=$!
wait_stopped $pid 0; ok $? "a sweep stopped with 10 runs in its batch"
"$D2MOE" sweep "$TMP/s.ini" --db "$TMP/late.db" -j 2 --quiet; ok $? "another sweep stores the whole grid meanwhile"
kill -CONT $pid; wait $pid; ok $? "the first sweep completes"
grep -q "0 run, 48 already stored" "$TMP/late.err"; ok $? "its 10 finished copies left out at the commit, the rest skipped"
[ "$(sqlite3 "$TMP/late.db" "SELECT count(*) FROM runs")" -eq 48 ] && [ "$(digest "$TMP/late.db")" = "$(digest "$TMP/full.db")" ]
ok $? "48 runs, the same values as one sweep"

# shards + merge
for i in 0 1 2; do "$D2MOE" sweep "$TMP/s.ini" --db "$TMP/shard$i.db" --shard "$i/3" --quiet || exit 1; done
"$D2MOE" merge "$TMP/merged.db" "$TMP/shard0.db" "$TMP/shard1.db" "$TMP/shard2.db" > "$TMP/merge.out"; ok $? "merge 3 shards"
[ "$(digest "$TMP/merged.db")" = "$(digest "$TMP/full.db")" ]; ok $? "merged shards = one unsharded run"
"$D2MOE" merge "$TMP/merged.db" "$TMP/shard0.db" "$TMP/shard1.db" "$TMP/shard2.db" | grep -c " 0 runs added" | grep -q 3; ok $? "merging again adds nothing"
[ "$(sqlite3 "$TMP/merged.db" "SELECT count(*) FROM runs")" -eq 48 ]; ok $? "still 48 runs"
expect 2 "into itself" "merge into itself refused" -- "$D2MOE" merge "$TMP/merged.db" "$TMP/merged.db"
"$D2MOE" db info "$TMP/merged.db" | grep -Eq '^sweep_jobs +48$'; ok $? "db info counts sweep_jobs"
done_testing
