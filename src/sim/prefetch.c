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

typedef double v2d __attribute__((vector_size(16))); /* two lanes: each adds in the scalar order */

static inline v2d load2(const double *p)
{
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* EdgeMoE's activation-path statistics: sum over this layer's uses of
 * P(e' at l+1 | e at l), measured on the profiling requests.  Each score
 * is summed over the uses in their order, two experts per vector lane pair
 * (the same additions as one expert at a time, so the same bits). */
static int predict_paths(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    double score[MAXE]; /* only the first c->experts are used: clearing all 4096 cost more than the sums */
    const uint32_t E = c->experts, E2 = E & ~1u;
    const uint16_t *cur = c->cur;
    const size_t ncur = c->ncur;
    if (E == 8) { /* the common 8 experts (Mixtral, LLaMA-MoE): the scores in registers */
        v2d s0 = {0, 0}, s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < ncur; i++) {
            const double *row = c->trans + (size_t)cur[i] * 8;
            s0 += load2(row);
            s1 += load2(row + 2);
            s2 += load2(row + 4);
            s3 += load2(row + 6);
        }
        memcpy(score, &s0, sizeof s0);
        memcpy(score + 2, &s1, sizeof s1);
        memcpy(score + 4, &s2, sizeof s2);
        memcpy(score + 6, &s3, sizeof s3);
    } else {
        memset(score, 0, E * sizeof *score);
        for (size_t i = 0; i < ncur; i++) {
            const double *row = c->trans + (size_t)cur[i] * E;
            for (uint32_t e = 0; e < E2; e += 2) {
                const v2d v = load2(score + e) + load2(row + e);
                memcpy(score + e, &v, sizeof v);
            }
            if (E & 1) score[E - 1] += row[E - 1];
        }
    }
    *n = prefetch_top(score, E, c->want, 0, out);
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
