/* llm.c - the llama2.c forward pass (see llm.h).  Each step mirrors run.c's
 * forward(): the equations are quoted above the code that computes them.
 * Sums of squares (RMSNorm) and the softmax normaliser are taken in double;
 * the matmuls in float with 8 partial sums (llm_matmul). */
#include "config.h"
#include "eval/llm.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "quant/weights.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(HAVE_IMMINTRIN_H) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define LLM_X86 1
#endif

struct llm_model {
    llm_config c;
    float *tok;             /* [vocab*dim] token embedding (row = token) */
    float *rms_att, *rms_ffn; /* [L*dim] RMSNorm gains */
    float **wq, **wk, **wv, **wo; /* [L]: dim x dim, kv x dim, kv x dim, dim x dim */
    float **w1, **w2, **w3; /* [L]: hidden x dim, dim x hidden, hidden x dim */
    float *rms_final;       /* [dim] */
    float *wcls;            /* [vocab*dim]: tok when shared, else owned */
};

struct llm_batch {
    int64_t B, T;
    float *kc, *vc;   /* [L][B][kv_dim][T] key and value caches, position innermost (the attention loops run over t) */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hres, *ffo, *scr; /* work */
};

/* ---- matmul ------------------------------------------------------------- */
static int force_scalar;
void llm_force_scalar(int on) { force_scalar = on; }

/* the fixed reduction order of the 8 lanes (both paths) */
static inline float reduce8(const float *a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

static float dot_scalar(const float *w, const float *x, int64_t n)
{
    float a[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] = fmaf(w[i + j], x[i + j], a[j]);
    for (; i < n; i++) a[i & 7] = fmaf(w[i], x[i], a[i & 7]);
    return reduce8(a);
}

#ifdef LLM_X86
#define AVX2_FN __attribute__((target("avx2,fma")))
/* reduce8's order in registers: (a0+a4, a1+a5, a2+a6, a3+a7), then
 * (s0+s2, s1+s3), then their sum */
AVX2_FN static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

/* The tail c = full..in-1 lands in lanes 0..in-full-1 (= c & 7, full a
 * multiple of 8), as in dot_scalar; masked-off lanes add 0*0 exactly. */
AVX2_FN static float dot_avx2(const float *w, const float *x, int64_t n)
{
    __m256 acc = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= n; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + c), _mm256_loadu_ps(x + c), acc);
    if (c < n) {
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - c)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        acc = _mm256_fmadd_ps(_mm256_maskload_ps(w + c, mask), _mm256_maskload_ps(x + c, mask), acc);
    }
    return hsum8(acc);
}

AVX2_FN static void matmul_avx2(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < out; r++) y[i * out + r] = dot_avx2(w + r * in, x + i * in, in);
}
static int have_avx2(void)
{
    static int h = -1;
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return h;
}

AVX2_FN static void axpy_avx2(float *y, float a, const float *x, int64_t n)
{
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}
#endif

/* y[i] += a * x[i] (fused), and the 8-lane dot: same bytes on both paths */
static void axpy(float *y, float a, const float *x, int64_t n)
{
#ifdef LLM_X86
    if (!force_scalar && have_avx2()) { axpy_avx2(y, a, x, n); return; }
#endif
    for (int64_t i = 0; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

static float dot(const float *w, const float *x, int64_t n)
{
#ifdef LLM_X86
    if (!force_scalar && have_avx2()) return dot_avx2(w, x, n);
#endif
    return dot_scalar(w, x, n);
}

void llm_matmul(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out)
{
#ifdef LLM_X86
    if (!force_scalar && have_avx2()) { matmul_avx2(y, x, w, n, in, out); return; }
#endif
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < out; r++) y[i * out + r] = dot_scalar(w + r * in, x + i * in, in);
}

/* ---- loading --------------------------------------------------------------- */
static int read_tensor(weights *wf, const char *name, int64_t rows, int64_t cols, float **out)
{
    size_t i;
    D2_TRY(weights_find(wf, name, &i));
    const weights_info *ti = weights_get(wf, i);
    if (ti->rows != rows || ti->cols != cols)
        D2_ERROR(D2_EFORMAT, "%s: tensor %s is %lld x %lld, the header implies %lld x %lld", weights_path(wf), name,
                 (long long)ti->rows, (long long)ti->cols, (long long)rows, (long long)cols);
    return weights_read(wf, i, out);
}

static float **layer_array(int64_t L)
{
    return calloc((size_t)L, sizeof(float *));
}

void llm_model_free(llm_model *m)
{
    if (!m) return;
    float **arr[] = {m->wq, m->wk, m->wv, m->wo, m->w1, m->w2, m->w3};
    for (size_t a = 0; a < sizeof arr / sizeof arr[0]; a++) {
        for (int64_t l = 0; arr[a] && l < m->c.n_layers; l++) free(arr[a][l]);
        free(arr[a]);
    }
    if (m->wcls != m->tok) free(m->wcls);
    free(m->tok);
    free(m->rms_att);
    free(m->rms_ffn);
    free(m->rms_final);
    free(m);
}

static int check_config(const char *path, const llm_config *c)
{
    static const char *const nm[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    const int64_t v[] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++)
        if (v[i] <= 0 || v[i] > (1 << 24)) D2_ERROR(D2_EFORMAT, "%s: header field %s (offset %d) = %lld is not a plausible size", path, nm[i], 4 * i, (long long)v[i]);
    if (c->dim % c->n_heads) D2_ERROR(D2_EFORMAT, "%s: header: dim %lld is not a multiple of n_heads %lld", path, (long long)c->dim, (long long)c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        D2_ERROR(D2_EFORMAT, "%s: header: n_heads %lld is not a multiple of n_kv_heads %lld", path, (long long)c->n_heads, (long long)c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2) D2_ERROR(D2_EFORMAT, "%s: header: head size %lld is odd (RoPE rotates pairs)", path, (long long)(c->dim / c->n_heads));
    return D2_OK;
}

int llm_model_load(const char *path, llm_model **out)
{
    *out = NULL;
    /* the head counts and seq_len are not tensor shapes: read the header here,
     * then check every tensor the reader lists against it */
    FILE *f; /* a regular file (a FIFO or device is refused, not read) */
    D2_TRY(fileio_open_read(path, UINT64_MAX, &f, NULL));
    int32_t h[7];
    size_t got = fread(h, sizeof h[0], 7, f);
    fclose(f);
    if (got != 7) D2_ERROR(D2_EFORMAT, "%s: header (7 int32): the file has only %zu bytes", path, got * 4);
    llm_config c = {h[0], h[1], h[2], h[3], h[4], h[5] < 0 ? -(int64_t)h[5] : h[5], h[6], h[5] > 0};
    D2_TRY(check_config(path, &c));
    weights *wf;
    D2_TRY(weights_open(path, WEIGHTS_LLAMA2C, &wf));
    llm_model *m = calloc(1, sizeof *m);
    if (!m) { weights_free(wf); D2_ERROR(D2_ENOMEM, "out of memory"); }
    m->c = c;
    const int64_t D = c.dim, H = c.hidden_dim, L = c.n_layers, KV = c.dim * c.n_kv_heads / c.n_heads;
    int rc = D2_OK;
    if (!(m->wq = layer_array(L)) || !(m->wk = layer_array(L)) || !(m->wv = layer_array(L)) || !(m->wo = layer_array(L)) ||
        !(m->w1 = layer_array(L)) || !(m->w2 = layer_array(L)) || !(m->w3 = layer_array(L)) ||
        !(m->rms_att = malloc((size_t)(L * D) * sizeof(float))) || !(m->rms_ffn = malloc((size_t)(L * D) * sizeof(float)))) {
        rc = D2_ENOMEM;
        d2_err_set("out of memory");
    }
    if (!rc) rc = read_tensor(wf, "tok_embeddings", c.vocab_size, D, &m->tok);
    char nm[64];
    for (int64_t l = 0; !rc && l < L; l++) {
        float *t = NULL;
        snprintf(nm, sizeof nm, "layers.%lld.attention_norm", (long long)l);
        if (!(rc = read_tensor(wf, nm, 1, D, &t))) memcpy(m->rms_att + l * D, t, (size_t)D * sizeof *t);
        free(t);
        t = NULL;
        snprintf(nm, sizeof nm, "layers.%lld.ffn_norm", (long long)l);
        if (!rc && !(rc = read_tensor(wf, nm, 1, D, &t))) memcpy(m->rms_ffn + l * D, t, (size_t)D * sizeof *t);
        free(t);
        struct { const char *k; float **dst; int64_t r, cc; } mats[] = {
            {"wq", &m->wq[l], D, D}, {"wk", &m->wk[l], KV, D}, {"wv", &m->wv[l], KV, D}, {"wo", &m->wo[l], D, D},
            {"w1", &m->w1[l], H, D}, {"w2", &m->w2[l], D, H}, {"w3", &m->w3[l], H, D}};
        for (size_t i = 0; !rc && i < sizeof mats / sizeof mats[0]; i++) {
            snprintf(nm, sizeof nm, "layers.%lld.%s", (long long)l, mats[i].k);
            rc = read_tensor(wf, nm, mats[i].r, mats[i].cc, mats[i].dst);
        }
    }
    if (!rc) rc = read_tensor(wf, "norm", 1, D, &m->rms_final);
    if (!rc) {
        if (c.shared_cls) m->wcls = m->tok;
        else rc = read_tensor(wf, "wcls", c.vocab_size, D, &m->wcls);
    }
    weights_free(wf);
    if (rc) { llm_model_free(m); return rc; }
    *out = m;
    return D2_OK;
}

const llm_config *llm_model_config(const llm_model *m) { return &m->c; }

const float *llm_model_ffn(const llm_model *m, int64_t layer, int which)
{
    if (layer < 0 || layer >= m->c.n_layers) return NULL;
    return which == 0 ? m->w1[layer] : which == 1 ? m->w2[layer] : which == 2 ? m->w3[layer] : NULL;
}

/* ---- synthetic checkpoint ---------------------------------------------------- */
void llm_config_synth_default(llm_config *c)
{
    *c = (llm_config){.dim = 64, .hidden_dim = 172, .n_layers = 5, .n_heads = 8, .n_kv_heads = 4,
                      .vocab_size = 512, .seq_len = 512, .shared_cls = 1};
}

static int put(FILE *f, gsl_rng *r, int64_t n, int kind, double sd)
{
    /* kind 0: Gaussian sd, 1: Student-t nu = 5 scaled to sd, 2: 1 + U(-0.1, 0.1) */
    float buf[1024];
    for (int64_t i = 0; i < n;) {
        int64_t k = n - i < 1024 ? n - i : 1024;
        for (int64_t j = 0; j < k; j++) {
            double v = kind == 0 ? gsl_ran_gaussian(r, sd)
                     : kind == 1 ? sd * gsl_ran_tdist(r, 5.0) / sqrt(5.0 / 3.0)
                                 : 1.0 + gsl_ran_flat(r, -0.1, 0.1);
            buf[j] = (float)v;
        }
        if (fwrite(buf, sizeof buf[0], (size_t)k, f) != (size_t)k) return 0;
        i += k;
    }
    return 1;
}

int llm_synth_write(const char *path, const llm_config *c, uint64_t seed)
{
    D2_TRY(check_config(path, c));
    fileio_out *o; /* the path must be a regular file or new; written through path.tmp */
    FILE *f;
    D2_TRY(fileio_out_open(path, &o, &f));
    gsl_rng *r = rng_new(seed, 0x53594e);
    if (!r) { fileio_out_abort(o); D2_ERROR(D2_ENOMEM, "out of memory"); }
    const int64_t D = c->dim, H = c->hidden_dim, L = c->n_layers, hs = D / c->n_heads, KV = D * c->n_kv_heads / c->n_heads;
    int32_t hdr[7] = {(int32_t)D, (int32_t)H, (int32_t)L, (int32_t)c->n_heads, (int32_t)c->n_kv_heads,
                      (int32_t)(c->shared_cls ? c->vocab_size : -c->vocab_size), (int32_t)c->seq_len};
    int ok = fwrite(hdr, sizeof hdr[0], 7, f) == 7;
    ok = ok && put(f, r, c->vocab_size * D, 0, 0.3);
    ok = ok && put(f, r, L * D, 2, 0);                      /* rms_att */
    ok = ok && put(f, r, L * D * D, 0, 1 / sqrt((double)D)); /* wq */
    ok = ok && put(f, r, L * KV * D, 0, 1 / sqrt((double)D)); /* wk */
    ok = ok && put(f, r, L * KV * D, 0, 1 / sqrt((double)D)); /* wv */
    ok = ok && put(f, r, L * D * D, 0, 1 / sqrt((double)D)); /* wo */
    ok = ok && put(f, r, L * D, 2, 0);                      /* rms_ffn */
    ok = ok && put(f, r, L * H * D, 1, 1 / sqrt((double)D)); /* w1 */
    ok = ok && put(f, r, L * D * H, 1, 1 / sqrt((double)H)); /* w2 */
    ok = ok && put(f, r, L * H * D, 1, 1 / sqrt((double)D)); /* w3 */
    ok = ok && put(f, r, D, 2, 0);                          /* rms_final */
    /* freq_cis_real / _imag [seq_len][hs/2], as export.py's precompute_freqs_cis */
    for (int part = 0; ok && part < 2; part++)
        for (int64_t t = 0; ok && t < c->seq_len; t++)
            for (int64_t i = 0; ok && i < hs / 2; i++) {
                double fr = 1.0 / pow(10000.0, (double)(2 * i) / (double)hs), a = (double)t * fr;
                float v = (float)(part ? sin(a) : cos(a));
                ok = fwrite(&v, sizeof v, 1, f) == 1;
            }
    if (!c->shared_cls) ok = ok && put(f, r, c->vocab_size * D, 0, 0.3);
    gsl_rng_free(r);
    if (!ok) {
        int e = errno;
        fileio_out_abort(o);
        D2_ERROR(D2_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return fileio_out_commit(o);
}

/* ---- forward ---------------------------------------------------------------- */
int llm_batch_new(const llm_model *m, int64_t B, int64_t T, llm_batch **out)
{
    *out = NULL;
    const llm_config *c = &m->c;
    if (B < 1 || T < 1 || T > c->seq_len)
        D2_ERROR(D2_ERANGE, "batch of %lld sequences of %lld positions: expected >= 1 sequence and 1..%lld positions (seq_len)",
                 (long long)B, (long long)T, (long long)c->seq_len);
    const int64_t D = c->dim, H = c->hidden_dim, KV = D * c->n_kv_heads / c->n_heads;
    const double cache = 2.0 * (double)c->n_layers * (double)B * (double)T * (double)KV * sizeof(float);
    if (cache > (double)((int64_t)8 << 30)) D2_ERROR(D2_ERANGE, "KV cache of %.1f GiB for %lld x %lld positions: more than 8 GiB", cache / (1 << 30), (long long)B, (long long)T);
    llm_batch *b = calloc(1, sizeof *b);
    if (!b) D2_ERROR(D2_ENOMEM, "out of memory");
    b->B = B;
    b->T = T;
    const size_t kvn = (size_t)(c->n_layers * B * T * KV);
    b->kc = malloc(kvn * sizeof(float));
    b->vc = malloc(kvn * sizeof(float));
    b->x = malloc((size_t)(B * D) * sizeof(float));
    b->xb = malloc((size_t)(B * D) * sizeof(float));
    b->xb2 = malloc((size_t)(B * D) * sizeof(float));
    b->q = malloc((size_t)(B * D) * sizeof(float));
    b->k = malloc((size_t)(B * KV) * sizeof(float));
    b->v = malloc((size_t)(B * KV) * sizeof(float));
    b->att = malloc((size_t)T * sizeof(float));
    b->hres = malloc((size_t)(B * D) * sizeof(float));
    b->ffo = malloc((size_t)(B * D) * sizeof(float));
    b->scr = malloc((size_t)(2 * B * H) * sizeof(float));
    if (!b->kc || !b->vc || !b->x || !b->xb || !b->xb2 || !b->q || !b->k || !b->v || !b->att || !b->hres || !b->ffo || !b->scr) {
        llm_batch_free(b);
        D2_ERROR(D2_ENOMEM, "out of memory (batch of %lld x %lld positions)", (long long)B, (long long)T);
    }
    *out = b;
    return D2_OK;
}

void llm_batch_free(llm_batch *b)
{
    if (!b) return;
    free(b->kc); free(b->vc); free(b->x); free(b->xb); free(b->xb2); free(b->q); free(b->k); free(b->v);
    free(b->att); free(b->hres); free(b->ffo); free(b->scr);
    free(b);
}

/* rmsnorm: o = w * x / sqrt(mean(x^2) + 1e-5)  (run.c rmsnorm) */
static void rmsnorm(float *o, const float *x, const float *w, int64_t n)
{
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float s = (float)(1.0 / sqrt(ss / (double)n + 1e-5));
    for (int64_t i = 0; i < n; i++) o[i] = w[i] * (s * x[i]);
}

/* softmax in place over x[0..n) (max subtracted; normaliser in double) */
static void softmax(float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int64_t i = 0; i < n; i++) { x[i] = expf(x[i] - mx); s += x[i]; }
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] / s);
}

/* RoPE (run.c): for each pair (i, i+1), i even, of a head of size hs:
 * theta = pos / 10000^((i mod hs) / hs); (v0, v1) <- (v0 cos - v1 sin, v0 sin + v1 cos). */
static void rope(float *v, int64_t n, int64_t hs, int64_t pos)
{
    for (int64_t i = 0; i < n; i += 2) {
        const int64_t hd = i % hs;
        const float freq = 1.0f / powf(10000.0f, (float)hd / (float)hs);
        const float val = (float)pos * freq, fcr = cosf(val), fci = sinf(val);
        const float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

void llm_ffn(const float *w1, const float *w2, const float *w3, int64_t dim, int64_t hidden, const float *x, int64_t n,
             float *scratch, float *out)
{
    float *hb = scratch, *hb2 = scratch + n * hidden;
    llm_matmul(hb, x, w1, n, dim, hidden);
    llm_matmul(hb2, x, w3, n, dim, hidden);
    /* SwiGLU: silu(h1) * h3, silu(v) = v / (1 + e^-v) */
    for (int64_t i = 0; i < n * hidden; i++) hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
    llm_matmul(out, hb, w2, n, hidden, dim);
}

int llm_batch_step(const llm_model *m, llm_batch *b, const int32_t *tokens, int64_t pos, llm_ffn_fn ffn, void *user,
                   float *logits)
{
    const llm_config *c = &m->c;
    const int64_t B = b->B, D = c->dim, H = c->hidden_dim, V = c->vocab_size, hs = D / c->n_heads;
    const int64_t KV = D * c->n_kv_heads / c->n_heads, kvmul = c->n_heads / c->n_kv_heads, T = b->T;
    if (pos < 0 || pos >= T) D2_ERROR(D2_ERANGE, "position %lld outside the batch's 0..%lld", (long long)pos, (long long)(T - 1));
    for (int64_t i = 0; i < B; i++) {
        if (tokens[i] < 0 || tokens[i] >= V) D2_ERROR(D2_ERANGE, "token %d of sequence %lld: outside the vocabulary 0..%lld", tokens[i], (long long)i, (long long)(V - 1));
        memcpy(b->x + i * D, m->tok + (int64_t)tokens[i] * D, (size_t)D * sizeof(float));
    }
    const float isq = 1.0f / sqrtf((float)hs);
    for (int64_t l = 0; l < c->n_layers; l++) {
        /* attention: xb = rmsnorm(x) * w_att; q, k, v = wq xb, wk xb, wv xb; RoPE on q and k */
        for (int64_t i = 0; i < B; i++) rmsnorm(b->xb + i * D, b->x + i * D, m->rms_att + l * D, D);
        llm_matmul(b->q, b->xb, m->wq[l], B, D, D);
        llm_matmul(b->k, b->xb, m->wk[l], B, D, KV);
        llm_matmul(b->v, b->xb, m->wv[l], B, D, KV);
        for (int64_t i = 0; i < B; i++) {
            rope(b->q + i * D, D, hs, pos);
            rope(b->k + i * KV, KV, hs, pos);
            float *kc = b->kc + (l * B + i) * KV * T, *vc = b->vc + (l * B + i) * KV * T;
            for (int64_t j = 0; j < KV; j++) {
                kc[j * T + pos] = b->k[i * KV + j];
                vc[j * T + pos] = b->v[i * KV + j];
            }
        }
        /* per head h (kv head h / kvmul): att[t] = softmax_t(q . k_t / sqrt(hs)), xb = sum_t att[t] v_t */
        for (int64_t i = 0; i < B; i++)
            for (int64_t h = 0; h < c->n_heads; h++) {
                const float *q = b->q + i * D + h * hs;
                const float *kh = b->kc + (l * B + i) * KV * T + (h / kvmul) * hs * T;
                const float *vh = b->vc + (l * B + i) * KV * T + (h / kvmul) * hs * T;
                memset(b->att, 0, (size_t)(pos + 1) * sizeof(float));
                for (int64_t j = 0; j < hs; j++) axpy(b->att, q[j] * isq, kh + j * T, pos + 1);
                softmax(b->att, pos + 1);
                float *o = b->xb + i * D + h * hs;
                for (int64_t j = 0; j < hs; j++) o[j] = dot(b->att, vh + j * T, pos + 1);
            }
        llm_matmul(b->xb2, b->xb, m->wo[l], B, D, D); /* attention output */
        for (int64_t i = 0; i < B * D; i++) b->x[i] += b->xb2[i];
        /* FFN: x += w2 (silu(w1 xn) * w3 xn), xn = rmsnorm(x) * w_ffn */
        memcpy(b->hres, b->x, (size_t)(B * D) * sizeof(float));
        for (int64_t i = 0; i < B; i++) rmsnorm(b->xb + i * D, b->x + i * D, m->rms_ffn + l * D, D);
        if (ffn) {
            llm_ffn_step s = {.layer = l, .pos = pos, .n = B, .dim = D, .hidden = H, .xn = b->xb, .resid = b->hres,
                              .attn = b->xb2, .out = b->ffo};
            D2_TRY(ffn(user, &s));
        } else {
            llm_ffn(m->w1[l], m->w2[l], m->w3[l], D, H, b->xb, B, b->scr, b->ffo);
        }
        for (int64_t i = 0; i < B * D; i++) b->x[i] += b->ffo[i];
    }
    /* logits = wcls . rmsnorm(x) * w_final */
    for (int64_t i = 0; i < B; i++) rmsnorm(b->xb + i * D, b->x + i * D, m->rms_final, D);
    llm_matmul(logits, b->xb, m->wcls, B, D, V);
    return D2_OK;
}
