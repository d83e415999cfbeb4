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
    for (int b = 0; b < bits; b++, bitpos++)
        if ((v >> b) & 1) p[bitpos >> 3] |= (uint8_t)(1u << (bitpos & 7));
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
static inline __attribute__((always_inline)) void fit_sub(const float *x, int nmax, int T, float *s_out, float *m_out)
{
    float mn = x[0], mx = x[0];
    for (int i = 1; i < KQ_SUB; i++) { mn = x[i] < mn ? x[i] : mn; mx = x[i] > mx ? x[i] : mx; }
    if (mn > 0) mn = 0;
    const float range = mx - mn;
    if (!(range > 0)) { /* constant block: 0 (s = m = 0) or c < 0 (code 0 at c) */
        *s_out = -mn / (float)nmax;
        *m_out = -mn;
        return;
    }
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

/* level-1 codes and values of a sub-block for the stored s, m */
static inline __attribute__((always_inline)) void sub_codes(const float *x, float s, float m, int nmax, uint8_t *q, float *w1)
{
    const float nm = (float)nmax, mg = 12582912.0f;
    for (int i = 0; i < KQ_SUB; i++) {
        float v = s > 0 ? (x[i] + m) / s : 0;
        v = v > 0 ? v : 0;
        v = v < nm ? v : nm;
        q[i] = (uint8_t)((v + mg) - mg); /* round to nearest even, 0 <= v <= nmax */
        w1[i] = s * (float)q[i] - m;
    }
}

/* The BUCKET residual fit of one sub-block: given W1 (codes q, scale s), the
 * factors gi, go, h3 minimising e2 + 4 e3 (the errors of levels 2 and 3; the
 * inner and outward sets are disjoint, so gi and go are chosen separately
 * for each h3).  Returns that objective. */
#define KQ_W3 4.0f
typedef struct bucket_fit { int gi, go, h3; } bucket_fit;

static inline float lanes8(const float v[8]) { return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7])); }

/* Sums are kept in 8 lanes (lane u takes weights u, u+8, ...) and added in
 * a fixed tree, so the compiler may vectorise them without changing a bit;
 * no multiply-add is fused (no "fma" target), so every machine gives the
 * same bytes. */
static inline __attribute__((always_inline)) float bucket_search(const float *x, const float *w1, const uint8_t *q, int nmax, float s, bucket_fit *bf)
{
    /* per weight: |R| = |x - W1| and its set (0 inner, 1 outward); level k
     * moves toward x by a, so |R_k| = ||R_{k-1}| - a| and, summed over a
     * set, e3(h) = sum |R2|^2 - 2 a3 sum |R2| + n a3^2 in closed form */
    static const float h8[4] = {0.6f / 8, 0.8f / 8, 1.0f / 8, 1.25f / 8};
    float u[KQ_SUB], mo[KQ_SUB], no8[8] = {0};
    for (int i = 0; i < KQ_SUB; i++) {
        const float r = x[i] - w1[i];
        u[i] = fabsf(r);
        mo[i] = (q[i] == nmax && r >= 0) || (q[i] == 0 && r < 0) ? 1.0f : 0.0f;
    }
    for (int i = 0; i < KQ_SUB; i += 8)
        for (int l = 0; l < 8; l++) no8[l] += mo[i + l];
    const float n[2] = {(float)KQ_SUB - lanes8(no8), lanes8(no8)};
    float e2[2][4], s1[2][4];
    for (int g = 0; g < 4; g++) {
        const float ai = s * kq_gi[g] * 0.25f, ao = s * kq_go[g] * 0.25f;
        float Et[8] = {0}, Eo[8] = {0}, St[8] = {0}, So[8] = {0};
        for (int i = 0; i < KQ_SUB; i += 8)
            for (int l = 0; l < 8; l++) {
                const float a = mo[i + l] > 0 ? ao : ai, v = fabsf(u[i + l] - a), vv = v * v;
                Et[l] += vv - mo[i + l] * vv;
                Eo[l] += mo[i + l] * vv;
                St[l] += v - mo[i + l] * v;
                So[l] += mo[i + l] * v;
            }
        e2[0][g] = lanes8(Et); e2[1][g] = lanes8(Eo);
        s1[0][g] = lanes8(St); s1[1][g] = lanes8(So);
    }
    float best = INFINITY;
    for (int h = 0; h < 4; h++) {
        float tot = 0;
        int bg[2] = {0, 0};
        for (int set = 0; set < 2; set++) {
            float b = INFINITY;
            for (int g = 0; g < 4; g++) {
                const float a3 = s * (set ? kq_go[g] : kq_gi[g]) * h8[h];
                const float e3 = e2[set][g] - 2 * a3 * s1[set][g] + n[set] * a3 * a3;
                const float o = e2[set][g] + KQ_W3 * e3;
                if (o < b) { b = o; bg[set] = g; }
            }
            tot += b;
        }
        if (tot < best) { best = tot; bf->gi = bg[0]; bf->go = bg[1]; bf->h3 = h; }
    }
    return best;
}

/* the step of weight i at level k >= 2 of a BUCKET sub-block (kq.h) */
static inline float bucket_step(const kq_matrix *m, float s, int outward, int gi, int go, int k, int h)
{
    if (m->fmt.resid == KQ_TIED) return s * m->step[k - 1][0];
    return (s * (outward ? kq_go[go] : kq_gi[gi])) * m->step[k - 1][h];
}

/* one super-block, all levels: x[256]; an AVX2 clone (no FMA: same bytes) */
#if defined(KQ_X86) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default"), optimize("O3")))
#endif
static void quant_super(kq_matrix *m, int64_t row, int64_t b, const float *x, int T)
{
    const kq_format *f = &m->fmt;
    const int nmax = (1 << f->base_bits) - 1, smax = (1 << f->scale_bits) - 1, mmax = (1 << f->min_bits) - 1;
    float s[KQ_NSUB], mn[KQ_NSUB];
    for (int j = 0; j < KQ_NSUB; j++) fit_sub(x + KQ_SUB * j, nmax, T, &s[j], &mn[j]);
    uint16_t d16, dm16 = 0;
    sb_head h;
    quant_codes8(s, f->scale_bits, &d16, h.sc);
    h.d = f16_to_float(d16);
    if (f->min_rel) {
        h.dm = h.d * kappa(f);
        for (int j = 0; j < KQ_NSUB; j++) {
            const float u = h.sc[j] > 0 && h.dm > 0 ? q_rint(mn[j] / (h.dm * (float)h.sc[j])) : 0;
            h.mc[j] = u < 0 ? 0 : u > mmax ? mmax : (int)u;
        }
    } else {
        quant_codes8(mn, f->min_bits, &dm16, h.mc);
        h.dm = f16_to_float(dm16);
    }
    uint8_t q[KQ_SUPER];
    float cur[KQ_SUPER];
    bucket_fit bf[KQ_NSUB] = {{0, 0, 0}};
    if (f->resid == KQ_BUCKET) {
        /* per sub-block: the rounded (sc, mc) pair and its 8 neighbours, on
         * e1 + e2 + 4 e3; the rounded pair is tried first and kept on ties */
        static const int8_t nb[9][2] = {{0, 0}, {-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
        for (int j = 0; j < KQ_NSUB; j++) {
            const float *xj = x + KQ_SUB * j;
            const int sc0 = h.sc[j], mc0 = h.mc[j];
            float best = INFINITY;
            for (int t = 0; t < 9; t++) {
                const int sc = sc0 + nb[t][0], mc = mc0 + nb[t][1];
                if (sc < 0 || sc > smax || mc < 0 || mc > mmax) continue;
                const float sj = h.d * (float)sc, mj = h.dm * (float)(f->min_rel ? sc * mc : mc);
                uint8_t qj[KQ_SUB];
                float w1[KQ_SUB], e1 = 0;
                sub_codes(xj, sj, mj, nmax, qj, w1);
                float e8[8] = {0};
                for (int i = 0; i < KQ_SUB; i += 8)
                    for (int l = 0; l < 8; l++) e8[l] += (xj[i + l] - w1[i + l]) * (xj[i + l] - w1[i + l]);
                e1 = lanes8(e8);
                if (!(e1 < best)) continue; /* e2, e3 >= 0: this pair cannot win (exact pruning) */
                bucket_fit cand;
                const float o = e1 + bucket_search(xj, w1, qj, nmax, sj, &cand);
                if (o < best) { best = o; h.sc[j] = sc; h.mc[j] = mc; bf[j] = cand; }
            }
        }
    }
    head_decode(f, &h);
    for (int j = 0; j < KQ_NSUB; j++) sub_codes(x + KQ_SUB * j, h.s[j], h.m[j], nmax, q + KQ_SUB * j, cur + KQ_SUB * j);
    /* level 1 record */
    uint8_t *p = (uint8_t *)sb_ptr(m, 1, row, b);
    wr16(p, d16);
    if (!f->min_rel) wr16(p + 2, dm16);
    uint8_t *sp = p + head_bytes(f);
    for (int j = 0; j < KQ_NSUB; j++) {
        bs_put(sp, j * f->scale_bits, f->scale_bits, h.sc[j]);
        bs_put(sp, KQ_NSUB * f->scale_bits + j * f->min_bits, f->min_bits, h.mc[j]);
    }
    /* pack: the inverse of base_codes */
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
    /* residual levels: signs of x - W_{k-1}; BUCKET: the factors found above
     * for level 2 and 3, and for k > 3 the h minimising the level-k error */
    uint8_t outw[KQ_SUPER];
    for (int k = 2; k <= f->levels; k++) {
        uint8_t *r = (uint8_t *)sb_ptr(m, k, row, b);
        for (int j = 0; j < KQ_NSUB; j++) {
            const float *xj = x + KQ_SUB * j;
            float *cj = cur + KQ_SUB * j;
            const uint8_t *qj = q + KQ_SUB * j;
            uint8_t *oj = outw + KQ_SUB * j;
            if (k == 2)
                for (int i = 0; i < KQ_SUB; i++) {
                    const int pos = xj[i] - cj[i] >= 0;
                    oj[i] = f->resid == KQ_BUCKET && ((qj[i] == nmax && pos) || (qj[i] == 0 && !pos));
                }
            int hk = 0;
            if (f->resid == KQ_BUCKET) {
                if (k == 2) bs_put(r + 32, 4 * j, 2, bf[j].gi), bs_put(r + 32, 4 * j + 2, 2, bf[j].go);
                else {
                    if (k == 3) hk = bf[j].h3;
                    else {
                        float be = INFINITY;
                        for (int c = 0; c < 4; c++) {
                            float e = 0;
                            for (int i = 0; i < KQ_SUB; i++) {
                                const float a = bucket_step(m, h.s[j], oj[i], bf[j].gi, bf[j].go, k, c), d = xj[i] - cj[i];
                                const float v = d >= 0 ? d - a : d + a;
                                e += v * v;
                            }
                            if (e < be) { be = e; hk = c; }
                        }
                    }
                    bs_put(r + 32, 2 * j, 2, hk);
                }
            }
            for (int i = 0; i < KQ_SUB; i++) {
                const int pos = xj[i] - cj[i] >= 0;
                const float a = bucket_step(m, h.s[j], oj[i], bf[j].gi, bf[j].go, k, hk);
                r[i] |= (uint8_t)(pos << j);
                cj[i] = cj[i] + (pos ? a : -a);
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
 * Per super-block, the integer sums (both paths compute exactly these):
 *   level 1:  ip = sum_j sc_j P_j,  P_j = sum_i q_i xq_i;
 *             im = sum_j sc_j mc_j bsum_j (min_rel) or sum_j mc_j bsum_j
 *   level k:  y_kj = sum_i sgn_ki xq_i over sub-block j, z_kj = the same over
 *             its outward weights (BUCKET; 0 for TIED)
 * then one float combination, the same C code for both paths (sb_combine):
 *   d ip - dm im  +  sum over lanes j (fixed tree) of
 *   acc_j += (s_j F_kj) (G_in (y - z) + G_out z),  levels in order,
 * times the super-block's activation scale dx, super-blocks summed in order. */
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

/* The v1k fast path (BUCKET, 2-bit base, levels <= 3): every sum is scaled
 * per sub-block in int16 by madd (level 1 by sc_j, level 2 by sc_j, level 3
 * by sc_j * 20 h_j; the factors G are in the int8 weights, in tenths) and
 * accumulated in int32 lanes, so a super-block needs no horizontal sum:
 * lanes are converted to float once per super-block and reduced once per row.
 * Bounds: level-1 pairs 2*3*127 * 15 * 2, level-3 pairs 2*20*127 * 375 * 2
 * per lane and sub-block, times 8 sub-blocks: < 2^31. */
static const uint8_t kq_h20[4] = {12, 16, 20, 25}; /* 20 * kq_h */

KQ_AVX2_FN __attribute__((always_inline)) static inline __m256 sb_fast_avx2(const kq_matrix *m, const uint8_t *p, const uint8_t *const *res,
                                                                            const int8_t *xq, const int32_t *bsum, int lo, int hi)
{
    const kq_format *f = &m->fmt;
    const __m256i one8 = _mm256_set1_epi8(1), zero = _mm256_setzero_si256(), three = _mm256_set1_epi8(3);
    const int hb = head_bytes(f);
    const uint8_t *codes = p + hb + scales_bytes(f);
    uint16_t h16;
    memcpy(&h16, p, 2);
    const float d = _cvtsh_ss(h16);
    uint64_t su;
    memcpy(&su, p + hb, 8);
    const int smask = (1 << f->scale_bits) - 1;
    const __m256i c0 = _mm256_loadu_si256((const __m256i *)codes), c1 = _mm256_loadu_si256((const __m256i *)(codes + 32));
    __m256i a1 = zero, a2 = zero, a3 = zero;
    __m256i v2 = zero, v3 = zero;
    uint32_t c2 = 0;
    uint16_t ck = 0;
    if (hi >= 2) { v2 = _mm256_loadu_si256((const __m256i *)res[1]); memcpy(&c2, res[1] + 32, 4); }
    if (hi >= 3) { v3 = _mm256_loadu_si256((const __m256i *)res[2]); memcpy(&ck, res[2] + 32, 2); }
    for (int j = 0; j < 8; j++) {
        const int sc = (int)(su >> (j * f->scale_bits)) & smask;
        const __m256i x = _mm256_loadu_si256((const __m256i *)(xq + KQ_SUB * j));
        const __m256i q = _mm256_and_si256(_mm256_srli_epi16(j < 4 ? c0 : c1, 2 * (j % 4)), three);
        const __m256i s16 = _mm256_set1_epi16((short)sc);
        if (lo == 1) a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), s16));
        if (hi >= 2) {
            const __m256i bit = _mm256_set1_epi8((char)(1 << j));
            const __m256i pos = _mm256_cmpeq_epi8(_mm256_and_si256(v2, bit), bit);
            const __m256i out = _mm256_or_si256(_mm256_and_si256(_mm256_cmpeq_epi8(q, three), pos), _mm256_andnot_si256(pos, _mm256_cmpeq_epi8(q, zero)));
            const __m256i wg = _mm256_blendv_epi8(_mm256_set1_epi8((char)kq_gi10[(c2 >> 4 * j) & 3]), _mm256_set1_epi8((char)kq_go10[(c2 >> (4 * j + 2)) & 3]), out);
            if (lo <= 2) a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_maddubs_epi16(wg, _mm256_sign_epi8(x, _mm256_or_si256(_mm256_xor_si256(pos, _mm256_set1_epi8(-1)), one8))), s16));
            if (hi >= 3) {
                const __m256i neg3 = _mm256_cmpeq_epi8(_mm256_and_si256(v3, bit), zero);
                const __m256i y3 = _mm256_sign_epi8(x, _mm256_or_si256(neg3, one8));
                a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_maddubs_epi16(wg, y3), _mm256_set1_epi16((short)(sc * kq_h20[(ck >> 2 * j) & 3]))));
            }
        }
    }
    /* level 1: d sum sc P - d kappa sum sc mc bsum; level 2: d/4 * 0.1 * a2; level 3: d/8 * 0.05 * 0.1 * a3 */
    __m256 t = _mm256_setzero_ps();
    if (lo == 1) {
        uint64_t mu;
        memcpy(&mu, p + hb + f->scale_bits, 8);
        const __m256i mins = _mm256_mullo_epi32(_mm256_mullo_epi32(fields8(su, f->scale_bits), fields8(mu, f->min_bits)),
                                                _mm256_loadu_si256((const __m256i *)bsum));
        t = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(a1)), _mm256_mul_ps(_mm256_set1_ps(d * kappa(f)), _mm256_cvtepi32_ps(mins)));
    }
    if (hi >= 2 && lo <= 2) t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_set1_ps(d * 0.025f), _mm256_cvtepi32_ps(a2)));
    if (hi >= 3) t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_set1_ps(d * 0.000625f), _mm256_cvtepi32_ps(a3)));
    return t;
}

/* float lanes accumulated across the row's super-blocks, one reduction per
 * row; the common (lo, hi) ranges get their own constant-folded copy */
KQ_AVX2_FN __attribute__((always_inline)) static inline float row_dot_avx2_t(const kq_matrix *m, const uint8_t *p, const uint8_t **res, const kq_act *a,
                                                                            int lo, int hi, int64_t sb1, const int64_t *rb, int fast)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < m->cols / KQ_SUPER; b++) {
        const __m256 t = fast ? sb_fast_avx2(m, p, res, a->xq + b * KQ_SUPER, a->bsum + b * KQ_NSUB, lo, hi)
                              : sb_vec_avx2(m, p, res, a->xq + b * KQ_SUPER, a->bsum + b * KQ_NSUB, lo, hi);
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
    if (f->resid == KQ_BUCKET && f->base_bits == 2 && f->min_rel && hi <= 3) {
        if (lo == 1 && hi == 1) return row_dot_avx2_t(m, p, res, a, 1, 1, sb1, rb, 1);
        if (lo == 1 && hi == 2) return row_dot_avx2_t(m, p, res, a, 1, 2, sb1, rb, 1);
        if (lo == 1 && hi == 3) return row_dot_avx2_t(m, p, res, a, 1, 3, sb1, rb, 1);
        if (lo == 2 && hi == 2) return row_dot_avx2_t(m, p, res, a, 2, 2, sb1, rb, 1);
        if (lo == 2 && hi == 3) return row_dot_avx2_t(m, p, res, a, 2, 3, sb1, rb, 1);
        return row_dot_avx2_t(m, p, res, a, 3, 3, sb1, rb, 1);
    }
    return row_dot_avx2_t(m, p, res, a, lo, hi, sb1, rb, 0);
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
    for (int64_t r = 0; r < m->rows; r++) y[r] += kq_dot(m, r, lo, hi, a);
    return D2_OK;
}
