/* slicemoe.c - SliceMoE (arXiv 2512.12990): experts cached at slice
 * granularity over a nested (truncation-compatible) format: the high-order
 * slices alone form the lower-precision expert, so level k = units 1..k of
 * the nested storage.  Bit routing `slice` assigns each expert's precision
 * on demand from what is cached: the highest level whose slices are all
 * resident, raised further (most gate weight first) only while the run's
 * unit miss rate stays within SLICEMOE_MISS_TARGET.  Memory policy
 * `slicemoe` evicts low-order slices first and, at the end of the first
 * forward step (the prefill), reshapes the cache for decode: experts the
 * prefill used most keep their slices, the others' go first.  It does not
 * model the quantizer itself (error: src/eval) nor proactive warmup loads. */
#include "sim/plugins.h"
#include "core/err.h"
#include "core/model.h"

#include <stdlib.h>
#include <string.h>

/* ---- bit routing ------------------------------------------------------------ */

static int present(const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t unit)
{
    return mem_entry_state(c->mem, mem_entry_id(c->mem, layer, expert, unit)) != MEM_ABSENT;
}

/* Items (units the step needs) and misses (of those, absent) of an expert
 * at level k (0-based). */
static void cost_at(const bitroute_cfg *c, uint32_t layer, uint32_t e, uint32_t k, double *items, double *miss)
{
    if (c->nested) {
        *items = k + 1;
        *miss = 0;
        for (uint32_t u = 0; u <= k; u++) *miss += !present(c, layer, e, u);
    } else {
        *items = 1;
        *miss = !present(c, layer, e, k);
    }
}

int slice_assign_target(const bitroute_cfg *c, double target, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch)
{
    (void)scratch;
    slice_route_state *s = c->state;
    if (!c->mem) D2_ERROR(D2_EINVAL, "bitroute slice: needs the view of the resident experts");
    double decay = c->layers > 1 ? 1 - 1.0 / c->layers : 0; /* the recent window: about a forward step */
    s->items *= decay;
    s->misses *= decay;
    static const double none = -1;
    double mass[MODEL_MAX_EXPERTS];
    uint8_t lev[MODEL_MAX_EXPERTS];
    uint16_t order[MODEL_MAX_EXPERTS];
    uint32_t nused = 0;
    for (uint32_t e = 0; e < c->experts && e < MODEL_MAX_EXPERTS; e++) mass[e] = none;
    for (size_t i = 0; i < n; i++) {
        uint32_t e = u[i].expert;
        if (e >= c->experts) D2_ERROR(D2_EINVAL, "bitroute slice: expert %u of %u", e, c->experts);
        if (mass[e] == none) mass[e] = 0, order[nused++] = (uint16_t)e;
        mass[e] += u[i].weight;
    }
    /* what is cached: the highest level fully resident (nested: units 0..k;
     * copies: copy k), else the base level (a miss) */
    double items = 0, miss = 0;
    for (uint32_t i = 0; i < nused; i++) {
        uint32_t e = order[i], k = 0;
        for (uint32_t j = 0; j < c->levels; j++) {
            int have = present(c, layer, e, j);
            if (c->nested && !have) break;
            if (have) k = j;
        }
        lev[e] = (uint8_t)k;
        double it, ms;
        cost_at(c, layer, e, k, &it, &ms);
        items += it;
        miss += ms;
    }
    /* raise experts, most gate weight first (ties: lower id), to the highest
     * level the target allows */
    for (uint32_t i = 1; i < nused; i++) {
        uint16_t x = order[i];
        uint32_t j = i;
        while (j > 0 && (mass[x] > mass[order[j - 1]] || (mass[x] == mass[order[j - 1]] && x < order[j - 1]))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    for (uint32_t i = 0; i < nused; i++) {
        uint32_t e = order[i];
        double it0, ms0;
        cost_at(c, layer, e, lev[e], &it0, &ms0);
        for (uint32_t k = c->levels; k-- > (uint32_t)lev[e] + 1;) {
            double it, ms;
            cost_at(c, layer, e, k, &it, &ms);
            double ni = items - it0 + it, nm = miss - ms0 + ms;
            if (s->misses + nm <= target * (s->items + ni) + 1e-9) {
                lev[e] = (uint8_t)k;
                items = ni;
                miss = nm;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) u[i].level = lev[u[i].expert];
    s->items += items;
    s->misses += miss;
    return D2_OK;
}

int slice_assign(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch)
{
    return slice_assign_target(c, SLICEMOE_MISS_TARGET, layer, u, n, scratch);
}

/* ---- the memory policy -------------------------------------------------------- */

int slice_mem_init(void *st, const mem *m)
{
    slice_mem_state *s = st;
    s->layers = mem_layers(m);
    s->experts = mem_experts(m);
    s->units = mem_units(m);
    size_t LE = (size_t)s->layers * s->experts + 1;
    s->hot = calloc(LE, sizeof *s->hot);
    s->keep = calloc(LE, 1);
    if (!s->hot || !s->keep) {
        slice_mem_fini(s);
        D2_ERROR(D2_ENOMEM, "mem slicemoe: out of memory");
    }
    return D2_OK;
}

void slice_mem_fini(void *st)
{
    slice_mem_state *s = st;
    free(s->hot);
    free(s->keep);
    s->hot = NULL;
    s->keep = NULL;
}

void slice_mem_on_use(void *st, const mem *m, uint32_t id)
{
    slice_mem_state *s = st;
    if (mem_entry_unit(m, id) == 0) s->hot[(size_t)mem_entry_layer(m, id) * s->experts + mem_entry_expert(m, id)] += 1;
}

/* The warmup, at the end of the first forward step: in every layer the
 * experts the step used most (ties: lower id), as many as the budget holds
 * base slices of in an equal share per layer, are kept for decode. */
void slice_mem_after_step(void *st, const mem *m, uint32_t layer)
{
    (void)layer;
    slice_mem_state *s = st;
    if (s->warm || ++s->steps < s->layers) return;
    s->warm = 1;
    int64_t base = mem_entry_bytes(m, 0);
    int64_t per = s->layers && base > 0 ? mem_budget(m) / ((int64_t)s->layers * base) : 0;
    uint32_t nkeep = per > (int64_t)s->experts ? s->experts : (uint32_t)per;
    for (uint32_t l = 0; l < s->layers; l++) {
        const double *h = s->hot + (size_t)l * s->experts;
        uint8_t *kp = s->keep + (size_t)l * s->experts;
        for (uint32_t r = 0; r < nkeep; r++) { /* selection: the r-th hottest not yet kept */
            uint32_t b = UINT32_MAX;
            for (uint32_t e = 0; e < s->experts; e++)
                if (!kp[e] && (b == UINT32_MAX || h[e] > h[b])) b = e;
            if (b == UINT32_MAX) break;
            kp[b] = 1;
        }
    }
}

/* Eviction class: before the warmup every entry is class 0; after it, 0 =
 * an expert predicted cold, 1 = a kept expert's upper slice, 2 = a kept
 * expert's base slice.  Victim: not predicted, lowest class, highest unit,
 * least recently used, lower id. */
static int klass(const slice_mem_state *s, const mem *m, uint32_t id)
{
    if (!s->warm || !s->keep[(size_t)mem_entry_layer(m, id) * s->experts + mem_entry_expert(m, id)]) return 0;
    return mem_entry_unit(m, id) == 0 ? 2 : 1;
}

int slice_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)incoming;
    slice_mem_state *s = st;
    const uint32_t *c;
    uint32_t n;
    mem_candidates(m, &c, &n);
    uint32_t best = c[0];
    for (uint32_t i = 1; i < n; i++) {
        uint32_t id = c[i];
        int a = mem_entry_predicted(m, id), b = mem_entry_predicted(m, best);
        if (a != b) { if (a < b) best = id; continue; }
        a = klass(s, m, id), b = klass(s, m, best);
        if (a != b) { if (a < b) best = id; continue; }
        uint32_t ua = mem_entry_unit(m, id), ub = mem_entry_unit(m, best);
        if (ua != ub) { if (ua > ub) best = id; continue; }
        int64_t la = mem_entry_last_use(m, id), lb = mem_entry_last_use(m, best);
        if (la != lb) { if (la < lb) best = id; continue; }
        if (id < best) best = id;
    }
    *out = best;
    return D2_OK;
}
