/* kern.c - level-chunk layout, dequantization and the level-k dot / mat-vec
 * kernels: a scalar reference and an AVX2 path (compiled with target
 * attributes, chosen at run time).  Both compute the same integer masked sums
 * of the int8 activations; only the float summation order differs. */
#include "config.h"
#include "quant/kern.h"
#include "quant/f16.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <cpuid.h>
#include <immintrin.h>
#define KERN_X86 1
#endif

/* ---- layout ---------------------------------------------------------- */
int64_t kern_groups_per_row(const kern_shape *s) { return (s->cols + s->group - 1) / s->group; }

int kern_level_slices(const kern_shape *s, int level, int w[KERN_MAX_SLICES], int o[KERN_MAX_SLICES])
{
    if (level > 1) { w[0] = 1; o[0] = 0; return 1; }
    int n = 0, bits = s->base_bits, lo = 0;
    for (int width = 4; width >= 1; width /= 2)
        while (bits >= width && n < KERN_MAX_SLICES) { w[n] = width; o[n++] = lo; lo += width; bits -= width; }
    return n;
}

int64_t kern_slice_bytes(int64_t cols, int w) { return (cols * w + 7) / 8; }

int64_t kern_level_row_bytes(const kern_shape *s, int level)
{
    int w[KERN_MAX_SLICES], o[KERN_MAX_SLICES], n = kern_level_slices(s, level, w, o);
    int64_t b = 0;
    for (int i = 0; i < n; i++) b += kern_slice_bytes(s->cols, w[i]);
    return b;
}

int64_t kern_chunk_zeros_offset(const kern_shape *s) { return 2 * s->rows * kern_groups_per_row(s); }
int64_t kern_chunk_planes_offset(const kern_shape *s, int level)
{
    return (level == 1 ? 4 : 2) * s->rows * kern_groups_per_row(s);
}
int64_t kern_chunk_bytes(const kern_shape *s, int level)
{
    return kern_chunk_planes_offset(s, level) + s->rows * kern_level_row_bytes(s, level);
}

/* Round to nearest, ties to even, for |v| < 2^22 (the magic-number trick:
 * same result as nearbyintf in the default rounding mode, without a libm call). */
static inline float kern_rint(float v)
{
    const float m = 12582912.0f; /* 1.5 * 2^23 */
    return v >= 0 ? (v + m) - m : (v - m) + m;
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline float rdf16(const uint8_t *p) { return f16_to_float(rd16(p)); }

/* ---- slices ------------------------------------------------------------ */
static inline int slice_code(const uint8_t *bp, int64_t cols, int w, int64_t c)
{
    int64_t byte;
    int sh;
    kern_slot(cols, w, c, &byte, &sh);
    return (bp[byte] >> sh) & ((1 << w) - 1);
}

/* q[c - c0] |= code(c) << o for c0 <= c < c1 (c0 a multiple of 256). */
static void slice_decode(const uint8_t *bp, int64_t cols, int w, int o, int64_t c0, int64_t c1, uint8_t *q)
{
    const int64_t B = 256 / w, fend = cols / B * B;
    const int mask = (1 << w) - 1;
    int64_t c = c0;
    for (; c + B <= c1 && c + B <= fend; c += B) {
        const uint8_t *blk = bp + c / B * 32;
        for (int u = 0; u < 8 / w; u++)
            for (int i = 0; i < 32; i++) q[c - c0 + 32 * u + i] |= (uint8_t)(((blk[i] >> (w * u)) & mask) << o);
    }
    for (; c < c1; c++) q[c - c0] |= (uint8_t)(slice_code(bp, cols, w, c) << o);
}

/* ---- dequantization ---------------------------------------------------- */
void kern_row_dequant(const kern_mat *m, int level, int64_t row, float *out)
{
    const kern_shape *s = &m->shape;
    const int64_t G = kern_groups_per_row(s), g = s->group, cols = s->cols;
    uint8_t q[256];
    for (int k = 1; k <= level; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        int w[KERN_MAX_SLICES], o[KERN_MAX_SLICES], ns = kern_level_slices(s, k, w, o);
        const uint8_t *rowp = ch + kern_chunk_planes_offset(s, k) + row * kern_level_row_bytes(s, k);
        for (int64_t c0 = 0; c0 < cols; c0 += 256) {
            const int64_t c1 = c0 + 256 < cols ? c0 + 256 : cols;
            memset(q, 0, sizeof q);
            const uint8_t *bp = rowp;
            for (int i = 0; i < ns; i++) {
                slice_decode(bp, cols, w[i], o[i], c0, c1, q);
                bp += kern_slice_bytes(cols, w[i]);
            }
            for (int64_t c = c0; c < c1; c++) {
                const int64_t j = c / g;
                const float sc = rdf16(ch + 2 * (row * G + j));
                if (k == 1) out[c] = ((float)q[c - c0] - rdf16(ch + kern_chunk_zeros_offset(s) + 2 * (row * G + j))) * sc;
                else out[c] = out[c] + (q[c - c0] ? sc : -sc);
            }
        }
    }
}

void kern_mat_dequant(const kern_mat *m, int level, float *out)
{
    for (int64_t r = 0; r < m->shape.rows; r++) kern_row_dequant(m, level, r, out + r * m->shape.cols);
}

/* ---- activations ------------------------------------------------------- */
struct kern_act {
    int64_t cols, group, G;
    int8_t *xq;   /* cols rounded up to 32, zero padded */
    float *dx;    /* [G] scale of group j: xhat = dx * xq */
    int32_t *sx;  /* [G] sum of xq over group j */
};

int kern_act_new(int64_t cols, int64_t group, kern_act **out)
{
    *out = NULL;
    if (cols < 1 || group < 1) D2_ERROR(D2_EINVAL, "kern_act_new: cols %lld, group %lld", (long long)cols, (long long)group);
    kern_act *a = calloc(1, sizeof *a);
    if (!a) D2_ERROR(D2_ENOMEM, "out of memory");
    a->cols = cols;
    a->group = group;
    a->G = (cols + group - 1) / group;
    size_t nx = (size_t)((cols + 31) / 32 * 32 + 32);
    a->xq = aligned_alloc(32, nx);
    a->dx = calloc((size_t)a->G, sizeof *a->dx);
    a->sx = calloc((size_t)a->G, sizeof *a->sx);
    if (!a->xq || !a->dx || !a->sx) { kern_act_free(a); D2_ERROR(D2_ENOMEM, "out of memory"); }
    memset(a->xq, 0, nx);
    *out = a;
    return D2_OK;
}

void kern_act_free(kern_act *a)
{
    if (!a) return;
    free(a->xq);
    free(a->dx);
    free(a->sx);
    free(a);
}

int kern_act_set(kern_act *a, const float *x)
{
    for (int64_t j = 0; j < a->G; j++) {
        int64_t c0 = j * a->group, c1 = c0 + a->group < a->cols ? c0 + a->group : a->cols;
        float amax = 0;
        for (int64_t c = c0; c < c1; c++) {
            if (!isfinite(x[c])) D2_ERROR(D2_EINVAL, "activation %lld is %s", (long long)c, isnan(x[c]) ? "NaN" : "Inf");
            float v = fabsf(x[c]);
            if (v > amax) amax = v;
        }
        float id = amax > 0 ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int64_t c = c0; c < c1; c++) {
            int v = (int)kern_rint(x[c] * id);
            v = v > 127 ? 127 : v < -127 ? -127 : v;
            a->xq[c] = (int8_t)v;
            sum += v;
        }
        a->dx[j] = amax / 127.0f;
        a->sx[j] = sum;
    }
    return D2_OK;
}

void kern_act_dequant(const kern_act *a, float *xhat)
{
    for (int64_t c = 0; c < a->cols; c++) xhat[c] = a->dx[c / a->group] * (float)a->xq[c];
}

/* ---- scalar reference dot ---------------------------------------------- */
/* sum of code(c) * xq[c] over c0 <= c < c1 of one slice */
static int32_t slice_sum_scalar(const uint8_t *bp, int64_t cols, int w, const int8_t *xq, int64_t c0, int64_t c1)
{
    int32_t m = 0;
    for (int64_t c = c0; c < c1; c++) m += slice_code(bp, cols, w, c) * xq[c];
    return m;
}

static float dot_scalar(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
    const kern_shape *s = &m->shape;
    const int64_t G = kern_groups_per_row(s), g = s->group, cols = s->cols;
    float acc = 0;
    for (int k = lo; k <= hi; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        int w[KERN_MAX_SLICES], o[KERN_MAX_SLICES], ns = kern_level_slices(s, k, w, o);
        const uint8_t *rowp = ch + kern_chunk_planes_offset(s, k) + row * kern_level_row_bytes(s, k);
        for (int64_t j = 0; j < G; j++) {
            int64_t c0 = j * g, c1 = c0 + g < cols ? c0 + g : cols;
            float sc = rdf16(ch + 2 * (row * G + j));
            int64_t I = 0;
            const uint8_t *bp = rowp;
            for (int i = 0; i < ns; i++) {
                I += (int64_t)slice_sum_scalar(bp, cols, w[i], a->xq, c0, c1) * ((int64_t)1 << o[i]);
                bp += kern_slice_bytes(cols, w[i]);
            }
            if (k == 1) {
                float z = rdf16(ch + kern_chunk_zeros_offset(s) + 2 * (row * G + j));
                acc += sc * a->dx[j] * ((float)I - z * (float)a->sx[j]);
            } else {
                acc += sc * a->dx[j] * (float)(2 * I - a->sx[j]);
            }
        }
    }
    return acc;
}

/* ---- packing (the quantizer's side of the layout) ------------------------ */
static void pack_codes_scalar(uint8_t *slice, int64_t cols, int w, int o, int64_t c0, const uint8_t *q, int64_t n)
{
    const int mask = (1 << w) - 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t byte;
        int sh;
        kern_slot(cols, w, c0 + i, &byte, &sh);
        slice[byte] |= (uint8_t)(((q[i] >> o) & mask) << sh);
    }
}

static void pack_bits_scalar(uint8_t *slice, int64_t cols, int64_t c0, const uint8_t *bits, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t byte;
        int sh;
        kern_slot(cols, 1, c0 + i, &byte, &sh);
        slice[byte] |= (uint8_t)(((bits[i >> 3] >> (i & 7)) & 1) << sh);
    }
}

/* ---- AVX2 ------------------------------------------------------------ */
#ifdef KERN_X86
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

/* The 32-weight units c (c % 32 == 0) that lie in a full block of a w-bit
 * slice: the block's 32 bytes start at (c / B) * 32, the unit's shift is
 * w * ((c % B) / 32).  The units of one block are ORed in a register and the
 * block is read and written once. */
AVX2_FN static void pack_codes_avx2(uint8_t *slice, int64_t cols, int w, int o, int64_t c0, const uint8_t *q, int64_t n)
{
    const int64_t B = 256 / w, fend = cols / B * B;
    const __m256i mask = _mm256_set1_epi8((char)((1 << w) - 1));
    const __m128i ro = _mm_cvtsi32_si128(o);
    int64_t lead = (32 - c0 % 32) % 32;
    if (lead > n) lead = n;
    pack_codes_scalar(slice, cols, w, o, c0, q, lead);
    int64_t i = lead;
    while (i + 32 <= n && c0 + i + 32 <= fend) {
        const int64_t blk = (c0 + i) / B;
        __m256i acc = _mm256_setzero_si256();
        for (; i + 32 <= n && (c0 + i) / B == blk; i += 32) {
            __m256i v = _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(q + i)), ro), mask);
            acc = _mm256_or_si256(acc, _mm256_sll_epi16(v, _mm_cvtsi32_si128(w * (int)((c0 + i - blk * B) / 32))));
        }
        uint8_t *d = slice + blk * 32;
        _mm256_storeu_si256((__m256i *)d, _mm256_or_si256(_mm256_loadu_si256((const __m256i *)d), acc));
    }
    pack_codes_scalar(slice, cols, w, o, c0 + i, q + i, n - i);
}

AVX2_FN static void pack_bits_avx2(uint8_t *slice, int64_t cols, int64_t c0, const uint8_t *bits, int64_t n)
{
    if (c0 % 32 != 0) { pack_bits_scalar(slice, cols, c0, bits, n); return; }
    const int64_t fend = cols / 256 * 256;
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bitsel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    int64_t i = 0;
    while (i + 32 <= n && c0 + i + 32 <= fend) {
        const int64_t blk = (c0 + i) / 256;
        __m256i acc = _mm256_setzero_si256();
        for (; i + 32 <= n && (c0 + i) / 256 == blk; i += 32) {
            uint32_t mb;
            memcpy(&mb, bits + i / 8, 4);
            /* byte j of the unit <- bit j of mb, placed at bit u = (c % 256) / 32 */
            __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)mb), shuf);
            v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bitsel), bitsel);
            acc = _mm256_or_si256(acc, _mm256_and_si256(v, _mm256_set1_epi8((char)(1 << ((c0 + i) % 256 / 32)))));
        }
        uint8_t *d = slice + blk * 32;
        _mm256_storeu_si256((__m256i *)d, _mm256_or_si256(_mm256_loadu_si256((const __m256i *)d), acc));
    }
    pack_bits_scalar(slice, cols, c0 + i, bits + i / 8, n - i);
}

/* sum over c in [cb, ce) of coef[c/g - j0] * pw * code(c) * xq[c] for one
 * slice, into facc (vector part) and *tail (scalar part).  cb % 256 == 0.
 * When g % 32 == 0, the full blocks run 32 weights per shift, and, maddubs,
 * add; the int16 lanes take at most 8 units (8 * 2 * 15 * 127 < 2^15) before
 * they are flushed to float with the group's coefficient. */
#define KERN_GCHUNK 256
AVX2_FN static inline void slice_dot_avx2(const uint8_t *bp, const int8_t *xq, int64_t cols, int64_t g, int w, int64_t cb,
                                          int64_t ce, int64_t j0, const float *coef, float pw, __m256 *facc, float *tail)
{
    int64_t c = cb;
    if (g == 128) {
        /* the paper's group size, unrolled: no counters, a flush per group,
         * two float accumulators for the flush chain */
        const int64_t B = 256 / w, fend = ce < cols / B * B ? ce / B * B : cols / B * B;
        const __m256i ones16 = _mm256_set1_epi16(1);
        const float *cf = coef + (cb / 128 - j0);
        __m256 f0 = *facc, f1 = _mm256_setzero_ps(), vpw = _mm256_set1_ps(pw);
#define KERN_M(v, sh, u, mk) \
    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, sh), mk), _mm256_loadu_si256((const __m256i *)(xq + c + 32 * (u))))
#define KERN_FLUSH(f, acc, j) \
    f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(acc, ones16)), _mm256_mul_ps(_mm256_broadcast_ss(cf + (j)), vpw), f)
        if (w == 1) {
            const __m256i mk = _mm256_set1_epi8(1);
            for (; c + 256 <= fend; c += 256, cf += 2) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 8));
                __m256i a = _mm256_add_epi16(_mm256_add_epi16(KERN_M(v, 0, 0, mk), KERN_M(v, 1, 1, mk)),
                                             _mm256_add_epi16(KERN_M(v, 2, 2, mk), KERN_M(v, 3, 3, mk)));
                __m256i b = _mm256_add_epi16(_mm256_add_epi16(KERN_M(v, 4, 4, mk), KERN_M(v, 5, 5, mk)),
                                             _mm256_add_epi16(KERN_M(v, 6, 6, mk), KERN_M(v, 7, 7, mk)));
                KERN_FLUSH(f0, a, 0);
                KERN_FLUSH(f1, b, 1);
            }
        } else if (w == 2) {
            const __m256i mk = _mm256_set1_epi8(3);
            for (; c + 256 <= fend; c += 256, cf += 2) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 4));
                const __m256i v2 = _mm256_loadu_si256((const __m256i *)(bp + c / 4 + 32));
                __m256i a = _mm256_add_epi16(_mm256_add_epi16(KERN_M(v, 0, 0, mk), KERN_M(v, 2, 1, mk)),
                                             _mm256_add_epi16(KERN_M(v, 4, 2, mk), KERN_M(v, 6, 3, mk)));
                __m256i b = _mm256_add_epi16(_mm256_add_epi16(KERN_M(v2, 0, 4, mk), KERN_M(v2, 2, 5, mk)),
                                             _mm256_add_epi16(KERN_M(v2, 4, 6, mk), KERN_M(v2, 6, 7, mk)));
                KERN_FLUSH(f0, a, 0);
                KERN_FLUSH(f1, b, 1);
            }
        } else {
            const __m256i mk = _mm256_set1_epi8(15);
            for (; c + 128 <= fend; c += 128, cf += 1) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 2));
                const __m256i v2 = _mm256_loadu_si256((const __m256i *)(bp + c / 2 + 32));
                __m256i a = _mm256_add_epi16(_mm256_add_epi16(KERN_M(v, 0, 0, mk), KERN_M(v, 4, 1, mk)),
                                             _mm256_add_epi16(KERN_M(v2, 0, 2, mk), KERN_M(v2, 4, 3, mk)));
                KERN_FLUSH(f0, a, 0);
            }
        }
#undef KERN_M
#undef KERN_FLUSH
        *facc = _mm256_add_ps(f0, f1);
    } else if (g % 32 == 0) {
        const int64_t B = 256 / w, fend = ce < cols / B * B ? ce / B * B : cols / B * B;
        const int UG = (int)(g / 32); /* units per group (g <= 2^20) */
        int lim = UG < 8 ? UG : 8;
        while (UG % lim) lim--; /* flush every lim units: a divisor of UG, <= 8 */
        const int per_group = UG / lim;
        const __m256i ones16 = _mm256_set1_epi16(1);
        __m256i acc16 = _mm256_setzero_si256();
        __m256 f = *facc;
        int cnt = 0, fl = 0;
        int64_t jg = cb / g - j0;
#define KERN_UNIT(v, sh, u, mk)                                                                                         \
    do {                                                                                                                \
        __m256i t_ = _mm256_and_si256(_mm256_srli_epi16(v, sh), mk);                                                    \
        acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(t_, _mm256_loadu_si256((const __m256i *)(xq + c + 32 * (u))))); \
        if (++cnt == lim) {                                                                                             \
            f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(acc16, ones16)), _mm256_set1_ps(coef[jg] * pw), f); \
            acc16 = _mm256_setzero_si256();                                                                             \
            cnt = 0;                                                                                                    \
            if (++fl == per_group) { fl = 0; jg++; }                                                                    \
        }                                                                                                               \
    } while (0)
        if (w == 1) {
            const __m256i mk = _mm256_set1_epi8(1);
            for (; c + 256 <= fend; c += 256) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 8));
                KERN_UNIT(v, 0, 0, mk); KERN_UNIT(v, 1, 1, mk); KERN_UNIT(v, 2, 2, mk); KERN_UNIT(v, 3, 3, mk);
                KERN_UNIT(v, 4, 4, mk); KERN_UNIT(v, 5, 5, mk); KERN_UNIT(v, 6, 6, mk); KERN_UNIT(v, 7, 7, mk);
            }
        } else if (w == 2) {
            const __m256i mk = _mm256_set1_epi8(3);
            for (; c + 128 <= fend; c += 128) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 4));
                KERN_UNIT(v, 0, 0, mk); KERN_UNIT(v, 2, 1, mk); KERN_UNIT(v, 4, 2, mk); KERN_UNIT(v, 6, 3, mk);
            }
        } else {
            const __m256i mk = _mm256_set1_epi8(15);
            for (; c + 64 <= fend; c += 64) {
                const __m256i v = _mm256_loadu_si256((const __m256i *)(bp + c / 2));
                KERN_UNIT(v, 0, 0, mk); KERN_UNIT(v, 4, 1, mk);
            }
        }
#undef KERN_UNIT
        if (cnt) f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(acc16, ones16)), _mm256_set1_ps(coef[jg] * pw), f);
        *facc = f;
    }
    /* the rest (a last partial block, or groups not a multiple of 32), group by group */
    while (c < ce) {
        const int64_t j = c / g, gend = (j + 1) * g < ce ? (j + 1) * g : ce;
        *tail += coef[j - j0] * pw * (float)slice_sum_scalar(bp, cols, w, xq, c, gend);
        c = gend;
    }
}

/* One row, levels lo..hi.  Per level: the group coefficients (FP16 scale x
 * activation scale) and the zero/sum correction are computed 8 groups at a
 * time with F16C, then each slice adds its integer sums times 2^(low bit). */
AVX2_FN static float dot_avx2(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
    const kern_shape *s = &m->shape;
    const int64_t G = kern_groups_per_row(s), g = s->group, cols = s->cols;
    float coef[KERN_GCHUNK];
    __m256 facc = _mm256_setzero_ps(), corr = _mm256_setzero_ps();
    float tail = 0;
    for (int k = lo; k <= hi; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        int w[KERN_MAX_SLICES], o[KERN_MAX_SLICES], ns = kern_level_slices(s, k, w, o);
        const uint8_t *rowp = ch + kern_chunk_planes_offset(s, k) + row * kern_level_row_bytes(s, k);
        const uint8_t *scp = ch + 2 * row * G;
        const uint8_t *zp = ch + kern_chunk_zeros_offset(s) + 2 * row * G;
        const __m256 two = _mm256_set1_ps(k == 1 ? 1.0f : 2.0f);
        for (int64_t j0 = 0; j0 < G; j0 += KERN_GCHUNK) {
            const int64_t nj = G - j0 < KERN_GCHUNK ? G - j0 : KERN_GCHUNK;
            int64_t j = 0;
            for (; j + 8 <= nj; j += 8) {
                __m256 sc = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(scp + 2 * (j0 + j))));
                __m256 sd = _mm256_mul_ps(sc, _mm256_loadu_ps(a->dx + j0 + j));
                __m256 sx = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(a->sx + j0 + j)));
                if (k == 1) sx = _mm256_mul_ps(sx, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(zp + 2 * (j0 + j)))));
                corr = _mm256_fmadd_ps(sd, sx, corr);
                _mm256_storeu_ps(coef + j, _mm256_mul_ps(sd, two));
            }
            for (; j < nj; j++) {
                float sd = rdf16(scp + 2 * (j0 + j)) * a->dx[j0 + j];
                tail -= sd * (float)a->sx[j0 + j] * (k == 1 ? rdf16(zp + 2 * (j0 + j)) : 1.0f);
                coef[j] = k == 1 ? sd : 2.0f * sd;
            }
            const int64_t cb = j0 * g, ce = (j0 + nj) * g < cols ? (j0 + nj) * g : cols;
            const uint8_t *bp = rowp;
            for (int i = 0; i < ns; i++) {
                slice_dot_avx2(bp, a->xq, cols, g, w[i], cb, ce, j0, coef, (float)(1 << o[i]), &facc, &tail);
                bp += kern_slice_bytes(cols, w[i]);
            }
        }
    }
    facc = _mm256_sub_ps(facc, corr);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(facc), _mm256_extractf128_ps(facc, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h) + tail;
}
#endif

/* ---- dispatch ------------------------------------------------------------- */
int kern_have_avx2(void)
{
#ifdef KERN_X86
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        unsigned eax, ebx, ecx = 0, edx;
        int f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)); /* CPUID.1:ECX.F16C */
        have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    }
    return have;
#else
    return 0;
#endif
}

static kern_impl forced = KERN_AUTO;

kern_impl kern_impl_set(kern_impl impl)
{
    if (impl == KERN_AVX2 && !kern_have_avx2()) impl = KERN_SCALAR;
    forced = impl;
    return impl == KERN_AUTO ? (kern_have_avx2() ? KERN_AVX2 : KERN_SCALAR) : impl;
}

const char *kern_impl_name(kern_impl impl)
{
    switch (impl) {
    case KERN_SCALAR: return "scalar";
    case KERN_AVX2: return "avx2";
    default: return "auto";
    }
}

static int use_avx2(void) { return forced != KERN_SCALAR && kern_have_avx2(); }

void kern_pack_codes(uint8_t *slice, int64_t cols, int w, int o, int64_t c0, const uint8_t *q, int64_t n)
{
#ifdef KERN_X86
    if (use_avx2()) { pack_codes_avx2(slice, cols, w, o, c0, q, n); return; }
#endif
    pack_codes_scalar(slice, cols, w, o, c0, q, n);
}

void kern_pack_bits(uint8_t *slice, int64_t cols, int64_t c0, const uint8_t *bits, int64_t n)
{
#ifdef KERN_X86
    if (use_avx2()) { pack_bits_avx2(slice, cols, c0, bits, n); return; }
#endif
    pack_bits_scalar(slice, cols, c0, bits, n);
}

float kern_dot(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
#ifdef KERN_X86
    if (use_avx2()) return dot_avx2(m, row, lo, hi, a);
#endif
    return dot_scalar(m, row, lo, hi, a);
}

void kern_matvec(const kern_mat *m, int lo, int hi, const kern_act *a, float *y)
{
#ifdef KERN_X86
    if (use_avx2()) {
        for (int64_t r = 0; r < m->shape.rows; r++) y[r] += dot_avx2(m, r, lo, hi, a);
        return;
    }
#endif
    for (int64_t r = 0; r < m->shape.rows; r++) y[r] += dot_scalar(m, r, lo, hi, a);
}

void kern_matmul(const kern_mat *m, int lo, int hi, kern_act *const *acts, int64_t T, float *Y)
{
    int avx = use_avx2();
    for (int64_t r = 0; r < m->shape.rows; r++)
        for (int64_t t = 0; t < T; t++) {
#ifdef KERN_X86
            if (avx) { Y[t * m->shape.rows + r] += dot_avx2(m, r, lo, hi, acts[t]); continue; }
#endif
            (void)avx;
            Y[t * m->shape.rows + r] += dot_scalar(m, r, lo, hi, acts[t]);
        }
}

int kern_matvec_ref(const kern_mat *m, int lo, int hi, const float *x, double *y)
{
    int64_t cols = m->shape.cols;
    float *hi_row = malloc((size_t)cols * sizeof *hi_row), *lo_row = malloc((size_t)cols * sizeof *lo_row);
    if (!hi_row || !lo_row) { free(hi_row); free(lo_row); D2_ERROR(D2_ENOMEM, "out of memory"); }
    for (int64_t r = 0; r < m->shape.rows; r++) {
        kern_row_dequant(m, hi, r, hi_row);
        if (lo > 1) kern_row_dequant(m, lo - 1, r, lo_row);
        double acc = 0;
        for (int64_t c = 0; c < cols; c++) acc += ((double)hi_row[c] - (lo > 1 ? (double)lo_row[c] : 0.0)) * x[c];
        y[r] = acc;
    }
    free(hi_row);
    free(lo_row);
    return D2_OK;
}
