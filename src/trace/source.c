/* source.c - the simulator's routing source over a .d2t file (per-request
 * cursors, one chunk cached per cursor) or over the generator (one stream
 * per request, generated forward on demand).  See source.h for the wrap
 * and fallback rules. */
#include "trace/source.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/vec.h"
#include "trace/gen.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE_GEN_MAX_REQ (1u << 24) /* largest generator request id served (bounds memory) */
#define SOURCE_GEN_DESC_MAX 4096      /* bytes of the generator description hashed into the source id */

/* A request's cursor holds one token: every layer of the position last
 * asked for, decoded in one pass (missing layers already filled by the
 * fallback rule), so the simulator's order (all layers of a position, then
 * the next position) decodes each record once and answers the rest from
 * these small arrays.  Memory: layers x top_k per request touched. */
typedef struct cursor {
    trace_chunk_cache *c;
    uint32_t pos;      /* file position held, UINT32_MAX = none */
    uint16_t *e;       /* [layers][top_k] expert ids */
    float *w;          /* [layers][top_k] gate weights */
    uint8_t *b;        /* [layers][top_k] recorded bit-widths */
    int16_t *from;     /* [layers] scratch: recorded layer filling each layer, -1 = none yet */
} cursor;

struct trace_source {
    trace_shape shape;
    char id[48];
    /* file */
    trace_file *f;
    cursor **cur;      /* [requests in file], lazily allocated */
    /* generator */
    gen_model *g;
    gen_stream **st;   /* [nst] */
    size_t nst;
};

int trace_source_open_file(const char *path, trace_source **out)
{
    *out = NULL;
    trace_source *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = trace_file_open(path, &s->f);
    if (!rc) {
        const trace_header *h = trace_file_header(s->f);
        s->shape.layers = h->layers;
        s->shape.experts = h->experts;
        s->shape.top_k = h->top_k;
        s->shape.requests = h->requests;
        s->shape.has_bits = h->has_bits;
        s->cur = calloc(h->requests, sizeof *s->cur);
        if (!s->cur) { rc = D2_ENOMEM; d2_err_set("out of memory"); }
    }
    if (!rc) rc = hash_file_hex(path, s->id);
    if (rc) { trace_source_free(s); return rc; }
    *out = s;
    return D2_OK;
}

int trace_source_open_gen(const char *model_name, uint64_t seed, trace_source **out)
{
    *out = NULL;
    gen_params p;
    D2_TRY(gen_preset_load(model_name, &p));
    if (!p.model[0]) snprintf(p.model, sizeof p.model, "%s", model_name);
    trace_source *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = gen_model_new(&p, seed, &s->g);
    if (rc) { free(s); return rc; }
    const gen_params *q = gen_model_params(s->g);
    s->shape.layers = (uint32_t)q->layers;
    s->shape.experts = (uint32_t)q->experts;
    s->shape.top_k = (uint32_t)q->top_k;
    s->shape.requests = UINT32_MAX;
    s->shape.has_bits = 0;
    char desc[SOURCE_GEN_DESC_MAX];
    gen_model_describe(s->g, desc, sizeof desc);
    char hex[33];
    hash_mem_hex(desc, strlen(desc), hex);
    snprintf(s->id, sizeof s->id, "gen:%s", hex);
    *out = s;
    return D2_OK;
}

void trace_source_shape(const trace_source *s, trace_shape *out) { *out = s->shape; }
const char *trace_source_id(const trace_source *s) { return s->id; }

static void cursor_free(cursor *c)
{
    trace_chunk_cache_free(c->c);
    free(c->e); free(c->w); free(c->b); free(c->from);
    free(c);
}

void trace_source_free(trace_source *s)
{
    if (!s) return;
    if (s->cur) {
        for (uint32_t i = 0; i < s->shape.requests; i++)
            if (s->cur[i]) cursor_free(s->cur[i]);
        free(s->cur);
    }
    trace_file_close(s->f);
    for (size_t i = 0; i < s->nst; i++) gen_stream_free(s->st[i]);
    free(s->st);
    gen_model_free(s->g);
    free(s);
}

static int cursor_new(trace_source *s, cursor **out)
{
    const size_t LK = (size_t)s->shape.layers * s->shape.top_k;
    cursor *c = calloc(1, sizeof *c);
    if (c) {
        c->pos = UINT32_MAX;
        c->e = malloc(LK * sizeof *c->e);
        c->w = malloc(LK * sizeof *c->w);
        c->b = malloc(LK * sizeof *c->b);
        c->from = malloc(s->shape.layers * sizeof *c->from);
    }
    if (!c || !c->e || !c->w || !c->b || !c->from) {
        if (c) cursor_free(c);
        D2_ERROR(D2_ENOMEM, "out of memory");
    }
    int rc = trace_chunk_cache_new(s->f, &c->c);
    if (rc) { cursor_free(c); return rc; }
    *out = c;
    return D2_OK;
}

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Decode every record of file request fr's position p into the cursor in
 * one pass over the chunk bytes (the .d2t record layout, traces/README.md),
 * then fill the layers the file lacks: from the nearest earlier recorded
 * layer of the token, else from its next recorded layer. */
static int cursor_load_token(trace_source *s, cursor *c, uint32_t fr, const trace_req_info *info, uint32_t p)
{
    const uint32_t L = s->shape.layers, K = s->shape.top_k, rb = trace_record_bytes(K, s->shape.has_bits);
    const uint64_t lo = info->first, hi = info->first + info->records; /* [lo, hi) */
    const unsigned char *q;
    uint32_t n;
    uint64_t i;
    c->pos = UINT32_MAX;
    if (info->records == (uint64_t)info->positions * L) {
        i = lo + (uint64_t)p * L; /* complete request: direct */
    } else {
        uint64_t a = lo, b = hi; /* lower bound of (p, layer 0) */
        while (a < b) {
            uint64_t mid = a + (b - a) / 2;
            D2_TRY(trace_file_raw(s->f, c->c, mid, &q, &n));
            if (le32(q + 4) < p) a = mid + 1;
            else b = mid;
        }
        i = a;
    }
    for (uint32_t l = 0; l < L; l++) c->from[l] = -1;
    uint32_t got = 0;
    n = 0;
    for (; i < hi; i++, n--, q += rb) {
        if (n == 0) D2_TRY(trace_file_raw(s->f, c->c, i, &q, &n));
        uint32_t rq = le32(q), rp = le32(q + 4), layer = le16(q + 8);
        if (rq != fr || (got == 0 && rp != p))
            D2_ERROR(D2_EFORMAT, "%s: record %llu: request index does not match the records", trace_file_path(s->f),
                     (unsigned long long)i);
        if (rp != p) break;
        if (layer >= L)
            D2_ERROR(D2_EFORMAT, "%s: record %llu: layer %u out of range 0..%u", trace_file_path(s->f), (unsigned long long)i,
                     layer, L - 1);
        got++;
        if (c->from[layer] == (int16_t)layer) continue; /* a second record of a layer: the first wins */
        c->from[layer] = (int16_t)layer;
        const unsigned char *x = q + 12, *y = x + 2 * K, *z = y + 4 * K;
        uint16_t *e = c->e + (size_t)layer * K;
        float *w = c->w + (size_t)layer * K;
        uint8_t *bt = c->b + (size_t)layer * K;
        for (uint32_t j = 0; j < K; j++) {
            uint32_t u = le32(y + 4 * j);
            e[j] = le16(x + 2 * j);
            memcpy(&w[j], &u, sizeof u);
            bt[j] = s->shape.has_bits ? z[j] : 0;
        }
    }
    if (got == 0)
        D2_ERROR(D2_EFORMAT, "%s: request %u position %u: no records (the request index does not match the records)",
                 trace_file_path(s->f), fr, p);
    if (got < L) {
        int16_t last = -1, first = -1;
        for (uint32_t l = 0; l < L; l++) {
            if (c->from[l] == (int16_t)l) { last = (int16_t)l; if (first < 0) first = last; }
            else c->from[l] = last; /* -1 while no earlier layer: filled from `first` below */
        }
        for (uint32_t l = 0; l < L; l++) {
            int16_t src = c->from[l] < 0 ? first : c->from[l];
            if (src == (int16_t)l) continue;
            memcpy(c->e + (size_t)l * K, c->e + (size_t)src * K, K * sizeof *c->e);
            memcpy(c->w + (size_t)l * K, c->w + (size_t)src * K, K * sizeof *c->w);
            memcpy(c->b + (size_t)l * K, c->b + (size_t)src * K, K);
        }
    }
    c->pos = p;
    return D2_OK;
}

static int route_file(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                      uint8_t *bits)
{
    /* wrap: request modulo the file's count, position modulo the request's length */
    uint32_t fr = req < s->shape.requests ? req : req % s->shape.requests; /* no division in the common case */
    const trace_req_info *info = trace_file_request(s->f, fr);
    uint32_t p = pos < info->positions ? pos : pos % info->positions;
    cursor *c = s->cur[fr];
    if (!c) {
        D2_TRY(cursor_new(s, &c));
        s->cur[fr] = c;
    }
    if (c->pos != p) D2_TRY(cursor_load_token(s, c, fr, info, p));
    const uint32_t K = s->shape.top_k;
    const size_t at = (size_t)layer * K;
    for (uint32_t j = 0; j < K; j++) { experts[j] = c->e[at + j]; weights[j] = c->w[at + j]; } /* K is small: no memcpy call */
    if (bits)
        for (uint32_t j = 0; j < K; j++) bits[j] = c->b[at + j];
    return D2_OK;
}

static int route_gen(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                     uint8_t *bits)
{
    if (req >= SOURCE_GEN_MAX_REQ) D2_ERROR(D2_ERANGE, "generator source: request %u beyond %u", req, SOURCE_GEN_MAX_REQ - 1);
    if (req >= s->nst) {
        size_t n = s->nst;
        D2_TRY(VEC_RESERVE(s->st, s->nst, (size_t)req + 1));
        memset(s->st + n, 0, (s->nst - n) * sizeof *s->st);
    }
    if (!s->st[req]) D2_TRY(gen_stream_new(s->g, req, &s->st[req]));
    gen_stream *g = s->st[req];
    uint32_t at = gen_stream_pos(g);
    /* a stream only runs forward: going back regenerates from position 0 */
    if (at != UINT32_MAX && pos < at) { D2_TRY(gen_stream_reset(g)); at = UINT32_MAX; }
    while (at == UINT32_MAX || at < pos) at = gen_stream_next(g);
    gen_stream_route(g, layer, experts, weights);
    if (bits) memset(bits, 0, s->shape.top_k);
    return D2_OK;
}

int trace_source_route(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                       uint8_t *bits)
{
    if (layer >= s->shape.layers) D2_ERROR(D2_EINVAL, "trace source: layer %u out of range 0..%u", layer, s->shape.layers - 1);
    return s->f ? route_file(s, req, pos, layer, experts, weights, bits) : route_gen(s, req, pos, layer, experts, weights, bits);
}
