/* t_kern.c - the dequant and dot kernels: chunk sizes against model.h's
 * storage convention, the int8-activation dot against a double reference on
 * the dequantized activations, incremental levels, mat-mul vs mat-vec, and
 * the AVX2 path against the scalar reference on random and real data. */
#include "core/err.h"
#include "core/model.h"
#include "quant/kern.h"
#include "quant/mwq.h"
#include "tap.h"
#include "t_quant_util.h"

#include <gsl/gsl_errno.h>

static void test_layout(void)
{
    /* Mixtral w1: 14336 x 4096, V1, g = 128.  model.h: codes rows*cols*b/8,
     * plus 4 bytes (scale+zero) per group at level 1, 2 bytes per group after */
    kern_shape s = {14336, 4096, 128, 2};
    is_int(kern_chunk_bytes(&s, 1), 14336LL * 4096 * 2 / 8 + 14336LL * 32 * 4, "V1 level 1 chunk = 16515072 bytes");
    is_int(kern_chunk_bytes(&s, 2), 14336LL * 4096 / 8 + 14336LL * 32 * 2, "V1 level 2 chunk = 8257536 bytes");
    model m;
    if (model_load(&m, "mixtral-8x7b") == D2_OK) {
        kern_shape s2 = {4096, 14336, 128, 2};
        int64_t tot = 2 * kern_chunk_bytes(&s, 1) + kern_chunk_bytes(&s2, 1);
        is_int(tot, model_expert_level_bytes(&m, 2, 1, 128), "a Mixtral expert's level-1 chunks = model_expert_level_bytes");
        tot = 2 * kern_chunk_bytes(&s, 3) + kern_chunk_bytes(&s2, 3);
        is_int(tot, model_expert_level_bytes(&m, 2, 3, 128), "level-3 chunks = model_expert_level_bytes");
    } else tap_skip(2, "mixtral-8x7b profile not found");
    /* cols * w % 8 != 0: each row slice is padded to a byte (differs from model.h) */
    kern_shape s3 = {3, 172, 128, 2};
    is_int(kern_chunk_bytes(&s3, 1), 3 * 2 * 4 + 3 * 43, "3x172 b1=2: 2 groups/row of 4 bytes, a 2-bit slice of 43 bytes per row");
    kern_shape s4 = {3, 171, 128, 7};
    is_int(kern_level_row_bytes(&s4, 1), 86 + 43 + 22, "171 cols b1=7: slices 4+2+1 bits of 86, 43, 22 bytes");
    is_int(kern_level_row_bytes(&s4, 2), 22, "171 cols level 2: one sign plane of 22 bytes");
    /* slice widths: greedy 4, 2, 1, low bits first */
    static const char *want[9] = {"", "1@0", "2@0", "2@0 1@2", "4@0", "4@0 1@4", "4@0 2@4", "4@0 2@4 1@6", "4@0 4@4"};
    int all = 1;
    for (int b = 1; b <= 8; b++) {
        kern_shape sb = {1, 256, 128, b};
        int w[KERN_MAX_SLICES], o[KERN_MAX_SLICES], n = kern_level_slices(&sb, 1, w, o);
        char got[64] = "";
        for (int i = 0; i < n; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d@%d", i ? " " : "", w[i], o[i]);
        if (strcmp(got, want[b])) { tap_diag("b1=%d: slices %s, want %s", b, got, want[b]); all = 0; }
    }
    ok(all, "level-1 slices for b1 = 1..8 (kern.h: 3 = 2+1, 7 = 4+2+1, 8 = 4+4)");
}

/* Known answers of the layout rule in kern.h, worked by hand. */
static void test_slots(void)
{
    int64_t byte;
    int sh;
    /* 2-bit slice, 300 cols: block 0 = weights 0..127 in bytes 0..31; weight
     * 37 = offset 37: byte 37 % 32 = 5, bits 2*(37/32) = 2 */
    kern_slot(300, 2, 37, &byte, &sh);
    ok(byte == 5 && sh == 2, "2-bit weight 37: byte 5, shift 2 (got %lld, %d)", (long long)byte, sh);
    /* weight 127: byte 31, shift 6 */
    kern_slot(300, 2, 127, &byte, &sh);
    ok(byte == 31 && sh == 6, "2-bit weight 127: byte 31, shift 6");
    /* block 2 holds the last 300 - 256 = 44 weights in ceil(44*2/8) = 11
     * bytes; weight 290 = offset 34: byte 64 + 34 % 11 = 65, shift 2*(34/11) = 6 */
    kern_slot(300, 2, 290, &byte, &sh);
    ok(byte == 65 && sh == 6, "2-bit weight 290 in the short last block: byte 65, shift 6 (got %lld, %d)", (long long)byte, sh);
    /* 1-bit slice: weight 200 of a full 256 block: byte 200 % 32 = 8, bit 6 */
    kern_slot(512, 1, 200, &byte, &sh);
    ok(byte == 8 && sh == 6, "1-bit weight 200: byte 8, bit 6");
    /* 4-bit: weight 70 = block 1 offset 6: byte 32 + 6 = 38, shift 0 */
    kern_slot(512, 4, 70, &byte, &sh);
    ok(byte == 38 && sh == 0, "4-bit weight 70: byte 38, shift 0");
    /* packing writes exactly there: code 3 of weight 37 in a 2-bit slice */
    uint8_t sl[75] = {0}, q[1] = {3};
    kern_pack_codes(sl, 300, 2, 0, 37, q, 1);
    int only = sl[5] == 0x0c;
    for (int i = 0; i < 75; i++) only &= i == 5 || sl[i] == 0;
    ok(only, "kern_pack_codes puts code 3 of weight 37 at byte 5 bits 2-3 and nowhere else");
}

/* The AVX2 packers against the scalar ones: every width and code offset,
 * aligned and unaligned starts, full and short last blocks. */
static void test_pack_paths(void)
{
    static const int64_t colsv[] = {256, 1000, 1024, 300, 77};
    uint8_t q[1024], bits[128], a[1024], b[1024];
    uint64_t st = 88172645463325252ULL;
    for (int i = 0; i < 1024; i++) { st ^= st << 13; st ^= st >> 7; st ^= st << 17; q[i] = (uint8_t)st; }
    for (int i = 0; i < 128; i++) bits[i] = q[i * 3];
    int same = 1, cases = 0;
    for (size_t ci = 0; ci < sizeof colsv / sizeof colsv[0]; ci++) {
        const int64_t cols = colsv[ci];
        static const int64_t starts[] = {0, 8, 32, 96, 128, 200};
        for (size_t si = 0; si < sizeof starts / sizeof starts[0]; si++) {
            const int64_t c0 = starts[si] < cols ? starts[si] : 0, n = cols - c0;
            for (int w = 1; w <= 4; w *= 2)
                for (int o = 0; o + w <= 8; o += w) {
                    memset(a, 0, sizeof a);
                    memset(b, 0, sizeof b);
                    kern_impl_set(KERN_SCALAR);
                    kern_pack_codes(a, cols, w, o, c0, q, n);
                    kern_impl_set(KERN_AUTO);
                    kern_pack_codes(b, cols, w, o, c0, q, n);
                    same &= !memcmp(a, b, sizeof a);
                    cases++;
                }
            memset(a, 0, sizeof a);
            memset(b, 0, sizeof b);
            kern_impl_set(KERN_SCALAR);
            kern_pack_bits(a, cols, c0, bits, n);
            kern_impl_set(KERN_AUTO);
            kern_pack_bits(b, cols, c0, bits, n);
            same &= !memcmp(a, b, sizeof a);
            cases++;
        }
    }
    ok(same, "%s packers = scalar packers, byte for byte (%d cases)", kern_impl_name(kern_have_avx2() ? KERN_AVX2 : KERN_SCALAR), cases);
}

static double ref_dot(const kern_mat *m, int64_t row, int lo, int hi, const float *xhat, double *mag)
{
    int64_t c = m->shape.cols;
    float *a = malloc((size_t)c * sizeof *a), *b = malloc((size_t)c * sizeof *b);
    kern_row_dequant(m, hi, row, a);
    if (lo > 1) kern_row_dequant(m, lo - 1, row, b);
    double s = 0;
    *mag = 0;
    for (int64_t i = 0; i < c; i++) {
        double wv = (double)a[i] - (lo > 1 ? b[i] : 0.0);
        s += wv * xhat[i];
        *mag += fabs(wv * xhat[i]) + fabs((double)a[i] * xhat[i]);
    }
    free(a);
    free(b);
    return s;
}

static void check_kernels(const char *what, const float *w, int64_t r, int64_t c, int b1, int K, int64_t g, uint64_t seed)
{
    mwq_config cfg;
    mwq_config_default(&cfg);
    cfg.base_bits = b1; cfg.levels = K; cfg.group = g;
    mwq_matrix *m;
    if (!ok(mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m) == D2_OK, "%s: quantized", what)) return;
    kern_mat v;
    mwq_matrix_view(m, K, &v);
    float *x = tq_gauss(c, 1.0, seed), *xhat = malloc((size_t)c * sizeof *xhat);
    kern_act *a;
    kern_act_new(c, g, &a);
    kern_act_set(a, x);
    kern_act_dequant(a, xhat);
    float *ys = calloc((size_t)r, sizeof *ys), *yv = calloc((size_t)r, sizeof *yv), *yi = calloc((size_t)r, sizeof *yi);
    int ref_ok = 1, avx_ok = 1, inc_ok = 1;
    double worst = 0;
    for (int lo = 1; lo <= K; lo++)
        for (int hi = lo; hi <= K; hi++) {
            memset(ys, 0, (size_t)r * sizeof *ys);
            memset(yv, 0, (size_t)r * sizeof *yv);
            kern_impl_set(KERN_SCALAR);
            kern_matvec(&v, lo, hi, a, ys);
            kern_impl_set(KERN_AUTO);
            kern_matvec(&v, lo, hi, a, yv);
            for (int64_t i = 0; i < r; i++) {
                double mag, ref = ref_dot(&v, i, lo, hi, xhat, &mag);
                double tol = 1e-5 * mag + 1e-30;
                if (fabs(ys[i] - ref) > tol) { if (ref_ok) tap_diag("row %lld levels %d..%d: scalar %.9g ref %.9g", (long long)i, lo, hi, ys[i], ref); ref_ok = 0; }
                if (fabs(yv[i] - ys[i]) > tol) { if (avx_ok) tap_diag("row %lld levels %d..%d: avx2 %.9g scalar %.9g", (long long)i, lo, hi, yv[i], ys[i]); avx_ok = 0; }
                if (mag > 0 && fabs(yv[i] - ys[i]) / mag > worst) worst = fabs(yv[i] - ys[i]) / mag;
            }
        }
    /* incremental: levels 1..K one level at a time == all at once */
    memset(yi, 0, (size_t)r * sizeof *yi);
    for (int k = 1; k <= K; k++) kern_matvec(&v, k, k, a, yi);
    memset(yv, 0, (size_t)r * sizeof *yv);
    kern_matvec(&v, 1, K, a, yv);
    for (int64_t i = 0; i < r; i++) {
        double mag;
        ref_dot(&v, i, 1, K, xhat, &mag);
        if (fabs(yi[i] - yv[i]) > 1e-5 * mag) inc_ok = 0;
    }
    ok(ref_ok, "%s: scalar int8 dot = double reference on dequantized activations (1e-5 of sum |w x|)", what);
    ok(avx_ok, "%s: %s path = scalar (worst %.2g of sum |w x|)", what, kern_impl_name(kern_have_avx2() ? KERN_AVX2 : KERN_SCALAR), worst);
    ok(inc_ok, "%s: level by level (1, then 2, ...) = levels 1..K at once", what);
    /* mat-mul of 3 tokens = 3 mat-vecs */
    kern_act *acts[3];
    float *Y = calloc((size_t)(3 * r), sizeof *Y);
    int mm_ok = 1;
    for (int t = 0; t < 3; t++) {
        float *xt = tq_gauss(c, 1.0, seed + 100 + t);
        kern_act_new(c, g, &acts[t]);
        kern_act_set(acts[t], xt);
        free(xt);
    }
    kern_matmul(&v, 1, K, acts, 3, Y);
    for (int t = 0; t < 3; t++) {
        memset(yv, 0, (size_t)r * sizeof *yv);
        kern_matvec(&v, 1, K, acts[t], yv);
        mm_ok &= memcmp(yv, Y + t * r, (size_t)r * sizeof *yv) == 0;
        kern_act_free(acts[t]);
    }
    ok(mm_ok, "%s: matmul of 3 tokens = 3 matvecs", what);
    /* int8 activations vs float activations: |error| bounded by sum |w| * dx/2 */
    double *yd = malloc((size_t)r * sizeof *yd);
    kern_matvec_ref(&v, 1, K, x, yd);
    memset(yv, 0, (size_t)r * sizeof *yv);
    kern_matvec(&v, 1, K, a, yv);
    double num = 0, den = 0;
    for (int64_t i = 0; i < r; i++) { num += (yv[i] - yd[i]) * (yv[i] - yd[i]); den += yd[i] * yd[i]; }
    tap_diag("%s: int8 activations change the output by %.3g (relative)", what, sqrt(num / den));
    ok(sqrt(num / den) < 0.02, "%s: int8-activation product within 2%% of the float-activation one", what);
    free(yd); free(Y); free(ys); free(yv); free(yi); free(x); free(xhat);
    kern_act_free(a);
    mwq_matrix_free(m);
}

static void test_random(void)
{
    float *w = tq_heavy(33, 1024, 3);
    check_kernels("heavy 33x1024 V1", w, 33, 1024, 2, 3, 128, 1);
    check_kernels("heavy 33x1024 V2", w, 33, 1024, 5, 4, 128, 2);
    check_kernels("heavy 33x1024 b1=8 K=1", w, 33, 1024, 8, 1, 128, 3);
    check_kernels("heavy 33x1000 V1 (short group, tail of 8)", w, 33, 1000, 2, 3, 128, 4);
    check_kernels("heavy 33x1024 g=64", w, 33, 1024, 2, 3, 64, 5);
    check_kernels("heavy 33x1024 b1=3 K=2 g=100 (groups not byte-aligned)", w, 33, 1024, 3, 2, 100, 6);
    check_kernels("heavy 33x1024 b1=4 K=3 g=256", w, 33, 1024, 4, 3, 256, 9);
    check_kernels("heavy 33x1024 b1=6 K=2 g=96", w, 33, 1024, 6, 2, 96, 10);
    check_kernels("heavy 33x1000 b1=7 K=2 (4+2+1 slices, short block)", w, 33, 1000, 7, 2, 128, 11);
    check_kernels("heavy 33x1024 b1=1 K=4 g=1024", w, 33, 1024, 1, 4, 1024, 12);
    free(w);
}

static void test_real(void)
{
    const char *p = tq_stories();
    if (!p) { tap_skip(10, "stories260K.bin not found under $D2_SHARED/data/weights"); return; }
    weights *wf;
    weights_open(p, WEIGHTS_LLAMA2C, &wf);
    size_t i;
    float *w;
    weights_find(wf, "layers.2.w1", &i);
    weights_read(wf, i, &w);
    check_kernels("stories260K layers.2.w1 172x64", w, 172, 64, 2, 3, 32, 7);
    free(w);
    weights_find(wf, "layers.2.w2", &i);
    weights_read(wf, i, &w);
    check_kernels("stories260K layers.2.w2 64x172", w, 64, 172, 2, 3, 128, 8);
    free(w);
    weights_free(wf);
}

static void test_act(void)
{
    kern_act *a;
    float x[40];
    for (int i = 0; i < 40; i++) x[i] = (float)i;
    kern_act_new(40, 32, &a);
    x[33] = NAN;
    ok(kern_act_set(a, x) == D2_EINVAL && strstr(d2_err_msg(), "activation 33 is NaN"), "NaN activation rejected with index");
    x[33] = 1;
    ok(kern_act_set(a, x) == D2_OK, "finite activations accepted");
    float xh[40];
    kern_act_dequant(a, xh);
    ok(xh[31] == 31.0f && xh[0] == 0.0f, "int8 activations: max of a group is exact (31 -> 127 * 31/127)");
    kern_act_free(a);
}

int main(void)
{
    gsl_set_error_handler_off();
    tap_diag("AVX2 path available: %s", kern_have_avx2() ? "yes" : "no");
    test_layout();
    test_slots();
    test_pack_paths();
    test_random();
    test_real();
    test_act();
    tq_cleanup();
    return tap_done();
}
