/* slicemoe.c - SliceMoE (arXiv 2512.12990): experts cached at slice
 * granularity over a nested (truncation-compatible) format: the high-order
 * slices alone form the lower-precision expert, so level k = units 1..k of
 * the nested storage.  Bit routing `slice` assigns each expert's precision
 * on demand from what is cached: the highest level whose slices are all
 * resident, raised further (most gate weight first) only while the recent
 * unit miss rate stays within sim.miss_target.  Memory policy
 * `slicemoe` evicts low-order slices first and, at the end of the first
 * forward step (the prefill), reshapes the cache for decode: experts the
 * prefill routed most tokens to (counted by the bit routing, which sees
 * tokens) keep their slices, the others' go first.  It does not
 * model the quantizer itself (error: src/eval) nor proactive warmup loads. */
#include "sim/plugins.h"
#include "sim/sim.h"
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
    /* the memory policy's warmup counts tokens: tell it, when it runs beside us */
    const mem_policy_type *mt = mem_policy(c->mem);
    if (mt && mt->victim == slice_mem_victim) {
        slice_mem_state *ms = mem_policy_state(c->mem);
        if (ms && ms->hot && layer < ms->layers) {
            ms->fed = 1;
            for (size_t i = 0; i < n; i++) ms->hot[(size_t)layer * ms->experts + u[i].expert] += 1;
        }
    }
    s->items += items;
    s->misses += miss;
    return D2_OK;
}

int slice_assign(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch)
{
    return slice_assign_target(c, c->params ? c->params->miss_target : SLICEMOE_MISS_TARGET, layer, u, n, scratch);
}

/* ---- the memory policy -------------------------------------------------------- */

#define NIL UINT32_MAX

static uint32_t nentries(const slice_mem_state *s) { return s->layers * s->experts * s->units; }

int slice_mem_init(void *st, const mem *m)
{
    slice_mem_state *s = st;
    s->layers = mem_layers(m);
    s->experts = mem_experts(m);
    s->units = mem_units(m);
    size_t LE = (size_t)s->layers * s->experts + 1, n = (size_t)nentries(s) + 1, nb = 3 * (size_t)s->units;
    s->hot = calloc(LE, sizeof *s->hot);
    s->keep = calloc(LE, 1);
    s->prev = malloc(n * sizeof *s->prev);
    s->next = malloc(n * sizeof *s->next);
    s->bucket = calloc(n, sizeof *s->bucket);
    s->head = malloc(nb * sizeof *s->head);
    s->tail = malloc(nb * sizeof *s->tail);
    s->scratch = malloc(n * sizeof *s->scratch);
    if (!s->hot || !s->keep || !s->prev || !s->next || !s->bucket || !s->head || !s->tail || !s->scratch) {
        slice_mem_fini(s);
        D2_ERROR(D2_ENOMEM, "mem slicemoe: out of memory");
    }
    for (size_t b = 0; b < nb; b++) s->head[b] = s->tail[b] = NIL;
    return D2_OK;
}

void slice_mem_fini(void *st)
{
    slice_mem_state *s = st;
    free(s->hot); free(s->keep); free(s->prev); free(s->next); free(s->bucket); free(s->head); free(s->tail); free(s->scratch);
    s->scratch = NULL;
    s->hot = NULL;
    s->keep = NULL;
    s->prev = s->next = s->bucket = s->head = s->tail = NULL;
}

/* Eviction class: before the warmup every entry is class 0; after it, 0 =
 * an expert predicted cold, 1 = a kept expert's upper slice, 2 = a kept
 * expert's base slice. */
static uint32_t klass(const slice_mem_state *s, const mem *m, uint32_t id)
{
    if (!s->warm || !s->keep[(size_t)mem_entry_layer(m, id) * s->experts + mem_entry_expert(m, id)]) return 0;
    return mem_entry_unit(m, id) == 0 ? 2 : 1;
}

static void unlink_entry(slice_mem_state *s, uint32_t id)
{
    if (!s->bucket[id]) return;
    uint32_t b = s->bucket[id] - 1, p = s->prev[id], n = s->next[id];
    if (p != NIL) s->next[p] = n;
    else s->head[b] = n;
    if (n != NIL) s->prev[n] = p;
    else s->tail[b] = p;
    s->bucket[id] = 0;
}

/* (last use, id) ascending from the head */
static int before(const mem *m, uint32_t a, uint32_t b)
{
    int64_t x = mem_entry_last_use(m, a), y = mem_entry_last_use(m, b);
    return x < y || (x == y && a < b);
}

/* Into its bucket at its place by last use (a use is the newest: the tail). */
static void link_entry(slice_mem_state *s, const mem *m, uint32_t id)
{
    unlink_entry(s, id);
    uint32_t b = klass(s, m, id) * s->units + s->units - 1 - mem_entry_unit(m, id);
    uint32_t at = s->tail[b]; /* insert after `at` */
    while (at != NIL && before(m, id, at)) at = s->prev[at];
    s->prev[id] = at;
    s->next[id] = at == NIL ? s->head[b] : s->next[at];
    if (s->next[id] != NIL) s->prev[s->next[id]] = id;
    else s->tail[b] = id;
    if (at != NIL) s->next[at] = id;
    else s->head[b] = id;
    s->bucket[id] = b + 1;
}

void slice_mem_on_insert(void *st, const mem *m, uint32_t id) { link_entry(st, m, id); }

void slice_mem_on_use(void *st, const mem *m, uint32_t id)
{
    slice_mem_state *s = st;
    if (!s->fed && mem_entry_unit(m, id) == 0) s->hot[(size_t)mem_entry_layer(m, id) * s->experts + mem_entry_expert(m, id)] += 1;
    if (mem_entry_state(m, id) != MEM_ABSENT) link_entry(s, m, id);
}

void slice_mem_on_evict(void *st, const mem *m, uint32_t id)
{
    (void)m;
    unlink_entry(st, id);
}

static _Thread_local const mem *sort_mem; /* qsort has no user pointer */
static int by_use(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return before(sort_mem, x, y) ? -1 : before(sort_mem, y, x);
}

/* The warmup, at the end of the first forward step: in every layer the
 * experts the step routed most tokens to (ties: lower id), as many as the budget holds
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
    /* the classes changed: rebuild the buckets, oldest first so each link is at a tail */
    uint32_t n = nentries(s), k = 0;
    uint32_t *ids = s->scratch;
    for (uint32_t id = 0; id < n; id++)
        if (s->bucket[id]) ids[k++] = id;
    sort_mem = m;
    qsort(ids, k, sizeof *ids, by_use);
    for (uint32_t i = 0; i < k; i++) unlink_entry(s, ids[i]);
    for (uint32_t i = 0; i < k; i++) link_entry(s, m, ids[i]);
}

/* Victim: not predicted first; buckets in order (class, then the higher
 * unit), each from its least recently used; the first candidate. */
int slice_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)incoming;
    slice_mem_state *s = st;
    for (int pred = 0; pred < 2; pred++)
        for (uint32_t b = 0; b < 3 * s->units; b++)
            for (uint32_t id = s->head[b]; id != NIL; id = s->next[id])
                if (mem_entry_candidate(m, id) && mem_entry_predicted(m, id) == pred) {
                    *out = id;
                    return D2_OK;
                }
    const uint32_t *c;
    uint32_t n;
    mem_candidates(m, &c, &n);
    D2_ERROR(D2_EINTERNAL, "mem slicemoe: %u candidates, none in its buckets", n);
}
