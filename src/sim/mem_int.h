/* mem_int.h - the memory account's internals (mem.c), for the serving
 * loop's hot paths in src/sim: a module that includes this header (through
 * sim_int.h) calls the accessors and the common paths of pin, touch, done
 * and loaded below inline, under mem.h's names (the macros at the end, as
 * the C library does with getc).  Everything outside src/sim sees only
 * mem.h and its opaque handle. */
#ifndef D2_SIM_MEM_INT_H
#define D2_SIM_MEM_INT_H

#include "config.h" /* D2_DEBUG (configure --enable-debug) */
#include "sim/mem.h"
#include "sim/pcache.h"
#include "core/err.h"

#include <stdint.h>

typedef struct mem_entry {
    int64_t bytes;     /* size of this unit, bytes */
    int64_t last_use;  /* tick of the last use (lru) */
    int64_t uses;      /* uses so far (lfu) */
    int32_t pins;      /* steps/loads holding it */
    int32_t cand_idx;  /* index in the candidate list (resident, unpinned), -1 if not */
    int32_t lprev, lnext; /* neighbours in its lru list (ordered policies), -1 at the ends */
    uint16_t layer, expert; /* of this entry (kept to avoid divisions) */
    uint8_t unit;
    uint8_t state;     /* enum mem_state */
    uint8_t predicted; /* preloaded for the next layer */
    uint32_t bword;    /* its word in the budget index (mem.bmask) */
    uint32_t lword;    /* its word in the budget index's layer summary (mem.lmask) */
    uint64_t bbit;     /* its bit in that word of bmask: 1 << expert % 64 (and the entry 64 bytes) */
} mem_entry;

/* The budget index (victim_budget_index) has two levels: bmask, a bit per
 * candidate not predicted, and lmask, a bit per (unit, layer) set exactly
 * when that (unit, layer) has a bit in bmask.  mem_check checks both. */
struct mem {
    const mem_policy_type *type;
    uint32_t layers, experts, units, n;
    uint32_t layer;        /* layer being served */
    mem_entry *e;
    uint32_t *cand, ncand;  /* eviction candidates: RESIDENT and unpinned */
    int lru_list;           /* the victim is pick_lru's: candidates also kept in lists by (last use, id) */
    int budget_index;       /* the victim is pick_budget's: mem_entry_reserve asks the index directly */
    int keep;               /* the policy's keep (its hooks below, copied from type to save a load) */
    int touch_hooks;        /* a use has more to do than its tick and count (mem_touch_hooks) */
    void (*on_insert)(void *state, const mem *m, uint32_t id);
    void (*on_use)(void *state, const mem *m, uint32_t id);
    void (*on_evict)(void *state, const mem *m, uint32_t id);
    int (*wants_room)(void *state, const mem *m, uint32_t incoming);
    int32_t lhead[2], ltail[2]; /* those lists: [0] not predicted, [1] predicted; -1 empty */
    int64_t cand_bytes;     /* their bytes */
    uint64_t *bmask;        /* [(unit * layers + layer) * bwords + expert / 64]: bit expert % 64 set for a
                               candidate not predicted (budget's index) */
    uint32_t bwords;        /* words per (unit, layer): ceil(experts / 64) */
    uint64_t *lmask;        /* [unit * lwords + layer / 64]: bit layer % 64 set when (unit, layer) has a bit in bmask */
    uint32_t lwords;        /* words per unit: ceil(layers / 64) */
    int index_1word;        /* bwords == lwords == 1: victim_budget_index's short path */
    int64_t budget;        /* bytes */
    int64_t resident;      /* bytes resident or loading */
    int64_t peak;          /* bytes */
    int64_t cache_cap;     /* host page cache, bytes (0: none) */
    pcache *pc;            /* the page cache model (NULL: none) */
    int64_t reserved_total, evicted_total, released_total; /* bytes */
    uint64_t evictions;
    mem_free_fn free_fn;   /* NULL, or told of every entry leaving memory */
    void *free_user;
    void *pstate;          /* the policy's per-run state (NULL: none) */
    mem_oracle_fn oracle;  /* next-use oracle (NULL: none) */
    void *oracle_user;
    int64_t *layer_bytes;  /* [layers] resident + loading bytes per layer */
    int64_t initial;       /* bytes made resident by a hold policy, bytes */
#ifdef D2_DEBUG
    /* Debug builds: a shadow LRU cache of the same budget fed the same uses
     * (mem_entry_touch), for a clairvoyant policy over one storage unit and
     * no preloads, where mem_check asserts the policy loaded no more than
     * the shadow missed (Belady's MIN is optimal on every prefix of a
     * sequence of equal-size units; issue 15's invariant). */
    int sh_on;             /* the check applies (units == 1, needs_oracle, not hold, nothing predicted) */
    int64_t *sh_last;      /* [n] shadow tick of the last use, 0 = not in the shadow */
    uint32_t *sh_res, sh_nres; /* shadow-resident ids */
    int64_t sh_bytes, sh_tick; /* shadow bytes, its use counter */
    uint64_t sh_misses, loads; /* the shadow's misses, the policy's reservations */
#endif
};

/* mem.c's slow paths of the inline functions below */
void mem_cand_leave(mem *m, uint32_t id);  /* a candidate no more (it is one) */
void mem_cand_join(mem *m, uint32_t id);   /* a candidate (resident, unpinned, not one) */
void mem_touch_hooks(mem *m, uint32_t id); /* after a use: the lru lists, on_use, the debug shadow */

static inline uint32_t mem_entry_id_inline(const mem *m, uint32_t layer, uint32_t expert, uint32_t unit)
{
    return (layer * m->experts + expert) * m->units + unit;
}
static inline int mem_entry_state_inline(const mem *m, uint32_t id) { return m->e[id].state; }
static inline int64_t mem_entry_bytes_inline(const mem *m, uint32_t id) { return m->e[id].bytes; }
static inline int mem_entry_predicted_inline(const mem *m, uint32_t id) { return m->e[id].predicted; }
static inline int64_t mem_resident_bytes_inline(const mem *m) { return m->resident; }
static inline int64_t mem_budget_inline(const mem *m) { return m->budget; }

static inline void mem_entry_pin_inline(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    x->pins++;
    if (x->cand_idx >= 0) mem_cand_leave(m, id);
}

static inline void mem_entry_unpin_inline(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    if (x->pins > 0 && --x->pins == 0 && x->cand_idx < 0 && x->state == MEM_RESIDENT) mem_cand_join(m, id);
}

static inline void mem_entry_touch_inline(mem *m, uint32_t id, int64_t tick)
{
    mem_entry *x = &m->e[id];
    x->last_use = tick;
    x->uses++;
    if (m->touch_hooks) mem_touch_hooks(m, id);
}

static inline void mem_entry_loaded_inline(mem *m, uint32_t id)
{
    mem_entry *x = &m->e[id];
    x->state = MEM_RESIDENT;
    if (x->cand_idx < 0 && !x->pins) mem_cand_join(m, id);
}

static inline void mem_entry_done_inline(mem *m, uint32_t id)
{
    mem_entry_unpin_inline(m, id);
    if (!m->keep) mem_entry_release(m, id);
}

static inline int mem_cache_access_inline(mem *m, uint32_t id, int *hit)
{
    *hit = 0;
    return m->pc ? pcache_access(m->pc, id, hit) : D2_OK;
}

#define mem_entry_id(m, layer, expert, unit) mem_entry_id_inline(m, layer, expert, unit)
#define mem_entry_state(m, id) mem_entry_state_inline(m, id)
#define mem_entry_bytes(m, id) mem_entry_bytes_inline(m, id)
#define mem_entry_predicted(m, id) mem_entry_predicted_inline(m, id)
#define mem_resident_bytes(m) mem_resident_bytes_inline(m)
#define mem_budget(m) mem_budget_inline(m)
#define mem_entry_pin(m, id) mem_entry_pin_inline(m, id)
#define mem_entry_unpin(m, id) mem_entry_unpin_inline(m, id)
#define mem_entry_touch(m, id, tick) mem_entry_touch_inline(m, id, tick)
#define mem_entry_loaded(m, id) mem_entry_loaded_inline(m, id)
#define mem_entry_done(m, id) mem_entry_done_inline(m, id)
#define mem_cache_access(m, id, hit) mem_cache_access_inline(m, id, hit)

#endif
