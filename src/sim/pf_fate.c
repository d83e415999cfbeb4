/* pf_fate.c - Fate's cross-layer gate prefetch (Fang et al., arXiv
 * 2502.12224): the next layer's gate applied to this layer's input predicts,
 * per token, that token's next-layer experts.  The trace records routing,
 * not hidden states, so the gate is modelled by its accuracy: each of a
 * token's true next-layer experts is predicted with probability
 * sim.gate_acc (default: the paper's reported figure), else a wrong expert
 * drawn at random; the experts most predicted over the step's tokens are preloaded.
 * It reads the next layer's true routing (ctx.next) for that reason only. */
#include "sim/plugins.h"
#include "sim/sim.h"
#include "core/err.h"
#include "core/model.h"

#include <gsl/gsl_rng.h>
#include <string.h>

int fate_predict(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    double score[MODEL_MAX_EXPERTS]; /* only the first c->experts are used */
    memset(score, 0, c->experts * sizeof *score);
    *n = 0;
    if (!c->next || c->experts == 0) return D2_OK;
    double acc = c->params ? c->params->gate_acc : FATE_GATE_ACC;
    for (size_t i = 0; i < c->nnext; i++) {
        uint32_t e = c->next[i];
        if (e >= c->experts) continue;
        if (c->experts > 1 && gsl_rng_uniform(c->rng) >= acc) { /* a wrong expert */
            uint32_t w = (uint32_t)gsl_rng_uniform_int(c->rng, c->experts - 1);
            e = w >= e ? w + 1 : w;
        }
        score[e] += 1;
    }
    *n = prefetch_top(score, c->experts, c->want, 1, out); /* the want highest, ties to the lower id */
    return D2_OK;
}
