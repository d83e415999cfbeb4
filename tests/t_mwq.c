/* t_mwq.c - the MWQ quantizer and its baselines: FP16 known answers, exact
 * grids, nesting, error never increasing across levels (synthetic heavy-tailed
 * matrices with outlier columns and the real stories260K FFN matrices),
 * sanity bounds with their derivations, determinism, NaN rejection, odd
 * shapes, gptq mode against rtn on output error, and identical bytes (and
 * errors) for every thread count of mwq_matrix_quantize_threads. */
#include "core/err.h"
#include "quant/f16.h"
#include "quant/kern.h"
#include "quant/mwq.h"
#include "quant/qerr.h"
#include "quant/rtn.h"
#include "tap.h"
#include "t_quant_util.h"

#include <gsl/gsl_errno.h>
#include <stdlib.h>

void mwq_fit_force_scalar(int on);

static void test_f16(void)
{
    /* IEEE 754 binary16 encodings */
    is_int(f16_from_float(1.0f), 0x3c00, "f16(1.0) = 0x3c00");
    is_int(f16_from_float(-2.0f), 0xc000, "f16(-2.0) = 0xc000");
    is_int(f16_from_float(65504.0f), 0x7bff, "f16(65504) = 0x7bff (largest finite)");
    is_int(f16_from_float(65520.0f), 0x7c00, "f16(65520) rounds to +Inf");
    is_int(f16_from_float(5.9604644775390625e-8f), 0x0001, "f16(2^-24) = 0x0001 (smallest subnormal)");
    is_int(f16_from_float(0.1f), 0x2e66, "f16(0.1) = 0x2e66");
    is_int(f16_from_float(1.0f + 1.0f / 2048), 0x3c00, "1 + 2^-11 ties to even (0x3c00)");
    ok(f16_to_float(0x3555) == 0.333251953125f, "f16 0x3555 = 0.333251953125");
    ok(bf16_to_float(0x3f80) == 1.0f && bf16_to_float(0x4040) == 3.0f, "bf16 0x3f80 = 1, 0x4040 = 3");
}

static mwq_matrix *quant(const float *w, int64_t r, int64_t c, int b1, int K, int64_t g)
{
    mwq_config cfg;
    mwq_config_default(&cfg);
    cfg.base_bits = b1; cfg.levels = K; cfg.group = g;
    mwq_matrix *m = NULL;
    int rc = mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m);
    if (rc) tap_diag("quantize: %s", d2_err_msg());
    return m;
}

static void dequant(const mwq_matrix *m, int k, float *out)
{
    kern_mat v;
    mwq_matrix_view(m, k, &v);
    kern_mat_dequant(&v, k, out);
}

static void test_exact_grid(void)
{
    /* values on the 2-bit grid (q - 1.5) * 0.5, q = 0..3: s = 0.5, z = 1.5
     * are exact in FP16, so level 1 must reproduce them exactly */
    float w[128], out[128];
    for (int i = 0; i < 128; i++) w[i] = ((float)(i % 4) - 1.5f) * 0.5f;
    mwq_matrix *m = quant(w, 1, 128, 2, 1, 128);
    dequant(m, 1, out);
    int same = 1;
    for (int i = 0; i < 128; i++) same &= out[i] == w[i];
    ok(same, "values on a 2-bit grid are reproduced exactly at level 1");
    mwq_matrix_free(m);
    /* constant group: exact */
    for (int i = 0; i < 128; i++) w[i] = -0.375f;
    m = quant(w, 1, 128, 2, 3, 128);
    dequant(m, 1, out);
    ok(out[0] == -0.375f && out[127] == -0.375f, "constant group -0.375 is exact at level 1");
    dequant(m, 3, out);
    ok(out[0] == -0.375f, "constant group stays exact at level 3 (zero residual scale)");
    mwq_matrix_free(m);
}

static double sse(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

/* levels 1..k of a K-level quantization == a k-level quantization, byte for
 * byte; errors non-increasing across levels. */
static void check_matrix(const char *what, const float *w, int64_t r, int64_t c, int b1, int K, int64_t g)
{
    mwq_matrix *m = quant(w, r, c, b1, K, g);
    if (!ok(m != NULL, "%s: quantized (b1=%d, K=%d, g=%lld)", what, b1, K, (long long)g)) return;
    float *out = malloc((size_t)(r * c) * sizeof *out), *out2 = malloc((size_t)(r * c) * sizeof *out2);
    double prev = INFINITY;
    int mono = 1, nest = 1, same_bytes = 1;
    for (int k = 1; k <= K; k++) {
        dequant(m, k, out);
        double e = sse(w, out, r * c);
        if (e > prev) { mono = 0; tap_diag("%s: level %d error %.6g > level %d error %.6g", what, k, e, k - 1, prev); }
        prev = e;
        mwq_matrix *mk = quant(w, r, c, b1, k, g);
        for (int l = 1; l <= k; l++) same_bytes &= memcmp(mk->chunk[l - 1], m->chunk[l - 1], (size_t)m->chunk_bytes[l - 1]) == 0;
        dequant(mk, k, out2);
        nest &= memcmp(out, out2, (size_t)(r * c) * sizeof *out) == 0;
        mwq_matrix_free(mk);
    }
    ok(mono, "%s: error never increases from one level to the next", what);
    ok(nest, "%s: What_k from a %d-level matrix equals What_k quantized with k levels", what, K);
    ok(same_bytes, "%s: chunks 1..k of the %d-level matrix equal the k-level chunks byte for byte", what, K);
    free(out);
    free(out2);
    mwq_matrix_free(m);
}

static void test_nesting_synthetic(void)
{
    float *w = tq_heavy(48, 384, 1);
    check_matrix("heavy-tailed 48x384 V1", w, 48, 384, 2, 3, 128);
    check_matrix("heavy-tailed 48x384 V2", w, 48, 384, 5, 4, 128);
    check_matrix("heavy-tailed 48x384 b1=3 K=6 g=64", w, 48, 384, 3, 6, 64);
    free(w);
    w = tq_heavy(7, 172, 2);
    check_matrix("short last group 7x172 g=128", w, 7, 172, 2, 3, 128);
    check_matrix("row shorter than group 7x50 (as 7x172 data) g=128", w, 7, 50, 2, 3, 128);
    check_matrix("group not a multiple of 8: 7x172 g=13", w, 7, 172, 2, 3, 13);
    free(w);
}

/* the other base objectives: error still never increases across levels,
 * and 'top' gives a lower top-level error than 'base' (docs/mwq.md table) */
static void test_objectives(void)
{
    int64_t r = 32, c = 512;
    float *w = tq_heavy(r, c, 9), *out = malloc((size_t)(r * c) * sizeof *out);
    double top_err[3] = {0};
    const char *obj[3] = {"base", "all", "top"};
    for (int o = 0; o < 3; o++) {
        mwq_config cfg;
        mwq_config_default(&cfg);
        snprintf(cfg.search_objective, sizeof cfg.search_objective, "%s", obj[o]);
        mwq_matrix *m;
        if (!ok(mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m) == D2_OK, "objective %s: quantized", obj[o])) continue;
        double prev = INFINITY;
        int mono = 1;
        for (int k = 1; k <= 3; k++) {
            dequant(m, k, out);
            double e = sse(w, out, r * c);
            mono &= e <= prev;
            prev = e;
        }
        top_err[o] = prev;
        ok(mono, "objective %s: error never increases across levels", obj[o]);
        mwq_matrix_free(m);
    }
    ok(top_err[2] <= top_err[0], "objective top: level-3 error %.4g <= objective base's %.4g", top_err[2], top_err[0]);
    mwq_config cfg;
    mwq_config_default(&cfg);
    snprintf(cfg.search_objective, sizeof cfg.search_objective, "best");
    ok(mwq_config_check(&cfg) == D2_EINVAL, "unknown objective refused");
    free(w);
    free(out);
}

static void test_real(void)
{
    const char *p = tq_stories();
    if (!p) { tap_skip(2, "stories260K.bin not found under $D2_SHARED/data/weights"); return; }
    weights *wf;
    if (!ok(weights_open(p, WEIGHTS_LLAMA2C, &wf) == D2_OK, "open stories260K")) return;
    int all_mono = 1, n = 0;
    double snr1 = 0, snr3 = 0;
    for (int l = 0; l < 5; l++)
        for (int k = 0; k < 3; k++) {
            char name[64];
            snprintf(name, sizeof name, "layers.%d.w%d", l, k + 1);
            size_t i;
            if (weights_find(wf, name, &i)) continue;
            const weights_info *ti = weights_get(wf, i);
            float *w;
            if (weights_read(wf, i, &w)) continue;
            mwq_matrix *m = quant(w, ti->rows, ti->cols, 2, 3, 128);
            float *out = malloc((size_t)(ti->rows * ti->cols) * sizeof *out);
            double prev = INFINITY;
            for (int lv = 1; lv <= 3; lv++) {
                dequant(m, lv, out);
                qerr_row q;
                qerr_eval(w, out, ti->rows, ti->cols, NULL, 0, &q);
                double e = q.mse;
                if (e > prev) all_mono = 0;
                prev = e;
                if (lv == 1) snr1 += q.snr_db;
                if (lv == 3) snr3 += q.snr_db;
            }
            n++;
            free(out);
            free(w);
            mwq_matrix_free(m);
        }
    ok(n == 15 && all_mono, "stories260K: error never increases across V1 levels on all 15 FFN matrices");
    snr1 /= n; snr3 /= n;
    tap_diag("stories260K FFN mean SNR: level 1 %.2f dB, level 3 %.2f dB", snr1, snr3);
    /* 2 extra bits on a uniform-ish residual give up to 12 dB; a sign plane
     * with one scale per group is less efficient: we require 7 dB */
    ok(snr3 - snr1 >= 7.0, "stories260K: V1 level 3 beats level 1 by >= 7 dB (got %.2f)", snr3 - snr1);
    weights_free(wf);
}

static void test_bounds(void)
{
    int64_t r = 64, c = 1024, n = r * c;
    float *w = tq_gauss(n, 1.0, 11), *out = malloc((size_t)n * sizeof *out);
    mwq_config cfg;
    mwq_config_default(&cfg);
    qerr_row q;
    /* Gaussian, group 128: range about 5.2 sigma, step 5.2/255, noise
     * step^2/12 -> SNR = 10 log10(12 * 255^2 / 5.2^2) = 44.6 dB */
    rtn_int_dequant(w, r, c, 8, &cfg, out);
    qerr_eval(w, out, r, c, NULL, 0, &q);
    ok(q.snr_db > 42.0, "rtn-int INT8 on N(0,1), g=128: SNR %.2f dB > 42 (uniform-noise estimate 44.6)", q.snr_db);
    /* 2 bits: per-group min/max alone gives 10 log10(12 / (5.2/3)^2) = 6.0 dB;
     * the Lloyd-Max 4-level quantizer of a Gaussian is 9.30 dB */
    rtn_int_dequant(w, r, c, 2, &cfg, out);
    qerr_eval(w, out, r, c, NULL, 0, &q);
    double snr2 = q.snr_db;
    ok(snr2 > 6.5 && snr2 < 9.6, "rtn-int INT2 on N(0,1): SNR %.2f dB in (6.5, 9.6): above min/max 6.0, near Lloyd-Max 9.30", snr2);
    /* MWQ level 1 is the same fit as rtn-int at b1 */
    mwq_matrix *m = quant(w, r, c, 2, 3, 128);
    float *o1 = malloc((size_t)n * sizeof *o1);
    dequant(m, 1, o1);
    ok(memcmp(o1, out, (size_t)n * sizeof *out) == 0, "MWQ level 1 equals rtn-int at b1 bits exactly");
    dequant(m, 3, o1);
    qerr_eval(w, o1, r, c, NULL, 0, &q);
    ok(q.snr_db - snr2 > 7.0, "MWQ V1 level 3 beats level 1 by %.2f dB > 7 on N(0,1)", q.snr_db - snr2);
    rtn_int_dequant(w, r, c, 4, &cfg, out);
    qerr_row q4;
    qerr_eval(w, out, r, c, NULL, 0, &q4);
    tap_diag("N(0,1): MWQ V1 level 3 %.2f dB vs rtn-int INT4 %.2f dB", q.snr_db, q4.snr_db);
    ok(q.snr_db <= q4.snr_db + 0.5, "MWQ level 3 (2+1+1 bits) is not better than a free INT4 grid (+0.5 dB slack)");
    /* msb-slice at 8 bits is the parent INT8 code itself */
    int bits[2] = {8, 2};
    float *outs[2] = {out, o1};
    rtn_msb_dequant(w, r, c, bits, 2, &cfg, outs);
    float *i8 = malloc((size_t)n * sizeof *i8);
    rtn_int_dequant(w, r, c, 8, &cfg, i8);
    ok(memcmp(i8, out, (size_t)n * sizeof *out) == 0, "msb-slice at 8 bits equals rtn-int INT8");
    qerr_eval(w, o1, r, c, NULL, 0, &q);
    tap_diag("N(0,1): msb-slice INT2 %.2f dB vs rtn-int INT2 %.2f dB", q.snr_db, snr2);
    ok(q.snr_db > 3.0 && q.snr_db < snr2 + 0.5, "msb-slice INT2 SNR %.2f dB: positive and not above rtn-int INT2", q.snr_db);
    is_near(rtn_bpw(4096, 14336, 4, 128), 4.25, 1e-9, "INT4 g=128 FP16 scale+zero = 4.25 bits/weight");
    free(i8);
    free(o1);
    mwq_matrix_free(m);
    free(w);
    free(out);
}

static void test_determinism(void)
{
    float *w = tq_heavy(16, 512, 5);
    mwq_matrix *a = quant(w, 16, 512, 2, 3, 128), *b = quant(w, 16, 512, 2, 3, 128);
    mwq_fit_force_scalar(1);
    mwq_matrix *s = quant(w, 16, 512, 2, 3, 128);
    mwq_fit_force_scalar(0);
    int same = 1, same_s = 1;
    for (int k = 0; k < 3; k++) {
        same &= !memcmp(a->chunk[k], b->chunk[k], (size_t)a->chunk_bytes[k]);
        same_s &= !memcmp(a->chunk[k], s->chunk[k], (size_t)a->chunk_bytes[k]);
    }
    ok(same, "same input, same bytes");
    ok(same_s, "scalar and AVX2 scale search give the same bytes");
    mwq_matrix_free(a); mwq_matrix_free(b); mwq_matrix_free(s);
    w[2 * 512 + 5] = NAN;
    mwq_config cfg;
    mwq_config_default(&cfg);
    mwq_matrix *m;
    int rc = mwq_matrix_quantize(w, 16, 512, &cfg, NULL, 0, &m);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "(2, 5)") && strstr(d2_err_msg(), "NaN"), "NaN at (2, 5) rejected with its index: %s", d2_err_msg());
    w[2 * 512 + 5] = INFINITY;
    rc = mwq_matrix_quantize(w, 16, 512, &cfg, NULL, 0, &m);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "index 1029") && strstr(d2_err_msg(), "Inf"), "Inf rejected with its index");
    cfg.base_bits = 5; cfg.levels = 5;
    ok(mwq_matrix_quantize(w, 16, 512, &cfg, NULL, 0, &m) == D2_ERANGE, "b1 + K - 1 > 8 refused");
    free(w);
}

static void test_gptq(void)
{
    /* correlated activations: x = A z with a random mixing matrix, so the
     * output error differs from the weight error */
    int64_t r = 32, c = 256, T = 512;
    float *w = tq_heavy(r, c, 21), *z = tq_gauss(T * c, 1.0, 22), *A = tq_gauss(c * c, 1.0 / 16, 23);
    float *X = calloc((size_t)(T * c), sizeof *X);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < c; i++) {
            double s = 0;
            for (int64_t j = 0; j < c; j++) s += A[i * c + j] * z[t * c + j];
            X[t * c + i] = (float)(s * (1.0 + 4.0 * (i % 7 == 0)));
        }
    mwq_config cfg;
    mwq_config_default(&cfg);
    mwq_matrix *mr, *mg;
    ok(mwq_matrix_quantize(w, r, c, &cfg, X, T, &mr) == D2_OK, "rtn mode");
    snprintf(cfg.mode, sizeof cfg.mode, "gptq");
    int rc = mwq_matrix_quantize(w, r, c, &cfg, X, T, &mg);
    if (!ok(rc == D2_OK, "gptq mode")) { tap_diag("%s", d2_err_msg()); return; }
    float *o = malloc((size_t)(r * c) * sizeof *o);
    int better = 1;
    for (int k = 1; k <= 3; k++) {
        qerr_row qr, qg;
        dequant(mr, k, o);
        qerr_eval(w, o, r, c, X, T, &qr);
        dequant(mg, k, o);
        qerr_eval(w, o, r, c, X, T, &qg);
        tap_diag("level %d: output rel err rtn %.4f, gptq %.4f", k, qr.out_rel_err, qg.out_rel_err);
        if (k == 3 && !(qg.out_rel_err < qr.out_rel_err)) better = 0;
    }
    ok(better, "gptq mode has lower output error than rtn at the compensated (top) level");
    mwq_matrix *mg2;
    mwq_matrix_quantize(w, r, c, &cfg, X, T, &mg2);
    int same = 1;
    for (int k = 0; k < 3; k++) same &= !memcmp(mg->chunk[k], mg2->chunk[k], (size_t)mg->chunk_bytes[k]);
    ok(same, "gptq mode is deterministic");
    mwq_matrix_free(mg2);
    ok(mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &mg2) == D2_EINVAL, "gptq without calibration refused");
    X[3 * c + 7] = NAN;
    ok(mwq_matrix_quantize(w, r, c, &cfg, X, T, &mg2) == D2_EINVAL && strstr(d2_err_msg(), "(3, 7)"), "NaN in calibration rejected with index");
    mwq_matrix_free(mr); mwq_matrix_free(mg);
    free(o); free(w); free(z); free(A); free(X);
}

static int same_bytes(const mwq_matrix *a, const mwq_matrix *b)
{
    if (!a || !b || a->levels != b->levels) return 0;
    for (int k = 0; k < a->levels; k++)
        if (a->chunk_bytes[k] != b->chunk_bytes[k] || memcmp(a->chunk[k], b->chunk[k], (size_t)a->chunk_bytes[k])) return 0;
    return 1;
}

/* threads 1, 2, 3, 7 on rows that do not divide evenly: the same bytes at
 * every level, the same first-NaN error, and with thread creation failing
 * (D2_FAIL_THREAD, core/par.h's test hook) the same bytes again */
static void test_threads(void)
{
    const int64_t r = 37, c = 640; /* 5 groups of 128 per row; 37 rows: no even split for 2, 3 or 7 */
    float *w = tq_heavy(r, c, 41);
    const char *presets[] = {"v1", "v2"};
    const int ths[] = {2, 3, 7};
    for (int p = 0; p < 2; p++) {
        mwq_config cfg;
        mwq_config_default(&cfg);
        mwq_config_preset(&cfg, presets[p]);
        mwq_matrix *m1 = NULL;
        ok(mwq_matrix_quantize_threads(w, r, c, &cfg, NULL, 0, 1, &m1) == D2_OK, "%s rtn, 1 thread", presets[p]);
        mwq_matrix *m0 = NULL;
        mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m0);
        ok(same_bytes(m0, m1), "%s: mwq_matrix_quantize = the threaded entry point with 1 thread", presets[p]);
        mwq_matrix_free(m0);
        for (int t = 0; t < 3; t++) {
            mwq_matrix *mt = NULL;
            int rc = mwq_matrix_quantize_threads(w, r, c, &cfg, NULL, 0, ths[t], &mt);
            ok(rc == D2_OK && same_bytes(m1, mt), "%s rtn %lld x %lld: %d threads write the same bytes at all %d levels", presets[p],
               (long long)r, (long long)c, ths[t], m1->levels);
            mwq_matrix_free(mt);
        }
        for (const char *fail = "1"; fail; fail = fail[0] == '1' ? "2" : NULL) {
            setenv("D2_FAIL_THREAD", fail, 1);
            mwq_matrix *mt = NULL;
            int rc = mwq_matrix_quantize_threads(w, r, c, &cfg, NULL, 0, 3, &mt);
            ok(rc == D2_OK && same_bytes(m1, mt), "%s, 3 threads with D2_FAIL_THREAD=%s (thread creation fails): the same bytes",
               presets[p], fail);
            mwq_matrix_free(mt);
            unsetenv("D2_FAIL_THREAD");
        }
        mwq_matrix_free(m1);
    }
    /* the first NaN by row, then column, whatever the split */
    w[29 * c + 300] = NAN;
    w[30 * c + 5] = INFINITY;
    mwq_config cfg;
    mwq_config_default(&cfg);
    char want[1024];
    mwq_matrix *m = NULL;
    int rc1 = mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m);
    snprintf(want, sizeof want, "%s", d2_err_msg());
    ok(rc1 == D2_EINVAL && !m && strstr(want, "(29, 300)"), "NaN at (29, 300), 1 thread: %s", want);
    for (int t = 0; t < 3; t++) {
        d2_err_clear();
        ok(mwq_matrix_quantize_threads(w, r, c, &cfg, NULL, 0, ths[t], &m) == D2_EINVAL && !m && !strcmp(d2_err_msg(), want),
           "%d threads: the same error", ths[t]);
    }
    ok(mwq_matrix_quantize_threads(w, r, c, &cfg, NULL, 0, 0, &m) == D2_ERANGE && !m, "0 threads refused");
    free(w);

    /* gptq: threads only in the per-block fits; the bytes are the same */
    const int64_t gr = 21, gc = 384, T = 300;
    float *gw = tq_heavy(gr, gc, 42), *X = tq_gauss(T * gc, 1.0, 43);
    snprintf(cfg.mode, sizeof cfg.mode, "gptq");
    mwq_matrix *g1 = NULL;
    ok(mwq_matrix_quantize_threads(gw, gr, gc, &cfg, X, T, 1, &g1) == D2_OK, "gptq %lld x %lld, 1 thread", (long long)gr, (long long)gc);
    for (int t = 0; t < 3; t++) {
        mwq_matrix *gt = NULL;
        int rc = mwq_matrix_quantize_threads(gw, gr, gc, &cfg, X, T, ths[t], &gt);
        ok(rc == D2_OK && same_bytes(g1, gt), "gptq: %d threads write the same bytes", ths[t]);
        mwq_matrix_free(gt);
    }
    mwq_matrix_free(g1);
    free(gw);
    free(X);
}

int main(void)
{
    gsl_set_error_handler_off();
    test_f16();
    test_exact_grid();
    test_nesting_synthetic();
    test_objectives();
    test_real();
    test_bounds();
    test_determinism();
    test_gptq();
    test_threads();
    tq_cleanup();
    return tap_done();
}
