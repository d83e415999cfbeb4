/* evalq.c - sampling the FP32 reference, measuring a configuration against
 * it, the routing policies and the configuration table (see evalq.h). */
#include "config.h"
#include "eval/evalq.h"
#include "eval/ffnq.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "sim/bitroute.h"
#include "sim/sim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_SAMPLE 0x53414d50u /* "SAMP" */
#define STREAM_ROUTE 0x524f5554u  /* "ROUT" */

struct evalq_ref {
    int64_t N, T, V;
    int32_t *tok;  /* [N][T+1] */
    float *logit;  /* [N][T][V] FP32 logits at each position */
    float *prob;   /* [N][T][V] their softmax */
    double *lse;   /* [N][T] log-sum-exp of the logits */
    int32_t *top;  /* [N][T] argmax (first of ties) */
    double nll;    /* sum of -log p(sampled) */
};

static double logsumexp(const float *x, int64_t n)
{
    float mx = x[0];
    for (int64_t i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}

void evalq_ref_free(evalq_ref *r)
{
    if (!r) return;
    free(r->tok);
    free(r->logit);
    free(r->prob);
    free(r->lse);
    free(r->top);
    free(r);
}

int evalq_ref_sample(const llm_model *m, const evalq_opts *o, evalq_ref **out)
{
    *out = NULL;
    const llm_config *c = llm_model_config(m);
    if (o->seqs < 1 || o->seqs > 4096) D2_ERROR(D2_ERANGE, "--seqs %lld: expected 1..4096", (long long)o->seqs);
    if (o->len < 1 || o->len > c->seq_len)
        D2_ERROR(D2_ERANGE, "--len %lld: expected 1..%lld (the checkpoint's seq_len)", (long long)o->len, (long long)c->seq_len);
    const double bytes = 8.0 * (double)o->seqs * (double)o->len * (double)c->vocab_size;
    if (bytes > (double)((int64_t)4 << 30))
        D2_ERROR(D2_ERANGE, "--seqs %lld --len %lld: the reference logits and probabilities would take %.1f GiB (4 GiB at most)", (long long)o->seqs,
                 (long long)o->len, bytes / (1 << 30));
    if (c->vocab_size <= EVALQ_BOS) D2_ERROR(D2_EFORMAT, "vocabulary of %lld tokens has no BOS id %d", (long long)c->vocab_size, EVALQ_BOS);
    evalq_ref *r = calloc(1, sizeof *r);
    if (!r) D2_ERROR(D2_ENOMEM, "out of memory");
    r->N = o->seqs; r->T = o->len; r->V = c->vocab_size;
    r->tok = malloc((size_t)(r->N * (r->T + 1)) * sizeof *r->tok);
    r->logit = malloc((size_t)(r->N * r->T * r->V) * sizeof *r->logit);
    r->prob = malloc((size_t)(r->N * r->T * r->V) * sizeof *r->prob);
    r->lse = malloc((size_t)(r->N * r->T) * sizeof *r->lse);
    r->top = malloc((size_t)(r->N * r->T) * sizeof *r->top);
    int32_t *in = malloc((size_t)r->N * sizeof *in);
    float *lg = malloc((size_t)(r->N * r->V) * sizeof *lg);
    gsl_rng *g = rng_new(o->seed, STREAM_SAMPLE);
    llm_batch *b = NULL;
    int rc = (!r->tok || !r->logit || !r->prob || !r->lse || !r->top || !in || !lg || !g) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("out of memory");
    if (!rc) rc = llm_batch_new(m, r->N, r->T, &b);
    for (int64_t i = 0; !rc && i < r->N; i++) r->tok[i * (r->T + 1)] = EVALQ_BOS;
    for (int64_t t = 0; !rc && t < r->T; t++) {
        for (int64_t i = 0; i < r->N; i++) in[i] = r->tok[i * (r->T + 1) + t];
        if ((rc = llm_batch_step(m, b, in, t, NULL, NULL, lg))) break;
        for (int64_t i = 0; i < r->N; i++) {
            const float *l = lg + i * r->V;
            memcpy(r->logit + (i * r->T + t) * r->V, l, (size_t)r->V * sizeof *l);
            /* temperature 1, full distribution: the first id whose cumulative
             * probability exceeds u (the last id if rounding leaves a gap) */
            const double lse = logsumexp(l, r->V), u = gsl_rng_uniform(g);
            float *pr = r->prob + (i * r->T + t) * r->V;
            int32_t top = 0;
            for (int64_t v = 0; v < r->V; v++) {
                pr[v] = (float)exp((double)l[v] - lse);
                if (l[v] > l[top]) top = (int32_t)v;
            }
            r->lse[i * r->T + t] = lse;
            r->top[i * r->T + t] = top;
            double cum = 0;
            int64_t k = 0;
            for (; k < r->V - 1; k++) {
                cum += exp((double)l[k] - lse);
                if (u < cum) break;
            }
            r->tok[i * (r->T + 1) + t + 1] = (int32_t)k;
            r->nll += lse - (double)l[k];
        }
    }
    llm_batch_free(b);
    if (g) gsl_rng_free(g);
    free(in);
    free(lg);
    if (rc) { evalq_ref_free(r); return rc; }
    *out = r;
    return D2_OK;
}

const int32_t *evalq_ref_tokens(const evalq_ref *r, int64_t i) { return i >= 0 && i < r->N ? r->tok + i * (r->T + 1) : NULL; }
double evalq_ref_ppl(const evalq_ref *r) { return exp(r->nll / (double)(r->N * r->T)); }

int evalq_measure(const llm_model *m, const evalq_ref *ref, llm_ffn_fn ffn, void *user, evalq_metrics *out)
{
    memset(out, 0, sizeof *out);
    const int64_t N = ref->N, T = ref->T, V = ref->V;
    int32_t *in = malloc((size_t)N * sizeof *in);
    float *lg = malloc((size_t)(N * V) * sizeof *lg);
    llm_batch *b = NULL;
    int rc = (!in || !lg) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("out of memory");
    if (!rc) rc = llm_batch_new(m, N, T, &b);
    double kl = 0, nll = 0;
    int64_t agree = 0;
    for (int64_t t = 0; !rc && t < T; t++) {
        for (int64_t i = 0; i < N; i++) in[i] = ref->tok[i * (T + 1) + t];
        if ((rc = llm_batch_step(m, b, in, t, ffn, user, lg))) break;
        for (int64_t i = 0; i < N; i++) {
            const float *p = ref->logit + (i * T + t) * V, *P = ref->prob + (i * T + t) * V, *q = lg + i * V;
            /* KL(P || Q) = sum_v P_v (p_v - q_v) - lse(p) + lse(q), p, q logits;
             * P_v sums to 1 within float rounding: normalise by its sum */
            const double lp = ref->lse[i * T + t], lq = logsumexp(q, V);
            double s = 0, z = 0;
            int64_t aq = 0;
            for (int64_t v = 0; v < V; v++) {
                s += (double)P[v] * ((double)p[v] - (double)q[v]);
                z += P[v];
                if (q[v] > q[aq]) aq = v;
            }
            kl += s / z - lp + lq;
            agree += ref->top[i * T + t] == aq;
            nll += lq - (double)q[ref->tok[i * (T + 1) + t + 1]];
        }
    }
    llm_batch_free(b);
    free(in);
    free(lg);
    if (rc) return rc;
    out->positions = N * T;
    out->kl = kl / (double)out->positions;
    out->top1 = (double)agree / (double)out->positions;
    out->ppl = exp(nll / (double)out->positions);
    return D2_OK;
}

/* ---- routing policies ------------------------------------------------------- */
static const evalq_route routes[] = {
    {.name = "capacity", .summary = "random level per token, exact c_k mix per layer step (the paper's capacities)",
     .sim_policy = "capacity", .signal = EVALQ_SIG_NONE},
    {.name = "rank:ffn-rel-update", .summary = "more bits where the level-1 FFN update is large relative to the residual stream",
     .sim_policy = "gate", .signal = EVALQ_SIG_FFN_REL_UPDATE},
    {.name = "rank:ffn-in-norm", .summary = "more bits where the residual stream entering the FFN has the larger norm",
     .sim_policy = "gate", .signal = EVALQ_SIG_FFN_IN_NORM},
    {.name = "rank:attn-out-norm", .summary = "more bits where the layer's attention output has the larger norm",
     .sim_policy = "gate", .signal = EVALQ_SIG_ATTN_OUT_NORM},
};

const evalq_route *evalq_route_list(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

const evalq_route *evalq_route_find(const char *name)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(routes[i].name, name)) return &routes[i];
    return NULL;
}

/* ---- the configuration table -------------------------------------------------
 * One row per (preset, method, routing).  A preset added to quant/mwq.h
 * (e.g. the nested "v1k"/"v2k") is one more row here. */
static const evalq_row rows[] = {
    {.preset = "v1", .method = "mwq"},
    {.preset = "v2", .method = "mwq"},
    {.preset = "v1", .method = "rtn-int"},
    {.preset = "v2", .method = "rtn-int"},
    {.preset = "v1", .method = "msb-slice"},
    {.preset = "v2", .method = "msb-slice"},
    {.preset = "v1", .method = "mwq", .bitroute = "capacity", .caps = "0.3/0.4/0.3"},
    {.preset = "v1", .method = "mwq", .bitroute = "rank:ffn-rel-update", .caps = "0.3/0.4/0.3"},
    {.preset = "v1", .method = "mwq", .bitroute = "rank:ffn-in-norm", .caps = "0.3/0.4/0.3"},
    {.preset = "v1", .method = "mwq", .bitroute = "rank:attn-out-norm", .caps = "0.3/0.4/0.3"},
    {.preset = "v2", .method = "mwq", .bitroute = "capacity", .caps = "0.25/0.25/0.25/0.25"},
    {.preset = "v2", .method = "mwq", .bitroute = "rank:ffn-rel-update", .caps = "0.25/0.25/0.25/0.25"},
    {.preset = "v2", .method = "mwq", .bitroute = "rank:ffn-in-norm", .caps = "0.25/0.25/0.25/0.25"},
    {.preset = "v2", .method = "mwq", .bitroute = "rank:attn-out-norm", .caps = "0.25/0.25/0.25/0.25"},
    {.preset = "v1", .method = "rtn-int", .bitroute = "capacity", .caps = "0.3/0.4/0.3"},
    {.preset = "v1", .method = "rtn-int", .bitroute = "rank:ffn-rel-update", .caps = "0.3/0.4/0.3"},
    {.preset = "v2", .method = "rtn-int", .bitroute = "capacity", .caps = "0.25/0.25/0.25/0.25"},
    {.preset = "v2", .method = "rtn-int", .bitroute = "rank:ffn-rel-update", .caps = "0.25/0.25/0.25/0.25"},
};

const evalq_row *evalq_rows(size_t *n)
{
    *n = sizeof rows / sizeof rows[0];
    return rows;
}

/* ---- the FFN hook of a configuration ----------------------------------------- */
typedef struct hook {
    const ffnq_set *set;
    int uniform;              /* level of a uniform configuration, 0 when routed */
    const evalq_route *route;
    const bitroute_type *bt;
    bitroute_cfg cfg;
    bitroute_use *u;          /* [N] */
    uint32_t *scr;            /* [6N] */
    float *xg, *og, *fscr;    /* [N*dim], [N*dim], [2*N*hidden] */
    int kernel;               /* through kern_matmul */
    kern_act **ax, **ah;      /* [N] activations for dim- and hidden-wide inputs */
    int64_t count[KERN_MAX_LEVELS]; /* token-layer uses per level */
} hook;

static double norm(const float *x, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

/* FFN at level k of g tokens x[g*dim] -> out[g*dim] */
static int ffn_level(hook *h, int64_t layer, int k, const float *x, int64_t g, int64_t D, int64_t H, float *out)
{
    if (!h->kernel) {
        llm_ffn(ffnq_weight(h->set, layer, 0, k), ffnq_weight(h->set, layer, 1, k), ffnq_weight(h->set, layer, 2, k), D, H, x, g,
                h->fscr, out);
        return D2_OK;
    }
    kern_mat w1, w2, w3;
    D2_TRY(ffnq_kern(h->set, layer, 0, &w1));
    D2_TRY(ffnq_kern(h->set, layer, 1, &w2));
    D2_TRY(ffnq_kern(h->set, layer, 2, &w3));
    float *y1 = h->fscr, *y3 = h->fscr + g * H;
    for (int64_t i = 0; i < g; i++) D2_TRY(kern_act_set(h->ax[i], x + i * D));
    memset(y1, 0, (size_t)(2 * g * H) * sizeof(float));
    kern_matmul(&w1, 1, k, h->ax, g, y1);
    kern_matmul(&w3, 1, k, h->ax, g, y3);
    for (int64_t i = 0; i < g * H; i++) y1[i] = y1[i] / (1.0f + expf(-y1[i])) * y3[i];
    for (int64_t i = 0; i < g; i++) D2_TRY(kern_act_set(h->ah[i], y1 + i * H));
    memset(out, 0, (size_t)(g * D) * sizeof(float));
    kern_matmul(&w2, 1, k, h->ah, g, out);
    return D2_OK;
}

static int hook_ffn(void *user, const llm_ffn_step *s)
{
    hook *h = user;
    const int64_t n = s->n, D = s->dim, H = s->hidden;
    const int K = ffnq_levels(h->set);
    if (h->uniform) {
        D2_TRY(ffn_level(h, s->layer, h->uniform, s->xn, n, D, H, s->out));
        h->count[h->uniform - 1] += n;
        return D2_OK;
    }
    /* routed: the signal, then the simulator's policy picks the levels */
    if (h->route->signal == EVALQ_SIG_FFN_REL_UPDATE) D2_TRY(ffn_level(h, s->layer, 1, s->xn, n, D, H, h->og));
    for (int64_t i = 0; i < n; i++) {
        double sig = 0;
        switch (h->route->signal) {
        case EVALQ_SIG_NONE: break;
        case EVALQ_SIG_FFN_IN_NORM: sig = norm(s->resid + i * D, D); break;
        case EVALQ_SIG_ATTN_OUT_NORM: sig = norm(s->attn + i * D, D); break;
        case EVALQ_SIG_FFN_REL_UPDATE: {
            double r = norm(s->resid + i * D, D);
            sig = r > 0 ? norm(h->og + i * D, D) / r : 0;
            break;
        }
        }
        h->u[i] = (bitroute_use){.expert = 0, .weight = (float)sig, .bits = 0, .level = 0};
    }
    D2_TRY(h->bt->assign(&h->cfg, (uint32_t)s->layer, h->u, (size_t)n, h->scr));
    for (int k = 1; k <= K; k++) {
        int64_t g = 0;
        for (int64_t i = 0; i < n; i++)
            if (h->u[i].level + 1 == k) memcpy(h->xg + (g++) * D, s->xn + i * D, (size_t)D * sizeof(float));
        if (!g) continue;
        D2_TRY(ffn_level(h, s->layer, k, h->xg, g, D, H, h->og));
        g = 0;
        for (int64_t i = 0; i < n; i++)
            if (h->u[i].level + 1 == k) memcpy(s->out + i * D, h->og + (g++) * D, (size_t)D * sizeof(float));
        h->count[k - 1] += g;
    }
    return D2_OK;
}

int evalq_path_parse(const char *s, evalq_path *out)
{
    if (!strcmp(s, "dequant")) *out = EVALQ_PATH_DEQUANT;
    else if (!strcmp(s, "kernel")) *out = EVALQ_PATH_KERNEL;
    else D2_ERROR(D2_EINVAL, "FFN path \"%s\": expected dequant or kernel", s);
    return D2_OK;
}

const char *evalq_path_name(evalq_path p) { return p == EVALQ_PATH_KERNEL ? "kernel" : "dequant"; }

static void fill_common(evalq_result *r, const evalq_row *row, const ffnq_set *set, int kernel)
{
    memset(r, 0, sizeof *r);
    snprintf(r->preset, sizeof r->preset, "%s", row->preset);
    snprintf(r->method, sizeof r->method, "%s", row->method);
    r->kernel = kernel;
    r->levels = ffnq_levels(set);
    for (int k = 1; k <= r->levels; k++) r->level_bits[k - 1] = ffnq_level_bits(set, k);
}

int evalq_row_run(const llm_model *m, const evalq_ref *ref, const evalq_row *row, uint64_t seed, evalq_path path,
                  evalq_result *res, size_t *n)
{
    *n = 0;
    const ffnq_method *meth = ffnq_method_find(row->method);
    if (!meth) D2_ERROR(D2_ENOTFOUND, "configuration %s/%s: no quantization method \"%s\"", row->preset, row->method, row->method);
    mwq_config c;
    mwq_config_default(&c);
    D2_TRY(mwq_config_preset(&c, row->preset));
    const evalq_route *route = NULL;
    double caps[KERN_MAX_LEVELS];
    if (row->bitroute) {
        if (!(route = evalq_route_find(row->bitroute))) D2_ERROR(D2_ENOTFOUND, "configuration %s/%s: no bit routing \"%s\"", row->preset, row->method, row->bitroute);
        if (!row->caps) D2_ERROR(D2_EINVAL, "configuration %s/%s/%s: capacities missing", row->preset, row->method, row->bitroute);
        char what[200];
        snprintf(what, sizeof what, "configuration %s/%s/%s", row->preset, row->method, row->bitroute);
        D2_TRY(sim_system_caps_parse(row->caps, (int)c.levels, caps, what));
    }
    ffnq_set *set;
    D2_TRY(ffnq_set_build(m, meth, &c, &set));
    const llm_config *mc = llm_model_config(m);
    const int64_t N = ref->N;
    hook h = {.set = set, .route = route};
    h.xg = malloc((size_t)(N * mc->dim) * sizeof(float));
    h.og = malloc((size_t)(N * mc->dim) * sizeof(float));
    h.fscr = malloc((size_t)(2 * N * mc->hidden_dim) * sizeof(float));
    h.u = malloc((size_t)N * sizeof *h.u);
    h.scr = malloc((size_t)(6 * N) * sizeof *h.scr);
    int rc = (!h.xg || !h.og || !h.fscr || !h.u || !h.scr) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("out of memory");
    kern_mat probe;
    const int has_kern = ffnq_kern(set, 0, 0, &probe) == D2_OK;
    if (!has_kern) d2_err_clear(); /* a method without a kernel format: dequantized */
    if (!rc && path == EVALQ_PATH_KERNEL && has_kern) {
        h.kernel = 1;
        h.ax = calloc((size_t)N, sizeof *h.ax);
        h.ah = calloc((size_t)N, sizeof *h.ah);
        if (!h.ax || !h.ah) { rc = D2_ENOMEM; d2_err_set("out of memory"); }
        for (int64_t i = 0; !rc && i < N; i++) {
            rc = kern_act_new(mc->dim, c.group, &h.ax[i]);
            if (!rc) rc = kern_act_new(mc->hidden_dim, c.group, &h.ah[i]);
        }
    }
    const int K = ffnq_levels(set);
    int lbits[KERN_MAX_LEVELS];
    for (int k = 1; k <= K; k++) lbits[k - 1] = ffnq_level_bits(set, k);
    if (!rc && !route) {
        for (int k = 1; !rc && k <= K; k++) {
            evalq_result *r = &res[(*n)];
            fill_common(r, row, set, h.kernel);
            memset(h.count, 0, sizeof h.count);
            h.uniform = k;
            const double t0 = clock_mono_s();
            if ((rc = evalq_measure(m, ref, hook_ffn, &h, &r->m))) break;
            r->seconds = clock_mono_s() - t0;
            r->level = k;
            r->bits = lbits[k - 1];
            r->share[k - 1] = 1;
            r->bpw = r->stored_bpw = ffnq_level_bpw(set, k);
            r->rel_err = ffnq_level_rel_err(set, k);
            if (r->bits <= 16) r->est_bits_w2[r->bits] = 1;
            (*n)++;
        }
    } else if (!rc) {
        evalq_result *r = &res[0];
        fill_common(r, row, set, h.kernel);
        snprintf(r->bitroute, sizeof r->bitroute, "%s", row->bitroute);
        snprintf(r->caps, sizeof r->caps, "%s", row->caps);
        int arg = 0;
        h.bt = bitroute_find(route->sim_policy, &arg);
        h.cfg = (bitroute_cfg){.levels = (uint32_t)K, .level_bits = lbits, .caps = caps, .layers = (uint32_t)mc->n_layers,
                               .experts = 1, .rng = rng_new(seed, STREAM_ROUTE)};
        if (!h.bt || !h.cfg.rng) { rc = D2_EINTERNAL; d2_err_set("bit routing %s: simulator policy %s unavailable", route->name, route->sim_policy); }
        const double t0 = clock_mono_s();
        if (!rc) rc = evalq_measure(m, ref, hook_ffn, &h, &r->m);
        r->seconds = clock_mono_s() - t0;
        if (h.cfg.rng) gsl_rng_free(h.cfg.rng);
        if (!rc) {
            int64_t tot = 0;
            for (int k = 0; k < K; k++) tot += h.count[k];
            double e2 = 0;
            for (int k = 1; k <= K; k++) {
                const double sh = tot ? (double)h.count[k - 1] / (double)tot : 0;
                r->share[k - 1] = sh;
                r->bpw += sh * ffnq_level_bpw(set, k);
                e2 += sh * ffnq_level_rel_err(set, k) * ffnq_level_rel_err(set, k);
                if (lbits[k - 1] <= 16) r->est_bits_w2[lbits[k - 1]] += sh;
            }
            r->rel_err = sqrt(e2);
            r->stored_bpw = ffnq_stored_bpw(set, K);
            *n = 1;
        }
    }
    for (int64_t i = 0; h.ax && i < N; i++) kern_act_free(h.ax[i]);
    for (int64_t i = 0; h.ah && i < N; i++) kern_act_free(h.ah[i]);
    free(h.ax); free(h.ah);
    free(h.xg); free(h.og); free(h.fscr); free(h.u); free(h.scr);
    ffnq_set_free(set);
    return rc;
}

/* ---- Spearman ------------------------------------------------------------------ */
static _Thread_local const double *rank_key;
static int by_key(const void *a, const void *b)
{
    double x = rank_key[*(const size_t *)a], y = rank_key[*(const size_t *)b];
    return x < y ? -1 : x > y;
}

static void ranks(const double *v, size_t n, size_t *idx, double *rk)
{
    for (size_t i = 0; i < n; i++) idx[i] = i;
    rank_key = v;
    qsort(idx, n, sizeof *idx, by_key);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        for (size_t k = i; k <= j; k++) rk[idx[k]] = 0.5 * (double)(i + j) + 1; /* average rank of the tie */
        i = j + 1;
    }
}

int evalq_spearman(const double *x, const double *y, size_t n, double *rho, size_t *used)
{
    *rho = NAN;
    *used = 0;
    double *a = malloc((n + 1) * sizeof *a), *b = malloc((n + 1) * sizeof *b), *ra = malloc((n + 1) * sizeof *ra),
           *rb = malloc((n + 1) * sizeof *rb);
    size_t *idx = malloc((n + 1) * sizeof *idx);
    if (!a || !b || !ra || !rb || !idx) {
        free(a); free(b); free(ra); free(rb); free(idx);
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]) && !isnan(y[i])) { a[m] = x[i]; b[m] = y[i]; m++; }
    *used = m;
    if (m >= 3) {
        ranks(a, m, idx, ra);
        ranks(b, m, idx, rb);
        double ma = 0, mb = 0;
        for (size_t i = 0; i < m; i++) { ma += ra[i]; mb += rb[i]; }
        ma /= (double)m;
        mb /= (double)m;
        double sab = 0, saa = 0, sbb = 0;
        for (size_t i = 0; i < m; i++) {
            sab += (ra[i] - ma) * (rb[i] - mb);
            saa += (ra[i] - ma) * (ra[i] - ma);
            sbb += (rb[i] - mb) * (rb[i] - mb);
        }
        if (saa > 0 && sbb > 0) *rho = sab / sqrt(saa * sbb);
    }
    free(a); free(b); free(ra); free(rb); free(idx);
    return D2_OK;
}
