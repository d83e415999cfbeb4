/* source.c - the simulator's routing source over a .d2t file (per-request
 * cursors, one chunk cached per cursor) or over the generator (one stream
 * per request, generated forward on demand).  See source.h for the wrap
 * and fallback rules. */
#include "trace/source.h"
#include "core/err.h"
#include "core/hash.h"
#include "trace/gen.h"
#include "trace/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SOURCE_GEN_MAX_REQ (1u << 24) /* largest generator request id served (bounds memory) */

typedef struct cursor {
    trace_chunk_cache *c;
    uint64_t at;   /* record last served */
    trace_rec rec; /* its contents */
    int valid;
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
    uint32_t nst;
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
    char desc[4096];
    gen_model_describe(s->g, desc, sizeof desc);
    char hex[33];
    hash_mem_hex(desc, strlen(desc), hex);
    snprintf(s->id, sizeof s->id, "gen:%s", hex);
    *out = s;
    return D2_OK;
}

void trace_source_shape(const trace_source *s, trace_shape *out) { *out = s->shape; }
const char *trace_source_id(const trace_source *s) { return s->id; }

void trace_source_free(trace_source *s)
{
    if (!s) return;
    if (s->cur) {
        for (uint32_t i = 0; i < s->shape.requests; i++)
            if (s->cur[i]) { trace_chunk_cache_free(s->cur[i]->c); free(s->cur[i]); }
        free(s->cur);
    }
    trace_file_close(s->f);
    for (uint32_t i = 0; i < s->nst; i++) gen_stream_free(s->st[i]);
    free(s->st);
    gen_model_free(s->g);
    free(s);
}

static int key_cmp(const trace_rec *r, uint32_t pos, uint32_t layer)
{
    if (r->pos != pos) return r->pos < pos ? -1 : 1;
    if (r->layer != layer) return r->layer < layer ? -1 : 1;
    return 0;
}

static int cursor_load(trace_source *s, cursor *c, uint64_t i)
{
    if (c->valid && c->at == i) return D2_OK;
    c->valid = 0;
    D2_TRY(trace_file_record(s->f, c->c, i, &c->rec));
    c->at = i;
    c->valid = 1;
    return D2_OK;
}

static int route_file(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                      uint8_t *bits)
{
    /* wrap: request modulo the file's count, position modulo the request's length */
    uint32_t fr = req % s->shape.requests;
    const trace_req_info *info = trace_file_request(s->f, fr);
    uint32_t p = pos % info->positions;
    cursor *c = s->cur[fr];
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) D2_ERROR(D2_ENOMEM, "out of memory");
        int rc = trace_chunk_cache_new(s->f, &c->c);
        if (rc) { free(c); return rc; }
        s->cur[fr] = c;
    }
    uint64_t lo = info->first, hi = info->first + info->records; /* [lo, hi) */
    uint64_t found = UINT64_MAX;
    /* fast paths for the simulator's order: the same record or the next one */
    if (c->valid && c->at >= lo && c->at < hi) {
        if (!key_cmp(&c->rec, p, layer)) found = c->at;
        else if (c->at + 1 < hi) {
            D2_TRY(cursor_load(s, c, c->at + 1));
            if (!key_cmp(&c->rec, p, layer)) found = c->at;
        }
    }
    if (found == UINT64_MAX && info->records == (uint64_t)info->positions * s->shape.layers) {
        found = lo + (uint64_t)p * s->shape.layers + layer; /* complete request: direct */
    }
    if (found == UINT64_MAX) {
        /* lower bound of (p, layer) */
        uint64_t a = lo, b = hi;
        while (a < b) {
            uint64_t mid = a + (b - a) / 2;
            D2_TRY(cursor_load(s, c, mid));
            if (key_cmp(&c->rec, p, layer) < 0) a = mid + 1;
            else b = mid;
        }
        found = a;
        if (a < hi) D2_TRY(cursor_load(s, c, a));
        if (a == hi || key_cmp(&c->rec, p, layer) != 0) {
            /* (p, layer) missing: nearest earlier layer of the same token, else the token's next recorded layer */
            if (a > lo) {
                D2_TRY(cursor_load(s, c, a - 1));
                if (c->rec.pos == p) found = a - 1;
            }
        }
    }
    D2_TRY(cursor_load(s, c, found));
    if (c->rec.req != fr || c->rec.pos != p)
        D2_ERROR(D2_EFORMAT, "%s: record %llu: request index does not match the records", trace_file_path(s->f),
                 (unsigned long long)found);
    const uint32_t K = s->shape.top_k;
    memcpy(experts, c->rec.experts, K * sizeof *experts);
    memcpy(weights, c->rec.weights, K * sizeof *weights);
    if (bits) memcpy(bits, c->rec.bits, K);
    return D2_OK;
}

static int route_gen(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                     uint8_t *bits)
{
    if (req >= SOURCE_GEN_MAX_REQ) D2_ERROR(D2_ERANGE, "generator source: request %u beyond %u", req, SOURCE_GEN_MAX_REQ - 1);
    if (req >= s->nst) {
        uint32_t n = s->nst ? s->nst : 16;
        while (n <= req) n *= 2;
        gen_stream **st = realloc(s->st, n * sizeof *st);
        if (!st) D2_ERROR(D2_ENOMEM, "out of memory");
        memset(st + s->nst, 0, (n - s->nst) * sizeof *st);
        s->st = st;
        s->nst = n;
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
