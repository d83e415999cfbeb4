/* prefetch.h - cross-layer preloading predictors: which experts of the next
 * layer to load while the current layer computes (EdgeMoE; the paper names
 * the lack of it a limitation).  A row per predictor, looked up by name; the
 * serving loop queues the predicted units behind the step's own loads. */
#ifndef D2_SIM_PREFETCH_H
#define D2_SIM_PREFETCH_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>

typedef struct prefetch_ctx {
    uint32_t experts;      /* E */
    uint32_t want;         /* experts to predict (<= E) */
    const uint16_t *cur;   /* this layer's expert ids, one per use */
    size_t ncur;
    const uint16_t *next;  /* the next layer's true ids (for oracle predictors) */
    size_t nnext;
    const double *trans;   /* [E*E] P(e' at l+1 | e at l) from profiling, or NULL */
    double acc;            /* oracle: probability each true expert is kept */
    gsl_rng *rng;          /* oracle noise */
} prefetch_ctx;

typedef struct prefetch_type {
    const char *name;
    const char *summary;
    int needs_profile;     /* needs ctx.trans */
    /* write up to want expert ids, most likely first; returns the count */
    uint32_t (*predict)(const prefetch_ctx *c, uint32_t *out);
} prefetch_type;

const prefetch_type *prefetch_find(const char *name);
const prefetch_type *const *prefetch_list(void); /* NULL-terminated */

#endif
