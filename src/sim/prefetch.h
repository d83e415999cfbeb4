/* prefetch.h - cross-layer preloading predictors: which experts of the next
 * layer to load while the current layer computes (EdgeMoE; the paper names
 * the lack of it a limitation).  A row per predictor, looked up by name; the
 * serving loop queues the predicted units behind the step's own loads. */
#ifndef D2_SIM_PREFETCH_H
#define D2_SIM_PREFETCH_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "sim/mem.h"

typedef struct prefetch_ctx {
    uint32_t experts;      /* E */
    uint32_t layers;       /* L (MoE layers) */
    uint32_t top_k;        /* K */
    uint32_t layer;        /* the layer being served; predictions are for layer + 1 */
    uint32_t want;         /* experts to predict (<= E) */
    const uint16_t *cur;   /* this layer's expert ids, one per use (ntok x top_k, token-major) */
    size_t ncur;
    const uint16_t *next;  /* the next layer's true ids (for oracle predictors) */
    size_t nnext;
    const uint32_t *tok_req; /* [ntok] the request each token of the forward step belongs to */
    uint32_t ntok;         /* tokens of the forward step */
    const double *trans;   /* [E*E] P(e' at l+1 | e at l) from profiling, or NULL */
    double acc;            /* oracle: probability each true expert is kept */
    gsl_rng *rng;          /* oracle noise */
    const mem *mem;        /* read-only view of what is resident */
    const struct sim_params *params; /* the run's parameters (sim.h), read-only; NULL outside a run */
    void *state;           /* the predictor's per-run state (state_size bytes, zeroed, then init) */
    uint32_t fstep;        /* the forward step being served (0 = the first) */
    /* The routing source, for predictors that learn offline at init from the
     * profiling requests (ids profile_first .. profile_first + profile_n - 1,
     * positions 0 .. positions - 1), as profile.c does: experts in
     * descending gate order, their gate weights; bits may be NULL.  D2
     * status.  Reading the run's own requests ahead is not allowed (that
     * is the oracle predictor's declared cheat). */
    int (*route)(void *user, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights, uint8_t *bits);
    void *route_user;
    uint32_t profile_first, profile_n, positions;
} prefetch_ctx;

typedef struct prefetch_type {
    const char *name;
    const char *summary;
    int needs_profile;     /* needs ctx.trans */
    int ignores_routing;   /* never reads ctx.cur / ctx.next: a run may skip decoding the
                              routing of a forward step the step memo answers */
    size_t state_size;     /* bytes of per-run state (0: none) */
    int (*init)(void *state, const prefetch_ctx *c); /* NULL: nothing; D2 status */
    void (*fini)(void *state);
    /* After a layer step is planned, with cur = its uses (NULL: nothing):
     * predictors that learn as the run goes (an activation matrix per
     * request) record here.  D2 status. */
    int (*observe)(const prefetch_ctx *c);
    /* Write up to want expert ids of the next layer, most likely first, and
     * their count to *n; D2 status. */
    int (*predict)(const prefetch_ctx *c, uint32_t *out, uint32_t *n);
} prefetch_type;

/* The `want` highest of score[0..E-1] into out, descending, ties to the
 * lower id (so predictions repeat); positive: scores above 0 only.  Their count. */
uint32_t prefetch_top(const double *score, uint32_t E, uint32_t want, int positive, uint32_t *out);

#include "core/registry.h"
/* prefetch_find, _list, _count, _at, _names, _register (core/registry.h) */
D2_REGISTRY_DECLARE(prefetch, prefetch_type)

#endif
