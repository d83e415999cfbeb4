/* rng.c - seeded GSL generators with independent per-stream seeds. */
#include "core/rng.h"

#include <xxhash.h>

gsl_rng *rng_new(uint64_t seed, uint64_t stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return NULL;
    uint64_t in[2] = {seed, stream};
    /* mix (seed, stream) so nearby seeds give unrelated streams */
    uint64_t s = XXH3_64bits(in, sizeof in);
    gsl_rng_set(r, (unsigned long)(s & 0xffffffffUL) ? (unsigned long)(s & 0xffffffffUL) : 1UL);
    return r;
}
