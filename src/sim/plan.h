/* plan.h - the order of loads within one layer step (paper section 4):
 * hebf, id-order, sequential, optimal.  A planner orders the items that
 * need a load; items already resident compute first.  plan_makespan is the
 * static two-queue model the planners reason with (one I/O channel, loads
 * back to back, computes in load order); the serving loop (engine.c, step.c)
 * replays the chosen order against the full device and memory model. */
#ifndef D2_SIM_PLAN_H
#define D2_SIM_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include "sim/simtime.h"

typedef struct plan_item {
    uint32_t expert;  /* expert id */
    uint32_t unit;    /* level (nested) or copy index, 0-based */
    uint32_t tokens;  /* tokens that need this unit */
    sim_ns t_io;      /* load time, ns (0 when resident) */
    sim_ns t_comp;    /* compute time, ns */
    int load;         /* needs a load */
} plan_item;

typedef struct plan_ctx {
    int nested;              /* units of one expert must load in ascending order */
    int64_t max_states;      /* optimal: search limit */
    uint64_t fallbacks;      /* optimal: steps too large, planned by hebf instead */
    int hebf_scan;           /* hebf: always by scanning the queue heads (tests compare it with the sort) */
} plan_ctx;

typedef struct plan_type {
    const char *name;
    const char *summary;
    int serial;  /* no overlap: a load starts only when the compute unit is idle */
    /* Write a permutation of the indices of items with load = 1 into order
     * and their count to *nload; returns a D2 status (D2_ENOMEM). */
    int (*order)(plan_ctx *c, const plan_item *items, size_t n, uint32_t *order, size_t *nload);
} plan_type;

#include "core/registry.h"
/* plan_find, _list, _count, _at, _names, _register (core/registry.h) */
D2_REGISTRY_DECLARE(plan, plan_type)

/* Makespan, ns, of the static model: resident items (load = 0) compute from
 * time 0 in index order, then the loads in `order` back to back from time 0,
 * each compute after its load and after the previous compute. */
sim_ns plan_makespan(const plan_item *items, size_t n, const uint32_t *order, size_t nload);
/* Same, with the compute unit idle between each load and the next load
 * (sequential: a load starts only after the previous compute ended). */
sim_ns plan_makespan_serial(const plan_item *items, size_t n, const uint32_t *order, size_t nload);

/* Exact minimum of plan_makespan over orders that keep each expert's units
 * ascending (when nested).  *found = 1 and the count in *nload; *found = 0
 * when the search would exceed c->max_states (order untouched).  Returns a
 * D2 status (D2_ENOMEM: out of memory is an error, not "too big"). */
int plan_optimal(const plan_ctx *c, const plan_item *items, size_t n, uint32_t *order, size_t *nload, int *found);

#endif
