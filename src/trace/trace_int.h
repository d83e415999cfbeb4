/* trace_int.h - private to src/trace: the rules a record's routing obeys,
 * written once for the two readers that check them (trace_rec_check in
 * trace.c, with its messages, and the simulator's decoding in source.c,
 * which only asks whether a record is good).  Nothing outside src/trace
 * includes it.  It does not check the layer (each caller has it at hand
 * before the routing) or the order of records. */
#ifndef D2_TRACE_TRACE_INT_H
#define D2_TRACE_TRACE_INT_H

#include "trace/trace.h"

#include <float.h>
#include <stdint.h>

/* The first rule a record's routing breaks, in the order trace_rec_check
 * reports them (its messages name each). */
typedef enum trace_rule {
    TRACE_RULE_OK = 0,        /* every rule holds */
    TRACE_RULE_PHASE,         /* phase above TRACE_UNKNOWN */
    TRACE_RULE_EXPERT_RANGE,  /* experts[at] >= the shape's experts */
    TRACE_RULE_EXPERT_TWICE,  /* experts[at] equals an earlier id */
    TRACE_RULE_WEIGHT,        /* weights[at] not finite or below 0 */
    TRACE_RULE_WEIGHT_ORDER,  /* weights[at] above weights[at - 1] */
} trace_rule;

/* Which rule a record's routing breaks first, and where. */
typedef struct trace_rule_at {
    trace_rule rule;          /* TRACE_RULE_OK: none */
    uint32_t at;              /* index into experts / weights of the breaking entry (0 for the phase and for none) */
} trace_rule_at;

/* The record invariant (trace.h, trace_rec): phase 0..2; experts[0..k-1]
 * below n_experts and distinct; weights finite, >= 0 and non-increasing.
 * Returns the first rule broken (in trace_rec_check's order) and the index
 * of the id or weight that breaks it.  Inline, returning by value, so that
 * the simulator's per-record test, which only compares .rule with
 * TRACE_RULE_OK, costs what a hand-written test costs (and a literal k
 * unrolls the loops).  A weight w is finite and >= 0 iff 0 <= w <= FLT_MAX
 * (NaN fails both comparisons). */
static inline __attribute__((always_inline)) trace_rule_at trace_rule_first(unsigned phase, const uint16_t *experts,
                                                                            const float *weights, uint32_t k,
                                                                            uint32_t n_experts)
{
    if (phase > TRACE_UNKNOWN) return (trace_rule_at){.rule = TRACE_RULE_PHASE, .at = 0};
    for (uint32_t j = 0; j < k; j++) {
        if (experts[j] >= n_experts) return (trace_rule_at){.rule = TRACE_RULE_EXPERT_RANGE, .at = j};
        for (uint32_t i = 0; i < j; i++)
            if (experts[i] == experts[j]) return (trace_rule_at){.rule = TRACE_RULE_EXPERT_TWICE, .at = j};
        if (!(weights[j] >= 0 && weights[j] <= FLT_MAX)) return (trace_rule_at){.rule = TRACE_RULE_WEIGHT, .at = j};
        if (j && !(weights[j] <= weights[j - 1])) return (trace_rule_at){.rule = TRACE_RULE_WEIGHT_ORDER, .at = j};
    }
    return (trace_rule_at){.rule = TRACE_RULE_OK, .at = 0};
}

#endif
