/* mwq.c - the MWQ quantizer (PAPER.md section 2): base fit with a scale
 * search, closed-form least-squares residual sign levels, FP16 storage, and
 * the gptq mode's block-level error compensation.  Exact readings of the
 * paper's ambiguous points are stated where they are implemented and in
 * docs/mwq.md. */
#include "config.h"
#include "quant/mwq.h"
#include "quant/f16.h"
#include "quant/mwq_int.h"
#include "core/err.h"
#include "core/par.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

/* codes of a group a candidate fit keeps on the stack (bytes; a longer group
 * compares candidates by their level-1 error only) */
#define MWQ_STACK_CODES 4096
#define MWQ_X86 1
#endif

#define F(x) offsetof(mwq_config, x)
static const param_def defs[] = {
    {"base_bits", PARAM_INT, F(base_bits), "2", 1, 8, "bits", "b1: bits of the level-1 (base) code; paper V1 = 2, V2 = 5"},
    {"levels", PARAM_INT, F(levels), "3", 1, 8, "", "K: levels including the base, each further level adds one bit; V1 = 3, V2 = 4"},
    {"group", PARAM_INT, F(group), "128", 1, 1 << 20, "weights", "g: weights per group along a row (paper: 128)"},
    {"mode", PARAM_STRING, F(mode), "rtn", 0, 0, "", "rtn (weight error) or gptq (activation-aware + block compensation)"},
    {"search_steps", PARAM_INT, F(search_steps), "2", 0, 31, "", "T: base inverse-scale candidates (nmax + t*delta)/range, t = -T..T, each refitted by least squares (llama.cpp make_qkx2_quants: 21 candidates over nmax-1..nmax+1; T=2 spans the same range, 0.1 dB from T=10 on stories260K)"},
    {"search_delta", PARAM_DOUBLE, F(search_delta), "0.5", 1e-6, 100, "code units", "step between base scale candidates"},
    {"search_objective", PARAM_STRING, F(search_objective), "base", 0, 0, "", "error the base fit minimises: base (level 1; keeps a K-level file's first k levels equal to a k-level quantization), all (sum over levels 1..K), top (level K); see docs/mwq.md"},
    {"gptq_damp", PARAM_DOUBLE, F(gptq_damp), "0.01", 0, 10, "", "lambda = damp * mean(diag H) added to diag(H) (GPTQ percdamp default 0.01)"},
    {"gptq_block", PARAM_INT, F(gptq_block), "128", 1, 1 << 20, "columns", "gamma: columns per compensation block, a multiple of group (GPTQ uses 128)"},
    {"gptq_comp_level", PARAM_INT, F(gptq_comp_level), "0", 0, 8, "", "level whose error is propagated to later columns; 0 = the top level K"},
};
#undef F
const param_table mwq_params = {"mwq", "mwq", defs, sizeof defs / sizeof defs[0]};

void mwq_config_default(mwq_config *c) { param_defaults(&mwq_params, c); }

int mwq_config_preset(mwq_config *c, const char *name)
{
    if (!strcmp(name, "v1")) { c->base_bits = 2; c->levels = 3; c->group = 128; return D2_OK; }
    if (!strcmp(name, "v2")) { c->base_bits = 5; c->levels = 4; c->group = 128; return D2_OK; }
    D2_ERROR(D2_EINVAL, "preset '%s': expected v1 (b1=2, K=3) or v2 (b1=5, K=4)", name);
}

int mwq_config_check(const mwq_config *c)
{
    if (c->base_bits < 1 || c->base_bits > 8) D2_ERROR(D2_ERANGE, "mwq.base_bits: %lld is outside 1..8", (long long)c->base_bits);
    if (c->levels < 1 || c->base_bits + c->levels - 1 > 8)
        D2_ERROR(D2_ERANGE, "mwq.levels: %lld levels on a %lld-bit base give more than 8 bits (b1 + K - 1 <= 8)",
                 (long long)c->levels, (long long)c->base_bits);
    if (c->group < 1) D2_ERROR(D2_ERANGE, "mwq.group: must be >= 1");
    if (strcmp(c->search_objective, "all") && strcmp(c->search_objective, "base") && strcmp(c->search_objective, "top"))
        D2_ERROR(D2_EINVAL, "mwq.search_objective: '%s': expected all, base or top", c->search_objective);
    const mwq_mode *md = mwq_mode_find(c->mode);
    if (!md) D2_ERROR(D2_EINVAL, "mwq.mode: '%s': expected rtn or gptq", c->mode);
    if (md->block_columns && c->gptq_block % c->group != 0)
        D2_ERROR(D2_ERANGE, "mwq.gptq_block: %lld is not a multiple of the group size %lld", (long long)c->gptq_block, (long long)c->group);
    if (c->gptq_comp_level > c->levels)
        D2_ERROR(D2_ERANGE, "mwq.gptq_comp_level: %lld is above levels (%lld)", (long long)c->gptq_comp_level, (long long)c->levels);
    return D2_OK;
}

/* ---- matrix ------------------------------------------------------------- */
/* Zeroed chunk memory.  Large chunks are 2 MiB aligned and marked for
 * transparent huge pages: on a VM a 4 KiB page fault costs microseconds (15
 * us measured on this host's hypervisor) and a 4096 x 14336 V1 matrix would
 * otherwise take ~8000 of them while it is being quantized.  Freed large
 * chunks are kept (up to CHUNK_CACHE_BYTES) and handed to the next matrix of
 * the same size, zeroed: a model has hundreds of matrices of a few shapes,
 * and reusing touched memory costs a memset instead of fresh page faults. */
#define CHUNK_HUGE ((size_t)2 << 20)
#define CHUNK_CACHE_SLOTS 16
#define CHUNK_CACHE_BYTES ((size_t)512 << 20)
static struct { void *p; size_t n; } chunk_cache[CHUNK_CACHE_SLOTS];
static size_t chunk_cached;
static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t chunk_round(size_t n) { return n >= 2 * CHUNK_HUGE ? (n + CHUNK_HUGE - 1) / CHUNK_HUGE * CHUNK_HUGE : n; }

static void *chunk_alloc(size_t n)
{
    const size_t r = chunk_round(n);
    if (r == n && n < 2 * CHUNK_HUGE) return calloc(1, n);
    void *p = NULL;
    pthread_mutex_lock(&chunk_lock);
    for (int i = 0; i < CHUNK_CACHE_SLOTS && !p; i++)
        if (chunk_cache[i].p && chunk_cache[i].n == r) {
            p = chunk_cache[i].p;
            chunk_cache[i].p = NULL;
            chunk_cached -= r;
        }
    pthread_mutex_unlock(&chunk_lock);
    if (!p) {
        if (posix_memalign(&p, CHUNK_HUGE, r)) return NULL;
#ifdef MADV_HUGEPAGE
        (void)madvise(p, r, MADV_HUGEPAGE); /* a hint: failure only costs speed */
#endif
    }
    memset(p, 0, r);
    return p;
}

static void chunk_free(void *p, size_t n)
{
    if (!p) return;
    const size_t r = chunk_round(n);
    if (r != n || n >= 2 * CHUNK_HUGE) {
        pthread_mutex_lock(&chunk_lock);
        for (int i = 0; i < CHUNK_CACHE_SLOTS; i++)
            if (!chunk_cache[i].p && chunk_cached + r <= CHUNK_CACHE_BYTES) {
                chunk_cache[i].p = p;
                chunk_cache[i].n = r;
                chunk_cached += r;
                p = NULL;
                break;
            }
        pthread_mutex_unlock(&chunk_lock);
    }
    free(p);
}

int mwq_matrix_new(const kern_shape *shape, int levels, mwq_matrix **out)
{
    *out = NULL;
    mwq_matrix *m = calloc(1, sizeof *m);
    if (!m) D2_ERROR(D2_ENOMEM, "out of memory");
    m->shape = *shape;
    m->levels = levels;
    for (int k = 1; k <= levels; k++) {
        m->chunk_bytes[k - 1] = kern_chunk_bytes(shape, k);
        m->chunk[k - 1] = chunk_alloc((size_t)m->chunk_bytes[k - 1] + 32); /* +32: kernels may read a vector past the end */
        if (!m->chunk[k - 1]) { mwq_matrix_free(m); D2_ERROR(D2_ENOMEM, "out of memory (%lld bytes)", (long long)kern_chunk_bytes(shape, k)); }
    }
    *out = m;
    return D2_OK;
}

void mwq_matrix_free(mwq_matrix *m)
{
    if (!m) return;
    for (int k = 0; k < KERN_MAX_LEVELS; k++) chunk_free(m->chunk[k], (size_t)m->chunk_bytes[k] + 32);
    free(m);
}

void mwq_matrix_view(const mwq_matrix *m, int k, kern_mat *out)
{
    memset(out, 0, sizeof *out);
    out->shape = m->shape;
    out->levels = k;
    for (int i = 0; i < k; i++) out->chunk[i] = m->chunk[i];
}

/* ---- base fit ------------------------------------------------------------
 * Candidates: codes l_i = clamp(rint((x_i - min) * is_t), 0, nmax) with
 * is_t = (nmax + t*delta) / (max - min), t = -T..T (after llama.cpp's
 * make_qkx2_quants); for each, the weighted least-squares (s, m) of
 * x ~ s*l + m and its closed-form error.  The best candidate and plain
 * min/max are then rounded to FP16, re-quantized to the nearest code and
 * their actual errors compared, so the fit is never worse than min/max RTN.
 * The candidate sums are accumulated in 8 float lanes in a fixed order by
 * both the scalar and the AVX2 code, so both pick the same candidate. */
typedef struct cand_sums { float sl, sll, slx; } cand_sums;

/* Round to nearest, ties to even, for |v| < 2^22 (callers clamp first): the
 * same result as nearbyintf / _mm256_round_ps, without a libm call. */
static inline float q_rint(float v)
{
    const float m = 12582912.0f; /* 1.5 * 2^23 */
    return v >= 0 ? (v + m) - m : (v - m) + m;
}

static float lanes_sum(const float v[8])
{
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

/* 16 lanes (two AVX2 accumulators, even and odd 8-blocks): add the two
 * halves lane by lane, then as lanes_sum */
static float lanes_sum16(const float v[16])
{
    float t[8];
    for (int i = 0; i < 8; i++) t[i] = v[i] + v[i + 8];
    return lanes_sum(t);
}

static void cand_scalar(const float *x, const float *h, int64_t n, float xmin, float is, float nmax, cand_sums *o)
{
    float sl[8] = {0}, sll[8] = {0}, slx[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        float l = (x[i] - xmin) * is;
        l = q_rint(l < 0 ? 0 : l > nmax ? nmax : l);
        float hl = h ? h[i] * l : l;
        sl[i & 7] += hl;
        sll[i & 7] = fmaf(hl, l, sll[i & 7]);
        slx[i & 7] = fmaf(hl, x[i], slx[i & 7]);
    }
    o->sl = lanes_sum(sl);
    o->sll = lanes_sum(sll);
    o->slx = lanes_sum(slx);
}

#ifdef MWQ_X86
__attribute__((target("avx2,fma"))) static float hsum8(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* Same arithmetic as cand_scalar (fused multiply-add where it uses fmaf), n % 8 == 0. */
__attribute__((target("avx2,fma"))) static void cand_avx2(const float *x, const float *h, int64_t n, float xmin, float is,
                                                      float nmax, cand_sums *o)
{
    __m256 vmin = _mm256_set1_ps(xmin), vis = _mm256_set1_ps(is), vnmax = _mm256_set1_ps(nmax), zero = _mm256_setzero_ps();
    __m256 sl = zero, sll = zero, slx = zero;
    for (int64_t i = 0; i < n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 l = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_sub_ps(xv, vmin), vis), zero), vnmax);
        l = _mm256_round_ps(l, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 hl = h ? _mm256_mul_ps(_mm256_loadu_ps(h + i), l) : l;
        sl = _mm256_add_ps(sl, hl);
        sll = _mm256_fmadd_ps(hl, l, sll);
        slx = _mm256_fmadd_ps(hl, xv, slx);
    }
    o->sl = hsum8(sl);
    o->sll = hsum8(sll);
    o->slx = hsum8(slx);
}

static int have_avx2(void)
{
    static int have = -1;
    if (have < 0) { __builtin_cpu_init(); have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    return have;
}
#endif

static int force_scalar_fit;
/* For tests: 1 forces the scalar candidate search. */
void mwq_fit_force_scalar(int on);
void mwq_fit_force_scalar(int on) { force_scalar_fit = on; }

#ifdef MWQ_X86
/* nc (2 or 3, a constant where inlined) candidates in one pass over x,
 * each with cand_avx2's arithmetic; d >= 0 and is > 0: no lower clamp. */
__attribute__((target("avx2,fma"), always_inline)) static inline void candn_avx2(const float *x, const float *h, int64_t n,
                                                                             float xmin, const float *is, int nc, float nmax,
                                                                             cand_sums *o)
{
    __m256 vmin = _mm256_set1_ps(xmin), vnmax = _mm256_set1_ps(nmax), zero = _mm256_setzero_ps();
    __m256 v[3], a[3], b[3], c[3];
#pragma GCC unroll 3
    for (int k = 0; k < nc; k++) v[k] = _mm256_set1_ps(is[k]), a[k] = b[k] = c[k] = zero;
    for (int64_t i = 0; i < n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i), d = _mm256_sub_ps(xv, vmin);
        __m256 hv = h ? _mm256_loadu_ps(h + i) : zero;
#pragma GCC unroll 3
        for (int k = 0; k < nc; k++) {
            __m256 l = _mm256_round_ps(_mm256_min_ps(_mm256_mul_ps(d, v[k]), vnmax), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m256 hl = h ? _mm256_mul_ps(hv, l) : l;
            a[k] = _mm256_add_ps(a[k], hl);
            b[k] = _mm256_fmadd_ps(hl, l, b[k]);
            c[k] = _mm256_fmadd_ps(hl, xv, c[k]);
        }
    }
#pragma GCC unroll 3
    for (int k = 0; k < nc; k++) o[k].sl = hsum8(a[k]), o[k].sll = hsum8(b[k]), o[k].slx = hsum8(c[k]);
}

__attribute__((target("avx2,fma"))) static void cand2_avx2(const float *x, const float *h, int64_t n, float xmin, const float *is,
                                                       float nmax, cand_sums *o)
{
    candn_avx2(x, h, n, xmin, is, 2, nmax, o);
}

__attribute__((target("avx2,fma"))) static void cand3_avx2(const float *x, const float *h, int64_t n, float xmin, const float *is,
                                                       float nmax, cand_sums *o)
{
    candn_avx2(x, h, n, xmin, is, 3, nmax, o);
}
#endif

static void cand_eval(const float *x, const float *h, int64_t n, float xmin, float is, float nmax, cand_sums *o)
{
#ifdef MWQ_X86
    if (!force_scalar_fit && n % 8 == 0 && have_avx2()) { cand_avx2(x, h, n, xmin, is, nmax, o); return; }
#endif
    cand_scalar(x, h, n, xmin, is, nmax, o);
}

/* Codes for FP16 (s, z): q = rint(clamp(x/s + z, 0, nmax)), computed as
 * fma(x, 1/s, z) in float by both paths (fmaf is exactly rounded, so the
 * scalar path matches the FMA instruction bit for bit). */
static void codes_scalar(const float *x, int64_t n, float is, float z, float nmax, uint8_t *q)
{
    for (int64_t i = 0; i < n; i++) {
        float v = fmaf(x[i], is, z);
        q[i] = (uint8_t)q_rint(v < 0 ? 0 : v > nmax ? nmax : v);
    }
}

#ifdef MWQ_X86
__attribute__((target("avx2,fma"))) static double codes_avx2(const float *x, const float *h, int64_t n, float is, float s,
                                                             float z, float nmax, uint8_t *q)
{
    __m256 vis = _mm256_set1_ps(is), vz = _mm256_set1_ps(z), vs = _mm256_set1_ps(s), vn = _mm256_set1_ps(nmax),
           zero = _mm256_setzero_ps(), e[2] = {zero, zero};
    /* two accumulators (even and odd 8-blocks) halve the FMA latency chain;
     * the scalar path sums in the same 16 lanes */
    for (int64_t i = 0; i < n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 v = _mm256_fmadd_ps(xv, vis, vz);
        v = _mm256_round_ps(_mm256_min_ps(_mm256_max_ps(v, zero), vn), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i i32 = _mm256_cvtps_epi32(v);
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packus_epi16(p16, p16));
        __m256 d = _mm256_fmsub_ps(_mm256_sub_ps(v, vz), vs, xv);
        const int p = (int)((i >> 3) & 1);
        e[p] = h ? _mm256_fmadd_ps(_mm256_loadu_ps(h + i), _mm256_mul_ps(d, d), e[p]) : _mm256_fmadd_ps(d, d, e[p]);
    }
    return hsum8(_mm256_add_ps(e[0], e[1]));
}

__attribute__((target("avx2,fma"))) static void group_stats_avx2(const float *x, int64_t n, float *mn, float *mx, float *sum)
{
    __m256 lo[2], hi[2], sm[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    lo[0] = lo[1] = hi[0] = hi[1] = _mm256_loadu_ps(x);
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        const int p = (int)((i >> 3) & 1);
        lo[p] = _mm256_min_ps(lo[p], v);
        hi[p] = _mm256_max_ps(hi[p], v);
        sm[p] = _mm256_add_ps(sm[p], v);
    }
    float l[8], h8[8];
    _mm256_storeu_ps(l, _mm256_min_ps(lo[0], lo[1]));
    _mm256_storeu_ps(h8, _mm256_max_ps(hi[0], hi[1]));
    float a = l[0], b = h8[0];
    for (int i = 1; i < 8; i++) { a = l[i] < a ? l[i] : a; b = h8[i] > b ? h8[i] : b; }
    *mn = a;
    *mx = b;
    *sum = hsum8(_mm256_add_ps(sm[0], sm[1]));
}
#endif

/* Final codes for FP16 (s, z) and the weighted error they give, summed in 16
 * float lanes in a fixed order (the same in both paths). */
static double codes_for(const float *x, const float *h, int64_t n, float s, float z, int nmax, uint8_t *q)
{
    float is = 1.0f / s;
#ifdef MWQ_X86
    if (!force_scalar_fit && n % 8 == 0 && have_avx2()) return codes_avx2(x, h, n, is, s, z, (float)nmax, q);
#endif
    codes_scalar(x, n, is, z, (float)nmax, q);
    float e[16] = {0};
    for (int64_t i = 0; i < n; i++) {
        float d = fmaf((float)q[i] - z, s, -x[i]);
        e[i & 15] = h ? fmaf(h[i], d * d, e[i & 15]) : fmaf(d, d, e[i & 15]);
    }
    return lanes_sum16(e);
}

/* min, max and the sum (16 lanes) of a group */
static void group_stats(const float *x, int64_t n, float *mn, float *mx, float *sum)
{
#ifdef MWQ_X86
    if (!force_scalar_fit && n % 8 == 0 && have_avx2()) { group_stats_avx2(x, n, mn, mx, sum); return; }
#endif
    float lo = x[0], hi = x[0], l[16] = {0};
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        l[i & 15] += x[i];
    }
    *mn = lo;
    *mx = hi;
    *sum = lanes_sum16(l);
}

static int to_f16_pair(double s, double m, mwq_base_fit *f)
{
    /* x ~ s*l + m  <=>  x ~ (l - z)*s with z = -m/s */
    uint16_t s16 = f16_from_float((float)s);
    if ((s16 & 0x7fff) == 0) s16 = 1; /* below FP16's smallest subnormal: 2^-24 */
    float sf = f16_to_float(s16);
    if (!isfinite(sf)) return -1;
    uint16_t z16 = f16_from_float((float)(-m / sf));
    float zf = f16_to_float(z16);
    if (!isfinite(zf)) return -1;
    f->s16 = s16; f->z16 = z16; f->s = sf; f->z = zf;
    return 0;
}

/* Up to 3 FP16 base fits worth comparing (see above). */
static int base_candidates(const float *x, const float *h, int64_t n, int bits, const mwq_config *c, mwq_base_fit *cand, int *nc)
{
    const int nmax = (1 << bits) - 1;
    float xmin, xmax, xsum;
    group_stats(x, n, &xmin, &xmax, &xsum);
    if (!isfinite(xsum)) {
        /* a NaN or Inf makes the sum non-finite (so can an overflow) */
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(x[i])) D2_ERROR(D2_EINVAL, "element %lld of the group is %s", (long long)i, isnan(x[i]) ? "NaN" : "Inf");
    }
    if (!(xmax > xmin)) {
        /* constant group: code 0, z = -sign(c), s = |c| (or s = 1, z = 0 for c = 0) */
        float a = fabsf(xmin);
        if (to_f16_pair(a > 0 ? a : 1.0, a > 0 ? (double)xmin : 0.0, &cand[0]))
            D2_ERROR(D2_ERANGE, "weight %g does not fit an FP16 scale", (double)xmin);
        *nc = 1;
        return D2_OK;
    }
    double range = (double)xmax - (double)xmin;
    /* weighted totals that do not depend on the candidate */
    double sw = (double)n, sx = xsum;
    if (h) {
        sw = sx = 0;
        for (int64_t i = 0; i < n; i++) {
            sw += h[i];
            sx += (double)h[i] * x[i];
        }
    }
    double best_s = range / nmax, best_m = xmin, best_e = INFINITY;
    cand_sums cs0 = {0, 0, 0};
    int have0 = 0;
    if (sw > 0) {
        /* inverse scales of the candidates, evaluated two per pass */
        enum { MAXC = 64 };
        float isv[MAXC];
        int64_t tv[MAXC];
        cand_sums csv[MAXC];
        int ncand = 0;
        const double irange = 1.0 / range;
        for (int64_t t = -c->search_steps; t <= c->search_steps && ncand < MAXC; t++) {
            double is = (nmax + (double)t * c->search_delta) * irange;
            if (is <= 0) continue;
            isv[ncand] = t == 0 ? (float)(nmax / range) : (float)is;
            tv[ncand++] = t;
        }
        int i2 = 0;
#ifdef MWQ_X86
        if (!force_scalar_fit && n % 8 == 0 && have_avx2())
        {
            for (; i2 + 3 <= ncand; i2 += 3) cand3_avx2(x, h, n, xmin, isv + i2, (float)nmax, csv + i2);
            for (; i2 + 2 <= ncand; i2 += 2) cand2_avx2(x, h, n, xmin, isv + i2, (float)nmax, csv + i2);
        }
#endif
        for (; i2 < ncand; i2++) cand_eval(x, h, n, xmin, isv[i2], (float)nmax, &csv[i2]);
        for (int ci = 0; ci < ncand; ci++) {
            cand_sums cs = csv[ci];
            if (tv[ci] == 0) { cs0 = cs; have0 = 1; }
            double D = sw * cs.sll - (double)cs.sl * cs.sl;
            if (D <= 0) continue;
            const double iD = 1.0 / D;
            double s = (sw * cs.slx - (double)cs.sl * sx) * iD, m = ((double)cs.sll * sx - (double)cs.sl * cs.slx) * iD;
            if (!(s > 0)) continue;
            /* sum h (s l + m - x)^2 without the sum h x^2 term (same for all) */
            double e = -2 * s * cs.slx - 2 * m * sx + s * s * cs.sll + 2 * s * m * cs.sl + m * m * sw;
            if (e < best_e) { best_e = e; best_s = s; best_m = m; }
        }
    }
    /* candidates: min/max, the least-squares refit of its codes (t = 0), and
     * the grid winner by closed-form error.  The t = 0 refit is kept even
     * when the grid prefers another t: dropping it costs 0.07 dB at level 1
     * and 0.4 dB at level 3 on stories260K (measured). */
    *nc = 0;
    if (!to_f16_pair(range / nmax, xmin, &cand[*nc])) (*nc)++;
    if (sw > 0) {
        cand_sums cs = cs0;
        if (!have0) cand_eval(x, h, n, xmin, (float)(nmax / range), (float)nmax, &cs);
        double D = sw * cs.sll - (double)cs.sl * cs.sl;
        if (D > 0) {
            double s0 = (sw * cs.slx - (double)cs.sl * sx) / D, m0 = ((double)cs.sll * sx - (double)cs.sl * cs.slx) / D;
            if (s0 > 0 && !to_f16_pair(s0, m0, &cand[*nc])) (*nc)++;
        }
    }
    if (isfinite(best_e) && !to_f16_pair(best_s, best_m, &cand[*nc])) {
        int dup = 0;
        for (int i = 0; i < *nc; i++) dup |= cand[i].s16 == cand[*nc].s16 && cand[i].z16 == cand[*nc].z16;
        if (!dup) (*nc)++;
    }
    if (*nc == 0) D2_ERROR(D2_ERANGE, "group range %g does not fit an FP16 scale", range);
    return D2_OK;
}

int mwq_base_fit_group(const float *x, const float *h, int64_t n, int bits, const mwq_config *c, mwq_base_fit *fit,
                       uint8_t *q)
{
    mwq_base_fit cand[3];
    int nc;
    D2_TRY(base_candidates(x, h, n, bits, c, cand, &nc));
    const int nmax = (1 << bits) - 1;
    /* the candidate with the lowest level-1 error, ties to the earlier */
    int best = 0;
    double be = INFINITY;
    for (int i = 0; i < nc; i++) {
        double e = codes_for(x, h, n, cand[i].s, cand[i].z, nmax, q);
        if (e < be) { be = e; best = i; }
    }
    *fit = cand[best];
    codes_for(x, h, n, fit->s, fit->z, nmax, q);
    return D2_OK;
}

/* ---- one group of one row, all levels ------------------------------------ */

/* Residual level of one group (PAPER.md 2.2-2.3): R = x - W_{k-1}, B =
 * sign(R) with sign(0) = +1, a_k = the least-squares scale for a fixed sign
 * plane = mean |R| (rtn) or sum h|R| / sum h (gptq, weights h), rounded to
 * FP16 before W_k = W_{k-1} + a_k B is formed.  Unweighted sums run in 8
 * float lanes in a fixed order in both paths.  Bit i of the zeroed bits[]
 * is set for weight i of the group (kern_pack_bits places them in the
 * chunk); *err receives sum h (x - W_k)^2. */
static uint16_t sign_level_scalar(const float *x, const float *h, const float *prev, int64_t n, float *cur, uint8_t *plane,
                                  double *err, float *abs_sum)
{
    uint16_t a16;
    if (h) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; i++) {
            num += h[i] * fabs((double)x[i] - prev[i]);
            den += h[i];
        }
        a16 = f16_from_float(den > 0 ? (float)(num / den) : 0.0f);
    } else {
        float sum;
        if (abs_sum && *abs_sum >= 0) sum = *abs_sum;
        else {
            float lanes[8] = {0};
            for (int64_t i = 0; i < n; i++) lanes[i & 7] += fabsf(x[i] - prev[i]);
            sum = lanes_sum(lanes);
        }
        a16 = f16_from_float(sum / (float)n);
    }
    float a = f16_to_float(a16), e[8] = {0}, nx[8] = {0};
    for (int64_t i = 0; i < n; i++) {
        int pos = x[i] - prev[i] >= 0;
        if (pos) plane[i >> 3] |= (uint8_t)(1u << (i & 7));
        cur[i] = prev[i] + (pos ? a : -a);
        float d = x[i] - cur[i];
        e[i & 7] += h ? h[i] * (d * d) : d * d;
        nx[i & 7] += fabsf(d);
    }
    *err = lanes_sum(e);
    if (abs_sum) *abs_sum = h ? -1.0f : lanes_sum(nx); /* the next level's sum |R| (unweighted) */
    return a16;
}

#ifdef MWQ_X86
/* Unweighted, n % 8 == 0: whole bytes of bits[] are written.  *abs_sum: this level's sum |x - prev| when >= 0 (from the level
 * below), replaced by the next level's, summed in the same lane order. */
__attribute__((target("avx2,fma"))) static uint16_t sign_level_avx2(const float *x, const float *prev, int64_t n, float *cur,
                                                                  uint8_t *plane, double *err, float *abs_sum)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), zero = _mm256_setzero_ps();
    __m256 e = zero, nx = zero;
    float sum = *abs_sum;
    if (sum < 0) {
        __m256 acc = zero;
        for (int64_t i = 0; i < n; i += 8)
            acc = _mm256_add_ps(acc, _mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(prev + i)), absm));
        sum = hsum8(acc);
    }
    uint16_t a16 = f16_from_float(sum / (float)n);
    float a = f16_to_float(a16);
    const __m256 va = _mm256_set1_ps(a), vna = _mm256_set1_ps(-a);
    for (int64_t i = 0; i < n; i += 8) {
        __m256 p = _mm256_loadu_ps(prev + i), xv = _mm256_loadu_ps(x + i);
        __m256 ge = _mm256_cmp_ps(_mm256_sub_ps(xv, p), zero, _CMP_GE_OQ);
        plane[i >> 3] = (uint8_t)_mm256_movemask_ps(ge);
        __m256 cv = _mm256_add_ps(p, _mm256_blendv_ps(vna, va, ge));
        _mm256_storeu_ps(cur + i, cv);
        __m256 d = _mm256_sub_ps(xv, cv);
        e = _mm256_add_ps(e, _mm256_mul_ps(d, d));
        nx = _mm256_add_ps(nx, _mm256_and_ps(d, absm));
    }
    *err = hsum8(e);
    *abs_sum = hsum8(nx);
    return a16;
}

/* W1 = (q - z) s for n % 8 == 0; returns sum |x - W1| in the lane order of
 * sign_level_avx2 (level 2 needs it). */
__attribute__((target("avx2,fma"))) static float base_what_avx2(const float *x, const uint8_t *q, int64_t n, float s, float z,
                                                             float *what)
{
    const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(z);
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) {
        __m256i q8 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + i)));
        __m256 w1 = _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q8), vz), vs);
        _mm256_storeu_ps(what + i, w1);
        acc = _mm256_add_ps(acc, _mm256_and_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), w1), absm));
    }
    return hsum8(acc);
}
#endif

static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* All K levels of one group from base fit f: level-1 codes in q[n], the
 * sign bits of level k (k >= 2) in bits + (k-2)*nb8 (group-relative, zeroed
 * here), scales to a16[k-1].  what[k*g + i] = W_{k+1}; err[k] = weighted
 * error of level k+1.  Nothing is written to the chunks (dry runs use this). */
typedef struct group_out {
    uint8_t *bits;      /* (K-1) * nb8 bytes */
    int64_t nb8;        /* ceil(n / 8) rounded up to 4 */
    uint16_t a16[KERN_MAX_LEVELS];
} group_out;

/* have_q: q already holds f's codes (err[0] is then not computed). */
static void run_levels(const float *x, const float *h, int64_t n, int b1, int K, int g, const mwq_base_fit *f, uint8_t *q,
                       int have_q, float *what, double *err, group_out *o)
{
    const int nmax = (1 << b1) - 1;
    if (!have_q) err[0] = codes_for(x, h, n, f->s, f->z, nmax, q);
    int vec = 0;
    float abs_sum = -1.0f; /* sum |R| of level 2 when known; each level hands the next its own */
#ifdef MWQ_X86
    vec = !force_scalar_fit && n % 8 == 0 && have_avx2();
    if (vec) abs_sum = base_what_avx2(x, q, n, f->s, f->z, what);
#endif
    if (!vec)
        for (int64_t i = 0; i < n; i++) what[i] = ((float)q[i] - f->z) * f->s;
    if (K > 1) memset(o->bits, 0, (size_t)((K - 1) * o->nb8));
    for (int k = 2; k <= K; k++) {
        const float *prev = what + (size_t)(k - 2) * g;
        float *cur = what + (size_t)(k - 1) * g;
        uint8_t *bits = o->bits + (k - 2) * o->nb8;
#ifdef MWQ_X86
        if (vec && !h) { o->a16[k - 1] = sign_level_avx2(x, prev, n, cur, bits, &err[k - 1], &abs_sum); continue; }
#endif
        o->a16[k - 1] = sign_level_scalar(x, h, prev, n, cur, bits, &err[k - 1], &abs_sum);
    }
}

/* Quantize x[0..n) = row r, group j, all levels; what[k*g + i] receives
 * W_{k+1}.  The base fit is chosen among the candidates of base_candidates by
 * mwq.search_objective: the level-1 error (base), the top level's (top), or
 * the sum over levels 1..K (all).  bits: scratch of (K-1) * nb8 bytes. */
static int quant_group(mwq_matrix *m, int64_t r, int64_t j, const float *x, const float *h, int64_t n,
                       const mwq_config *c, uint8_t *q, float *what, uint8_t *bits)
{
    const kern_shape *s = &m->shape;
    const int64_t G = kern_groups_per_row(s), c0 = j * s->group;
    const int b1 = s->base_bits, g = (int)s->group, K = m->levels;
    mwq_base_fit cand[3];
    int nc, best = 0;
    int rc = base_candidates(x, h, n, b1, c, cand, &nc);
    if (rc == D2_EINVAL) {
        /* the rtn path checks finiteness here, in a pass it makes anyway */
        int64_t i = 0;
        while (i < n && isfinite(x[i])) i++;
        D2_ERROR(D2_EINVAL, "weights: element (%lld, %lld) (index %lld) is %s", (long long)r, (long long)(c0 + i),
                 (long long)(r * s->cols + c0 + i), isnan(x[i]) ? "NaN" : "Inf");
    }
    if (rc) { d2_err_prefix("row %lld, columns %lld..%lld: ", (long long)r, (long long)c0, (long long)(c0 + n - 1)); return rc; }
    double err[KERN_MAX_LEVELS];
    int have_q = 0;
    group_out o = {bits, (n + 31) / 32 * 4, {0}};
    if (nc > 1 && (c->search_objective[0] == 'b' || K == 1 || n > MWQ_STACK_CODES)) {
        /* level-1 error only: no dry runs of the residual levels; the
         * winner's codes are kept (qb on the stack for n <= MWQ_STACK_CODES) */
        uint8_t qb[MWQ_STACK_CODES];
        double be = INFINITY;
        for (int i = 0; i < nc; i++) {
            uint8_t *qq = n <= MWQ_STACK_CODES && i > 0 ? qb : q;
            double e = codes_for(x, h, n, cand[i].s, cand[i].z, (1 << b1) - 1, qq);
            if (e < be) {
                be = e;
                best = i;
                if (qq != q) memcpy(q, qq, (size_t)n);
            }
        }
        have_q = n <= 4096;
    } else if (nc > 1) {
        /* dry runs: the levels of every candidate, nothing written */
        double be = INFINITY;
        for (int i = 0; i < nc; i++) {
            run_levels(x, h, n, b1, K, g, &cand[i], q, 0, what, err, &o);
            double sc = 0;
            if (c->search_objective[0] == 'b') sc = err[0];
            else if (c->search_objective[0] == 't') sc = err[K - 1];
            else for (int k = 0; k < K; k++) sc += err[k];
            if (sc < be) { be = sc; best = i; }
        }
    }
    run_levels(x, h, n, b1, K, g, &cand[best], q, have_q, what, err, &o);
    /* into the chunks: level-1 slices, sign planes, scales, zeros */
    uint8_t *ch = m->chunk[0];
    int w[KERN_MAX_SLICES], lo[KERN_MAX_SLICES], ns = kern_level_slices(s, 1, w, lo);
    uint8_t *bp = ch + kern_chunk_planes_offset(s, 1) + r * kern_level_row_bytes(s, 1);
    for (int i = 0; i < ns; i++) {
        kern_pack_codes(bp, s->cols, w[i], lo[i], c0, q, n);
        bp += kern_slice_bytes(s->cols, w[i]);
    }
    for (int k = 2; k <= K; k++)
        kern_pack_bits(m->chunk[k - 1] + kern_chunk_planes_offset(s, k) + r * kern_level_row_bytes(s, k), s->cols, c0,
                       o.bits + (k - 2) * o.nb8, n);
    wr16(ch + 2 * (r * G + j), cand[best].s16);
    wr16(ch + kern_chunk_zeros_offset(s) + 2 * (r * G + j), cand[best].z16);
    for (int k = 2; k <= K; k++) wr16(m->chunk[k - 1] + 2 * (r * G + j), o.a16[k - 1]);
    return D2_OK;
}

#ifdef MWQ_X86
/* index of the first non-finite value, or n */
__attribute__((target("avx2,fma"))) static int64_t first_nonfinite_avx2(const float *v, int64_t n)
{
    const __m256i em = _mm256_set1_epi32(0x7f800000);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i any = _mm256_setzero_si256();
        for (int k = 0; k < 64; k += 8) {
            __m256i e = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(v + i + k)), em);
            any = _mm256_or_si256(any, _mm256_cmpeq_epi32(e, em));
        }
        if (!_mm256_testz_si256(any, any)) break;
    }
    for (; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}
#endif

static int check_finite(const float *v, int64_t rows, int64_t cols, const char *what)
{
    int64_t n = rows * cols, i = 0;
#ifdef MWQ_X86
    if (have_avx2()) i = first_nonfinite_avx2(v, n);
    else
#endif
        while (i < n && isfinite(v[i])) i++;
    if (i < n)
        D2_ERROR(D2_EINVAL, "%s: element (%lld, %lld) (index %lld) is %s", what, (long long)(i / cols), (long long)(i % cols),
                 (long long)i, isnan(v[i]) ? "NaN" : "Inf");
    return D2_OK;
}

/* One worker's rows of mwq_quantize_columns: its own scratch, rows [lo, hi)
 * of the matrix (byte-disjoint in every chunk: kern.h's layout). */
typedef struct cols_job {
    mwq_matrix *m;
    const float *w, *hdiag;
    const mwq_config *c;
    int64_t c0, c1;
    int comp_level;
    float *comp_what;
    uint8_t *q, *bits; /* per worker: g and K * nb8 bytes, at strides qs and bs */
    float *what;       /* per worker: K * g floats, at stride ws floats */
    int64_t nb8;
    size_t qs, bs, ws; /* strides: whole multiples of SCRATCH_ALIGN bytes */
} cols_job;

/* Each worker's scratch starts on its own 128-byte boundary (two cache
 * lines: adjacent-line prefetch): workers writing neighbouring scratch in
 * one line made two threads barely faster than one (v1, 512 x 8192). */
#define SCRATCH_ALIGN 128
static size_t scratch_round(size_t n) { return (n + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN; }

static int cols_rows(void *ctx, int64_t lo, int64_t hi, int worker)
{
    const cols_job *J = ctx;
    const kern_shape *s = &J->m->shape;
    const int64_t g = s->group, cols = s->cols;
    uint8_t *q = J->q + (size_t)worker * J->qs, *bits = J->bits + (size_t)worker * J->bs;
    float *what = J->what + (size_t)worker * J->ws;
    for (int64_t r = lo; r < hi; r++)
        for (int64_t j = J->c0 / g; j * g < J->c1; j++) {
            int64_t n = (j + 1) * g <= cols ? g : cols - j * g;
            D2_TRY(quant_group(J->m, r, j, J->w + r * cols + j * g, J->hdiag ? J->hdiag + j * g : NULL, n, J->c, q, what, bits));
            if (J->comp_what)
                memcpy(J->comp_what + r * (J->c1 - J->c0) + (j * g - J->c0), what + (size_t)(J->comp_level - 1) * g,
                       (size_t)n * sizeof *what);
        }
    return D2_OK;
}

int mwq_quantize_columns(mwq_matrix *m, const float *w, int64_t c0, int64_t c1, const float *hdiag, const mwq_config *c,
                         int comp_level, float *comp_what, int threads)
{
    const kern_shape *s = &m->shape;
    const int64_t g = s->group, K = m->levels, rows = s->rows;
    if (threads < 1) threads = 1;
    if (threads > rows) threads = (int)(rows < 1 ? 1 : rows);
    const size_t T = (size_t)threads;
    cols_job J = {.m = m, .w = w, .hdiag = hdiag, .c = c, .c0 = c0, .c1 = c1, .comp_level = comp_level, .comp_what = comp_what,
                  .nb8 = (g + 31) / 32 * 4};
    J.qs = scratch_round((size_t)g);
    J.bs = scratch_round((size_t)(K * J.nb8));
    J.ws = scratch_round((size_t)(K * g) * sizeof *J.what) / sizeof *J.what;
    J.q = aligned_alloc(SCRATCH_ALIGN, T * J.qs);
    J.bits = aligned_alloc(SCRATCH_ALIGN, T * J.bs);
    J.what = aligned_alloc(SCRATCH_ALIGN, T * J.ws * sizeof *J.what);
    if (!J.q || !J.what || !J.bits) { free(J.q); free(J.what); free(J.bits); D2_ERROR(D2_ENOMEM, "out of memory"); }
    /* the run-time CPU tests cache their answer in statics: ask them here,
     * before any worker does */
#ifdef MWQ_X86
    (void)have_avx2();
#endif
    (void)kern_have_avx2();
    int rc = par_run(threads, rows, par_grain(rows, threads, 16), cols_rows, &J, NULL);
    free(J.q);
    free(J.bits);
    free(J.what);
    return rc;
}

/* rtn mode: every group fitted on its weight error, no calibration */
static int rtn_quantize(mwq_matrix *m, const float *w, const float *X, int64_t T, const mwq_config *c, int threads)
{
    (void)X;
    (void)T;
    return mwq_quantize_columns(m, w, 0, m->shape.cols, NULL, c, 1, NULL, threads);
}

static const mwq_mode mwq_modes[] = {
    {.name = "rtn", .needs_calib = 0, .block_columns = 0, .quantize = rtn_quantize},
    {.name = "gptq", .needs_calib = 1, .block_columns = 1, .quantize = gptq_quantize},
};

const mwq_mode *mwq_mode_find(const char *name)
{
    for (size_t i = 0; i < sizeof mwq_modes / sizeof mwq_modes[0]; i++)
        if (!strcmp(name, mwq_modes[i].name)) return &mwq_modes[i];
    return NULL;
}

int mwq_matrix_quantize(const float *w, int64_t rows, int64_t cols, const mwq_config *c, const float *calib, int64_t T,
                        mwq_matrix **out)
{
    return mwq_matrix_quantize_threads(w, rows, cols, c, calib, T, 1, out);
}

int mwq_matrix_quantize_threads(const float *w, int64_t rows, int64_t cols, const mwq_config *c, const float *calib, int64_t T,
                                int threads, mwq_matrix **out)
{
    *out = NULL;
    if (threads < 1 || threads > PAR_MAX_THREADS) D2_ERROR(D2_ERANGE, "threads: %d is outside 1..%d", threads, PAR_MAX_THREADS);
    D2_TRY(mwq_config_check(c));
    if (rows < 1 || cols < 1) D2_ERROR(D2_EINVAL, "matrix %lld x %lld: empty", (long long)rows, (long long)cols);
    const mwq_mode *md = mwq_mode_find(c->mode); /* found: mwq_config_check passed */
    /* rtn mode finds NaN/Inf group by group (quant_group) in a pass it makes
     * anyway; gptq mixes columns, so it checks everything first */
    if (md->needs_calib) {
        D2_TRY(check_finite(w, rows, cols, "weights"));
        if (!calib || T < 1) D2_ERROR(D2_EINVAL, "gptq mode needs calibration activations (--calib)");
        D2_TRY(check_finite(calib, T, cols, "calibration activations"));
    }
    kern_shape shape = {rows, cols, c->group, (int)c->base_bits};
    mwq_matrix *m;
    D2_TRY(mwq_matrix_new(&shape, (int)c->levels, &m));
    int rc = md->quantize(m, w, calib, T, c, threads);
    if (rc) { mwq_matrix_free(m); return rc; }
    *out = m;
    return D2_OK;
}
