/* arrival.h - when requests arrive: a row per arrival process, looked up by
 * name.  "batch" is the paper's synchronous batch (all at time 0); the others
 * feed continuous batching in the serving loop (a request joins at the next
 * forward step after it arrives).  Times only: no request lengths here. */
#ifndef D2_SIM_ARRIVAL_H
#define D2_SIM_ARRIVAL_H

#include <stdint.h>
#include <gsl/gsl_rng.h>
#include "sim/simtime.h"

typedef struct arrival_type {
    const char *name;
    const char *summary;
    /* arrival time of each of n requests, ns, non-decreasing; rate in
     * requests/s (unused by batch) */
    int (*times)(double rate, gsl_rng *rng, uint32_t n, sim_ns *t_ns);
} arrival_type;

#include "core/registry.h"
/* arrival_find, _list, _count, _at, _names, _register (core/registry.h) */
D2_REGISTRY_DECLARE(arrival, arrival_type)

#endif
