/* arrival.c - arrival processes (see arrival.h).  Random ones draw from the
 * caller's seeded generator; times are rounded up to whole nanoseconds. */
#include "sim/arrival.h"
#include "core/err.h"
#include "core/registry.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

static int times_batch(double rate, gsl_rng *rng, uint32_t n, sim_ns *t)
{
    (void)rate;
    (void)rng;
    for (uint32_t i = 0; i < n; i++) t[i] = 0;
    return D2_OK;
}

/* Poisson process: exponential gaps of mean 1/rate; the first request at 0 */
static int times_poisson(double rate, gsl_rng *rng, uint32_t n, sim_ns *t)
{
    double at = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i) at += gsl_ran_exponential(rng, 1.0 / rate);
        t[i] = (sim_ns)ceil(at * 1e9);
    }
    return D2_OK;
}

/* one request every 1/rate seconds from 0 */
static int times_uniform(double rate, gsl_rng *rng, uint32_t n, sim_ns *t)
{
    (void)rng;
    for (uint32_t i = 0; i < n; i++) t[i] = (sim_ns)ceil((double)i / rate * 1e9);
    return D2_OK;
}

static const arrival_type types[] = {
    {.name = "batch", .summary = "every request at time 0, one synchronous batch (the paper)", .times = times_batch},
    {.name = "poisson", .summary = "Poisson arrivals at sim.arrival_rate requests/s; continuous batching", .times = times_poisson},
    {.name = "uniform", .summary = "one request every 1/sim.arrival_rate s; continuous batching", .times = times_uniform},
    {.name = NULL},
};
D2_REGISTRY(arrival, arrival_type, types)
