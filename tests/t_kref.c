/* t_kref.c - the q2_K / q4_K layout reference kernels (quant/kref.h): a
 * hand-built record of each layout decodes to W = d sc q - dmin m as kref.h
 * lays it out; the quantizer reproduces a sub-block that lies on its grid;
 * the AVX2 dot equals the scalar reference and the scalar reference equals
 * the dequantized product (quantized Gaussian weights, and random bytes in
 * every field with activations at +-127: the extremes of the integer sums);
 * bad shapes, NaN weights and width mismatches refused.  Speed is measured by
 * `d2moe bench kernels`, not here. */
#include "tap.h"
#include "core/err.h"
#include "core/rng.h"
#include "quant/kref.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* one record of each layout written byte by byte from kref.h */
static void hand_blocks(void)
{
    kref_matrix *m;
    float out[256];
    /* q2k-layout: d = 1, dmin = 0.5; sc_j = j % 16 ... use sc_j = 1 + j % 15, m_j = j % 16;
     * code of weight i = i % 4 */
    ok(kref_matrix_new(KREF_Q2K, 1, 256, &m) == D2_OK, "q2k-layout 1 x 256");
    is_int(kref_record_bytes(KREF_Q2K), 84, "q2k-layout record: 2 + 2 + 16 + 64 bytes (2.625 bpw)");
    uint8_t *p = m->data;
    p[0] = 0x00; p[1] = 0x3c; /* d = 1 */
    p[2] = 0x00; p[3] = 0x38; /* dmin = 0.5 */
    for (int j = 0; j < 16; j++) p[4 + j] = (uint8_t)((1 + j % 15) | (j % 16) << 4);
    for (int i = 0; i < 256; i++) { /* byte 20 + 32h + (i % 32), bits 2s */
        int h = i / 128, s = (i % 128) / 32;
        p[20 + 32 * h + i % 32] |= (uint8_t)((i % 4) << (2 * s));
    }
    kref_row_dequant(m, 0, out);
    int bad = 0;
    for (int i = 0; i < 256; i++) {
        int j = i / 16;
        float want = (float)(1 + j % 15) * (float)(i % 4) - 0.5f * (float)(j % 16);
        bad += out[i] != want;
    }
    ok(!bad, "q2k-layout hand-built record decodes to d sc_j q - dmin m_j (%d of 256 differ)", bad);
    /* dot with unit vectors: xq = 127 at c, dx = 1/127: the weight itself, both paths */
    kref_act *a;
    kref_act_new(256, &a);
    float x[256];
    int bad_dot = 0;
    for (int c = 0; c < 256; c += 7) {
        memset(x, 0, sizeof x);
        x[c] = 1;
        kref_act_set(a, x);
        for (int impl = KQ_SCALAR; impl <= KQ_AVX2; impl++) bad_dot += fabsf(kref_dot(m, 0, a, (kq_impl)impl) - out[c]) > 1e-5f * (1 + fabsf(out[c]));
    }
    ok(!bad_dot, "q2k-layout: the dot with unit vectors gives the decoded weights (scalar and AVX2)");
    kref_matrix_free(m);

    /* q4k-layout: d = 0.25, dmin = 1; sc_j = 8 j + 7 (6 bits), m_j = 63 - j; code of weight i = i % 16 */
    ok(kref_matrix_new(KREF_Q4K, 1, 256, &m) == D2_OK, "q4k-layout 1 x 256");
    is_int(kref_record_bytes(KREF_Q4K), 144, "q4k-layout record: 2 + 2 + 12 + 128 bytes (4.5 bpw)");
    p = m->data;
    p[0] = 0x00; p[1] = 0x34; /* d = 0.25 */
    p[2] = 0x00; p[3] = 0x3c; /* dmin = 1 */
    uint64_t bits[2] = {0, 0}; /* 96 bits LSB first: sc_0..7 then m_0..7, 6 bits each */
    for (int j = 0; j < 16; j++) {
        uint64_t v = j < 8 ? (uint64_t)(8 * j + 7) : (uint64_t)(63 - (j - 8));
        int bit = 6 * j;
        bits[bit / 64] |= v << (bit % 64);
        if (bit % 64 > 58) bits[bit / 64 + 1] |= v >> (64 - bit % 64);
    }
    for (int i = 0; i < 12; i++) p[4 + i] = (uint8_t)(bits[i / 8] >> (8 * (i % 8)));
    for (int i = 0; i < 256; i++) { /* chunk c = i / 64: byte 16 + 32c + i % 32, low nibble for the first 32 */
        int c = i / 64, hi = (i % 64) / 32;
        p[16 + 32 * c + i % 32] |= (uint8_t)((i % 16) << (4 * hi));
    }
    kref_row_dequant(m, 0, out);
    bad = 0;
    for (int i = 0; i < 256; i++) {
        int j = i / 32;
        float want = 0.25f * (float)(8 * j + 7) * (float)(i % 16) - (float)(63 - j);
        bad += out[i] != want;
    }
    ok(!bad, "q4k-layout hand-built record decodes to d sc_j q - dmin m_j (%d of 256 differ)", bad);
    bad_dot = 0;
    for (int c = 0; c < 256; c += 5) {
        memset(x, 0, sizeof x);
        x[c] = 1;
        kref_act_set(a, x);
        for (int impl = KQ_SCALAR; impl <= KQ_AVX2; impl++) bad_dot += fabsf(kref_dot(m, 0, a, (kq_impl)impl) - out[c]) > 1e-5f * (1 + fabsf(out[c]));
    }
    ok(!bad_dot, "q4k-layout: the dot with unit vectors gives the decoded weights (scalar and AVX2)");
    kref_matrix_free(m);
    kref_act_free(a);
}

/* A row on the quantizer's grid: every sub-block's values are s q - m for
 * q = 0..nmax with s, m on the FP16 code grid (d = dmin = 1/8, codes
 * chosen), so min/max rounding must give them back exactly. */
static void on_grid(kref_type t)
{
    const int nsub = t == KREF_Q2K ? 16 : 8, sub = 256 / nsub, nmax = t == KREF_Q2K ? 3 : 15, cmax = t == KREF_Q2K ? 15 : 63;
    float w[256], out[256];
    for (int j = 0; j < nsub; j++) {
        /* sub-block 0 holds the largest scale and min codes, so d = dmin = 1/8 */
        int sc = j == 0 ? cmax : 1 + (3 * j) % cmax, mc = j == 0 ? cmax : (5 * j) % (cmax + 1);
        for (int i = 0; i < sub; i++) w[j * sub + i] = 0.125f * (float)sc * (float)((i * 7) % (nmax + 1)) - 0.125f * (float)mc;
        w[j * sub] = -0.125f * (float)mc;                  /* q = 0 present: the min */
        w[j * sub + 1] = 0.125f * (float)sc * (float)nmax - 0.125f * (float)mc; /* q = nmax present: the max */
    }
    kref_matrix *m;
    ok(kref_quantize(w, 1, 256, t, &m) == D2_OK, "%s: quantize a row on the grid", kref_type_name(t));
    kref_row_dequant(m, 0, out);
    int bad = 0;
    for (int i = 0; i < 256; i++) bad += out[i] != w[i];
    ok(!bad, "%s: a row on the FP16 code grid round-trips exactly (%d of 256 differ)", kref_type_name(t), bad);
    kref_matrix_free(m);
}

static void check_dots(kref_matrix *m, const float *x, const char *name)
{
    const int64_t rows = m->rows, cols = m->cols;
    float *xh = malloc((size_t)cols * sizeof *xh), *row = malloc((size_t)cols * sizeof *row);
    kref_act *a;
    kref_act_new(cols, &a);
    kref_act_set(a, x);
    kref_act_dequant(a, xh);
    int bad_simd = 0, bad_ref = 0;
    double worst = 0;
    for (int64_t r = 0; r < rows; r++) {
        float s = kref_dot(m, r, a, KQ_SCALAR), v = kref_dot(m, r, a, KQ_AVX2);
        kref_row_dequant(m, r, row);
        double ref = 0, mag = 0;
        for (int64_t c = 0; c < cols; c++) {
            ref += (double)row[c] * xh[c];
            mag += fabs((double)row[c] * xh[c]);
        }
        bad_simd += fabs((double)v - s) > 1e-6 * (mag + 1e-30);
        double err = fabs(s - ref) / (mag + 1e-30);
        worst = err > worst ? err : worst;
        bad_ref += err > 1e-5;
    }
    ok(!bad_simd, "%s %lld x %lld: AVX2 dot equals scalar within float rounding (1e-6 of sum |terms|; %d rows differ)", name,
       (long long)rows, (long long)cols, bad_simd);
    ok(!bad_ref, "%s %lld x %lld: scalar dot equals the dequantized product (worst %.2g of sum |terms|)", name, (long long)rows,
       (long long)cols, worst);
    float *y = calloc((size_t)rows, sizeof *y);
    ok(kref_matvec(m, a, KQ_AUTO, y) == D2_OK && y[rows - 1] == kref_dot(m, rows - 1, a, KQ_AUTO), "%s: matvec row = dot", name);
    free(y);
    kref_act_free(a);
    free(xh);
    free(row);
}

static void dots(kref_type t, uint64_t seed)
{
    const int64_t rows = 16, cols = 1024;
    gsl_rng *g = rng_new(seed, 0x6b72);
    float *w = malloc((size_t)(rows * cols) * sizeof *w), *x = malloc((size_t)cols * sizeof *x);
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)gsl_ran_tdist(g, 3.0) * 0.02f;
    for (int64_t c = 0; c < cols; c++) x[c] = (float)gsl_ran_gaussian(g, 1.0);
    kref_matrix *m;
    ok(kref_quantize(w, rows, cols, t, &m) == D2_OK, "%s: quantize Student-t weights", kref_type_name(t));
    char name[64];
    snprintf(name, sizeof name, "%s, Student-t weights", kref_type_name(t));
    check_dots(m, x, name);
    kref_matrix_free(m);
    /* random bytes in every field, every code at its largest in a third of
     * the records, activations all +-127 */
    kref_matrix_new(t, 4, 1024, &m);
    for (int64_t i = 0; i < m->bytes; i++) m->data[i] = (uint8_t)gsl_rng_uniform_int(g, 256);
    const int rb = kref_record_bytes(t);
    for (int64_t b = 0; b < m->bytes / rb; b++) {
        uint8_t *p = m->data + b * rb;
        p[0] = 0x1f; p[1] = 0x21; p[2] = 0x1f; p[3] = 0x25; /* d = 0.01, dmin = 0.02 */
        if (b % 3 == 0) memset(p + 4, 0xff, (size_t)(rb - 4));
    }
    for (int64_t c = 0; c < 1024; c++) x[c] = (c / 64) % 3 == 0 ? 1.0f : (c / 64) % 3 == 1 ? -1.0f : (gsl_rng_uniform(g) < 0.5 ? 1.0f : -1.0f);
    snprintf(name, sizeof name, "%s, random bytes, |xq| = 127", kref_type_name(t));
    check_dots(m, x, name);
    kref_matrix_free(m);
    gsl_rng_free(g);
    free(w);
    free(x);
}

static void refusals(void)
{
    kref_matrix *m = NULL;
    kref_type t;
    ok(kref_type_find("q4k-layout", &t) == D2_OK && t == KREF_Q4K, "q4k-layout found");
    ok(kref_type_find("q4_K", &t) == D2_EINVAL && strstr(d2_err_msg(), "q2k-layout"), "an unknown layout is refused naming the known ones");
    float w[512] = {0};
    ok(kref_quantize(w, 2, 200, KREF_Q4K, &m) == D2_EINVAL && !m && strstr(d2_err_msg(), "multiple of 256"), "200 columns refused");
    ok(kref_matrix_new(KREF_Q2K, 0, 256, &m) == D2_EINVAL && !m, "0 rows refused");
    w[300] = NAN;
    ok(kref_quantize(w, 2, 256, KREF_Q2K, &m) == D2_EINVAL && !m && strstr(d2_err_msg(), "300"), "a NaN weight refused, naming its index");
    kref_act *a = NULL;
    ok(kref_act_new(100, &a) == D2_EINVAL && !a, "activations of 100 columns refused");
    kref_act_new(512, &a);
    kref_matrix_new(KREF_Q4K, 1, 256, &m);
    float y[1] = {0};
    ok(kref_matvec(m, a, KQ_AUTO, y) == D2_EINVAL, "activations of another width refused");
    float x[512] = {0};
    x[7] = INFINITY;
    ok(kref_act_set(a, x) == D2_EINVAL && strstr(d2_err_msg(), "element 7"), "an Inf activation refused, naming its index");
    kref_matrix_free(m);
    kref_act_free(a);
}

int main(void)
{
    hand_blocks();
    on_grid(KREF_Q2K);
    on_grid(KREF_Q4K);
    dots(KREF_Q2K, 31);
    dots(KREF_Q4K, 32);
    refusals();
    return tap_done();
}
