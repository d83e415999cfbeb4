#!/bin/sh
# sim.sh - d2moe simulate: JSON fields, --db rows, --timeline CSV, --list,
# repeatability, out of memory as a result, and bad arguments (exit 2, one
# line).  Small configurations only: performance lives in `d2moe bench sim`.
. "${D2_SRCDIR:-.}/tests/lib.sh"

S="$D2MOE simulate --model llama-moe-3.5b --device env1 --requests 4 --prompt 8 --gen 8"

$S --json > "$TMP/a.json"; ok $? "simulate --json exits 0"
for k in status throughput_tps total_tps makespan_s ttft_s tpot_s peak_mem_mb io_gb io_busy_s compute_busy_s \
         bubble_s bubble_ratio hit_rate plan_overhead_s uses_bits_2 gate_bits_4; do
    jq -e "has(\"$k\")" "$TMP/a.json" > /dev/null; ok $? "json has $k"
done
jq -e '.status == "ok" and .throughput_tps > 0 and .makespan_s > 0' "$TMP/a.json" > /dev/null; ok $? "status ok, throughput > 0"
jq -e '.params["sim.policy"] == "d2moe-v1" and .params["system.plan"] == "hebf"' "$TMP/a.json" > /dev/null; ok $? "effective params in the JSON"
# the reading the run ran under, named in both outputs (README: datasheet vs paper-testbed)
jq -e '.reading == "datasheet"' "$TMP/a.json" > /dev/null; ok $? "json names the reading (default datasheet)"
$S --readings paper-testbed --json | jq -e '.reading == "paper-testbed" and .params["reading.name"] == "paper-testbed"' > /dev/null
ok $? "json names --readings paper-testbed"
$S | grep -Eq '^reading +\= datasheet$'; ok $? "text output: reading = datasheet"
$S --readings none | grep -Eq '^reading +\= none$'; ok $? "text output: reading = none"
$S --json > "$TMP/b.json"
jq -S 'del(.plan_overhead_s)' "$TMP/a.json" > "$TMP/a2"; jq -S 'del(.plan_overhead_s)' "$TMP/b.json" > "$TMP/b2"
cmp -s "$TMP/a2" "$TMP/b2"; ok $? "two runs with the same seed: identical output (but the wall-clock plan overhead)"

$S --policy hold-int8 --db "$TMP/r.db" > /dev/null; ok $? "simulate --db exits 0"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM metrics WHERE run_id = 1 AND name = 'throughput_tps'"); [ "$n" = 1 ]; ok $? "metrics stored"
n=$(sqlite3 "$TMP/r.db" "SELECT value FROM params WHERE run_id = 1 AND key = 'sim.policy'"); [ "$n" = hold-int8 ]; ok $? "params stored (sim.policy = $n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM params WHERE run_id = 1 AND key LIKE 'device.%'"); [ "$n" -gt 10 ]; ok $? "device params stored ($n)"
n=$(sqlite3 "$TMP/r.db" "SELECT count(*) FROM inputs WHERE run_id = 1 AND role IN ('model','device')"); [ "$n" = 2 ]; ok $? "model and device profiles stored as inputs"
n=$(sqlite3 "$TMP/r.db" "SELECT status FROM runs WHERE id = 1"); [ "$n" = ok ]; ok $? "run status ok"

$S --policy edgemoe --timeline "$TMP/t.csv" > /dev/null; ok $? "simulate --timeline exits 0"
head -1 "$TMP/t.csv" | grep -q '^start_ns,end_ns,queue,layer,expert,level,tokens$'; ok $? "timeline header"
awk -F, 'NR > 1 && ($2 <= $1 || ($3 != "io" && $3 != "compute")) { bad++ } END { exit bad > 0 }' "$TMP/t.csv"; ok $? "every interval has end > start and a known queue"
awk -F, 'NR > 1 && $3 == "compute" { if ($1 < last) bad++; last = $2 } END { exit bad > 0 }' "$TMP/t.csv"; ok $? "compute intervals never overlap"
awk -F, 'NR > 1 && $3 == "io" { if ($1 < last) bad++; last = $2 } END { exit bad > 0 }' "$TMP/t.csv"; ok $? "I/O intervals never overlap (one channel)"

$D2MOE simulate --list | grep -q '^  ablate-hebf '; ok $? "--list shows the systems"
$D2MOE simulate --list | grep -q '^  paths '; ok $? "--list shows the preloading predictors"
$D2MOE simulate --list | grep -q '^  poisson '; ok $? "--list shows the arrival processes"
$S --set sim.arrival=poisson --set sim.arrival_rate=4 --json | jq -e '.status == "ok" and .ttft_max_s >= .ttft_s and .latency_s > 0' > /dev/null
ok $? "poisson arrivals: per-request ttft and latency"
$D2MOE simulate --help | grep -q 'sim.budget'; ok $? "--help lists the sim keys"

$D2MOE simulate --model mixtral-8x7b --device env1 --policy hold-int8 --requests 2 --prompt 4 --gen 4 --json > "$TMP/oom.json"
ok $? "out of memory exits 0 (a result)"
jq -e '.status == "oom" and (.reason | length) > 0' "$TMP/oom.json" > /dev/null; ok $? "mixtral INT8 resident on a 6 GB GPU: status oom"

# sim.storage: a nested system's level sizes from a named storage format.
# One token at INT2 only (uniform:2), room for all: 64 level-1 loads, so the
# bytes scale by the level-1 sizes: v1k 74 B per 256 weights against the
# paper layout's 2 bits + 4 B per 128 weights (0.28125 B/weight): 37/36.
ST="$D2MOE simulate --model mixtral-8x7b --device env1 --set sim.bitroute=uniform:2 --budget 4G --requests 1 --prompt 1 --gen 1 --json"
a=$($ST | jq '.io_gb'); b=$($ST --set sim.storage=v1 | jq '.io_gb'); c=$($ST --set sim.storage=v1k | jq '.io_gb')
awk -v a="$a" -v b="$b" 'BEGIN { exit !(a > 0 && a == b) }'; ok $? "sim.storage=v1: the paper layout's sizes ($a GB both)"
awk -v a="$a" -v c="$c" 'BEGIN { r = c / a; exit !(r > 37 / 36 - 1e-9 && r < 37 / 36 + 1e-9) }'
ok $? "sim.storage=v1k: level-1 bytes 74 B per super-block of 256 weights, 37/36 of the paper layout ($c / $a GB)"
expect 2 "sim.storage: v2k has 4 levels; system d2moe-v1 has 3" "sim.storage with another level count: exit 2" -- $S --set sim.storage=v2k
expect 2 "stores separate copies, not nested levels" "sim.storage on a system of copies: exit 2" -- $S --policy hold-int8 --set sim.storage=v1k
expect 2 "not a storage format" "sim.storage of an unknown format: exit 2" -- $S --set sim.storage=v3k
expect 2 '"nope" is not a named system' "unknown policy: exit 2" -- $S --policy nope
expect 2 "smaller than one expert level" "budget below one level: exit 2" -- $S --budget 1M
expect 2 "unknown planner" "unknown planner: exit 2" -- $S --set sim.plan=fastest
expect 2 "unknown predictor" "unknown preloading predictor: exit 2" -- $S --set sim.prefetch=psychic
expect 2 "expected model.KEY" "--set of an unknown table: exit 2" -- $S --set foo.bar=1
expect 2 "requests: 0 is outside" "zero requests: exit 2" -- $D2MOE simulate --model llama-moe-3.5b --device env1 --requests 0 --prompt 8 --gen 8
expect 2 "model is required" "no model: exit 2" -- $D2MOE simulate --device env1
expect 2 "unknown option" "unknown option: exit 2" -- $S --frobnicate
expect 2 "trace" "bitroute=trace without recorded bits: exit 2" -- $S --set sim.bitroute=trace
if $D2MOE trace gen --model olmoe-1b-7b --set gen.requests=1 --set gen.prefill=4 --set gen.decode=4 -o "$TMP/olmoe.d2t" > /dev/null 2>&1; then
    expect 2 "does not match model" "a trace of another model's shape: exit 2" -- $S --trace "$TMP/olmoe.d2t"
else
    skip "trace gen unavailable"
fi
MX="$D2_SHARED/data/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl"
if [ -f "$MX" ] && $D2MOE trace import --format mixtral-jsonl "$MX" -o "$TMP/mx.d2t" --model mixtral-8x7b > /dev/null 2>&1; then
    $D2MOE simulate --model mixtral-8x7b --device env2 --trace "$TMP/mx.d2t" --requests 2 --prompt 16 --gen 16 --policy edgemoe --json > "$TMP/mx.json"
    jq -e '.status == "ok" and .prefetch_loads > 0' "$TMP/mx.json" > /dev/null; ok $? "real Mixtral routing (shared data): edgemoe runs and preloads"
else
    skip "shared Mixtral trace absent"
fi
# the transient FP16 copy is counted only where a kernel writes one: per-level on a device that
# dequantizes (env1: +2 W = 352.32 MB for Mixtral), not the fused kernel, not a device reading packed codes
pk() { dv=$1; kn=$2; tr=$3; shift 3
       "$D2MOE" simulate --model mixtral-8x7b --device "$dv" --policy d2moe-v1 --budget 300M --requests 2 --prompt 8 --gen 8 \
       --set sim.kv_on_device=false --set sim.nested_kernel="$kn" --set sim.transient_fp16="$tr" "$@" 2>/dev/null |
       sed -n 's/^peak_mem_mb *= *\([0-9.]*\) MB$/\1/p'; }
a=$(pk env1 per-level true); b=$(pk env1 per-level false); c=$(pk env1 fused true); e=$(pk env1 per-level true --set device.dequant_rate=1e16)
awk -v a="$a" -v b="$b" -v c="$c" -v e="$e" 'BEGIN { exit !(a - b > 352.3 && a - b < 352.4 && c == b && e == b) }'
ok $? "peak memory: the FP16 copy counted for the per-level kernel only ($a vs $b MB), not fused ($c) nor dequant_rate 1e16 ($e)"
# measured SwiGLU rates above fp16_flops / 2: the bound's compute floor takes the fastest rate (the run failed
# with "throughput above its bound" before)
S=""; for k in 1 2 3; do S="$S --set device.swiglu_gu_rate_l$k=8e10 --set device.swiglu_down_rate_l$k=8e10"; done
"$D2MOE" simulate --model tiny-moe --device host --policy d2moe-v1 --budget 2G --requests 8 --prompt 4 --gen 64 \
    --set sim.nested_compute=swiglu $S --set device.swiglu_epilogue_rate=1e13 > "$TMP/fast.out" 2>&1; st=$?
t=$(sed -n 's/^throughput_tps *= *\([0-9.]*\) .*/\1/p' "$TMP/fast.out"); b=$(sed -n 's/^bound_tps *= *\([0-9.]*\) .*/\1/p' "$TMP/fast.out")
[ "$st" -eq 0 ] && awk -v t="$t" -v b="$b" 'BEGIN { exit !(t > 0 && t <= b) }'
ok $? "SwiGLU rates faster than fp16_flops / 2: the run holds its bound (status $st, $t <= $b tokens/s)"
# the bound's memory term: LLaMA-MoE held in FP16 on an RTX 4090 streams about 7 GB of weights a token at
# 1008 GB/s; the simulator runs at that limit, and the bound says so (bound_util 0.012 before the term)
"$D2MOE" simulate --model llama-moe-3.5b --device rtx4090 --policy hold-fp16 --requests 1 --set sim.nonexpert_bits=16 \
    --readings paper-testbed --json > "$TMP/mb.json"; st=$?
[ "$st" -eq 0 ] && jq -e '.status == "ok" and .bound_util > 0.9 and .bound_util <= 1 and .bound_io_s == 0
                          and .bound_compute_s == .bound_mem_s and .bound_mem_s > 10 * .bound_flops_s' "$TMP/mb.json" > /dev/null
ok $? "hold-fp16 on rtx4090: memory-bound, bound_util $(jq -r .bound_util "$TMP/mb.json" 2>/dev/null) in (0.9, 1] (status $st)"
# a trace recorded for another model of the same shape: replayed, with a note naming both
TR="${D2_SRCDIR:-.}/traces/mixtral-8x7b.r2.p16.d32.s1.d2t"
"$D2MOE" simulate --model llama-moe-3.5b --device env1 --trace "$TR" --requests 2 --prompt 16 --gen 16 > /dev/null 2> "$TMP/tm.err"
st=$?
[ "$st" -eq 0 ] && grep -q "note: trace .* was recorded for model mixtral-8x7b; replayed on llama-moe-3.5b" "$TMP/tm.err"
ok $? "a trace of another model: a note names both (status $st)"
"$D2MOE" simulate --model mixtral-8x7b --device env1 --trace "$TR" --requests 2 --prompt 16 --gen 16 > /dev/null 2> "$TMP/tm2.err"
[ $? -eq 0 ] && ! grep -q "was recorded for model" "$TMP/tm2.err"
ok $? "a trace of the run's own model: no such note"
done_testing
