/* prefetch.c - preloading predictors (see prefetch.h).  Scores are ranked
 * descending with ties to the lower expert id, so predictions repeat. */
#include "sim/prefetch.h"
#include "sim/plugins.h"
#include "core/err.h"
#include "core/model.h"
#include "core/registry.h"

#include <stdlib.h>
#include <string.h>

#define MAXE MODEL_MAX_EXPERTS

uint32_t prefetch_top(const double *score, uint32_t E, uint32_t want, int positive, uint32_t *out)
{
    uint32_t n = 0;
    if (want == 0) return 0;
    for (uint32_t e = 0; e < E; e++) { /* insertion into the top `want` */
        if (positive && score[e] <= 0) continue;
        uint32_t j;
        if (n < want) j = n++;
        else if (score[e] > score[out[want - 1]]) j = want - 1;
        else continue;
        while (j > 0 && score[e] > score[out[j - 1]]) { out[j] = out[j - 1]; j--; }
        out[j] = e;
    }
    return n;
}

static int predict_none(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    (void)c;
    (void)out;
    *n = 0;
    return D2_OK;
}

/* EdgeMoE's activation-path statistics: sum over this layer's uses of
 * P(e' at l+1 | e at l), measured on the profiling requests. */
static int predict_paths(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    double score[MAXE]; /* only the first c->experts are used: clearing all 4096 cost more than the sums */
    memset(score, 0, c->experts * sizeof *score);
    for (size_t i = 0; i < c->ncur; i++) {
        const double *row = c->trans + (size_t)c->cur[i] * c->experts;
        for (uint32_t e = 0; e < c->experts; e++) score[e] += row[e];
    }
    *n = prefetch_top(score, c->experts, c->want, 0, out);
    return D2_OK;
}

/* A predictor of given accuracy: the next layer's true most-used experts,
 * each kept with probability acc, else replaced by a random expert not
 * already predicted. */
static int predict_oracle(const prefetch_ctx *c, uint32_t *out, uint32_t *nout)
{
    double score[MAXE]; /* only the first c->experts are used */
    unsigned char taken[MAXE];
    memset(score, 0, c->experts * sizeof *score);
    memset(taken, 0, c->experts);
    for (size_t i = 0; i < c->nnext; i++) score[c->next[i]] += 1;
    uint32_t n = prefetch_top(score, c->experts, c->want, 0, out);
    for (uint32_t i = 0; i < n; i++) taken[out[i]] = 1;
    for (uint32_t i = 0; i < n; i++)
        if (gsl_rng_uniform(c->rng) >= c->acc && n < c->experts) {
            uint32_t e;
            do e = (uint32_t)gsl_rng_uniform_int(c->rng, c->experts); while (taken[e]);
            taken[e] = 1;
            out[i] = e;
        }
    *nout = n;
    return D2_OK;
}

static const prefetch_type types[] = {
    {.name = "none", .summary = "no preloading (the paper's D2MoE)", .ignores_routing = 1, .predict = predict_none},
    {.name = "paths", .summary = "next layer's experts from activation-path statistics of profiling requests (EdgeMoE)",
     .needs_profile = 1, .predict = predict_paths},
    {.name = "oracle", .summary = "the next layer's true top experts, each kept with probability sim.predict_acc",
     .predict = predict_oracle},
    /* issue 15 (src/sim/pf_gate.c): the next layer's gate on the current hidden state, by its accuracy */
    {.name = "gate-ahead",
     .summary = "the next layer's gate applied to the current hidden state (mixtral-offloading): each true expert predicted with probability sim.gate_ahead_acc (0.8, assumed)",
     .state_size = sizeof(gate_state), .init = gate_init, .fini = gate_fini, .observe = gate_observe,
     .predict = gate_predict_fixed},
    {.name = "gate-adaptive",
     .summary = "gate-ahead preloading as many experts as the layer's running accuracy justifies (HOBBIT's layer-level adaptive prefetching)",
     .state_size = sizeof(gate_state), .init = gate_init, .fini = gate_fini, .observe = gate_observe,
     .predict = gate_predict_adaptive},
    /* issue 15's systems (hooks in pf_moeinf.c, pf_fate.c) */
    {.name = "moe-infinity",
     .summary = "MoE-Infinity: each request's expert activation matrix matched (cosine) against the profiling requests'; the best match's next row",
     .state_size = sizeof(moeinf_state), .init = moeinf_init, .fini = moeinf_fini, .observe = moeinf_observe,
     .predict = moeinf_predict},
    {.name = "fate-gate",
     .summary = "Fate: the next layer's gate on this layer's input, per token, modelled by its accuracy sim.gate_acc (Fate reports 97.15%)",
     .predict = fate_predict},
    {.name = NULL},
};
D2_REGISTRY(prefetch, prefetch_type, types)
