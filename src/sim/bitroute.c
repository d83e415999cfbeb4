/* bitroute.c - bit-width routing policies (see bitroute.h).  Every random
 * choice uses the caller's seeded GSL generator. */
#include "sim/bitroute.h"
#include "sim/plugins.h"
#include "core/err.h"
#include "core/registry.h"

#include <gsl/gsl_randist.h>
#include <stdlib.h>
#include <string.h>

void bitroute_split(const double *caps, uint32_t levels, size_t n, size_t *count)
{
    double rem[BITROUTE_MAX_LEVELS];
    size_t total = 0;
    for (uint32_t k = 0; k < levels; k++) {
        double x = caps[k] * (double)n;
        count[k] = (size_t)x;
        rem[k] = x - (double)count[k];
        total += count[k];
    }
    while (total < n) {
        uint32_t best = 0;
        for (uint32_t k = 1; k < levels; k++)
            if (rem[k] >= rem[best]) best = k;
        count[best]++;
        rem[best] = -1;
        total++;
    }
}

/* capacity: the paper caps level k at c_k * T of the T uses in a block and
 * drops overflow at random.  Our reading: the block is one layer step; a
 * random permutation of its uses gives the first round(c_1 n) level 1, the
 * next round(c_2 n) level 2, ... so the mix is exactly c_k and which use
 * gets which level is independent of its gate weight. */
static int assign_capacity(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *idx)
{
    (void)layer;
    size_t cnt[BITROUTE_MAX_LEVELS];
    bitroute_split(c->caps, c->levels, n, cnt);
    for (size_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    if (n > 1) gsl_ran_shuffle(c->rng, idx, n, sizeof *idx);
    size_t p = 0;
    for (uint32_t k = 0; k < c->levels; k++)
        for (size_t j = 0; j < cnt[k]; j++) u[idx[p++]].level = (uint8_t)k;
    return D2_OK;
}

/* order-preserving map of a float to uint32 (negative weights sort first) */
static uint32_t fkey(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return (x & 0x80000000u) ? ~x : (x | 0x80000000u);
}

/* Rearrange a[lo..hi) so that a[p] holds the value it would hold sorted,
 * smaller values before it, larger after (quickselect, median of three).
 * Keys are unique, so the result is the same as a full sort would give. */
static void select_nth(uint64_t *a, size_t lo, size_t hi, size_t p)
{
    while (hi - lo > 16) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t x = a[lo], y = a[mid], z = a[hi - 1];
        uint64_t piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = lo, j = hi - 1;
        for (;;) { /* Hoare partition */
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i >= j) break;
            uint64_t t = a[i]; a[i] = a[j]; a[j] = t;
            i++;
            j--;
        }
        if (p <= j) hi = j + 1;
        else lo = j + 1;
    }
    for (size_t i = lo + 1; i < hi; i++) { /* small range: insertion sort */
        uint64_t v = a[i];
        size_t j = i;
        while (j > lo && a[j - 1] > v) { a[j] = a[j - 1]; j--; }
        a[j] = v;
    }
}

#define RANK_BUCKETS 2048 /* histogram buckets of rank_levels, at most */
#define RANK_SMALL 32     /* below this many uses: quickselect (the histogram costs more) */

/* Uses ranked by (gate weight, index), split into consecutive groups of
 * cnt[0], cnt[1], ... (ascending weight): each group gets its level.  The
 * keys (weight, index) are unique, so the split is the one a full sort
 * gives; no full sort is made.  Large steps: one pass builds a histogram
 * of the keys over their range, which gives each group boundary's bucket;
 * one pass gathers the keys of those buckets, each boundary is then found
 * by quickselect among the few keys of its bucket, and a last pass gives
 * each use its level by comparing its key with the boundaries (no branch
 * per use).  The bucketing changes the work, never the result.  Small
 * steps: quickselect of the boundaries.  a: 2n uint64 scratch (the keys,
 * then the gathered buckets). */
static void rank_levels(const float *w, size_t ws, uint8_t *lev, size_t ls, size_t n, const size_t *cnt, uint32_t levels,
                        uint64_t *a)
{
#define W(i) (*(const float *)(const void *)((const char *)w + (i) * ws))
#define LEV(i) (lev[(i) * ls])
    if (n < RANK_SMALL) {
        for (size_t i = 0; i < n; i++) a[i] = ((uint64_t)fkey(W(i)) << 32) | i;
        size_t lo = 0;
        for (uint32_t k = 0; k < levels; k++) {
            size_t hi = lo + cnt[k];
            if (k + 1 < levels && hi > lo && hi < n) select_nth(a, lo, n, hi - 1); /* a[lo..hi): the cnt[k] smallest left */
            for (size_t i = lo; i < hi; i++) LEV((uint32_t)a[i]) = (uint8_t)k;
            lo = hi;
        }
        return;
    }
    uint32_t kmin = UINT32_MAX, kmax = 0;
#pragma GCC unroll 4
    for (size_t i = 0; i < n; i++) {
        uint32_t f = fkey(W(i));
        a[i] = ((uint64_t)f << 32) | i;
        kmin = f < kmin ? f : kmin;
        kmax = f > kmax ? f : kmax;
    }
    size_t nb = 2 * RANK_SMALL; /* about a bucket per use, at most RANK_BUCKETS: clearing and scanning them is paid per step */
    unsigned lognb = 6;
    while (nb < n && nb < RANK_BUCKETS) nb *= 2, lognb++;
    /* the least shift that brings the key range below nb buckets */
    const uint32_t span = kmax - kmin;
    const unsigned bits = span ? 32 - (unsigned)__builtin_clz(span) : 0;
    const unsigned shift = bits > lognb ? bits - lognb : 0;
    uint32_t hist[RANK_BUCKETS];
    memset(hist, 0, nb * sizeof *hist);
#pragma GCC unroll 4
    for (size_t i = 0; i < n; i++) hist[((uint32_t)(a[i] >> 32) - kmin) >> shift]++;
    /* Boundary k: the largest key of groups 0..k, i.e. rank c_k - 1 with
     * c_k = cnt[0] + ... + cnt[k]; a use's level is the number of
     * boundaries below its key.  thr[k]: the least key above boundary k (0:
     * every key, c_k = 0; UINT64_MAX: none, c_k = n, as no key is
     * UINT64_MAX: its index would be 2^32 - 1). */
    uint64_t thr[BITROUTE_MAX_LEVELS];
    uint32_t bkt[BITROUTE_MAX_LEVELS]; /* boundary k's bucket (UINT32_MAX: none to find) */
    size_t rin[BITROUTE_MAX_LEVELS];   /* and its rank among the bucket's keys */
    static _Thread_local uint8_t slot[RANK_BUCKETS]; /* bucket -> 1 + its place among the boundary buckets; 0 */
    uint32_t sb[BITROUTE_MAX_LEVELS];  /* the boundary buckets, ascending */
    size_t pos[BITROUTE_MAX_LEVELS + 1];
    uint32_t ns = 0;
    size_t c = 0, below = 0; /* below: the uses in buckets before b (the boundaries' ranks only grow) */
    uint32_t b = 0;
    for (uint32_t k = 0; k + 1 < levels; k++) {
        c += cnt[k];
        bkt[k] = UINT32_MAX;
        thr[k] = c == 0 ? 0 : UINT64_MAX;
        if (c == 0 || c >= n) continue;
        const size_t r = c - 1;
        while (below + hist[b] <= r) below += hist[b++];
        bkt[k] = b;
        rin[k] = r - below;
        if (!ns || sb[ns - 1] != b) {
            sb[ns++] = b;
            slot[b] = (uint8_t)ns;
        }
    }
    /* the keys of the boundary buckets gathered, each bucket's together,
     * into g in one pass without a branch per use: every key is written
     * (the others to a part nobody reads), then select among each bucket's */
    uint64_t *g = a + n;
    pos[0] = 0; /* the keys of other buckets */
    size_t at = n;
    for (uint32_t j = ns; j-- > 0;) {
        at -= hist[sb[j]];
        pos[j + 1] = at;
    }
    size_t first[BITROUTE_MAX_LEVELS]; /* where bucket sb[j]'s keys begin in g */
    for (uint32_t j = 0; j < ns; j++) first[j] = pos[j + 1];
    if (ns) {
#pragma GCC unroll 4
        for (size_t i = 0; i < n; i++) {
            const uint64_t t = a[i];
            const uint32_t s = slot[((uint32_t)(t >> 32) - kmin) >> shift];
            g[pos[s]++] = t;
        }
        for (uint32_t j = 0; j < ns; j++) slot[sb[j]] = 0;
    }
    for (uint32_t k = 0, j = 0; k + 1 < levels; k++) {
        if (bkt[k] == UINT32_MAX) continue;
        while (sb[j] != bkt[k]) j++;
        const size_t lo = first[j], hi = lo + hist[bkt[k]];
        select_nth(g, lo, hi, lo + rin[k]);
        thr[k] = g[lo + rin[k]] + 1;
    }
    /* the keys are in index order (a[i] = key of use i) */
    if (levels == 3) { /* the common three levels: the two thresholds in registers */
        const uint64_t t0 = thr[0], t1 = thr[1];
#pragma GCC unroll 4
        for (size_t i = 0; i < n; i++) LEV(i) = (uint8_t)((uint32_t)(a[i] >= t0) + (uint32_t)(a[i] >= t1));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l = 0;
        for (uint32_t k = 0; k + 1 < levels; k++) l += (uint32_t)(a[i] >= thr[k]);
        LEV(i) = (uint8_t)l;
    }
#undef W
#undef LEV
}

/* gate: the same c_k mix as capacity, but by gate-weight rank within the
 * layer step: the lowest-weighted c_1 share gets level 1, ..., the highest
 * c_K share the top level ("more important tokens get more bits"). */
static int assign_gate(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *idx)
{
    (void)layer;
    size_t cnt[BITROUTE_MAX_LEVELS];
    bitroute_split(c->caps, c->levels, n, cnt);
    rank_levels(&u->weight, sizeof *u, &u->level, sizeof *u, n, cnt, c->levels,
                (uint64_t *)(void *)idx); /* scratch: 6n uint32, malloc(ed), so 8-byte aligned */
    return D2_OK;
}

static int levels_gate(const bitroute_cfg *c, uint32_t layer, const uint16_t *expert, const float *weight, const uint8_t *bits,
                       size_t n, uint8_t *level, uint32_t *scratch)
{
    (void)layer;
    (void)expert;
    (void)bits;
    size_t cnt[BITROUTE_MAX_LEVELS];
    bitroute_split(c->caps, c->levels, n, cnt);
    rank_levels(weight, sizeof *weight, level, 1, n, cnt, c->levels, (uint64_t *)(void *)scratch);
    return D2_OK;
}

static int assign_static(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *idx)
{
    (void)idx;
    for (size_t i = 0; i < n; i++) u[i].level = c->static_level[layer * c->experts + u[i].expert];
    return D2_OK;
}

static int levels_static(const bitroute_cfg *c, uint32_t layer, uint8_t *level)
{
    memcpy(level, c->static_level + (size_t)layer * c->experts, c->experts);
    return D2_OK;
}

/* uniform:B's level */
static int uniform_level(const bitroute_cfg *c, uint8_t *level)
{
    for (uint32_t k = 0; k < c->levels; k++)
        if (c->level_bits[k] == c->arg_bits) {
            *level = (uint8_t)k;
            return D2_OK;
        }
    D2_ERROR(D2_EINVAL, "bitroute uniform:%d: the storage format has no %d-bit level", c->arg_bits, c->arg_bits);
}

static int assign_uniform(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *idx)
{
    (void)layer;
    (void)idx;
    uint8_t k;
    D2_TRY(uniform_level(c, &k));
    for (size_t i = 0; i < n; i++) u[i].level = k;
    return D2_OK;
}

static int levels_uniform(const bitroute_cfg *c, uint32_t layer, uint8_t *level)
{
    (void)layer;
    uint8_t k;
    D2_TRY(uniform_level(c, &k));
    memset(level, k, c->experts);
    return D2_OK;
}

static int assign_trace(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *idx)
{
    (void)idx;
    for (size_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < c->levels && c->level_bits[k] != u[i].bits) k++;
        if (k == c->levels)
            D2_ERROR(D2_EINVAL, "bitroute trace: layer %u: recorded bit-width %u is not a level of the storage format",
                     layer, (unsigned)u[i].bits);
        u[i].level = (uint8_t)k;
    }
    return D2_OK;
}

static int preload_static(const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level)
{
    *level = c->static_level[layer * c->experts + expert];
    return D2_OK;
}

static const bitroute_type types[] = {
    {.name = "capacity", .summary = "level drawn at random with the capacities c_k (exact mix per layer step)",
     .is_router = 1, .assign = assign_capacity},
    {.name = "gate", .summary = "gate-weight rank in the layer step: higher weight, more bits, same c_k mix",
     .is_router = 1, .pure = 1, .assign = assign_gate, .assign_levels = levels_gate},
    {.name = "static", .summary = "one level per expert, fixed offline from profiling (EdgeMoE)",
     .needs_profile = 1, .assign = assign_static, .expert_levels = levels_static, .preload_level = preload_static},
    {.name = "uniform", .summary = "uniform:B -- every use at B bits", .has_arg = 1, .pure = 1, .assign = assign_uniform,
     .expert_levels = levels_uniform},
    {.name = "trace", .summary = "bit-widths recorded in the trace", .needs_bits = 1, .pure = 1, .assign = assign_trace},
    /* issue 15 (src/sim/br_hobbit.c) */
    {.name = "hobbit",
     .summary = "separate copies: high precision if resident or any use's gate >= 0.3, else the low copy on a miss (HOBBIT)",
     .assign = hobbit_assign, .preload_level = hobbit_preload_level},
    /* issue 15's systems (hooks in slicemoe.c) */
    {.name = "slice", .summary = "SliceMoE: the highest level whose slices are cached, raised (most gate weight first) while the recent miss rate stays within sim.miss_target",
     .state_size = sizeof(slice_route_state), .assign = slice_assign},
    {.name = NULL},
};
D2_REGISTRY(bitroute_type, bitroute_type, types)

const bitroute_type *bitroute_find(const char *spec, int *arg)
{
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    char name[64];
    if (len >= sizeof name) return NULL;
    memcpy(name, spec, len);
    name[len] = 0;
    const bitroute_type *t = bitroute_type_find(name);
    if (!t || t->has_arg != (colon != NULL)) return NULL;
    if (colon) {
        char *end;
        long b = strtol(colon + 1, &end, 10);
        if (*end || b < 1 || b > 16 || end == colon + 1) return NULL;
        *arg = (int)b;
    }
    return t;
}

int bitroute_preload_level(const bitroute_type *t, const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level)
{
    if (t->preload_level) return t->preload_level(c, layer, expert, level);
    uint32_t lev = 0;
    if (!c->nested)
        for (uint32_t k = 1; k < c->levels; k++)
            if (c->caps[k] > c->caps[lev]) lev = k;
    *level = lev;
    return D2_OK;
}

static _Thread_local const double *mass_base;
static int by_mass(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (mass_base[x] != mass_base[y]) return mass_base[x] < mass_base[y] ? -1 : 1;
    return x < y ? -1 : (x > y);
}

int bitroute_static_levels(const double *mass, uint32_t layers, uint32_t experts,
                           const double *caps, uint32_t levels, uint8_t *out)
{
    uint32_t *idx = malloc(experts * sizeof *idx);
    size_t cnt[BITROUTE_MAX_LEVELS];
    if (!idx) D2_ERROR(D2_ENOMEM, "bitroute: out of memory");
    bitroute_split(caps, levels, experts, cnt);
    for (uint32_t l = 0; l < layers; l++) {
        for (uint32_t e = 0; e < experts; e++) idx[e] = e;
        mass_base = mass + (size_t)l * experts;
        qsort(idx, experts, sizeof *idx, by_mass);
        size_t p = 0;
        for (uint32_t k = 0; k < levels; k++)
            for (size_t j = 0; j < cnt[k]; j++) out[(size_t)l * experts + idx[p++]] = (uint8_t)k;
    }
    free(idx);
    return D2_OK;
}
