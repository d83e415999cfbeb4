/* pf_gate.c - predictors that stand for "the next layer's gate applied to
 * the current layer's hidden state" (mixtral-offloading's speculative
 * loading, arXiv 2312.17238 section 3.2; HOBBIT's layer-level prefetching,
 * arXiv 2411.01433).  A routing trace holds no hidden states, so such a
 * guess is modelled by its accuracy: each of the next layer's true experts
 * is predicted with probability acc, else a wrong expert is (the oracle
 * predictor's noise model).  It does not compute any gate. */
#include "sim/plugins.h"
#include "sim/sim.h"
#include "core/err.h"
#include "core/model.h"

#include <stdlib.h>
#include <string.h>

int gate_init(void *state, const prefetch_ctx *c)
{
    gate_state *s = state;
    s->layers = c->layers;
    s->experts = c->experts;
    s->pred = calloc((size_t)c->layers * c->experts, 1);
    s->acc = malloc(c->layers * sizeof *s->acc);
    s->npred = calloc(c->layers, sizeof *s->npred);
    if (!s->pred || !s->acc || !s->npred) {
        gate_fini(s);
        D2_ERROR(D2_ENOMEM, "prefetch: out of memory");
    }
    for (uint32_t l = 0; l < c->layers; l++) s->acc[l] = 1; /* trusted until it misses */
    return D2_OK;
}

void gate_fini(void *state)
{
    gate_state *s = state;
    free(s->pred);
    free(s->acc);
    free(s->npred);
    s->pred = NULL;
    s->acc = NULL;
    s->npred = NULL;
}

/* How many of the experts last predicted for this layer it really uses;
 * the layer's running accuracy moves halfway towards that share (an
 * exponential average with weight 1/2: recent steps count most). */
int gate_observe(const prefetch_ctx *c)
{
    gate_state *s = c->state;
    uint32_t l = c->layer;
    if (!s->npred[l] || !c->cur) return D2_OK;
    unsigned char used[MODEL_MAX_EXPERTS]; /* only the first s->experts are used */
    memset(used, 0, s->experts);
    for (size_t i = 0; i < c->ncur; i++) used[c->cur[i]] = 1;
    uint32_t good = 0;
    for (uint32_t e = 0; e < s->experts; e++) good += s->pred[(size_t)l * s->experts + e] && used[e];
    s->acc[l] = 0.5 * s->acc[l] + 0.5 * (double)good / (double)s->npred[l];
    return D2_OK;
}

/* The next layer's `want` most used experts (ties to the lower id), each
 * kept with probability acc, else replaced by a random expert not already
 * predicted; remembered for observe. */
static int guess(const prefetch_ctx *c, double acc, uint32_t want, uint32_t *out, uint32_t *nout)
{
    gate_state *s = c->state;
    double cnt[MODEL_MAX_EXPERTS]; /* only the first c->experts are used */
    unsigned char taken[MODEL_MAX_EXPERTS];
    memset(cnt, 0, c->experts * sizeof *cnt);
    memset(taken, 0, c->experts);
    for (size_t i = 0; i < c->nnext; i++) cnt[c->next[i]] += 1;
    uint32_t n = prefetch_top(cnt, c->experts, want, 1, out);
    for (uint32_t i = 0; i < n; i++) taken[out[i]] = 1;
    for (uint32_t i = 0; i < n; i++)
        if (gsl_rng_uniform(c->rng) >= acc && n < c->experts) {
            uint32_t e;
            do e = (uint32_t)gsl_rng_uniform_int(c->rng, c->experts); while (taken[e]);
            taken[e] = 1;
            out[i] = e;
        }
    uint32_t nl = c->layer + 1;
    memset(s->pred + (size_t)nl * s->experts, 0, s->experts);
    for (uint32_t i = 0; i < n; i++) s->pred[(size_t)nl * s->experts + out[i]] = 1;
    s->npred[nl] = n;
    *nout = n;
    return D2_OK;
}

/* the modelled accuracy: sim.gate_ahead_acc (default GATE_AHEAD_ACC) */
static double ahead_acc(const prefetch_ctx *c) { return c->params ? c->params->gate_ahead_acc : GATE_AHEAD_ACC; }

/* mixtral-offloading: accuracy sim.gate_ahead_acc, `want` experts. */
int gate_predict_fixed(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    return guess(c, ahead_acc(c), c->want, out, n);
}

/* HOBBIT's layer-level adaptive prefetching, our reading: as many of the
 * `want` experts as the layer's running accuracy justifies (round(want x
 * acc), at least 1), so a layer whose guesses miss costs fewer wasted
 * loads and one whose guesses hit gets all of them. */
int gate_predict_adaptive(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    const gate_state *s = c->state;
    uint32_t k = (uint32_t)((double)c->want * s->acc[c->layer + 1] + 0.5);
    if (k < 1) k = 1;
    if (k > c->want) k = c->want;
    return guess(c, ahead_acc(c), k, out, n);
}
