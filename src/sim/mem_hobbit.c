/* mem_hobbit.c - HOBBIT's multidimensional cache (arXiv 2411.01433, the
 * "sequence-level" cache policy): each resident copy is scored by recency,
 * frequency and precision together and the lowest score is evicted.  Our
 * reading (the weights are ours): score = 0.5 x recency + 0.3 x frequency +
 * 0.2 x precision, each in 0..1 among the candidates: recency = last use /
 * latest last use, frequency = uses / most uses, precision = copy index /
 * (copies - 1) (the high-precision copy costs more to reload; a miss on it
 * can fall back to the low copy, a miss on the low copy cannot).  Uses are
 * counted over the whole run, which is one sequence per request under
 * batch arrivals.  Predicted units go last, as in every policy. */
#include "sim/plugins.h"
#include "core/err.h"

int hobbit_victim(void *state, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)state, (void)incoming;
    const uint32_t *c;
    uint32_t n;
    mem_candidates(m, &c, &n);
    int64_t tmax = 1, umax = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (mem_entry_last_use(m, c[i]) > tmax) tmax = mem_entry_last_use(m, c[i]);
        if (mem_entry_uses(m, c[i]) > umax) umax = mem_entry_uses(m, c[i]);
    }
    double pden = mem_units(m) > 1 ? (double)(mem_units(m) - 1) : 1;
    uint32_t best = UINT32_MAX;
    double best_s = 0;
    int best_p = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = c[i];
        int p = mem_entry_predicted(m, id);
        double s = HOBBIT_W_RECENCY * (double)mem_entry_last_use(m, id) / (double)tmax +
                   HOBBIT_W_FREQUENCY * (double)mem_entry_uses(m, id) / (double)umax +
                   HOBBIT_W_PRECISION * (double)mem_entry_unit(m, id) / pden;
        if (best != UINT32_MAX && (p > best_p || (p == best_p && (s > best_s || (s == best_s && id > best))))) continue;
        best = id, best_s = s, best_p = p;
    }
    *out = best;
    return D2_OK;
}
