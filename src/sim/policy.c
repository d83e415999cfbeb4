/* policy.c - the table of named systems (see policy.h and the table in
 * docs/simulator.md, which says what each row models and why). */
#include "sim/policy.h"

#include <string.h>

static const policy_system systems[] = {
    {"d2moe-v1", "D2MoE V1: MWQ INT2/3/4 nested, bit routing, HEBF, budget (the full system)",
     1, 3, {2, 3, 4}, "0.3/0.4/0.3", "gate", "hebf", "budget", "none"},
    {"d2moe-v2", "D2MoE V2: MWQ INT5/6/7/8 nested, bit routing, HEBF, budget",
     1, 4, {5, 6, 7, 8}, "0.25/0.25/0.25/0.25", "gate", "hebf", "budget", "none"},
    {"hold-int8", "Hold-in-Memory INT8: every expert resident at INT8, no expert I/O",
     0, 1, {8}, "1", "uniform:8", "id-order", "hold", "none"},
    {"hold-awq-int4", "Hold-in-Memory-AWQ INT4: every expert resident at INT4, no expert I/O",
     0, 1, {4}, "1", "uniform:4", "id-order", "hold", "none"},
    /* uniform bit-widths held in memory, for the bit-width trade-off table
     * (PAPER.md section 1: one bit-width for the whole model, as llama.cpp) */
    {"hold-int2", "every expert resident at INT2 (bit-width trade-off table)",
     0, 1, {2}, "1", "uniform:2", "id-order", "hold", "none"},
    {"hold-int3", "every expert resident at INT3 (bit-width trade-off table)",
     0, 1, {3}, "1", "uniform:3", "id-order", "hold", "none"},
    {"hold-int5", "every expert resident at INT5 (bit-width trade-off table)",
     0, 1, {5}, "1", "uniform:5", "id-order", "hold", "none"},
    {"hold-int6", "every expert resident at INT6 (bit-width trade-off table)",
     0, 1, {6}, "1", "uniform:6", "id-order", "hold", "none"},
    {"hold-fp16", "every expert resident at FP16 (bit-width trade-off table)",
     0, 1, {16}, "1", "uniform:16", "id-order", "hold", "none"},
    {"matryoshka-free", "D2MoE routing and scheduling over separate GPTQ INT2/INT3/INT4 copies",
     0, 3, {2, 3, 4}, "0.3/0.4/0.3", "gate", "hebf", "budget", "none"},
    {"edgemoe", "EdgeMoE: one offline bit-width per expert (INT2/3/4), id order, LRU buffer, next-layer preloading",
     0, 3, {2, 3, 4}, "0.3/0.4/0.3", "static", "id-order", "lru", "paths"},
    {"moqe-dynaio-int4", "MoQE-DynaIO INT4: uniform INT4 experts loaded on demand in id order, LRU buffer",
     0, 1, {4}, "1", "uniform:4", "id-order", "lru", "none"},
    {"moqe-dynaio-int8", "MoQE-DynaIO INT8: uniform INT8 experts loaded on demand in id order, LRU buffer",
     0, 1, {8}, "1", "uniform:8", "id-order", "lru", "none"},
    {"ablate-router", "ablation 1: bit routing only: separate INT2/3/4 copies, id order, free after use",
     0, 3, {2, 3, 4}, "0.3/0.4/0.3", "gate", "id-order", "none", "none"},
    {"ablate-mwq", "ablation 2: + MWQ nested levels (id order, free after use)",
     1, 3, {2, 3, 4}, "0.3/0.4/0.3", "gate", "id-order", "none", "none"},
    {"ablate-hebf", "ablation 3: + HEBF (no budget: free after use); + budget = d2moe-v1",
     1, 3, {2, 3, 4}, "0.3/0.4/0.3", "gate", "hebf", "none", "none"},
    {NULL, NULL, 0, 0, {0}, NULL, NULL, NULL, NULL, NULL},
};

const policy_system *policy_find(const char *name)
{
    for (const policy_system *s = systems; s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

const policy_system *policy_list(void) { return systems; }
