/* pf_moeinf.c - MoE-Infinity (Xue et al., arXiv 2401.14361): each request's
 * expert activation matrix (EAM: tokens routed to each expert of each layer)
 * is traced as it runs and matched (cosine similarity over the rows seen)
 * against the EAMs of earlier requests, kept from the profiling requests;
 * the matched matrices predict the next layer's experts (predictor
 * `moe-infinity`) and, written into the memory policy `moe-infinity` when
 * the two run together, which cached experts to keep.  It does not model
 * MoE-Infinity's EAM collection clustering, its multi-layer prefetch queue or
 * its host-memory tier. */
#include "sim/plugins.h"
#include "core/err.h"
#include "core/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* profiled requests whose activation mix the memory policy takes (more: it stays LRU) */
#define MOEINF_MIX_MAX 4096

#define HIST(s, j, l) ((s)->hist + ((size_t)(j) * (s)->L + (l)) * (s)->E)
#define CUR(s, q, l) ((s)->cur + ((size_t)(q) * (s)->L + (l)) * (s)->E)

void moeinf_fini(void *st)
{
    moeinf_state *s = st;
    free(s->hist); free(s->hnorm); free(s->hrow); free(s->cur); free(s->dot); free(s->cnorm);
    free(s->rows); free(s->best); free(s->weight); free(s->act); free(s->tokc); free(s->stamp);
    memset(s, 0, sizeof *s);
}

/* The history: one EAM per profiling request over all its positions. */
int moeinf_init(void *st, const prefetch_ctx *c)
{
    moeinf_state *s = st;
    s->L = c->layers;
    s->E = c->experts;
    s->R = c->profile_first;
    s->H = c->profile_n;
    if (!c->route || s->H == 0)
        D2_ERROR(D2_EINVAL, "prefetch moe-infinity: needs the profiling requests' routing (sim.profile_requests >= 1)");
    size_t LE = (size_t)s->L * s->E, R = s->R ? s->R : 1;
    s->hist = calloc((size_t)s->H * LE, sizeof *s->hist);
    s->hnorm = calloc((size_t)s->H * s->L, sizeof *s->hnorm);
    s->hrow = calloc((size_t)s->H * s->L, sizeof *s->hrow);
    s->cur = calloc(R * LE, sizeof *s->cur);
    s->dot = calloc(R * s->H, sizeof *s->dot);
    s->cnorm = calloc(R, sizeof *s->cnorm);
    s->rows = calloc(R, sizeof *s->rows);
    s->best = malloc(R * sizeof *s->best);
    s->weight = calloc(s->H, sizeof *s->weight);
    s->act = malloc(R * sizeof *s->act);
    s->tokc = calloc(R, sizeof *s->tokc);
    s->stamp = calloc(R, sizeof *s->stamp);
    if (!s->hist || !s->hnorm || !s->hrow || !s->cur || !s->dot || !s->cnorm || !s->rows || !s->best || !s->weight ||
        !s->act || !s->tokc || !s->stamp) {
        moeinf_fini(s);
        D2_ERROR(D2_ENOMEM, "prefetch moe-infinity: out of memory");
    }
    for (uint32_t q = 0; q < s->R; q++) s->best[q] = -1;
    uint16_t ex[MODEL_MAX_TOP_K];
    float w[MODEL_MAX_TOP_K];
    for (uint32_t j = 0; j < s->H; j++)
        for (uint32_t pos = 0; pos < c->positions; pos++)
            for (uint32_t l = 0; l < s->L; l++) {
                int rc = c->route(c->route_user, c->profile_first + j, pos, l, ex, w, NULL);
                if (rc) {
                    moeinf_fini(s);
                    return rc;
                }
                for (uint32_t k = 0; k < c->top_k; k++)
                    if (ex[k] < s->E) HIST(s, j, l)[ex[k]] += 1;
            }
    for (uint32_t j = 0; j < s->H; j++) {
        double acc = 0;
        for (uint32_t l = 0; l < s->L; l++) {
            double sum = 0, sq = 0;
            for (uint32_t e = 0; e < s->E; e++) {
                double x = HIST(s, j, l)[e];
                sum += x;
                sq += x * x;
            }
            acc += sq;
            s->hrow[(size_t)j * s->L + l] = sum;
            s->hnorm[(size_t)j * s->L + l] = acc;
        }
    }
    return D2_OK;
}

double moeinf_similarity(const moeinf_state *s, uint32_t q, uint32_t j)
{
    if (q >= s->R || j >= s->H || s->rows[q] == 0) return 0;
    double a = s->cnorm[q], b = s->hnorm[(size_t)j * s->L + s->rows[q] - 1];
    return a > 0 && b > 0 ? s->dot[(size_t)q * s->H + j] / sqrt(a * b) : 0;
}

/* The memory policy's predicted activation: the mix of the matched
 * histories (one weight per request of the step), each row as a share of
 * its tokens; recomputed when the mix changes. */
static void feed_memory(moeinf_state *s, const prefetch_ctx *c)
{
    const mem_policy_type *t = mem_policy(c->mem);
    if (!t || t->victim != moeinf_mem_victim) return;
    moeinf_mem_state *ms = mem_policy_state(c->mem);
    if (!ms || !ms->prio || ms->layers != s->L || ms->experts != s->E) return;
    double w[MOEINF_MIX_MAX];
    double *wv = s->H <= MOEINF_MIX_MAX ? w : NULL;
    if (!wv) return; /* more history than the mix keeps: the memory policy stays LRU */
    memset(wv, 0, s->H * sizeof *wv);
    for (uint32_t i = 0; i < s->nact; i++)
        if (s->best[s->act[i]] >= 0) wv[s->best[s->act[i]]] += 1;
    if (ms->have && !memcmp(wv, s->weight, s->H * sizeof *wv)) return;
    memcpy(s->weight, wv, s->H * sizeof *wv);
    memset(ms->prio, 0, (size_t)s->L * s->E * sizeof *ms->prio);
    for (uint32_t j = 0; j < s->H; j++) {
        if (wv[j] == 0) continue;
        for (uint32_t l = 0; l < s->L; l++) {
            double rs = s->hrow[(size_t)j * s->L + l];
            if (rs <= 0) continue;
            for (uint32_t e = 0; e < s->E; e++) ms->prio[(size_t)l * s->E + e] += wv[j] * HIST(s, j, l)[e] / rs;
        }
    }
    ms->have = 1;
}

/* Record this layer step's uses in each request's EAM; rematch the requests
 * seen. */
int moeinf_observe(const prefetch_ctx *c)
{
    moeinf_state *s = c->state;
    if (!c->cur || c->layer >= s->L) return D2_OK;
    uint32_t l = c->layer;
    uint64_t mark = (uint64_t)c->fstep * s->L + l + 1;
    s->nact = 0;
    for (uint32_t t = 0; t < c->ntok; t++) {
        uint32_t q = c->tok_req[t];
        if (q >= s->R) D2_ERROR(D2_EINTERNAL, "prefetch moe-infinity: token %u of request %u, beyond the %u served", t, q, s->R);
        if (s->stamp[q] != mark) {
            s->stamp[q] = mark;
            s->act[s->nact++] = q;
            s->tokc[q] = 0;
        }
        s->tokc[q] += 1;
        if (s->rows[q] < l + 1) s->rows[q] = l + 1;
        for (uint32_t k = 0; k < c->top_k; k++) {
            uint16_t e = c->cur[(size_t)t * c->top_k + k];
            if (e >= s->E) continue;
            float *x = CUR(s, q, l) + e;
            s->cnorm[q] += 2.0 * *x + 1;
            *x += 1;
            double *d = s->dot + (size_t)q * s->H;
            for (uint32_t j = 0; j < s->H; j++) d[j] += HIST(s, j, l)[e];
        }
    }
    for (uint32_t i = 0; i < s->nact; i++) {
        uint32_t q = s->act[i];
        int32_t b = -1;
        double bs = -1;
        for (uint32_t j = 0; j < s->H; j++) {
            double v = moeinf_similarity(s, q, j);
            if (v > bs) bs = v, b = (int32_t)j;
        }
        s->best[q] = b;
    }
    feed_memory(s, c);
    return D2_OK;
}

/* Layer + 1's experts: each request of the step weighs its matched
 * history's next row (as shares of its tokens) by its own tokens; the
 * highest scores, ties to the lower id; experts no match uses are not
 * predicted. */
int moeinf_predict(const prefetch_ctx *c, uint32_t *out, uint32_t *n)
{
    moeinf_state *s = c->state;
    double score[MODEL_MAX_EXPERTS]; /* only the first s->E are used */
    memset(score, 0, s->E * sizeof *score);
    *n = 0;
    uint32_t l = c->layer + 1;
    if (l >= s->L) return D2_OK;
    for (uint32_t i = 0; i < s->nact; i++) {
        uint32_t q = s->act[i];
        if (s->best[q] < 0) continue;
        double rs = s->hrow[(size_t)s->best[q] * s->L + l];
        if (rs <= 0) continue;
        const float *row = HIST(s, s->best[q], l);
        for (uint32_t e = 0; e < s->E; e++) score[e] += s->tokc[q] * row[e] / rs;
    }
    *n = prefetch_top(score, s->E, c->want, 1, out);
    return D2_OK;
}

/* ---- the memory policy ---------------------------------------------------- */

int moeinf_mem_init(void *st, const mem *m)
{
    moeinf_mem_state *s = st;
    s->layers = mem_layers(m);
    s->experts = mem_experts(m);
    s->units = mem_units(m);
    s->prio = calloc((size_t)s->layers * s->experts + 1, sizeof *s->prio);
    s->last = calloc((size_t)s->layers * s->experts * s->units + 1, sizeof *s->last);
    if (!s->prio || !s->last) {
        moeinf_mem_fini(s);
        D2_ERROR(D2_ENOMEM, "mem moe-infinity: out of memory");
    }
    return D2_OK;
}

void moeinf_mem_fini(void *st)
{
    moeinf_mem_state *s = st;
    free(s->prio);
    free(s->last);
    s->prio = NULL;
    s->last = NULL;
}

void moeinf_mem_on_use(void *st, const mem *m, uint32_t id)
{
    moeinf_mem_state *s = st;
    s->last[id] = mem_entry_last_use(m, id);
}

/* Not predicted first, then the lowest predicted activation (0 for all
 * until the predictor has matched), then the layer needed furthest ahead
 * (layers are served in a cycle: the current one, just used, is furthest),
 * then least recently used, then the higher unit, then the lower id.  One
 * pass; an entry's layer, expert and unit come from its id
 * ((layer * E + expert) * U + unit). */
int moeinf_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)incoming;
    moeinf_mem_state *s = st;
    const uint32_t *c;
    uint32_t n, U = s->units, E = s->experts, L = s->layers, cur = mem_layer(m);
    mem_candidates(m, &c, &n);
    uint32_t best = c[0], bu = 0, bahead = 0;
    double bp = 0;
    int64_t blast = 0;
    int bpred = 2;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = c[i], le = id / U, u = id - le * U, l = le / E;
        int pred = mem_entry_predicted(m, id);
        double p = s->have ? s->prio[le] : 0;
        uint32_t ah = l > cur ? l - cur : l + L - cur;
        int64_t last = s->last[id];
        if (bpred != 2) {
            if (pred != bpred) {
                if (pred > bpred) continue;
            } else if (p != bp) {
                if (p > bp) continue;
            } else if (ah != bahead) {
                if (ah < bahead) continue;
            } else if (last != blast) {
                if (last > blast) continue;
            } else if (u != bu) {
                if (u < bu) continue;
            } else if (id > best)
                continue;
        }
        best = id, bp = p, bpred = pred, bahead = ah, blast = last, bu = u;
    }
    *out = best;
    return D2_OK;
}
