/* bitroute.h - bit-width routing, the second half of dual routing (paper
 * section 3): for each (token, activated expert) use in a layer step pick a
 * level 1..K.  We cannot train the paper's router, so these policies stand
 * in for it; each is a row of a table looked up by name.  Expert routing
 * (which experts) comes from the trace, not from here. */
#ifndef D2_SIM_BITROUTE_H
#define D2_SIM_BITROUTE_H

#include <stddef.h>
#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "sim/mem.h"

#define BITROUTE_MAX_LEVELS 16 /* levels a storage format may have */

typedef struct bitroute_use {
    uint32_t expert;  /* expert id */
    float weight;     /* gate weight */
    uint8_t bits;     /* recorded bit-width (0 = none) */
    uint8_t level;    /* out: 0-based level / copy index */
} bitroute_use;

typedef struct bitroute_cfg {
    uint32_t levels;         /* K */
    const int *level_bits;   /* [K] bit-width of each level */
    const double *caps;      /* [K] capacities c_k, sum 1 */
    int arg_bits;            /* uniform:B -> B */
    uint32_t layers, experts;
    const uint8_t *static_level; /* [layers * experts] for "static" (from profiling) */
    gsl_rng *rng;            /* capacity draws */
    int nested;              /* levels are nested (level k = units 1..k), else separate copies */
    const mem *mem;          /* read-only view of what is resident (mem_entry_state), for
                                policies that choose a level by what a miss would cost */
    void *state;             /* the policy's per-run state (state_size bytes, zeroed, then init) */
    const struct sim_params *params; /* the run's parameters (sim.h), read-only; NULL outside a run */
} bitroute_cfg;

typedef struct bitroute_type {
    const char *name;
    const char *summary;
    int has_arg;       /* "uniform:B" */
    int is_router;     /* stands in for a per-token router (costs sim.router_overhead) */
    int needs_profile; /* needs static_level */
    int needs_bits;    /* needs bit-widths recorded in the trace */
    int pure;          /* assign reads only the uses and levels, level_bits, caps, arg_bits
                          (no memory, state, generator or profile): its outcome may be
                          remembered across runs (sim/stepmemo.h) */
    size_t state_size; /* bytes of per-run state (0: none) */
    int (*init)(void *state, const bitroute_cfg *c); /* NULL: nothing; D2 status */
    void (*fini)(void *state);
    /* scratch: 6n entries, 8-byte aligned */
    int (*assign)(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch);
    /* Optional (NULL: none), for a routing that reads nothing of a use but
     * its expert, weight and bits: assign from the step's arrays
     * (expert[i], weight[i], bits[i] of use i) into level[i], the levels
     * assign gives, so a caller need not build the uses.  scratch as
     * assign's.  D2 status. */
    int (*assign_levels)(const bitroute_cfg *c, uint32_t layer, const uint16_t *expert, const float *weight,
                         const uint8_t *bits, size_t n, uint8_t *level, uint32_t *scratch);
    /* Optional (NULL: none), for a routing whose level depends on the
     * expert alone: level[e] for each of the layer's experts, the level
     * assign gives every use of e, so a caller may count the uses without
     * building them.  D2 status (the errors assign would give). */
    int (*expert_levels)(const bitroute_cfg *c, uint32_t layer, uint8_t *level);
    /* The level (0-based) a predicted expert of `layer` is preloaded at
     * (nested: levels 0..level load).  NULL: bitroute_preload_level's
     * default. */
    int (*preload_level)(const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level);
} bitroute_type;

#include "core/registry.h"
/* bitroute_type_find (exact name), _list, _count, _at, _names, _register */
D2_REGISTRY_DECLARE(bitroute_type, bitroute_type)

/* "capacity", "gate", "static", "uniform:4", "trace"; *arg gets B for uniform:B. */
const bitroute_type *bitroute_find(const char *spec, int *arg);

/* The level to preload a predicted expert at: the type's preload_level, else
 * the base level (nested: the level every use needs) or the copy with the
 * largest capacity (copies: the most likely one). */
int bitroute_preload_level(const bitroute_type *t, const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level);

/* Counts per level for n uses from capacities, largest remainder (ties to
 * the higher level): sum is n. */
void bitroute_split(const double *caps, uint32_t levels, size_t n, size_t *count);

/* Static levels: rank each layer's experts by importance (gate-weight mass
 * from profiling, higher = more important) and give the top c_K share the
 * highest level, ... (EdgeMoE's expert-wise bit-width adaptation, with
 * gate mass standing in for its accuracy-loss profile). */
int bitroute_static_levels(const double *mass, uint32_t layers, uint32_t experts,
                           const double *caps, uint32_t levels, uint8_t *out);

#endif
