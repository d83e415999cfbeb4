/* stat.c - one streaming pass over records, then per-layer summaries.
 * Definitions (also in traces/README.md): share = slots of the expert / all
 * slots at the layer; Gini over the E shares sorted ascending; entropy in
 * bits; top-1 repeat over (pos, pos+1) pairs of one request at one layer. */
#include "trace/stat.h"
#include "core/err.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const param_def stat_defs[] = {
    {"level_mix", PARAM_STRING, offsetof(stat_params, level_mix), "0.3,0.4,0.3", 0, 0, "fractions",
     "bit-level mix of token-expert pairs for distinct_items; default: the paper's V1 capacities c_k (PAPER.md s.2)"},
    {"batch_max", PARAM_INT, offsetof(stat_params, batch_max), "64", 1, 32768, "requests",
     "largest batch R for distinct experts/items (R = 1,2,4,..); the paper evaluates 4..32"},
};
const param_table stat_params_table = {"stat", "stat", stat_defs, sizeof stat_defs / sizeof stat_defs[0]};

void stat_params_default(stat_params *p) { param_defaults(&stat_params_table, p); }

struct stat_acc {
    uint32_t L, E, K;
    uint64_t records, tokens;
    uint32_t requests;
    uint64_t *count;      /* [L][E] slots */
    uint64_t *nrec;       /* [L] */
    uint64_t *rep_pairs, *rep_hits; /* [L] */
    uint64_t *overlap;    /* [L] sum of |S & S'| */
    /* cross-layer transitions, sparse: key ((l * E) + a) * E + b for top-1 a
     * at layer l and expert b at l+1; memory grows with the distinct pairs
     * seen (at most records x k), never with layers x experts^2 */
    struct tr_ent { uint64_t key, top1, anyk; } *tr; /* open addressing, key+1 (0 = empty) */
    size_t tr_cap, tr_n;
    int tr_failed;                                  /* out of memory while counting */
    int light;                                      /* stat_set_light: no transitions, no distinct_* */
    double *wsum, *wsq;   /* [L][K] */
    /* token state */
    int have_tok;
    uint32_t tok_req, tok_pos;
    uint8_t *cur_ok, *prev_ok;     /* [L] */
    uint16_t *cur_set, *prev_set;  /* [L][K] */
    int32_t last_layer;            /* last layer seen in the current token, -1 none */
    /* results */
    int finished;
    stat_layer *lay;
    uint32_t batch[STAT_BATCH_MAX];
    int nbatch;
    double mix[STAT_LEVELS_MAX];
    int nmix;
};

int stat_new(uint32_t layers, uint32_t experts, uint32_t top_k, stat_acc **out)
{
    *out = NULL;
    if (!layers || !experts || !top_k || top_k > TRACE_K_MAX || top_k > experts || experts > 65535 || layers > 65535)
        D2_ERROR(D2_EINVAL, "stat: bad shape %u layers, %u experts, top-%u", layers, experts, top_k);
    stat_acc *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    s->L = layers; s->E = experts; s->K = top_k;
    size_t LE = (size_t)layers * experts;
    s->count = calloc(LE, sizeof *s->count);
    s->nrec = calloc(layers, sizeof *s->nrec);
    s->rep_pairs = calloc(layers, sizeof *s->rep_pairs);
    s->rep_hits = calloc(layers, sizeof *s->rep_hits);
    s->overlap = calloc(layers, sizeof *s->overlap);
    s->wsum = calloc((size_t)layers * top_k, sizeof *s->wsum);
    s->wsq = calloc((size_t)layers * top_k, sizeof *s->wsq);
    s->cur_ok = calloc(layers, 1);
    s->prev_ok = calloc(layers, 1);
    s->cur_set = calloc((size_t)layers * top_k, sizeof *s->cur_set);
    s->prev_set = calloc((size_t)layers * top_k, sizeof *s->prev_set);
    s->lay = calloc(layers, sizeof *s->lay);
    if (!s->count || !s->nrec || !s->rep_pairs || !s->rep_hits || !s->overlap || !s->wsum ||
        !s->wsq || !s->cur_ok || !s->prev_ok || !s->cur_set || !s->prev_set || !s->lay) {
        stat_free(s);
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    s->last_layer = -1;
    *out = s;
    return D2_OK;
}

void stat_set_light(stat_acc *s) { s->light = 1; }

void stat_free(stat_acc *s)
{
    if (!s) return;
    if (s->lay)
        for (uint32_t l = 0; l < s->L; l++) {
            free(s->lay[l].share);
            free(s->lay[l].distinct_experts);
            free(s->lay[l].distinct_items);
        }
    free(s->lay);
    free(s->count); free(s->nrec); free(s->rep_pairs); free(s->rep_hits); free(s->overlap);
    free(s->tr); free(s->wsum); free(s->wsq);
    free(s->cur_ok); free(s->prev_ok); free(s->cur_set); free(s->prev_set);
    free(s);
}

static uint64_t tr_hash(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

/* the entry of key (created), NULL when out of memory */
static struct tr_ent *tr_get(stat_acc *s, uint64_t key)
{
    if (2 * (s->tr_n + 1) > s->tr_cap) {
        size_t ncap = s->tr_cap ? 2 * s->tr_cap : 1024;
        struct tr_ent *n = calloc(ncap, sizeof *n);
        if (!n) return NULL;
        for (size_t i = 0; i < s->tr_cap; i++)
            if (s->tr[i].key) {
                size_t j = tr_hash(s->tr[i].key) & (ncap - 1);
                while (n[j].key) j = (j + 1) & (ncap - 1);
                n[j] = s->tr[i];
            }
        free(s->tr);
        s->tr = n;
        s->tr_cap = ncap;
    }
    size_t j = tr_hash(key + 1) & (s->tr_cap - 1);
    while (s->tr[j].key && s->tr[j].key != key + 1) j = (j + 1) & (s->tr_cap - 1);
    if (!s->tr[j].key) { s->tr[j].key = key + 1; s->tr_n++; }
    return &s->tr[j];
}

void stat_add(stat_acc *s, const trace_rec *r)
{
    const uint32_t K = s->K, E = s->E, l = r->layer;
    if (l >= s->L) return; /* callers pass checked records; ignore defensively */
    if (!s->have_tok || r->req != s->tok_req || r->pos != s->tok_pos) {
        /* new token: the current one becomes "previous" iff this is pos+1 of the same request */
        int next = s->have_tok && r->req == s->tok_req && r->pos == s->tok_pos + 1;
        if (!s->have_tok || r->req != s->tok_req) s->requests++;
        uint8_t *t8 = s->prev_ok; s->prev_ok = s->cur_ok; s->cur_ok = t8;
        uint16_t *t16 = s->prev_set; s->prev_set = s->cur_set; s->cur_set = t16;
        if (!next) memset(s->prev_ok, 0, s->L);
        memset(s->cur_ok, 0, s->L);
        s->have_tok = 1;
        s->tok_req = r->req;
        s->tok_pos = r->pos;
        s->tokens++;
        s->last_layer = -1;
    }
    s->records++;
    s->nrec[l]++;
    uint64_t *c = s->count + (size_t)l * E;
    uint16_t *set = s->cur_set + (size_t)l * K;
    for (uint32_t j = 0; j < K; j++) {
        c[r->experts[j]]++;
        set[j] = r->experts[j];
        double w = r->weights[j];
        s->wsum[(size_t)l * K + j] += w;
        s->wsq[(size_t)l * K + j] += w * w;
    }
    s->cur_ok[l] = 1;
    if (s->prev_ok[l]) {
        const uint16_t *ps = s->prev_set + (size_t)l * K;
        s->rep_pairs[l]++;
        if (ps[0] == set[0]) s->rep_hits[l]++;
        uint32_t ov = 0;
        for (uint32_t a = 0; a < K; a++)
            for (uint32_t b = 0; b < K; b++) ov += ps[a] == set[b];
        s->overlap[l] += ov;
    }
    if (!s->light && l > 0 && s->last_layer == (int32_t)l - 1) {
        uint16_t a = s->cur_set[(size_t)(l - 1) * K];
        uint64_t base = ((uint64_t)(l - 1) * E + a) * E;
        for (uint32_t j = 0; j < K && !s->tr_failed; j++) {
            struct tr_ent *t = tr_get(s, base + set[j]);
            if (!t) { s->tr_failed = 1; break; }
            t->anyk++;
            if (j == 0) t->top1++;
        }
    }
    s->last_layer = (int32_t)l;
}

void stat_add_shares(stat_acc *s, uint32_t layer, const double *w)
{
    if (layer >= s->L) return;
    /* Activation tables give fractions or counts; scale to 1e9 slots so the
     * share vector is kept to ~1e-9.  No records are counted (records = 0,
     * gate weights and locality undefined). */
    double tot = 0;
    for (uint32_t e = 0; e < s->E; e++) tot += w[e] > 0 ? w[e] : 0;
    if (tot <= 0) return;
    uint64_t *c = s->count + (size_t)layer * s->E;
    for (uint32_t e = 0; e < s->E; e++) c[e] += (uint64_t)llround((w[e] > 0 ? w[e] : 0) / tot * 1e9);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int parse_mix(stat_acc *s, const char *txt)
{
    s->nmix = 0;
    const char *p = txt;
    double tot = 0;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || v < 0 || s->nmix == STAT_LEVELS_MAX)
            D2_ERROR(D2_EINVAL, "stat.level_mix \"%s\": expected up to %d fractions >= 0 separated by commas", txt,
                     STAT_LEVELS_MAX);
        s->mix[s->nmix++] = v;
        tot += v;
        p = end;
        if (*p == ',') p++;
        else if (*p) D2_ERROR(D2_EINVAL, "stat.level_mix \"%s\": unexpected '%c'", txt, *p);
    }
    if (!s->nmix || fabs(tot - 1) > 1e-6) D2_ERROR(D2_EINVAL, "stat.level_mix \"%s\": fractions must sum to 1", txt);
    return D2_OK;
}

static int cmp_tr(const void *a, const void *b)
{
    uint64_t x = ((const struct tr_ent *)a)->key, y = ((const struct tr_ent *)b)->key;
    return x < y ? -1 : x > y;
}

int stat_finish(stat_acc *s, const stat_params *p)
{
    if (s->finished) D2_ERROR(D2_EINTERNAL, "stat_finish called twice");
    D2_TRY(parse_mix(s, p->level_mix));
    s->nbatch = 0;
    for (int64_t R = 1; R <= p->batch_max && s->nbatch < STAT_BATCH_MAX; R *= 2) s->batch[s->nbatch++] = (uint32_t)R;
    const uint32_t L = s->L, E = s->E, K = s->K;
    if (s->tr_failed) D2_ERROR(D2_ENOMEM, "out of memory (cross-layer transition counts)");
    /* transitions sorted by key: grouped by layer, then by the top-1 a */
    size_t nt = 0;
    for (size_t i = 0; i < s->tr_cap; i++)
        if (s->tr[i].key) s->tr[nt++] = s->tr[i];
    for (size_t i = 0; i < nt; i++) s->tr[i].key--;
    if (nt) qsort(s->tr, nt, sizeof *s->tr, cmp_tr); /* qsort(NULL, 0) is undefined: found by tests/fuzz (table) */
    s->tr_cap = s->tr_n = 0; /* the table is now a sorted array of nt entries */
    size_t ti = 0;
    double *sorted = malloc(E * sizeof *sorted);
    uint64_t *col = calloc(E, sizeof *col);
    if (!sorted || !col) { free(sorted); free(col); D2_ERROR(D2_ENOMEM, "out of memory"); }
    for (uint32_t l = 0; l < L; l++) {
        stat_layer *y = &s->lay[l];
        y->records = s->nrec[l];
        y->share = calloc(E, sizeof *y->share);
        y->distinct_experts = calloc((size_t)s->nbatch + 1, sizeof(double));
        y->distinct_items = calloc((size_t)s->nbatch + 1, sizeof(double));
        if (!y->share || !y->distinct_experts || !y->distinct_items) { free(sorted); free(col); D2_ERROR(D2_ENOMEM, "out of memory"); }
        const uint64_t *c = s->count + (size_t)l * E;
        uint64_t slots = 0;
        for (uint32_t e = 0; e < E; e++) slots += c[e];
        double mean = 1.0 / E, var = 0, mx = 0, ent = 0;
        for (uint32_t e = 0; e < E; e++) {
            double v = slots ? (double)c[e] / (double)slots : 0;
            y->share[e] = v;
            sorted[e] = v;
            var += (v - mean) * (v - mean);
            if (v > mx) mx = v;
            if (v > 0) ent -= v * log2(v);
        }
        if (!slots) {
            y->max_over_mean = y->cv = y->gini = y->entropy = NAN;
        } else {
            y->max_over_mean = mx / mean;
            y->cv = sqrt(var / E) / mean;
            y->entropy = ent;
            qsort(sorted, E, sizeof *sorted, cmp_double);
            /* Gini = sum_i (2i - n - 1) x_(i) / (n sum x), i = 1..n ascending */
            double g = 0;
            for (uint32_t i = 0; i < E; i++) g += (2.0 * (i + 1) - E - 1) * sorted[i];
            y->gini = g / E; /* sum x = 1 */
        }
        y->repeat_pairs = s->rep_pairs[l];
        y->top1_repeat = s->rep_pairs[l] ? (double)s->rep_hits[l] / (double)s->rep_pairs[l] : NAN;
        y->topk_overlap = s->rep_pairs[l] ? (double)s->overlap[l] / ((double)s->rep_pairs[l] * K) : NAN;
        y->next_top1_acc = y->next_top1_chance = y->next_topk_hit = NAN;
        if (l + 1 < L) {
            /* entries of layer l: keys in [l*E*E, (l+1)*E*E), grouped by a;
             * absent pairs count 0 */
            uint64_t tot = 0, best = 0, hit = 0, chance = 0;
            const uint64_t lo = (uint64_t)l * E * E, hi = lo + (uint64_t)E * E;
            size_t t0 = ti;
            while (ti < nt && s->tr[ti].key < hi) {
                uint64_t a = (s->tr[ti].key - lo) / E;
                uint64_t m = 0, n = 0;
                size_t na = 0;
                for (; ti < nt && s->tr[ti].key < hi && (s->tr[ti].key - lo) / E == a; ti++) {
                    const struct tr_ent *t = &s->tr[ti];
                    n += t->top1;
                    if (t->top1 > m) m = t->top1;
                    col[(t->key - lo) % E] += t->top1;
                    sorted[na++] = (double)t->anyk; /* at most E entries per a */
                }
                tot += n;
                best += m;
                /* top-K successors of a by count: the K largest (absent ones are 0) */
                qsort(sorted, na, sizeof *sorted, cmp_double);
                for (uint32_t j = 0; j < K && j < na; j++) hit += (uint64_t)sorted[na - 1 - j];
            }
            for (size_t u = t0; u < ti; u++) {
                uint64_t b = (s->tr[u].key - lo) % E;
                if (col[b] > chance) chance = col[b];
            }
            for (size_t u = t0; u < ti; u++) col[(s->tr[u].key - lo) % E] = 0;
            if (tot) {
                y->next_top1_acc = (double)best / (double)tot;
                y->next_top1_chance = (double)chance / (double)tot;
                y->next_topk_hit = (double)hit / ((double)tot * K);
            }
        }
        for (uint32_t j = 0; j < K; j++) {
            double n = (double)s->nrec[l];
            double m = n ? s->wsum[(size_t)l * K + j] / n : NAN;
            double v = n ? s->wsq[(size_t)l * K + j] / n - m * m : NAN;
            y->w_mean[j] = m;
            y->w_std[j] = n ? sqrt(v > 0 ? v : 0) : NAN;
        }
        /* Independent tokens: expert e is in a token's top-k with q_e = K * share_e;
         * a level-j item of e is needed iff some token on e picks level >= j
         * (nested levels, PAPER.md s.3), each pair at level i with prob mix[i]. */
        for (int b = 0; b < s->nbatch && s->light; b++) y->distinct_experts[b] = y->distinct_items[b] = NAN;
        for (int b = 0; b < s->nbatch && !s->light; b++) {
            double R = s->batch[b], de = 0, di = 0;
            for (uint32_t e = 0; e < E; e++) {
                double q = fmin(1.0, K * y->share[e]);
                de += 1 - pow(1 - q, R);
                double ge = 1;
                for (int j = 0; j < s->nmix; j++) {
                    di += 1 - pow(1 - q * ge, R);
                    ge -= s->mix[j];
                    if (ge < 0) ge = 0;
                }
            }
            y->distinct_experts[b] = slots ? de : NAN;
            y->distinct_items[b] = slots ? di : NAN;
        }
    }
    free(sorted);
    free(col);
    s->finished = 1;
    return D2_OK;
}

const stat_layer *stat_layer_get(const stat_acc *s, uint32_t l) { return l < s->L ? &s->lay[l] : NULL; }
uint32_t stat_layers(const stat_acc *s) { return s->L; }
uint32_t stat_experts(const stat_acc *s) { return s->E; }
uint32_t stat_top_k(const stat_acc *s) { return s->K; }
uint64_t stat_records(const stat_acc *s) { return s->records; }
uint64_t stat_tokens(const stat_acc *s) { return s->tokens; }
uint32_t stat_requests(const stat_acc *s) { return s->requests; }
int stat_batches(const stat_acc *s, const uint32_t **b) { *b = s->batch; return s->nbatch; }

static int layer_values(const stat_acc *s, size_t off, double *v)
{
    int n = 0;
    for (uint32_t l = 0; l < s->L; l++) {
        double x;
        memcpy(&x, (const char *)&s->lay[l] + off, sizeof x);
        if (!isnan(x)) v[n++] = x;
    }
    return n;
}

double stat_median(const stat_acc *s, size_t off)
{
    double *v = malloc(s->L * sizeof *v);
    if (!v) return NAN;
    int n = layer_values(s, off, v);
    double m = NAN;
    if (n) {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        m = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    }
    free(v);
    return m;
}

double stat_mean(const stat_acc *s, size_t off)
{
    double *v = malloc(s->L * sizeof *v);
    if (!v) return NAN;
    int n = layer_values(s, off, v);
    double m = 0;
    for (int i = 0; i < n; i++) m += v[i];
    free(v);
    return n ? m / n : NAN;
}

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *arr(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, num(v[i]));
    return a;
}

json_t *stat_json(const stat_acc *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "tokens", json_integer((json_int_t)s->tokens));
    json_object_set_new(o, "requests", json_integer((json_int_t)s->requests));
    json_object_set_new(o, "layers_n", json_integer(s->L));
    json_object_set_new(o, "experts_n", json_integer(s->E));
    json_object_set_new(o, "top_k", json_integer(s->K));
    json_t *b = json_array();
    for (int i = 0; i < s->nbatch; i++) json_array_append_new(b, json_integer(s->batch[i]));
    json_object_set_new(o, "batch", b);
    json_object_set_new(o, "level_mix", arr(s->mix, (size_t)s->nmix));
    json_t *sum = json_object();
#define SUMF(key, field)                                                                          \
    json_object_set_new(sum, key "_median", num(stat_median(s, offsetof(stat_layer, field))));   \
    json_object_set_new(sum, key "_mean", num(stat_mean(s, offsetof(stat_layer, field))))
    SUMF("max_over_mean", max_over_mean);
    SUMF("cv", cv);
    SUMF("gini", gini);
    SUMF("entropy", entropy);
    SUMF("top1_repeat", top1_repeat);
    SUMF("next_top1_acc", next_top1_acc);
#undef SUMF
    json_object_set_new(o, "summary", sum);
    json_t *ls = json_array();
    for (uint32_t l = 0; l < s->L; l++) {
        const stat_layer *y = &s->lay[l];
        json_t *j = json_object();
        json_object_set_new(j, "layer", json_integer(l));
        json_object_set_new(j, "records", json_integer((json_int_t)y->records));
        json_object_set_new(j, "share", arr(y->share, s->E));
        json_object_set_new(j, "max_over_mean", num(y->max_over_mean));
        json_object_set_new(j, "cv", num(y->cv));
        json_object_set_new(j, "gini", num(y->gini));
        json_object_set_new(j, "entropy", num(y->entropy));
        json_object_set_new(j, "top1_repeat", num(y->top1_repeat));
        json_object_set_new(j, "repeat_pairs", json_integer((json_int_t)y->repeat_pairs));
        json_object_set_new(j, "topk_overlap", num(y->topk_overlap));
        json_object_set_new(j, "next_top1_acc", num(y->next_top1_acc));
        json_object_set_new(j, "next_top1_chance", num(y->next_top1_chance));
        json_object_set_new(j, "next_topk_hit", num(y->next_topk_hit));
        json_object_set_new(j, "weight_mean", arr(y->w_mean, s->K));
        json_object_set_new(j, "weight_std", arr(y->w_std, s->K));
        json_object_set_new(j, "distinct_experts", arr(y->distinct_experts, (size_t)s->nbatch));
        json_object_set_new(j, "distinct_items", arr(y->distinct_items, (size_t)s->nbatch));
        json_array_append_new(ls, j);
    }
    json_object_set_new(o, "layers", ls);
    return o;
}

int stat_file(const char *path, const stat_params *p, stat_acc **out)
{
    *out = NULL;
    trace_reader *r;
    D2_TRY(trace_reader_open(path, &r));
    const trace_header *h = trace_reader_header(r);
    stat_acc *s;
    int rc = stat_new(h->layers, h->experts, h->top_k, &s);
    if (rc) { trace_reader_close(r); return rc; }
    trace_rec rec;
    while ((rc = trace_reader_next(r, &rec)) == 1) stat_add(s, &rec);
    trace_reader_close(r);
    if (!rc) rc = stat_finish(s, p);
    if (rc) { stat_free(s); return rc; }
    *out = s;
    return D2_OK;
}
