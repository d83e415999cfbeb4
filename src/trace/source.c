/* source.c - the simulator's routing source over a .d2t file (per-request
 * cursors, one chunk cached per cursor) or over the generator (one stream
 * per request, generated forward on demand and remembered in a bounded
 * process-wide memo shared by sources of the same id).  See source.h for
 * the wrap and fallback rules. */
#include "trace/source.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/units.h"
#include "core/vec.h"
#include "trace/gen.h"
#include "trace/trace.h"
#include "trace/trace_int.h"

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
    /* generator: the routing lives in a memo entry shared with every open
     * source of the same id (below) */
    struct memo_ent *m;
};

/* The memo of generated routing.  A sweep worker (one process) runs many
 * jobs on the same model preset and seed, and each job used to regenerate
 * the same routing; the memo keeps, per source id (a hash of the generator
 * parameters, seed and version: the id stored with results, so equal ids
 * mean equal routing), every position generated so far of every request,
 * and a later source with that id replays them.  Recording starts with the
 * second source of an id (a single run, e.g. one `simulate`, never reuses
 * its routing and would only pay for the copies), or with the first after
 * trace_source_memo_record_first (a sweep worker).  What a source answers does
 * not change: a memo hit returns the bytes the stream produced.  Bounded
 * by trace_source_memo_limit (D2MOE_ROUTE_MEMO_MB, default
 * SOURCE_MEMO_DEFAULT_MB): over the bound, entries no open source uses go
 * first (least recently opened), then a request stops being recorded and
 * is generated as before (its stream runs forward; going back regenerates
 * from position 0).  A failed allocation also just stops recording.  Not
 * thread-safe: the process is single-threaded (sweep workers are
 * processes). */
#define SOURCE_MEMO_DEFAULT_MB 128 /* default bound of the memo, MiB */
#define SOURCE_MEMO_ENTRIES 8      /* distinct generator ids kept at once */
#define MEMO_REC(K) ((size_t)(K) * (sizeof(float) + sizeof(uint16_t))) /* bytes of one (position, layer) record */

typedef struct memo_req {
    gen_stream *st;    /* the request's stream; NULL until first asked */
    uint32_t n;        /* positions recorded: 0..n-1 */
    size_t cap;        /* positions allocated in rec */
    unsigned char *rec; /* [cap][layers] records of MEMO_REC(top_k) bytes: top_k gate weights
                         * (float), then top_k expert ids (uint16): one array per request, so
                         * the simulator's order (requests inner) reads one stream per request */
    int stopped;       /* 1: no longer recorded (bound or allocation failure) */
} memo_req;

typedef struct memo_ent {
    char id[48];
    gen_model *g;      /* owned */
    memo_req *rq;      /* [nrq], by request id */
    size_t nrq;
    size_t bytes;      /* recorded routing held, bytes */
    unsigned refs;     /* open sources using it */
    unsigned opens;    /* sources opened on it so far; recording starts with the memo_from-th */
    uint64_t opened;   /* memo tick of the last open */
} memo_ent;

static memo_ent *memo_tab[SOURCE_MEMO_ENTRIES];
static size_t memo_bytes;        /* sum of entry bytes */
static size_t memo_limit;        /* bound, bytes */
static int memo_limit_set;       /* 0 until set or read from the environment */
static uint64_t memo_tick;
static unsigned memo_from = 2; /* recording starts with this source of an id (trace_source_memo_record_first) */

static size_t memo_bound(void)
{
    if (!memo_limit_set) {
        memo_limit_set = 1;
        /* an unreadable value falls back to the default: the memo never changes results */
        memo_limit = units_env_mib("D2MOE_ROUTE_MEMO_MB", SOURCE_MEMO_DEFAULT_MB);
    }
    return memo_limit;
}

size_t trace_source_memo_bytes(void) { return memo_bytes; }

void trace_source_memo_record_first(int on) { memo_from = on ? 1 : 2; }

static void memo_ent_free(memo_ent *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nrq; i++) {
        gen_stream_free(m->rq[i].st);
        free(m->rq[i].rec);
    }
    free(m->rq);
    gen_model_free(m->g);
    memo_bytes -= m->bytes;
    free(m);
}

/* free unused entries, least recently opened first, until `need` more
 * bytes fit the bound; 1 if they fit */
static int memo_make_room(size_t need)
{
    const size_t lim = memo_bound();
    while (memo_bytes + need > lim) {
        int v = -1;
        for (int i = 0; i < SOURCE_MEMO_ENTRIES; i++)
            if (memo_tab[i] && !memo_tab[i]->refs && (v < 0 || memo_tab[i]->opened < memo_tab[v]->opened)) v = i;
        if (v < 0) return 0;
        memo_ent_free(memo_tab[v]);
        memo_tab[v] = NULL;
    }
    return 1;
}

void trace_source_memo_limit(size_t bytes)
{
    memo_limit_set = 1;
    memo_limit = bytes;
    memo_make_room(0);
    for (int i = 0; !bytes && i < SOURCE_MEMO_ENTRIES; i++) /* off: entries no source uses go now */
        if (memo_tab[i] && !memo_tab[i]->refs) {
            memo_ent_free(memo_tab[i]);
            memo_tab[i] = NULL;
        }
}

/* a source lets go of its entry: an entry outside the table (memo off or
 * full) goes with its last source; one in the table stays for the next
 * source of its id, unless the bound is now exceeded */
static void memo_release(memo_ent *m)
{
    if (!m || --m->refs) return;
    int v = -1;
    for (int i = 0; i < SOURCE_MEMO_ENTRIES; i++)
        if (memo_tab[i] == m) v = i;
    if (v < 0 || !memo_bound()) {
        memo_ent_free(m);
        if (v >= 0) memo_tab[v] = NULL;
        return;
    }
    memo_make_room(0);
}

/* the entry for generator model g (taken over: freed here on a hit) with id */
static int memo_acquire(gen_model *g, const char *id, memo_ent **out)
{
    for (int i = 0; i < SOURCE_MEMO_ENTRIES; i++)
        if (memo_tab[i] && !strcmp(memo_tab[i]->id, id)) {
            gen_model_free(g);
            memo_tab[i]->refs++;
            memo_tab[i]->opens++;
            memo_tab[i]->opened = ++memo_tick;
            *out = memo_tab[i];
            return D2_OK;
        }
    memo_ent *m = calloc(1, sizeof *m);
    if (!m) { gen_model_free(g); D2_ERROR(D2_ENOMEM, "out of memory"); }
    snprintf(m->id, sizeof m->id, "%s", id);
    m->g = g;
    m->refs = 1;
    m->opens = 1;
    m->opened = ++memo_tick;
    if (memo_bound()) { /* a free slot, else the least recently opened unused entry's; none: m stays private */
        int v = -1;
        for (int i = 0; i < SOURCE_MEMO_ENTRIES && v < 0; i++)
            if (!memo_tab[i]) v = i;
        if (v < 0) /* the table is full */
            for (int i = 0; i < SOURCE_MEMO_ENTRIES; i++)
                if (!memo_tab[i]->refs && (v < 0 || memo_tab[i]->opened < memo_tab[v]->opened)) v = i;
        if (v >= 0) {
            memo_ent_free(memo_tab[v]);
            memo_tab[v] = m;
        }
    }
    *out = m;
    return D2_OK;
}

/* record the stream's current position (== q->n) of every layer */
static void memo_record(memo_ent *m, memo_req *q, uint32_t L, uint32_t K)
{
    int in_tab = 0;
    for (int i = 0; i < SOURCE_MEMO_ENTRIES; i++) in_tab |= memo_tab[i] == m;
    const size_t RB = MEMO_REC(K), PB = (size_t)L * RB; /* bytes per record, per position */
    if (q->n == q->cap) {
        size_t nc = q->cap ? 2 * q->cap : 16, add = (nc - q->cap) * PB;
        if (!in_tab || nc > UINT32_MAX || !memo_make_room(add)) { q->stopped = 1; return; }
        unsigned char *x = realloc(q->rec, nc * PB);
        if (!x) { q->stopped = 1; return; } /* a failed allocation only stops recording */
        q->rec = x;
        q->cap = nc;
        m->bytes += add;
        memo_bytes += add;
    }
    for (uint32_t l = 0; l < L; l++) {
        uint16_t e[TRACE_K_MAX];
        float w[TRACE_K_MAX];
        gen_stream_route(q->st, l, e, w);
        unsigned char *r = q->rec + (size_t)q->n * PB + (size_t)l * RB;
        memcpy(r, w, K * sizeof *w);
        memcpy(r + K * sizeof *w, e, K * sizeof *e);
    }
    q->n++;
}

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
    D2_TRY(gen_preset_resolve(model_name, &p)); /* a missing model named where its name came from */
    trace_source *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    gen_model *g;
    int rc = gen_model_new(&p, seed, &g);
    if (rc) { free(s); return rc; }
    const gen_params *q = gen_model_params(g);
    s->shape.layers = (uint32_t)q->layers;
    s->shape.experts = (uint32_t)q->experts;
    s->shape.top_k = (uint32_t)q->top_k;
    s->shape.requests = UINT32_MAX;
    s->shape.has_bits = 0;
    char desc[SOURCE_GEN_DESC_MAX];
    gen_model_describe(g, desc, sizeof desc);
    char hex[33];
    hash_mem_hex(desc, strlen(desc), hex);
    snprintf(s->id, sizeof s->id, "gen:%s", hex);
    if ((rc = memo_acquire(g, s->id, &s->m))) { free(s); return rc; } /* g is the memo's (or freed) from here */
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
    memo_release(s->m);
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
/* one record's routing after its 12-byte head: K ids (le16), K weights
 * (le32 floats), K bit-widths if the trace has them (inline: called with a
 * literal K the loops unroll) */
static inline __attribute__((always_inline)) void rec_decode(const unsigned char *x, uint32_t K, int has_bits, uint16_t *e,
                                                             float *w, uint8_t *bt)
{
    const unsigned char *y = x + 2 * K, *z = y + 4 * K;
    for (uint32_t j = 0; j < K; j++) {
        uint32_t u = le32(y + 4 * j);
        e[j] = le16(x + 2 * j);
        memcpy(&w[j], &u, sizeof u);
        bt[j] = has_bits ? z[j] : 0;
    }
}

/* What trace_rec_check asks of a record's routing (the streaming reader's
 * checks, which the simulator's decoding skipped: a damaged but
 * checksummed file replayed duplicate experts, NaN weights, a phase of 7),
 * the rules written once in trace_int.h, and the reserved byte 11 at 0
 * (trace_file_record names it).  1 = good.  The ids and weights as
 * decoded. */
static inline __attribute__((always_inline)) int rec_ok(const unsigned char *q, uint32_t K, uint32_t E, const uint16_t *e,
                                                        const float *w)
{
    return !q[11] && trace_rule_first(q[10], e, w, K, E).rule == TRACE_RULE_OK;
}

/* The error of a record rec_ok refused: trace_rec_check's message, as
 * trace stats gives it for the same record */
static int rec_bad(trace_source *s, cursor *c, uint64_t i)
{
    trace_rec r;
    D2_TRY(trace_file_record(s->f, c->c, i, &r));
    char where[600];
    snprintf(where, sizeof where, "%s: record %llu", trace_file_path(s->f), (unsigned long long)i);
    D2_TRY(trace_rec_check(&r, s->shape.layers, s->shape.experts, s->shape.top_k, where));
    D2_ERROR(D2_EFORMAT, "%s: damaged record", where);
}

/* A token's records are not where the request index and the order of the
 * records put them */
static int rec_misplaced(trace_source *s, uint64_t i, uint32_t fr, uint32_t p)
{
    D2_ERROR(D2_EFORMAT, "%s: record %llu: out of (request, position, layer) order (request %u position %u)",
             trace_file_path(s->f), (unsigned long long)i, fr, p);
}

static int cursor_load_token(trace_source *s, cursor *c, uint32_t fr, const trace_req_info *info, uint32_t p)
{
    const uint32_t L = s->shape.layers, K = s->shape.top_k, rb = trace_record_bytes(K, s->shape.has_bits);
    const uint64_t lo = info->first, hi = info->first + info->records; /* [lo, hi) */
    const unsigned char *q;
    uint32_t n;
    uint64_t i;
    c->pos = UINT32_MAX;
    const int complete = info->records == (uint64_t)info->positions * L;
    if (complete) {
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
        /* the search assumed the records in order: the one before must be
         * the previous position of the request (none before position 0) */
        if (a == lo && p != 0) return rec_misplaced(s, a, fr, p);
        if (a > lo) {
            D2_TRY(trace_file_raw(s->f, c->c, a - 1, &q, &n));
            if (le32(q) != fr || le32(q + 4) != p - 1) return rec_misplaced(s, a - 1, fr, p);
        }
    }
    for (uint32_t l = 0; l < L; l++) c->from[l] = -1;
    const int has_bits = s->shape.has_bits;
    uint32_t got = 0, prev = 0, phase = 0;
    n = 0;
    for (; i < hi; i++, n--, q += rb) {
        if (n == 0) D2_TRY(trace_file_raw(s->f, c->c, i, &q, &n));
        uint32_t rq = le32(q), rp = le32(q + 4), layer = le16(q + 8);
        if (rq != fr || (got == 0 && rp != p))
            D2_ERROR(D2_EFORMAT, "%s: record %llu: request index does not match the records", trace_file_path(s->f),
                     (unsigned long long)i);
        if (rp != p) {
            if (rp != p + 1) return rec_misplaced(s, i, fr, p); /* the next position, or the records are out of order */
            break;
        }
        if (layer >= L)
            D2_ERROR(D2_EFORMAT, "%s: record %llu: layer %u out of range 0..%u", trace_file_path(s->f), (unsigned long long)i,
                     layer, L - 1);
        const size_t at = (size_t)layer * K;
        if (K == 2) rec_decode(q + 12, 2, has_bits, c->e + at, c->w + at, c->b + at); /* the common top-2: unrolled */
        else rec_decode(q + 12, K, has_bits, c->e + at, c->w + at, c->b + at);
        if (!rec_ok(q, K, s->shape.experts, c->e + at, c->w + at)) return rec_bad(s, c, i);
        /* layers strictly increasing, one phase: as the writer and the streaming reader require */
        if (got && (layer <= prev || q[10] != phase)) return rec_misplaced(s, i, fr, p);
        prev = layer;
        phase = q[10];
        got++;
        c->from[layer] = (int16_t)layer;
    }
    if (got == 0)
        D2_ERROR(D2_EFORMAT, "%s: request %u position %u: no records (the request index does not match the records)",
                 trace_file_path(s->f), fr, p);
    /* the request's last position ends its records; a complete request has every layer at every position */
    if ((i == hi && p + 1 != info->positions) || (complete && got != L))
        return rec_misplaced(s, i - 1, fr, p);
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

/* the cursor holding (req, pos) of the file: request modulo the file's
 * count, position modulo the request's length (no division in the common
 * case), its token decoded if it was not the one held */
static int file_cursor(trace_source *s, uint32_t req, uint32_t pos, cursor **out)
{
    uint32_t fr = req < s->shape.requests ? req : req % s->shape.requests;
    const trace_req_info *info = trace_file_request(s->f, fr);
    uint32_t p = pos < info->positions ? pos : pos % info->positions;
    cursor *c = s->cur[fr];
    if (!c) {
        D2_TRY(cursor_new(s, &c));
        s->cur[fr] = c;
    }
    if (c->pos != p) D2_TRY(cursor_load_token(s, c, fr, info, p));
    *out = c;
    return D2_OK;
}

/* A token of a complete request whose records are in order (layer l of
 * position p at first + p x layers + l, and the next record, if the
 * request has one, of the same request at position p + 1), decoded
 * straight into [layer][stride] places without the cursor's staging copy
 * (top-2).  It accepts exactly what cursor_load_token accepts for the
 * token.  *done = 0 when the records are not so (a gap, a duplicate, a
 * misplaced next record, anything the cursor's general path must see,
 * with its errors): nothing was written then that the general path does
 * not overwrite. */
static int file_token_direct(trace_source *s, uint32_t req, uint32_t pos, uint16_t *experts, float *weights, uint8_t *bits,
                             size_t stride, int *done)
{
    const uint32_t L = s->shape.layers, K = 2, rb = trace_record_bytes(K, s->shape.has_bits);
    *done = 0;
    uint32_t fr = req < s->shape.requests ? req : req % s->shape.requests;
    const trace_req_info *info = trace_file_request(s->f, fr);
    if (info->records != (uint64_t)info->positions * L) return D2_OK;
    uint32_t p = pos < info->positions ? pos : pos % info->positions;
    cursor *c = s->cur[fr];
    if (!c) {
        D2_TRY(cursor_new(s, &c));
        s->cur[fr] = c;
    }
    const uint64_t hi = info->first + info->records;
    uint64_t i = info->first + (uint64_t)p * L;
    const int has_bits = s->shape.has_bits;
    const unsigned char *q = NULL;
    uint32_t n = 0;
    const uint32_t E = s->shape.experts;
    unsigned phase = 0;
    for (uint32_t l = 0; l < L; l++, i++, n--, q += rb) {
        if (n == 0) D2_TRY(trace_file_raw(s->f, c->c, i, &q, &n));
        if (le32(q) != fr || le32(q + 4) != p || le16(q + 8) != l || (l && q[10] != phase)) return D2_OK;
        phase = q[10];
        uint8_t bt[2];
        uint16_t *e = experts + (size_t)l * stride;
        float *w = weights + (size_t)l * stride;
        rec_decode(q + 12, 2, has_bits, e, w, bits ? bits + (size_t)l * stride : bt);
        if (!rec_ok(q, 2, E, e, w)) return D2_OK; /* the general path names the record */
    }
    /* the general path reads the next record too: it must be the request's
     * position p + 1; at the request's end (i == hi) p is its last position,
     * since the request is complete */
    if (i < hi) {
        if (n == 0) D2_TRY(trace_file_raw(s->f, c->c, i, &q, &n));
        if (le32(q) != fr || le32(q + 4) != p + 1) return D2_OK;
    }
    *done = 1;
    return D2_OK;
}

/* K routed experts of the cursor's token from [at, at + K): ids, weights,
 * bit-widths (if bits is not NULL); called with a literal K the copies
 * become a few moves */
static inline __attribute__((always_inline)) void cursor_copy(const cursor *c, size_t at, uint32_t K, uint16_t *experts,
                                                              float *weights, uint8_t *bits)
{
    memcpy(experts, c->e + at, K * sizeof *experts);
    memcpy(weights, c->w + at, K * sizeof *weights);
    if (bits) memcpy(bits, c->b + at, K);
}

static int route_file(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                      uint8_t *bits)
{
    cursor *c;
    D2_TRY(file_cursor(s, req, pos, &c));
    const uint32_t K = s->shape.top_k;
    cursor_copy(c, (size_t)layer * K, K, experts, weights, bits);
    return D2_OK;
}

/* one recorded (position, layer) of the memo: K gate weights, then K ids */
static inline void memo_read(const unsigned char *r, uint32_t K, uint16_t *experts, float *weights)
{
    for (uint32_t j = 0; j < K; j++) {
        memcpy(&weights[j], r + j * sizeof(float), sizeof(float));
        memcpy(&experts[j], r + K * sizeof(float) + j * sizeof(uint16_t), sizeof(uint16_t));
    }
}

static int route_gen(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                     uint8_t *bits)
{
    if (req >= SOURCE_GEN_MAX_REQ) D2_ERROR(D2_ERANGE, "generator source: request %u beyond %u", req, SOURCE_GEN_MAX_REQ - 1);
    memo_ent *m = s->m;
    const uint32_t L = s->shape.layers, K = s->shape.top_k;
    if (req >= m->nrq) {
        size_t n = m->nrq;
        D2_TRY(VEC_RESERVE(m->rq, m->nrq, (size_t)req + 1));
        memset(m->rq + n, 0, (m->nrq - n) * sizeof *m->rq);
    }
    memo_req *q = &m->rq[req];
    if (bits) memset(bits, 0, K);
    if (pos < q->n) { /* recorded */
        const unsigned char *r = q->rec + ((size_t)pos * L + layer) * MEMO_REC(K);
        __builtin_prefetch(r + 256); /* this request's next records: the simulator asks for the next layer soon */
        memo_read(r, K, experts, weights);
        return D2_OK;
    }
    if (!q->st) D2_TRY(gen_stream_new(m->g, req, &q->st));
    uint32_t at = gen_stream_pos(q->st);
    /* a stream only runs forward: going back (only past what was recorded) regenerates from position 0 */
    if (at != UINT32_MAX && pos < at) { D2_TRY(gen_stream_reset(q->st)); at = UINT32_MAX; }
    while (at == UINT32_MAX || at < pos) {
        at = gen_stream_next(q->st);
        if (m->opens >= memo_from && !q->stopped && at == q->n) memo_record(m, q, L, K);
    }
    gen_stream_route(q->st, layer, experts, weights);
    return D2_OK;
}

int trace_source_route_token(trace_source *s, uint32_t req, uint32_t pos, uint16_t *experts, float *weights, uint8_t *bits,
                             size_t stride)
{
    const uint32_t L = s->shape.layers, K = s->shape.top_k;
    if (stride < K) D2_ERROR(D2_EINVAL, "trace source: layer stride %zu is below top_k %u", stride, K);
    if (s->f) {
        cursor *c;
        if (K == 2) { /* the common top-2: records in order decoded straight into place */
            int done;
            D2_TRY(file_token_direct(s, req, pos, experts, weights, bits, stride, &done));
            if (done) return D2_OK;
        }
        D2_TRY(file_cursor(s, req, pos, &c));
        if (K == 2) /* the common top-2: fixed-size copies */
            for (uint32_t l = 0; l < L; l++) cursor_copy(c, (size_t)l * 2, 2, experts + l * stride, weights + l * stride, bits ? bits + l * stride : NULL);
        else
            for (uint32_t l = 0; l < L; l++) cursor_copy(c, (size_t)l * K, K, experts + l * stride, weights + l * stride, bits ? bits + l * stride : NULL);
        return D2_OK;
    }
    if (req < SOURCE_GEN_MAX_REQ && req < s->m->nrq && pos < s->m->rq[req].n) { /* recorded: one pass over the token's records */
        const unsigned char *r = s->m->rq[req].rec + (size_t)pos * L * MEMO_REC(K);
        if (K == 2) { /* the common top-2: a record is two weights (8 bytes) then two ids (4 bytes), copied whole */
            static const uint8_t none[2] = {0, 0}; /* no recorded bits: a layer's two written as one 16-bit store */
            if (bits)
                for (uint32_t l = 0; l < L; l++, r += MEMO_REC(2)) {
                    memcpy(weights + (size_t)l * stride, r, 2 * sizeof(float));
                    memcpy(experts + (size_t)l * stride, r + 2 * sizeof(float), 2 * sizeof(uint16_t));
                    memcpy(bits + (size_t)l * stride, none, sizeof none);
                }
            else
                for (uint32_t l = 0; l < L; l++, r += MEMO_REC(2)) {
                    memcpy(weights + (size_t)l * stride, r, 2 * sizeof(float));
                    memcpy(experts + (size_t)l * stride, r + 2 * sizeof(float), 2 * sizeof(uint16_t));
                }
            return D2_OK;
        }
        for (uint32_t l = 0; l < L; l++, r += MEMO_REC(K)) {
            memo_read(r, K, experts + (size_t)l * stride, weights + (size_t)l * stride);
            if (bits) memset(bits + (size_t)l * stride, 0, K);
        }
        return D2_OK;
    }
    /* layer 0 as route_gen answers it (it moves the stream to pos, or reads
     * what the memo recorded); the other layers of that position from the
     * same place, as route_gen would answer them */
    D2_TRY(route_gen(s, req, pos, 0, experts, weights, bits));
    const memo_req *q = &s->m->rq[req];
    if (pos < q->n) { /* recorded (now or before) */
        const unsigned char *r = q->rec + (size_t)pos * L * MEMO_REC(K);
        for (uint32_t l = 1; l < L; l++) memo_read(r + (size_t)l * MEMO_REC(K), K, experts + (size_t)l * stride, weights + (size_t)l * stride);
    } else {
        for (uint32_t l = 1; l < L; l++) gen_stream_route(q->st, l, experts + (size_t)l * stride, weights + (size_t)l * stride);
    }
    if (bits)
        for (uint32_t l = 1; l < L; l++) {
            if (K == 2) bits[(size_t)l * stride] = bits[(size_t)l * stride + 1] = 0;
            else memset(bits + (size_t)l * stride, 0, K);
        }
    return D2_OK;
}

int trace_source_route(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *experts, float *weights,
                       uint8_t *bits)
{
    if (layer >= s->shape.layers) D2_ERROR(D2_EINVAL, "trace source: layer %u out of range 0..%u", layer, s->shape.layers - 1);
    return s->f ? route_file(s, req, pos, layer, experts, weights, bits) : route_gen(s, req, pos, layer, experts, weights, bits);
}
