/* policy.c - the table of named systems (see policy.h and the table in
 * docs/simulator.md, which says what each row models and why). */
#include "sim/policy.h"

#include "core/registry.h"

#include <string.h>

static const policy_system systems[] = {
    {.name = "d2moe-v1",
     .summary = "D2MoE V1: MWQ INT2/3/4 nested, bit routing, HEBF, budget (the full system)",
     .nested = 1, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "hebf", .mem = "budget", .prefetch = "none", .buffer = "budget"},
    {.name = "d2moe-v2",
     .summary = "D2MoE V2: MWQ INT5/6/7/8 nested, bit routing, HEBF, budget",
     .nested = 1, .levels = 4, .bits = {5, 6, 7, 8}, .caps = "0.25/0.25/0.25/0.25",
     .bitroute = "gate", .plan = "hebf", .mem = "budget", .prefetch = "none", .buffer = "budget"},
    {.name = "hold-int8",
     .summary = "Hold-in-Memory INT8: every expert resident at INT8, no expert I/O",
     .nested = 0, .levels = 1, .bits = {8}, .caps = "1",
     .bitroute = "uniform:8", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "hold-awq-int4",
     .summary = "Hold-in-Memory-AWQ INT4: every expert resident at INT4, no expert I/O",
     .nested = 0, .levels = 1, .bits = {4}, .caps = "1",
     .bitroute = "uniform:4", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    /* uniform bit-widths held in memory, for the bit-width trade-off table
     * (PAPER.md section 1: one bit-width for the whole model, as llama.cpp) */
    {.name = "hold-int2",
     .summary = "every expert resident at INT2 (bit-width trade-off table)",
     .nested = 0, .levels = 1, .bits = {2}, .caps = "1",
     .bitroute = "uniform:2", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "hold-int3",
     .summary = "every expert resident at INT3 (bit-width trade-off table)",
     .nested = 0, .levels = 1, .bits = {3}, .caps = "1",
     .bitroute = "uniform:3", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "hold-int5",
     .summary = "every expert resident at INT5 (bit-width trade-off table)",
     .nested = 0, .levels = 1, .bits = {5}, .caps = "1",
     .bitroute = "uniform:5", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "hold-int6",
     .summary = "every expert resident at INT6 (bit-width trade-off table)",
     .nested = 0, .levels = 1, .bits = {6}, .caps = "1",
     .bitroute = "uniform:6", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "hold-fp16",
     .summary = "every expert resident at FP16 (bit-width trade-off table)",
     .nested = 0, .levels = 1, .bits = {16}, .caps = "1",
     .bitroute = "uniform:16", .plan = "id-order", .mem = "hold", .prefetch = "none", .buffer = "device"},
    {.name = "matryoshka-free",
     .summary = "D2MoE routing, scheduling and budget over separate GPTQ INT2/INT3/INT4 copies",
     .nested = 0, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "hebf", .mem = "budget", .prefetch = "none", .buffer = "budget"},
    {.name = "edgemoe",
     .summary = "EdgeMoE: one offline bit-width per expert (INT2/3/4), id order, LRU expert buffer filling the device, next-layer preloading",
     .nested = 0, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "static", .plan = "id-order", .mem = "lru", .prefetch = "paths", .buffer = "device"},
    {.name = "moqe-dynaio-int4",
     .summary = "MoQE-DynaIO INT4: uniform INT4 experts loaded on demand in id order, LRU buffer of sim.budget",
     .nested = 0, .levels = 1, .bits = {4}, .caps = "1",
     .bitroute = "uniform:4", .plan = "id-order", .mem = "lru", .prefetch = "none", .buffer = "budget"},
    {.name = "moqe-dynaio-int8",
     .summary = "MoQE-DynaIO INT8: uniform INT8 experts loaded on demand in id order, LRU buffer of sim.budget",
     .nested = 0, .levels = 1, .bits = {8}, .caps = "1",
     .bitroute = "uniform:8", .plan = "id-order", .mem = "lru", .prefetch = "none", .buffer = "budget"},
    /* Fig. 14's ablation, cumulative as the paper adds its components:
     * + Router (dynamic bit-widths over separate copies, no I/O-compute
     * overlap), + MWQ (nested levels, still sequential: Fig. 9(b) "MWQ with
     * sequential execution"), + HEBF ("I/O-compute parallelism with
     * hottest-first ordering"), + Budget (= d2moe-v1).  sim.budget bounds
     * the levels in flight of the first three. */
    {.name = "ablate-router",
     .summary = "Fig. 14 step 1, + Router: bit routing over separate INT2/3/4 copies, loads and computes one after the other (no overlap), free after use",
     .nested = 0, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "sequential", .mem = "none", .prefetch = "none", .buffer = "budget"},
    {.name = "ablate-mwq",
     .summary = "Fig. 14 step 2, + MWQ: nested INT2/3/4 levels, still sequential (no overlap), free after use",
     .nested = 1, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "sequential", .mem = "none", .prefetch = "none", .buffer = "budget"},
    {.name = "ablate-hebf",
     .summary = "Fig. 14 step 3, + HEBF: I/O-compute overlap in hottest-first order, free after use; + Budget = d2moe-v1",
     .nested = 1, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "hebf", .mem = "none", .prefetch = "none", .buffer = "budget"},
    /* issue 15: D2MoE with next-layer preloading (the paper's stated
     * limitation lifted): the paths predictor (EdgeMoE's activation-path
     * statistics, measured on the profiling requests) preloads the base
     * level of each predicted expert (bitroute_preload_level: nested
     * storage preloads levels 1..k, here k = 1, so base first). */
    {.name = "d2moe-v1-prefetch",
     .summary = "D2MoE V1 + next-layer preloading of predicted experts' base level (paths predictor)",
     .nested = 1, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "gate", .plan = "hebf", .mem = "budget", .prefetch = "paths", .buffer = "budget"},
    {.name = "d2moe-v2-prefetch",
     .summary = "D2MoE V2 + next-layer preloading of predicted experts' base level (paths predictor)",
     .nested = 1, .levels = 4, .bits = {5, 6, 7, 8}, .caps = "0.25/0.25/0.25/0.25",
     .bitroute = "gate", .plan = "hebf", .mem = "budget", .prefetch = "paths", .buffer = "budget"},
    /* issue 15: HOBBIT (arXiv 2411.01433): INT2 and INT4 copies (not
     * nested), low precision for less important experts on a miss,
     * layer-adaptive gate prefetching, the recency/frequency/precision
     * cache */
    {.name = "hobbit",
     .summary = "HOBBIT: INT4 + INT2 copies, an unimportant expert missing its INT4 copy runs at INT2, adaptive next-layer prefetch, recency/frequency/precision cache",
     .nested = 0, .levels = 2, .bits = {2, 4}, .caps = "0/1", /* caps: unused by hobbit routing; a preload default of the INT4 copy */
     .bitroute = "hobbit", .plan = "id-order", .mem = "hobbit", .prefetch = "gate-adaptive", .buffer = "budget"},
    /* issue 15: mixtral-offloading (Eliseev and Mazur, arXiv 2312.17238):
     * per-layer LRU of k = M / (layers x expert) experts, speculative
     * loading by the next layer's gate, experts quantized to 3 (or 2) bits
     * (HQQ in the paper; attention at 4 bits = sim.nonexpert_bits) */
    {.name = "mixtral-offloading",
     .summary = "mixtral-offloading: INT3 experts, per-layer LRU cache of M / layers, speculative loading of the next layer's experts by its gate",
     .nested = 0, .levels = 1, .bits = {3}, .caps = "1",
     .bitroute = "uniform:3", .plan = "id-order", .mem = "layer-lru", .prefetch = "gate-ahead", .buffer = "budget"},
    {.name = "mixtral-offloading-int2",
     .summary = "mixtral-offloading with INT2 experts (the paper's other expert quantization)",
     .nested = 0, .levels = 1, .bits = {2}, .caps = "1",
     .bitroute = "uniform:2", .plan = "id-order", .mem = "layer-lru", .prefetch = "gate-ahead", .buffer = "budget"},
    /* systems from the field (issue 15; docs/simulator.md says what each
     * models and leaves out) */
    {.name = "moe-infinity",
     .summary = "MoE-Infinity: INT4 experts, per-request activation matrices matched against profiled ones drive preloading and the cache",
     .nested = 0, .levels = 1, .bits = {4}, .caps = "1",
     .bitroute = "uniform:4", .plan = "id-order", .mem = "moe-infinity", .prefetch = "moe-infinity", .buffer = "budget"},
    {.name = "fate",
     .summary = "Fate: popular experts INT4, unpopular INT2 (profiled), cross-layer gate preloading, shallow-favouring ARC cache",
     .nested = 0, .levels = 2, .bits = {2, 4}, .caps = "0.5/0.5",
     .bitroute = "static", .plan = "id-order", .mem = "fate", .prefetch = "fate-gate", .buffer = "budget"},
    {.name = "slicemoe",
     .summary = "SliceMoE: nested INT2/3/4 slices cached separately, precision from what is cached under a miss-rate target, decode warmup",
     .nested = 1, .levels = 3, .bits = {2, 3, 4}, .caps = "0.3/0.4/0.3",
     .bitroute = "slice", .plan = "id-order", .mem = "slicemoe", .prefetch = "none", .buffer = "budget"},
    {.name = NULL},
};

D2_REGISTRY(policy, policy_system, systems)
