/* t_eval.c - the llama2.c forward pass and the measured-accuracy evaluation:
 *  - closed-form logits of hand-built checkpoints (written here byte by byte
 *    in llama2.c's layout, not by the library's writer);
 *  - every position's logits of a small random checkpoint against a naive
 *    double-precision forward pass written here from llama2.c's run.c
 *    (RoPE on pairs (2i, 2i+1) with theta = pos / 10000^(2i/head_size),
 *    grouped-query heads h -> h / (n_heads / n_kv_heads));
 *  - invariants: KL >= 0, KL = 0 and top-1 = 1 for the FP32 FFN, KL falls as
 *    MWQ levels are added (synthetic model; the real stories260K with
 *    $D2_SHARED, SKIP without it), same seed same bytes;
 *  - Spearman known answers, capacity parsing, bad checkpoints. */
#include "core/err.h"
#include "core/rng.h"
#include "eval/evalq.h"
#include "eval/ffnq.h"
#include "eval/llm.h"
#include "quant/synth.h"
#include "tap.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

/* ---- an independent llama2.c writer and naive forward pass ----------------- */
typedef struct tm {
    int dim, hid, L, nh, nkv, V, S;
    double *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_f; /* all layers concatenated */
} tm;

static void tm_alloc(tm *m)
{
    int kv = m->dim * m->nkv / m->nh;
    m->emb = calloc((size_t)(m->V * m->dim), sizeof(double));
    m->rms_att = calloc((size_t)(m->L * m->dim), sizeof(double));
    m->wq = calloc((size_t)(m->L * m->dim * m->dim), sizeof(double));
    m->wk = calloc((size_t)(m->L * kv * m->dim), sizeof(double));
    m->wv = calloc((size_t)(m->L * kv * m->dim), sizeof(double));
    m->wo = calloc((size_t)(m->L * m->dim * m->dim), sizeof(double));
    m->rms_ffn = calloc((size_t)(m->L * m->dim), sizeof(double));
    m->w1 = calloc((size_t)(m->L * m->hid * m->dim), sizeof(double));
    m->w2 = calloc((size_t)(m->L * m->dim * m->hid), sizeof(double));
    m->w3 = calloc((size_t)(m->L * m->hid * m->dim), sizeof(double));
    m->rms_f = calloc((size_t)m->dim, sizeof(double));
}

static void tm_free(tm *m)
{
    free(m->emb); free(m->rms_att); free(m->wq); free(m->wk); free(m->wv); free(m->wo);
    free(m->rms_ffn); free(m->w1); free(m->w2); free(m->w3); free(m->rms_f);
}

static void wr(FILE *f, const double *a, long n)
{
    for (long i = 0; i < n; i++) { float v = (float)a[i]; fwrite(&v, 4, 1, f); }
}

/* header, tensors in run.c's memory_map_weights order, freq_cis (zeros: run.c
 * does not read them) */
static void tm_write(const tm *m, const char *path)
{
    FILE *f = fopen(path, "wb");
    int kv = m->dim * m->nkv / m->nh, hs = m->dim / m->nh;
    int32_t h[7] = {m->dim, m->hid, m->L, m->nh, m->nkv, m->V, m->S};
    fwrite(h, 4, 7, f);
    wr(f, m->emb, (long)m->V * m->dim);
    wr(f, m->rms_att, (long)m->L * m->dim);
    wr(f, m->wq, (long)m->L * m->dim * m->dim);
    wr(f, m->wk, (long)m->L * kv * m->dim);
    wr(f, m->wv, (long)m->L * kv * m->dim);
    wr(f, m->wo, (long)m->L * m->dim * m->dim);
    wr(f, m->rms_ffn, (long)m->L * m->dim);
    wr(f, m->w1, (long)m->L * m->hid * m->dim);
    wr(f, m->w2, (long)m->L * m->dim * m->hid);
    wr(f, m->w3, (long)m->L * m->hid * m->dim);
    wr(f, m->rms_f, m->dim);
    float z = 0;
    for (long i = 0; i < (long)m->S * hs; i++) fwrite(&z, 4, 1, f);
    fclose(f);
}

/* Naive forward of one sequence toks[0..P) in double; logits of the last
 * position into out[V].  Weights are the float-rounded values. */
static void tm_forward(const tm *m, const int *toks, int P, double *out)
{
    const int D = m->dim, H = m->hid, hs = D / m->nh, kv = D * m->nkv / m->nh, grp = m->nh / m->nkv;
#define F(x) ((double)(float)(x))
    double *x = calloc((size_t)(P * D), sizeof(double)), *K = calloc((size_t)(P * kv), sizeof(double)),
           *Vv = calloc((size_t)(P * kv), sizeof(double)), xn[256], q[256], o[256], hb[256];
    for (int p = 0; p < P; p++)
        for (int d = 0; d < D; d++) x[p * D + d] = F(m->emb[toks[p] * D + d]);
    for (int l = 0; l < m->L; l++) {
        double *Q = calloc((size_t)(P * D), sizeof(double));
        for (int p = 0; p < P; p++) {
            double ss = 0;
            for (int d = 0; d < D; d++) ss += x[p * D + d] * x[p * D + d];
            double s = 1 / sqrt(ss / D + 1e-5);
            for (int d = 0; d < D; d++) xn[d] = F(m->rms_att[l * D + d]) * s * x[p * D + d];
            for (int r = 0; r < D; r++) { q[r] = 0; for (int c = 0; c < D; c++) q[r] += F(m->wq[(l * D + r) * D + c]) * xn[c]; }
            for (int r = 0; r < kv; r++) {
                K[p * kv + r] = Vv[p * kv + r] = 0;
                for (int c = 0; c < D; c++) {
                    K[p * kv + r] += F(m->wk[(l * kv + r) * D + c]) * xn[c];
                    Vv[p * kv + r] += F(m->wv[(l * kv + r) * D + c]) * xn[c];
                }
            }
            /* RoPE: pair (2i, 2i+1) within a head, theta = p / 10000^(2i / hs) */
            for (int hh = 0; hh < m->nh; hh++)
                for (int i = 0; i < hs / 2; i++) {
                    double th = p / pow(10000.0, 2.0 * i / hs), c = cos(th), s2 = sin(th);
                    double *a = q + hh * hs + 2 * i, a0 = a[0], a1 = a[1];
                    a[0] = a0 * c - a1 * s2; a[1] = a0 * s2 + a1 * c;
                    if (hh < m->nkv) {
                        double *b = K + p * kv + hh * hs + 2 * i, b0 = b[0], b1 = b[1];
                        b[0] = b0 * c - b1 * s2; b[1] = b0 * s2 + b1 * c;
                    }
                }
            memcpy(Q + p * D, q, (size_t)D * sizeof(double));
        }
        double *x2 = calloc((size_t)(P * D), sizeof(double));
        for (int p = 0; p < P; p++) {
            for (int hh = 0; hh < m->nh; hh++) {
                int kh = hh / grp;
                double sc[64], mx = -1e300, z = 0;
                for (int t = 0; t <= p; t++) {
                    sc[t] = 0;
                    for (int j = 0; j < hs; j++) sc[t] += Q[p * D + hh * hs + j] * K[t * kv + kh * hs + j];
                    sc[t] /= sqrt((double)hs);
                    if (sc[t] > mx) mx = sc[t];
                }
                for (int t = 0; t <= p; t++) { sc[t] = exp(sc[t] - mx); z += sc[t]; }
                for (int j = 0; j < hs; j++) {
                    o[hh * hs + j] = 0;
                    for (int t = 0; t <= p; t++) o[hh * hs + j] += sc[t] / z * Vv[t * kv + kh * hs + j];
                }
            }
            for (int r = 0; r < D; r++) { double s = 0; for (int c = 0; c < D; c++) s += F(m->wo[(l * D + r) * D + c]) * o[c]; x2[p * D + r] = x[p * D + r] + s; }
            double ss = 0;
            for (int d = 0; d < D; d++) ss += x2[p * D + d] * x2[p * D + d];
            double s = 1 / sqrt(ss / D + 1e-5);
            for (int d = 0; d < D; d++) xn[d] = F(m->rms_ffn[l * D + d]) * s * x2[p * D + d];
            for (int r = 0; r < H; r++) {
                double a = 0, b = 0;
                for (int c = 0; c < D; c++) { a += F(m->w1[(l * H + r) * D + c]) * xn[c]; b += F(m->w3[(l * H + r) * D + c]) * xn[c]; }
                hb[r] = a / (1 + exp(-a)) * b;
            }
            for (int r = 0; r < D; r++) { double s3 = 0; for (int c = 0; c < H; c++) s3 += F(m->w2[(l * D + r) * H + c]) * hb[c]; x2[p * D + r] += s3; }
        }
        memcpy(x, x2, (size_t)(P * D) * sizeof(double));
        free(x2);
        free(Q);
    }
    double ss = 0;
    for (int d = 0; d < D; d++) ss += x[(P - 1) * D + d] * x[(P - 1) * D + d];
    double s = 1 / sqrt(ss / D + 1e-5);
    for (int d = 0; d < D; d++) xn[d] = F(m->rms_f[d]) * s * x[(P - 1) * D + d];
    for (int v = 0; v < m->V; v++) { out[v] = 0; for (int d = 0; d < D; d++) out[v] += F(m->emb[v * D + d]) * xn[d]; }
#undef F
    free(x); free(K); free(Vv);
}

static void path_in_tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

/* ---- closed forms ---------------------------------------------------------- */
static void test_closed_form(void)
{
    /* dim 4, hidden 2, 1 layer, 2 heads / 1 kv head, vocab 3.  Attention wo = 0
     * and FFN = 0: logits[v] = e_v . (g * e_t / sqrt(mean(e_t^2) + 1e-5)).
     * Input token 1, e_1 = (0, 2, 0, 0), gains 1: xn = (0, 2/sqrt(1.00001), 0, 0);
     * e_0 = (1,0,0,0), e_2 = (1,1,1,1): logits = (0, 4/sqrt(1.00001), 2/sqrt(1.00001)). */
    tm m = {.dim = 4, .hid = 2, .L = 1, .nh = 2, .nkv = 1, .V = 3, .S = 4};
    tm_alloc(&m);
    double e[12] = {1, 0, 0, 0, 0, 2, 0, 0, 1, 1, 1, 1};
    memcpy(m.emb, e, sizeof e);
    for (int d = 0; d < 4; d++) m.rms_att[d] = m.rms_ffn[d] = m.rms_f[d] = 1;
    for (int i = 0; i < 16; i++) m.wq[i] = 0.1 * (i + 1); /* no effect: wo = 0 */
    char p[512];
    path_in_tmp(p, sizeof p, "closed.bin");
    tm_write(&m, p);
    llm_model *lm;
    if (!ok(llm_model_load(p, &lm) == D2_OK, "hand-built checkpoint loads: %s", d2_err_msg())) { tm_free(&m); return; }
    const llm_config *c = llm_model_config(lm);
    ok(c->dim == 4 && c->hidden_dim == 2 && c->n_layers == 1 && c->n_heads == 2 && c->n_kv_heads == 1 && c->vocab_size == 3 &&
           c->seq_len == 4 && c->shared_cls == 1,
       "header read: dim 4, hidden 2, 1 layer, 2/1 heads, vocab 3, seq 4, shared classifier");
    llm_batch *b;
    llm_batch_new(lm, 1, 4, &b);
    float lg[3];
    int32_t t = 1;
    llm_batch_step(lm, b, &t, 0, NULL, NULL, lg);
    const double a = 2 / sqrt(1.00001);
    is_near(lg[0], 0, 1e-6, "closed form, attention and FFN off: logit 0 = 0");
    is_near(lg[1], 2 * a, 1e-5, "logit 1 = 4/sqrt(1.00001)");
    is_near(lg[2], a, 1e-5, "logit 2 = 2/sqrt(1.00001)");
    llm_batch_free(b);
    llm_model_free(lm);

    /* Now the FFN alone: w1 = w3 = e_1^T in row 0, w2 column 0 -> dim 1.  The
     * FFN adds silu(a) * a to x_1 = 2: b = 2 + a^2 / (1 + e^-a); then
     * logits = e_v . xn_final, xn_final_1 = b / sqrt(b^2/4 + 1e-5). */
    m.w1[0 * 4 + 1] = 1;
    m.w3[0 * 4 + 1] = 1;
    m.w2[1 * 2 + 0] = 1;
    tm_write(&m, p);
    if (!ok(llm_model_load(p, &lm) == D2_OK, "FFN checkpoint loads")) { tm_free(&m); return; }
    llm_batch_new(lm, 1, 4, &b);
    llm_batch_step(lm, b, &t, 0, NULL, NULL, lg);
    const double bb = 2 + a * a / (1 + exp(-a)), xf = bb / sqrt(bb * bb / 4 + 1e-5);
    is_near(lg[1], 2 * xf, 1e-5, "closed form, SwiGLU FFN: logit 1 = 2 b / sqrt(b^2/4 + 1e-5), b = 2 + silu(a) a");
    is_near(lg[2], xf, 1e-5, "logit 2 = b / sqrt(b^2/4 + 1e-5)");
    /* the hook gets the same FFN input and gives the same result through llm_ffn */
    llm_batch_free(b);
    llm_model_free(lm);

    /* Attention at position 0 attends only to itself: wv copies dims 0,1 of
     * xn into the kv head (shared by both query heads, GQA), wo row 2 <- o_0
     * (head 0), row 3 <- o_2 (head 1's copy of the same v_0).  Token 2:
     * xn = (1,1,1,1)/sqrt(1.00001) = u each; after attention x = (1,1,1+u,1+u). */
    memset(m.w1, 0, 8 * sizeof(double)); memset(m.w2, 0, 8 * sizeof(double)); memset(m.w3, 0, 8 * sizeof(double));
    m.wv[0 * 4 + 0] = 1; m.wv[1 * 4 + 1] = 1;
    m.wo[2 * 4 + 0] = 1; m.wo[3 * 4 + 2] = 1;
    tm_write(&m, p);
    if (!ok(llm_model_load(p, &lm) == D2_OK, "attention checkpoint loads")) { tm_free(&m); return; }
    llm_batch_new(lm, 1, 4, &b);
    t = 2;
    llm_batch_step(lm, b, &t, 0, NULL, NULL, lg);
    const double u = 1 / sqrt(1.00001), x2 = 1 + u, r = sqrt((2 + 2 * x2 * x2) / 4 + 1e-5);
    is_near(lg[0], 1 / r, 1e-5, "closed form, attention at pos 0 (GQA: both heads read kv head 0): logit 0 = 1/r");
    is_near(lg[2], (2 + 2 * x2) / r, 1e-5, "logit 2 = (2 + 2(1+u))/r");
    llm_batch_free(b);
    llm_model_free(lm);
    tm_free(&m);
}

/* ---- against the naive forward pass, every position ------------------------ */
static void test_naive(void)
{
    tm m = {.dim = 8, .hid = 12, .L = 2, .nh = 2, .nkv = 1, .V = 11, .S = 8};
    tm_alloc(&m);
    gsl_rng *r = rng_new(5, 1);
    int kv = m.dim * m.nkv / m.nh;
    for (int i = 0; i < m.V * m.dim; i++) m.emb[i] = gsl_ran_gaussian(r, 0.5);
    for (int i = 0; i < m.L * m.dim; i++) { m.rms_att[i] = 1 + gsl_ran_flat(r, -0.2, 0.2); m.rms_ffn[i] = 1 + gsl_ran_flat(r, -0.2, 0.2); }
    for (int i = 0; i < m.L * m.dim * m.dim; i++) { m.wq[i] = gsl_ran_gaussian(r, 0.6); m.wo[i] = gsl_ran_gaussian(r, 0.3); }
    for (int i = 0; i < m.L * kv * m.dim; i++) { m.wk[i] = gsl_ran_gaussian(r, 0.6); m.wv[i] = gsl_ran_gaussian(r, 0.4); }
    for (int i = 0; i < m.L * m.hid * m.dim; i++) { m.w1[i] = gsl_ran_gaussian(r, 0.4); m.w2[i] = gsl_ran_gaussian(r, 0.3); m.w3[i] = gsl_ran_gaussian(r, 0.4); }
    for (int i = 0; i < m.dim; i++) m.rms_f[i] = 1 + gsl_ran_flat(r, -0.2, 0.2);
    gsl_rng_free(r);
    char p[512];
    path_in_tmp(p, sizeof p, "naive.bin");
    tm_write(&m, p);
    llm_model *lm;
    if (!ok(llm_model_load(p, &lm) == D2_OK, "random checkpoint (head size 4: RoPE frequencies 1 and 1/100) loads")) { tm_free(&m); return; }
    const int toks[8] = {1, 4, 9, 2, 2, 7, 0, 10};
    llm_batch *b;
    llm_batch_new(lm, 1, 8, &b);
    double worst = 0, ref[16];
    float lg[16];
    for (int pos = 0; pos < 8; pos++) {
        int32_t t = toks[pos];
        llm_batch_step(lm, b, &t, pos, NULL, NULL, lg);
        tm_forward(&m, toks, pos + 1, ref);
        for (int v = 0; v < m.V; v++) {
            double d = fabs(lg[v] - ref[v]) / (1 + fabs(ref[v]));
            if (d > worst) worst = d;
        }
    }
    ok(worst < 2e-5, "8 positions x 11 logits match the naive double forward pass (RoPE pairs, GQA, SwiGLU): worst rel diff %.2g", worst);
    llm_batch_free(b);
    llm_model_free(lm);
    tm_free(&m);
}

/* ---- matmul paths ------------------------------------------------------------- */
static void test_matmul(void)
{
    gsl_rng *r = rng_new(9, 2);
    float w[37 * 70], x[3 * 70], ya[3 * 37], yb[3 * 37];
    for (int i = 0; i < 37 * 70; i++) w[i] = (float)gsl_ran_gaussian(r, 1);
    for (int i = 0; i < 3 * 70; i++) x[i] = (float)gsl_ran_gaussian(r, 1);
    gsl_rng_free(r);
    llm_force_scalar(1);
    llm_matmul(ya, x, w, 3, 70, 37);
    llm_force_scalar(0);
    llm_matmul(yb, x, w, 3, 70, 37);
    ok(memcmp(ya, yb, sizeof ya) == 0, "matmul: the vector path gives the scalar path's bytes (70 columns: 8 full lanes + tail)");
    double worst = 0;
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < 37; o++) {
            double s = 0;
            for (int c = 0; c < 70; c++) s += (double)w[o * 70 + c] * x[i * 70 + c];
            if (fabs(s - ya[i * 37 + o]) > worst) worst = fabs(s - ya[i * 37 + o]);
        }
    ok(worst < 1e-4, "matmul = double reference within 1e-4 (got %.2g)", worst);
}

/* ---- evaluation invariants on a synthetic checkpoint -------------------------- */
typedef struct fp32_hook { const llm_model *m; float *scr; } fp32_hook;
static int hook_fp32(void *user, const llm_ffn_step *s)
{
    fp32_hook *h = user;
    llm_ffn(llm_model_ffn(h->m, s->layer, 0), llm_model_ffn(h->m, s->layer, 1), llm_model_ffn(h->m, s->layer, 2), s->dim, s->hidden, s->xn,
            s->n, h->scr, s->out);
    return D2_OK;
}

static void check_levels(const llm_model *lm, const evalq_ref *ref, const char *what)
{
    size_t nrows;
    const evalq_row *rows = evalq_rows(&nrows);
    int all_nonneg = 1, n_checked = 0;
    for (size_t i = 0; i < nrows; i++) {
        if (rows[i].bitroute && strcmp(rows[i].bitroute, "capacity")) continue;
        evalq_result res[KERN_MAX_LEVELS];
        size_t n;
        if (!ok(evalq_row_run(lm, ref, &rows[i], 1, EVALQ_PATH_DEQUANT, res, &n) == D2_OK, "%s: %s/%s/%s runs", what, rows[i].preset, rows[i].method,
                rows[i].bitroute ? rows[i].bitroute : "uniform"))
            continue;
        for (size_t k = 0; k < n; k++) all_nonneg &= res[k].m.kl >= 0 && res[k].m.top1 >= 0 && res[k].m.top1 <= 1;
        n_checked += (int)n;
        if (!rows[i].bitroute && !strcmp(rows[i].method, "mwq")) {
            int falls = 1;
            for (size_t k = 1; k < n; k++) falls &= res[k].m.kl < res[k - 1].m.kl;
            ok(falls, "%s: KL falls as MWQ levels are added (%s: %.4g ... %.4g nats)", what, rows[i].preset, res[0].m.kl, res[n - 1].m.kl);
        }
        if (rows[i].bitroute) {
            double s = 0;
            for (int k = 0; k < res[0].levels; k++) s += res[0].share[k];
            is_near(s, 1, 1e-12, "%s: %s capacity mix: level shares sum to 1", what, rows[i].preset);
        }
    }
    ok(all_nonneg && n_checked > 0, "%s: KL >= 0 and top-1 in [0, 1] for all %d configurations", what, n_checked);
}

static void test_eval_synthetic(void)
{
    char p[512];
    path_in_tmp(p, sizeof p, "synth.bin");
    llm_config c = {.dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 64, .seq_len = 32, .shared_cls = 1};
    if (!ok(llm_synth_write(p, &c, 3) == D2_OK, "synthetic checkpoint written")) return;
    llm_model *lm;
    if (!ok(llm_model_load(p, &lm) == D2_OK, "synthetic checkpoint reads back through the llama2.c reader")) return;
    evalq_opts o = {.seqs = 6, .len = 16, .seed = 11};
    evalq_ref *ref, *ref2, *ref3;
    ok(evalq_ref_sample(lm, &o, &ref) == D2_OK, "reference sampled");
    ok(evalq_ref_sample(lm, &o, &ref2) == D2_OK, "reference sampled again");
    int same = 1;
    for (int i = 0; i < 6; i++) same &= memcmp(evalq_ref_tokens(ref, i), evalq_ref_tokens(ref2, i), 17 * sizeof(int32_t)) == 0;
    ok(same && evalq_ref_ppl(ref) == evalq_ref_ppl(ref2), "same seed: same tokens and the same reference ppl bytes");
    o.seed = 12;
    evalq_ref_sample(lm, &o, &ref3);
    int differ = 0;
    for (int i = 0; i < 6; i++) differ |= memcmp(evalq_ref_tokens(ref, i), evalq_ref_tokens(ref3, i), 17 * sizeof(int32_t)) != 0;
    ok(differ, "another seed: other tokens");
    ok(evalq_ref_tokens(ref, 0)[0] == EVALQ_BOS, "sequences start with BOS (1)");
    evalq_ref_free(ref2);
    evalq_ref_free(ref3);

    float *scr = malloc((size_t)(2 * 6 * c.hidden_dim) * sizeof(float));
    fp32_hook h = {lm, scr};
    evalq_metrics mm;
    ok(evalq_measure(lm, ref, hook_fp32, &h, &mm) == D2_OK, "FP32 FFN through the hook runs");
    ok(mm.kl == 0 && mm.top1 == 1 && mm.positions == 96, "a configuration equal to FP32: KL exactly 0, top-1 agreement 1 (96 positions)");
    is_near(mm.ppl, evalq_ref_ppl(ref), 1e-9 * evalq_ref_ppl(ref), "its ppl is the reference's");
    free(scr);

    /* same seed, same bytes: a routed row twice */
    size_t nrows, n1, n2;
    const evalq_row *rows = evalq_rows(&nrows);
    const evalq_row *cap = NULL;
    for (size_t i = 0; i < nrows; i++) if (rows[i].bitroute && !strcmp(rows[i].bitroute, "capacity")) { cap = &rows[i]; break; }
    evalq_result a[KERN_MAX_LEVELS], b[KERN_MAX_LEVELS];
    evalq_row_run(lm, ref, cap, 5, EVALQ_PATH_DEQUANT, a, &n1);
    evalq_row_run(lm, ref, cap, 5, EVALQ_PATH_DEQUANT, b, &n2);
    ok(n1 == 1 && n2 == 1 && memcmp(&a[0].m, &b[0].m, sizeof a[0].m) == 0 && memcmp(a[0].share, b[0].share, sizeof a[0].share) == 0,
       "capacity routing, same seed: same KL, top-1, ppl and level shares bytes");
    is_near(a[0].share[0], 0.3, 0.05, "capacity 0.3/0.4/0.3 over 6-token steps: level-1 share ~0.3 (largest remainder: 2 of 6)");
    check_levels(lm, ref, "synthetic");

    /* the kernel path: MWQ rows through kern_matmul (int8 activations),
     * baselines dequantized; KL still falls with the levels */
    evalq_result kr[KERN_MAX_LEVELS], dr[KERN_MAX_LEVELS];
    size_t nk, nd;
    const evalq_row *v2 = NULL, *rt = NULL;
    for (size_t i = 0; i < nrows; i++) {
        if (!rows[i].bitroute && !strcmp(rows[i].preset, "v2") && !strcmp(rows[i].method, "mwq")) v2 = &rows[i];
        if (!rows[i].bitroute && !strcmp(rows[i].preset, "v1") && !strcmp(rows[i].method, "rtn-int")) rt = &rows[i];
    }
    ok(evalq_row_run(lm, ref, v2, 1, EVALQ_PATH_KERNEL, kr, &nk) == D2_OK && nk == 4 && kr[0].kernel == 1, "kernel path: v2 mwq runs through kern_matmul");
    int falls = 1, differs = 0;
    evalq_row_run(lm, ref, v2, 1, EVALQ_PATH_DEQUANT, dr, &nd);
    for (size_t k = 0; k < nk; k++) {
        falls &= kr[k].m.kl >= 0 && (k == 0 || kr[k].m.kl < kr[k - 1].m.kl);
        differs |= kr[k].m.kl != dr[k].m.kl;
    }
    ok(falls, "kernel path: KL >= 0 and falls with the levels (%.4g ... %.4g)", kr[0].m.kl, kr[nk - 1].m.kl);
    ok(differs && dr[0].kernel == 0, "kernel path differs from dequant (int8 activations), dequant is flagged as such");
    ok(evalq_row_run(lm, ref, rt, 1, EVALQ_PATH_KERNEL, kr, &nk) == D2_OK && kr[0].kernel == 0, "kernel path: rtn-int (no kernel format) is dequantized and says so");
    evalq_ref_free(ref);
    llm_model_free(lm);
}

static void test_real(void)
{
    const char *sh = getenv("D2_SHARED");
    char p[4200];
    snprintf(p, sizeof p, "%s/data/weights/stories260K.bin", sh ? sh : "../shared");
    if (access(p, R_OK) != 0) { tap_skip(1, "stories260K.bin not found under $D2_SHARED/data/weights"); return; }
    llm_model *lm;
    if (!ok(llm_model_load(p, &lm) == D2_OK, "stories260K loads: %s", d2_err_msg())) return;
    evalq_opts o = {.seqs = 8, .len = 32, .seed = 1};
    evalq_ref *ref;
    if (ok(evalq_ref_sample(lm, &o, &ref) == D2_OK, "stories260K: reference sampled")) {
        tap_diag("stories260K reference ppl %.3f on 8 x 32 sampled tokens", evalq_ref_ppl(ref));
        check_levels(lm, ref, "stories260K");
        evalq_ref_free(ref);
    }
    llm_model_free(lm);
}

static void test_spearman_caps(void)
{
    double x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 30, 40}, yr[4] = {4, 3, 2, 1}, rho;
    size_t n;
    evalq_spearman(x, y, 4, &rho, &n);
    ok(rho == 1 && n == 4, "spearman: same order = 1");
    evalq_spearman(x, yr, 4, &rho, &n);
    ok(rho == -1, "spearman: reversed = -1");
    /* ties: ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): 4.5 / sqrt(4.5 * 5), by hand */
    double xt[4] = {1, 2, 2, 3}, yt[4] = {1, 3, 2, 4};
    evalq_spearman(xt, yt, 4, &rho, &n);
    is_near(rho, 4.5 / sqrt(22.5), 1e-12, "spearman with a tie (average ranks) = 0.9487");
    double xn[5] = {1, NAN, 2, 3, 4}, yn[5] = {1, 100, 2, 3, 4};
    evalq_spearman(xn, yn, 5, &rho, &n);
    ok(rho == 1 && n == 4, "spearman: NaN pairs left out");
}

static void test_bad(void)
{
    char p[512];
    path_in_tmp(p, sizeof p, "bad.bin");
    llm_model *lm;
    FILE *f = fopen(p, "wb");
    int32_t h[7] = {6, 8, 1, 4, 2, 5, 4};
    fwrite(h, 4, 7, f);
    fclose(f);
    ok(llm_model_load(p, &lm) == D2_EFORMAT && strstr(d2_err_msg(), "n_heads"), "dim 6 with 4 heads refused, naming n_heads: %s", d2_err_msg());
    f = fopen(p, "wb");
    int32_t h2[7] = {8, 8, 1, 2, 2, 5, 4};
    fwrite(h2, 4, 7, f);
    float z[10] = {0};
    fwrite(z, 4, 10, f);
    fclose(f);
    ok(llm_model_load(p, &lm) == D2_EFORMAT && strstr(d2_err_msg(), "truncated"), "truncated checkpoint refused: %s", d2_err_msg());
    f = fopen(p, "wb");
    fwrite(h2, 4, 3, f);
    fclose(f);
    ok(llm_model_load(p, &lm) == D2_EFORMAT && strstr(d2_err_msg(), "header"), "12-byte file: header refused: %s", d2_err_msg());
    ok(llm_model_load("/dev/zero", &lm) == D2_EINVAL && strstr(d2_err_msg(), "/dev/zero: not a regular file"), "/dev/zero: refused as not a regular file, no hang: %s", d2_err_msg());
}

/* issue 13: the synthetic weight writers refuse an output path that is a
 * FIFO or a symlink (exit 2 in the CLI) and leave it as it was */
static void test_synth_outputs(void)
{
    char fifo[512], link[512], target[512], tmpf[600];
    path_in_tmp(fifo, sizeof fifo, "out.fifo");
    path_in_tmp(link, sizeof link, "out.link");
    path_in_tmp(target, sizeof target, "out.target");
    FILE *f = fopen(target, "w");
    if (f) { fputs("keep", f); fclose(f); }
    ok(mkfifo(fifo, 0600) == 0 && symlink(target, link) == 0, "a FIFO and a symlink to write over");
    float w[4] = {1, 2, 3, 4};
    llm_config c = {.dim = 32, .hidden_dim = 48, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 64, .seq_len = 32, .shared_cls = 1};
    const char *paths[2] = {fifo, link};
    for (int i = 0; i < 2; i++) {
        int rc = synth_npy_write(paths[i], w, 2, 2);
        ok(rc == D2_EINVAL && strstr(d2_err_msg(), "output path exists"), "synth_npy_write over a %s: %s", i ? "symlink" : "FIFO", d2_err_msg());
        rc = llm_synth_write(paths[i], &c, 1);
        ok(rc == D2_EINVAL && strstr(d2_err_msg(), "output path exists"), "llm_synth_write over a %s: %s", i ? "symlink" : "FIFO", d2_err_msg());
        snprintf(tmpf, sizeof tmpf, "%s.tmp", paths[i]);
        ok(access(tmpf, F_OK) != 0, "no %s.tmp left", i ? "symlink" : "FIFO");
    }
    struct stat st;
    char buf[8] = "";
    f = fopen(target, "r");
    if (f) { if (!fgets(buf, sizeof buf, f)) buf[0] = 0; fclose(f); }
    ok(stat(fifo, &st) == 0 && S_ISFIFO(st.st_mode) && lstat(link, &st) == 0 && S_ISLNK(st.st_mode) && !strcmp(buf, "keep"),
       "the FIFO, the symlink and its target untouched");
}

int main(void)
{
    gsl_set_error_handler_off();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_eval.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_closed_form();
    test_naive();
    test_matmul();
    test_spearman_caps();
    test_bad();
    test_eval_synthetic();
    test_synth_outputs();
    test_real();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) {}
    return tap_done();
}
