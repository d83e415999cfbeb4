/* profile.c - offline profiling from requests the run does not serve
 * (ids after the batch): per-expert gate-weight mass -> static levels
 * (EdgeMoE's bit-width adaptation) and layer-to-layer expert transitions
 * (the paths predictor).  It does not simulate time. */
#include "sim/sim_int.h"

#include <stdlib.h>

int profile_run(run *r)
{
    size_t LE = (size_t)r->L * r->E;
    double *mass = calloc(LE, sizeof *mass);
    double *cnt = calloc(LE * r->E, sizeof *cnt);
    uint16_t ex[2][MODEL_MAX_TOP_K];
    float w[MODEL_MAX_TOP_K];
    if (!mass || !cnt) { free(mass); free(cnt); D2_ERROR(D2_ENOMEM, "sim: out of memory"); }
    uint32_t npos = r->P + r->G;
    for (uint32_t q = 0; q < (uint32_t)r->p->profile_requests; q++) {
        uint32_t req = r->R + q; /* ids after the batch; a trace file wraps them */
        for (uint32_t pos = 0; pos < npos; pos++)
            for (uint32_t l = 0; l < r->L; l++) {
                int rc = r->in->route(r->in->route_user, req, pos, l, ex[l & 1], w, NULL);
                if (rc) { free(mass); free(cnt); return rc; }
                for (uint32_t k = 0; k < r->K; k++) mass[(size_t)l * r->E + ex[l & 1][k]] += w[k];
                if (l > 0)
                    for (uint32_t a = 0; a < r->K; a++)
                        for (uint32_t b = 0; b < r->K; b++)
                            cnt[((size_t)(l - 1) * r->E + ex[(l - 1) & 1][a]) * r->E + ex[l & 1][b]] += 1;
            }
    }
    int rc = bitroute_static_levels(mass, r->L, r->E, r->caps, r->U, r->static_level);
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

