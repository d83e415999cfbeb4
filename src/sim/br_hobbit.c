/* br_hobbit.c - HOBBIT's mixed-precision expert loading (arXiv 2411.01433):
 * separate low- and high-precision copies of every expert (not nested;
 * level 0 = low, the last level = high).  An expert whose high copy is
 * resident (or loading) runs at high precision; on a miss, an expert that
 * is less important to every token that uses it in the step (gate weight
 * below HOBBIT_LOW_GATE, our threshold) runs at low precision instead (its
 * low copy: a hit when resident, else the cheaper load); an expert
 * important to any token of the step loads its high copy (one load serves
 * them all).  Predicted experts are preloaded at high precision (their
 * gate weights are not known yet).  It does not change which experts run. */
#include "sim/plugins.h"
#include "core/err.h"
#include "core/model.h"
#include <string.h>

int hobbit_assign(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch)
{
    (void)scratch;
    uint32_t hi = c->levels - 1;
    unsigned char important[MODEL_MAX_EXPERTS], seen[MODEL_MAX_EXPERTS]; /* only the first c->experts cleared: ids are below it */
    memset(important, 0, c->experts);
    memset(seen, 0, c->experts);
    for (size_t i = 0; i < n; i++) {
        seen[u[i].expert] = 1;
        if (u[i].weight >= HOBBIT_LOW_GATE) important[u[i].expert] = 1;
    }
    unsigned char level[MODEL_MAX_EXPERTS];
    memset(level, 0, c->experts);
    for (uint32_t e = 0; e < c->experts; e++) {
        if (!seen[e]) continue;
        int hi_present = c->mem && mem_entry_state(c->mem, mem_entry_id(c->mem, layer, e, hi)) != MEM_ABSENT;
        level[e] = (uint8_t)(hi_present || important[e] ? hi : 0);
    }
    for (size_t i = 0; i < n; i++) u[i].level = level[u[i].expert];
    return D2_OK;
}

int hobbit_preload_level(const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level)
{
    (void)layer, (void)expert;
    *level = c->levels - 1;
    return D2_OK;
}
