/* kq.c - the MWQ-K nested format of kq.h: quantizer (per sub-block scale and
 * min search, quantized sub-block scales, residual sign levels with a factor
 * chosen per sub-block), dequantization, and the int8 dot / mat-vec kernels.
 * The scalar and AVX2 kernels compute exact integer sums (the AVX2 paths
 * combine the levels' sums in one scaled int32 accumulator, look up the
 * fused weight of levels lo..hi in a table, or, for tied formats, build one
 * integer code per weight) and differ only in float rounding:
 * where and in what order the integers are converted and summed.  The AVX2
 * v1k mat-vec of levels reaching level 2 runs two rows per pass (shared
 * activation loads), each row bit-identical to its one-row dot. */
#include "config.h"
#include "quant/kq.h"
#include "quant/f16.h"
#include "quant/kern.h"
#include "quant/qerr.h"
#include "core/err.h"
#include "core/par.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define KQ_X86 1
#define KQ_AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

/* ---- format ------------------------------------------------------------ */
const float kq_gi[4] = {0.2f, 0.4f, 0.7f, 1.0f}, kq_go[4] = {0.4f, 0.8f, 1.3f, 2.0f}, kq_h[4] = {0.6f, 0.8f, 1.0f, 1.25f};
/* the same factors in tenths: the kernels fold them into the int8 sums */
static const uint8_t kq_gi10[4] = {2, 4, 7, 10}, kq_go10[4] = {4, 8, 13, 20};

int kq_format_preset(const char *name, kq_format *f)
{
    static const struct { const char *name; kq_format f; } presets[] = {
        {.name = "v1k", .f = {.base_bits = 2, .levels = 3, .scale_bits = 4, .min_bits = 4, .min_rel = 1, .resid = KQ_BUCKET}},
        {.name = "v2k", .f = {.base_bits = 5, .levels = 4, .scale_bits = 6, .min_bits = 6, .min_rel = 0, .resid = KQ_TIED}},
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(name, presets[i].name)) { *f = presets[i].f; return D2_OK; }
    D2_ERROR(D2_EINVAL, "preset '%s': expected v1k or v2k", name);
}

int kq_format_check(const kq_format *f)
{
    if (f->base_bits < 1 || f->base_bits > 8) D2_ERROR(D2_ERANGE, "kq base_bits: %d is outside 1..8", f->base_bits);
    if (f->levels < 1 || f->base_bits + f->levels - 1 > 8)
        D2_ERROR(D2_ERANGE, "kq levels: %d levels on a %d-bit base give more than 8 bits", f->levels, f->base_bits);
    if (f->scale_bits < 1 || f->scale_bits > 8) D2_ERROR(D2_ERANGE, "kq scale_bits: %d is outside 1..8", f->scale_bits);
    if (f->min_bits < 1 || f->min_bits > 8) D2_ERROR(D2_ERANGE, "kq min_bits: %d is outside 1..8", f->min_bits);
    if (f->min_rel != 0 && f->min_rel != 1) D2_ERROR(D2_ERANGE, "kq min_rel: %d is not 0 or 1", f->min_rel);
    if (f->resid != KQ_TIED && f->resid != KQ_BUCKET) D2_ERROR(D2_ERANGE, "kq resid: %d is not TIED (0) or BUCKET (1)", (int)f->resid);
    return D2_OK;
}

static int head_bytes(const kq_format *f) { return f->min_rel ? 2 : 4; }
static int scales_bytes(const kq_format *f) { return (KQ_NSUB * (f->scale_bits + f->min_bits) + 7) / 8; }
static int res_code_bytes(const kq_format *f, int level) { return f->resid == KQ_BUCKET ? (level == 2 ? 4 : 2) : 0; }

int64_t kq_super_bytes(const kq_format *f, int level)
{
    if (level == 1) return head_bytes(f) + scales_bytes(f) + 32 * f->base_bits;
    return 32 + res_code_bytes(f, level);
}

int64_t kq_chunk_bytes(const kq_format *f, int64_t rows, int64_t cols, int level)
{
    return rows * (cols / KQ_SUPER) * kq_super_bytes(f, level);
}

/* slices of the base code: widths 4, 2, 1, greedy, low bits first */
static int base_slices(int b1, int w[3], int o[3])
{
    int n = 0, lo = 0;
    for (int width = 4; width >= 1; width /= 2)
        while (b1 >= width && n < 3) { w[n] = width; o[n++] = lo; lo += width; b1 -= width; }
    return n;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* LSB-first bit stream: field i of `bits` bits */
static inline int bs_get(const uint8_t *p, int bitpos, int bits)
{
    int v = 0;
    for (int b = 0; b < bits; b++, bitpos++) v |= ((p[bitpos >> 3] >> (bitpos & 7)) & 1) << b;
    return v;
}
static inline void bs_put(uint8_t *p, int bitpos, int bits, int v)
{
    const unsigned u = ((unsigned)v & ((1u << bits) - 1)) << (bitpos & 7); /* bits <= 8: at most 2 bytes */
    p[bitpos >> 3] |= (uint8_t)u;
    if (u >> 8) p[(bitpos >> 3) + 1] |= (uint8_t)(u >> 8);
}

/* The level-1 header of one super-block, decoded: the stored s_j and m_j
 * (every path uses these floats), and the codes for the integer kernels. */
typedef struct sb_head {
    float d, dm;                 /* d; the min multiplier: dmin, or d * kappa (min_rel) */
    int sc[KQ_NSUB], mc[KQ_NSUB];
    float s[KQ_NSUB], m[KQ_NSUB];
} sb_head;

static inline float kappa(const kq_format *f) { return (float)((1 << f->base_bits) - 1) / (float)((1 << f->min_bits) - 1); }

static void head_decode(const kq_format *f, sb_head *h)
{
    for (int j = 0; j < KQ_NSUB; j++) {
        h->s[j] = h->d * (float)h->sc[j];
        h->m[j] = h->dm * (float)(f->min_rel ? h->sc[j] * h->mc[j] : h->mc[j]);
    }
}

static void head_read(const kq_format *f, const uint8_t *p, sb_head *h)
{
    h->d = f16_to_float(rd16(p));
    h->dm = f->min_rel ? h->d * kappa(f) : f16_to_float(rd16(p + 2));
    const uint8_t *sp = p + head_bytes(f);
    for (int j = 0; j < KQ_NSUB; j++) {
        h->sc[j] = bs_get(sp, j * f->scale_bits, f->scale_bits);
        h->mc[j] = bs_get(sp, KQ_NSUB * f->scale_bits + j * f->min_bits, f->min_bits);
    }
    head_decode(f, h);
}

/* the residual codes of a level record: gi / go (level 2) or h (k > 2) per sub-block */
static void res_codes(const kq_format *f, const uint8_t *r, int level, int gi[KQ_NSUB], int go[KQ_NSUB], int h[KQ_NSUB])
{
    for (int j = 0; j < KQ_NSUB; j++) {
        gi[j] = go[j] = h[j] = 0;
        if (f->resid != KQ_BUCKET) continue;
        if (level == 2) { gi[j] = bs_get(r + 32, 4 * j, 2); go[j] = bs_get(r + 32, 4 * j + 2, 2); }
        else h[j] = bs_get(r + 32, 2 * j, 2);
    }
}

/* ---- matrix -------------------------------------------------------------- */
int kq_matrix_new(const kq_format *f, int64_t rows, int64_t cols, kq_matrix **out)
{
    *out = NULL;
    D2_TRY(kq_format_check(f));
    if (rows < 1 || cols < 1) D2_ERROR(D2_EINVAL, "matrix %lld x %lld: empty", (long long)rows, (long long)cols);
    if (cols % KQ_SUPER != 0)
        D2_ERROR(D2_EINVAL, "matrix %lld x %lld: cols must be a multiple of %d for the k-quant super-blocks", (long long)rows,
                 (long long)cols, KQ_SUPER);
    if (rows > (1LL << 32) || cols > (1LL << 32)) D2_ERROR(D2_ERANGE, "matrix %lld x %lld: too large", (long long)rows, (long long)cols);
    kq_matrix *m = calloc(1, sizeof *m);
    if (!m) D2_ERROR(D2_ENOMEM, "out of memory");
    m->fmt = *f;
    for (int k = 2; k <= KQ_MAX_LEVELS; k++)
        for (int c = 0; c < 4; c++)
            m->step[k - 1][c] = f->resid == KQ_TIED ? ldexpf(1.0f, -k) : k == 2 ? 0.25f : ldexpf(kq_h[c], -k);
    m->rows = rows;
    m->cols = cols;
    for (int k = 1; k <= f->levels; k++) {
        m->chunk_bytes[k - 1] = kq_chunk_bytes(f, rows, cols, k);
        m->chunk[k - 1] = calloc(1, (size_t)m->chunk_bytes[k - 1] + 32);
        if (!m->chunk[k - 1]) { kq_matrix_free(m); D2_ERROR(D2_ENOMEM, "out of memory"); }
    }
    *out = m;
    return D2_OK;
}

void kq_matrix_free(kq_matrix *m)
{
    if (!m) return;
    for (int k = 0; k < KQ_MAX_LEVELS; k++) free(m->chunk[k]);
    free(m);
}

int64_t kq_matrix_scales_below(const kq_matrix *m, uint16_t below)
{
    const int64_t n = m->rows * (m->cols / KQ_SUPER), sb = kq_super_bytes(&m->fmt, 1);
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = m->chunk[0] + i * sb; /* d, then dmin when min_rel = 0 */
        int sub = 0;
        for (int h = 0; h < (m->fmt.min_rel ? 1 : 2); h++) {
            const unsigned v = (unsigned)p[2 * h] | (unsigned)p[2 * h + 1] << 8;
            const unsigned mag = v & 0x7fffu; /* positive FP16 values order as their bits */
            sub |= mag != 0 && mag < below;
        }
        cnt += sub;
    }
    return cnt;
}

int kq_underflow_check(const float *w, int64_t rows, int64_t cols, const kq_format *f, const double *rel, float *scratch,
                       int threads, kq_underflow *out)
{
    const int64_t n = rows * cols;
    double mx = 0;
    for (int64_t i = 0; i < n; i++) mx = fabs(w[i]) > mx ? fabs(w[i]) : mx;
    int e;
    frexp(mx, &e);
    const int shift = 10 - e; /* max |w| x 2^shift in 512..1024 */
    float *ws = malloc((size_t)n * sizeof *ws);
    if (!ws) D2_ERROR(D2_ENOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) ws[i] = ldexpf(w[i], shift);
    kq_matrix *r = NULL;
    int rc = kq_quantize_threads(ws, rows, cols, f, 4, threads, &r);
    kq_underflow u = {.worst = 1, .level = 0, .ref_err = 0, .shift = shift};
    for (int k = 1; k <= f->levels && !rc; k++) {
        for (int64_t row = 0; row < rows; row++) kq_row_dequant(r, k, row, scratch + row * cols);
        qerr_row q;
        if ((rc = qerr_eval(ws, scratch, rows, cols, NULL, 0, &q))) break;
        const double ratio = q.rel_err > 0 ? rel[k - 1] / q.rel_err : rel[k - 1] > 0 ? INFINITY : 1;
        if (ratio > u.worst) {
            u.worst = ratio;
            u.level = k;
            u.ref_err = q.rel_err;
        }
    }
    kq_matrix_free(r);
    free(ws);
    if (rc) return rc;
    *out = u;
    return D2_OK;
}

static inline const uint8_t *sb_ptr(const kq_matrix *m, int level, int64_t row, int64_t b)
{
    return m->chunk[level - 1] + (row * (m->cols / KQ_SUPER) + b) * kq_super_bytes(&m->fmt, level);
}

/* ---- quantizer -----------------------------------------------------------
 * Lane layout: the search (fit_lanes, bucket_lanes in kq_lanes.h) puts the
 * 8 sub-blocks of a super-block side by side (lane j = sub-block j), one
 * vector per weight position i (weight 32j + i); on the AVX-512 path two
 * super-blocks, 16 lanes.  Every per-sub-block sum is a lane of a vector,
 * so no candidate needs a horizontal reduction; the rest (codes, packing,
 * sign levels: quant_tail) works on one super-block, 8 lanes.  The code is
 * written once on GCC / clang vector types and compiled three times: plain
 * (SSE2 on x86-64: each 8-lane operation as two 4-lane ones), with
 * target("avx2") and with AVX-512 (16 lanes), never with a multiply-add
 * fused (the AVX2 target leaves out "fma"; the AVX-512 one implies it, so
 * contraction is switched off for it: the attribute below for GCC, the
 * pragma for clang), so every path gives the same bytes (t_kq compares
 * them); kq_qpath_set chooses. */
#ifdef __clang__
#pragma clang fp contract(off)
#endif
static inline float q_rint(float v)
{
    const float mg = 12582912.0f; /* 1.5 * 2^23: round to nearest even for |v| < 2^22 */
    return v >= 0 ? (v + mg) - mg : (v - mg) + mg;
}

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define V8(c) ((v8f){(c), (c), (c), (c), (c), (c), (c), (c)})
#define VSEL(k, a, b) ((v8f)((v8i)(b) ^ ((k) & ((v8i)(a) ^ (v8i)(b))))) /* k: lane masks (0 / -1); a ^ b hoists */
#define VAND(k, a) ((v8f)((k) & (v8i)(a)))
#define VABS(a) ((v8f)((v8i)(a) & 0x7fffffff))
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));
#define V4(c) ((v4d){(c), (c), (c), (c)})
#define VSEL4(k, a, b) ((v4d)((v4l)(b) ^ ((k) & ((v4l)(a) ^ (v4l)(b)))))
#define VRINT(v) (((v) + V8(12582912.0f)) - V8(12582912.0f)) /* round to nearest even, 0 <= v < 2^22 */
typedef float v4f __attribute__((vector_size(16)));

/* lanes 4q..4q+3 of a float vector, in double (exact) */
#define LANES4D(pv, q) ((v4d)__builtin_convertvector(lanes4f((const char *)(pv), (q)), v4d))
static inline v4f lanes4f(const char *p, int q)
{
    v4f h;
    memcpy(&h, p + sizeof h * q, sizeof h);
    return h;
}

/* One super-block's weights by position, X[i][j] = x[32 j + i] (8 x 8
 * transposes where the compiler has __builtin_shufflevector: GCC >= 12,
 * clang; element by element otherwise); 1 if one is NaN or Inf */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define KQ_SHUF(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#endif
static inline __attribute__((always_inline)) int load_lanes8(const float *x, v8f X[KQ_SUB])
{
#ifdef KQ_SHUF
    for (int q = 0; q < KQ_SUB / 8; q++) {
        v8f r[8], t[8], u[8];
        for (int j = 0; j < 8; j++) memcpy(&r[j], x + KQ_SUB * j + 8 * q, sizeof r[j]);
        for (int j = 0; j < 8; j += 2) { /* t[j] = r_j0 r_j+1,0 r_j1 r_j+1,1 (and 4, 5); t[j + 1]: 2, 3 (6, 7) */
            t[j] = KQ_SHUF(r[j], r[j + 1], 0, 8, 1, 9, 4, 12, 5, 13);
            t[j + 1] = KQ_SHUF(r[j], r[j + 1], 2, 10, 3, 11, 6, 14, 7, 15);
        }
        for (int h = 0; h < 8; h += 4) { /* u[h + c]: element c (and c + 4) of rows h..h+3 */
            u[h + 0] = KQ_SHUF(t[h], t[h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[h + 1] = KQ_SHUF(t[h], t[h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
            u[h + 2] = KQ_SHUF(t[h + 1], t[h + 3], 0, 1, 8, 9, 4, 5, 12, 13);
            u[h + 3] = KQ_SHUF(t[h + 1], t[h + 3], 2, 3, 10, 11, 6, 7, 14, 15);
        }
        for (int c = 0; c < 4; c++) {
            X[8 * q + c] = KQ_SHUF(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
            X[8 * q + c + 4] = KQ_SHUF(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        }
    }
#else
    for (int i = 0; i < KQ_SUB; i++)
        for (int j = 0; j < KQ_NSUB; j++) X[i][j] = x[KQ_SUB * j + i];
#endif
    v8i bad = {0};
    for (int i = 0; i < KQ_SUB; i++) bad |= X[i] - X[i] != V8(0.0f); /* NaN for NaN and +-Inf */
    int any = 0;
    for (int j = 0; j < KQ_NSUB; j++) any |= bad[j] != 0;
    return any;
}

/* codes of v[0..8) on `bits` bits with an FP16 step: the step is max/L */
static void quant_codes8(const float *v, int bits, uint16_t *d16, int *c)
{
    float mx = 0;
    for (int j = 0; j < KQ_NSUB; j++) mx = v[j] > mx ? v[j] : mx;
    const int L = (1 << bits) - 1;
    *d16 = f16_from_float(mx / L);
    const float d = f16_to_float(*d16);
    for (int j = 0; j < KQ_NSUB; j++) {
        float q = d > 0 ? q_rint(v[j] / d) : 0;
        c[j] = q < 0 ? 0 : q > L ? L : (int)q;
    }
}

/* the step of weight i at level k >= 2 of a BUCKET sub-block (kq.h) */
static inline float bucket_step(const kq_matrix *m, float s, int outward, int gi, int go, int k, int h)
{
    if (m->fmt.resid == KQ_TIED) return s * m->step[k - 1][0];
    return (s * (outward ? kq_go[go] : kq_gi[gi])) * m->step[k - 1][h];
}

/* The 32 sign bytes of a level from per-lane position masks w[j] (bit i =
 * weight i of sub-block j): byte i, bit j = bit i of w[j], four 8 x 8 bit
 * transposes (Hacker's Delight). */
static inline void sign_bytes(const uint32_t w[KQ_NSUB], uint8_t r[KQ_SUB])
{
    for (int c = 0; c < 4; c++) {
        uint64_t x = 0, t;
        for (int j = 0; j < KQ_NSUB; j++) x |= (uint64_t)((w[j] >> (8 * c)) & 0xff) << (8 * j);
        t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL; x = x ^ t ^ (t << 7);
        t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL; x = x ^ t ^ (t << 14);
        t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL; x = x ^ t ^ (t << 28);
        for (int i = 0; i < 8; i++) r[8 * c + i] = (uint8_t)(x >> (8 * i));
    }
}

/* Levels 1..K of one super-block once its header h (decoded) and factors
 * are chosen: X[i] = weight i of the 8 sub-blocks. */
static inline __attribute__((always_inline)) void quant_tail(kq_matrix *m, int64_t row, int64_t b, const v8f *X, const sb_head *h, uint16_t d16,
                                                             uint16_t dm16, const int *gi, const int *go, const int *h3)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1;
    /* level 1: the codes of the stored s_j, m_j (the same operations as the search) */
    v8f sv, mv, cur[KQ_SUB], Q[KQ_SUB];
    for (int j = 0; j < KQ_NSUB; j++) { sv[j] = h->s[j]; mv[j] = h->m[j]; }
    const v8f zero = V8(0.0f), nm = V8((float)nmax);
    const v8f inv = VSEL(sv > zero, V8(1.0f) / VSEL(sv > zero, sv, V8(1.0f)), zero);
    for (int i = 0; i < KQ_SUB; i++) {
        v8f v = (X[i] + mv) * inv;
        v = VSEL(v > zero, v, zero);
        v = VSEL(v < nm, v, nm);
        Q[i] = VRINT(v);
        cur[i] = sv * Q[i] - mv;
    }
    uint8_t *p = (uint8_t *)sb_ptr(m, 1, row, b);
    wr16(p, d16);
    if (!f->min_rel) wr16(p + 2, dm16);
    uint8_t *sp = p + head_bytes(f);
    for (int j = 0; j < KQ_NSUB; j++) {
        bs_put(sp, j * f->scale_bits, f->scale_bits, h->sc[j]);
        bs_put(sp, KQ_NSUB * f->scale_bits + j * f->min_bits, f->min_bits, h->mc[j]);
    }
    /* pack: the inverse of base_codes */
    uint8_t q[KQ_SUPER];
    for (int i = 0; i < KQ_SUB; i++)
        for (int j = 0; j < KQ_NSUB; j++) q[KQ_SUB * j + i] = (uint8_t)Q[i][j];
    int w[3], o[3], ns = base_slices(f->base_bits, w, o);
    sp += scales_bytes(f);
    for (int t = 0; t < ns; t++) {
        const int per = 256 / w[t], mask = (1 << w[t]) - 1;
        for (int blk = 0; blk < w[t]; blk++)
            for (int u = 0; u < per / 32; u++)
                for (int i = 0; i < 32; i++)
                    sp[blk * 32 + i] |= (uint8_t)(((q[blk * per + 32 * u + i] >> o[t]) & mask) << (w[t] * u));
        sp += 32 * w[t];
    }
    /* residual levels: signs of x - W_{k-1}; BUCKET: the factors found by
     * the search for levels 2 and 3, and for k > 3 the h minimising the
     * level-k error; a weight's step: bucket_step (kq.h) */
    v8i outw[KQ_SUB];
    for (int k = 2; k <= f->levels; k++) {
        uint8_t *r = (uint8_t *)sb_ptr(m, k, row, b);
        int hk[KQ_NSUB] = {0};
        if (k == 2)
            for (int i = 0; i < KQ_SUB; i++)
                outw[i] = f->resid == KQ_BUCKET ? Q[i] == VSEL(X[i] - cur[i] >= zero, nm, zero) : (v8i){0};
        if (f->resid == KQ_BUCKET) {
            if (k == 2)
                for (int j = 0; j < KQ_NSUB; j++) bs_put(r + 32, 4 * j, 2, gi[j]), bs_put(r + 32, 4 * j + 2, 2, go[j]);
            else {
                if (k == 3)
                    for (int j = 0; j < KQ_NSUB; j++) hk[j] = h3[j];
                else {
                    v8f be = V8(INFINITY), bc = zero;
                    for (int c = 0; c < 4; c++) {
                        v8f ai, ao, e = zero;
                        for (int j = 0; j < KQ_NSUB; j++) {
                            ai[j] = bucket_step(m, h->s[j], 0, gi[j], go[j], k, c);
                            ao[j] = bucket_step(m, h->s[j], 1, gi[j], go[j], k, c);
                        }
                        for (int i = 0; i < KQ_SUB; i++) {
                            const v8f a = VSEL(outw[i], ao, ai), dd = X[i] - cur[i];
                            const v8f v = VSEL(dd >= zero, dd - a, dd + a);
                            e += v * v;
                        }
                        const v8i lt = e < be;
                        be = VSEL(lt, e, be);
                        bc = VSEL(lt, V8((float)c), bc);
                    }
                    for (int j = 0; j < KQ_NSUB; j++) hk[j] = (int)bc[j];
                }
                for (int j = 0; j < KQ_NSUB; j++) bs_put(r + 32, 2 * j, 2, hk[j]);
            }
        }
        v8f ai, ao;
        for (int j = 0; j < KQ_NSUB; j++) {
            ai[j] = bucket_step(m, h->s[j], 0, gi[j], go[j], k, hk[j]);
            ao[j] = bucket_step(m, h->s[j], 1, gi[j], go[j], k, hk[j]);
        }
        v8i wb = {0};
        for (int i = 0; i < KQ_SUB; i++) {
            const v8i pos = X[i] - cur[i] >= zero;
            const v8f a = VSEL(outw[i], ao, ai);
            wb |= pos & (int32_t)(1u << i);
            cur[i] = cur[i] + VSEL(pos, a, -a);
        }
        uint32_t wl[KQ_NSUB];
        for (int j = 0; j < KQ_NSUB; j++) wl[j] = (uint32_t)wb[j];
        sign_bytes(wl, r);
    }
}

/* the level-1 header of a super-block from its fitted s_j, m_j: d (FP16,
 * max / smax), the scale codes, and the min codes (relative to the stored
 * scale, or on their own FP16 dmin) */
static void quant_head(const kq_format *f, const float s[KQ_NSUB], const float mn[KQ_NSUB], sb_head *h, uint16_t *d16, uint16_t *dm16)
{
    const int mmax = (1 << f->min_bits) - 1;
    *dm16 = 0;
    quant_codes8(s, f->scale_bits, d16, h->sc);
    h->d = f16_to_float(*d16);
    if (f->min_rel) {
        h->dm = h->d * kappa(f);
        for (int j = 0; j < KQ_NSUB; j++) {
            const float u = h->sc[j] > 0 && h->dm > 0 ? q_rint(mn[j] / (h->dm * (float)h->sc[j])) : 0;
            h->mc[j] = u < 0 ? 0 : u > mmax ? mmax : (int)u;
        }
    } else {
        quant_codes8(mn, f->min_bits, dm16, h->mc);
        h->dm = f16_to_float(*dm16);
    }
}

#if defined(__GNUC__) && !defined(__clang__)
#define KQ_Q_OPT __attribute__((optimize("O3"))) /* unrolls the small factor loops */
/* AVX-512 implies FMA: nothing fused; loops unrolled (1.045x on the AVX-512
 * path in alternating runs; the same for KQ_Q_OPT made the AVX2 path 0.96x) */
#define KQ_Q_OPT512 __attribute__((optimize("O3", "fp-contract=off", "unroll-loops")))
#else
#define KQ_Q_OPT
#define KQ_Q_OPT512 /* clang: the fp contract pragma above */
#endif
#define KQ_AVX512_TARGET "avx2,avx512f,avx512vl,avx512bw,avx512dq"
#define KQL_W 8 /* the plain path */
#define KQL_ISA 0
#define KQL_FN(name) name##_plain
#include "quant/kq_lanes.h"
#undef KQL_W
#undef KQL_ISA
#undef KQL_FN
#ifdef KQ_X86
#define KQL_W 8
#define KQL_ISA 2
#define KQL_FN(name) name##_avx2
#include "quant/kq_lanes.h"
#undef KQL_W
#undef KQL_ISA
#undef KQL_FN
#define KQL_W 16
#define KQL_ISA 512
#define KQL_FN(name) name##_avx512
#include "quant/kq_lanes.h"
#undef KQL_W
#undef KQL_ISA
#undef KQL_FN
#endif

/* the super-blocks x[t] at (row[t], b[t]), t < n <= the path's group size */
typedef int (*quant_group_fn)(kq_matrix *m, const int64_t *row, const int64_t *b, const float *const *x, int n, int T);
#ifdef KQ_X86
KQ_Q_OPT __attribute__((target("avx2"))) static int quant_group_avx2(kq_matrix *m, const int64_t *row, const int64_t *b, const float *const *x, int n, int T)
{
    return quant_group_body_avx2(m, row, b, x, n, T);
}
KQ_Q_OPT512 __attribute__((target(KQ_AVX512_TARGET))) static int quant_group_avx512(kq_matrix *m, const int64_t *row,
                                                                                                                const int64_t *b, const float *const *x,
                                                                                                                int n, int T)
{
    return quant_group_body_avx512(m, row, b, x, n, T);
}
#endif
KQ_Q_OPT static int quant_group_plain(kq_matrix *m, const int64_t *row, const int64_t *b, const float *const *x, int n, int T)
{
    return quant_group_body_plain(m, row, b, x, n, T);
}
#ifdef __clang__
#pragma clang fp contract(on)
#endif

#ifdef KQ_X86
/* AVX2 + FMA + F16C: the same test as kern.c's */
static int kq_have_avx2(void) { return kern_have_avx2(); }
/* AVX-512 F, VL, BW, DQ with the OS saving the registers (libgcc's and
 * clang's runtime check XCR0 for these features) */
static int kq_have_avx512(void)
{
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = kq_have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq");
    }
    return have;
}
#define KQ_GROUP_AVX2 quant_group_avx2
#define KQ_GROUP_AVX512 quant_group_avx512
#else
static int kq_have_avx2(void) { return 0; }
static int kq_have_avx512(void) { return 0; }
#define KQ_GROUP_AVX2 NULL /* never chosen: not this CPU's */
#define KQ_GROUP_AVX512 NULL
#endif
static int kq_have_always(void) { return 1; }

/* The quantizer's paths, ascending: a path is one row (kq_qpath_set takes
 * the highest row at or below the one asked that this CPU has). */
static const struct kq_qpath_row {
    kq_qpath path;
    const char *name;
    int (*have)(void);
    quant_group_fn fn;
    int group; /* super-blocks per call of fn */
} kq_qpaths[] = {
    {.path = KQ_QPLAIN, .name = "plain", .have = kq_have_always, .fn = quant_group_plain, .group = 1},
    {.path = KQ_QAVX2, .name = "avx2", .have = kq_have_avx2, .fn = KQ_GROUP_AVX2, .group = 1},
    {.path = KQ_QAVX512, .name = "avx512", .have = kq_have_avx512, .fn = KQ_GROUP_AVX512, .group = 2},
};
#define KQ_NQPATHS (sizeof kq_qpaths / sizeof kq_qpaths[0])

static kq_impl impl_now = KQ_AUTO;
static const struct kq_qpath_row *qpath_now = NULL; /* NULL: not chosen yet (KQ_QAUTO) */

kq_qpath kq_qpath_set(kq_qpath p)
{
    const struct kq_qpath_row *r = &kq_qpaths[0];
    for (size_t i = 1; i < KQ_NQPATHS; i++)
        if ((p == KQ_QAUTO || kq_qpaths[i].path <= p) && kq_qpaths[i].have()) r = &kq_qpaths[i];
    qpath_now = r;
    return r->path;
}

const char *kq_qpath_name(kq_qpath p)
{
    if (p == KQ_QAUTO) return "auto";
    for (size_t i = 0; i < KQ_NQPATHS; i++)
        if (kq_qpaths[i].path == p) return kq_qpaths[i].name;
    return "?";
}

/* rows [lo, hi) of kq_quantize_threads: every super-block record is the
 * row's own, so workers share nothing they write */
typedef struct kq_job {
    kq_matrix *m;
    const float *w;
    int T;
    quant_group_fn fn;
    int group; /* super-blocks per call of fn (kq_qpaths) */
} kq_job;

/* the super-blocks of rows [lo, hi) in row-major order, J->group at a time
 * (a group may span rows); on a NaN or Inf, the group again one at a time,
 * so the first by row, then column, is the one named */
static int kq_rows(void *ctx, int64_t lo, int64_t hi, int worker)
{
    (void)worker;
    const kq_job *J = ctx;
    kq_matrix *m = J->m;
    const int64_t cols = m->cols, NB = cols / KQ_SUPER, end = hi * NB;
    int64_t row[2], b[2];
    const float *x[2];
    for (int64_t k = lo * NB; k < end;) {
        const int n = end - k < J->group ? (int)(end - k) : J->group;
        for (int t = 0; t < n; t++) {
            row[t] = (k + t) / NB;
            b[t] = (k + t) % NB;
            x[t] = J->w + row[t] * cols + b[t] * KQ_SUPER;
        }
        if (J->fn(m, row, b, x, n, J->T))
            for (int t = 0; t < n; t++) {
                const float *xr = J->w + row[t] * cols;
                if (!J->fn(m, &row[t], &b[t], &x[t], 1, J->T)) continue;
                for (int64_t c = b[t] * KQ_SUPER; c < cols; c++) /* the first one, by column */
                    if (!isfinite(xr[c]))
                        D2_ERROR(D2_EINVAL, "weights: element (%lld, %lld) is %s", (long long)row[t], (long long)c, isnan(xr[c]) ? "NaN" : "Inf");
            }
        k += n;
    }
    return D2_OK;
}

int kq_quantize(const float *w, int64_t rows, int64_t cols, const kq_format *f, int search_steps, kq_matrix **out)
{
    return kq_quantize_threads(w, rows, cols, f, search_steps, 1, out);
}

int kq_quantize_threads(const float *w, int64_t rows, int64_t cols, const kq_format *f, int search_steps, int threads, kq_matrix **out)
{
    *out = NULL;
    if (search_steps < 0 || search_steps > 31) D2_ERROR(D2_ERANGE, "search_steps: %d is outside 0..31", search_steps);
    if (threads < 1 || threads > PAR_MAX_THREADS) D2_ERROR(D2_ERANGE, "threads: %d is outside 1..%d", threads, PAR_MAX_THREADS);
    if (!qpath_now) kq_qpath_set(KQ_QAUTO); /* resolved here, read-only while the workers run */
    kq_matrix *m;
    D2_TRY(kq_matrix_new(f, rows, cols, &m));
    kq_job J = {.m = m, .w = w, .T = search_steps, .fn = qpath_now->fn, .group = qpath_now->group};
    int rc = par_run(threads, rows, par_grain(rows, threads, 16), kq_rows, &J, NULL);
    if (rc) { kq_matrix_free(m); return rc; }
    *out = m;
    return D2_OK;
}

/* ---- dequantization -------------------------------------------------------- */
/* the 256 base codes of a super-block */
static void base_codes(const kq_format *f, const uint8_t *codes, uint8_t q[KQ_SUPER])
{
    int w[3], o[3], ns = base_slices(f->base_bits, w, o);
    memset(q, 0, KQ_SUPER);
    const uint8_t *sp = codes;
    for (int t = 0; t < ns; t++) {
        const int per = 256 / w[t], mask = (1 << w[t]) - 1;
        for (int blk = 0; blk < w[t]; blk++)
            for (int u = 0; u < per / 32; u++)
                for (int i = 0; i < 32; i++)
                    q[blk * per + 32 * u + i] |= (uint8_t)(((sp[blk * 32 + i] >> (w[t] * u)) & mask) << o[t]);
        sp += 32 * w[t];
    }
}

void kq_row_dequant(const kq_matrix *m, int level, int64_t row, float *out)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1;
    uint8_t q[KQ_SUPER];
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const uint8_t *p = sb_ptr(m, 1, row, b);
        sb_head h;
        head_read(f, p, &h);
        base_codes(f, p + head_bytes(f) + scales_bytes(f), q);
        float *o = out + b * KQ_SUPER;
        for (int c = 0; c < KQ_SUPER; c++) o[c] = h.s[c / KQ_SUB] * (float)q[c] - h.m[c / KQ_SUB];
        const uint8_t *r2 = level >= 2 ? sb_ptr(m, 2, row, b) : NULL;
        int gi[KQ_NSUB], go[KQ_NSUB], hh[KQ_NSUB];
        if (r2) res_codes(f, r2, 2, gi, go, hh);
        for (int k = 2; k <= level; k++) {
            const uint8_t *r = sb_ptr(m, k, row, b);
            int gk[KQ_NSUB], ok_[KQ_NSUB];
            if (k > 2) res_codes(f, r, k, gk, ok_, hh);
            for (int j = 0; j < KQ_NSUB; j++)
                for (int i = 0; i < KQ_SUB; i++) {
                    const int c = KQ_SUB * j + i, pos2 = (r2[i] >> j) & 1;
                    const int outward = f->resid == KQ_BUCKET && ((q[c] == nmax && pos2) || (q[c] == 0 && !pos2));
                    const float a = bucket_step(m, h.s[j], outward, gi[j], go[j], k, k > 2 ? hh[j] : 0);
                    o[c] = o[c] + ((r[i] >> j) & 1 ? a : -a);
                }
        }
    }
}

/* ---- activations ------------------------------------------------------------ */
struct kq_act {
    int64_t cols;
    float *dx;     /* per super-block */
    int8_t *xq;    /* cols (+32 padding) */
    int32_t *bsum; /* per sub-block: sum of xq */
    int16_t *bsum16; /* the same sums as int16 (|sum| <= 32 * 127), for the AVX2 kernels' madd */
};

int kq_act_new(int64_t cols, kq_act **out)
{
    *out = NULL;
    if (cols < 1 || cols % KQ_SUPER) D2_ERROR(D2_EINVAL, "activations: %lld columns is not a multiple of %d", (long long)cols, KQ_SUPER);
    kq_act *a = calloc(1, sizeof *a);
    if (!a) D2_ERROR(D2_ENOMEM, "out of memory");
    a->cols = cols;
    a->dx = calloc((size_t)(cols / KQ_SUPER), sizeof *a->dx);
    a->xq = calloc((size_t)cols + 32, 1);
    a->bsum = calloc((size_t)(cols / KQ_SUB), sizeof *a->bsum);
    a->bsum16 = calloc((size_t)(cols / KQ_SUB), sizeof *a->bsum16);
    if (!a->dx || !a->xq || !a->bsum || !a->bsum16) { kq_act_free(a); D2_ERROR(D2_ENOMEM, "out of memory"); }
    *out = a;
    return D2_OK;
}

void kq_act_free(kq_act *a)
{
    if (!a) return;
    free(a->dx);
    free(a->xq);
    free(a->bsum);
    free(a->bsum16);
    free(a);
}

int kq_act_set(kq_act *a, const float *x)
{
    for (int64_t b = 0; b < a->cols / KQ_SUPER; b++) {
        const float *v = x + b * KQ_SUPER;
        float mx = 0;
        for (int i = 0; i < KQ_SUPER; i++) {
            if (!isfinite(v[i])) D2_ERROR(D2_EINVAL, "activations: element %lld is %s", (long long)(b * KQ_SUPER + i), isnan(v[i]) ? "NaN" : "Inf");
            mx = fabsf(v[i]) > mx ? fabsf(v[i]) : mx;
        }
        const float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0;
        a->dx[b] = d;
        for (int j = 0; j < KQ_NSUB; j++) {
            int32_t s = 0;
            for (int i = 0; i < KQ_SUB; i++) {
                float q = q_rint(v[KQ_SUB * j + i] * id);
                int qi = q > 127 ? 127 : q < -127 ? -127 : (int)q;
                a->xq[b * KQ_SUPER + KQ_SUB * j + i] = (int8_t)qi;
                s += qi;
            }
            a->bsum[b * KQ_NSUB + j] = s;
            a->bsum16[b * KQ_NSUB + j] = (int16_t)s;
        }
    }
    return D2_OK;
}

void kq_act_dequant(const kq_act *a, float *xhat)
{
    for (int64_t c = 0; c < a->cols; c++) xhat[c] = a->dx[c / KQ_SUPER] * (float)a->xq[c];
}

/* ---- kernels ------------------------------------------------------------------
 * Per super-block, the integer sums (both paths compute exactly these):
 *   level 1:  ip = sum_j sc_j P_j,  P_j = sum_i q_i xq_i;
 *             im = sum_j sc_j mc_j bsum_j (min_rel) or sum_j mc_j bsum_j
 *   level k:  y_kj = sum_i sgn_ki xq_i over sub-block j, z_kj = the same over
 *             its outward weights (BUCKET; 0 for TIED)
 * then the scalar path's float combination (sb_combine):
 *   d ip - dm im  +  sum over lanes j (fixed tree) of
 *   acc_j += (s_j F_kj) (G_in (y - z) + G_out z),  levels in order,
 * times the super-block's activation scale dx, super-blocks summed in order.
 * The AVX2 paths (below) reach the same integers by other sums and convert
 * them once per super-block: equal within float rounding. */
static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

typedef struct sb_int {
    int64_t ip, im;                    /* level 1 (see above) */
    int32_t y[KQ_MAX_LEVELS][KQ_NSUB]; /* y[k-1][j]: sum sgn xq (TIED) or sum 10 G sgn xq (BUCKET) */
} sb_int;

/* 8 lanes added in a fixed tree */
static inline float lanes8(const float v[8]) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

static float sb_combine(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res, const sb_int *t, int lo, int hi)
{
    const kq_format *f = &m->fmt;
    const float d = f16_to_float(rd16(p));
    const float dm = f->min_rel ? d * kappa(f) : f16_to_float(rd16(p + 2));
    const float l1 = lo == 1 ? d * (float)t->ip - dm * (float)t->im : 0;
    if (hi < 2) return l1;
    const int bucket = f->resid == KQ_BUCKET, smask = (1 << f->scale_bits) - 1;
    const uint64_t su = rd64(p + head_bytes(f));
    float acc[KQ_NSUB] = {0};
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const uint32_t ck = bucket && k > 2 ? rd16(res[k - 1] + 32) : 0;
        for (int j = 0; j < KQ_NSUB; j++) {
            const float sj = d * (float)((int)(su >> (j * f->scale_bits)) & smask);
            const float F = m->step[k - 1][(ck >> 2 * j) & 3];
            acc[j] = acc[j] + (sj * F) * (bucket ? 0.1f * (float)t->y[k - 1][j] : (float)t->y[k - 1][j]);
        }
    }
    return l1 + lanes8(acc);
}

/* level-1 sums from the 8 P_j */
static void sb_level1(const kq_format *f, const uint8_t *p, const int32_t P[KQ_NSUB], const int32_t *bsum, sb_int *t)
{
    const uint64_t su = rd64(p + head_bytes(f)), mu = rd64(p + head_bytes(f) + f->scale_bits);
    const int smask = (1 << f->scale_bits) - 1, mmask = (1 << f->min_bits) - 1;
    t->ip = t->im = 0;
    for (int j = 0; j < KQ_NSUB; j++) {
        const int64_t sc = (int64_t)(su >> (j * f->scale_bits)) & smask, mc = (int64_t)(mu >> (j * f->min_bits)) & mmask;
        t->ip += sc * P[j];
        t->im += (f->min_rel ? sc * mc : mc) * bsum[j];
    }
}

static void sb_int_scalar(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res, const int8_t *xq, const int32_t *bsum, int lo,
                          int hi, sb_int *t)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1;
    uint8_t q[KQ_SUPER];
    base_codes(f, p + head_bytes(f) + scales_bytes(f), q);
    if (lo == 1) {
        int32_t P[KQ_NSUB];
        for (int j = 0; j < KQ_NSUB; j++) {
            P[j] = 0;
            for (int i = 0; i < KQ_SUB; i++) P[j] += q[KQ_SUB * j + i] * xq[KQ_SUB * j + i];
        }
        sb_level1(f, p, P, bsum, t);
    }
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const uint8_t *r = res[k - 1], *r2 = res[1];
        const uint32_t c2 = f->resid == KQ_BUCKET ? rd32(r2 + 32) : 0;
        for (int j = 0; j < KQ_NSUB; j++) {
            const int gin = kq_gi10[(c2 >> 4 * j) & 3], gout = kq_go10[(c2 >> (4 * j + 2)) & 3];
            int32_t y = 0;
            for (int i = 0; i < KQ_SUB; i++) {
                const int c = KQ_SUB * j + i, v = (r[i] >> j) & 1 ? xq[c] : -xq[c], pos2 = (r2[i] >> j) & 1;
                if (f->resid != KQ_BUCKET) y += v;
                else y += ((q[c] == nmax && pos2) || (q[c] == 0 && !pos2) ? gout : gin) * v;
            }
            t->y[k - 1][j] = y;
        }
    }
}

#ifdef KQ_X86
/* 8 vectors of 8 int32 -> one vector of their 8 horizontal sums */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256i hsum8x8(const __m256i v[8])
{
    __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
    __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
    __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* the 32 codes of sub-block j (bytes), assembled from the slices */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256i sub_q(const kq_format *f, const uint8_t *codes, int j)
{
    if (f->base_bits == 2)
        return _mm256_and_si256(_mm256_srli_epi16(_mm256_loadu_si256((const __m256i *)(codes + 32 * (j / 4))), 2 * (j % 4)), _mm256_set1_epi8(3));
    int w[3], o[3], ns = base_slices(f->base_bits, w, o);
    __m256i q = _mm256_setzero_si256();
    const uint8_t *sp = codes;
    for (int t = 0; t < ns; t++) {
        const int per_blk = 8 / w[t];
        const __m256i v = _mm256_loadu_si256((const __m256i *)(sp + 32 * (j / per_blk)));
        const __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, w[t] * (j % per_blk)), _mm256_set1_epi8((char)((1 << w[t]) - 1)));
        q = _mm256_or_si256(q, _mm256_and_si256(_mm256_slli_epi16(c, o[t]), _mm256_set1_epi8((char)(((1 << w[t]) - 1) << o[t]))));
        sp += 32 * w[t];
    }
    return q;
}

/* sub-block sums of one w-bit slice (codes << o) into acc[8] */
KQ_AVX2_FN __attribute__((always_inline)) static inline void slice_sums(const uint8_t *sp, int w, int o, const int8_t *xq, __m256i acc[8])
{
    const __m256i mask = _mm256_set1_epi8((char)((1 << w) - 1)), ones = _mm256_set1_epi16(1);
    const int per_blk = 8 / w; /* sub-blocks per 32-byte block */
    for (int j = 0; j < KQ_NSUB; j++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(sp + 32 * (j / per_blk)));
        const __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, w * (j % per_blk)), mask);
        __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(c, _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j))), ones);
        if (o) s = _mm256_slli_epi32(s, o);
        acc[j] = _mm256_add_epi32(acc[j], s);
    }
}

/* the 8 fields of `bits` bits of u (LSB first) as 8 int32 lanes */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256i fields8(uint64_t u, int bits)
{
    const __m256i b = _mm256_set1_epi64x((long long)u);
    const __m256i v0 = _mm256_srlv_epi64(b, _mm256_setr_epi64x(0, bits, 2 * bits, 3 * bits));
    const __m256i v1 = _mm256_srlv_epi64(b, _mm256_setr_epi64x(4 * bits, 5 * bits, 6 * bits, 7 * bits));
    __m256i t = _mm256_blend_epi32(v0, _mm256_slli_epi64(v1, 32), 0xAA); /* f0 f4 f1 f5 f2 f6 f3 f7 */
    t = _mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_and_si256(t, _mm256_set1_epi32((1 << bits) - 1));
}

/* One super-block as 8 float lanes (lane j = sub-block j): the same integer
 * sums as the scalar path, combined in vector registers (the float
 * association differs from sb_combine: equal within rounding). */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256 sb_vec_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res,
                                                                           const int8_t *xq, const int32_t *bsum, int lo, int hi)
{
    const kq_format *f = &m->fmt;
    const __m256i ones = _mm256_set1_epi16(1), one8 = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
    const int hb = head_bytes(f);
    const uint8_t *codes = p + hb + scales_bytes(f);
    uint16_t h16[2];
    memcpy(h16, p, 4);
    const float d = _cvtsh_ss(h16[0]);
    uint64_t su;
    memcpy(&su, p + hb, 8);
    const __m256i sc = fields8(su, f->scale_bits);
    const __m256 sf = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sc));
    __m256 t = _mm256_setzero_ps();
    if (lo == 1) {
        __m256i acc[8];
        if (f->base_bits == 2) {
            for (int j = 0; j < 8; j++)
                acc[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(sub_q(f, codes, j), _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j))), ones);
        } else {
            for (int j = 0; j < 8; j++) acc[j] = zero;
            int w[3], o[3], ns = base_slices(f->base_bits, w, o);
            const uint8_t *sp = codes;
            for (int u = 0; u < ns; u++) { slice_sums(sp, w[u], o[u], xq, acc); sp += 32 * w[u]; }
        }
        uint64_t mu;
        memcpy(&mu, p + hb + f->scale_bits, 8);
        const __m256i mc = fields8(mu, f->min_bits);
        const __m256 mf = f->min_rel ? _mm256_mul_ps(_mm256_set1_ps(d * kappa(f)), _mm256_cvtepi32_ps(_mm256_mullo_epi32(sc, mc)))
                                     : _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(h16[1])), _mm256_cvtepi32_ps(mc));
        t = _mm256_sub_ps(_mm256_mul_ps(sf, _mm256_cvtepi32_ps(hsum8x8(acc))),
                          _mm256_mul_ps(mf, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)bsum))));
    }
    if (hi < 2) return t;
    const int bucket = f->resid == KQ_BUCKET;
    __m256i wg[8]; /* BUCKET: 10 G per weight (u8) */
    if (bucket) {
        const __m256i v2 = _mm256_loadu_si256((const __m256i *)res[1]);
        const __m256i nm = _mm256_set1_epi8((char)((1 << f->base_bits) - 1));
        uint32_t c2;
        memcpy(&c2, res[1] + 32, 4);
        for (int j = 0; j < 8; j++) {
            const __m256i bit = _mm256_set1_epi8((char)(1 << j)), q = sub_q(f, codes, j);
            const __m256i pos = _mm256_cmpeq_epi8(_mm256_and_si256(v2, bit), bit);
            const __m256i out = _mm256_or_si256(_mm256_and_si256(_mm256_cmpeq_epi8(q, nm), pos), _mm256_andnot_si256(pos, _mm256_cmpeq_epi8(q, zero)));
            wg[j] = _mm256_blendv_epi8(_mm256_set1_epi8((char)kq_gi10[(c2 >> 4 * j) & 3]), _mm256_set1_epi8((char)kq_go10[(c2 >> (4 * j + 2)) & 3]), out);
        }
    }
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)res[k - 1]);
        __m256i Y[8];
        for (int j = 0; j < 8; j++) {
            const __m256i bit = _mm256_set1_epi8((char)(1 << j));
            const __m256i neg = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), zero);
            const __m256i y = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j)), _mm256_or_si256(neg, one8));
            Y[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(bucket ? wg[j] : one8, y), ones);
        }
        const __m256i Yv = hsum8x8(Y);
        __m256 F;
        if (bucket && k > 2) {
            uint16_t ck;
            memcpy(&ck, res[k - 1] + 32, 2);
            const __m256i hv = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(ck), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                                _mm256_set1_epi32(3));
            F = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(m->step[k - 1])), hv);
        } else
            F = _mm256_set1_ps(m->step[k - 1][0]);
        const __m256 inner = bucket ? _mm256_mul_ps(_mm256_set1_ps(0.1f), _mm256_cvtepi32_ps(Yv)) : _mm256_cvtepi32_ps(Yv);
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_mul_ps(sf, F), inner));
    }
    return t;
}

KQ_AVX2_FN static inline float hsum8f(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* the per-sub-block loops below are unrolled so every shift count and mask is a constant */
#define KQ_UNROLL _Pragma("GCC unroll 8")
/* X(i) for the rows i = 0 .. R - 1 of a pass (R = 1 or 2, a constant):
 * named variables s0, s1, not an array, so that they stay in registers */
#define KQ_ROWS(X) do { X(0); if (R > 1) X(1); } while (0)

/* The v1k path (BUCKET, 2-bit base, 4-bit scale and min codes, relative
 * mins, levels <= 3).  Per super-block, the per-sub-block constants are built
 * once as vectors: the int16 madd factors of each level (level 1 C1 sc_j,
 * level 2 -C2 sc_j, level 3 -sc_j 20 h_j) and a 16-byte table of the level-2
 * factors in tenths (byte 2j: 10 G_in, byte 2j + 1: 10 G_out of sub-block j),
 * each from the packed nibbles by pshufb.  Per 32 weights then: the codes
 * (shift, and), the outward mask (q == 3 * [level-2 sign +]: and, compare),
 * the factor bytes (one pshufb indexed 2j - mask), the activations negated
 * where a level's sign is + (blendv; the factors carry the minus), and one
 * maddubs + pshufb (factor) + madd + add per level.  Every level and the
 * mins go into one int32 accumulator with the common denominator D
 * (t = d / D * acc):
 *   d A1 - d/5 M + d/40 A2 + d/1600 A3,  D = 5 (hi 1), 40 (hi 2), 1600 (hi 3),
 *   C1 = D, CM = D / 5, C2 = D / 40; A1 = sum sc q x, M = sum sc mc bsum,
 *   A2 = sum sc 10G s2 x, A3 = sum sc 20h 10G s3 x.
 * Bounds per int32 lane and super-block (D = 1600): A1 8 * 2 * 762 * 24000,
 * M 2 * 225 * 4064 * 320, A2 8 * 2 * 5080 * 600, A3 8 * 2 * 5080 * 375:
 * 957 M < 2^31; int16 factors <= 24000.  The integer sums are exact, so this
 * differs from the scalar path only in float rounding (one conversion and one
 * multiply per super-block instead of sb_combine's). */
static const int8_t kq_gi10_lo[16] = {2, 4, 7, 10, 2, 4, 7, 10, 2, 4, 7, 10, 2, 4, 7, 10};  /* 10 kq_gi[n & 3] */
static const int8_t kq_go10_hi[16] = {4, 4, 4, 4, 8, 8, 8, 8, 13, 13, 13, 13, 20, 20, 20, 20}; /* 10 kq_go[n >> 2] */
static const int8_t kq_nh20_lo[16] = {-12, -16, -20, -25, -12, -16, -20, -25, -12, -16, -20, -25, -12, -16, -20, -25}; /* -20 kq_h[n & 3] */
static const int8_t kq_nh20_hi[16] = {-12, -12, -12, -12, -16, -16, -16, -16, -20, -20, -20, -20, -25, -25, -25, -25}; /* -20 kq_h[n >> 2] */

/* the 8 nibbles of u (LSB first) as bytes 0..7 (bytes 8..15 zero) */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m128i nib8(uint32_t u)
{
    const __m128i m = _mm_set1_epi8(0x0F), v = _mm_cvtsi32_si128((int)u);
    return _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
}

/* two 2-bit fields per nibble through two 16-entry tables: bytes 2w, 2w+1 = lo[n_w], hi[n_w] */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m128i nib_lut2(uint32_t u, const int8_t *lo, const int8_t *hi)
{
    const __m128i n = nib8(u);
    return _mm_unpacklo_epi8(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)lo), n), _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)hi), n));
}

/* int16 lane j of v in every int16 lane (v: the same 8 int16 in both halves) */
#define KQ_W16(v, j) _mm256_shuffle_epi8((v), _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j)))))

/* v moved down by 2j bytes in each 128-bit half (clang wants a literal count) */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256i bsrl2j(__m256i v, const int j)
{
    switch (j) {
    case 1: return _mm256_bsrli_epi128(v, 2);
    case 2: return _mm256_bsrli_epi128(v, 4);
    case 3: return _mm256_bsrli_epi128(v, 6);
    case 4: return _mm256_bsrli_epi128(v, 8);
    case 5: return _mm256_bsrli_epi128(v, 10);
    case 6: return _mm256_bsrli_epi128(v, 12);
    case 7: return _mm256_bsrli_epi128(v, 14);
    default: return v;
    }
}

/* the per-super-block state of one row in sb_v1k_avx2: codes, sign planes,
 * factor table and int16 madd factors, and the row's int32 accumulator */
typedef struct v1k_sbst {
    __m256i acc, c0, c1, v2, v3, T, F1, F2, F3;
} v1k_sbst;

/* sub-block j of sb_v1k_avx2 (called with literal j: every shift and mask a
 * constant); x = the sub-block's 32 activations, shared by the rows of a pass */
KQ_AVX2_FN __attribute__((always_inline)) static inline __m256i v1k_sub(const int j, __m256i acc, __m256i x, __m256i c0, __m256i c1,
                                                                        __m256i v2, __m256i v3, __m256i T, __m256i F1, __m256i F2, __m256i F3,
                                                                        int lo, int hi)
{
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(j < 4 ? c0 : c1, 2 * (j % 4)), three);
    if (lo == 1) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), KQ_W16(F1, j)));
    if (hi >= 2) {
        /* no per-j constants (gcc rebuilds byte broadcasts through a GPR): the
         * sign bit moved to bit 7 by a shift, the table moved by 2j bytes */
        const __m256i zero = _mm256_setzero_si256(), nx = _mm256_sub_epi8(zero, x);
        const __m256i pos2 = _mm256_cmpgt_epi8(zero, j == 7 ? v2 : _mm256_slli_epi16(v2, 7 - j));
        const __m256i out = _mm256_cmpeq_epi8(q, _mm256_and_si256(pos2, three));
        const __m256i wg = _mm256_shuffle_epi8(bsrl2j(T, j), _mm256_abs_epi8(out));
        if (lo <= 2) acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(wg, _mm256_blendv_epi8(x, nx, pos2)), KQ_W16(F2, j)));
        if (hi >= 3) {
            const __m256i y3 = _mm256_blendv_epi8(x, nx, j == 7 ? v3 : _mm256_slli_epi16(v3, 7 - j)); /* bit j -> bit 7 */
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(wg, y3), KQ_W16(F3, j)));
        }
    }
    return acc;
}

/* one row's super-block state (the mins already in acc) */
KQ_AVX2_FN __attribute__((always_inline)) static inline void v1k_prep(const uint8_t *p, const uint8_t *r2, const uint8_t *r3, __m128i bs, int lo,
                                                                      int hi, v1k_sbst *s)
{
    const int D = hi >= 3 ? 1600 : hi == 2 ? 40 : 5, C1 = D, CM = D / 5, C2 = D / 40;
    uint32_t su, mu;
    memcpy(&su, p + 2, 4);
    memcpy(&mu, p + 6, 4);
    const uint8_t *codes = p + 10;
    const __m128i sc16 = _mm_cvtepu8_epi16(nib8(su));
    s->acc = _mm256_setzero_si256();
    if (lo == 1) {
        __m128i mm = _mm_madd_epi16(_mm_mullo_epi16(sc16, _mm_cvtepu8_epi16(nib8(mu))), bs);
        if (CM != 1) mm = _mm_mullo_epi32(mm, _mm_set1_epi32(CM));
        s->acc = _mm256_sub_epi32(s->acc, _mm256_set_m128i(_mm_setzero_si128(), mm));
    }
    s->F1 = _mm256_broadcastsi128_si256(_mm_mullo_epi16(sc16, _mm_set1_epi16((short)C1)));
    s->F2 = s->F3 = s->T = s->v2 = s->v3 = s->F1;
    if (hi >= 2) {
        uint32_t c2;
        memcpy(&c2, r2 + 32, 4);
        s->v2 = _mm256_loadu_si256((const __m256i *)r2);
        s->T = _mm256_broadcastsi128_si256(nib_lut2(c2, kq_gi10_lo, kq_go10_hi));
        s->F2 = _mm256_broadcastsi128_si256(_mm_mullo_epi16(sc16, _mm_set1_epi16((short)-C2)));
    }
    if (hi >= 3) {
        uint16_t ck;
        memcpy(&ck, r3 + 32, 2);
        s->v3 = _mm256_loadu_si256((const __m256i *)r3);
        s->F3 = _mm256_broadcastsi128_si256(_mm_mullo_epi16(sc16, _mm_cvtepi8_epi16(nib_lut2(ck, kq_nh20_lo, kq_nh20_hi))));
    }
    s->c0 = _mm256_loadu_si256((const __m256i *)codes);
    s->c1 = _mm256_loadu_si256((const __m256i *)(codes + 32));
}

/* One super-block of R rows (R = 1 or 2; row i's records at p + i ps,
 * r2 + i r2s, r3 + i r3s) into *t0 .. *t(R-1): each row's integer sums
 * exactly as one row alone; the rows share the activation loads (the
 * sub-blocks in turn, every row's sub-block j after one load of x_j). */
KQ_AVX2_FN __attribute__((always_inline)) static inline void sb_v1k_avx2(const uint8_t *p, int64_t ps, const uint8_t *r2, int64_t r2s,
                                                                         const uint8_t *r3, int64_t r3s, const int8_t *xq, const int16_t *bs16,
                                                                         int lo, int hi, int R, __m256i *t0, __m256i *t1)
{
    const __m128i bs = _mm_loadu_si128((const __m128i *)bs16);
    v1k_sbst s0, s1;
#define KQ_P(i) v1k_prep(p + i * ps, r2 ? r2 + i * r2s : NULL, r3 ? r3 + i * r3s : NULL, bs, lo, hi, &s##i)
    KQ_ROWS(KQ_P);
#undef KQ_P
#define KQ_S(i) s##i.acc = v1k_sub(j, s##i.acc, x, s##i.c0, s##i.c1, s##i.v2, s##i.v3, s##i.T, s##i.F1, s##i.F2, s##i.F3, lo, hi)
    KQ_UNROLL
    for (int j = 0; j < KQ_NSUB; j++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j));
        KQ_ROWS(KQ_S);
    }
#undef KQ_S
#define KQ_T(i) *t##i = s##i.acc
    KQ_ROWS(KQ_T);
#undef KQ_T
}

/* The v1k table path (ranges lo..hi with lo <= 2 <= hi): one lookup per
 * weight.  Levels lo..hi of a weight, in units of s_j / D (D = 40 for hi = 2,
 * 1600 for hi = 3), are one integer T of (q, s2, s3) and the sub-block's
 * factor codes (gi, go, h):
 *   T = [lo == 1] D q + [lo <= 2] (D / 40) 10G s2' + [hi == 3] 10G 20h s3',
 * s' = +-1 by the sign bit, G = go (outward: q == 3 and s2 +, or q == 0 and
 * s2 -) or gi; the mins go in per super-block as in sb_v1k_avx2.  The tables
 * (v1k_lut, built once) hold T + OFF per (range, gi, go, h), indexed by the
 * 4-bit idx = q | s2 << 2 | s3 << 3:
 *   hi = 3: OFF = the largest residual (T + OFF in 0..7400), split into two
 *     16-byte tables L = (T + OFF) & 127, H = (T + OFF) >> 7 <= 57; per 32
 *     weights two pshufb, two maddubs (no saturation: pairs <= 32258), two
 *     madd by sc_j: 4 multiplies against sb_v1k_avx2's 6 for levels 1..3;
 *   hi = 2: OFF = -C, C the middle of T's range (1..2: -20..140, C = 60;
 *     2..2: -20..20, C = 0), so T + OFF is one signed byte, |T + OFF| <= 80;
 *     maddubs(|t|, sign(x, t)) (pairs <= 20320), one madd: 2 multiplies
 *     against sb_v1k_avx2's 4 for levels 1..2.
 * idx per 32 weights: shift, and for q; shift, and for the two sign bits,
 * taken from the sign planes interleaved once per super-block; or.  Per
 * super-block acc = accL + 128 accH - OFF sum_j sc_j bsum_j - [lo == 1] CM
 * sum_j sc_j mc_j bsum_j.  Bounds per int32 lane (D = 1600): accL
 * 8 * 2 * 32258 * 15, 128 accH 128 * 8 * 2 * (2 * 57 * 127) * 15, the OFF
 * term 2 * 15 * 4064 * 1300, the mins 2 * 225 * 4064 * 320: < 1.2 G < 2^31.
 * Exact integers: differs from the scalar path in float rounding only.
 * Level 1 alone and level 3 alone stay in sb_v1k_avx2 (2 multiplies per 32
 * weights there; level 3's T spans -500..500, so two bytes, 4 here). */
typedef struct v1k_lut16 {
    uint8_t lo[16], hi[16]; /* (T + OFF) & 127 and (T + OFF) >> 7 by idx */
} v1k_lut16;
enum { V1K_LUT_RANGES = 5, V1K_LUT_COMBOS = 64 };
static v1k_lut16 v1k_lut[V1K_LUT_RANGES][V1K_LUT_COMBOS]; /* [range][gi | go << 2 | h << 4] */
static int32_t v1k_lut_off[V1K_LUT_RANGES];               /* OFF (units of s_j / D) */
static pthread_once_t v1k_lut_once = PTHREAD_ONCE_INIT;

/* range index of (lo, hi), hi >= 2: (1,2) (1,3) (2,2) (2,3) (3,3) */
static inline int v1k_lut_range(int lo, int hi) { return lo == 1 ? hi - 2 : lo == 2 ? hi : 4; }

static void v1k_lut_build(void)
{
    static const int h20[4] = {12, 16, 20, 25}; /* 20 kq_h */
    for (int lo = 1; lo <= 3; lo++)
        for (int hi = lo > 2 ? lo : 2; hi <= 3; hi++) {
            const int r = v1k_lut_range(lo, hi), D = hi >= 3 ? 1600 : 40;
            /* hi = 3: T + OFF >= 0 split in two bytes; hi = 2: T - C in one
             * signed byte, C the middle of T's range (OFF = -C) */
            const int off = hi >= 3 ? (lo <= 2 ? D / 40 * 20 : 0) + 20 * 25 : lo == 1 ? -(3 * D) / 2 : 0;
            v1k_lut_off[r] = off;
            for (int c = 0; c < V1K_LUT_COMBOS; c++)
                for (int idx = 0; idx < 16; idx++) {
                    const int q = idx & 3, s2 = idx >> 2 & 1, s3 = idx >> 3 & 1;
                    const int out = (q == 3 && s2) || (q == 0 && !s2);
                    const int g10 = out ? kq_go10[c >> 2 & 3] : kq_gi10[c & 3];
                    const int t = (lo == 1 ? D * q : 0) + (lo <= 2 ? D / 40 * g10 * (s2 ? 1 : -1) : 0) +
                                  (hi >= 3 ? g10 * h20[c >> 4] * (s3 ? 1 : -1) : 0) + off;
                    v1k_lut[r][c].lo[idx] = (uint8_t)(hi >= 3 ? t & 127 : t); /* hi = 2: t in -80..80, as int8 */
                    v1k_lut[r][c].hi[idx] = (uint8_t)(hi >= 3 ? t >> 7 : 0);
                }
        }
}

/* the per-super-block state of one row in sb_v1k_lut_avx2 */
typedef struct v1k_lutst {
    __m256i accL, accH, F, Pe, Po, c0, c1;
    int32_t cmb[KQ_NSUB]; /* byte offsets of the sub-blocks' tables */
} v1k_lutst;

KQ_AVX2_FN __attribute__((always_inline)) static inline void v1k_lut_prep(const uint8_t *p, const uint8_t *r2, const uint8_t *r3, __m128i bs, int off,
                                                                          int lo, int hi, v1k_lutst *s)
{
    const int D = hi >= 3 ? 1600 : 40, CM = D / 5;
    uint32_t su, mu, c2;
    uint16_t ck = 0;
    memcpy(&su, p + 2, 4);
    memcpy(&mu, p + 6, 4);
    memcpy(&c2, r2 + 32, 4);
    if (hi >= 3) memcpy(&ck, r3 + 32, 2);
    const __m128i sc16 = _mm_cvtepu8_epi16(nib8(su));
    __m128i corr = _mm_mullo_epi32(_mm_madd_epi16(sc16, bs), _mm_set1_epi32(off));
    if (lo == 1)
        corr = _mm_add_epi32(corr, _mm_mullo_epi32(_mm_madd_epi16(_mm_mullo_epi16(sc16, _mm_cvtepu8_epi16(nib8(mu))), bs), _mm_set1_epi32(CM)));
    s->accL = _mm256_set_m128i(_mm_setzero_si128(), _mm_sub_epi32(_mm_setzero_si128(), corr));
    s->accH = _mm256_setzero_si256();
    s->F = _mm256_broadcastsi128_si256(sc16);
    /* the sign planes side by side: Pe bit j = s2, bit j + 1 = s3 of sub-block
     * j (even j); Po bit j - 1 = s2, bit j = s3 (odd j) */
    const __m256i v2 = _mm256_loadu_si256((const __m256i *)r2), m55 = _mm256_set1_epi8(0x55), mAA = _mm256_set1_epi8((char)0xAA);
    s->Pe = _mm256_and_si256(v2, m55);
    s->Po = _mm256_srli_epi16(_mm256_and_si256(v2, mAA), 1);
    if (hi >= 3) {
        const __m256i v3 = _mm256_loadu_si256((const __m256i *)r3);
        s->Pe = _mm256_or_si256(s->Pe, _mm256_slli_epi16(_mm256_and_si256(v3, m55), 1));
        s->Po = _mm256_or_si256(s->Po, _mm256_and_si256(v3, mAA));
    }
    const uint8_t *codes = p + 10;
    s->c0 = _mm256_loadu_si256((const __m256i *)codes);
    s->c1 = _mm256_loadu_si256((const __m256i *)(codes + 32));
    /* the byte offsets of the 8 sub-blocks' tables, 32 (gi | go << 2 | h << 4),
     * in one vector (the scalar shifts cost 7 instructions per sub-block) */
    __m256i cv = _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)c2), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                                    _mm256_set1_epi32(15)),
                                   5);
    if (hi >= 3)
        cv = _mm256_or_si256(cv, _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(ck), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                                                                    _mm256_set1_epi32(3)),
                                                   9));
    _mm256_storeu_si256((__m256i *)s->cmb, cv);
}

/* sub-block j of one row (literal j); x = its 32 activations */
KQ_AVX2_FN __attribute__((always_inline)) static inline void v1k_lut_sub(const int j, __m256i x, const uint8_t *tb, int hi, v1k_lutst *s)
{
    const __m256i three = _mm256_set1_epi8(3), m0C = _mm256_set1_epi8(0x0C);
    const __m256i q = _mm256_and_si256(_mm256_srli_epi16(j < 4 ? s->c0 : s->c1, 2 * (j % 4)), three);
    const int base = j & ~1; /* bits base, base + 1 of P -> bits 2, 3 */
    __m256i sg = j & 1 ? s->Po : s->Pe;
    sg = base < 2 ? _mm256_slli_epi16(sg, 2 - base) : base > 2 ? _mm256_srli_epi16(sg, base - 2) : sg;
    const __m256i idx = _mm256_or_si256(q, _mm256_and_si256(sg, m0C));
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tb + s->cmb[j])));
    const __m256i fj = KQ_W16(s->F, j);
    if (hi == 2) { /* T - C in one signed byte: |T - C| <= 80, so |T - C| x pairs <= 20320 */
        const __m256i t = _mm256_shuffle_epi8(tl, idx);
        s->accL = _mm256_add_epi32(s->accL, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(t), _mm256_sign_epi8(x, t)), fj));
    } else {
        const __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tb + s->cmb[j] + 16)));
        s->accL = _mm256_add_epi32(s->accL, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_shuffle_epi8(tl, idx), x), fj));
        s->accH = _mm256_add_epi32(s->accH, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_shuffle_epi8(th, idx), x), fj));
    }
}

/* One super-block of R rows (R = 1 or 2) into *t0 .. *t(R-1), as sb_v1k_avx2 */
KQ_AVX2_FN __attribute__((always_inline)) static inline void sb_v1k_lut_avx2(const uint8_t *p, int64_t ps, const uint8_t *r2, int64_t r2s,
                                                                             const uint8_t *r3, int64_t r3s, const int8_t *xq, const int16_t *bs16,
                                                                             const v1k_lut16 *tab, int off, int lo, int hi, int R, __m256i *t0,
                                                                             __m256i *t1)
{
    const __m128i bs = _mm_loadu_si128((const __m128i *)bs16);
    v1k_lutst s0, s1;
#define KQ_P(i) v1k_lut_prep(p + i * ps, r2 + i * r2s, r3 ? r3 + i * r3s : NULL, bs, off, lo, hi, &s##i)
    KQ_ROWS(KQ_P);
#undef KQ_P
    const uint8_t *tb = (const uint8_t *)tab;
#define KQ_S(i) v1k_lut_sub(j, x, tb, hi, &s##i)
    KQ_UNROLL
    for (int j = 0; j < KQ_NSUB; j++) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j));
        KQ_ROWS(KQ_S);
    }
#undef KQ_S
#define KQ_T(i) *t##i = hi == 2 ? s##i.accL : _mm256_add_epi32(s##i.accL, _mm256_slli_epi32(s##i.accH, 7))
    KQ_ROWS(KQ_T);
#undef KQ_T
}

/* One TIED super-block, levels lo..hi fused: per weight the integer
 *   u = (lo == 1 ? q << (hi - 1) : 0) | sum_{k = max(lo,2)}^{hi} b_k << (hi - k)
 * (b_k: the level-k sign bit, 1 = +) has b1 + hi - 1 <= 8 bits, and
 *   W_hi - W_{lo-1} = s_j 2^-hi (2 u - K) - [lo == 1] m_j,  K = 2^(hi - max(lo,2) + 1) - 1
 * (level k adds +- s_j 2^-k).  So one maddubs per 32 weights whatever the
 * number of levels: acc = sum_j 2 sc_j sum u x - K sum_j sc_j bsum_j, and
 * t = d 2^-hi acc - [lo == 1] dm sum_j (sc_j mc_j or mc_j) bsum_j.  When u
 * can reach 8 bits (lo == 1, b1 + hi - 1 == 8) a pair of u x could saturate
 * maddubs' int16, so u - 128 is used (|u - 128| <= 128: pairs <= 32512) and
 * 256 bsum added back.  Bounds per int32 lane: 8 * 2 * 32512 * 510 +
 * 2 * 255 * 4064 * 256 < 2^31.  Exact integers: differs from the scalar path
 * in float rounding only.  Mins as int16 products: min_rel needs
 * scale_bits + min_bits <= 15 (row_dot_avx2 checks). */
KQ_AVX2_FN __attribute__((always_inline)) static inline void sb_tied_avx2(const uint8_t *p, const uint8_t *const *res, const int8_t *xq,
                                                                          const int16_t *bs16, int lo, int hi, int b1, int sbits, int mbits,
                                                                          int min_rel, __m256i *acc_out, __m128i *min_out)
{
    const int hb = min_rel ? 2 : 4, kk = hi - (lo > 2 ? lo : 2) + 1, K = (1 << kk) - 1;
    const int off = lo == 1 && b1 + hi - 1 == 8;
    const int Kc = off ? 256 - K : -K;
    uint64_t su;
    memcpy(&su, p + hb, 8);
    const __m256i scv = fields8(su, sbits);
    const __m128i sc16 = _mm_packs_epi32(_mm256_castsi256_si128(scv), _mm256_extracti128_si256(scv, 1));
    const __m256i F = _mm256_broadcastsi128_si256(_mm_slli_epi16(sc16, 1));
    const __m128i bs = _mm_loadu_si128((const __m128i *)bs16);
    __m256i acc = _mm256_setzero_si256();
    if (Kc) acc = _mm256_set_m128i(_mm_setzero_si128(), _mm_mullo_epi32(_mm_madd_epi16(sc16, bs), _mm_set1_epi32(Kc)));
    if (lo == 1) {
        uint64_t mu;
        memcpy(&mu, p + hb + sbits, 8);
        const __m256i mcv = fields8(mu, mbits);
        __m128i mc16 = _mm_packs_epi32(_mm256_castsi256_si128(mcv), _mm256_extracti128_si256(mcv, 1));
        if (min_rel) mc16 = _mm_mullo_epi16(mc16, sc16);
        *min_out = _mm_madd_epi16(mc16, bs);
    }
    /* base_slices in closed form (constant-folded): n4 4-bit, n2 2-bit, n1 1-bit slices */
    const int n4 = b1 / 4, n2 = (b1 % 4) / 2, ns = lo == 1 ? n4 + n2 + b1 % 2 : 0;
    const uint8_t *codes = p + hb + (KQ_NSUB * (sbits + mbits) + 7) / 8;
    /* sign levels in pairs from the top, (hi-1, hi), (hi-3, hi-2), ..., bits
     * side by side once per super-block: Pe has level b = hi - 2i at bit j
     * and level a = b - 1 at j + 1 for even j, Po the same at j - 1, j for odd
     * j; so a pair costs one shift, and, or per 32 weights.  An odd level
     * count leaves level k0 = max(lo, 2) alone, at bit hi - k0. */
    const int k0 = lo > 2 ? lo : 2, nsl = hi >= k0 ? hi - k0 + 1 : 0, npair = nsl / 2;
    __m256i vs = _mm256_setzero_si256(), Pe[4] = {vs, vs, vs, vs}, Po[4] = {vs, vs, vs, vs};
    KQ_UNROLL
    for (int i = 0; i < npair && i < 4; i++) {
        const __m256i va = _mm256_loadu_si256((const __m256i *)res[hi - 2 - 2 * i]), vb = _mm256_loadu_si256((const __m256i *)res[hi - 1 - 2 * i]);
        const __m256i m55 = _mm256_set1_epi8(0x55), mAA = _mm256_set1_epi8((char)0xAA);
        Pe[i] = _mm256_or_si256(_mm256_and_si256(vb, m55), _mm256_slli_epi16(_mm256_and_si256(va, m55), 1));
        Po[i] = _mm256_or_si256(_mm256_srli_epi16(_mm256_and_si256(vb, mAA), 1), _mm256_and_si256(va, mAA));
    }
    if (nsl & 1) vs = _mm256_loadu_si256((const __m256i *)res[k0 - 1]);
    KQ_UNROLL
    for (int j = 0; j < 8; j++) {
        __m256i u = _mm256_setzero_si256();
        const uint8_t *sp = codes;
        KQ_UNROLL
        for (int t = 0; t < 3 && t < ns; t++) { /* slice t: bits wt * (j % per) of block j / per -> bits ot + hi - 1 */
            const int wt = t < n4 ? 4 : t < n4 + n2 ? 2 : 1, ot = t < n4 ? 4 * t : t < n4 + n2 ? 4 * n4 + 2 * (t - n4) : 4 * n4 + 2 * n2;
            const int per = 8 / wt, src = wt * (j % per), dst = ot + hi - 1;
            __m256i c = _mm256_loadu_si256((const __m256i *)(sp + 32 * (j / per)));
            c = dst > src ? _mm256_slli_epi16(c, dst - src) : dst < src ? _mm256_srli_epi16(c, src - dst) : c;
            u = _mm256_or_si256(u, _mm256_and_si256(c, _mm256_set1_epi8((char)(((1 << wt) - 1) << dst))));
            sp += 32 * wt;
        }
        KQ_UNROLL
        for (int i = 0; i < npair && i < 4; i++) { /* bits (j & ~1) + 0..1 -> bits 2i + 0..1 */
            const int src = j & ~1, dst = 2 * i;
            __m256i c = j & 1 ? Po[i] : Pe[i];
            c = dst > src ? _mm256_slli_epi16(c, dst - src) : dst < src ? _mm256_srli_epi16(c, src - dst) : c;
            u = _mm256_or_si256(u, _mm256_and_si256(c, _mm256_set1_epi8((char)(3 << dst))));
        }
        if (nsl & 1) { /* sign bit j of level k0 -> bit hi - k0 */
            const int dst = hi - k0;
            __m256i c = vs;
            c = dst > j ? _mm256_slli_epi16(c, dst - j) : dst < j ? _mm256_srli_epi16(c, j - dst) : c;
            u = _mm256_or_si256(u, _mm256_and_si256(c, _mm256_set1_epi8((char)(1 << dst))));
        }
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j));
        __m256i pr;
        if (off) {
            const __m256i us = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80)); /* u - 128 as int8 */
            pr = _mm256_maddubs_epi16(_mm256_abs_epi8(us), _mm256_sign_epi8(x, us));
        } else
            pr = _mm256_maddubs_epi16(u, x);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pr, KQ_W16(F, j)));
    }
    *acc_out = acc;
}

/* the formats of sb_v1k_avx2 / sb_v1k_lut_avx2: v1k's (BUCKET, 2-bit base,
 * 4/4-bit scale and min codes, relative mins), levels <= 3 */
static inline int v1k_avx2_ok(const kq_format *f, int hi)
{
    return f->resid == KQ_BUCKET && f->base_bits == 2 && f->min_rel && f->scale_bits == 4 && f->min_bits == 4 && hi <= 3;
}

/* R rows (R = 1 or 2) gap rows apart (row i's records at p + i gap NB
 * 74, r2 + i gap NB 36, r3 + i gap NB 34) into out[0..R-1]: per row, float
 * lanes accumulated across the row's super-blocks and one reduction, the
 * same operations in the same order whatever R (so a row's result is
 * bit-identical in a pass of 1 or 2 rows); the rows share the activation
 * loads.  kq_dot runs R = 1, kq_matvec R = 2 (4 measured no faster:
 * docs/log/kernels.md, "Rows per pass").  The common (lo, hi) ranges get
 * their own constant-folded copy. */
KQ_AVX2_FN __attribute__((always_inline)) static inline void rows_v1k_avx2_t(const uint8_t *p, const uint8_t *r2, const uint8_t *r3, const kq_act *a,
                                                                             int64_t NB, int64_t gap, int lo, int hi, int R, float *out)
{
    const float invD = hi >= 3 ? 1.0f / 1600 : hi == 2 ? 1.0f / 40 : 1.0f / 5;
    /* the table path where it measured faster (ranges reaching level 2 from
     * below, docs/mwq.md): level 1 alone and level 3 alone are 2 multiplies
     * per 32 weights in sb_v1k_avx2, 4 in the two-byte table path */
    const int lut = hi >= 2 && lo <= 2;
    const v1k_lut16 *tab = NULL;
    int off = 0;
    if (lut) {
        pthread_once(&v1k_lut_once, v1k_lut_build);
        tab = v1k_lut[v1k_lut_range(lo, hi)];
        off = v1k_lut_off[v1k_lut_range(lo, hi)];
    }
    const int64_t ps = gap * NB * 74, r2s = gap * NB * 36, r3s = gap * NB * 34;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (int64_t b = 0; b < NB; b++) {
        __m256i t0, t1;
        /* a level outside lo..hi has no chunk (NULL): never offset */
        if (lut)
            sb_v1k_lut_avx2(p, ps, r2 + b * 36, r2s, r3 ? r3 + b * 34 : NULL, r3s, a->xq + b * KQ_SUPER, a->bsum16 + b * KQ_NSUB, tab, off, lo, hi,
                            R, &t0, &t1);
        else
            sb_v1k_avx2(p, ps, r2 ? r2 + b * 36 : NULL, r2s, r3 ? r3 + b * 34 : NULL, r3s, a->xq + b * KQ_SUPER, a->bsum16 + b * KQ_NSUB, lo, hi,
                        R, &t0, &t1);
#define KQ_F(i)                                                                                                            \
    do {                                                                                                                   \
        uint16_t h16;                                                                                                      \
        memcpy(&h16, p + i * ps, 2);                                                                                       \
        acc##i = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(h16) * (a->dx[b] * invD)), _mm256_cvtepi32_ps(t##i), acc##i);    \
    } while (0)
        KQ_ROWS(KQ_F);
#undef KQ_F
        p += 74;
    }
#define KQ_O(i) out[i] = hsum8f(acc##i)
    KQ_ROWS(KQ_O);
#undef KQ_O
}

/* kq_matvec's v1k pass for the table-path ranges (lo <= 2 <= hi): rows r
 * and r + H together (H = rows / 2), so each is read in one sequential
 * stream through its half of the matrix, as the one-row path reads the
 * whole (pairing neighbouring rows measured slower from DRAM: two short
 * streams that restart every pair).  Level 1 alone and level 3 alone stay on
 * the one-row path (2 and 4 rows per pass measured no faster there from
 * DRAM; docs/log/kernels.md, "Rows per pass").  Returns the number of rows
 * done (an odd last row goes through kq_dot's one-row code, which gives the
 * same bits). */
KQ_AVX2_FN static int64_t matvec_v1k_avx2(const kq_matrix *m, int lo, int hi, const kq_act *a, float *y)
{
    if (lo > 2 || hi < 2) return 0;
    const int64_t NB = m->cols / KQ_SUPER, H = m->rows / 2;
    for (int64_t r = 0; r < H; r++) {
        const uint8_t *p = m->chunk[0] + r * NB * 74, *r2 = m->chunk[1] + r * NB * 36, *r3 = hi >= 3 ? m->chunk[2] + r * NB * 34 : NULL;
        float o[2] = {0};
#define KQ_RANGE(l, h) else if (lo == l && hi == h) rows_v1k_avx2_t(p, r2, r3, a, NB, H, l, h, 2, o)
        if (0) {}
        KQ_RANGE(1, 2); KQ_RANGE(1, 3); KQ_RANGE(2, 2); KQ_RANGE(2, 3);
#undef KQ_RANGE
        y[r] += o[0];
        y[r + H] += o[1];
    }
    return 2 * H;
}

KQ_AVX2_FN __attribute__((always_inline)) static inline float row_tied_avx2_t(const uint8_t *p, const uint8_t **res, const kq_act *a, int64_t NB,
                                                                              int64_t sb1, const int64_t *rb, int lo, int hi, int b1, int sbits,
                                                                              int mbits, int min_rel, float kap)
{
    __m256 acc = _mm256_setzero_ps();
    const float sh = ldexpf(1.0f, -hi);
    for (int64_t b = 0; b < NB; b++) {
        __m256i t;
        __m128i mn = _mm_setzero_si128();
        sb_tied_avx2(p, res, a->xq + b * KQ_SUPER, a->bsum16 + b * KQ_NSUB, lo, hi, b1, sbits, mbits, min_rel, &t, &mn);
        uint16_t h16[2];
        memcpy(h16, p, 4);
        const float d = _cvtsh_ss(h16[0]), dx = a->dx[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d * sh * dx), _mm256_cvtepi32_ps(t), acc);
        if (lo == 1) {
            const float dm = min_rel ? d * kap : _cvtsh_ss(h16[1]);
            acc = _mm256_fnmadd_ps(_mm256_set1_ps(dm * dx), _mm256_set_m128(_mm_setzero_ps(), _mm_cvtepi32_ps(mn)), acc);
        }
        p += sb1;
        for (int k = lo > 2 ? lo : 2; k <= hi; k++) res[k - 1] += rb[k - 1];
    }
    return hsum8f(acc);
}

/* the other formats: sb_vec_avx2's 8 float lanes per super-block */
KQ_AVX2_FN static float row_vec_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t **res, const kq_act *a, int lo, int hi, int64_t sb1,
                                     const int64_t *rb)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const __m256 t = sb_vec_avx2(m, p, res, a->xq + b * KQ_SUPER, a->bsum + b * KQ_NSUB, lo, hi);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(a->dx[b]), t, acc);
        p += sb1;
        for (int k = 2; k <= hi; k++) res[k - 1] += rb[k - 1];
    }
    return hsum8f(acc);
}

KQ_AVX2_FN static float row_dot_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t **res, const kq_act *a, int lo, int hi,
                                     int64_t sb1, const int64_t *rb)
{
    const kq_format *f = &m->fmt;
    const int64_t NB = m->cols / KQ_SUPER;
    if (v1k_avx2_ok(f, hi)) {
        const uint8_t *r2 = res[1], *r3 = res[2];
        float o = 0;
#define KQ_RANGE(l, h) else if (lo == l && hi == h) rows_v1k_avx2_t(p, r2, r3, a, NB, 0, l, h, 1, &o)
        if (0) {}
        KQ_RANGE(1, 1); KQ_RANGE(1, 2); KQ_RANGE(1, 3); KQ_RANGE(2, 2); KQ_RANGE(2, 3); KQ_RANGE(3, 3);
#undef KQ_RANGE
        return o;
    }
    if (f->resid == KQ_TIED && (!f->min_rel || f->scale_bits + f->min_bits <= 15)) {
        const float kap = kappa(f);
        if (f->base_bits == 5 && f->scale_bits == 6 && f->min_bits == 6 && !f->min_rel && f->levels == 4) { /* v2k */
#define KQ_V2K(l, h) if (lo == l && hi == h) return row_tied_avx2_t(p, res, a, NB, sb1, rb, l, h, 5, 6, 6, 0, kap)
            KQ_V2K(1, 1); KQ_V2K(1, 2); KQ_V2K(1, 3); KQ_V2K(1, 4); KQ_V2K(2, 2);
            KQ_V2K(2, 3); KQ_V2K(2, 4); KQ_V2K(3, 3); KQ_V2K(3, 4); KQ_V2K(4, 4);
#undef KQ_V2K
        }
        return row_tied_avx2_t(p, res, a, NB, sb1, rb, lo, hi, f->base_bits, f->scale_bits, f->min_bits, f->min_rel, kap);
    }
    return row_vec_avx2(m, p, res, a, lo, hi, sb1, rb);
}
#endif

kq_impl kq_impl_set(kq_impl impl)
{
    if (impl == KQ_AUTO) impl = kq_have_avx2() ? KQ_AVX2 : KQ_SCALAR;
    if (impl == KQ_AVX2 && !kq_have_avx2()) impl = KQ_SCALAR;
    impl_now = impl;
    kq_qpath_set(impl == KQ_SCALAR ? KQ_QPLAIN : KQ_QAUTO);
    return impl;
}

const char *kq_impl_name(kq_impl impl) { return impl == KQ_AVX2 ? "avx2" : impl == KQ_SCALAR ? "scalar" : "auto"; }

float kq_dot(const kq_matrix *m, int64_t row, int lo, int hi, const kq_act *a)
{
    if (impl_now == KQ_AUTO) kq_impl_set(KQ_AUTO);
    const kq_format *f = &m->fmt;
    const int64_t NB = m->cols / KQ_SUPER, sb1 = kq_super_bytes(f, 1);
    int64_t rb[KQ_MAX_LEVELS] = {0};
    const uint8_t *p = m->chunk[0] + row * NB * sb1;
    const uint8_t *res[KQ_MAX_LEVELS] = {0};
    for (int k = 2; k <= hi; k++) {
        rb[k - 1] = kq_super_bytes(f, k);
        res[k - 1] = m->chunk[k - 1] + row * NB * rb[k - 1];
    }
#ifdef KQ_X86
    if (impl_now == KQ_AVX2) return row_dot_avx2(m, p, res, a, lo, hi, sb1, rb);
#endif
    float tot = 0;
    sb_int t;
    for (int64_t b = 0; b < NB; b++) {
        sb_int_scalar(m, p, res, a->xq + b * KQ_SUPER, a->bsum + b * KQ_NSUB, lo, hi, &t);
        tot += a->dx[b] * sb_combine(m, p, res, &t, lo, hi);
        p += sb1;
        for (int k = 2; k <= hi; k++) res[k - 1] += rb[k - 1];
    }
    return tot;
}

int kq_matvec(const kq_matrix *m, int lo, int hi, const kq_act *a, float *y)
{
    if (lo < 1 || hi < lo || hi > m->fmt.levels)
        D2_ERROR(D2_EINVAL, "levels %d..%d: the matrix has levels 1..%d", lo, hi, m->fmt.levels);
    if (a->cols != m->cols) D2_ERROR(D2_EINVAL, "activations of %lld columns for a matrix of %lld", (long long)a->cols, (long long)m->cols);
    if (impl_now == KQ_AUTO) kq_impl_set(KQ_AUTO);
    int64_t r = 0;
#ifdef KQ_X86
    if (impl_now == KQ_AVX2 && v1k_avx2_ok(&m->fmt, hi)) r = matvec_v1k_avx2(m, lo, hi, a, y);
#endif
    for (; r < m->rows; r++) y[r] += kq_dot(m, r, lo, hi, a);
    return D2_OK;
}
