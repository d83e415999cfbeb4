/* policy.h - named systems: each a row combining a storage format (nested
 * MWQ levels, or separate full copies per bit-width), a bit-width routing
 * policy, a planner, a memory policy and cross-layer preloading.  A new
 * baseline is a new row here, never an edit of the serving loop. */
#ifndef D2_SIM_POLICY_H
#define D2_SIM_POLICY_H

#define POLICY_MAX_LEVELS 8

typedef struct policy_system {
    const char *name;
    const char *summary;
    int nested;       /* 1: MWQ nested levels (level k = units 1..k); 0: one full copy per bit-width */
    int levels;       /* K */
    int bits[POLICY_MAX_LEVELS]; /* bit-width of level k (nested: b1, b1+1, ...) */
    const char *caps; /* default capacities c_k */
    const char *bitroute, *plan, *mem;
    const char *prefetch; /* preloading predictor (prefetch.h): none, paths (EdgeMoE), oracle */
    const char *buffer;   /* what bounds its resident experts: "budget" (sim.budget) or "device" */
} policy_system;

#include "core/registry.h"
/* policy_find, _list (ends with a row whose name is NULL), _count, _at,
 * _names, _register (core/registry.h): a system registered at run time is a
 * row like these, with plug-ins that may themselves be registered rows. */
D2_REGISTRY_DECLARE(policy, policy_system)

#endif
