/* arrival.c - arrival processes (see arrival.h).  Random ones draw from the
 * caller's seeded generator; times are rounded up to whole nanoseconds. */
#include "sim/arrival.h"
#include "core/err.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <string.h>

static int times_batch(double rate, gsl_rng *rng, uint32_t n, int64_t *t)
{
    (void)rate;
    (void)rng;
    for (uint32_t i = 0; i < n; i++) t[i] = 0;
    return D2_OK;
}

/* Poisson process: exponential gaps of mean 1/rate; the first request at 0 */
static int times_poisson(double rate, gsl_rng *rng, uint32_t n, int64_t *t)
{
    double at = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i) at += gsl_ran_exponential(rng, 1.0 / rate);
        t[i] = (int64_t)ceil(at * 1e9);
    }
    return D2_OK;
}

/* one request every 1/rate seconds from 0 */
static int times_uniform(double rate, gsl_rng *rng, uint32_t n, int64_t *t)
{
    (void)rng;
    for (uint32_t i = 0; i < n; i++) t[i] = (int64_t)ceil((double)i / rate * 1e9);
    return D2_OK;
}

static const arrival_type types[] = {
    {"batch", "every request at time 0, one synchronous batch (the paper)", times_batch},
    {"poisson", "Poisson arrivals at sim.arrival_rate requests/s; continuous batching", times_poisson},
    {"uniform", "one request every 1/sim.arrival_rate s; continuous batching", times_uniform},
};
static const arrival_type *const ptrs[] = {&types[0], &types[1], &types[2], NULL};

const arrival_type *arrival_find(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].name, name)) return &types[i];
    return NULL;
}

const arrival_type *const *arrival_list(void) { return ptrs; }
