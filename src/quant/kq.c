/* kq.c - the MWQ-K nested format of kq.h: quantizer (per sub-block scale and
 * min search, quantized sub-block scales, residual sign levels with a factor
 * chosen per sub-block), dequantization, and the int8 dot / mat-vec kernels.
 * The scalar and AVX2 kernels compute the same integer sub-block sums and
 * combine them with the same float code, so they agree bit for bit. */
#include "config.h"
#include "quant/kq.h"
#include "quant/f16.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define KQ_X86 1
#define KQ_AVX2_FN __attribute__((target("avx2,fma")))
#endif

/* ---- format ------------------------------------------------------------ */
int kq_format_preset(const char *name, kq_format *f)
{
    static const struct { const char *name; kq_format f; } presets[] = {
        {.name = "v1k", .f = {.base_bits = 2, .levels = 3, .scale_bits = 4, .min_bits = 4, .factor_bits = 2}},
        {.name = "v2k", .f = {.base_bits = 5, .levels = 4, .scale_bits = 6, .min_bits = 6, .factor_bits = 0}},
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
    if (f->factor_bits < 0 || f->factor_bits > 2) D2_ERROR(D2_ERANGE, "kq factor_bits: %d is outside 0..2", f->factor_bits);
    return D2_OK;
}

static int scales_bytes(const kq_format *f) { return (KQ_NSUB * (f->scale_bits + f->min_bits) + 7) / 8; }

int64_t kq_super_bytes(const kq_format *f, int level)
{
    if (level == 1) return 4 + scales_bytes(f) + 32 * f->base_bits;
    return 32 + f->factor_bits; /* 8 codes of fbits bits = fbits bytes */
}

int64_t kq_chunk_bytes(const kq_format *f, int64_t rows, int64_t cols, int level)
{
    return rows * (cols / KQ_SUPER) * kq_super_bytes(f, level);
}

float kq_factor(int fbits, int c)
{
    static const float t0[1] = {0.25f}, t1[2] = {0.125f, 0.25f}, t2[4] = {0.05f, 0.1f, 0.17f, 0.25f};
    return fbits == 0 ? t0[0] : fbits == 1 ? t1[c & 1] : t2[c & 3];
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
    for (int b = 0; b < bits; b++, bitpos++)
        if ((v >> b) & 1) p[bitpos >> 3] |= (uint8_t)(1u << (bitpos & 7));
}

/* The level-1 header of one super-block: d, dmin and the 8 scale / min codes. */
typedef struct sb_head { float d, dmin; int sc[KQ_NSUB], mc[KQ_NSUB]; } sb_head;

static void head_read(const kq_format *f, const uint8_t *p, sb_head *h)
{
    h->d = f16_to_float(rd16(p));
    h->dmin = f16_to_float(rd16(p + 2));
    for (int j = 0; j < KQ_NSUB; j++) {
        h->sc[j] = bs_get(p + 4, j * f->scale_bits, f->scale_bits);
        h->mc[j] = bs_get(p + 4, KQ_NSUB * f->scale_bits + j * f->min_bits, f->min_bits);
    }
}

static void factors_read(const kq_format *f, const uint8_t *p, int fc[KQ_NSUB])
{
    for (int j = 0; j < KQ_NSUB; j++) fc[j] = f->factor_bits ? bs_get(p + 32, j * f->factor_bits, f->factor_bits) : 0;
}

/* step of level k >= 2 in sub-block j: the float every path uses */
static inline float level_step(const kq_format *f, float s, int k, int c)
{
    return s * ldexpf(kq_factor(f->factor_bits, c), -(k - 2));
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

static inline const uint8_t *sb_ptr(const kq_matrix *m, int level, int64_t row, int64_t b)
{
    return m->chunk[level - 1] + (row * (m->cols / KQ_SUPER) + b) * kq_super_bytes(&m->fmt, level);
}

/* ---- quantizer ----------------------------------------------------------- */
static inline float q_rint(float v)
{
    const float mg = 12582912.0f; /* 1.5 * 2^23: round to nearest even for |v| < 2^22 */
    return v >= 0 ? (v + mg) - mg : (v - mg) + mg;
}

/* Fit x[0..32) ~ s*q - m, q in 0..nmax, m >= 0 (the sub-block minimum
 * clamped to <= 0, as k-quants do): candidates iscale = (nmax + t/10) / range,
 * t = -T..T, each refitted by least squares; the lowest error wins. */
static void fit_sub(const float *x, int nmax, int T, float *s_out, float *m_out)
{
    float mn = x[0], mx = x[0];
    for (int i = 1; i < KQ_SUB; i++) { mn = x[i] < mn ? x[i] : mn; mx = x[i] > mx ? x[i] : mx; }
    if (mn > 0) mn = 0;
    const float range = mx - mn;
    if (!(range > 0)) { *s_out = 0; *m_out = -mn; return; }
    double sx = 0;
    for (int i = 0; i < KQ_SUB; i++) sx += x[i];
    double best_e = INFINITY, bs = range / nmax, bm = -mn;
    for (int t = -T; t <= T; t++) {
        const float is = (float)((nmax + 0.1 * t) / range);
        double sl = 0, sll = 0, slx = 0;
        int l[KQ_SUB];
        for (int i = 0; i < KQ_SUB; i++) {
            float v = (x[i] - mn) * is;
            l[i] = (int)q_rint(v < 0 ? 0 : v > nmax ? (float)nmax : v);
            sl += l[i]; sll += (double)l[i] * l[i]; slx += l[i] * (double)x[i];
        }
        double D = KQ_SUB * sll - sl * sl;
        if (D <= 0) continue;
        double s = (KQ_SUB * slx - sl * sx) / D, off = (sll * sx - sl * slx) / D;
        if (off > 0) { off = 0; s = slx / sll; }
        if (!(s > 0)) continue;
        double e = 0;
        for (int i = 0; i < KQ_SUB; i++) { double d = s * l[i] + off - x[i]; e += d * d; }
        if (e < best_e) { best_e = e; bs = s; bm = -off; }
    }
    *s_out = (float)bs;
    *m_out = (float)bm;
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

/* one super-block, all levels: x[256]; prev receives W_K */
static void quant_super(kq_matrix *m, int64_t row, int64_t b, const float *x, int T)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1;
    float s[KQ_NSUB], mn[KQ_NSUB], cur[KQ_SUPER];
    for (int j = 0; j < KQ_NSUB; j++) fit_sub(x + KQ_SUB * j, nmax, T, &s[j], &mn[j]);
    uint16_t d16, dm16;
    sb_head h;
    quant_codes8(s, f->scale_bits, &d16, h.sc);
    quant_codes8(mn, f->min_bits, &dm16, h.mc);
    uint8_t *p = (uint8_t *)sb_ptr(m, 1, row, b);
    wr16(p, d16);
    wr16(p + 2, dm16);
    for (int j = 0; j < KQ_NSUB; j++) {
        bs_put(p + 4, j * f->scale_bits, f->scale_bits, h.sc[j]);
        bs_put(p + 4, KQ_NSUB * f->scale_bits + j * f->min_bits, f->min_bits, h.mc[j]);
    }
    head_read(f, p, &h); /* the stored values */
    int w[3], o[3], ns = base_slices(f->base_bits, w, o);
    uint8_t *codes = p + 4 + scales_bytes(f);
    for (int j = 0; j < KQ_NSUB; j++) {
        const float sj = h.d * (float)h.sc[j], mj = h.dmin * (float)h.mc[j];
        for (int i = 0; i < KQ_SUB; i++) {
            const int c = KQ_SUB * j + i;
            int q = 0;
            if (sj > 0) {
                float v = q_rint((x[c] + mj) / sj);
                q = v < 0 ? 0 : v > nmax ? nmax : (int)v;
            }
            cur[c] = sj * (float)q - mj;
            uint8_t *sp = codes;
            for (int t = 0; t < ns; t++) {
                const int per = 256 / w[t], blk = c / per, off = c % per;
                sp[blk * 32 + off % 32] |= (uint8_t)(((q >> o[t]) & ((1 << w[t]) - 1)) << (w[t] * (off / 32)));
                sp += 32 * w[t];
            }
        }
    }
    for (int k = 2; k <= f->levels; k++) {
        uint8_t *r = (uint8_t *)sb_ptr(m, k, row, b);
        const int nf = 1 << f->factor_bits;
        for (int j = 0; j < KQ_NSUB; j++) {
            const float sj = h.d * (float)h.sc[j];
            double be = INFINITY;
            int bc = 0;
            for (int c = 0; c < nf; c++) {
                const float a = level_step(f, sj, k, c);
                double e = 0;
                for (int i = 0; i < KQ_SUB; i++) {
                    const int ci = KQ_SUB * j + i;
                    const float nv = x[ci] - cur[ci] >= 0 ? cur[ci] + a : cur[ci] - a;
                    const double d = (double)x[ci] - nv;
                    e += d * d;
                }
                if (e < be) { be = e; bc = c; }
            }
            const float a = level_step(f, sj, k, bc);
            if (f->factor_bits) bs_put(r + 32, j * f->factor_bits, f->factor_bits, bc);
            for (int i = 0; i < KQ_SUB; i++) {
                const int ci = KQ_SUB * j + i;
                if (x[ci] - cur[ci] >= 0) { r[i] |= (uint8_t)(1u << j); cur[ci] = cur[ci] + a; }
                else cur[ci] = cur[ci] - a;
            }
        }
    }
}

int kq_quantize(const float *w, int64_t rows, int64_t cols, const kq_format *f, int search_steps, kq_matrix **out)
{
    *out = NULL;
    if (search_steps < 0 || search_steps > 31) D2_ERROR(D2_ERANGE, "search_steps: %d is outside 0..31", search_steps);
    kq_matrix *m;
    D2_TRY(kq_matrix_new(f, rows, cols, &m));
    for (int64_t r = 0; r < rows; r++) {
        const float *x = w + r * cols;
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(x[c])) {
                kq_matrix_free(m);
                D2_ERROR(D2_EINVAL, "weights: element (%lld, %lld) is %s", (long long)r, (long long)c, isnan(x[c]) ? "NaN" : "Inf");
            }
        for (int64_t b = 0; b < cols / KQ_SUPER; b++) quant_super(m, r, b, x + b * KQ_SUPER, search_steps);
    }
    *out = m;
    return D2_OK;
}

/* ---- dequantization -------------------------------------------------------- */
static int base_code(const kq_format *f, const uint8_t *codes, int c)
{
    int w[3], o[3], ns = base_slices(f->base_bits, w, o), q = 0;
    const uint8_t *sp = codes;
    for (int t = 0; t < ns; t++) {
        const int per = 256 / w[t], blk = c / per, off = c % per;
        q |= ((sp[blk * 32 + off % 32] >> (w[t] * (off / 32))) & ((1 << w[t]) - 1)) << o[t];
        sp += 32 * w[t];
    }
    return q;
}

void kq_row_dequant(const kq_matrix *m, int level, int64_t row, float *out)
{
    const kq_format *f = &m->fmt;
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const uint8_t *p = sb_ptr(m, 1, row, b);
        sb_head h;
        head_read(f, p, &h);
        float *o = out + b * KQ_SUPER;
        for (int c = 0; c < KQ_SUPER; c++) {
            const int j = c / KQ_SUB;
            o[c] = h.d * (float)h.sc[j] * (float)base_code(f, p + 4 + scales_bytes(f), c) - h.dmin * (float)h.mc[j];
        }
        for (int k = 2; k <= level; k++) {
            const uint8_t *r = sb_ptr(m, k, row, b);
            int fc[KQ_NSUB];
            factors_read(f, r, fc);
            for (int c = 0; c < KQ_SUPER; c++) {
                const int j = c / KQ_SUB;
                const float a = level_step(f, h.d * (float)h.sc[j], k, fc[j]);
                o[c] = (r[c % 32] >> j) & 1 ? o[c] + a : o[c] - a;
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
    if (!a->dx || !a->xq || !a->bsum) { kq_act_free(a); D2_ERROR(D2_ENOMEM, "out of memory"); }
    *out = a;
    return D2_OK;
}

void kq_act_free(kq_act *a)
{
    if (!a) return;
    free(a->dx);
    free(a->xq);
    free(a->bsum);
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
        }
    }
    return D2_OK;
}

void kq_act_dequant(const kq_act *a, float *xhat)
{
    for (int64_t c = 0; c < a->cols; c++) xhat[c] = a->dx[c / KQ_SUPER] * (float)a->xq[c];
}

/* ---- kernels ------------------------------------------------------------------
 * Per super-block, the integer sums P[j] = sum_i q_i xq_i (level 1) and
 * M_kj = sum_{sign bit set} xq_i (level k), then one float combination
 * (combine()) shared by both paths:
 *   level 1: d * sum_j sc_j P_j - dmin * sum_j mc_j bsum_j
 *   level k: sum_j a_kj (2 M_kj - bsum_j)
 * times the super-block's activation scale dx. */
typedef struct sb_sums { int32_t p[KQ_NSUB]; int32_t mk[KQ_MAX_LEVELS][KQ_NSUB]; } sb_sums;

static float combine(const kq_format *f, const sb_head *h, const uint8_t *const *res, const int32_t *bsum, int lo, int hi,
                     const sb_sums *S)
{
    float tot = 0;
    if (lo == 1) {
        int64_t ip = 0, im = 0; /* b1 = 8 with 8-bit scales: up to 8 * 255 * 32 * 255 * 127 > 2^31 */
        for (int j = 0; j < KQ_NSUB; j++) { ip += (int64_t)h->sc[j] * S->p[j]; im += (int64_t)h->mc[j] * bsum[j]; }
        tot = h->d * (float)ip - h->dmin * (float)im;
    }
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        int fc[KQ_NSUB];
        factors_read(f, res[k - 1], fc);
        float lv = 0;
        for (int j = 0; j < KQ_NSUB; j++) lv += level_step(f, h->d * (float)h->sc[j], k, fc[j]) * (float)(2 * S->mk[k - 1][j] - bsum[j]);
        tot += lv;
    }
    return tot;
}

static void sums_scalar(const kq_format *f, const uint8_t *codes, const uint8_t *const *res, const int8_t *xq, int lo, int hi,
                        sb_sums *S)
{
    if (lo == 1)
        for (int j = 0; j < KQ_NSUB; j++) {
            int32_t s = 0;
            for (int i = 0; i < KQ_SUB; i++) s += base_code(f, codes, KQ_SUB * j + i) * xq[KQ_SUB * j + i];
            S->p[j] = s;
        }
    for (int k = lo > 2 ? lo : 2; k <= hi; k++)
        for (int j = 0; j < KQ_NSUB; j++) {
            int32_t s = 0;
            for (int i = 0; i < KQ_SUB; i++) s += (res[k - 1][i] >> j) & 1 ? xq[KQ_SUB * j + i] : 0;
            S->mk[k - 1][j] = s;
        }
}

#ifdef KQ_X86
/* 8 vectors of 8 int32 -> one vector of their 8 horizontal sums */
KQ_AVX2_FN static inline __m256i hsum8x8(const __m256i v[8])
{
    __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
    __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
    __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* sub-block sums of one w-bit slice (codes << o) into acc[8] */
KQ_AVX2_FN static inline void slice_sums(const uint8_t *sp, int w, int o, const int8_t *xq, __m256i acc[8])
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

/* the 2-bit base (v1k), unrolled */
KQ_AVX2_FN static inline __m256i base2_sums(const uint8_t *sp, const int8_t *xq)
{
    const __m256i mask = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[8];
    for (int blk = 0; blk < 2; blk++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(sp + 32 * blk));
        for (int u = 0; u < 4; u++) {
            const __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, 2 * u), mask);
            acc[4 * blk + u] = _mm256_madd_epi16(
                _mm256_maddubs_epi16(c, _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * (4 * blk + u)))), ones);
        }
    }
    return hsum8x8(acc);
}

KQ_AVX2_FN static void sums_avx2(const kq_format *f, const uint8_t *codes, const uint8_t *const *res, const int8_t *xq, int lo,
                                 int hi, sb_sums *S)
{
    const __m256i ones = _mm256_set1_epi16(1), one8 = _mm256_set1_epi8(1);
    if (lo == 1) {
        if (f->base_bits == 2) _mm256_storeu_si256((__m256i *)S->p, base2_sums(codes, xq));
        else {
            __m256i acc[8];
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_si256();
            int w[3], o[3], ns = base_slices(f->base_bits, w, o);
            const uint8_t *sp = codes;
            for (int t = 0; t < ns; t++) { slice_sums(sp, w[t], o[t], xq, acc); sp += 32 * w[t]; }
            _mm256_storeu_si256((__m256i *)S->p, hsum8x8(acc));
        }
    }
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)res[k - 1]);
        __m256i acc[8];
        for (int j = 0; j < KQ_NSUB; j++) {
            const __m256i c = _mm256_and_si256(_mm256_srli_epi16(v, j), one8);
            acc[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(c, _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j))), ones);
        }
        _mm256_storeu_si256((__m256i *)S->mk[k - 1], hsum8x8(acc));
    }
}

static int kq_have_avx2(void)
{
    static int have = -1;
    if (have < 0) { __builtin_cpu_init(); have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
    return have;
}
#else
static int kq_have_avx2(void) { return 0; }
#endif

static kq_impl impl_now = KQ_AUTO;

kq_impl kq_impl_set(kq_impl impl)
{
    if (impl == KQ_AUTO) impl = kq_have_avx2() ? KQ_AVX2 : KQ_SCALAR;
    if (impl == KQ_AVX2 && !kq_have_avx2()) impl = KQ_SCALAR;
    impl_now = impl;
    return impl;
}

const char *kq_impl_name(kq_impl impl) { return impl == KQ_AVX2 ? "avx2" : impl == KQ_SCALAR ? "scalar" : "auto"; }

float kq_dot(const kq_matrix *m, int64_t row, int lo, int hi, const kq_act *a)
{
    if (impl_now == KQ_AUTO) kq_impl_set(KQ_AUTO);
    const kq_format *f = &m->fmt;
    const int64_t NB = m->cols / KQ_SUPER;
    const int64_t sb1 = kq_super_bytes(f, 1);
    const int sbytes = scales_bytes(f);
    const uint8_t *p1 = m->chunk[0] + row * NB * sb1;
    const uint8_t *rp[KQ_MAX_LEVELS] = {0};
    int64_t rb[KQ_MAX_LEVELS] = {0};
    for (int k = 2; k <= hi; k++) { rb[k - 1] = kq_super_bytes(f, k); rp[k - 1] = m->chunk[k - 1] + row * NB * rb[k - 1]; }
    float tot = 0;
    sb_sums S;
    for (int64_t b = 0; b < NB; b++) {
        const uint8_t *p = p1 + b * sb1;
        const uint8_t *res[KQ_MAX_LEVELS] = {0};
        for (int k = 2; k <= hi; k++) res[k - 1] = rp[k - 1] + b * rb[k - 1];
        sb_head h;
        head_read(f, p, &h);
        const int8_t *xq = a->xq + b * KQ_SUPER;
#ifdef KQ_X86
        if (impl_now == KQ_AVX2) sums_avx2(f, p + 4 + sbytes, res, xq, lo, hi, &S);
        else
#endif
            sums_scalar(f, p + 4 + sbytes, res, xq, lo, hi, &S);
        tot += a->dx[b] * combine(f, &h, res, a->bsum + b * KQ_NSUB, lo, hi, &S);
    }
    return tot;
}

int kq_matvec(const kq_matrix *m, int lo, int hi, const kq_act *a, float *y)
{
    if (lo < 1 || hi < lo || hi > m->fmt.levels)
        D2_ERROR(D2_EINVAL, "levels %d..%d: the matrix has levels 1..%d", lo, hi, m->fmt.levels);
    if (a->cols != m->cols) D2_ERROR(D2_EINVAL, "activations of %lld columns for a matrix of %lld", (long long)a->cols, (long long)m->cols);
    for (int64_t r = 0; r < m->rows; r++) y[r] += kq_dot(m, r, lo, hi, a);
    return D2_OK;
}
