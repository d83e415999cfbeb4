/* mem.c - resident set, budget and eviction policies (see mem.h).
 * Victims: budget reads per-(level, layer) expert bits and a per-level
 * summary of the layers holding any, lru keeps its candidates in order (two
 * lists by last use: not predicted, predicted), the others scan the
 * candidate list; debug builds check the kept orders against a scan.  The
 * struct and the serving loop's inline accessors are in mem_int.h. */
#include "config.h" /* D2_DEBUG (configure --enable-debug) */
#include "sim/mem_int.h"
#include "sim/plugins.h"
#include "core/err.h"
#include "core/registry.h"
#include "sim/pcache.h"

#include <stdlib.h>
#include <string.h>

/* ---- policies --------------------------------------------------------- */

static uint32_t unit_of(const mem *m, uint32_t id) { return m->e[id].unit; }
static uint32_t expert_of(const mem *m, uint32_t id) { return m->e[id].expert; }

/* Layer steps until the entry's layer is served again (the current layer,
 * already computed, is furthest: L). */
static uint32_t next_use(const mem *m, uint32_t id)
{
    uint32_t l = m->e[id].layer;
    return l > m->layer ? l - m->layer : l + m->layers - m->layer; /* 1..L; the current layer: L */
}

/* Paper Algorithm 2 (section 4), our reading of its stated intent: evict
 * high levels before base levels (level descending first, over every layer),
 * and among equal levels the layer needed furthest in the future first; with
 * layers served cyclically that is the layer just finished ("the previous
 * layer"), then the one before it.  Ties: higher expert id.  Score: lower
 * is evicted first; (unit, layer, expert) make it unique. */
static inline uint64_t score_budget(const mem *m, uint32_t id)
{
    return ((uint64_t)(m->units - 1 - unit_of(m, id)) << 40) | ((uint64_t)(m->layers - next_use(m, id)) << 20) |
           (uint64_t)(m->experts - 1 - expert_of(m, id));
}

/* least recently used first (ticks are unique per use; never-used 0) */
static inline uint64_t score_lru(const mem *m, uint32_t id) { return (uint64_t)m->e[id].last_use; }

/* least frequently used first, ties least recently used */
static inline uint64_t score_lfu(const mem *m, uint32_t id)
{
    uint64_t u = (uint64_t)m->e[id].uses, t = (uint64_t)m->e[id].last_use;
    if (u > 0xFFFFFF) u = 0xFFFFFF;
    if (t > 0xFFFFFFFFFFULL) t = 0xFFFFFFFFFFULL;
    return (u << 40) | t;
}

/* The victim among the candidates: predicted entries last, then the lowest
 * score, then the lowest id.  One scan, instantiated per score so the
 * comparison inlines. */
#define VICTIM_FN(name, score)                                                          \
    static __attribute__((noinline)) uint32_t name##_scan(const mem *m)                 \
    {                                                                                   \
        uint32_t best = m->cand[0];                                                     \
        uint64_t best_score = score(m, best);                                           \
        int best_pred = m->e[best].predicted;                                           \
        for (uint32_t i = 1; i < m->ncand; i++) {                                       \
            uint32_t c = m->cand[i];                                                    \
            int pred = m->e[c].predicted;                                               \
            if (pred > best_pred) continue;                                             \
            uint64_t sc = score(m, c);                                                  \
            if (pred < best_pred || sc < best_score || (sc == best_score && c < best)) { \
                best = c;                                                               \
                best_score = sc;                                                        \
                best_pred = pred;                                                       \
            }                                                                           \
        }                                                                               \
        return best;                                                                    \
    }
VICTIM_FN(victim_budget, score_budget)

/* The highest set bit of the layer summary lm (lwords words) at or below
 * layer l, else (wrapping round) the highest set bit above it: the layer
 * needed furthest ahead among those set.  UINT32_MAX when none is set. */
static inline uint32_t layer_furthest(const uint64_t *lm, uint32_t lwords, uint32_t l)
{
    uint32_t k = l >> 6;
    uint64_t w = lm[k] & (~0ULL >> (63 - (l & 63))); /* bits 0 .. l % 64 */
    for (;;) {
        if (w) return k * 64 + 63 - (uint32_t)__builtin_clzll(w);
        if (!k) break;
        w = lm[--k];
    }
    for (k = lwords; k-- > 0;)
        if (lm[k]) return k * 64 + 63 - (uint32_t)__builtin_clzll(lm[k]);
    return UINT32_MAX;
}

/* The same order as victim_scan_budget without a scan: the highest unit
 * holding a non-predicted candidate, then layers from the one needed
 * furthest ahead (the current layer, then the one before, ...), then the
 * highest expert.  The index says where to look: the unit's layer summary
 * (lmask) its first layer in that order, that (unit, layer)'s bmask the
 * highest expert. */
static inline __attribute__((always_inline)) uint32_t victim_budget_index(const mem *m)
{
    uint32_t id = UINT32_MAX;
    if (m->index_1word) { /* up to 64 layers and 64 experts: a word each */
        for (uint32_t u = m->units; u-- > 0;) {
            const uint64_t lm = m->lmask[u];
            if (!lm) continue;
            const uint64_t at = lm & (~0ULL >> (63 - m->layer)); /* layers 0 .. the current one */
            const uint32_t l = 63 - (uint32_t)__builtin_clzll(at ? at : lm);
            const uint64_t w = m->bmask[(size_t)u * m->layers + l];
            if (!w) return UINT32_MAX; /* the summary disagrees with bmask: caught as a broken invariant */
            id = (l * m->experts + 63 - (uint32_t)__builtin_clzll(w)) * m->units + u;
            break;
        }
    } else {
        for (uint32_t u = m->units; u-- > 0 && id == UINT32_MAX;) {
            uint32_t l = layer_furthest(&m->lmask[(size_t)u * m->lwords], m->lwords, m->layer);
            if (l == UINT32_MAX) continue;
            const uint64_t *w = &m->bmask[((size_t)u * m->layers + l) * m->bwords];
            for (uint32_t j = m->bwords; j-- > 0;)
                if (w[j]) {
                    id = (l * m->experts + j * 64 + 63 - (uint32_t)__builtin_clzll(w[j])) * m->units + u;
                    break;
                }
            if (id == UINT32_MAX) return UINT32_MAX; /* the summary disagrees with bmask: caught as a broken invariant */
        }
    }
    if (id == UINT32_MAX) return victim_budget_scan(m); /* only predicted candidates left */
#ifdef D2_DEBUG
    if (victim_budget_scan(m) != id) return UINT32_MAX; /* caught as a broken invariant */
#endif
    return id;
}
VICTIM_FN(victim_lru, score_lru)
VICTIM_FN(victim_lfu, score_lfu)

static int pick_budget(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    *out = victim_budget_index(m);
    return D2_OK;
}
static int pick_lru(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    if (!m->lru_list) {
        *out = victim_lru_scan(m);
        return D2_OK;
    }
    int32_t v = m->lhead[0] >= 0 ? m->lhead[0] : m->lhead[1]; /* predicted entries last */
    *out = v >= 0 ? (uint32_t)v : UINT32_MAX;
#ifdef D2_DEBUG
    if (*out != victim_lru_scan(m)) *out = UINT32_MAX; /* caught as a broken invariant (mem_entry_reserve) */
#endif
    return D2_OK;
}
static int pick_lfu(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    *out = victim_lfu_scan(m);
    return D2_OK;
}

/* Belady's MIN (offline optimal for equal-size units): evict the candidate
 * whose next use lies furthest ahead (never used again first), from the
 * routing source's next-use oracle; predicted entries last, then higher
 * units first (they are needed only when a use is routed that high), then
 * the higher id.  Levels of one expert share its next use: bit routing
 * picks levels at the step, so the oracle knows the expert, not the level. */
static int pick_belady(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    uint32_t best = UINT32_MAX;
    uint64_t best_when = 0;
    int best_pred = 2;
    for (uint32_t i = 0; i < m->ncand; i++) {
        uint32_t c = m->cand[i];
        uint64_t when;
        D2_TRY(mem_next_use(m, c, &when));
        int pred = m->e[c].predicted;
        if (best != UINT32_MAX) {
            if (pred > best_pred) continue;
            if (pred == best_pred) {
                if (when < best_when) continue;
                if (when == best_when && (m->e[c].unit < m->e[best].unit || (m->e[c].unit == m->e[best].unit && c < best)))
                    continue;
            }
        }
        best = c;
        best_when = when;
        best_pred = pred;
    }
    *out = best;
    return D2_OK;
}

static const mem_policy_type policies[] = {
    {.name = "budget",
     .summary = "keep levels within budget M; evict high levels first, then the layer needed furthest ahead (paper Alg. 2)",
     .keep = 1, .victim = pick_budget},
    {.name = "lru", .summary = "keep levels within budget M; evict the least recently used (expert, level)",
     .keep = 1, .victim = pick_lru},
    {.name = "lfu", .summary = "keep levels within budget M; evict the least frequently used (expert, level), ties LRU",
     .keep = 1, .victim = pick_lfu},
    {.name = "belady",
     .summary = "keep levels within budget M; evict the (expert, level) used again furthest ahead (offline optimum, reads the routing ahead)",
     .keep = 1, .needs_oracle = 1, .victim = pick_belady},
    {.name = "none",
     .summary = "free levels right after use (an expert's nested levels after its last one; budget M bounds levels in flight)",
     .keep = 0, .victim = pick_lru},
    {.name = "hold", .summary = "every expert resident from the start; out of memory if it does not fit",
     .keep = 1, .hold = 1, .victim = pick_lru},
    /* issue 15 (src/sim/mem_layerlru.c, mem_hobbit.c) */
    {.name = "layer-lru",
     .summary = "a per-layer LRU cache: each MoE layer owns budget M / layers, a full layer evicts its own least recently used (mixtral-offloading)",
     .keep = 1, .victim = layerlru_victim, .wants_room = layerlru_wants_room},
    {.name = "hobbit",
     .summary = "evict the lowest score of recency, frequency and precision together (0.5/0.3/0.2; HOBBIT's sequence-level cache)",
     .keep = 1, .victim = hobbit_victim},
    /* issue 15's systems (hooks in mem_arc.c, pf_moeinf.c, slicemoe.c) */
    {.name = "arc",
     .summary = "keep levels within budget M; ARC eviction (recency list T1, frequency list T2, ghosts B1/B2, adaptive target p; in bytes)",
     .keep = 1, .state_size = sizeof(arc_state), .init = arc_init, .fini = arc_fini, .on_insert = arc_on_insert,
     .on_use = arc_on_use, .on_evict = arc_on_evict, .victim = arc_victim},
    {.name = "fate",
     .summary = "Fate's shallow-favouring cache: ARC within per-layer quotas that give early layers more of budget M",
     .keep = 1, .state_size = sizeof(arc_state), .init = fate_mem_init, .fini = arc_fini, .on_insert = arc_on_insert,
     .on_use = arc_on_use, .on_evict = arc_on_evict, .victim = fate_mem_victim},
    {.name = "moe-infinity",
     .summary = "MoE-Infinity's activation-aware cache: evict the expert level the matched activation matrices predict least used, then the layer needed furthest ahead, then LRU (without the moe-infinity predictor: those two)",
     .keep = 1, .state_size = sizeof(moeinf_mem_state), .init = moeinf_mem_init, .fini = moeinf_mem_fini,
     .on_use = moeinf_mem_on_use, .victim = moeinf_mem_victim},
    {.name = "slicemoe",
     .summary = "SliceMoE's slice cache: low-order slices first; after the first forward step, slices of experts predicted cold for decode first (warmup)",
     .keep = 1, .state_size = sizeof(slice_mem_state), .init = slice_mem_init, .fini = slice_mem_fini,
     .on_insert = slice_mem_on_insert, .on_use = slice_mem_on_use, .on_evict = slice_mem_on_evict, .after_step = slice_mem_after_step, .victim = slice_mem_victim},
    {.name = NULL},
};
D2_REGISTRY(mem_policy, mem_policy_type, policies)

/* ---- entries ------------------------------------------------------------ */

static void hold_all(mem *m);

int mem_new(const mem_policy_type *t, uint32_t layers, uint32_t experts, uint32_t units,
            const int64_t *unit_bytes, int64_t budget, int64_t cache_bytes, mem **out)
{
    if (units < 1 || units > 256 || layers > 65535 || experts > 65535)
        D2_ERROR(D2_ERANGE, "mem: %u layers x %u experts x %u units is beyond 65535 x 65535 x 256", layers, experts, units);
    mem *m = calloc(1, sizeof *m);
    if (!m) D2_ERROR(D2_ENOMEM, "mem: out of memory");
    m->type = t;
    m->layers = layers;
    m->experts = experts;
    m->units = units;
    m->n = layers * experts * units;
    m->budget = budget;
    m->cache_cap = cache_bytes;
    m->e = calloc(m->n, sizeof *m->e);
    m->cand = malloc(m->n * sizeof *m->cand);
    m->bwords = (experts + 63) / 64;
    m->bmask = calloc((size_t)units * layers * (m->bwords ? m->bwords : 1), sizeof *m->bmask);
    m->lwords = (layers + 63) / 64;
    m->index_1word = m->bwords == 1 && m->lwords == 1;
    m->lmask = calloc((size_t)units * (m->lwords ? m->lwords : 1), sizeof *m->lmask);
    m->layer_bytes = calloc(layers ? layers : 1, sizeof *m->layer_bytes);
    if (t->state_size) m->pstate = calloc(1, t->state_size);
    if (!m->e || !m->cand || !m->bmask || !m->lmask || !m->layer_bytes || (t->state_size && !m->pstate)) {
        mem_free(m);
        D2_ERROR(D2_ENOMEM, "mem: out of memory");
    }
    for (uint32_t i = 0; i < m->n; i++) {
        m->e[i].bytes = unit_bytes[i % units];
        m->e[i].unit = (uint8_t)(i % units);
        m->e[i].expert = (uint16_t)((i / units) % experts);
        m->e[i].layer = (uint16_t)(i / units / experts);
        m->e[i].bword = (uint32_t)(((size_t)m->e[i].unit * layers + m->e[i].layer) * m->bwords + m->e[i].expert / 64);
        m->e[i].lword = m->e[i].unit * m->lwords + m->e[i].layer / 64u;
        m->e[i].bbit = 1ULL << (m->e[i].expert & 63);
        m->e[i].cand_idx = -1;
        m->e[i].lprev = m->e[i].lnext = -1;
    }
    m->lru_list = t->victim == pick_lru;
    m->budget_index = t->victim == pick_budget;
    m->keep = t->keep;
    m->on_insert = t->on_insert;
    m->on_use = t->on_use;
    m->on_evict = t->on_evict;
    m->wants_room = t->wants_room;
    m->touch_hooks = m->lru_list || t->on_use;
#ifdef D2_DEBUG
    m->touch_hooks = 1; /* shadow_touch */
#endif
    m->lhead[0] = m->lhead[1] = m->ltail[0] = m->ltail[1] = -1;
#ifdef D2_DEBUG
    m->sh_on = units == 1 && t->needs_oracle && !t->hold;
    if (m->sh_on) {
        m->sh_last = calloc(m->n, sizeof *m->sh_last);
        m->sh_res = malloc(m->n * sizeof *m->sh_res);
        if (!m->sh_last || !m->sh_res) {
            mem_free(m);
            D2_ERROR(D2_ENOMEM, "mem: out of memory");
        }
    }
#endif
    if (t->init) {
        int rc = t->init(m->pstate, m);
        if (rc) { /* its state is not set up: no fini */
            free(m->pstate);
            m->pstate = NULL;
            m->type = NULL;
            mem_free(m);
            return rc;
        }
    }
    if (t->hold) hold_all(m);
    *out = m;
    return D2_OK;
}

void mem_free(mem *m)
{
    if (!m) return;
    if (m->type && m->type->fini && m->pstate) m->type->fini(m->pstate);
    free(m->pstate);
#ifdef D2_DEBUG
    free(m->sh_last);
    free(m->sh_res);
#endif
    free(m->layer_bytes);
    free(m->e);
    pcache_free(m->pc);
    free(m->cand);
    free(m->bmask);
    free(m->lmask);
    free(m);
}

/* mem.h's functions that mem_int.h also has inline (the parentheses keep
 * its macros from expanding the names) */
uint32_t(mem_entry_id)(const mem *m, uint32_t layer, uint32_t expert, uint32_t unit)
{
    return mem_entry_id_inline(m, layer, expert, unit);
}
int(mem_entry_state)(const mem *m, uint32_t id) { return mem_entry_state_inline(m, id); }
int64_t(mem_entry_bytes)(const mem *m, uint32_t id) { return mem_entry_bytes_inline(m, id); }
/* (last use, id) order of the lru lists */
static inline int lru_before(const mem *m, uint32_t a, uint32_t b)
{
    return m->e[a].last_use < m->e[b].last_use || (m->e[a].last_use == m->e[b].last_use && a < b);
}

/* into its list (by its predicted flag) at its place, searched from the
 * newest end: an entry joins with a recent last use, so the walk is short */
static inline void lru_insert(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    int l = x->predicted;
    int32_t at = m->ltail[l];
    while (at >= 0 && lru_before(m, id, (uint32_t)at)) at = m->e[at].lprev;
    x->lprev = at;
    x->lnext = at >= 0 ? m->e[at].lnext : m->lhead[l];
    if (x->lnext >= 0) m->e[x->lnext].lprev = (int32_t)id;
    else m->ltail[l] = (int32_t)id;
    if (at >= 0) m->e[at].lnext = (int32_t)id;
    else m->lhead[l] = (int32_t)id;
}

static inline void lru_remove(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    int l = x->predicted;
    if (x->lprev >= 0) m->e[x->lprev].lnext = x->lnext;
    else m->lhead[l] = x->lnext;
    if (x->lnext >= 0) m->e[x->lnext].lprev = x->lprev;
    else m->ltail[l] = x->lprev;
    x->lprev = x->lnext = -1;
}

/* The budget index's bit of a candidate not predicted, and with it the
 * layer summary's bit when the (unit, layer) goes from empty to not or back. */
static inline void bmask_flip(mem *m, const mem_entry *x)
{
    const uint64_t bit = x->bbit;
    uint64_t *w = &m->bmask[x->bword];
    if ((*w ^= bit) & ~bit) return; /* other experts in the word: the layer's bit stays set */
    if (m->bwords > 1) {
        const uint64_t *blk = w - (x->expert >> 6);
        for (uint32_t j = 0; j < m->bwords; j++)
            if (&blk[j] != w && blk[j]) return;
    }
    const uint64_t lbit = 1ULL << (x->layer & 63);
    m->lmask[x->lword] ^= lbit;
}

/* into the candidates: x is resident, unpinned, not a candidate */
static inline void cand_insert(mem *m, mem_entry *x, uint32_t id)
{
    x->cand_idx = (int32_t)m->ncand;
    m->cand[m->ncand++] = id;
    m->cand_bytes += x->bytes;
    if (!x->predicted) bmask_flip(m, x);
    if (m->lru_list) lru_insert(m, id);
}

/* out of the candidates: x is one */
static inline void cand_delete(mem *m, mem_entry *x, uint32_t id)
{
    uint32_t last = m->cand[--m->ncand];
    m->cand[x->cand_idx] = last;
    m->e[last].cand_idx = x->cand_idx;
    x->cand_idx = -1;
    m->cand_bytes -= x->bytes;
    if (!x->predicted) bmask_flip(m, x);
    if (m->lru_list) lru_remove(m, id);
}

static inline void cand_add(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    if (x->cand_idx >= 0 || x->pins || x->state != MEM_RESIDENT) return;
    cand_insert(m, x, id);
}

void mem_cand_leave(mem *m, uint32_t id) { cand_delete(m, &m->e[id], id); }
void mem_cand_join(mem *m, uint32_t id) { cand_insert(m, &m->e[id], id); }
void(mem_entry_pin)(mem *m, uint32_t id) { mem_entry_pin_inline(m, id); }

void(mem_entry_unpin)(mem *m, uint32_t id) { mem_entry_unpin_inline(m, id); }

void mem_entry_predict(mem *m, uint32_t id, int on)
{
    mem_entry *x = &m->e[id];
    if (x->predicted == !!on) return;
    if (x->cand_idx >= 0) {
        bmask_flip(m, x);
        if (m->lru_list) lru_remove(m, id);
    }
    x->predicted = (uint8_t)!!on;
    if (x->cand_idx >= 0 && m->lru_list) lru_insert(m, id);
#ifdef D2_DEBUG
    if (on) m->sh_on = 0; /* preloads: loads are no longer demand misses */
#endif
}
int(mem_entry_predicted)(const mem *m, uint32_t id) { return mem_entry_predicted_inline(m, id); }
void mem_set_layer(mem *m, uint32_t layer) { m->layer = layer; }

#ifdef D2_DEBUG
/* The shadow LRU sees a use: a miss inserts it, evicting least recently
 * used shadow entries while over the budget. */
static void shadow_touch(mem *m, uint32_t id)
{
    if (!m->sh_on) return;
    if (!m->sh_last[id]) {
        m->sh_misses++;
        m->sh_res[m->sh_nres++] = id;
        m->sh_bytes += m->e[id].bytes;
        while (m->sh_bytes > m->budget && m->sh_nres > 1) {
            uint32_t v = UINT32_MAX, vi = 0;
            for (uint32_t i = 0; i < m->sh_nres; i++)
                if (m->sh_res[i] != id && (v == UINT32_MAX || m->sh_last[m->sh_res[i]] < m->sh_last[v])) v = m->sh_res[i], vi = i;
            m->sh_res[vi] = m->sh_res[--m->sh_nres];
            m->sh_last[v] = 0;
            m->sh_bytes -= m->e[v].bytes;
        }
    }
    m->sh_last[id] = ++m->sh_tick;
}
#endif

/* A use's work beyond its tick and count (mem_entry_touch_inline), when
 * m->touch_hooks says there is some. */
void mem_touch_hooks(mem *m, uint32_t id)
{
#ifdef D2_DEBUG
    shadow_touch(m, id);
#endif
    if (m->lru_list && m->e[id].cand_idx >= 0) { /* to its new place by its new last use */
        lru_remove(m, id);
        lru_insert(m, id);
    }
    if (m->on_use) m->on_use(m->pstate, m, id);
}

void(mem_entry_touch)(mem *m, uint32_t id, int64_t tick) { mem_entry_touch_inline(m, id, tick); }

void mem_step_done(mem *m, uint32_t layer)
{
    if (m->type->after_step) m->type->after_step(m->pstate, m, layer);
}

void mem_set_oracle(mem *m, mem_oracle_fn fn, void *user)
{
    m->oracle = fn;
    m->oracle_user = user;
}

int mem_next_use(const mem *m, uint32_t id, uint64_t *when)
{
    *when = UINT64_MAX;
    if (!m->oracle) D2_ERROR(D2_EINVAL, "mem: policy %s needs the next-use oracle and this run has none", m->type->name);
    return m->oracle(m->oracle_user, m->e[id].layer, m->e[id].expert, when);
}

void mem_candidates(const mem *m, const uint32_t **ids, uint32_t *n)
{
    *ids = m->cand;
    *n = m->ncand;
}
int mem_entry_candidate(const mem *m, uint32_t id) { return m->e[id].cand_idx >= 0; }
uint32_t mem_layers(const mem *m) { return m->layers; }
uint32_t mem_experts(const mem *m) { return m->experts; }
uint32_t mem_units(const mem *m) { return m->units; }
uint32_t mem_layer(const mem *m) { return m->layer; }
uint32_t mem_entry_layer(const mem *m, uint32_t id) { return m->e[id].layer; }
uint32_t mem_entry_expert(const mem *m, uint32_t id) { return m->e[id].expert; }
uint32_t mem_entry_unit(const mem *m, uint32_t id) { return m->e[id].unit; }
int64_t mem_entry_last_use(const mem *m, uint32_t id) { return m->e[id].last_use; }
int64_t mem_entry_uses(const mem *m, uint32_t id) { return m->e[id].uses; }
int64_t mem_layer_bytes(const mem *m, uint32_t layer) { return m->layer_bytes[layer]; }
void *mem_policy_state(const mem *m) { return m->pstate; }
const mem_policy_type *mem_policy(const mem *m) { return m->type; }

void mem_set_free_hook(mem *m, mem_free_fn fn, void *user)
{
    m->free_fn = fn;
    m->free_user = user;
}

static inline void res_remove(mem *m, mem_entry *x, uint32_t id)
{
    if (m->free_fn) m->free_fn(m->free_user, id);
    if (m->on_evict) m->on_evict(m->pstate, m, id);
    m->layer_bytes[x->layer] -= x->bytes;
    if (x->cand_idx >= 0) cand_delete(m, x, id);
    x->state = MEM_ABSENT;
    x->predicted = 0;
    m->resident -= x->bytes;
}

static inline void res_add(mem *m, mem_entry *x, uint32_t id, int state)
{
    x->state = (uint8_t)state;
    m->resident += x->bytes;
    m->layer_bytes[x->layer] += x->bytes;
    m->reserved_total += x->bytes;
    if (m->resident > m->peak) m->peak = m->resident;
    if (m->on_insert) m->on_insert(m->pstate, m, id);
}

int mem_entry_reserve(mem *m, uint32_t id, int *fits, int *evicted)
{
    mem_entry *x = &m->e[id];
    const int64_t need = x->bytes;
    *evicted = 0;
    *fits = 0;
    if (need > m->budget) return D2_OK;
    /* victims: resident, unpinned (the candidate list); predicted ones
     * (preloads for the next layer) only after every other.  A load that
     * cannot fit even after evicting every candidate is refused with the
     * resident set untouched. */
    if (m->resident - m->cand_bytes + need > m->budget) return D2_OK;
    while (m->resident + need > m->budget || (m->wants_room && m->ncand && m->wants_room(m->pstate, m, id))) {
        uint32_t best = UINT32_MAX;
        if (m->budget_index) best = victim_budget_index(m); /* pick_budget without the call */
        else D2_TRY(m->type->victim(m->pstate, m, id, &best));
        if (best >= m->n || m->e[best].cand_idx < 0) D2_ERROR(D2_EINTERNAL, "mem: policy %s: its victim is not an eviction candidate (or its index disagrees with its order)", m->type->name);
        mem_entry *v = &m->e[best];
        m->evicted_total += v->bytes;
        m->evictions++;
        res_remove(m, v, best);
        (*evicted)++;
    }
    res_add(m, x, id, MEM_LOADING);
#ifdef D2_DEBUG
    m->loads++;
#endif
    *fits = 1;
    return D2_OK;
}

void(mem_entry_loaded)(mem *m, uint32_t id) { mem_entry_loaded_inline(m, id); }

static inline void entry_release(mem *m, mem_entry *x, uint32_t id)
{
    if (x->state == MEM_ABSENT) return;
    m->released_total += x->bytes;
    res_remove(m, x, id);
}

void mem_entry_release(mem *m, uint32_t id) { entry_release(m, &m->e[id], id); }

/* Hold policy: every entry resident at once. */
static void hold_all(mem *m)
{
    for (uint32_t i = 0; i < m->n; i++)
        if (m->e[i].state == MEM_ABSENT) {
            res_add(m, &m->e[i], i, MEM_RESIDENT);
            cand_add(m, i);
        }
    m->initial = m->resident;
}

void(mem_entry_done)(mem *m, uint32_t id) { mem_entry_done_inline(m, id); }

int mem_page_cache_open(mem *m, const char *policy)
{
    if (m->cache_cap <= 0) return D2_OK;
    int64_t *b = malloc((size_t)m->n * sizeof *b);
    if (!b) D2_ERROR(D2_ENOMEM, "mem: out of memory");
    for (uint32_t i = 0; i < m->n; i++) b[i] = m->e[i].bytes;
    int rc = pcache_new(policy, m->cache_cap, m->n, b, &m->pc);
    free(b);
    return rc;
}

int(mem_cache_access)(mem *m, uint32_t id, int *hit) { return mem_cache_access_inline(m, id, hit); }

int64_t(mem_resident_bytes)(const mem *m) { return mem_resident_bytes_inline(m); }
int64_t mem_peak_bytes(const mem *m) { return m->peak; }
int64_t(mem_budget)(const mem *m) { return mem_budget_inline(m); }
int64_t mem_evicted_bytes(const mem *m) { return m->evicted_total; }
int64_t mem_reserved_total(const mem *m) { return m->reserved_total; }
int64_t mem_initial_bytes(const mem *m) { return m->initial; }
uint64_t mem_evictions(const mem *m) { return m->evictions; }

int mem_check_quick(const mem *m)
{
    if (m->resident > m->budget)
        D2_ERROR(D2_EINTERNAL, "mem: %lld bytes resident over a budget of %lld", (long long)m->resident, (long long)m->budget);
    if (m->reserved_total - m->evicted_total - m->released_total != m->resident)
        D2_ERROR(D2_EINTERNAL, "mem: bytes unaccounted: reserved %lld - evicted %lld - released %lld != resident %lld",
                 (long long)m->reserved_total, (long long)m->evicted_total, (long long)m->released_total, (long long)m->resident);
    int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four sums: a quarter of the loop's steps */
    const int64_t *lb = m->layer_bytes;
    const size_t nl = m->layers;
    size_t l = 0; /* a size_t index: the four loads address from one register, no index arithmetic each */
    for (; l + 4 <= nl; l += 4) s0 += lb[l], s1 += lb[l + 1], s2 += lb[l + 2], s3 += lb[l + 3];
    for (; l < nl; l++) s0 += lb[l];
    const int64_t lsum = s0 + s1 + s2 + s3;
    if (lsum != m->resident) D2_ERROR(D2_EINTERNAL, "mem: per-layer bytes sum to %lld, account says %lld", (long long)lsum, (long long)m->resident);
    return D2_OK;
}

int mem_check(const mem *m)
{
    D2_TRY(mem_check_quick(m));
    /* One walk over the entries sums the resident ones and checks the
     * candidate list: each resident entry that says it is a candidate must
     * sit at its place in that list, unpinned and resident, and there must
     * be ncand of them, so every place of the list holds such an entry. */
    int64_t sum = 0, cb = 0;
    uint32_t nc = 0, nb = 0, nbl = 0; /* candidates: in the list; not predicted: in it, bits in the budget index */
    for (uint32_t id = 0; id < m->n; id++) {
        const mem_entry *x = &m->e[id];
        if (x->state == MEM_ABSENT) continue;
        if (x->state > MEM_RESIDENT) D2_ERROR(D2_EINTERNAL, "mem: entry %u in state %d", id, x->state);
        sum += x->bytes;
        if (x->cand_idx < 0) continue;
        if ((uint32_t)x->cand_idx >= m->ncand || m->cand[x->cand_idx] != id || x->pins || x->state != MEM_RESIDENT)
            D2_ERROR(D2_EINTERNAL, "mem: candidate list broken");
        nc++;
        cb += x->bytes;
        if (x->predicted) continue;
        nb++;
        if (!(m->bmask[x->bword] >> (x->expert & 63) & 1)) D2_ERROR(D2_EINTERNAL, "mem: budget index lacks candidate %u", id);
    }
    if (sum != m->resident) D2_ERROR(D2_EINTERNAL, "mem: resident entries hold %lld bytes, account says %lld", (long long)sum, (long long)m->resident);
    if (nc != m->ncand) D2_ERROR(D2_EINTERNAL, "mem: candidate list broken: %u resident entries in it, %u places", nc, m->ncand);
    if (cb != m->cand_bytes) D2_ERROR(D2_EINTERNAL, "mem: candidate bytes %lld, list holds %lld", (long long)m->cand_bytes, (long long)cb);
    /* each layer summary bit set exactly when its (unit, layer) holds a bit */
    uint32_t nl = 0, nlb = 0; /* (unit, layer)s holding a bit, summary bits set */
    for (uint32_t u = 0; u < m->units; u++) {
        for (uint32_t l = 0; l < m->layers; l++) {
            const uint64_t *w = &m->bmask[((size_t)u * m->layers + l) * m->bwords];
            uint64_t any = 0;
            for (uint32_t j = 0; j < m->bwords; j++) {
                for (uint64_t b = w[j]; b; b &= b - 1) nbl++;
                any |= w[j];
            }
            if ((any != 0) != (int)(m->lmask[(size_t)u * m->lwords + l / 64] >> (l & 63) & 1))
                D2_ERROR(D2_EINTERNAL, "mem: budget index: layer summary of unit %u layer %u disagrees", u, l);
            nl += any != 0;
        }
        for (uint32_t j = 0; j < m->lwords; j++)
            for (uint64_t b = m->lmask[(size_t)u * m->lwords + j]; b; b &= b - 1) nlb++;
    }
    if (nb != nbl || nl != nlb)
        D2_ERROR(D2_EINTERNAL, "mem: budget index counts %u candidates, list has %u (layer summary bits %u, %u layers hold one)", nbl, nb, nlb, nl);
    if (m->lru_list) { /* the two lru lists: every candidate once, in its list by its flag, in (last use, id) order */
        uint32_t seen = 0;
        for (int l = 0; l < 2; l++)
            for (int32_t at = m->lhead[l], prev = -1; at >= 0; prev = at, at = m->e[at].lnext, seen++) {
                const mem_entry *x = &m->e[at];
                if (x->cand_idx < 0 || x->predicted != l || x->lprev != prev || (prev >= 0 && !lru_before(m, (uint32_t)prev, (uint32_t)at)) ||
                    (x->lnext < 0 && m->ltail[l] != at) || seen >= m->ncand)
                    D2_ERROR(D2_EINTERNAL, "mem: lru list %d broken at entry %d", l, at);
            }
        if (seen != m->ncand) D2_ERROR(D2_EINTERNAL, "mem: lru lists hold %u entries, %u candidates", seen, m->ncand);
    }
    if (m->pc) D2_TRY(pcache_check(m->pc));
#ifdef D2_DEBUG
    if (m->sh_on && m->loads > m->sh_misses)
        D2_ERROR(D2_EINTERNAL, "mem: policy %s loaded %llu units where an LRU cache of the same budget over the same uses "
                 "missed %llu (the offline optimum cannot lose to LRU)", m->type->name, (unsigned long long)m->loads,
                 (unsigned long long)m->sh_misses);
#endif
    return D2_OK;
}

_Static_assert(sizeof(mem_entry) == 64, "mem_entry: 64 bytes, so an entry's address is a shift");
