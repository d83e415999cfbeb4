/* mem.h - the accelerator's expert memory: which (layer, expert, unit) is
 * resident, loading or absent, the budget M and the eviction policies (the
 * paper's Algorithm 2 as "budget", plus none/hold/lru/lfu), and the host
 * page cache in front of flash.  It decides victims; it does not know time
 * (the engine, engine.c, asks it at the simulated moment a load starts). */
#ifndef D2_SIM_MEM_H
#define D2_SIM_MEM_H

#include <stddef.h>
#include <stdint.h>

typedef struct mem mem;

enum mem_state { MEM_ABSENT = 0, MEM_LOADING, MEM_RESIDENT };

/* An eviction policy: a row of the table in mem.c (or one registered at run
 * time), looked up by name.  A policy has per-run state (state_size bytes,
 * zeroed, then init) and hooks; every hook but victim may be NULL.  Policies
 * read the memory through the const accessors below (candidates, per-entry
 * use history, per-layer bytes, the next-use oracle); they change nothing
 * but their own state. */
typedef struct mem_policy_type {
    const char *name;
    const char *summary;
    int keep;          /* keep levels after their compute (0: free after use) */
    int hold;          /* everything resident from the start, never evicted */
    int needs_oracle;  /* asks mem_next_use (the serving loop then provides the oracle) */
    size_t state_size; /* bytes of per-run state (0: none) */
    int (*init)(void *state, const mem *m);                       /* D2 status */
    void (*fini)(void *state);
    void (*on_insert)(void *state, const mem *m, uint32_t id);    /* reserved: loading from now */
    void (*on_use)(void *state, const mem *m, uint32_t id);       /* a layer step uses it */
    void (*on_evict)(void *state, const mem *m, uint32_t id);     /* about to leave memory */
    void (*after_step)(void *state, const mem *m, uint32_t layer); /* a layer step ended */
    /* The entry to evict next, among the candidates (mem_candidates: at
     * least one), to make room for `incoming`.  D2 status. */
    int (*victim)(void *state, const mem *m, uint32_t incoming, uint32_t *out);
    /* Optional (NULL: never): 1 when the policy wants one more victim before
     * `incoming` is reserved although the budget has room, e.g. a cache
     * partitioned per layer whose layer share is full (victim is then asked
     * as usual).  Called only while there are candidates; each call that
     * says 1 costs one eviction, so the loop ends. */
    int (*wants_room)(void *state, const mem *m, uint32_t incoming);
} mem_policy_type;

#include "core/registry.h"
/* mem_policy_find, _list, _count, _at, _names, _register (core/registry.h) */
D2_REGISTRY_DECLARE(mem_policy, mem_policy_type)

/* Entry id = (layer * experts + expert) * units + unit. unit_bytes[units].
 * A hold policy makes every entry resident at once (the budget must hold
 * them: the caller sets it to the total). */
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
/* Record a use at time tick (for lru/lfu; the policy's on_use). */
void mem_entry_touch(mem *m, uint32_t id, int64_t tick);
/* The layer now being served (the budget policy's distances count from it). */
void mem_set_layer(mem *m, uint32_t layer);
/* A layer step ended (the policy's after_step). */
void mem_step_done(mem *m, uint32_t layer);

/* The next-use oracle (for Belady): *when = the index of the next layer step
 * (forward step x layers + layer, counted from the run's start) after the
 * current one that uses (layer, expert) at any level, UINT64_MAX when none.
 * D2 status. */
typedef int (*mem_oracle_fn)(void *user, uint32_t layer, uint32_t expert, uint64_t *when);
void mem_set_oracle(mem *m, mem_oracle_fn fn, void *user);
/* The oracle for an entry; D2_EINVAL when the run gave none. */
int mem_next_use(const mem *m, uint32_t id, uint64_t *when);

/* Read-only views for policies. */
void mem_candidates(const mem *m, const uint32_t **ids, uint32_t *n); /* resident, unpinned */
int mem_entry_candidate(const mem *m, uint32_t id); /* 1: among mem_candidates (policies keeping their own order) */
uint32_t mem_layers(const mem *m);
uint32_t mem_experts(const mem *m);
uint32_t mem_units(const mem *m);
uint32_t mem_layer(const mem *m);                 /* the layer being served */
uint32_t mem_entry_layer(const mem *m, uint32_t id);
uint32_t mem_entry_expert(const mem *m, uint32_t id);
uint32_t mem_entry_unit(const mem *m, uint32_t id);
int64_t mem_entry_last_use(const mem *m, uint32_t id); /* tick of the last use, 0 = never */
int64_t mem_entry_uses(const mem *m, uint32_t id);     /* uses so far */
int64_t mem_layer_bytes(const mem *m, uint32_t layer); /* resident + loading bytes of that layer */
void *mem_policy_state(const mem *m);              /* the policy's state (tests) */
/* The running policy: plug-ins of one system that cooperate (a predictor
 * feeding its memory policy, src/sim/plugins.h) check it before touching its
 * state. */
const mem_policy_type *mem_policy(const mem *m);

/* Make room and mark the entry LOADING (its bytes count from now): *fits =
 * 1.  *fits = 0 when it cannot fit without evicting a pinned entry (nothing
 * changed).  *evicted gets the number of victims.  D2_EINTERNAL on a broken
 * invariant (a bug). */
int mem_entry_reserve(mem *m, uint32_t id, int *fits, int *evicted);
void mem_entry_loaded(mem *m, uint32_t id);       /* LOADING -> RESIDENT */
void mem_entry_release(mem *m, uint32_t id);      /* RESIDENT -> ABSENT */
/* The step is done with a pinned entry: unpin it, and free it when the
 * policy does not keep levels after use. */
void mem_entry_done(mem *m, uint32_t id);

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
int64_t mem_reserved_total(const mem *m);    /* every byte ever reserved (the initial hold included) */
int64_t mem_initial_bytes(const mem *m);     /* bytes made resident by a hold policy at the start */
uint64_t mem_evictions(const mem *m);
/* resident <= budget; reserved - evicted - released == resident; lists consistent. */
int mem_check(const mem *m);
/* The checks of mem_check whose cost does not grow with what is resident:
 * resident <= budget, the byte account, and the per-layer bytes (O(layers));
 * the simulator runs it after every layer step and mem_check (the entry
 * walks) after every forward step. */
int mem_check_quick(const mem *m);

#endif
