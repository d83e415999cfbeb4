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
int64_t kern_row_bytes(const kern_shape *s) { return (s->cols + 7) / 8; }
int kern_level_planes(const kern_shape *s, int level) { return level == 1 ? s->base_bits : 1; }
int64_t kern_chunk_zeros_offset(const kern_shape *s) { return 2 * s->rows * kern_groups_per_row(s); }
int64_t kern_chunk_planes_offset(const kern_shape *s, int level)
{
    return (level == 1 ? 4 : 2) * s->rows * kern_groups_per_row(s);
}
int64_t kern_chunk_bytes(const kern_shape *s, int level)
{
    return kern_chunk_planes_offset(s, level) + s->rows * kern_level_planes(s, level) * kern_row_bytes(s);
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

/* ---- dequantization ---------------------------------------------------- */
void kern_row_dequant(const kern_mat *m, int level, int64_t row, float *out)
{
    const kern_shape *s = &m->shape;
    int64_t G = kern_groups_per_row(s), RB = kern_row_bytes(s), g = s->group;
    for (int k = 1; k <= level; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        int P = kern_level_planes(s, k);
        const uint8_t *pl = ch + kern_chunk_planes_offset(s, k) + row * P * RB;
        for (int64_t j = 0; j < G; j++) {
            int64_t c0 = j * g, c1 = c0 + g < s->cols ? c0 + g : s->cols;
            float sc = rdf16(ch + 2 * (row * G + j));
            if (k == 1) {
                float z = rdf16(ch + kern_chunk_zeros_offset(s) + 2 * (row * G + j));
                for (int64_t c = c0; c < c1; c++) {
                    int q = 0;
                    for (int p = 0; p < P; p++) q |= ((pl[p * RB + (c >> 3)] >> (c & 7)) & 1) << p;
                    out[c] = ((float)q - z) * sc;
                }
            } else {
                for (int64_t c = c0; c < c1; c++) {
                    int b = (pl[c >> 3] >> (c & 7)) & 1;
                    out[c] = out[c] + (b ? sc : -sc);
                }
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
    int8_t *xp;   /* xq permuted per 256-block (when group % 128 == 0), full
                   * 128-blocks only, else 0: for c % 256 == 0, bit b, i < 16:
                   * xp[c + 32b + i] = xq[c + 8i + b], xp[c + 32b + 16 + i] =
                   * xq[c + 128 + 8i + b]: a 32-byte plane slice (256 weights)
                   * shifted right by b and masked to bit 0 lines up with
                   * xp[c + 32b .. +32] (AVX2 path) */
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
    size_t nx = (size_t)((cols + 255) / 256 * 256 + 32);
    a->xq = aligned_alloc(32, nx);
    a->xp = aligned_alloc(32, nx);
    a->dx = calloc((size_t)a->G, sizeof *a->dx);
    a->sx = calloc((size_t)a->G, sizeof *a->sx);
    if (!a->xq || !a->xp || !a->dx || !a->sx) { kern_act_free(a); D2_ERROR(D2_ENOMEM, "out of memory"); }
    memset(a->xq, 0, nx);
    memset(a->xp, 0, nx);
    *out = a;
    return D2_OK;
}

void kern_act_free(kern_act *a)
{
    if (!a) return;
    free(a->xq);
    free(a->xp);
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
    if (a->group % 128 == 0)
        for (int64_t c = 0; c + 128 <= a->cols; c += 128) {
            int64_t base = c / 256 * 256, hi = (c / 128) & 1;
            for (int b = 0; b < 8; b++)
                for (int i = 0; i < 16; i++) a->xp[base + 32 * b + 16 * hi + i] = a->xq[c + 8 * i + b];
        }
    return D2_OK;
}

void kern_act_dequant(const kern_act *a, float *xhat)
{
    for (int64_t c = 0; c < a->cols; c++) xhat[c] = a->dx[c / a->group] * (float)a->xq[c];
}

/* ---- scalar reference dot ---------------------------------------------- */
static int32_t masked_sum_scalar(const uint8_t *plane, const int8_t *xq, int64_t c0, int64_t c1)
{
    int32_t m = 0;
    for (int64_t c = c0; c < c1; c++)
        if ((plane[c >> 3] >> (c & 7)) & 1) m += xq[c];
    return m;
}

static float dot_scalar(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
    const kern_shape *s = &m->shape;
    int64_t G = kern_groups_per_row(s), RB = kern_row_bytes(s), g = s->group;
    float acc = 0;
    for (int k = lo; k <= hi; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        int P = kern_level_planes(s, k);
        const uint8_t *pl = ch + kern_chunk_planes_offset(s, k) + row * P * RB;
        for (int64_t j = 0; j < G; j++) {
            int64_t c0 = j * g, c1 = c0 + g < s->cols ? c0 + g : s->cols;
            float sc = rdf16(ch + 2 * (row * G + j));
            if (k == 1) {
                float z = rdf16(ch + kern_chunk_zeros_offset(s) + 2 * (row * G + j));
                int64_t I = 0;
                for (int p = 0; p < P; p++) I += (int64_t)masked_sum_scalar(pl + p * RB, a->xq, c0, c1) * ((int64_t)1 << p);
                acc += sc * a->dx[j] * ((float)I - z * (float)a->sx[j]);
            } else {
                int32_t M = masked_sum_scalar(pl, a->xq, c0, c1);
                acc += sc * a->dx[j] * (float)(2 * M - a->sx[j]);
            }
        }
    }
    return acc;
}

/* ---- AVX2 ------------------------------------------------------------ */
#ifdef KERN_X86
#define AVX2_FN __attribute__((target("avx2,fma,f16c")))

/* 32 bits -> 32 bytes 0xFF/0x00, ANDed with the 32 int8 activations, summed
 * in pairs to int16 (maddubs with 1s). */
AVX2_FN static inline __m256i masked_pairs(uint32_t bits, const int8_t *xq, __m256i shuf, __m256i bitsel, __m256i ones8)
{
    __m256i v = _mm256_set1_epi32((int)bits);
    v = _mm256_shuffle_epi8(v, shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bitsel), bitsel);
    __m256i xv = _mm256_loadu_si256((const __m256i *)xq);
    return _mm256_maddubs_epi16(ones8, _mm256_and_si256(v, xv));
}

/* One row, levels lo..hi.  Per level: the group coefficients (FP16 scale x
 * activation scale) and the zero/sum correction are computed 8 groups at a
 * time with F16C.  Integer masked sums, when g % 128 == 0: a 32-byte plane
 * slice covers two 128-weight blocks (lower lane, upper lane); for each bit
 * position b, (slice >> b) & 1 gives 0/1 bytes that maddubs multiplies with
 * the permuted activations xp, so each 32 weights cost shift, and, maddubs,
 * add.  Otherwise 32-weight steps against xq; scalar for the last < 32. */
#define KERN_GCHUNK 256
AVX2_FN static float dot_avx2(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
    const kern_shape *s = &m->shape;
    const int64_t G = kern_groups_per_row(s), RB = kern_row_bytes(s), g = s->group, cols = s->cols;
    const int64_t c128 = g % 128 == 0 ? cols / 128 * 128 : 0; /* weights covered by the 128-block path */
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                          2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bitsel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    float coef[KERN_GCHUNK];
    __m256 facc = _mm256_setzero_ps(), corr = _mm256_setzero_ps();
    float tail = 0;
    for (int k = lo; k <= hi; k++) {
        const uint8_t *ch = m->chunk[k - 1];
        const int P = kern_level_planes(s, k);
        const uint8_t *pl = ch + kern_chunk_planes_offset(s, k) + row * P * RB;
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
            /* columns of groups j0 .. j0+nj-1 */
            const int64_t cb = j0 * g, ce = (j0 + nj) * g < cols ? (j0 + nj) * g : cols;
            const int64_t fe = ce < c128 ? ce : c128; /* end of the 128-block part */
            for (int p = 0; p < P; p++) {
                const uint8_t *bp = pl + p * RB;
                const float pw = (float)(1 << p);
                int64_t c = cb;
                for (; c + 128 <= fe; c += 256) {
                    __m256i v = c + 256 <= fe ? _mm256_loadu_si256((const __m256i *)(bp + c / 8))
                                              : _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(bp + c / 8)));
                    const int8_t *xp = a->xp + c;
                    __m256i acc16 = _mm256_setzero_si256();
                    for (int b = 0; b < 8; b++) {
                        __m256i t = _mm256_and_si256(_mm256_srli_epi16(v, b), ones8);
                        acc16 = _mm256_add_epi16(acc16, _mm256_maddubs_epi16(t, _mm256_load_si256((const __m256i *)(xp + 32 * b))));
                    }
                    const int64_t jl = c / g - j0, jh = (c + 128) / g - j0;
                    __m256 cf = _mm256_set_m128(_mm_set1_ps(c + 256 <= fe ? coef[jh] * pw : 0.0f), _mm_set1_ps(coef[jl] * pw));
                    facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(acc16, ones16)), cf, facc);
                }
                if (c > fe) c = fe;
                /* the rest, group by group */
                while (c < ce) {
                    const int64_t jg = c / g - j0, gend = (c / g + 1) * g < ce ? (c / g + 1) * g : ce;
                    __m256i acc16 = _mm256_setzero_si256();
                    if (c % 8 == 0)
                        for (; c + 32 <= gend; c += 32) {
                            uint32_t bits;
                            memcpy(&bits, bp + c / 8, 4);
                            acc16 = _mm256_add_epi16(acc16, masked_pairs(bits, a->xq + c, shuf, bitsel, ones8));
                        }
                    const float cp = coef[jg] * pw;
                    facc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(acc16, ones16)), _mm256_set1_ps(cp), facc);
                    if (c < gend) tail += cp * (float)masked_sum_scalar(bp, a->xq, c, gend);
                    c = gend;
                }
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

/* The AVX2 path keeps int16 partial sums per group (or per 256-block) that
 * cannot overflow when g <= 4096 (128 steps of |254|). */
static int use_avx2(const kern_mat *m)
{
    if (forced == KERN_SCALAR || !kern_have_avx2()) return 0;
    return m->shape.group <= 4096;
}

float kern_dot(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a)
{
#ifdef KERN_X86
    if (use_avx2(m)) return dot_avx2(m, row, lo, hi, a);
#endif
    return dot_scalar(m, row, lo, hi, a);
}

void kern_matvec(const kern_mat *m, int lo, int hi, const kern_act *a, float *y)
{
#ifdef KERN_X86
    if (use_avx2(m)) {
        for (int64_t r = 0; r < m->shape.rows; r++) y[r] += dot_avx2(m, r, lo, hi, a);
        return;
    }
#endif
    for (int64_t r = 0; r < m->shape.rows; r++) y[r] += dot_scalar(m, r, lo, hi, a);
}

void kern_matmul(const kern_mat *m, int lo, int hi, kern_act *const *acts, int64_t T, float *Y)
{
    int avx = use_avx2(m);
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
