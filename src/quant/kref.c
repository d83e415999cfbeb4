/* kref.c - the q2_K / q4_K layout reference kernels (kref.h): quantizer,
 * dequantization, int8 activations, scalar and AVX2 dot products.  A speed
 * baseline for `d2moe bench kernels`; not ggml's code, format or quantizer. */
#include "config.h"
#include "quant/kref.h"
#include "quant/f16.h"
#include "quant/kern.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KREF_X86 1
#define KREF_AVX2_FN __attribute__((target("avx2,fma,f16c")))
#endif

struct kref_act {
    int64_t cols;
    float *dx;       /* per super-block: the int8 scale */
    int8_t *xq;      /* cols */
    int16_t *bs16;   /* per 16: sum of xq (|sum| <= 2032) */
    int16_t *bs32;   /* per 32: sum of xq (|sum| <= 4064) */
};

int kref_type_find(const char *name, kref_type *t)
{
    if (!strcmp(name, "q2k-layout")) { *t = KREF_Q2K; return D2_OK; }
    if (!strcmp(name, "q4k-layout")) { *t = KREF_Q4K; return D2_OK; }
    D2_ERROR(D2_EINVAL, "reference layout '%s': known are q2k-layout, q4k-layout", name);
}

const char *kref_type_name(kref_type t) { return t == KREF_Q2K ? "q2k-layout" : "q4k-layout"; }

int kref_record_bytes(kref_type t) { return t == KREF_Q2K ? 84 : 144; }

static int check_shape(int64_t rows, int64_t cols)
{
    if (rows < 1 || cols < 1 || cols % KREF_SUPER)
        D2_ERROR(D2_EINVAL, "reference layout: a %lld x %lld matrix; columns must be a positive multiple of %d", (long long)rows,
                 (long long)cols, KREF_SUPER);
    if (rows > INT64_MAX / cols) D2_ERROR(D2_EINVAL, "reference layout: %lld x %lld weights overflow", (long long)rows, (long long)cols);
    return D2_OK;
}

int kref_matrix_new(kref_type t, int64_t rows, int64_t cols, kref_matrix **out)
{
    *out = NULL;
    D2_TRY(check_shape(rows, cols));
    kref_matrix *m = calloc(1, sizeof *m);
    if (!m) D2_ERROR(D2_ENOMEM, "out of memory");
    m->type = t;
    m->rows = rows;
    m->cols = cols;
    m->bytes = rows * (cols / KREF_SUPER) * kref_record_bytes(t);
    m->data = calloc((size_t)m->bytes + 16, 1); /* +16: the AVX2 path loads 16 bytes at the scale codes */
    if (!m->data) {
        long long bytes = (long long)m->bytes;
        free(m);
        D2_ERROR(D2_ENOMEM, "out of memory for a %lld-byte matrix", bytes);
    }
    *out = m;
    return D2_OK;
}

void kref_matrix_free(kref_matrix *m)
{
    if (!m) return;
    free(m->data);
    free(m);
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

/* the 16 scale and min codes of a record: sc[0..n), mn[0..n) */
static void codes_get(kref_type t, const uint8_t *p, int *sc, int *mn)
{
    if (t == KREF_Q2K) {
        for (int j = 0; j < 16; j++) { sc[j] = p[4 + j] & 15; mn[j] = p[4 + j] >> 4; }
        return;
    }
    for (int j = 0; j < 16; j++) { /* 6-bit codes, LSB-first bit stream */
        int bit = 6 * j, b = bit / 8, o = bit % 8;
        int v = (rd16(p + 4 + b) >> o) & 63;
        if (j < 8) sc[j] = v;
        else mn[j - 8] = v;
    }
}

static void codes_put(kref_type t, uint8_t *p, const int *sc, const int *mn)
{
    if (t == KREF_Q2K) {
        for (int j = 0; j < 16; j++) p[4 + j] = (uint8_t)(sc[j] | mn[j] << 4);
        return;
    }
    memset(p + 4, 0, 12);
    for (int j = 0; j < 16; j++) {
        int v = j < 8 ? sc[j] : mn[j - 8], bit = 6 * j, b = bit / 8, o = bit % 8;
        uint16_t w = (uint16_t)(rd16(p + 4 + b) | v << o);
        wr16(p + 4 + b, w);
    }
}

/* code of weight i (0..255) of a record */
static inline int code_get(kref_type t, const uint8_t *p, int i)
{
    if (t == KREF_Q2K) {
        int h = i / 128, s = (i % 128) / 32, c = i % 32;
        return (p[20 + 32 * h + c] >> (2 * s)) & 3;
    }
    int c = i / 64, hi = (i % 64) / 32, k = i % 32;
    return (p[16 + 32 * c + k] >> (4 * hi)) & 15;
}

static inline void code_put(kref_type t, uint8_t *p, int i, int q)
{
    if (t == KREF_Q2K) {
        int h = i / 128, s = (i % 128) / 32, c = i % 32;
        p[20 + 32 * h + c] |= (uint8_t)(q << (2 * s));
        return;
    }
    int c = i / 64, hi = (i % 64) / 32, k = i % 32;
    p[16 + 32 * c + k] |= (uint8_t)(q << (4 * hi));
}

static void quant_super(kref_type t, const float *x, uint8_t *p)
{
    const int nsub = t == KREF_Q2K ? 16 : 8, sub = KREF_SUPER / nsub, nmax = t == KREF_Q2K ? 3 : 15,
              cmax = t == KREF_Q2K ? 15 : 63;
    float scale[16], mins[16], smax = 0, mmax = 0;
    for (int j = 0; j < nsub; j++) {
        float lo = 0, hi = x[j * sub];
        for (int i = 0; i < sub; i++) {
            float v = x[j * sub + i];
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        if (hi < lo) hi = lo;
        scale[j] = (hi - lo) / (float)nmax;
        mins[j] = -lo;
        smax = scale[j] > smax ? scale[j] : smax;
        mmax = mins[j] > mmax ? mins[j] : mmax;
    }
    memset(p, 0, (size_t)kref_record_bytes(t));
    uint16_t d16 = f16_from_float(smax / (float)cmax), m16 = f16_from_float(mmax / (float)cmax);
    wr16(p, d16);
    wr16(p + 2, m16);
    const float d = f16_to_float(d16), dm = f16_to_float(m16);
    int sc[16] = {0}, mn[16] = {0};
    for (int j = 0; j < nsub; j++) {
        long a = d > 0 ? lrintf(scale[j] / d) : 0, b = dm > 0 ? lrintf(mins[j] / dm) : 0;
        sc[j] = (int)(a < 0 ? 0 : a > cmax ? cmax : a);
        mn[j] = (int)(b < 0 ? 0 : b > cmax ? cmax : b);
    }
    codes_put(t, p, sc, mn);
    for (int j = 0; j < nsub; j++) {
        const float s = d * (float)sc[j], m = dm * (float)mn[j];
        for (int i = 0; i < sub; i++) {
            long q = s > 0 ? lrintf((x[j * sub + i] + m) / s) : 0;
            code_put(t, p, j * sub + i, (int)(q < 0 ? 0 : q > nmax ? nmax : q));
        }
    }
}

int kref_quantize(const float *w, int64_t rows, int64_t cols, kref_type t, kref_matrix **out)
{
    *out = NULL;
    D2_TRY(check_shape(rows, cols));
    for (int64_t i = 0; i < rows * cols; i++)
        if (!isfinite(w[i])) D2_ERROR(D2_EINVAL, "reference layout: weight %lld (row %lld) is %s", (long long)i, (long long)(i / cols), isnan(w[i]) ? "NaN" : "Inf");
    kref_matrix *m;
    D2_TRY(kref_matrix_new(t, rows, cols, &m));
    const int rb = kref_record_bytes(t);
    for (int64_t b = 0; b < rows * (cols / KREF_SUPER); b++) quant_super(t, w + b * KREF_SUPER, m->data + b * rb);
    *out = m;
    return D2_OK;
}

void kref_row_dequant(const kref_matrix *m, int64_t row, float *out)
{
    const int64_t NB = m->cols / KREF_SUPER;
    const int rb = kref_record_bytes(m->type), sub = m->type == KREF_Q2K ? 16 : 32;
    for (int64_t b = 0; b < NB; b++) {
        const uint8_t *p = m->data + (row * NB + b) * rb;
        const float d = f16_to_float(rd16(p)), dm = f16_to_float(rd16(p + 2));
        int sc[16], mn[16];
        codes_get(m->type, p, sc, mn);
        for (int i = 0; i < KREF_SUPER; i++)
            out[b * KREF_SUPER + i] = d * (float)sc[i / sub] * (float)code_get(m->type, p, i) - dm * (float)mn[i / sub];
    }
}

/* ---- activations ---------------------------------------------------------- */

int kref_act_new(int64_t cols, kref_act **out)
{
    *out = NULL;
    if (cols < 1 || cols % KREF_SUPER) D2_ERROR(D2_EINVAL, "activations: %lld columns is not a multiple of %d", (long long)cols, KREF_SUPER);
    kref_act *a = calloc(1, sizeof *a);
    if (!a) D2_ERROR(D2_ENOMEM, "out of memory");
    a->cols = cols;
    a->dx = calloc((size_t)(cols / KREF_SUPER), sizeof *a->dx);
    a->xq = calloc((size_t)cols, 1);
    a->bs16 = calloc((size_t)(cols / 16), sizeof *a->bs16);
    a->bs32 = calloc((size_t)(cols / 32), sizeof *a->bs32);
    if (!a->dx || !a->xq || !a->bs16 || !a->bs32) { kref_act_free(a); D2_ERROR(D2_ENOMEM, "out of memory"); }
    *out = a;
    return D2_OK;
}

void kref_act_free(kref_act *a)
{
    if (!a) return;
    free(a->dx);
    free(a->xq);
    free(a->bs16);
    free(a->bs32);
    free(a);
}

int kref_act_set(kref_act *a, const float *x)
{
    for (int64_t b = 0; b < a->cols / KREF_SUPER; b++) {
        const float *v = x + b * KREF_SUPER;
        float mx = 0;
        for (int i = 0; i < KREF_SUPER; i++) {
            if (!isfinite(v[i])) D2_ERROR(D2_EINVAL, "activations: element %lld is %s", (long long)(b * KREF_SUPER + i), isnan(v[i]) ? "NaN" : "Inf");
            mx = fabsf(v[i]) > mx ? fabsf(v[i]) : mx;
        }
        const float d = mx / 127.0f, id = d > 0 ? 1.0f / d : 0;
        a->dx[b] = d;
        for (int i = 0; i < KREF_SUPER; i++) {
            float q = rintf(v[i] * id);
            a->xq[b * KREF_SUPER + i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
        for (int j = 0; j < KREF_SUPER / 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += a->xq[b * KREF_SUPER + 16 * j + i];
            a->bs16[b * 16 + j] = (int16_t)s;
        }
        for (int j = 0; j < KREF_SUPER / 32; j++) a->bs32[b * 8 + j] = (int16_t)(a->bs16[b * 16 + 2 * j] + a->bs16[b * 16 + 2 * j + 1]);
    }
    return D2_OK;
}

void kref_act_dequant(const kref_act *a, float *xhat)
{
    for (int64_t c = 0; c < a->cols; c++) xhat[c] = a->dx[c / KREF_SUPER] * (float)a->xq[c];
}

/* ---- kernels -------------------------------------------------------------- */

/* Scalar reference: per super-block the exact integer sums
 * is = sum_j sc_j sum_i q_i xq_i and im = sum_j m_j bsum_j, then
 * dx (d is - dmin im); super-blocks summed in order. */
static float dot_scalar(const kref_matrix *m, int64_t row, const kref_act *a)
{
    const int64_t NB = m->cols / KREF_SUPER;
    const int rb = kref_record_bytes(m->type), nsub = m->type == KREF_Q2K ? 16 : 8, sub = KREF_SUPER / nsub;
    float tot = 0;
    for (int64_t b = 0; b < NB; b++) {
        const uint8_t *p = m->data + (row * NB + b) * rb;
        const int8_t *xq = a->xq + b * KREF_SUPER;
        int sc[16], mn[16];
        codes_get(m->type, p, sc, mn);
        int64_t is = 0, im = 0;
        for (int j = 0; j < nsub; j++) {
            int64_t s = 0, bs = 0;
            for (int i = 0; i < sub; i++) {
                s += (int64_t)code_get(m->type, p, j * sub + i) * xq[j * sub + i];
                bs += xq[j * sub + i];
            }
            is += sc[j] * s;
            im += mn[j] * bs;
        }
        const float d = f16_to_float(rd16(p)), dm = f16_to_float(rd16(p + 2));
        tot += a->dx[b] * (d * (float)is - dm * (float)im);
    }
    return tot;
}

#ifdef KREF_X86
KREF_AVX2_FN static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KREF_AVX2_FN static inline float hsum4(__m128 s)
{
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* q4k-layout: per 64 weights one 32-byte load of codes, two nibble masks,
 * two maddubs with the activations, two madd by the sub-block scales (words
 * picked from one register by pshufb), one add; the 6-bit codes unpacked
 * per super-block by pshufb + a multiply as a per-lane shift; the mins from
 * the 32-sums by one 128-bit madd. */
KREF_AVX2_FN static float dot_q4k_avx2(const kref_matrix *m, int64_t row, const kref_act *a)
{
    const int64_t NB = m->cols / KREF_SUPER;
    const uint8_t *p = m->data + row * NB * 144;
    const int8_t *xq = a->xq;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    /* code j at bits 6j: the 16-bit word at byte 6j/8, shifted left by
     * 10 - 6j%8 (a multiply), then right by 10; lane 0: the 8 scale codes
     * (bytes 0..5), lane 1: the 8 min codes (bytes 6..11) */
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 1, 2, 2, 3, 3, 4, 3, 4, 4, 5, 5, 6, 6, 7, 6, 7, 7, 8, 8, 9, 9, 10, 9, 10, 10, 11,
                                          11, 12);
    const __m256i mul = _mm256_setr_epi16(1 << 10, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 4, 1 << 6, 1 << 8, 1 << 10, 1 << 4, 1 << 6, 1 << 8,
                                          1 << 10, 1 << 4, 1 << 6, 1 << 8);
    __m256i sel[8]; /* word j of lane 0 in every word */
    for (int j = 0; j < 8; j++) sel[j] = _mm256_set1_epi16((short)(2 * j | (2 * j + 1) << 8));
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    for (int64_t b = 0; b < NB; b++, p += 144, xq += KREF_SUPER) {
        const float dx = a->dx[b];
        const float d = dx * _cvtsh_ss(rd16(p)), dm = dx * _cvtsh_ss(rd16(p + 2));
        __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p + 4)));
        __m256i codes = _mm256_srli_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(raw, pick), mul), 10);
        __m256i scl = _mm256_permute2x128_si256(codes, codes, 0x00);
        __m128i mins = _mm256_extracti128_si256(codes, 1);
        __m128i pm = _mm_madd_epi16(mins, _mm_loadu_si128((const __m128i *)(a->bs32 + b * 8)));
        accm = _mm_fmadd_ps(_mm_set1_ps(dm), _mm_cvtepi32_ps(pm), accm);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(xq + 64 * c)));
            __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 64 * c + 32)));
            pl = _mm256_madd_epi16(pl, _mm256_shuffle_epi8(scl, sel[2 * c]));
            ph = _mm256_madd_epi16(ph, _mm256_shuffle_epi8(scl, sel[2 * c + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) - hsum4(accm);
}

/* q2k-layout: per 32 weights a shift and a mask of the 32 code bytes, one
 * maddubs, one madd by the two 16-weight sub-blocks' scales (words of one
 * register picked by pshufb: lane 0 the first, lane 1 the second), one add;
 * the mins from the 16-sums by one madd per super-block. */
KREF_AVX2_FN static float dot_q2k_avx2(const kref_matrix *m, int64_t row, const kref_act *a)
{
    const int64_t NB = m->cols / KREF_SUPER;
    const uint8_t *p = m->data + row * NB * 84;
    const int8_t *xq = a->xq;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m15 = _mm_set1_epi8(0x0f);
    __m256i sel[4]; /* lane 0: word 2s of lane 0, lane 1: word 2s + 1 */
    for (int s = 0; s < 4; s++)
        sel[s] = _mm256_setr_m128i(_mm_set1_epi16((short)(4 * s | (4 * s + 1) << 8)), _mm_set1_epi16((short)((4 * s + 2) | (4 * s + 3) << 8)));
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < NB; b++, p += 84, xq += KREF_SUPER) {
        const float dx = a->dx[b];
        const float d = dx * _cvtsh_ss(rd16(p)), dm = dx * _cvtsh_ss(rd16(p + 2));
        __m128i raw = _mm_loadu_si128((const __m128i *)(p + 4));
        __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(raw, m15));
        __m256i mn = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m15));
        __m256i pm = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)(a->bs16 + b * 16)));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dm), _mm256_cvtepi32_ps(pm), accm);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(p + 20 + 32 * h));
            __m256i sh = h ? _mm256_permute2x128_si256(sc, sc, 0x11) : _mm256_permute2x128_si256(sc, sc, 0x00);
            for (int s = 0; s < 4; s++) {
                __m256i c = _mm256_and_si256(s ? _mm256_srli_epi16(q, 2 * s) : q, m3);
                __m256i pr = _mm256_maddubs_epi16(c, _mm256_loadu_si256((const __m256i *)(xq + 128 * h + 32 * s)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(pr, _mm256_shuffle_epi8(sh, sel[s])));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc) - hsum8(accm);
}
#endif

float kref_dot(const kref_matrix *m, int64_t row, const kref_act *a, kq_impl impl)
{
#ifdef KREF_X86
    if (impl != KQ_SCALAR && kern_have_avx2()) return m->type == KREF_Q2K ? dot_q2k_avx2(m, row, a) : dot_q4k_avx2(m, row, a);
#else
    (void)impl;
#endif
    return dot_scalar(m, row, a);
}

int kref_matvec(const kref_matrix *m, const kref_act *a, kq_impl impl, float *y)
{
    if (a->cols != m->cols) D2_ERROR(D2_EINVAL, "activations of %lld columns for a matrix of %lld", (long long)a->cols, (long long)m->cols);
    for (int64_t r = 0; r < m->rows; r++) y[r] += kref_dot(m, r, a, impl);
    return D2_OK;
}
