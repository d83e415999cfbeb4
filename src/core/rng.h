/* rng.h - the one way to get randomness: a seeded GSL generator.
 * Every random choice in d2moe goes through a gsl_rng made here, so the same
 * seed gives the same bytes.  Streams for independent parts (routing, bit
 * choice, ...) are derived from (seed, stream id) so adding draws in one part
 * does not shift another's. */
#ifndef D2_CORE_RNG_H
#define D2_CORE_RNG_H

#include <stdint.h>
#include <gsl/gsl_rng.h>

#define D2_RNG_NAME "mt19937" /* stored with results */

/* New generator for (seed, stream); NULL only when out of memory. */
gsl_rng *rng_new(uint64_t seed, uint64_t stream);

#endif
