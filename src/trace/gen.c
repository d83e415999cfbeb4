/* gen.c - synthetic routing: model construction from parameters or a fit,
 * per-request streams, writing and statistics.  Streams: (seed, 0) builds
 * the expert rankings, (seed, 2) fits gate weights, (seed, 2^32 + req) drives
 * request req, (seed ^ pilot mark, ...) drives fitting pilots, so adding
 * requests never changes earlier ones.  A request's draws (generator
 * version 2) come from a xoshiro256** stream whose 256-bit state is drawn
 * from the GSL generator of (seed, 2^32 + req): popularity by Walker alias
 * tables, gate weights as K Marsaglia-Tsang gammas (normals by the polar
 * method) normalised and sorted -- the same distributions as version 1's
 * gsl_ran_discrete and gsl_ran_dirichlet, several times faster, and a
 * different (but equally repeatable) stream. */
#include "trace/gen.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/rng.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const param_def gen_defs[] = {
    {"model", PARAM_STRING, offsetof(gen_params, model), "", 0, 0, "", "model profile giving the shape (experiments/models)"},
    {"layers", PARAM_INT, offsetof(gen_params, layers), "0", 0, 65535, "layers", "MoE layers; 0 = from the model"},
    {"experts", PARAM_INT, offsetof(gen_params, experts), "0", 0, 65535, "experts", "routed experts per layer; 0 = from the model"},
    {"top_k", PARAM_INT, offsetof(gen_params, top_k), "0", 0, TRACE_K_MAX, "experts", "experts per token; 0 = from the model"},
    {"requests", PARAM_INT, offsetof(gen_params, requests), "4", 1, 1000000, "requests", "requests in a generated file"},
    {"prefill", PARAM_INT, offsetof(gen_params, prefill), "128", 0, 1000000, "tokens", "prompt tokens per request (paper s.5: input 128)"},
    {"decode", PARAM_INT, offsetof(gen_params, decode), "128", 0, 1000000, "tokens", "generated tokens per request (paper s.5: output 128)"},
    {"skew", PARAM_DOUBLE, offsetof(gen_params, skew), "0.6", 0, 8, "", "Zipf exponent of expert popularity, p(rank r) ~ (r+1)^-skew"},
    {"repeat", PARAM_DOUBLE, offsetof(gen_params, repeat), "0.05", 0, 0.99, "probability", "top-1 expert kept from the previous token (beyond chance)"},
    {"xlayer", PARAM_DOUBLE, offsetof(gen_params, xlayer), "0.1", 0, 1, "probability", "top-1 follows the previous layer's top-1 (same popularity rank)"},
    {"gate_alpha", PARAM_DOUBLE, offsetof(gen_params, gate_alpha), "1", 0.01, 1000, "", "Dirichlet concentration of gate weights (small = peaked top-1)"},
    {"tasks", PARAM_INT, offsetof(gen_params, tasks), "1", 1, 64, "tasks", "tasks in the per-request mixture (a request draws one uniformly)"},
    {"task_share", PARAM_DOUBLE, offsetof(gen_params, task_share), "0.5", 0, 1, "fraction", "fraction of ranks a task keeps from the common ranking"},
};
const param_table gen_params_table = {"gen", "gen", gen_defs, sizeof gen_defs / sizeof gen_defs[0]};

#define GEN_VERSION 2            /* stream version, part of the source id: 2 = xoshiro256** + alias + own gamma */
#define GEN_REJECT_TRIES 64      /* draws before falling back to rank order for non-top-1 slots */
/* Fitting pilots: GEN_PILOT_REQUESTS requests long enough that every layer
 * gets max(GEN_PILOT_SLOTS, GEN_PILOT_SLOTS_PER_EXPERT x experts used) expert slots, so
 * a pilot's sampling noise on a share is about 1% (Mixtral: 8192 tokens). */
#define GEN_PILOT_REQUESTS 16
#define GEN_PILOT_SLOTS 32768
#define GEN_PILOT_SLOTS_PER_EXPERT 256
/* Only the experts the target uses count (the others get popularity 0 and
 * are never drawn), and a pilot round draws at most
 * max(GEN_PILOT_DRAWS, GEN_PILOT_DRAWS_PER_RECORD x the target's records)
 * layer routes (2^19: what Mixtral's 32 layers x 16 x 1024 tokens draw, the
 * most of any shipped model): the fit costs time proportional to the data,
 * not to the header's layers x experts (2 x 65,535 took 23 s). */
#define GEN_PILOT_DRAWS (1u << 19)
#define GEN_PILOT_DRAWS_PER_RECORD 64
#define GEN_FIT_ROUNDS 5

struct gen_model {
    gen_params p;
    uint64_t seed;
    uint32_t L, E, K, T;
    double *pop;                 /* [T][L][E] popularity */
    uint32_t *thr;               /* [T][L][E] alias table: keep slot i when the low 32 bits < thr[i] */
    uint16_t *alias;             /* [T][L][E] alias table: else take alias[i] */
    uint16_t *by_rank;           /* [T][L][E] expert of rank r */
    uint16_t *rank_of;           /* [T][L][E] rank of expert e */
    double *repeat;              /* [L] */
    int fitted;
    uint64_t fit_hash;           /* hash of fitted arrays, 0 when not fitted */
};

/* xoshiro256** (Blackman and Vigna, 2018), state drawn from a GSL stream */
typedef struct fast_rng {
    uint64_t x[4];
    double spare;                /* second normal of the polar method */
    int has_spare;
} fast_rng;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
static inline uint64_t fr_next(fast_rng *r)
{
    uint64_t *s = r->x, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}
static inline double fr_uniform(fast_rng *r) { return (double)(fr_next(r) >> 11) * 0x1.0p-53; } /* [0, 1) */
static inline uint32_t fr_below(fast_rng *r, uint32_t n) { return (uint32_t)(((fr_next(r) >> 32) * n) >> 32); }

/* Seed from the GSL generator of (seed, stream) (src/core/rng.h). */
static int fr_seed(fast_rng *r, uint64_t seed, uint64_t stream)
{
    gsl_rng *g = rng_new(seed, stream);
    if (!g) D2_ERROR(D2_ENOMEM, "out of memory");
    uint64_t any = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t hi = gsl_rng_get(g) & 0xffffffffUL, lo = gsl_rng_get(g) & 0xffffffffUL;
        r->x[i] = hi << 32 | lo;
        any |= r->x[i];
    }
    if (!any) r->x[0] = 1; /* the all-zero state is the one xoshiro cannot leave */
    r->has_spare = 0;
    gsl_rng_free(g);
    return D2_OK;
}

static inline __attribute__((always_inline)) double fr_normal(fast_rng *r)
{
    if (r->has_spare) { r->has_spare = 0; return r->spare; }
    double u, v, q;
    do {
        u = 2 * fr_uniform(r) - 1;
        v = 2 * fr_uniform(r) - 1;
        q = u * u + v * v;
    } while (q >= 1 || q == 0);
    double f = sqrt(-2 * log(q) / q);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

/* Marsaglia and Tsang's method for Gamma(a, 1), a >= 1, with d = a - 1/3
 * and c = 1 / sqrt(9 d) */
static inline __attribute__((always_inline)) double fr_gamma_mt(fast_rng *r, double d, double c)
{
    for (;;) {
        double x, v;
        do { x = fr_normal(r); v = 1 + c * x; } while (v <= 0);
        v = v * v * v;
        double u = fr_uniform(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

/* Gamma(a, 1): Marsaglia and Tsang (2000); a < 1 by Gamma(a + 1) U^(1/a);
 * a = 1 is an exponential. */
static double fr_gamma(fast_rng *r, double a)
{
    if (a == 1) return -log1p(-fr_uniform(r));
    if (a < 1) {
        double u;
        do u = fr_uniform(r); while (u == 0);
        return fr_gamma(r, a + 1) * pow(u, 1 / a);
    }
    const double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    return fr_gamma_mt(r, d, c);
}

/* K gate weights: a Dirichlet(a, ..., a) vector sorted descending.
 * Inlined into the stream's step with the generator state in a local
 * copy: the state then stays in registers across the draws (the a <= 1
 * path goes through a second copy, so the first never escapes). */
static inline __attribute__((always_inline)) void fr_gate(fast_rng *r, uint32_t K, double a, double *th)
{
    double sum = 0;
    if (a > 1) { /* fr_gamma's Marsaglia-Tsang constants, computed once for the K draws */
        const double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
        for (uint32_t j = 0; j < K; j++) sum += th[j] = fr_gamma_mt(r, d, c);
    } else {
        fast_rng t = *r;
        for (uint32_t j = 0; j < K; j++) sum += th[j] = fr_gamma(&t, a);
        *r = t;
    }
    for (uint32_t j = 0; j < K; j++) th[j] /= sum;
    for (uint32_t i = 1; i < K; i++) { /* insertion sort: K is small */
        double x = th[i];
        uint32_t b = i;
        for (; b > 0 && th[b - 1] < x; b--) th[b] = th[b - 1];
        th[b] = x;
    }
}

struct gen_stream {
    const gen_model *m;
    uint32_t req, task, pos;     /* pos = UINT32_MAX before the first token */
    fast_rng r;
    uint16_t *cur;               /* [L][K] */
    float *w;                    /* [L][K] */
    uint16_t *prev1;             /* [L] top-1 of the previous token */
};

int gen_params_resolve(gen_params *p)
{
    if (p->model[0] && (!p->layers || !p->experts || !p->top_k)) {
        model m;
        D2_TRY(model_load(&m, p->model));
        if (!p->layers) p->layers = model_moe_layers(&m);
        if (!p->experts) p->experts = m.experts;
        if (!p->top_k) p->top_k = m.top_k;
    }
    if (!p->layers || !p->experts || !p->top_k)
        D2_ERROR(D2_EINVAL, "gen: shape unknown: give gen.model or gen.layers, gen.experts and gen.top_k");
    if (p->top_k > p->experts) D2_ERROR(D2_EINVAL, "gen: top_k %lld > experts %lld", (long long)p->top_k, (long long)p->experts);
    /* before the model's per-cell tables are allocated (the writer would
     * refuse the shape only after that) */
    if ((uint64_t)p->layers * (uint64_t)p->experts > TRACE_CELLS_MAX)
        D2_ERROR(D2_EINVAL, "gen: %lld layers x %lld experts: more than %u (layers x experts) cells, the largest a model profile allows",
                 (long long)p->layers, (long long)p->experts, TRACE_CELLS_MAX);
    if (p->prefill + p->decode < 1) D2_ERROR(D2_EINVAL, "gen: prefill + decode must be at least 1 token");
    if (p->prefill + p->decode > UINT32_MAX / 2) D2_ERROR(D2_EINVAL, "gen: prefill + decode too large");
    return D2_OK;
}

int gen_params_blame(int rc, const param_origin *o)
{
    if (rc == D2_ENOTFOUND && o) { /* the model's profile is missing: say whose `model =` named it */
        char where[PARAM_PATH_MAX + 64];
        param_origin_where(&gen_params_table, o, "model", where, sizeof where);
        d2_err_prefix("%s: ", where);
    }
    return rc;
}

int gen_preset_resolve(const char *model_name, gen_params *p)
{
    param_origin o;
    D2_TRY(gen_preset_read(model_name, p, &o));
    if (p->model[0]) return gen_params_blame(gen_params_resolve(p), &o); /* the preset's line of `model` */
    snprintf(p->model, sizeof p->model, "%s", model_name);
    int rc = gen_params_resolve(p);
    if (rc == D2_ENOTFOUND) d2_err_prefix("the model's name (preset %s names no model): ", o.path);
    return rc;
}

int gen_preset_path(const char *name, char *out, size_t n)
{
    if (strchr(name, '/') || (strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".ini"))) {
        if ((size_t)snprintf(out, n, "%s", name) >= n) D2_ERROR(D2_EINVAL, "%s: path too long", name);
        return D2_OK;
    }
    const char *dir = getenv("D2_PRESET_DIR");
    int w = dir ? snprintf(out, n, "%s/%s.ini", dir, name) : snprintf(out, n, "%s/traces/presets/%s.ini", D2_SRCDIR, name);
    if (w < 0 || (size_t)w >= n) D2_ERROR(D2_EINVAL, "generator preset \"%s\": path too long", name);
    return D2_OK;
}

int gen_preset_load(const char *name, gen_params *p) { return gen_preset_read(name, p, NULL); }

int gen_preset_read(const char *name, gen_params *p, param_origin *o)
{
    char path[1024];
    param_defaults(&gen_params_table, p);
    D2_TRY(gen_preset_path(name, path, sizeof path));
    if (!strchr(name, '/') && !(strlen(name) > 4 && !strcmp(name + strlen(name) - 4, ".ini"))) {
        /* not opened here: fopen of a FIFO there waited for a writer
         * (param_load_ini refuses anything but a regular file) */
        if (access(path, F_OK) != 0) D2_ERROR(D2_ENOTFOUND, "generator preset \"%s\": %s not found", name, path);
    }
    return param_load_ini(&gen_params_table, p, path, o);
}

static const double *sort_vals;
static int cmp_rank(const void *a, const void *b)
{
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    double vx = sort_vals[x], vy = sort_vals[y];
    if (vx != vy) return vx > vy ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Rebuild the alias table and ranking of (task, layer) from pop. */
static int layer_rebuild(gen_model *m, uint32_t t, uint32_t l)
{
    size_t off = ((size_t)t * m->L + l) * m->E;
    double *pp = m->pop + off, sum = 0;
    for (uint32_t e = 0; e < m->E; e++) sum += pp[e];
    /* a layer with no activations at all (an empty table row) is read as uniform */
    if (!(sum > 0)) for (uint32_t e = 0; e < m->E; e++) pp[e] = 1.0;
    /* Walker alias table (Vose's construction) */
    const uint32_t E = m->E;
    double *q = malloc(E * sizeof *q);
    uint16_t *small = malloc(E * sizeof *small), *large = malloc(E * sizeof *large);
    if (!q || !small || !large) { free(q); free(small); free(large); D2_ERROR(D2_ENOMEM, "out of memory"); }
    double tot = 0;
    for (uint32_t e = 0; e < E; e++) tot += pp[e];
    uint32_t ns = 0, nl = 0;
    for (uint32_t e = 0; e < E; e++) {
        q[e] = pp[e] * E / tot;
        if (q[e] < 1) small[ns++] = (uint16_t)e; else large[nl++] = (uint16_t)e;
    }
    uint32_t *thr = m->thr + off;
    uint16_t *al = m->alias + off;
    while (ns && nl) {
        uint16_t a = small[--ns], g = large[nl - 1];
        thr[a] = (uint32_t)(q[a] * 4294967296.0);
        al[a] = g;
        q[g] -= 1 - q[a];
        if (q[g] < 1) { nl--; small[ns++] = g; }
    }
    while (nl) { uint16_t g = large[--nl]; thr[g] = UINT32_MAX; al[g] = g; }
    while (ns) { uint16_t a = small[--ns]; thr[a] = UINT32_MAX; al[a] = a; } /* rounding leftovers */
    free(q); free(small); free(large);
    uint16_t *br = m->by_rank + off, *ro = m->rank_of + off;
    for (uint32_t e = 0; e < m->E; e++) br[e] = (uint16_t)e;
    sort_vals = pp;
    qsort(br, m->E, sizeof *br, cmp_rank);
    for (uint32_t r = 0; r < m->E; r++) ro[br[r]] = (uint16_t)r;
    return D2_OK;
}

void gen_model_free(gen_model *m)
{
    if (!m) return;
    free(m->thr); free(m->alias); free(m->pop); free(m->by_rank); free(m->rank_of); free(m->repeat);
    free(m);
}

int gen_model_new(const gen_params *pin, uint64_t seed, gen_model **out)
{
    *out = NULL;
    gen_params p = *pin;
    D2_TRY(gen_params_resolve(&p));
    gen_model *m = calloc(1, sizeof *m);
    if (!m) D2_ERROR(D2_ENOMEM, "out of memory");
    m->p = p;
    m->seed = seed;
    m->L = (uint32_t)p.layers; m->E = (uint32_t)p.experts; m->K = (uint32_t)p.top_k; m->T = (uint32_t)p.tasks;
    size_t TLE = (size_t)m->T * m->L * m->E;
    m->pop = calloc(TLE, sizeof *m->pop);
    m->by_rank = calloc(TLE, sizeof *m->by_rank);
    m->rank_of = calloc(TLE, sizeof *m->rank_of);
    m->thr = calloc(TLE, sizeof *m->thr);
    m->alias = calloc(TLE, sizeof *m->alias);
    m->repeat = calloc(m->L, sizeof *m->repeat);
    gsl_rng *r = rng_new(seed, 0);
    uint16_t *perm = malloc(m->E * sizeof *perm), *sub = malloc(m->E * sizeof *sub);
    if (!m->pop || !m->by_rank || !m->rank_of || !m->thr || !m->alias || !m->repeat || !r || !perm || !sub) {
        gen_model_free(m); if (r) gsl_rng_free(r); free(perm); free(sub);
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    int rc = D2_OK;
    for (uint32_t l = 0; l < m->L && !rc; l++) {
        m->repeat[l] = p.repeat;
        /* the common ranking of layer l: a seeded random permutation */
        for (uint32_t e = 0; e < m->E; e++) perm[e] = (uint16_t)e;
        gsl_ran_shuffle(r, perm, m->E, sizeof *perm);
        for (uint32_t t = 0; t < m->T && !rc; t++) {
            uint16_t *rk = m->by_rank + ((size_t)t * m->L + l) * m->E; /* scratch for the task ranking */
            memcpy(rk, perm, m->E * sizeof *rk);
            if (t > 0) {
                /* a task re-deals (1 - task_share) of the ranks among themselves */
                uint32_t n = (uint32_t)llround((1 - p.task_share) * m->E);
                for (uint32_t e = 0; e < m->E; e++) sub[e] = (uint16_t)e;
                gsl_ran_shuffle(r, sub, m->E, sizeof *sub);
                /* experts at the random ranks sub[0..n) are shuffled among those ranks */
                uint16_t *ex = malloc((n ? n : 1) * sizeof *ex);
                if (!ex) { rc = D2_ENOMEM; d2_err_set("out of memory"); break; }
                for (uint32_t i = 0; i < n; i++) ex[i] = rk[sub[i]];
                gsl_ran_shuffle(r, ex, n, sizeof *ex);
                for (uint32_t i = 0; i < n; i++) rk[sub[i]] = ex[i];
                free(ex);
            }
            double *pp = m->pop + ((size_t)t * m->L + l) * m->E;
            for (uint32_t rank = 0; rank < m->E; rank++) pp[rk[rank]] = pow(rank + 1.0, -p.skew);
            rc = layer_rebuild(m, t, l);
        }
    }
    gsl_rng_free(r);
    free(perm);
    free(sub);
    if (rc) { gen_model_free(m); return rc; }
    *out = m;
    return D2_OK;
}

const gen_params *gen_model_params(const gen_model *m) { return &m->p; }

int gen_model_set_layer(gen_model *m, uint32_t l, const double *share, double repeat)
{
    if (l >= m->L) D2_ERROR(D2_EINVAL, "gen: layer %u out of range", l);
    for (uint32_t e = 0; e < m->E; e++)
        if (!isfinite(share[e]) || share[e] < 0) D2_ERROR(D2_EINVAL, "gen: layer %u expert %u: share %g invalid", l, e, share[e]);
    /* a fitted layer has one popularity for every task (tasks then differ only by name) */
    for (uint32_t t = 0; t < m->T; t++) {
        memcpy(m->pop + ((size_t)t * m->L + l) * m->E, share, m->E * sizeof *share);
        D2_TRY(layer_rebuild(m, t, l));
    }
    if (!isnan(repeat)) m->repeat[l] = repeat < 0 ? 0 : repeat > 0.99 ? 0.99 : repeat;
    m->fitted = 1;
    return D2_OK;
}

/* ----------------------------------------------------------------- streams */

void gen_stream_free(gen_stream *s)
{
    if (!s) return;
    free(s->cur); free(s->w); free(s->prev1);
    free(s);
}

static uint64_t stream_id(uint32_t req) { return ((uint64_t)1 << 32) | req; }

int gen_stream_reset(gen_stream *s)
{
    D2_TRY(fr_seed(&s->r, s->m->seed, stream_id(s->req)));
    s->task = s->m->T > 1 ? fr_below(&s->r, s->m->T) : 0;
    s->pos = UINT32_MAX;
    return D2_OK;
}

int gen_stream_new(const gen_model *m, uint32_t req, gen_stream **out)
{
    *out = NULL;
    gen_stream *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    s->m = m;
    s->req = req;
    s->cur = calloc((size_t)m->L * m->K, sizeof *s->cur);
    s->w = calloc((size_t)m->L * m->K, sizeof *s->w);
    s->prev1 = calloc(m->L, sizeof *s->prev1);
    if (!s->cur || !s->w || !s->prev1) { gen_stream_free(s); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = gen_stream_reset(s);
    if (rc) { gen_stream_free(s); return rc; }
    *out = s;
    return D2_OK;
}

static inline uint16_t alias_draw(fast_rng *r, const uint32_t *thr, const uint16_t *al, uint32_t E)
{
    uint64_t x = fr_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * E) >> 32);
    return (uint32_t)x < thr[i] ? (uint16_t)i : al[i];
}

/* The second expert of a top-2 route: alias draws until one differs from
 * the first (at most GEN_REJECT_TRIES), else the most popular other one --
 * what the general loop below does for j = 1, without its inner loops. */
static inline __attribute__((always_inline)) uint16_t second_of_two(fast_rng *r, const uint32_t *thr, const uint16_t *al,
                                                                    const uint16_t *by_rank, uint32_t E, uint16_t top)
{
    for (int tries = 0; tries < GEN_REJECT_TRIES; tries++) {
        uint16_t e = alias_draw(r, thr, al, E);
        if (e != top) return e;
    }
    for (uint32_t rank = 0; rank < E; rank++)
        if (by_rank[rank] != top) return by_rank[rank];
    return 0; /* E == 1: top_k <= experts makes it unreachable */
}

uint32_t gen_stream_next(gen_stream *s)
{
    const gen_model *m = s->m;
    const uint32_t L = m->L, E = m->E, K = m->K, t = s->task;
    uint32_t pos = s->pos == UINT32_MAX ? 0 : s->pos + 1;
    fast_rng rg = s->r; /* in registers for the token (fr_gate) */
    const double a = m->p.gate_alpha;
    /* fr_gamma's Marsaglia-Tsang constants for a > 1, once per token */
    const double gd = a - 1.0 / 3, gc = a > 1 ? 1 / sqrt(9 * gd) : 0;
    for (uint32_t l = 0; l < L; l++) {
        size_t off = ((size_t)t * L + l) * E;
        const uint32_t *thr = m->thr + off;
        const uint16_t *al = m->alias + off;
        uint16_t *set = s->cur + (size_t)l * K;
        /* two uniforms always drawn, so the stream's consumption does not depend on the branch */
        double u = fr_uniform(&rg), v = fr_uniform(&rg);
        uint16_t top;
        if (pos > 0 && u < m->repeat[l]) {
            top = s->prev1[l];
        } else if (l > 0 && v < m->p.xlayer) {
            /* cross-layer: the expert of the same popularity rank as the previous layer's top-1 */
            uint16_t pa = s->cur[(size_t)(l - 1) * K];
            uint16_t rank = m->rank_of[((size_t)t * L + l - 1) * E + pa];
            top = m->by_rank[off + rank];
        } else {
            top = alias_draw(&rg, thr, al, E);
        }
        set[0] = top;
        float *w = s->w + (size_t)l * K;
        if (K == 2) {
            /* the common top-2: the same draws and arithmetic as the
             * general path below (sum = g0 + g1, each divided by it, sorted
             * descending), with the two values in registers */
            set[1] = second_of_two(&rg, thr, al, m->by_rank + off, E, top);
            double g0, g1;
            if (a > 1) {
                g0 = fr_gamma_mt(&rg, gd, gc);
                g1 = fr_gamma_mt(&rg, gd, gc);
            } else {
                fast_rng tr = rg;
                g0 = fr_gamma(&tr, a);
                g1 = fr_gamma(&tr, a);
                rg = tr;
            }
            double sum = g0 + g1, t0 = g0 / sum, t1 = g1 / sum;
            if (t0 < t1) { double x = t0; t0 = t1; t1 = x; }
            w[0] = (float)t0;
            w[1] = (float)t1;
            if (w[1] > w[0]) w[1] = w[0]; /* float rounding must not break the order */
            s->prev1[l] = top;
            continue;
        }
        for (uint32_t j = 1; j < K; j++) {
            uint16_t e = 0;
            int found = 0;
            for (int tries = 0; tries < GEN_REJECT_TRIES && !found; tries++) {
                e = alias_draw(&rg, thr, al, E);
                found = 1;
                for (uint32_t i = 0; i < j; i++)
                    if (set[i] == e) { found = 0; break; }
            }
            for (uint32_t rank = 0; rank < E && !found; rank++) {
                /* fallback: the most popular expert not chosen yet */
                e = m->by_rank[off + rank];
                found = 1;
                for (uint32_t i = 0; i < j; i++)
                    if (set[i] == e) { found = 0; break; }
            }
            set[j] = e;
        }
        if (K == 1) {
            w[0] = 1.0f;
        } else {
            double th[TRACE_K_MAX];
            fr_gate(&rg, K, a, th);
            for (uint32_t j = 0; j < K; j++) w[j] = (float)th[j];
            for (uint32_t j = 1; j < K; j++)
                if (w[j] > w[j - 1]) w[j] = w[j - 1]; /* float rounding must not break the order */
        }
        s->prev1[l] = top;
    }
    s->r = rg;
    s->pos = pos;
    return pos;
}

void gen_stream_route(const gen_stream *s, uint32_t layer, uint16_t *experts, float *weights)
{
    const uint32_t K = s->m->K;
    if (K == 2) { /* the common top-2: fixed-size copies, no library call */
        memcpy(experts, s->cur + (size_t)layer * 2, 2 * sizeof *experts);
        memcpy(weights, s->w + (size_t)layer * 2, 2 * sizeof *weights);
        return;
    }
    memcpy(experts, s->cur + (size_t)layer * K, K * sizeof *experts);
    memcpy(weights, s->w + (size_t)layer * K, K * sizeof *weights);
}

uint32_t gen_stream_pos(const gen_stream *s) { return s->pos; }

/* ------------------------------------------------------------- write, stat */

typedef int (*tok_fn)(void *user, const trace_rec *r);

static int gen_run(const gen_model *m, uint32_t requests, uint32_t tokens, uint32_t prefill, tok_fn fn, void *user)
{
    trace_rec rec;
    memset(&rec, 0, sizeof rec);
    for (uint32_t q = 0; q < requests; q++) {
        gen_stream *s;
        D2_TRY(gen_stream_new(m, q, &s));
        for (uint32_t i = 0; i < tokens; i++) {
            uint32_t pos = gen_stream_next(s);
            rec.req = q;
            rec.pos = pos;
            rec.phase = pos < prefill ? TRACE_PREFILL : TRACE_DECODE;
            for (uint32_t l = 0; l < m->L; l++) {
                rec.layer = (uint16_t)l;
                gen_stream_route(s, l, rec.experts, rec.weights);
                int rc = fn(user, &rec);
                if (rc) { gen_stream_free(s); return rc; }
            }
        }
        gen_stream_free(s);
    }
    return D2_OK;
}

static int put_writer(void *u, const trace_rec *r) { return trace_writer_put(u, r); }
static int put_stat(void *u, const trace_rec *r) { stat_add(u, r); return D2_OK; }

int gen_write(const gen_model *m, const char *path)
{
    trace_header h;
    memset(&h, 0, sizeof h);
    h.layers = m->L; h.experts = m->E; h.top_k = m->K;
    snprintf(h.model, sizeof h.model, "%s", m->p.model);
    trace_writer *w;
    D2_TRY(trace_writer_new(path, &h, &w));
    int rc = gen_run(m, (uint32_t)m->p.requests, (uint32_t)(m->p.prefill + m->p.decode), (uint32_t)m->p.prefill, put_writer, w);
    if (rc) { trace_writer_abort(w); return rc; }
    return trace_writer_close(w);
}

int gen_stat(const gen_model *m, uint32_t requests, uint32_t tokens, stat_acc *s)
{
    return gen_run(m, requests, tokens, (uint32_t)m->p.prefill, put_stat, s);
}

/* ------------------------------------------------------------------ fitting */

/* Mean of the largest of K Dirichlet(alpha) components, Monte Carlo with a
 * fixed stream (deterministic). */
static double top1_mean(uint32_t K, double alpha, uint64_t seed)
{
    fast_rng r;
    double th[TRACE_K_MAX], sum = 0;
    const int n = 4000;
    if (fr_seed(&r, seed, 2)) return NAN;
    for (int i = 0; i < n; i++) {
        fr_gate(&r, K, alpha, th);
        sum += th[0];
    }
    return sum / n;
}

/* Mean over layers of next_top1_acc of pilots as long as the target (the
 * statistic is in-sample, so its bias depends on the token count: equal
 * lengths make it comparable).  GEN_XFIT_REPS replicate pilots. */
#define GEN_XFIT_REPS 8
#define GEN_XFIT_STEPS 10
static int pilot_next_acc(const gen_model *m, uint32_t requests, uint32_t tokens, uint64_t seed, double *out)
{
    stat_params sp;
    stat_params_default(&sp);
    double sum = 0;
    int n = 0;
    for (int rep = 0; rep < GEN_XFIT_REPS; rep++) {
        gen_model pilot = *m;
        pilot.seed = seed ^ 0xc0ffeeULL ^ ((uint64_t)rep << 44);
        stat_acc *s;
        D2_TRY(stat_new(m->L, m->E, m->K, &s));
        int rc = gen_stat(&pilot, requests, tokens, s);
        if (!rc) rc = stat_finish(s, &sp);
        if (!rc) {
            double v = stat_mean(s, offsetof(stat_layer, next_top1_acc));
            if (!isnan(v)) { sum += v; n++; }
        }
        stat_free(s);
        if (rc) return rc;
    }
    *out = n ? sum / n : NAN;
    return D2_OK;
}

/* Cross-layer correlation: bisect xlayer so the pilots' mean next-layer
 * top-1 predictability equals the target's, at the target's length.  Kept
 * as the preset's value when the target has no token order (a table) or
 * only one layer. */
static int fit_xlayer(gen_model *m, const stat_acc *target, uint64_t seed)
{
    double want = stat_mean(target, offsetof(stat_layer, next_top1_acc));
    uint32_t req = stat_requests(target);
    uint64_t tok = stat_tokens(target);
    if (isnan(want) || m->L < 2 || !req || tok < 2 * (uint64_t)req) return D2_OK;
    uint32_t per = (uint32_t)(tok / req);
    double lo = 0, hi = 1, got;
    for (int it = 0; it < GEN_XFIT_STEPS; it++) { /* predictability grows with xlayer */
        m->p.xlayer = 0.5 * (lo + hi);
        D2_TRY(pilot_next_acc(m, req, per, seed, &got));
        if (isnan(got)) break;
        if (got < want) lo = m->p.xlayer; else hi = m->p.xlayer;
    }
    m->p.xlayer = 0.5 * (lo + hi);
    return D2_OK;
}

/* The shape of a fitting pilot: GEN_PILOT_REQUESTS requests with enough
 * slots for GEN_PILOT_SLOTS_PER_EXPERT per expert the target uses (at least
 * GEN_PILOT_SLOTS per layer), cut to the draw cap by shortening the requests
 * and then by running fewer of them (at least one token). */
static void pilot_shape(const stat_acc *target, uint32_t *requests, uint32_t *tokens)
{
    const uint32_t L = stat_layers(target), E = stat_experts(target), K = stat_top_k(target);
    uint64_t used = 0;
    for (uint32_t l = 0; l < L; l++) {
        const stat_layer *y = stat_layer_get(target, l);
        uint64_t n = 0;
        for (uint32_t e = 0; e < E; e++) n += y->share[e] > 0;
        if (n > used) used = n;
    }
    uint64_t slots = (uint64_t)GEN_PILOT_SLOTS_PER_EXPERT * used;
    if (slots < GEN_PILOT_SLOTS) slots = GEN_PILOT_SLOTS;
    uint64_t per = (slots / K + GEN_PILOT_REQUESTS - 1) / GEN_PILOT_REQUESTS;
    uint64_t cap = (uint64_t)GEN_PILOT_DRAWS_PER_RECORD * stat_records(target);
    if (cap < GEN_PILOT_DRAWS) cap = GEN_PILOT_DRAWS;
    uint64_t total = cap / L; /* tokens over all pilot requests */
    if (total < 1) total = 1;
    uint64_t req = GEN_PILOT_REQUESTS;
    if (per * req > total) {
        per = total / req;
        if (per < 1) { per = 1; req = total < GEN_PILOT_REQUESTS ? total : GEN_PILOT_REQUESTS; }
    }
    *requests = (uint32_t)req;
    *tokens = (uint32_t)per;
}

int gen_model_fit(const gen_params *base, const stat_acc *target, uint64_t seed, gen_model **out)
{
    *out = NULL;
    gen_params p = *base;
    const uint32_t L = stat_layers(target), E = stat_experts(target), K = stat_top_k(target);
    /* the target's shape wins over the preset's; a model whose shape differs
     * (e.g. a table covering only some layers) is not named in the output */
    if (p.model[0]) {
        gen_params q = p;
        q.layers = q.experts = q.top_k = 0;
        if (gen_params_resolve(&q) != D2_OK || q.layers != L || q.experts != E || q.top_k != K) p.model[0] = 0;
    }
    p.layers = L; p.experts = E; p.top_k = K;
    /* gate weights: match the mean top-1 weight (mean over layers) */
    double wt = 0;
    int nw = 0;
    for (uint32_t l = 0; l < L; l++) {
        double w0 = stat_layer_get(target, l)->w_mean[0];
        if (isfinite(w0)) { wt += w0; nw++; }
    }
    if (nw && K > 1) {
        wt /= nw;
        double lo = log(0.01), hi = log(1000);
        for (int it = 0; it < 30; it++) { /* top1_mean decreases with alpha */
            double mid = 0.5 * (lo + hi);
            if (top1_mean(K, exp(mid), seed) > wt) lo = mid; else hi = mid;
        }
        p.gate_alpha = exp(0.5 * (lo + hi));
    }
    gen_model *m;
    D2_TRY(gen_model_new(&p, seed, &m));
    double *pop = malloc((size_t)L * E * sizeof *pop);
    double *rep = malloc(L * sizeof *rep);
    if (!pop || !rep) { free(pop); free(rep); gen_model_free(m); D2_ERROR(D2_ENOMEM, "out of memory"); }
    int rc = D2_OK;
    for (uint32_t l = 0; l < L && !rc; l++) {
        const stat_layer *y = stat_layer_get(target, l);
        memcpy(pop + (size_t)l * E, y->share, E * sizeof *pop);
        double c = 0;
        for (uint32_t e = 0; e < E; e++) c += y->share[e] * y->share[e];
        /* repeat beyond chance: observed = rho + (1 - rho) * chance */
        rep[l] = isnan(y->top1_repeat) ? NAN : fmax(0, (y->top1_repeat - c) / (1 - c));
        rc = gen_model_set_layer(m, l, pop + (size_t)l * E, rep[l]);
    }
    stat_params sp;
    stat_params_default(&sp);
    if (!rc) rc = fit_xlayer(m, target, seed);
    /* pilot rounds: measure, then correct popularity (multiplicatively) and
     * repeat (additively) toward the target */
    for (int round = 0; round < GEN_FIT_ROUNDS && !rc; round++) {
        stat_acc *s;
        gen_model pilot = *m;
        pilot.seed = seed ^ 0x5eedf17ULL ^ ((uint64_t)round << 40);
        if ((rc = stat_new(L, E, K, &s))) break;
        stat_set_light(s); /* the rounds read shares and repeats only */
        uint32_t preq, tokens;
        pilot_shape(target, &preq, &tokens);
        rc = gen_stat(&pilot, preq, tokens, s);
        if (!rc) rc = stat_finish(s, &sp);
        for (uint32_t l = 0; l < L && !rc; l++) {
            const stat_layer *y = stat_layer_get(target, l), *g = stat_layer_get(s, l);
            double *pp = pop + (size_t)l * E;
            for (uint32_t e = 0; e < E; e++) {
                if (y->share[e] <= 0) pp[e] = 0;
                else if (g->share[e] > 0) pp[e] *= y->share[e] / g->share[e];
                else pp[e] *= 2;
            }
            double r = NAN;
            if (!isnan(rep[l]) && !isnan(g->top1_repeat)) {
                double c = 0;
                for (uint32_t e = 0; e < E; e++) c += g->share[e] * g->share[e];
                r = rep[l] + (y->top1_repeat - g->top1_repeat) / fmax(0.3, 1 - c);
                rep[l] = r = fmin(0.99, fmax(0, r));
            }
            rc = gen_model_set_layer(m, l, pp, r);
        }
        stat_free(s);
    }
    if (!rc) {
        uint64_t hb[2];
        hb[0] = hash64(pop, (size_t)L * E * sizeof *pop);
        hb[1] = hash64(rep, L * sizeof *rep);
        m->fit_hash = hash64(hb, sizeof hb);
    }
    free(pop);
    free(rep);
    if (rc) { gen_model_free(m); return rc; }
    *out = m;
    return D2_OK;
}

typedef struct desc_buf { char *p; size_t n, used; } desc_buf;
static int desc_visit(const char *key, const char *value, const char *units, void *user)
{
    (void)units;
    desc_buf *d = user;
    int k = snprintf(d->p + d->used, d->n - d->used, "%s=%s\n", key, value);
    if (k > 0) d->used += (size_t)k < d->n - d->used ? (size_t)k : d->n - d->used - 1;
    return 0;
}

int gen_model_describe(const gen_model *m, char *buf, size_t n)
{
    if (!n) return D2_OK;
    buf[0] = 0;
    desc_buf d = {buf, n, 0};
    param_foreach(&gen_params_table, &m->p, desc_visit, &d);
    snprintf(buf + d.used, n - d.used, "seed=%llu\nfit=%016llx\nversion=%d\n", (unsigned long long)m->seed,
             (unsigned long long)m->fit_hash, GEN_VERSION);
    return D2_OK;
}
