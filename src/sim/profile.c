/* profile.c - offline profiling from requests the run does not serve
 * (ids after the batch): per-expert gate-weight mass -> static levels
 * (EdgeMoE's bit-width adaptation) and layer-to-layer expert transitions
 * (the paths predictor).  It does not simulate time. */
#include "sim/sim_int.h"

#include <stdlib.h>

/* one profiling token's routing, layer by layer: gate-weight mass (added in
 * (layer, rank) order) and transition counts (whole numbers: any order) */
static inline void profile_token(const run *r, const uint16_t *ex, const float *w, size_t stride, double *mass, double *cnt)
{
    const uint32_t L = r->L, E = r->E, K = r->K;
    const size_t EE = (size_t)E * E;
    for (uint32_t l = 0; l < L; l++) {
        const uint16_t *cur = ex + (size_t)l * stride;
        const float *cw = w + (size_t)l * stride;
        double *ml = mass + (size_t)l * E;
        if (K == 2) { /* the common top-2 */
            ml[cur[0]] += cw[0];
            ml[cur[1]] += cw[1];
            if (l > 0) {
                const uint16_t *prev = cur - stride;
                double *c0 = cnt + (size_t)(l - 1) * EE + (size_t)prev[0] * E, *c1 = cnt + (size_t)(l - 1) * EE + (size_t)prev[1] * E;
                c0[cur[0]] += 1;
                c0[cur[1]] += 1;
                c1[cur[0]] += 1;
                c1[cur[1]] += 1;
            }
            continue;
        }
        for (uint32_t k = 0; k < K; k++) ml[cur[k]] += cw[k];
        if (l > 0) {
            const uint16_t *prev = cur - stride;
            for (uint32_t a = 0; a < K; a++) {
                double *row = cnt + (size_t)(l - 1) * EE + (size_t)prev[a] * E;
                for (uint32_t b = 0; b < K; b++) row[cur[b]] += 1;
            }
        }
    }
}

int profile_run(run *r)
{
    size_t LE = (size_t)r->L * r->E;
    double *mass = calloc(LE, sizeof *mass);
    double *cnt = calloc(LE * r->E, sizeof *cnt);
    /* a token's routing, every layer: [layer][top_k] */
    uint16_t *ex = malloc((size_t)r->L * MODEL_MAX_TOP_K * sizeof *ex);
    float *w = malloc((size_t)r->L * MODEL_MAX_TOP_K * sizeof *w);
    if (!mass || !cnt || !ex || !w) { free(mass); free(cnt); free(ex); free(w); D2_ERROR(D2_ENOMEM, "sim: out of memory"); }
    uint32_t npos = r->P + r->G;
    int rc = D2_OK;
    /* a source that routes a token at once is asked once per token (the
     * same values as one call per layer, sim.h); the sums run in the same
     * order either way */
    for (uint32_t q = 0; rc == D2_OK && q < (uint32_t)r->p->profile_requests; q++) {
        uint32_t req = r->R + q; /* ids after the batch; a trace file wraps them */
        for (uint32_t pos = 0; rc == D2_OK && pos < npos; pos++) {
            if (r->in->route_token) rc = r->in->route_token(r->in->route_user, req, pos, ex, w, NULL, r->K);
            else
                for (uint32_t l = 0; rc == D2_OK && l < r->L; l++)
                    rc = r->in->route(r->in->route_user, req, pos, l, ex + (size_t)l * r->K, w + (size_t)l * r->K, NULL);
            if (rc == D2_OK) profile_token(r, ex, w, r->K, mass, cnt);
        }
    }
    free(ex);
    free(w);
    if (rc) { free(mass); free(cnt); return rc; }
    rc = bitroute_static_levels(mass, r->L, r->E, r->caps, r->U, r->static_level);
    if (rc) { free(mass); free(cnt); return rc; }
    for (size_t row = 0; row < LE; row++) { /* rows -> conditional probabilities */
        double s = 0;
        for (uint32_t e = 0; e < r->E; e++) s += cnt[row * r->E + e];
        for (uint32_t e = 0; e < r->E; e++) r->trans[row * r->E + e] = s > 0 ? cnt[row * r->E + e] / s : 1.0 / r->E;
    }
    free(mass);
    free(cnt);
    return D2_OK;
}

