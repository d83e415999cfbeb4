#!/bin/sh
# exec.sh - `d2moe execute` on a small model: runs the simulator's plan for
# real, stays within the budget, matches the one-shot kernels, stores a sim
# and a real run; bad configurations exit 2 with one line; a --spec runs
# every point and reports each point's error; execute's op join (made in
# its process, stored with the real run) equals the join of its two
# timeline CSVs; `d2moe validate` runs, reports intervals and the op join
# read from the store, and stores every round.  Timing is
# reported, never asserted here (`make validate` measures it).
. "${D2_SRCDIR:-.}/tests/lib.sh"

cat > "$TMP/small.ini" <<'EOF'
[model]
name = t-small
layers = 2
hidden = 256
expert_ffn = 512
experts = 4
top_k = 2
heads = 1
kv_heads = 1
head_dim = 8
attn_params = 1
vocab = 16
tied_embeddings = true
EOF
mkdir -p "$TMP/presets"
cat > "$TMP/presets/t-small.ini" <<'EOF'
[gen]
layers = 2
experts = 4
top_k = 2
EOF
D2_PRESET_DIR="$TMP/presets"; export D2_PRESET_DIR
mkdir -p "$TMP/d"
"$D2MOE" calibrate -o "$TMP/host.ini" --dir "$TMP/d" --file-size 8Mi --max-read 1Mi --io-bytes 1Mi --min-reps 3 \
    --max-reps 8 --mem-size 4Mi --kernel-model "$TMP/small.ini" > "$TMP/cal" 2>&1; ok $? "calibrate a device profile (small)"
grep -q '^# Compute: the MWQ kernels' "$TMP/host.ini"; ok $? "profile documents the kernel rates"

RUN="--model $TMP/small.ini --device $TMP/host.ini --requests 4 --prompt 2 --gen 3 --mwq-dir $TMP"
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --db "$TMP/r.db" --timeline "$TMP/sim.csv" --real-timeline "$TMP/real.csv" > "$TMP/out" 2> "$TMP/err"
ok $? "execute runs (d2moe-v1, budget 2M)"
[ ! -s "$TMP/err" ]; ok $? "nothing on stderr"; [ -s "$TMP/err" ] && diag "$(cat "$TMP/err")"
grep -q '^generating .*t-small.*\.mwq' "$TMP/out"; ok $? "a synthetic model file was generated"
ls "$TMP"/t-small.*.mwq > /dev/null 2>&1; ok $? "the model file is kept for the next run"
grep -Eq '^makespan_s +[0-9.]+ +[0-9.]+ ' "$TMP/out"; ok $? "makespan: simulated and measured"
grep -Eq '^op join: [1-9][0-9]* operations paired \(0 simulated only, 0 real only\)' "$TMP/out"
ok $? "execute joins the simulator's operations with the run's, every op paired ($(grep '^op join' "$TMP/out"))"
awk '$1 == "peak_expert_mb" && $3 <= 2.0 && $3 > 0 { f = 1 } END { exit !f }' "$TMP/out"
ok $? "peak expert bytes within the 2 MB budget ($(awk '$1 == "peak_expert_mb" { print $3 }' "$TMP/out") MB)"
awk '/^verify:/ { for (i = 1; i <= NF; i++) if ($i == "kernels,") v = $(i - 4); if (v + 0 < 0.01 && $2 + 0 > 0) f = 1 } END { exit !f }' "$TMP/out"
ok $? "token outputs equal the one-shot kernels ($(grep '^verify:' "$TMP/out"))"
[ "$(grep -c ',io,' "$TMP/real.csv")" -gt 0 ] && [ "$(grep -c ',compute,' "$TMP/real.csv")" -gt 0 ]
ok $? "real timeline has io and compute rows"
grep makespan_s "$TMP/out" | while read -r _ s r e; do diag "makespan simulated $s s, measured $r s, error $e"; done
if command -v sqlite3 > /dev/null; then
    n=$(sqlite3 "$TMP/r.db" "SELECT group_concat(mode) FROM (SELECT mode FROM runs WHERE kind = 'execute' ORDER BY id)")
    [ "$n" = "sim,real" ]; ok $? "results store: a sim and a real run ($n)"
    h=$(sqlite3 "$TMP/r.db" "SELECT count(DISTINCT config_hash) FROM runs")
    [ "$h" = 1 ]; ok $? "both runs have the same configuration hash"
    # the weight pool: the memory calibrate reads into (host/iobuf.h), its
    # size and the share the kernel put in huge pages stored with the run
    p=$(sqlite3 "$TMP/r.db" "SELECT printf('%.6f %s', (SELECT value FROM metrics WHERE run_id = r.id AND name = 'pool_mb'),
            coalesce((SELECT printf('%.6f', value) FROM metrics WHERE run_id = r.id AND name = 'pool_huge_frac'), 'none'))
        FROM runs r WHERE r.mode = 'real'")
    echo "$p" | awk '$1 > 0 && ($2 == "none" || ($2 >= 0 && $2 <= 1)) { f = 1 } END { exit !f }'
    ok $? "stored: pool_mb > 0 and pool_huge_frac in [0, 1] when the kernel tells ($p)"
else
    skip "results store (no sqlite3)"; skip "configuration hash (no sqlite3)"; skip "weight pool (no sqlite3)"
fi
grep -Eq '^weight pool: [0-9.]+ MB read into, [0-9.]+ MB of it in huge pages' "$TMP/out" || ! grep -q '^weight pool' "$TMP/out"
ok $? "the weight pool's huge pages printed when known ($(grep '^weight pool' "$TMP/out"))"
# host stops: measured (both CPUs pinned, real-time priority) or the reason
# why not, printed and stored; measured values obey stopped <= each CPU's
if grep -Eq '^host stops: the machine stood still [0-9.]+-[0-9.]+ s in [0-9]+ spans within the makespan' "$TMP/out"; then
    ok 0 "execute measured the host's stops ($(grep '^host stops' "$TMP/out" | cut -c1-90))"
    if command -v sqlite3 > /dev/null; then
        v=$(sqlite3 "$TMP/r.db" "SELECT (SELECT value FROM params WHERE run_id = r.id AND key = 'exec.host_watch') || ' ' ||
            (SELECT count(*) FROM metrics WHERE run_id = r.id AND name LIKE 'host!_%' ESCAPE '!' AND name != 'host_loadavg_1m'
               AND name NOT LIKE 'host!_in!_compute!_l%' ESCAPE '!') || ' ' ||
            (SELECT count(*) || CASE WHEN sum(value) <= (SELECT value FROM metrics WHERE run_id = r.id AND name = 'host_late_compute_cpu_s') + 1e-12
                                     THEN ' inside' ELSE ' beyond' END
               FROM metrics WHERE run_id = r.id AND name LIKE 'host!_in!_compute!_l%' ESCAPE '!') || ' ' ||
            (SELECT CASE WHEN a.value <= b.value + 1e-12 AND a.value <= c.value + 1e-12 AND a.value <= d.value + 1e-12 THEN 'ordered' ELSE 'unordered' END
               FROM metrics a, metrics b, metrics c, metrics d WHERE a.run_id = r.id AND a.name = 'host_stopped_s'
               AND b.run_id = r.id AND b.name = 'host_late_compute_cpu_s' AND c.run_id = r.id AND c.name = 'host_late_io_cpu_s'
               AND d.run_id = r.id AND d.name = 'host_stopped_max_s')
            FROM runs r WHERE r.kind = 'execute' AND r.mode = 'real'")
        [ "$v" = "measured 8 3 inside ordered" ]
        ok $? "stored: exec.host_watch = measured, eight host_* metrics, host_in_compute_l1..3_s summing to at most the compute CPU's taken time, stopped <= each CPU's late time ($v)"
    else
        skip "host stops in the store (no sqlite3)"
    fi
else
    grep -Eq '^host stops: not measured: ' "$TMP/out"; ok $? "execute says why the host's stops were not measured ($(grep '^host stops' "$TMP/out"))"
    skip "host stops in the store (not measured here)"
fi
# the op join execute made in its process (typed operations, stored with the
# real run) equals the offline join of the two timeline CSVs of the same run,
# metric by metric, to the ns
"$D2MOE" validate --join "$TMP/sim.csv" "$TMP/real.csv" > "$TMP/join" 2>&1; ok $? "validate --join: the two CSVs joined offline"
grep '^join_' "$TMP/join" | awk '{ print $1, $2 }' | LC_ALL=C sort > "$TMP/join.csv"
[ "$(wc -l < "$TMP/join.csv")" -ge 20 ] && grep -q '^join_compute_l1_sim_s ' "$TMP/join.csv" && grep -q '^join_wait_l1_real_ops ' "$TMP/join.csv"
ok $? "the offline join prints the join_* metrics ($(wc -l < "$TMP/join.csv"))"
if command -v sqlite3 > /dev/null; then
    sqlite3 -separator ' ' "$TMP/r.db" "SELECT m.name, printf('%.9f', m.value) FROM metrics m JOIN runs r ON r.id = m.run_id
        WHERE r.kind = 'execute' AND r.mode = 'real' AND m.name LIKE 'join!_%' ESCAPE '!'" | LC_ALL=C sort > "$TMP/join.db"
    awk 'NR == FNR { v[$1] = $2; n++; next }
         { m++; if (!($1 in v)) { print "only in the store: " $1; bad = 1; next }
           d = v[$1] - $2; if (d < 0) d = -d; if (d > 1.5e-9) { print $1 ": CSVs " v[$1] ", store " $2; bad = 1 } }
         END { if (n != m) { print n " metrics from the CSVs, " m " in the store"; bad = 1 } exit bad }' \
        "$TMP/join.csv" "$TMP/join.db" > "$TMP/joindiff"
    ok $? "the join stored by execute = the join of its two CSVs, term by term within 1 ns ($(wc -l < "$TMP/join.db") metrics)"
    [ -s "$TMP/joindiff" ] && diag "$(head -5 "$TMP/joindiff")"
    n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.mode = 'sim' AND m.name LIKE 'join!_%' ESCAPE '!'")
    [ "$n" = 0 ]; ok $? "the join is stored once, with the real run ($n with the sim run)"
else
    skip "join in the store = join of the CSVs (no sqlite3)"; skip "join stored with the real run (no sqlite3)"
fi
expect 2 "--join: expected SIM.csv REAL.csv" "validate --join with one file: exit 2" -- "$D2MOE" validate --join "$TMP/sim.csv"
# --join takes timelines only: the header, records in range, sums that fit
: > "$TMP/empty.csv"
expect 2 "empty.csv:1: not a timeline" "validate --join of an empty file: exit 2, one line" -- "$D2MOE" validate --join "$TMP/empty.csv" "$TMP/real.csv"
tail -n +2 "$TMP/sim.csv" > "$TMP/nohead.csv"
expect 2 "nohead.csv:1: not a timeline" "validate --join of a timeline without its header: exit 2" -- "$D2MOE" validate --join "$TMP/sim.csv" "$TMP/nohead.csv"
printf 'start_nsXX,foo\n0,10,compute,0,-1,0,4\n' > "$TMP/badhead.csv"
expect 2 "badhead.csv:1: not a timeline" "validate --join of another header: exit 2" -- "$D2MOE" validate --join "$TMP/badhead.csv" "$TMP/real.csv"
sed '3s/^\([0-9]*\),[0-9]*,/\1,9223372036854775807,/' "$TMP/sim.csv" > "$TMP/bigend.csv"
expect 2 'bigend.csv:3: field "end_ns": expected an integer' "validate --join of an end_ns past the horizon (2^62 ns): exit 2, named" -- "$D2MOE" validate --join "$TMP/bigend.csv" "$TMP/real.csv"
H=4611686018427387904
{ echo "start_ns,end_ns,queue,layer,expert,level,tokens"; echo "0,10,compute,0,-1,0,4"
  for e in 1 2 3; do echo "0,$H,io,0,$e,1,1"; done; echo "$H,$H,compute,0,1,1,1"; } > "$TMP/overlap.csv"
expect 2 "overlap.csv and .*overlap.csv: timeline: level-1 loads sum past" "validate --join of overlapping loads summing past int64: exit 2, no wrapped sum" -- "$D2MOE" validate --join "$TMP/overlap.csv" "$TMP/overlap.csv"
grep -Eq '^# probe_ns = [1-9][0-9]*$' "$TMP/host.ini"; ok $? "calibrate records the kernel probe (# probe_ns)"
grep -Eq '^# cold_probe_ns = [1-9][0-9]* ' "$TMP/host.ini"; ok $? "calibrate records the cold probe (# cold_probe_ns)"
# the cold probe gates a run: a reference no pass can meet (1 ns) fails it, whatever the warm probe did
pref=$(sed -n 's/^# probe_ns = \([0-9]*\).*/\1/p' "$TMP/host.ini")
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --no-verify --db "$TMP/cp.db" --x-probe-ref "$pref" --probe-tol 1000 --x-cold-probe-ref 1 > "$TMP/outcp" 2>&1
ok $? "execute with a cold probe reference"
grep -Eq '^cold probe: [0-9.]+ us before, [0-9.]+ us after the run \(calibrated 0.0 us: NOT both within 1000%; the copies. pages touched first: [0-9.]+ us before, [0-9.]+ us after\)' "$TMP/outcp"
ok $? "execute prints the cold probe and its verdict"
grep -q '^caution: \(.*; \)\?the cold probe moved more than 1000% from the calibration[:;]' "$TMP/outcp"
ok $? "execute says when validate would not count the run (the cold probe failed)"
if command -v sqlite3 > /dev/null; then
    v=$(sqlite3 "$TMP/cp.db" "SELECT group_concat(m.name || '=' || m.value, ' ') FROM metrics m JOIN runs r ON r.id = m.run_id
        WHERE r.mode = 'real' AND m.name IN ('probe_ok', 'cold_probe_ok') ORDER BY m.name")
    [ "$v" = "cold_probe_ok=0.0 probe_ok=0.0" ]; ok $? "a failed cold probe makes probe_ok 0 ($v)"
    n=$(sqlite3 "$TMP/cp.db" "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.mode = 'real'
        AND m.name IN ('cold_probe_before_ns', 'cold_probe_after_ns', 'cold_probe_ref_ns',
                       'cold_probe_touch_before_ns', 'cold_probe_touch_after_ns') AND m.value > 0")
    [ "$n" = 5 ]; ok $? "the real run stores the cold probe before, after, its reference and its page touches ($n)"
else
    skip "cold probe in the store (no sqlite3)"; skip "cold probe metrics (no sqlite3)"
fi
grep -Eq '^probe: [0-9.]+ us before, [0-9.]+ us after the run' "$TMP/out"; ok $? "execute times the probe before and after the run"
if command -v sqlite3 > /dev/null; then
    n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.mode = 'real' AND m.name IN ('probe_before_ns', 'probe_after_ns') AND m.value > 0")
    [ "$n" = 2 ]; ok $? "the real run stores probe_before_ns and probe_after_ns ($n)"
    w=$(sqlite3 "$TMP/r.db" "SELECT value FROM params p JOIN runs r ON r.id = p.run_id WHERE r.mode = 'real' AND p.key = 'exec.wait'")
    [ "$w" = spin ]; ok $? "exec.wait = spin by default ($w)"
    # where the threads ran: the default placement (the first two CPUs, or none with one)
    ncpu=$(nproc 2>/dev/null || echo 1)
    cc=$(sqlite3 "$TMP/r.db" "SELECT group_concat(p.key || '=' || p.value, ' ') FROM params p JOIN runs r ON r.id = p.run_id
        WHERE r.mode = 'real' AND p.key IN ('exec.compute_cpu', 'exec.io_cpu') ORDER BY p.key")
    if [ "$ncpu" -ge 2 ]; then want='^exec\.compute_cpu=[0-9]+ exec\.io_cpu=[0-9]+$'; else want='^exec\.compute_cpu=none exec\.io_cpu=none$'; fi
    printf '%s\n' "$cc" | grep -Eq "$want"; ok $? "placement stored ($cc)"
else
    skip "probe metrics (no sqlite3)"; skip "exec.wait (no sqlite3)"; skip "placement (no sqlite3)"
fi
grep -Eq '^threads: compute \(and the probes\) on (CPU [0-9]+|any CPU), the I/O loop on (CPU [0-9]+|any CPU)$' "$TMP/out"
ok $? "execute prints where its threads ran"
grep -Eq '^# compute_cpu = -?[0-9]+ ' "$TMP/host.ini" && grep -Eq '^# io_cpu = -?[0-9]+ ' "$TMP/host.ini"
ok $? "calibrate records where it measured (# compute_cpu, # io_cpu)"
# shellcheck disable=SC2086
expect 2 "--compute-cpu '4000': expected a CPU number" "--compute-cpu out of range: exit 2, one line" -- "$D2MOE" execute $RUN --compute-cpu 4000
# shellcheck disable=SC2086
expect 2 "--io-cpu 'x': expected a CPU number" "--io-cpu not a number: exit 2, one line" -- "$D2MOE" execute $RUN --io-cpu x
expect 2 "--compute-cpu 1023: not a CPU this process may run on" "calibrate --compute-cpu outside the mask: exit 2, one line" -- \
    "$D2MOE" calibrate -o "$TMP/never.ini" --compute-cpu 1023
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --no-verify --compute-cpu none --io-cpu none > "$TMP/outn" 2>&1
ok $? "--compute-cpu none --io-cpu none: runs unpinned"
grep -q '^threads: compute (and the probes) on any CPU, the I/O loop on any CPU$' "$TMP/outn"; ok $? "unpinned run says so"
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --wait sleep --no-verify > "$TMP/outs" 2>&1; ok $? "--wait sleep runs"
# shellcheck disable=SC2086
expect 2 "--wait nap: expected spin or sleep" "bad --wait: exit 2" -- "$D2MOE" execute $RUN --wait nap
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --plan-check-only > /dev/null 2>&1; [ $? -eq 2 ]; ok $? "unknown option: exit 2"
# shellcheck disable=SC2086
"$D2MOE" execute $RUN --budget 2M --threads 2 --no-verify > "$TMP/out2" 2>&1; ok $? "two compute threads"

expect 2 "--model is required" "no model: exit 2" -- "$D2MOE" execute --device "$TMP/host.ini"
# shellcheck disable=SC2086
expect 2 "nested \(MWQ\) systems only" "separate copies: exit 2" -- "$D2MOE" execute $RUN --policy matryoshka-free
# shellcheck disable=SC2086
expect 2 "nested \(MWQ\) systems only|preloads experts" "preloading (EdgeMoE) system: exit 2" -- "$D2MOE" execute $RUN --policy edgemoe
# shellcheck disable=SC2086
expect 2 "threads 0" "bad --threads: exit 2" -- "$D2MOE" execute $RUN --threads 0
cat > "$TMP/other.ini" <<'EOF'
[model]
name = t-small
layers = 2
hidden = 128
expert_ffn = 512
experts = 4
top_k = 2
heads = 1
kv_heads = 1
head_dim = 8
attn_params = 1
vocab = 16
tied_embeddings = true
EOF
mwq=$(ls "$TMP"/t-small.*.mwq | head -1)
expect 2 "needs" "model file of another shape: exit 2, one line" -- "$D2MOE" execute --model "$TMP/other.ini" \
    --device "$TMP/host.ini" --requests 4 --prompt 2 --gen 3 --mwq "$mwq"
cp "$mwq" "$TMP/r.mwq" && printf '\001' | dd of="$TMP/r.mwq" bs=1 seek=60 conv=notrunc 2> /dev/null
expect 2 "r.mwq: header: reserved bytes 56..63 are not zero" "model file with a reserved header byte set: exit 2, one line" -- \
    "$D2MOE" execute --model "$TMP/small.ini" --device "$TMP/host.ini" --requests 4 --prompt 2 --gen 3 --mwq "$TMP/r.mwq"
# shellcheck disable=SC2086
expect 2 "smaller than one expert level" "budget below one level: exit 2" -- "$D2MOE" execute $RUN --budget 10k

# SIGTERM while the model file is generated: no partial file left
sed 's/^hidden = 256/hidden = 1024/; s/^expert_ffn = 512/expert_ffn = 2816/' "$TMP/small.ini" > "$TMP/big.ini"
mkdir -p "$TMP/g"
"$D2MOE" execute --model "$TMP/big.ini" --device "$TMP/host.ini" --requests 2 --prompt 1 --gen 1 --mwq-dir "$TMP/g" \
    > "$TMP/gout" 2>&1 &
pid=$!
# (waits up to a minute, while the process runs: a loaded machine is slow to start)
i=0
while [ $i -lt 1200 ] && kill -0 $pid 2> /dev/null && ! ls "$TMP/g" 2>/dev/null | grep -q 'mwq.tmp$'; do sleep 0.05; i=$((i + 1)); done
ls "$TMP/g" | grep -q 'mwq.tmp$'; ok $? "generation under way (temporary model file)"
kill -TERM $pid 2>/dev/null
wait $pid; st=$?
[ $st -eq 143 ] && [ -z "$(ls -A "$TMP/g")" ]; ok $? "SIGTERM while generating: status $st, no file left"

cat > "$TMP/v.ini" <<EOF
[sweep]
name = vsmall
kind = execute
model = $TMP/small.ini
device = $TMP/host.ini
sim.plan = hebf, id-order
sim.budget = 2M
sim.requests = 4
sim.prompt = 2
sim.gen = 3
EOF
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v.db" --mwq-dir "$TMP" --repeat 2 > "$TMP/vout" 2>&1; ok $? "a validation spec runs"
[ "$(grep -Ec '^[01] +2 +[0-9.]+ +[0-9.]+ +-?[0-9.]+%' "$TMP/vout")" -eq 2 ]; ok $? "each of the 2 points reports its error (2 rounds)"
grep -E '^[01] +2 +[0-9.]+' "$TMP/vout" | while read -r p _ s r e _; do diag "point $p: simulated $s s, measured $r s (median), error $e"; done
grep -q 'mean |error|' "$TMP/vout"; ok $? "overall error reported"
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v.db" --mwq-dir "$TMP" --repeat 1 --max-error 0.0001 > /dev/null 2> "$TMP/merr"
[ $? -eq 1 ] && grep -q 'above --max-error' "$TMP/merr"; ok $? "--max-error below the error: exit 1"
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v.db" --mwq-dir "$TMP" --repeat 1 --max-error 1000 > /dev/null 2>&1
ok $? "--max-error above the error: exit 0"
# --recalibrate: a profile before every point; a run whose probe moved more
# than --probe-tol from the calibration's is rejected and measured again
# (--calib-tol wide, so every calibration passes and the run gate decides)
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v3.db" --mwq-dir "$TMP" --repeat 1 --recalibrate "$TMP/rc" \
    --calib-tol 1000 --probe-tol 0.0001 --max-retries 1 > "$TMP/vr" 2>&1; st=$?
ok $st "--recalibrate with an impossible --probe-tol still finishes"
[ $st -eq 0 ] || tail -n 5 "$TMP/vr" | while read -r l; do diag "exit $st: $l"; done # once failed in CI, not reproduced since
[ "$(grep -c 'during the run: rejected, measuring again' "$TMP/vr")" -eq 2 ] && [ "$(grep -c 'during the run: rejected (no retries left)' "$TMP/vr")" -eq 2 ]
ok $? "every run rejected by its probes: 2 points x (1 + 1 retry)"
grep -q '^4 runs rejected' "$TMP/vr"; ok $? "the summary counts the rejected runs"
mw=$(sed -n 's/^# Storage: the existing file \(.*\.v[0-9]*\.mwq\) ([0-9]* bytes, --read-file).*/\1/p' "$TMP/rc/host-r1-p0.ini")
[ -n "$mw" ] && [ -f "$mw" ] && [ "$(dirname "$mw")" = "$TMP" ]
ok $? "--recalibrate: each calibration read the point's model file ($mw)"
[ "$(grep -c '(no result)' "$TMP/vr")" -eq 2 ]; ok $? "rejected runs are left out of the summary"
if command -v sqlite3 > /dev/null; then
    n=$(sqlite3 "$TMP/v3.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'probe_ok' AND m.value = 0 WHERE r.mode = 'real'")
    [ "$n" = 4 ]; ok $? "the store marks the 4 real runs probe_ok = 0 ($n)"
    n=$(sqlite3 "$TMP/v3.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'cold_probe_ref_ns' AND m.value > 0 WHERE r.mode = 'real'")
    [ "$n" = 4 ]; ok $? "--recalibrate hands each run its calibration's cold probe ($n)"
else
    skip "probe_ok in the store (no sqlite3)"; skip "cold probe reference (no sqlite3)"
fi
[ "$(ls "$TMP/rc" | grep -c '^host-r1-p[01].ini$')" -eq 2 ]; ok $? "one profile per point in the recalibration directory"
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v5.db" --mwq-dir "$TMP" --repeat 1 --recalibrate "$TMP/rc" \
    --calib-tol 0.0001 --max-retries 1 > "$TMP/vc" 2>&1; ok $? "--recalibrate with an impossible --calib-tol still finishes"
# Each point has a calibration rejected (of its 2 attempts) and every
# rejection is counted.  Not "all 4": once, in a sanitizer build running
# tests in parallel, one of 4 got through the 0.0001% gate (not reproduced
# alone; a probe/fit ratio noted as exactly 1.0000, the note's precision, or
# a calibration without a fit, would pass it).
nrej=$(grep -c 'its own kernel fits: rejected' "$TMP/vc")
grep -q 'round 1, point 0: .*its own kernel fits: rejected' "$TMP/vc" && grep -q 'round 1, point 1: .*its own kernel fits: rejected' "$TMP/vc" &&
    grep -q "^$nrej calibrations rejected" "$TMP/vc"
ok $? "each point's calibration rejected against its own kernel fits, and every rejection counted ($nrej)"
# both gates wide open (the sanitizer build runs tests in parallel: speeds vary 2x)
# (and unpinned: --compute-cpu/--io-cpu reach both the calibrations and the runs)
"$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v4.db" --mwq-dir "$TMP" --repeat 1 --recalibrate "$TMP/rc" \
    --probe-tol 1000 --calib-tol 1000 --compute-cpu none --io-cpu none > "$TMP/vr2" 2>&1; ok $? "--recalibrate with wide --probe-tol and --calib-tol"
n=$(cat "$TMP"/rc/*.ini | grep -Ec '^# (compute|io)_cpu = -1 ')
[ "$n" -ge 2 ] && ! grep -Eq '^# (compute|io)_cpu = [0-9]' "$TMP"/rc/*.ini; ok $? "--compute-cpu none reaches the calibrations ($n notes of -1)"
if command -v sqlite3 > /dev/null; then
    v=$(sqlite3 "$TMP/v4.db" "SELECT DISTINCT p.value FROM params p JOIN runs r ON r.id = p.run_id WHERE r.mode = 'real' AND p.key = 'exec.compute_cpu'")
    [ "$v" = none ]; ok $? "--compute-cpu none reaches the runs ($v)"
else
    skip "placement of the spec's runs (no sqlite3)"
fi
! grep -q 'rejected' "$TMP/vr2"; ok $? "nothing rejected at 1000%"
grep -Eq '^[01] +1 +[0-9.]+ +[0-9.]+ +-?[0-9.]+% .*rounds: [-+][0-9.]+%' "$TMP/vr2"; ok $? "each point lists its paired per-round errors"
expect 2 "--probe-tol 0: expected a percentage" "bad --probe-tol: exit 2" -- "$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v.db" --probe-tol 0
expect 2 "--calib-tol x: expected a percentage" "bad --calib-tol: exit 2" -- "$D2MOE" execute --spec "$TMP/v.ini" --db "$TMP/v.db" --calib-tol x
expect 2 "needs --db" "--spec without --db: exit 2" -- "$D2MOE" execute --spec "$TMP/v.ini"
sed 's/^kind = execute/kind = simulate/' "$TMP/v.ini" > "$TMP/v2.ini"
expect 2 "expected kind = execute" "a spec of another kind: exit 2" -- "$D2MOE" execute --spec "$TMP/v2.ini" --db "$TMP/v.db"

# d2moe validate (the measurement behind `make validate`): functional only,
# both gates wide open; no timing is asserted.  --no-timelines: no CSV is
# written, so the op join it prints can only come from the store
"$D2MOE" validate "$TMP/v.ini" --db "$TMP/val.db" --work "$TMP/vw" --rounds 2 --calib-tol 1000 --probe-tol 1000 \
    --busy-tol 100 --file-size 8Mi --time-cap 10 --no-timelines > "$TMP/vv" 2>&1; ok $? "validate: 2 points x 2 accepted rounds"
! ls "$TMP/vw" | grep -q '\.csv$'; ok $? "validate --no-timelines: no timeline CSV in the work directory"
# the calibration reads the model file the runs read (--calib-file model, the default)
mw=$(ls "$TMP/vw"/*.mwq 2>/dev/null | head -n 1)
[ -n "$mw" ] && grep -q "^# Storage: the existing file $mw ([0-9]* bytes, --read-file); page cache bypassed" "$TMP/vw/host-p0.ini" &&
    ! ls "$TMP/vw" | grep -q '\.path$'
ok $? "validate: the calibration read the point's model file ($mw), no path file left"
"$D2MOE" validate "$TMP/v.ini" --db "$TMP/valt.db" --work "$TMP/vwt" --rounds 1 --calib-tol 1000 --probe-tol 1000 \
    --busy-tol 100 --file-size 8Mi --time-cap 0.01 --no-timelines --calib-file temp > "$TMP/vvt" 2>&1 &&
    grep -q '^# Storage: 8388608-byte temporary file' "$TMP/vwt/host-p0.ini"
ok $? "validate --calib-file temp: the calibration reads a temporary file of --file-size"
expect 2 "--calib-file disk: expected model or temp" "validate --calib-file of another kind: exit 2" -- \
    "$D2MOE" validate "$TMP/v.ini" --db "$TMP/valt.db" --calib-file disk
! grep -q 'no op join' "$TMP/vv"; ok $? "every round has its op join"
[ "$(grep -Ec '^[01] +(hebf|id-order) .* 2 +0 +[0-9.]+ +[0-9.]+ +[-+][0-9.]+% +\[[-+][0-9.]+, [-+][0-9.]+\]% +\[[-+][0-9.]+, [-+][0-9.]+\]% +(within 10%|outside 10%|cannot conclude)( \(.*\))?$' "$TMP/vv")" -eq 2 ]
ok $? "each point: median error, its interval, the machine's spread and a verdict"
grep -q '^makespan ' "$TMP/vv" && grep -q '^compute_l1 ' "$TMP/vv" && grep -q '^load_l1 ' "$TMP/vv"; ok $? "validate prints the op join"
# --from: the same rounds judged again from the store alone, with the same
# seed and rounds: the same tables as the live run (the configuration
# column aside: the store keeps budgets in bytes)
"$D2MOE" validate --from "$TMP/val.db" > "$TMP/vf" 2>&1; ok $? "validate --from: the stored rounds judged again"
for f in vv vf; do
    grep -E '^[01] +(hebf|id-order)' "$TMP/$f" | cut -c1-6,35- > "$TMP/$f.pts"
    sed -n '/^verdicts at/,$p' "$TMP/$f" > "$TMP/$f.rest"
done
[ -s "$TMP/vf.pts" ] && cmp -s "$TMP/vv.pts" "$TMP/vf.pts" && cmp -s "$TMP/vv.rest" "$TMP/vf.rest"
ok $? "validate --from prints the live run's point table, verdicts, host table and op join"
"$D2MOE" validate --from "$TMP/val.db" --bound 0.001 > "$TMP/vf2" 2>&1 && grep -q '^verdicts at 0.001%: 0 within' "$TMP/vf2"
ok $? "validate --from --bound 0.001: nothing within a bound that tight"
# --from writes nothing, not even a schema migration: a copy of the store
# labelled one schema version older keeps its bytes (a read-write open of
# it would migrate it)
if command -v sqlite3 > /dev/null; then
    cp "$TMP/val.db" "$TMP/valold.db"
    v=$(sqlite3 "$TMP/valold.db" 'PRAGMA user_version')
    sqlite3 "$TMP/valold.db" "PRAGMA journal_mode=DELETE; PRAGMA user_version=$((v - 1))" > /dev/null
    before=$(cksum < "$TMP/valold.db")
    "$D2MOE" validate --from "$TMP/valold.db" > "$TMP/vf3" 2>&1 && [ "$(cksum < "$TMP/valold.db")" = "$before" ] &&
        [ ! -s "$TMP/valold.db-wal" ] && sed "s|valold\.db|val.db|" "$TMP/vf3" | cmp -s "$TMP/vf" -
    ok $? "validate --from leaves an older store's bytes as they were (same tables)"
else
    skip "validate --from leaves an older store's bytes (no sqlite3)"
fi
# --from reads the latest validation only: one stopped before its point
# verdicts (its point runs deleted here) does not count with the next
if command -v sqlite3 > /dev/null; then
    for k in 1 2; do
        "$D2MOE" validate "$TMP/v.ini" --db "$TMP/val4.db" --work "$TMP/vw" --rounds 1 --calib-tol 1000 --probe-tol 1000 \
            --busy-tol 100 --file-size 8Mi --time-cap 0.01 --no-timelines > "$TMP/vi$k" 2>&1
        [ $k = 1 ] && sqlite3 "$TMP/val4.db" "CREATE TEMP TABLE gone AS SELECT id FROM runs WHERE kind = 'validate' AND mode = 'point';
            DELETE FROM params WHERE run_id IN gone; DELETE FROM metrics WHERE run_id IN gone; DELETE FROM runs WHERE id IN gone"
    done
    all=$(sqlite3 "$TMP/val4.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 1
        WHERE r.kind = 'validate' AND r.mode = 'round'")
    last=$(sqlite3 "$TMP/val4.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 1
        JOIN params s ON s.run_id = r.id AND s.key = 'validate.session' WHERE r.kind = 'validate' AND r.mode = 'round'
        AND s.value = (SELECT value FROM params WHERE key = 'validate.session' AND run_id = (SELECT max(id) FROM runs WHERE mode = 'round'))")
    "$D2MOE" validate --from "$TMP/val4.db" > "$TMP/vf4" 2>&1 && [ "$all" -gt "$last" ] && [ "$last" -ge 1 ] &&
        grep -Eq " points?, $last accepted rounds?" "$TMP/vf4"
    ok $? "validate --from after an interrupted validation: the last one's $last accepted rounds, not all $all"
    [ "$all" -gt "$last" ] || for k in 1 2; do grep -E '^round|^d2moe' "$TMP/vi$k" | while read -r l; do diag "$k: $l"; done; done
else
    skip "validate --from after an interrupted validation (no sqlite3)"
fi
expect 2 "no validation rounds stored" "validate --from a store without rounds: exit 2" -- "$D2MOE" validate --from "$TMP/v.db"
expect 2 "not an SQLite database" "validate --from a text file: exit 2" -- "$D2MOE" validate --from "$TMP/v.ini"
expect 2 "cannot open" "validate --from a missing file: exit 2" -- "$D2MOE" validate --from "$TMP/none.db"
expect 2 "takes no SPEC.ini" "validate --from with a spec: exit 2" -- "$D2MOE" validate --from "$TMP/val.db" "$TMP/v.ini"
expect 2 "writes nothing" "validate --from with --db: exit 2" -- "$D2MOE" validate --from "$TMP/val.db" --db "$TMP/x.db"
grep -E '^[01] +(hebf|id-order)|^makespan ' "$TMP/vv" | while read -r l; do diag "$l"; done
# the host's share: where execute measured it (above), validate's second
# table, the host inside the computes, and the point's median of the rounds'
# errors without the compute CPU's taken time (2 rounds: their mean)
if grep -q '^host stops: the machine stood still' "$TMP/out"; then
    [ "$(grep -Ec '^[01] +2 +[0-9.]+ +[-+][0-9.]+% +\[[-+][0-9.]+, [-+][0-9.]+\]% +(within|outside|cannot conclude) +[0-9.]+ +[-+][0-9.]+% +\[[-+][0-9.]+, [-+][0-9.]+\]% +(within|outside|cannot conclude) +[-+][0-9.]+%$' "$TMP/vv")" -eq 2 ]
    ok $? "validate's table without the host's share: both points, 2 rounds each"
    grep -Eq '^compute_l1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$' "$TMP/vv"; ok $? "validate prints the host inside the computes"
    if command -v sqlite3 > /dev/null; then
        d=$(sqlite3 "$TMP/val.db" "SELECT count(*), sum(abs(pm.value - (SELECT avg(m.value) FROM runs v
                JOIN params vp ON vp.run_id = v.id AND vp.key = 'exec.point' AND vp.value = pp.value
                JOIN metrics a ON a.run_id = v.id AND a.name = 'accepted' AND a.value = 1
                JOIN metrics m ON m.run_id = v.id AND m.name = 'error_without_compute_cpu_taken'
                WHERE v.kind = 'validate' AND v.mode = 'round')) < 1e-12)
            FROM runs r JOIN params pp ON pp.run_id = r.id AND pp.key = 'exec.point'
            JOIN metrics pm ON pm.run_id = r.id AND pm.name = 'error_without_compute_cpu_taken_median'
            WHERE r.kind = 'validate' AND r.mode = 'point'")
        [ "$d" = "2|2" ]; ok $? "each point's median error without the taken time = the mean of its two rounds' ($d)"
    else
        skip "host share in the store (no sqlite3)"
    fi
else
    for i in 1 2 3; do skip "the host's share was not measured here"; done
fi
if command -v sqlite3 > /dev/null; then
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 1
        JOIN params p ON p.run_id = r.id AND p.key = 'validate.reason' AND p.value = 'accepted' WHERE r.kind = 'validate' AND r.mode = 'round'")
    [ "$n" = 4 ]; ok $? "4 accepted rounds stored ($n)"
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'join_compute_l1_real_s' AND m.value > 0 WHERE r.mode = 'round'")
    [ "$n" = 4 ]; ok $? "each round stores its op join ($n)"
    # the rounds' execute runs hold the join validate read; its table is their sum
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs v JOIN metrics a ON a.run_id = v.id AND a.name = 'accepted' AND a.value = 1
        JOIN metrics x ON x.run_id = v.id AND x.name = 'exec_real_run_id' JOIN runs e ON e.id = CAST(x.value AS INTEGER)
        JOIN metrics m ON m.run_id = e.id AND m.name = 'join_makespan_real_s' AND m.value > 0
        WHERE v.kind = 'validate' AND v.mode = 'round' AND e.kind = 'execute' AND e.mode = 'real'")
    [ "$n" = 4 ]; ok $? "each accepted round's execute run stores the op join ($n)"
    for t in compute_l1 load_l1; do
        sqlite3 -separator ' ' "$TMP/val.db" "SELECT sum(s.value), sum(r.value) FROM runs v
            JOIN metrics a ON a.run_id = v.id AND a.name = 'accepted' AND a.value = 1
            JOIN metrics x ON x.run_id = v.id AND x.name = 'exec_real_run_id'
            JOIN metrics s ON s.run_id = CAST(x.value AS INTEGER) AND s.name = 'join_${t}_sim_s'
            JOIN metrics r ON r.run_id = CAST(x.value AS INTEGER) AND r.name = 'join_${t}_real_s'
            WHERE v.kind = 'validate' AND v.mode = 'round'" > "$TMP/vsum"
        awk -v t="$t" 'NR == FNR { s = $1; r = $2; next }
            $1 == t { f = 1; ds = $2 - s; dr = $3 - r; if (ds < 0) ds = -ds; if (dr < 0) dr = -dr; if (ds > 0.0011 || dr > 0.0011) bad = 1 }
            END { exit !f || bad }' "$TMP/vsum" "$TMP/vv"
        ok $? "validate's $t row = the sum of the rounds' execute runs' join_${t}_* ($(cat "$TMP/vsum"); $(grep "^$t " "$TMP/vv"))"
    done
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r JOIN metrics lo ON lo.run_id = r.id AND lo.name = 'error_lo'
        JOIN metrics hi ON hi.run_id = r.id AND hi.name = 'error_hi' JOIN metrics md ON md.run_id = r.id AND md.name = 'error_median'
        WHERE r.kind = 'validate' AND r.mode = 'point' AND lo.value <= md.value AND md.value <= hi.value")
    [ "$n" = 2 ]; ok $? "each point stores lo <= median <= hi ($n)"
    # the verdict holds whatever share of the host's time delayed the rounds:
    # the measured one when the same rounds without the host's upper bound
    # agree (same side when outside), else cannot conclude
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r
        JOIN params v ON v.run_id = r.id AND v.key = 'validate.verdict'
        JOIN params vm ON vm.run_id = r.id AND vm.key = 'validate.verdict_measured'
        JOIN params vh ON vh.run_id = r.id AND vh.key = 'validate.verdict_host_free'
        JOIN metrics eh ON eh.run_id = r.id AND eh.name = 'error_hi'
        LEFT JOIN metrics hh ON hh.run_id = r.id AND hh.name = 'error_host_free_hi'
        WHERE r.kind = 'validate' AND r.mode = 'point' AND v.value = CASE
            WHEN vh.value = 'unmeasured' THEN vm.value
            WHEN vm.value = vh.value AND NOT (vm.value = 'outside' AND (eh.value < -0.1) <> (hh.value < -0.1)) THEN vm.value
            ELSE 'cannot conclude' END")
    [ "$n" = 2 ]; ok $? "each point's verdict: the measured one only where the rounds without the host's time agree ($n)"
else
    skip "rounds in the store (no sqlite3)"; skip "op join in the store (no sqlite3)"; skip "execute runs' op join (no sqlite3)"
    skip "compute_l1 row from the store (no sqlite3)"; skip "load_l1 row from the store (no sqlite3)"; skip "intervals in the store (no sqlite3)"
    skip "verdicts and the host's time (no sqlite3)"
fi
# other processes on the run's CPUs (execute's others_*: /proc/stat less the
# run's threads), where execute measured them: within [0, the span], and a
# machine made busy on purpose (CPU hogs) has its rounds rejected as busy
if command -v sqlite3 > /dev/null && [ "$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM metrics WHERE name = 'others_span_s'")" -gt 0 ]; then
    n=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r JOIN metrics sp ON sp.run_id = r.id AND sp.name = 'others_span_s'
        JOIN metrics c ON c.run_id = r.id AND c.name = 'others_compute_cpu_s' JOIN metrics i ON i.run_id = r.id AND i.name = 'others_io_cpu_s'
        WHERE r.kind = 'execute' AND r.mode = 'real' AND c.value >= 0 AND i.value >= 0 AND c.value <= sp.value AND i.value <= sp.value AND sp.value > 0")
    m=$(sqlite3 "$TMP/val.db" "SELECT count(*) FROM runs r WHERE r.kind = 'validate' AND r.mode = 'round'
        AND EXISTS (SELECT 1 FROM metrics WHERE run_id = r.id AND name = 'others_compute_cpu_share')")
    [ "$n" -ge 4 ] && [ "$m" -ge 4 ]; ok $? "others' CPU time in [0, span] in every real run ($n), each round stores the shares ($m)"
    # a machine made busy on purpose: one CPU hog pinned to the CPU execute
    # computes on (the CPU its real runs above stored).  The kernel gives the
    # hog and the spinning compute thread (one weight, both runnable) a fair
    # share of that CPU whatever else the machine runs; left to the
    # balancer, a loaded machine once kept every hog off it for a run.
    # /proc/stat keeps each CPU's account in USER_HZ ticks (execute's figure
    # is good to about two, src/host/cpushare.h), so these runs are long
    # enough for a share to show: at 4 requests of 2 + 3 tokens a run took
    # 7-30 ms, one to three ticks, and beside the pinned hog its share read
    # anything from 0 to 100% (3.7% in 1 of 30 runs: no caution line, the
    # failure once seen in a full test run).  What the two checks rely on is
    # checked, and each is skipped with the reason where it did not hold:
    # the hog ran pinned there through the runs, the runs computed on that
    # CPU, and each run lasted at least 10 ticks, where the hog's half of the
    # span less two ticks is far above the gates (5%, --busy-tol 1).
    ccpu=$(sqlite3 "$TMP/val.db" "SELECT value FROM params WHERE key = 'exec.compute_cpu' AND value GLOB '[0-9]*'
        ORDER BY run_id DESC LIMIT 1")
    tck=$(getconf CLK_TCK 2> /dev/null || echo 100)
    minspan=$(awk -v t="$tck" 'BEGIN { printf "%.3f", 10 / (t > 0 ? t : 100) }')
    RUNB="--model $TMP/small.ini --device $TMP/host.ini --requests 16 --prompt 4 --gen 24 --mwq-dir $TMP"
    sed 's/^sim.requests = .*/sim.requests = 16/; s/^sim.prompt = .*/sim.prompt = 4/; s/^sim.gen = .*/sim.gen = 24/' "$TMP/v.ini" > "$TMP/vb.ini"
    h1=
    hogwhy=
    if [ -z "$ccpu" ]; then hogwhy="no compute CPU stored by the runs above"
    elif ! command -v taskset > /dev/null; then hogwhy="no taskset to pin a hog to the compute CPU ($ccpu)"
    else taskset -c "$ccpu" yes > /dev/null & h1=$!
    fi
    if [ -n "$h1" ]; then
        "$D2MOE" validate "$TMP/vb.ini" --db "$TMP/val3.db" --work "$TMP/vw" --rounds 1 --calib-tol 1000 --probe-tol 1000 --busy-tol 1 \
            --file-size 8Mi --time-cap 0.01 --no-timelines > "$TMP/vr4" 2>&1
        st=$?
        # shellcheck disable=SC2086
        "$D2MOE" execute $RUNB --budget 2M --no-verify --probe-tol 1000 > "$TMP/outbusy" 2>&1
        stb=$?
        # the hog still running, pinned where it was put (read now: taskset
        # sets the mask after the fork that $! names)
        hcpu=$(taskset -pc "$h1" 2> /dev/null | sed -n 's/.*current affinity list: *//p')
        hrun=$(awk '{ printf "%.3f", $1 / 1e9 }' "/proc/$h1/schedstat" 2> /dev/null)
        if ! kill -0 "$h1" 2> /dev/null; then hogwhy="the hog pinned to CPU $ccpu did not run through the runs"
        elif [ "$hcpu" != "$ccpu" ]; then hogwhy="the hog was not pinned to CPU $ccpu (its CPUs: ${hcpu:-unknown})"
        fi
        kill "$h1" 2> /dev/null; wait "$h1" 2> /dev/null
    fi
    # execute beside the hog: the share is printed, and above 5% (the gate's
    # default) a caution line says validate would reject the run
    if [ -n "$hogwhy" ]; then
        skip "execute beside a hog on its compute CPU: $hogwhy"
    else
        oline=$(grep '^other processes: ' "$TMP/outbusy")
        span=$(printf '%s\n' "$oline" | sed -n "s/.* in the run's \([0-9.]*\) s .*/\1/p")
        if [ $stb -ne 0 ] || [ -z "$span" ]; then
            ok 1 "execute beside the hog says the machine was busy (caution line)"
            diag "status $stb; $(grep -E '^(other processes|threads|d2moe)' "$TMP/outbusy")"
        elif ! grep -q "^threads: compute (and the probes) on CPU $ccpu," "$TMP/outbusy"; then
            skip "execute beside the hog: it computed elsewhere than CPU $ccpu ($(grep '^threads:' "$TMP/outbusy"))"
        elif awk -v s="$span" -v m="$minspan" 'BEGIN { exit !(s < m) }'; then
            skip "execute beside the hog: its run took $span s, under 10 /proc/stat ticks ($minspan s): too short for a share to show"
        else
            grep -Eq '^caution: (.*; )?other processes took [0-9.]+% of the compute CPU' "$TMP/outbusy"
            ok $? "execute beside the hog says the machine was busy (caution line)"
            grep -q '^caution: ' "$TMP/outbusy" || diag "$oline; the hog ran ${hrun:-?} s while execute ran"
        fi
    fi
    # validate beside the hog, --busy-tol 1: its round rejected as a busy
    # machine, no verdict.  Its precondition read from its store: the rounds'
    # runs computed on CPU $ccpu and each lasted at least 10 ticks
    if [ -n "$hogwhy" ]; then
        skip "validate beside a hog on the compute CPU: $hogwhy"
    else
        pre=$(sqlite3 "$TMP/val3.db" "SELECT count(*), coalesce(sum(p.value = '$ccpu' AND sp.value >= $minspan), 0),
                coalesce(group_concat(p.value || '@' || printf('%.3f', sp.value), ' '), '') FROM runs r
            JOIN params p ON p.run_id = r.id AND p.key = 'exec.compute_cpu'
            JOIN metrics sp ON sp.run_id = r.id AND sp.name = 'others_span_s' WHERE r.kind = 'execute' AND r.mode = 'real'")
        nx=${pre%%|*}; rest=${pre#*|}; nok=${rest%%|*}; runs=${rest#*|}
        if [ "$nx" -ge 1 ] && [ "$nok" != "$nx" ]; then
            skip "validate beside the hog: not every run computed on CPU $ccpu for at least $minspan s (CPU@span: $runs)"
        else
            n=$(sqlite3 "$TMP/val3.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 0
                JOIN params p ON p.run_id = r.id AND p.key = 'validate.reason' AND p.value LIKE 'busy machine: other processes took %' WHERE r.mode = 'round'")
            [ $st -eq 0 ] && [ "$n" -ge 1 ] && grep -q '(no accepted round)' "$TMP/vr4"
            hog=$?
            ok $hog "a CPU hog on the compute CPU, --busy-tol 1: the rounds rejected as a busy machine ($n), no verdict"
            [ $hog -eq 0 ] || diag "status $st; runs (CPU@span) $runs; $(grep -E 'round|rejected|accepted|error' "$TMP/vr4" | head -5)"
        fi
    fi
    # the validation figure's query leaves out rejected rounds: a point for
    # each accepted round of either store (none in the busy store when its
    # rounds were rejected above), four in the first
    for f in val3 val; do
        echo 0 > "$TMP/$f.rows"; echo 0 > "$TMP/$f.acc"
        [ -f "$TMP/$f.db" ] || continue # val3: no hog, no busy validation
        sqlite3 "$TMP/$f.db" < "${D2_SRCDIR:-.}/plots/validation.sql" | wc -l > "$TMP/$f.rows"
        sqlite3 "$TMP/$f.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 1
            WHERE r.kind = 'validate' AND r.mode = 'round'" > "$TMP/$f.acc"
    done
    [ "$(cat "$TMP/val3.rows")" -eq "$(cat "$TMP/val3.acc")" ] && [ "$(cat "$TMP/val.rows")" -eq 4 ]
    ok $? "the validation figure: a point per accepted round ($(cat "$TMP/val3.rows") of the busy store's $(cat "$TMP/val3.acc"), $(cat "$TMP/val.rows") of the first's 4)"
else
    skip "others' CPU time: not measured here (threads not pinned)"; skip "busy machine: not measured here"
    skip "the validation figure without rejected rounds: not measured here"
fi
# a run gate nothing passes: rounds rejected, stored with their reason, no verdict
"$D2MOE" validate "$TMP/v.ini" --db "$TMP/val2.db" --work "$TMP/vw" --rounds 1 --calib-tol 1000 --probe-tol 0.0001 \
    --file-size 8Mi --time-cap 0.01 > "$TMP/vr3" 2>&1; ok $? "validate with an impossible --probe-tol ends at the time cap"
grep -q '(no accepted round)' "$TMP/vr3"; ok $? "a point without accepted rounds says so"
if command -v sqlite3 > /dev/null; then
    n=$(sqlite3 "$TMP/val2.db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id AND m.name = 'accepted' AND m.value = 0
        JOIN params p ON p.run_id = r.id AND p.key = 'validate.reason' AND p.value LIKE 'run: kernel probe (warm or cold) moved%' WHERE r.mode = 'round'")
    [ "$n" -ge 1 ]; ok $? "rejected rounds stored with their reason ($n)"
else
    skip "rejected rounds in the store (no sqlite3)"
fi
expect 2 "--rounds 0: expected an integer" "validate --rounds 0: exit 2" -- "$D2MOE" validate "$TMP/v.ini" --db "$TMP/val.db" --rounds 0
expect 2 "--db FILE is required" "validate without --db: exit 2" -- "$D2MOE" validate "$TMP/v.ini"
expect 2 "expected kind = execute" "validate of a spec of another kind: exit 2" -- "$D2MOE" validate "$TMP/v2.ini" --db "$TMP/val.db"
# --nice: one parser (an integer -20..19), the same message in each command that takes it
for c in calibrate execute validate; do
    for v in 20 -21 x 1.5 ""; do
        expect 2 "^d2moe $c: --nice $v: expected an integer -20\.\.19 \(see 'd2moe $c --help'\)$" "$c --nice '$v': exit 2, one message" -- \
            "$D2MOE" $c --nice "$v"
    done
done
done_testing
