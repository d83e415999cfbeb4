/* kq.c - the MWQ-K nested format of kq.h: quantizer (per sub-block scale and
 * min search, quantized sub-block scales, residual sign levels with a factor
 * chosen per sub-block), dequantization, and the int8 dot / mat-vec kernels.
 * The scalar and AVX2 kernels compute the same integer sub-block sums and
 * combine them with the same float code, so they agree bit for bit. */
#include "config.h"
#include "quant/kq.h"
#include "quant/f16.h"
#include "quant/kern.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define KQ_X86 1
#define KQ_AVX2_FN __attribute__((target("avx2,fma,f16c")))
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
static inline float level_step(const kq_matrix *m, float s, int k, int c) { return s * m->step[k - 1][c]; }

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
        for (int c = 0; c < 8; c++) m->step[k - 1][c] = ldexpf(kq_factor(f->factor_bits, c & ((1 << f->factor_bits) - 1)), -(k - 2));
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
        /* 8 float lanes (the sums of l and l^2 are exact: integers < 2^24) */
        float a8[8] = {0}, b8[8] = {0}, c8[8] = {0};
        const float nm = (float)nmax, mg = 12582912.0f;
        for (int i = 0; i < KQ_SUB; i += 8)
            for (int u = 0; u < 8; u++) {
                float v = (x[i + u] - mn) * is; /* >= 0: x >= mn */
                v = v < nm ? v : nm;
                const float l = (v + mg) - mg; /* round to nearest even, v >= 0 */
                a8[u] += l;
                b8[u] += l * l;
                c8[u] += l * x[i + u];
            }
        double sl = 0, sll = 0, slx = 0;
        for (int u = 0; u < 8; u++) { sl += a8[u]; sll += b8[u]; slx += c8[u]; }
        double D = KQ_SUB * sll - sl * sl;
        if (D <= 0) continue;
        double s = (KQ_SUB * slx - sl * sx) / D, off = (sll * sx - sl * slx) / D;
        if (off > 0) { off = 0; s = slx / sll; }
        if (!(s > 0)) continue;
        /* sum (s l + off - x)^2 without the sum x^2 term (the same for all) */
        const double e = s * s * sll + 2 * s * off * sl + KQ_SUB * off * off - 2 * s * slx - 2 * off * sx;
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
    uint8_t q[KQ_SUPER];
    for (int j = 0; j < KQ_NSUB; j++) {
        const float sj = h.d * (float)h.sc[j], mj = h.dmin * (float)h.mc[j], nm = (float)nmax, mg = 12582912.0f;
        for (int i = 0; i < KQ_SUB; i++) {
            const int c = KQ_SUB * j + i;
            float v = sj > 0 ? (x[c] + mj) / sj : 0;
            v = v > 0 ? v : 0;
            v = v < nm ? v : nm;
            q[c] = (uint8_t)((v + mg) - mg); /* round to nearest even, 0 <= v <= nmax */
            cur[c] = sj * (float)q[c] - mj;
        }
    }
    /* pack: the inverse of base_codes */
    int w[3], o[3], ns = base_slices(f->base_bits, w, o);
    uint8_t *sp = p + 4 + scales_bytes(f);
    for (int t = 0; t < ns; t++) {
        const int per = 256 / w[t], mask = (1 << w[t]) - 1;
        for (int blk = 0; blk < w[t]; blk++)
            for (int u = 0; u < per / 32; u++)
                for (int i = 0; i < 32; i++)
                    sp[blk * 32 + i] |= (uint8_t)(((q[blk * per + 32 * u + i] >> o[t]) & mask) << (w[t] * u));
        sp += 32 * w[t];
    }
    for (int k = 2; k <= f->levels; k++) {
        uint8_t *r = (uint8_t *)sb_ptr(m, k, row, b);
        const int nf = 1 << f->factor_bits;
        for (int j = 0; j < KQ_NSUB; j++) {
            const float sj = h.d * (float)h.sc[j];
            /* with the signs of R = x - W_{k-1}, the error of step a is
             * sum R^2 - 2 a sum |R| + 32 a^2: the factor is chosen in closed form */
            double s1 = 0;
            for (int i = 0; i < KQ_SUB; i++) s1 += fabs((double)x[KQ_SUB * j + i] - cur[KQ_SUB * j + i]);
            double be = INFINITY;
            int bc = 0;
            for (int c = 0; c < nf; c++) {
                const double a = level_step(m, sj, k, c), e = KQ_SUB * a * a - 2 * a * s1;
                if (e < be) { be = e; bc = c; }
            }
            const float a = level_step(m, sj, k, bc);
            if (f->factor_bits) bs_put(r + 32, j * f->factor_bits, f->factor_bits, bc);
            for (int i = 0; i < KQ_SUB; i++) {
                const int ci = KQ_SUB * j + i, pos = x[ci] - cur[ci] >= 0;
                r[i] |= (uint8_t)(pos << j);
                cur[ci] = cur[ci] + (pos ? a : -a);
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
    uint8_t q[KQ_SUPER];
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const uint8_t *p = sb_ptr(m, 1, row, b);
        sb_head h;
        head_read(f, p, &h);
        base_codes(f, p + 4 + scales_bytes(f), q);
        float *o = out + b * KQ_SUPER;
        for (int c = 0; c < KQ_SUPER; c++) {
            const int j = c / KQ_SUB;
            o[c] = h.d * (float)h.sc[j] * (float)q[c] - h.dmin * (float)h.mc[j];
        }
        for (int k = 2; k <= level; k++) {
            const uint8_t *r = sb_ptr(m, k, row, b);
            int fc[KQ_NSUB];
            factors_read(f, r, fc);
            for (int j = 0; j < KQ_NSUB; j++) {
                const float a = level_step(m, h.d * (float)h.sc[j], k, fc[j]);
                for (int i = 0; i < KQ_SUB; i++) o[KQ_SUB * j + i] = o[KQ_SUB * j + i] + a * (float)(2 * ((r[i] >> j) & 1) - 1);
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
 * Per super-block: the integer sub-block sums P_j = sum_i q_i xq_i (level 1)
 * and M_kj = sum over set sign bits of xq_i (level k), then
 *   level 1:  d * sum_j sc_j P_j - dmin * sum_j mc_j bsum_j   (int64 sums)
 *   level k:  lane j accumulates a_kj * (2 M_kj - bsum_j), levels in order,
 *             a_kj = (d * sc_j) * step[k][c_kj]; the 8 lanes are summed in a
 *             fixed tree ((0+4)+(2+6))+((1+5)+(3+7)) by both paths
 * times the super-block's activation scale dx, super-blocks summed in order. */
static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static inline float lanes8(const float v[8]) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

static float sb_dot_scalar(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res, const int8_t *xq, const int32_t *bsum,
                           int lo, int hi)
{
    const kq_format *f = &m->fmt;
    const float d = f16_to_float(rd16(p)), dmin = f16_to_float(rd16(p + 2));
    const uint64_t su = rd64(p + 4), mu = rd64(p + 4 + f->scale_bits);
    const int smask = (1 << f->scale_bits) - 1, mmask = (1 << f->min_bits) - 1, fmask = (1 << f->factor_bits) - 1;
    int sc[KQ_NSUB], mc[KQ_NSUB];
    for (int j = 0; j < KQ_NSUB; j++) {
        sc[j] = (int)(su >> (j * f->scale_bits)) & smask;
        mc[j] = (int)(mu >> (j * f->min_bits)) & mmask;
    }
    float l1 = 0;
    if (lo == 1) {
        const uint8_t *codes = p + 4 + scales_bytes(f);
        int64_t ip = 0, im = 0;
        for (int j = 0; j < KQ_NSUB; j++) {
            int32_t sum = 0;
            for (int i = 0; i < KQ_SUB; i++) sum += base_code(f, codes, KQ_SUB * j + i) * xq[KQ_SUB * j + i];
            ip += (int64_t)sc[j] * sum;
            im += (int64_t)mc[j] * bsum[j];
        }
        l1 = d * (float)ip - dmin * (float)im;
    }
    float acc[KQ_NSUB] = {0};
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const uint8_t *r = res[k - 1];
        const int fc = f->factor_bits ? rd16(r + 32) : 0;
        for (int j = 0; j < KQ_NSUB; j++) {
            int32_t sum = 0;
            for (int i = 0; i < KQ_SUB; i++) sum += (r[i] >> j) & 1 ? xq[KQ_SUB * j + i] : 0;
            const float a = (d * (float)sc[j]) * m->step[k - 1][(fc >> (j * f->factor_bits)) & fmask];
            acc[j] = acc[j] + a * (float)(2 * sum - bsum[j]);
        }
    }
    return l1 + lanes8(acc);
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

KQ_AVX2_FN static inline float hsum8f(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* (0+4) (1+5) (2+6) (3+7) */
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));                                       /* ((0+4)+(2+6)) ((1+5)+(3+7)) */
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
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

/* sub-block sums of one w-bit slice (codes << o) into acc[8]; inlined so
 * that constant widths unroll */
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

KQ_AVX2_FN static inline int64_t hsum_i64(__m256i v)
{
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)t, v);
    int64_t s = 0;
    for (int j = 0; j < 8; j++) s += t[j];
    return s;
}

/* 8 int32 lanes summed: in int32 when `small` (no overflow possible for the
 * format, so equal to the int64 sum), else in int64 */
KQ_AVX2_FN static inline int64_t hsum_lanes(__m256i v, int small)
{
    if (small) {
        __m128i q = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4e));
        q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1));
        return _mm_cvtsi128_si32(q);
    }
    return hsum_i64(v);
}

KQ_AVX2_FN __attribute__((always_inline)) static inline float sb_dot_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res, const int8_t *xq,
                                           const int32_t *bsum, int lo, int hi, int small)
{
    const kq_format *f = &m->fmt;
    const __m256i ones = _mm256_set1_epi16(1);
    uint16_t h16[2];
    memcpy(h16, p, 4);
    const float d = _cvtsh_ss(h16[0]), dmin = _cvtsh_ss(h16[1]);
    uint64_t su, mu; /* x86: little-endian loads */
    memcpy(&su, p + 4, 8);
    memcpy(&mu, p + 4 + f->scale_bits, 8);
    const __m256i sc = fields8(su, f->scale_bits);
    const __m256i bs = _mm256_loadu_si256((const __m256i *)bsum);
    float l1 = 0;
    if (lo == 1) {
        const uint8_t *codes = p + 4 + scales_bytes(f);
        __m256i acc[8];
        if (f->base_bits == 2) {
            const __m256i mask = _mm256_set1_epi8(3);
            for (int blk = 0; blk < 2; blk++) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(codes + 32 * blk));
                for (int u = 0; u < 4; u++)
                    acc[4 * blk + u] = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 2 * u), mask),
                                             _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * (4 * blk + u)))),
                        ones);
            }
        } else if (f->base_bits == 5) { /* v2k: a 4-bit and a 1-bit slice */
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_si256();
            slice_sums(codes, 4, 0, xq, acc);
            slice_sums(codes + 128, 1, 4, xq, acc);
        } else {
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_si256();
            int w[3], o[3], ns = base_slices(f->base_bits, w, o);
            const uint8_t *sp = codes;
            for (int t = 0; t < ns; t++) { slice_sums(sp, w[t], o[t], xq, acc); sp += 32 * w[t]; }
        }
        const __m256i P = hsum8x8(acc);
        const __m256i mc = fields8(mu, f->min_bits);
        l1 = d * (float)hsum_lanes(_mm256_mullo_epi32(sc, P), small) - dmin * (float)hsum_lanes(_mm256_mullo_epi32(mc, bs), small);
    }
    __m256 acc = _mm256_setzero_ps();
    const __m256 s = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sc));
    const __m256i one8 = _mm256_set1_epi8(1);
    for (int k = lo > 2 ? lo : 2; k <= hi; k++) {
        const uint8_t *r = res[k - 1];
        const __m256i v = _mm256_loadu_si256((const __m256i *)r);
#define KQ_SGN(j)                                                                                                       \
    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, j), one8),                              \
                                           _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * (j)))),                     \
                      ones)
        const __m256i part[8] = {KQ_SGN(0), KQ_SGN(1), KQ_SGN(2), KQ_SGN(3), KQ_SGN(4), KQ_SGN(5), KQ_SGN(6), KQ_SGN(7)};
#undef KQ_SGN
        const __m256i M = hsum8x8(part);
        __m256 step;
        if (f->factor_bits) {
            uint16_t fc;
            memcpy(&fc, r + 32, 2);
            step = _mm256_permutevar8x32_ps(_mm256_loadu_ps(m->step[k - 1]), fields8(fc, f->factor_bits));
        }
        else step = _mm256_set1_ps(m->step[k - 1][0]);
        const __m256 t = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_slli_epi32(M, 1), bs));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(s, step), t));
    }
    return l1 + hsum8f(acc);
}

KQ_AVX2_FN static float row_dot_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t **res, const kq_act *a, int lo, int hi,
                                     int64_t sb1, int64_t rb)
{
    const kq_format *f = &m->fmt;
    /* largest |sum_j sc_j P_j| or |sum_j mc_j bsum_j|: 8 * 255 * 32 * 255 * 127 at most */
    const int64_t most = 8LL * ((1 << (f->scale_bits > f->min_bits ? f->scale_bits : f->min_bits)) - 1) * KQ_SUB *
                         ((1 << f->base_bits) - 1) * 127;
    const int small = most < (1LL << 31);
    /* 2-bit base: level 1 accumulated in 8 float lanes across super-blocks
     * (sub-block scales applied in int16 by madd, no per-block reduction);
     * its int16 products are at most 2 * 3 * 127 * 255 < 2^31 per pair */
    const int lanes = lo == 1 && f->base_bits == 2;
    const int lo2 = lanes ? 2 : lo;
    __m256 f1 = _mm256_setzero_ps();
    const __m256i mask2 = _mm256_set1_epi8(3);
    float tot = 0;
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const int8_t *xq = a->xq + b * KQ_SUPER;
        if (lanes) {
            uint16_t h16[2];
            uint64_t su, mu;
            memcpy(h16, p, 4);
            memcpy(&su, p + 4, 8);
            memcpy(&mu, p + 4 + f->scale_bits, 8);
            const __m256i sc32 = fields8(su, f->scale_bits), mc32 = fields8(mu, f->min_bits);
            const __m256i sc16 = _mm256_broadcastsi128_si256(
                _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(sc32, sc32), 0x08)));
            const uint8_t *codes = p + 4 + scales_bytes(f);
            const __m256i v0 = _mm256_loadu_si256((const __m256i *)codes), v1 = _mm256_loadu_si256((const __m256i *)(codes + 32));
#define KQ_B2(v, u, j)                                                                                                   \
    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 2 * (u)), mask2),                         \
                                           _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * (j)))),                      \
                      _mm256_shuffle_epi8(sc16, _mm256_set1_epi16((short)(((2 * (j) + 1) << 8) | (2 * (j))))))
            __m256i acc = _mm256_add_epi32(_mm256_add_epi32(KQ_B2(v0, 0, 0), KQ_B2(v0, 1, 1)), _mm256_add_epi32(KQ_B2(v0, 2, 2), KQ_B2(v0, 3, 3)));
            acc = _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_add_epi32(KQ_B2(v1, 0, 4), KQ_B2(v1, 1, 5)),
                                                         _mm256_add_epi32(KQ_B2(v1, 2, 6), KQ_B2(v1, 3, 7))));
#undef KQ_B2
            const float dx = a->dx[b];
            const __m256i mins = _mm256_mullo_epi32(mc32, _mm256_loadu_si256((const __m256i *)(a->bsum + b * KQ_NSUB)));
            f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_set1_ps(dx * _cvtsh_ss(h16[0])), f1);
            f1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(-dx * _cvtsh_ss(h16[1])), f1);
        }
        if (hi >= lo2) tot += a->dx[b] * sb_dot_avx2(m, p, res, xq, a->bsum + b * KQ_NSUB, lo2, hi, small);
        p += sb1;
        for (int k = 2; k <= hi; k++) res[k - 1] += rb;
    }
    return tot + hsum8f(f1);
}

/* AVX2 + FMA + F16C: the same test as kern.c's */
static int kq_have_avx2(void) { return kern_have_avx2(); }
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
    const int64_t NB = m->cols / KQ_SUPER, sb1 = kq_super_bytes(f, 1), rb = kq_super_bytes(f, 2);
    const uint8_t *p = m->chunk[0] + row * NB * sb1;
    const uint8_t *res[KQ_MAX_LEVELS] = {0};
    for (int k = 2; k <= hi; k++) res[k - 1] = m->chunk[k - 1] + row * NB * rb;
#ifdef KQ_X86
    if (impl_now == KQ_AVX2) return row_dot_avx2(m, p, res, a, lo, hi, sb1, rb);
#endif
    float tot = 0;
    for (int64_t b = 0; b < NB; b++) {
        tot += a->dx[b] * sb_dot_scalar(m, p, res, a->xq + b * KQ_SUPER, a->bsum + b * KQ_NSUB, lo, hi);
        p += sb1;
        for (int k = 2; k <= hi; k++) res[k - 1] += rb;
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
