/* oracle.c - the next-use oracle a clairvoyant memory policy (belady)
 * reads: the routing of every forward step of the run, read ahead from the
 * routing source once at setup, as one bitset per (layer, expert) over
 * forward steps.  Exact under sim.arrival = batch (every request is in every
 * forward step until the last, so forward step f serves positions known in
 * advance); refused otherwise, since with arrivals over time which forward
 * step a token falls in depends on the simulated timing.  It knows experts,
 * not levels: bit routing picks levels at the step. */
#include "sim/sim_int.h"

#include <stdlib.h>
#include <string.h>

int oracle_build(run *r)
{
    /* batch arrival: sim_system_check refused any other before setup went on */
    /* forward step 0: the prompts (positions 0..P-1), step f >= 1: position P + f - 1 */
    r->nfsteps = r->G;
    r->nu_words = (r->nfsteps + 63) / 64;
    size_t LE = (size_t)r->L * r->E;
    r->next_use = calloc(LE * r->nu_words, sizeof *r->next_use);
    if (!r->next_use) D2_ERROR(D2_ENOMEM, "sim: out of memory");
    uint16_t ex[MODEL_MAX_TOP_K];
    float w[MODEL_MAX_TOP_K];
    uint32_t npos = r->P + r->G - 1;
    for (uint32_t pos = 0; pos < npos; pos++) { /* the source's fast order: position, layer, request */
        uint32_t f = pos < r->P ? 0 : pos - r->P + 1;
        for (uint32_t l = 0; l < r->L; l++)
            for (uint32_t q = 0; q < r->R; q++) {
                D2_TRY(r->in->route(r->in->route_user, q, pos, l, ex, w, NULL));
                for (uint32_t k = 0; k < r->K; k++) {
                    if (ex[k] >= r->E)
                        D2_ERROR(D2_EFORMAT, "routing: request %u position %u layer %u: expert %u is not below %u", q, pos, l,
                                 (unsigned)ex[k], r->E);
                    r->next_use[((size_t)l * r->E + ex[k]) * r->nu_words + f / 64] |= 1ULL << (f % 64);
                }
            }
    }
    return D2_OK;
}

/* The first layer step after the current one (forward step r->f, layer
 * r->layer) that uses (layer, expert): forward steps from f when the layer
 * is still ahead in this forward step, else from f + 1. */
int oracle_next_use(void *user, uint32_t layer, uint32_t expert, uint64_t *when)
{
    const run *r = user;
    *when = UINT64_MAX;
    uint32_t f = layer > r->layer ? r->f : r->f + 1;
    if (f >= r->nfsteps) return D2_OK;
    const uint64_t *b = r->next_use + ((size_t)layer * r->E + expert) * r->nu_words;
    uint32_t wi = f / 64;
    uint64_t word = b[wi] & (~0ULL << (f % 64));
    while (!word) {
        if (++wi == r->nu_words) return D2_OK;
        word = b[wi];
    }
    uint64_t fs = (uint64_t)wi * 64 + (uint64_t)__builtin_ctzll(word);
    *when = fs * r->L + layer;
    return D2_OK;
}
