/* t_kq.c - the k-quant nested format (quant/kq.h): a hand-built super-block
 * decodes to the values the layout comment defines; the prefix property
 * (levels 1..k of a K-level quantization are byte-identical to a k-level
 * one); the error never grows across levels; the AVX2 kernels equal the
 * scalar reference and the dequantized dot (also on random bytes with
 * activations at +-127, the extremes of the integer sums); the mat-vec (row
 * pairs on AVX2) adds each row's dot bit for bit, for 1 - 9 rows; the plain and AVX2 quantizers
 * write the same bytes; so do 1, 2, 3 and 7 threads (also when thread
 * creation fails), with the same error for a NaN; bad shapes and ranges refused.
 * Speed and error size are measured by `d2moe bench kernels` and `d2moe
 * quantize --json`, not here. */
#include "tap.h"
#include "core/err.h"
#include "core/model.h"
#include "core/rng.h"
#include "quant/mwq.h"
#include "quant/mwqfile.h"
#include "quant/kq.h"
#include "quant/qerr.h"
#include "quant/synth.h"

#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* v1k super-block written byte by byte from the layout in kq.h */
static void hand_block(void)
{
    kq_format f;
    kq_format_preset("v1k", &f);
    kq_matrix *m;
    ok(kq_matrix_new(&f, 1, 256, &m) == D2_OK, "v1k 1 x 256 matrix");
    is_int(kq_super_bytes(&f, 1), 74, "v1k level-1 record: 2 + 8 + 64 bytes (relative mins: no dmin)");
    is_int(kq_super_bytes(&f, 2), 36, "v1k level-2 record: 32 + 4 bytes (inner and outward factor codes)");
    is_int(kq_super_bytes(&f, 3), 34, "v1k level-3 record: 32 + 2 bytes (level-3 factor codes)");
    uint8_t *p = m->chunk[0];
    p[0] = 0x00; p[1] = 0x3c; /* d = 1.0 (FP16 0x3c00) */
    /* scale codes sc_j = j + 1 (4 bits each, LSB first): bytes 2..5; min codes mc_j = 7 - j: bytes 6..9 */
    for (int j = 0; j < 8; j++) {
        p[2 + j / 2] |= (uint8_t)((j + 1) << (4 * (j % 2)));
        p[6 + j / 2] |= (uint8_t)((7 - j) << (4 * (j % 2)));
    }
    /* 2-bit codes: weight c has code c % 4; byte (c % 128) % 32 of block c / 128, bits 2 * ((c % 128) / 32) */
    uint8_t *codes = p + 10;
    for (int c = 0; c < 256; c++) codes[(c / 128) * 32 + (c % 128) % 32] |= (uint8_t)((c % 4) << (2 * ((c % 128) / 32)));
    /* level 2: sign + where c % 3 == 0; sub-block j: gi = j % 4, go = (j + 1) % 4 (4 bits at 4j) */
    uint8_t *r2 = m->chunk[1], *r3 = m->chunk[2];
    for (int c = 0; c < 256; c++)
        if (c % 3 == 0) r2[c % 32] |= (uint8_t)(1u << (c / 32));
    for (int j = 0; j < 8; j++) r2[32 + j / 2] |= (uint8_t)(((j % 4) | ((j + 1) % 4) << 2) << (4 * (j % 2)));
    /* level 3: sign + where c % 5 == 0; h_j = 3 - j % 4 (2 bits at 2j) */
    for (int c = 0; c < 256; c++)
        if (c % 5 == 0) r3[c % 32] |= (uint8_t)(1u << (c / 32));
    for (int j = 0; j < 8; j++) r3[32 + j / 4] |= (uint8_t)((3 - j % 4) << (2 * (j % 4)));
    float o1[256], o2[256], o3[256];
    kq_row_dequant(m, 1, 0, o1);
    kq_row_dequant(m, 2, 0, o2);
    kq_row_dequant(m, 3, 0, o3);
    int bad1 = 0, bad2 = 0, bad3 = 0, nout = 0;
    for (int c = 0; c < 256; c++) {
        const int j = c / 32, q = c % 4, pos2 = c % 3 == 0, pos3 = c % 5 == 0;
        const float s = (float)(j + 1), w1 = s * (float)q - 0.2f * (float)((j + 1) * (7 - j)); /* kappa = 3 / 15 */
        bad1 += o1[c] != w1;
        const int outward = (q == 3 && pos2) || (q == 0 && !pos2);
        nout += outward;
        const float G = outward ? kq_go[(j + 1) % 4] : kq_gi[j % 4];
        const float w2 = w1 + (pos2 ? 1 : -1) * ((s * G) * 0.25f);
        bad2 += o2[c] != w2;
        const float w3 = w2 + (pos3 ? 1 : -1) * ((s * G) * (kq_h[3 - j % 4] / 8));
        bad3 += o3[c] != w3;
    }
    ok(!bad1, "level 1 of the hand-built block: W = (j+1) * (c %% 4) - 0.2 * (j+1) * (7-j) (%d wrong)", bad1);
    ok(!bad2 && nout > 0 && nout < 256, "level 2: W1 +- s_j * (outward ? go : gi) / 4, %d outward weights (%d wrong)", nout, bad2);
    ok(!bad3, "level 3: W2 +- s_j * (outward ? go : gi) * h / 8 (%d wrong)", bad3);
    /* the kernels read the same block: dot with x = e_c gives W_k[c] */
    kq_act *a;
    kq_act_new(256, &a);
    for (int c = 36; c <= 39; c++) {
        float x[256] = {0};
        x[c] = 1.0f;
        kq_act_set(a, x);
        for (int impl = KQ_SCALAR; impl <= KQ_AVX2; impl++) {
            kq_impl got = kq_impl_set((kq_impl)impl);
            if (got != (kq_impl)impl) { tap_skip(3, "no AVX2"); continue; }
            is_near(kq_dot(m, 0, 1, 1, a), o1[c], 1e-6, "%s dot of level 1 with e_%d = W1[%d]", kq_impl_name(got), c, c);
            is_near(kq_dot(m, 0, 1, 2, a), o2[c], 1e-6, "%s dot of levels 1..2 with e_%d = W2[%d]", kq_impl_name(got), c, c);
            is_near(kq_dot(m, 0, 3, 3, a), o3[c] - o2[c], 1e-6, "%s dot of level 3 alone with e_%d = W3 - W2", kq_impl_name(got), c);
        }
    }
    kq_impl_set(KQ_AUTO);
    kq_act_free(a);
    kq_matrix_free(m);
}

static float *heavy(int64_t rows, int64_t cols, uint64_t seed)
{
    synth_params p = {rows, cols, 3.0, 0.02, 16, 8.0, seed};
    float *w;
    return synth_heavy_tailed(&p, &w) ? NULL : w;
}

static double rel_err(const kq_matrix *m, const float *w, int level)
{
    float *o = malloc((size_t)m->cols * sizeof *o);
    double e = 0, n = 0;
    for (int64_t r = 0; r < m->rows; r++) {
        kq_row_dequant(m, level, r, o);
        for (int64_t c = 0; c < m->cols; c++) {
            double d = (double)w[r * m->cols + c] - o[c];
            e += d * d;
            n += (double)w[r * m->cols + c] * w[r * m->cols + c];
        }
    }
    free(o);
    return sqrt(e / n);
}

static void prefix_and_levels(const char *preset)
{
    kq_format f;
    kq_format_preset(preset, &f);
    float *w = heavy(16, 512, 7);
    kq_matrix *full, *part;
    ok(kq_quantize(w, 16, 512, &f, 4, &full) == D2_OK, "%s: quantize 16 x 512", preset);
    for (int k = 1; k < f.levels; k++) {
        kq_format fk = f;
        fk.levels = k;
        kq_quantize(w, 16, 512, &fk, 4, &part);
        int same = 1;
        for (int l = 1; l <= k; l++) same &= part->chunk_bytes[l - 1] == full->chunk_bytes[l - 1] &&
                                             !memcmp(part->chunk[l - 1], full->chunk[l - 1], (size_t)full->chunk_bytes[l - 1]);
        ok(same, "%s: levels 1..%d of the %d-level file equal a %d-level quantization, byte for byte", preset, k, f.levels, k);
        kq_matrix_free(part);
    }
    double prev = INFINITY;
    int down = 1;
    for (int k = 1; k <= f.levels; k++) {
        double e = rel_err(full, w, k);
        tap_diag("%s level %d: relative error %.4f", preset, k, e);
        down &= e < prev;
        prev = e;
    }
    ok(down, "%s: the error falls at every level", preset);
    kq_matrix_free(full);
    free(w);
}

/* AVX2 vs scalar vs the dequantized product, all level ranges */
static void kernels_check(kq_matrix *m, const float *x, const char *name)
{
    const kq_format *f = &m->fmt;
    const int64_t rows = m->rows, cols = m->cols;
    float *xh = malloc((size_t)cols * sizeof *xh), *row = malloc((size_t)cols * sizeof *row), *lo_row = malloc((size_t)cols * sizeof *lo_row);
    kq_act *a;
    kq_act_new(cols, &a);
    kq_act_set(a, x);
    kq_act_dequant(a, xh);
    int bad_simd = 0, bad_ref = 0, n = 0;
    double worst = 0;
    for (int lo = 1; lo <= f->levels; lo++)
        for (int hi = lo; hi <= f->levels; hi++)
            for (int64_t r = 0; r < rows; r++) {
                kq_impl_set(KQ_SCALAR);
                float s = kq_dot(m, r, lo, hi, a);
                float v = s;
                if (kq_impl_set(KQ_AVX2) == KQ_AVX2) v = kq_dot(m, r, lo, hi, a);
                /* reference: W_hi . xhat - W_{lo-1} . xhat in double */
                kq_row_dequant(m, hi, r, row);
                if (lo > 1) kq_row_dequant(m, lo - 1, r, lo_row);
                double ref = 0, mag = 0;
                for (int64_t c = 0; c < cols; c++) {
                    double d = (double)row[c] - (lo > 1 ? lo_row[c] : 0);
                    ref += d * xh[c];
                    mag += fabs(d * xh[c]);
                }
                /* float rounding: relative to the sum of |terms| (the paths sum in different orders) */
                bad_simd += fabs((double)v - s) > 1e-6 * (mag + 1e-30);
                double err = fabs(s - ref) / (mag + 1e-30);
                worst = err > worst ? err : worst;
                bad_ref += err > 1e-5;
                n++;
            }
    kq_impl_set(KQ_AUTO);
    ok(!bad_simd, "%s %lld x %lld: AVX2 dot equals scalar within float rounding (1e-6 of sum |terms|; %d of %d differ)", name, (long long)rows,
       (long long)cols, bad_simd, n);
    ok(!bad_ref, "%s %lld x %lld: scalar dot equals the dequantized product (worst %.2g of sum |terms|)", name, (long long)rows,
       (long long)cols, worst);
    /* mat-vec = dots, bit for bit (its multi-row passes do each row's
     * operations in the one-row order), every row and level range */
    int bad_mv = 0;
    float *y = calloc((size_t)rows, sizeof *y);
    for (int impl = KQ_SCALAR; impl <= KQ_AVX2; impl++) {
        kq_impl_set((kq_impl)impl);
        for (int lo = 1; lo <= f->levels; lo++)
            for (int hi = lo; hi <= f->levels; hi++) {
                for (int64_t r = 0; r < rows; r++) y[r] = 0.5f * (float)r;
                bad_mv += kq_matvec(m, lo, hi, a, y) != D2_OK;
                for (int64_t r = 0; r < rows; r++) {
                    const float want = 0.5f * (float)r + kq_dot(m, r, lo, hi, a);
                    bad_mv += memcmp(&y[r], &want, sizeof want) != 0;
                }
            }
    }
    kq_impl_set(KQ_AUTO);
    ok(!bad_mv, "%s: matvec adds each row's dot bit for bit, every level range (%d differ)", name, bad_mv);
    free(y);
    kq_act_free(a);
    free(xh); free(row); free(lo_row);
}

static void kernels(const kq_format *f, const char *name, int64_t rows, int64_t cols, uint64_t seed)
{
    float *w = heavy(rows, cols, seed);
    kq_matrix *m;
    kq_quantize(w, rows, cols, f, 2, &m);
    gsl_rng *g = rng_new(seed, 0x6b71);
    float *x = malloc((size_t)cols * sizeof *x);
    for (int64_t c = 0; c < cols; c++) x[c] = (float)gsl_ran_gaussian(g, 1.0);
    x[0] = 0; /* an exact zero and an all-zero super-block edge */
    kernels_check(m, x, name);
    kq_matrix_free(m);
    gsl_rng_free(g);
    free(x); free(w);
}

/* Random bytes in every field (largest codes and factors included) against
 * activations that are all +-127 after quantization: the extremes of the
 * integer sums, where an int16 pair in the AVX2 paths could saturate. */
static void kernels_extreme(const kq_format *f, const char *name, int64_t rows, int64_t cols, uint64_t seed)
{
    kq_matrix *m;
    kq_matrix_new(f, rows, cols, &m);
    gsl_rng *g = rng_new(seed, 0x7e57);
    for (int k = 1; k <= f->levels; k++)
        for (int64_t i = 0; i < m->chunk_bytes[k - 1]; i++) m->chunk[k - 1][i] = (uint8_t)gsl_rng_uniform_int(g, 256);
    const int64_t sb1 = kq_super_bytes(f, 1);
    for (int64_t b = 0; b < rows * (cols / 256); b++) { /* d = 0.01, dmin = 0.02 (FP16 0x211f, 0x251f) */
        uint8_t *p = m->chunk[0] + b * sb1;
        p[0] = 0x1f; p[1] = 0x21;
        if (!f->min_rel) { p[2] = 0x1f; p[3] = 0x25; }
        if (b % 3 == 0) memset(p + (f->min_rel ? 2 : 4), 0xff, 8); /* every scale and min code at its maximum */
    }
    if (f->levels >= 2 && f->resid == KQ_BUCKET) /* all level-2 factors at the largest: 10 G = 10 / 20 */
        for (int64_t b = 0; b < rows * (cols / 256); b += 2) memset(m->chunk[1] + b * kq_super_bytes(f, 2) + 32, 0xff, 4);
    float *x = malloc((size_t)cols * sizeof *x);
    for (int64_t c = 0; c < cols; c++) x[c] = (c / 64) % 3 == 0 ? 1.0f : (c / 64) % 3 == 1 ? -1.0f : (gsl_rng_uniform(g) < 0.5 ? 1.0f : -1.0f);
    kernels_check(m, x, name);
    kq_matrix_free(m);
    gsl_rng_free(g);
    free(x);
}

static void refusals(void)
{
    kq_format f;
    kq_format_preset("v1k", &f);
    kq_matrix *m = NULL;
    float w[300 * 2];
    for (int i = 0; i < 600; i++) w[i] = (float)i;
    ok(kq_quantize(w, 2, 300, &f, 4, &m) == D2_EINVAL && !m && strstr(d2_err_msg(), "multiple of 256"),
       "cols 300 refused, the message names the super-block rule");
    ok(kq_format_preset("v3k", &f) == D2_EINVAL, "unknown preset refused");
    kq_format bad = {.base_bits = 5, .levels = 5, .scale_bits = 6, .min_bits = 6, .min_rel = 0, .resid = KQ_TIED};
    ok(kq_format_check(&bad) == D2_ERANGE, "b1 5 + 5 levels (9 bits) refused");
    bad.levels = 2;
    bad.resid = (kq_resid)2;
    ok(kq_format_check(&bad) == D2_ERANGE, "unknown residual rule refused");
    kq_format_preset("v1k", &f);
    float big[256 * 2];
    for (int i = 0; i < 512; i++) big[i] = sinf((float)i);
    big[300] = NAN;
    ok(kq_quantize(big, 2, 256, &f, 4, &m) == D2_EINVAL && strstr(d2_err_msg(), "(1, 44)"), "NaN named: %s", d2_err_msg());
    big[300] = 0;
    kq_quantize(big, 2, 256, &f, 4, &m);
    kq_act *a, *a2;
    ok(kq_act_new(100, &a) == D2_EINVAL, "activations of 100 columns refused");
    kq_act_new(256, &a);
    kq_act_new(512, &a2);
    kq_act_set(a, big);
    kq_act_set(a2, big);
    float y[2] = {0};
    ok(kq_matvec(m, 0, 1, a, y) == D2_EINVAL, "level range 0..1 refused");
    ok(kq_matvec(m, 2, 4, a, y) == D2_EINVAL, "level range 2..4 of a 3-level matrix refused");
    ok(kq_matvec(m, 1, 3, a2, y) == D2_EINVAL, "activations of another width refused");
    big[3] = INFINITY;
    ok(kq_act_set(a, big) == D2_EINVAL, "Inf activation refused");
    kq_act_free(a);
    kq_act_free(a2);
    kq_matrix_free(m);
}

/* model.c's storage-format sizes equal the quantizers' real level chunks */
static void format_sizes(void)
{
    model md;
    memset(&md, 0, sizeof md);
    md.hidden = 512;
    md.expert_ffn = 768;
    md.expert_matrices = 3;
    static const char *const names[] = {"v1", "v2", "v1k", "v2k"};
    for (int fi = 0; fi < 4; fi++)
        for (int64_t group = 96; group <= 128; group += 32) {
            const int kq = fi >= 2;
            if (kq && group != 128) continue;
            int K = 0;
            model_format_levels(names[fi], &K);
            int64_t real[KQ_MAX_LEVELS] = {0};
            for (int i = 0; i < 3; i++) {
                int64_t r, c;
                model_expert_matrix_shape(&md, i, &r, &c);
                float *w = heavy(r, c, 20 + (uint64_t)i);
                if (kq) {
                    kq_format f;
                    kq_format_preset(names[fi], &f);
                    kq_matrix *m;
                    kq_quantize(w, r, c, &f, 1, &m);
                    for (int k = 1; k <= K; k++) real[k - 1] += m->chunk_bytes[k - 1];
                    kq_matrix_free(m);
                } else {
                    mwq_config cfg;
                    mwq_config_default(&cfg);
                    mwq_config_preset(&cfg, names[fi]);
                    cfg.group = group;
                    cfg.search_steps = 0;
                    mwq_matrix *m;
                    mwq_matrix_quantize(w, r, c, &cfg, NULL, 0, &m);
                    for (int k = 1; k <= K; k++) real[k - 1] += m->chunk_bytes[k - 1];
                    mwq_matrix_free(m);
                }
                free(w);
            }
            int same = 1;
            for (int k = 1; k <= K; k++) {
                int64_t b = -1;
                same &= model_expert_format_level_bytes(&md, names[fi], k, group, &b) == D2_OK && b == real[k - 1];
            }
            ok(same, "%s, group %lld: model_expert_format_level_bytes = the quantizer's chunk bytes at every level", names[fi], (long long)group);
        }
    /* the .mwq container: one chunk per expert matrix and level, of the model's size */
    const char *path = "t_kq.tmp.mwq";
    for (int fi = 2; fi < 4; fi++) {
        kq_format f;
        kq_format_preset(names[fi], &f);
        mwqfile_writer *wr;
        mwqfile_writer_new(path, &wr);
        kq_matrix *ms[3];
        for (int i = 0; i < 3; i++) {
            int64_t r, c;
            model_expert_matrix_shape(&md, i, &r, &c);
            float *w = heavy(r, c, 30 + (uint64_t)i);
            kq_quantize(w, r, c, &f, 1, &ms[i]);
            char nm[16];
            snprintf(nm, sizeof nm, "w%d", i);
            mwqfile_writer_add_kq(wr, nm, ms[i]);
            free(w);
        }
        ok(mwqfile_writer_finish(wr) == D2_OK, "%s: .mwq written", names[fi]);
        mwqfile *mf;
        if (!ok(mwqfile_open(path, &mf) == D2_OK, "%s: .mwq reopened", names[fi])) continue;
        int same = 1;
        for (int k = 1; k <= f.levels; k++) {
            int64_t want, got = 0;
            model_expert_format_level_bytes(&md, names[fi], k, 0, &want);
            for (size_t i = 0; i < 3; i++) got += mwqfile_tensor_get(mf, i)->bytes[k - 1];
            same &= got == want;
        }
        ok(same, "%s: the file's chunk bytes per level = model_expert_format_level_bytes", names[fi]);
        const int64_t before = mwqfile_bytes_read(mf);
        kq_matrix *l2;
        int rc = mwqfile_load_kq(mf, 1, 2, &l2);
        ok(rc == D2_OK && mwqfile_bytes_read(mf) - before == l2->chunk_bytes[0] + l2->chunk_bytes[1] &&
               !memcmp(l2->chunk[0], ms[1]->chunk[0], (size_t)l2->chunk_bytes[0]) &&
               !memcmp(l2->chunk[1], ms[1]->chunk[1], (size_t)l2->chunk_bytes[1]),
           "%s: loading level 2 reads exactly chunks 1..2, equal to the quantized ones", names[fi]);
        mwq_matrix *wrong;
        ok(mwqfile_load(mf, 0, 1, &wrong) == D2_EINVAL, "%s: a k-quant tensor is refused by the v1/v2 loader", names[fi]);
        if (!rc) kq_matrix_free(l2);
        mwqfile_close(mf);
        for (int i = 0; i < 3; i++) kq_matrix_free(ms[i]);
    }
    remove(path);
    int64_t b;
    ok(model_expert_format_level_bytes(&md, "v3", 1, 128, &b) == D2_EINVAL, "unknown storage format refused");
    ok(model_expert_format_level_bytes(&md, "v1k", 4, 128, &b) == D2_EINVAL, "level 4 of v1k refused");
    md.expert_ffn = 1376;
    ok(model_expert_format_level_bytes(&md, "v1k", 1, 128, &b) == D2_EINVAL && strstr(d2_err_msg(), "multiple of 256"),
       "v1k with a 1376-wide matrix refused");
}

static int kq_same(const kq_matrix *a, const kq_matrix *b)
{
    if (!a || !b || a->fmt.levels != b->fmt.levels) return 0;
    for (int k = 0; k < a->fmt.levels; k++)
        if (a->chunk_bytes[k] != b->chunk_bytes[k] || memcmp(a->chunk[k], b->chunk[k], (size_t)a->chunk_bytes[k])) return 0;
    return 1;
}

/* The quantizer's plain, AVX2 and AVX-512 builds (one source on 8- and
 * 16-lane vector types, no fused multiply-add) give the same bytes at every
 * level: random Gaussian and heavy-tailed matrices, constant and zero
 * sub-blocks, several formats; 25 rows of 3 super-blocks, so the AVX-512
 * path's pairs span rows and the last super-block is alone.  A NaN: the same
 * error on every path. */
static void quantize_paths(const kq_format *f, const char *name)
{
    const int64_t rows = 25, cols = 768;
    gsl_rng *r = rng_new(21, 0);
    float *g = malloc((size_t)(rows * cols) * sizeof *g), *w[2] = {g, heavy(rows, cols, 22)};
    for (int64_t i = 0; i < rows * cols; i++) g[i] = (float)gsl_ran_gaussian(r, 0.5);
    for (int c = 0; c < 32; c++) { g[c] = 0; g[cols + 64 + c] = -0.25f; g[2 * cols + 96 + c] = 0.5f; } /* zero, negative and positive constant sub-blocks */
    gsl_rng_free(r);
    for (int in = 0; in < 2; in++) {
        kq_matrix *m[KQ_QAVX512 + 1] = {NULL};
        for (int p = KQ_QPLAIN; p <= KQ_QAVX512; p++)
            if (kq_qpath_set((kq_qpath)p) == (kq_qpath)p) kq_quantize(w[in], rows, cols, f, 4, &m[p]);
        for (int p = KQ_QAVX2; p <= KQ_QAVX512; p++) {
            if (!m[p]) { tap_skip(1, p == KQ_QAVX2 ? "no AVX2" : "no AVX-512"); continue; }
            ok(kq_same(m[KQ_QPLAIN], m[p]), "%s, %s matrix: the plain and %s quantizers write the same bytes at all %d levels", name,
               in ? "heavy-tailed" : "Gaussian", kq_qpath_name((kq_qpath)p), f->levels);
        }
        for (int p = KQ_QPLAIN; p <= KQ_QAVX512; p++) kq_matrix_free(m[p]);
    }
    /* the edges of the rounding and clamps, where the paths use different
     * instructions (rounding: a magic-number sum on the plain path, the
     * rounding instruction on AVX2 / AVX-512; masked sums on AVX-512):
     * -0 weights (mixed with +0, and a sub-block of -0 only), weights near
     * 1e30 and 3e6 (FP16 scales overflow to Inf, NaN and Inf inside the
     * search), and search_steps 31 (nmax + t/10 < 0: negative inverse
     * scales in the fit) as well as 4 */
    float *e = malloc((size_t)(rows * cols) * sizeof *e);
    memcpy(e, g, (size_t)(rows * cols) * sizeof *e);
    for (int c = 0; c < 32; c++) {
        e[3 * cols + c] = c % 3 == 0 ? -0.0f : c % 3 == 1 ? 0.0f : 1.0f;
        e[4 * cols + 32 + c] = -0.0f;
        e[5 * cols + 64 + c] = c % 4 == 0 ? 1e30f : c % 4 == 1 ? -1e30f : (float)c;
        e[6 * cols + 256 + c] *= 3e6f;
        e[7 * cols + 512 + c] = c % 2 ? -0.0f : e[7 * cols + 512 + c];
    }
    for (int T = 4; T <= 31; T += 27) {
        kq_matrix *m[KQ_QAVX512 + 1] = {NULL};
        for (int p = KQ_QPLAIN; p <= KQ_QAVX512; p++)
            if (kq_qpath_set((kq_qpath)p) == (kq_qpath)p) kq_quantize(e, rows, cols, f, T, &m[p]);
        for (int p = KQ_QAVX2; p <= KQ_QAVX512; p++) {
            if (!m[p]) { tap_skip(1, p == KQ_QAVX2 ? "no AVX2" : "no AVX-512"); continue; }
            ok(kq_same(m[KQ_QPLAIN], m[p]), "%s, -0, huge weights, search_steps %d: the plain and %s quantizers write the same bytes", name, T,
               kq_qpath_name((kq_qpath)p));
        }
        for (int p = KQ_QPLAIN; p <= KQ_QAVX512; p++) kq_matrix_free(m[p]);
    }
    free(e);
    /* a NaN in the super-block left alone (74) and in the second of a pair (3) */
    const int64_t at[2][2] = {{24, 600}, {1, 17}};
    for (int c = 0; c < 2; c++) {
        const float keep = g[at[c][0] * cols + at[c][1]];
        g[at[c][0] * cols + at[c][1]] = NAN;
        char want[64];
        snprintf(want, sizeof want, "(%lld, %lld)", (long long)at[c][0], (long long)at[c][1]);
        int same = 1, n = 0;
        for (int p = KQ_QPLAIN; p <= KQ_QAVX512; p++) {
            if (kq_qpath_set((kq_qpath)p) != (kq_qpath)p) continue;
            kq_matrix *m = NULL;
            same &= kq_quantize(g, rows, cols, f, 4, &m) == D2_EINVAL && !m && strstr(d2_err_msg(), want);
            n++;
        }
        ok(same, "%s: NaN at %s named by all %d quantizer paths", name, want, n);
        g[at[c][0] * cols + at[c][1]] = keep;
    }
    kq_impl_set(KQ_AUTO);
    free(w[0]);
    free(w[1]);
}


/* kq_quantize_threads: 37 rows (no even split for 2, 3 or 7), every level
 * byte-identical to one thread's; D2_FAIL_THREAD (core/par.h's test hook)
 * makes thread creation fail: the same bytes; a NaN: the same error */
static void threads(const char *preset)
{
    kq_format f;
    kq_format_preset(preset, &f);
    const int64_t rows = 37, cols = 768;
    float *w = heavy(rows, cols, 31);
    kq_matrix *m1 = NULL, *m0 = NULL;
    ok(kq_quantize_threads(w, rows, cols, &f, 4, 1, &m1) == D2_OK, "%s: 1 thread", preset);
    kq_quantize(w, rows, cols, &f, 4, &m0);
    ok(kq_same(m0, m1), "%s: kq_quantize = the threaded entry point with 1 thread", preset);
    kq_matrix_free(m0);
    const int ths[] = {2, 3, 7};
    for (int t = 0; t < 3; t++) {
        kq_matrix *mt = NULL;
        int rc = kq_quantize_threads(w, rows, cols, &f, 4, ths[t], &mt);
        ok(rc == D2_OK && kq_same(m1, mt), "%s %lld x %lld: %d threads write the same bytes at all %d levels", preset, (long long)rows,
           (long long)cols, ths[t], f.levels);
        kq_matrix_free(mt);
    }
    const char *fails[] = {"1", "2"};
    for (int i = 0; i < 2; i++) {
        setenv("D2_FAIL_THREAD", fails[i], 1);
        kq_matrix *mt = NULL;
        int rc = kq_quantize_threads(w, rows, cols, &f, 4, 3, &mt);
        ok(rc == D2_OK && kq_same(m1, mt), "%s, 3 threads with D2_FAIL_THREAD=%s (thread creation fails): the same bytes", preset, fails[i]);
        kq_matrix_free(mt);
        unsetenv("D2_FAIL_THREAD");
    }
    kq_matrix_free(m1);
    w[33 * cols + 700] = NAN;
    w[34 * cols + 3] = -INFINITY;
    kq_matrix *m = NULL;
    int rc1 = kq_quantize(w, rows, cols, &f, 4, &m);
    char want[1024];
    snprintf(want, sizeof want, "%s", d2_err_msg());
    ok(rc1 == D2_EINVAL && !m && strstr(want, "(33, 700)"), "%s: NaN named, 1 thread: %s", preset, want);
    for (int t = 0; t < 3; t++) {
        d2_err_clear();
        ok(kq_quantize_threads(w, rows, cols, &f, 4, ths[t], &m) == D2_EINVAL && !m && !strcmp(d2_err_msg(), want), "%s, %d threads: the same error",
           preset, ths[t]);
    }
    ok(kq_quantize_threads(w, rows, cols, &f, 4, 257, &m) == D2_ERANGE && !m, "%s: 257 threads refused", preset);
    free(w);
}

/* kq_matrix_scales_below on hand-set FP16 scales: 0x0001 (2^-24) and
 * 0x03ff are subnormal, 0x0400 (2^-14) is the smallest normal, 0 is zero;
 * below 0x0100 (2^-16) only the 2^-24 ones */
static void subnormal_scales(void)
{
    kq_format f;
    kq_format_preset("v2k", &f); /* d, then dmin */
    kq_matrix *m;
    ok(kq_matrix_new(&f, 2, 512, &m) == D2_OK, "v2k 2 x 512: 4 super-blocks");
    const int64_t sb = kq_super_bytes(&f, 1);
    is_int(kq_matrix_scales_below(m, KQ_F16_NORMAL_MIN), 0, "all scales zero: none subnormal");
    m->chunk[0][0 * sb + 0] = 0x01;                                   /* block 0: d = 2^-24 */
    m->chunk[0][1 * sb + 2] = 0xff; m->chunk[0][1 * sb + 3] = 0x03;   /* block 1: dmin = 0x03ff */
    m->chunk[0][2 * sb + 1] = 0x04;                                   /* block 2: d = 0x0400, normal */
    m->chunk[0][3 * sb + 0] = 0x01; m->chunk[0][3 * sb + 3] = 0x3c;   /* block 3: d subnormal, dmin 1.0 */
    is_int(kq_matrix_scales_below(m, KQ_F16_NORMAL_MIN), 3, "blocks 0, 1 and 3 have a subnormal d or dmin; block 2's 2^-14 is normal");
    is_int(kq_matrix_scales_below(m, 0x0100), 2, "below 2^-16: blocks 0 and 3 (2^-24), not block 1's 0x03ff");
    kq_matrix_free(m);
    kq_format_preset("v1k", &f); /* relative mins: d only; bytes 2..3 are codes */
    ok(kq_matrix_new(&f, 1, 256, &m) == D2_OK, "v1k 1 x 256");
    m->chunk[0][2] = 0x01;
    is_int(kq_matrix_scales_below(m, KQ_F16_NORMAL_MIN), 0, "v1k: the bytes after d are codes, not a dmin");
    m->chunk[0][0] = 0x01;
    is_int(kq_matrix_scales_below(m, KQ_F16_NORMAL_MIN), 1, "v1k: subnormal d");
    kq_matrix_free(m);
}

/* kq_underflow_check on the pattern tests/quant.sh quantizes (8 x 512,
 * a sin(0.7 i + 0.3) (1 + i mod 7)): at a = 3e-5 (max |w| about 2.1e-4 =
 * 0.86 x 2^-12, so scaled by 2^22 to about 880) v2k's subnormal scales
 * cost several times the scaled tensor's error; at a = 1 (max about 7 =
 * 0.87 x 2^3, scaled by 2^7) the scales are normal and the errors the same
 * (a power of two is exact in float and in FP16) */
static void underflow_check(void)
{
    const int64_t rows = 8, cols = 512, n = rows * cols;
    float *w = malloc((size_t)n * sizeof *w), *what = malloc((size_t)n * sizeof *what);
    kq_format f;
    kq_format_preset("v2k", &f);
    static const struct { double a; int shift; } cases[] = {{3e-5, 22}, {1, 7}};
    for (size_t c = 0; c < 2; c++) {
        for (int64_t i = 0; i < n; i++) w[i] = (float)(cases[c].a * sin((double)i * 0.7 + 0.3) * (double)(1 + i % 7));
        kq_matrix *m = NULL;
        double rel[KQ_MAX_LEVELS];
        int rc = kq_quantize_threads(w, rows, cols, &f, 4, 1, &m);
        for (int k = 1; k <= f.levels && !rc; k++) {
            for (int64_t r = 0; r < rows; r++) kq_row_dequant(m, k, r, what + r * cols);
            qerr_row e;
            rc = qerr_eval(w, what, rows, cols, NULL, 0, &e);
            rel[k - 1] = e.rel_err;
        }
        kq_matrix_free(m);
        kq_underflow u = {.worst = 0};
        if (!rc) rc = kq_underflow_check(w, rows, cols, &f, rel, what, 2, &u);
        is_int(rc, D2_OK, "a = %g: kq_underflow_check", cases[c].a);
        is_int(u.shift, cases[c].shift, "a = %g: scaled by 2^%d", cases[c].a, cases[c].shift);
        if (c == 0)
            ok(u.worst > 2 && u.level >= 1 && u.level <= f.levels && u.ref_err > 0 && fabs(rel[u.level - 1] / u.ref_err - u.worst) < 1e-12,
               "a = 3e-5: level %d %.3gx the scaled tensor's %.4g", u.level, u.worst, u.ref_err);
        else
            ok(u.worst == 1 && u.level == 0 && u.ref_err == 0, "a = 1: no level worse than scaled (%.6g, level %d)", u.worst, u.level);
    }
    free(w);
    free(what);
}

int main(void)
{
    hand_block();
    subnormal_scales();
    underflow_check();
    prefix_and_levels("v1k");
    prefix_and_levels("v2k");
    kq_format f;
    kq_format_preset("v1k", &f);
    kernels(&f, "v1k", 5, 256, 11);
    kernels(&f, "v1k", 3, 1024, 12);
    kq_format_preset("v2k", &f);
    kernels(&f, "v2k", 4, 512, 13);
    kq_format odd = {.base_bits = 7, .levels = 2, .scale_bits = 8, .min_bits = 3, .min_rel = 0, .resid = KQ_TIED};
    kernels(&odd, "b1 7 (4+2+1 slices), scale/min 8/3, tied", 3, 768, 14);
    kq_format oddb = {.base_bits = 3, .levels = 4, .scale_bits = 8, .min_bits = 8, .min_rel = 1, .resid = KQ_BUCKET};
    kernels(&oddb, "b1 3 (2+1 slices), scale/min 8/8 relative, bucket, 4 levels", 3, 512, 16);
    kq_format one = {.base_bits = 1, .levels = 8, .scale_bits = 2, .min_bits = 1, .min_rel = 1, .resid = KQ_BUCKET};
    kernels(&one, "b1 1, 8 levels, bucket", 2, 256, 15);
    kq_format_preset("v1k", &f);
    kernels_extreme(&f, "v1k, random bytes, |xq| = 127", 4, 1024, 21);
    /* the mat-vec's row pairs: one row (no pair), two (one pair), an odd
     * last row, rows near the end where no rows are prefetched, one
     * super-block per row */
    const int64_t vrows[] = {1, 2, 3, 6, 7, 9};
    for (size_t i = 0; i < sizeof vrows / sizeof *vrows; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "v1k, %lld rows", (long long)vrows[i]);
        kernels(&f, nm, vrows[i], i % 2 ? 256 : 512, 40 + i);
        snprintf(nm, sizeof nm, "v1k, random bytes, %lld rows", (long long)vrows[i]);
        kernels_extreme(&f, nm, vrows[i], i % 2 ? 512 : 256, 50 + i);
    }
    kq_format_preset("v2k", &f);
    kernels_extreme(&f, "v2k, random bytes, |xq| = 127", 4, 1024, 22);
    kernels_extreme(&odd, "b1 7 tied, random bytes, |xq| = 127", 3, 512, 23);
    kernels_extreme(&oddb, "b1 3 bucket, random bytes, |xq| = 127", 3, 512, 24);
    kq_format tied_rel = {.base_bits = 4, .levels = 5, .scale_bits = 8, .min_bits = 7, .min_rel = 1, .resid = KQ_TIED};
    kernels_extreme(&tied_rel, "b1 4, 5 levels tied, scale/min 8/7 relative, random bytes, |xq| = 127", 3, 512, 25);
    kq_format_preset("v1k", &f);
    quantize_paths(&f, "v1k");
    kq_format_preset("v2k", &f);
    quantize_paths(&f, "v2k");
    quantize_paths(&oddb, "b1 3 bucket, 4 levels");
    quantize_paths(&one, "b1 1, 8 levels, bucket");
    threads("v1k");
    threads("v2k");
    refusals();
    format_sizes();
    return tap_done();
}
