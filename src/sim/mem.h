/* mem.h - the accelerator's expert memory: which (layer, expert, unit) is
 * resident, loading or absent, the budget M and the eviction policies (the
 * paper's Algorithm 2 as "budget", plus none/hold/lru/lfu), and the host
 * page cache in front of flash.  It decides victims; it does not know time
 * (the serving loop in sim.c asks it at the simulated moment a load starts). */
#ifndef D2_SIM_MEM_H
#define D2_SIM_MEM_H

#include <stdint.h>

typedef struct mem mem;

enum mem_state { MEM_ABSENT = 0, MEM_LOADING, MEM_RESIDENT };

/* An eviction policy: a row of the table below, looked up by name. */
typedef struct mem_policy_type {
    const char *name;
    const char *summary;
    int keep;     /* keep levels after their compute (0: free after use) */
    int hold;     /* everything resident from the start, never evicted */
    /* eviction order: lower score first, ties lower id */
    uint64_t (*score)(const mem *m, uint32_t id);
    /* the entry to evict next among the candidates (at least one) */
    uint32_t (*victim)(const mem *m);
} mem_policy_type;

const mem_policy_type *mem_policy_find(const char *name);
const mem_policy_type *const *mem_policy_list(void); /* NULL-terminated */

/* Entry id = (layer * experts + expert) * units + unit. unit_bytes[units]. */
int mem_new(const mem_policy_type *t, uint32_t layers, uint32_t experts, uint32_t units,
            const int64_t *unit_bytes, int64_t budget, int64_t cache_bytes, mem **out);
void mem_free(mem *m);

uint32_t mem_entry_id(const mem *m, uint32_t layer, uint32_t expert, uint32_t unit);
int mem_entry_state(const mem *m, uint32_t id);
int64_t mem_entry_bytes(const mem *m, uint32_t id);
/* Pinned entries (needed by the running step, or loading) are never evicted. */
void mem_entry_pin(mem *m, uint32_t id);
void mem_entry_unpin(mem *m, uint32_t id);
/* Predicted for the next layer (preloading): evicted only when nothing else can be. */
void mem_entry_predict(mem *m, uint32_t id, int on);
int mem_entry_predicted(const mem *m, uint32_t id);
/* Record a use at time tick (for lru/lfu). */
void mem_entry_touch(mem *m, uint32_t id, int64_t tick);
/* The layer now being served (the budget policy's distances count from it). */
void mem_set_layer(mem *m, uint32_t layer);

/* Make room and mark the entry LOADING (its bytes count from now): *fits =
 * 1.  *fits = 0 when it cannot fit without evicting a pinned entry (nothing
 * changed).  *evicted gets the number of victims.  D2_EINTERNAL on a broken
 * invariant (a bug). */
int mem_entry_reserve(mem *m, uint32_t id, int *fits, int *evicted);
void mem_entry_loaded(mem *m, uint32_t id);       /* LOADING -> RESIDENT */
void mem_entry_release(mem *m, uint32_t id);      /* RESIDENT -> ABSENT (policy none) */
/* Hold policy: make every entry resident at once (may exceed the budget
 * only if the caller set budget to the total). */
int mem_hold_all(mem *m);

/* Host page cache in front of flash (src/sim/pcache.c): open it with a
 * replacement policy ("two-list", "lru") when mem_new got a capacity; then
 * *hit tells whether the unit's file was cached (a miss inserts it). */
int mem_page_cache_open(mem *m, const char *policy);
int mem_cache_access(mem *m, uint32_t id, int *hit);

/* Called whenever an entry leaves memory (evicted to make room, or released),
 * before its state changes; the serving loop checks its invariants there. */
typedef void (*mem_free_fn)(void *user, uint32_t id);
void mem_set_free_hook(mem *m, mem_free_fn fn, void *user);

int64_t mem_resident_bytes(const mem *m); /* resident + loading, bytes */
int64_t mem_peak_bytes(const mem *m);
int64_t mem_budget(const mem *m);
int64_t mem_evicted_bytes(const mem *m);
int64_t mem_reserved_total(const mem *m);    /* every byte ever reserved */
uint64_t mem_evictions(const mem *m);
/* resident <= budget; reserved - evicted - released == resident; lists consistent. */
int mem_check(const mem *m);

#endif
