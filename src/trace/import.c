/* import.c - parse foreign router traces into records, check and repair
 * them as documented in import.h, sort, and write a .d2t.  JSON through
 * jansson, one object per line; CSV by a strict splitter (no quoting). */
#include "trace/import.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const import_problem_names[IMPORT_PROBLEM_N] = {
    "id out of range", "bad gate weight", "wrong k", "expert repeated in a record", "duplicate record",
    "experts not in descending gate order", "token with missing layers", "position gap"};
const char *const import_problem_handling[IMPORT_PROBLEM_N] = {
    "record dropped", "record dropped", "record dropped", "record dropped", "later record dropped",
    "reordered", "kept; the source falls back to the nearest earlier layer", "positions renumbered"};

typedef struct raw {
    uint32_t req;   /* dense request number, first appearance order */
    uint32_t line;  /* input line, 1-based */
    int64_t pos;    /* position as in the file */
    int64_t layer;  /* layer as in the file */
    uint8_t k, nw, phase, has_bits, drop;
    int32_t ex[TRACE_K_MAX];
    float w[TRACE_K_MAX];
    uint8_t bits[TRACE_K_MAX];
} raw;

typedef struct ctx {
    const char *path;
    const import_opts *o;
    import_report *rep;
    raw *rows;
    size_t n, cap;
    /* request names -> dense ids (open addressing) */
    char **names;
    uint32_t *ids;
    size_t hcap, nreq;
    char **byid; /* [nreq] the same strings, by dense id */
    size_t byid_cap;
    /* vllm meta */
    uint32_t meta_experts, meta_topk, meta_layers;
    uint8_t *meta_logged; /* [65535] the meta line's layers_logged, NULL without one */
    uint32_t meta_line;   /* the line that gave meta_logged */
} ctx;

static int problem(ctx *c, import_problem p, uint32_t line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int problem(ctx *c, import_problem p, uint32_t line, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->o->strict) D2_ERROR(D2_EFORMAT, "%s:%u: %s (--strict)", c->path, line, msg);
    if (!c->rep->n[p]++) snprintf(c->rep->first[p], sizeof c->rep->first[p], "%s:%u: %s", c->path, line, msg);
    return D2_OK;
}

static uint64_t strhash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

static int req_id(ctx *c, const char *name, uint32_t *out)
{
    if (c->nreq * 2 >= c->hcap) {
        size_t ncap = c->hcap ? 2 * c->hcap : 64;
        char **nn = calloc(ncap, sizeof *nn);
        uint32_t *ni = calloc(ncap, sizeof *ni);
        if (!nn || !ni) { free(nn); free(ni); D2_ERROR(D2_ENOMEM, "out of memory"); }
        for (size_t i = 0; i < c->hcap; i++)
            if (c->names[i]) {
                size_t j = strhash(c->names[i]) & (ncap - 1);
                while (nn[j]) j = (j + 1) & (ncap - 1);
                nn[j] = c->names[i];
                ni[j] = c->ids[i];
            }
        free(c->names); free(c->ids);
        c->names = nn; c->ids = ni; c->hcap = ncap;
    }
    size_t j = strhash(name) & (c->hcap - 1);
    while (c->names[j]) {
        if (!strcmp(c->names[j], name)) { *out = c->ids[j]; return D2_OK; }
        j = (j + 1) & (c->hcap - 1);
    }
    if (c->nreq >= UINT32_MAX - 1) D2_ERROR(D2_ERANGE, "%s: too many requests", c->path);
    D2_TRY(VEC_RESERVE(c->byid, c->byid_cap, c->nreq + 1));
    c->names[j] = strdup(name);
    if (!c->names[j]) D2_ERROR(D2_ENOMEM, "out of memory");
    c->byid[c->nreq] = c->names[j];
    c->ids[j] = (uint32_t)c->nreq++;
    *out = c->ids[j];
    return D2_OK;
}

static raw *row_new(ctx *c)
{
    if (VEC_RESERVE(c->rows, c->cap, c->n + 1) != D2_OK) return NULL;
    raw *r = &c->rows[c->n];
    /* only the header fields; ex/w/bits are written for j < k by the parsers */
    r->req = r->line = 0;
    r->pos = r->layer = 0;
    r->k = r->nw = r->phase = r->has_bits = r->drop = 0;
    memset(r->bits, 0, sizeof r->bits);
    return r;
}

/* ------------------------------------------------------------------- JSON */

static const char *jtype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int jget(ctx *c, uint32_t line, json_t *o, const char *key, json_t **out)
{
    *out = json_object_get(o, key);
    if (!*out) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": missing", c->path, line, key);
    return D2_OK;
}

static int jint(ctx *c, uint32_t line, json_t *o, const char *key, int64_t *out)
{
    json_t *v;
    D2_TRY(jget(c, line, o, key, &v));
    if (!json_is_integer(v)) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": expected an integer, got %s", c->path, line, key, jtype(v));
    *out = (int64_t)json_integer_value(v);
    return D2_OK;
}

/* Experts and weights arrays into r; lengths beyond TRACE_K_MAX are a k problem. */
static int jroute(ctx *c, uint32_t line, json_t *o, const char *kex, const char *kw, raw *r)
{
    json_t *ex, *w;
    D2_TRY(jget(c, line, o, kex, &ex));
    D2_TRY(jget(c, line, o, kw, &w));
    if (!json_is_array(ex)) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": expected an array, got %s", c->path, line, kex, jtype(ex));
    if (!json_is_array(w)) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": expected an array, got %s", c->path, line, kw, jtype(w));
    size_t ne = json_array_size(ex), nw = json_array_size(w);
    for (size_t i = 0; i < ne; i++) {
        json_t *v = json_array_get(ex, i);
        if (!json_is_integer(v))
            D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\"[%zu]: expected an integer, got %s", c->path, line, kex, i, jtype(v));
        json_int_t x = json_integer_value(v);
        if (i < TRACE_K_MAX) r->ex[i] = x < -1 || x > 65535 ? -1 : (int32_t)x;
    }
    for (size_t i = 0; i < nw; i++) {
        json_t *v = json_array_get(w, i);
        if (!json_is_number(v))
            D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\"[%zu]: expected a number, got %s", c->path, line, kw, i, jtype(v));
        if (i < TRACE_K_MAX) r->w[i] = (float)json_number_value(v);
    }
    if (ne != nw || ne == 0 || ne > TRACE_K_MAX) {
        D2_TRY(problem(c, IMPORT_K, line, "fields \"%s\"/\"%s\": %zu ids and %zu weights (1..%d, equal counts expected)",
                       kex, kw, ne, nw, TRACE_K_MAX));
        r->drop = 1;
        ne = 0;
    }
    r->k = (uint8_t)ne;
    r->nw = (uint8_t)ne;
    return D2_OK;
}

static int parse_json_line(ctx *c, uint32_t line, const char *buf, size_t len, int vllm)
{
    json_error_t err;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!o) D2_ERROR(D2_EFORMAT, "%s:%u: malformed JSON at column %d: %s", c->path, line, err.column, err.text);
    int rc = D2_OK;
    if (!json_is_object(o)) { rc = D2_EFORMAT; d2_err_set("%s:%u: expected a JSON object, got %s", c->path, line, jtype(o)); goto out; }
    if (vllm) {
        json_t *t;
        if ((rc = jget(c, line, o, "type", &t))) goto out;
        if (!json_is_string(t)) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"type\": expected a string, got %s", c->path, line, jtype(t)); goto out; }
        if (!strcmp(json_string_value(t), "meta")) {
            int64_t v;
            if (json_object_get(o, "num_experts")) {
                if ((rc = jint(c, line, o, "num_experts", &v))) goto out;
                if (v < 1 || v > 65535) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"num_experts\": %lld out of range 1..65535", c->path, line, (long long)v); goto out; }
                c->meta_experts = (uint32_t)v;
            }
            if (json_object_get(o, "top_k")) {
                if ((rc = jint(c, line, o, "top_k", &v))) goto out;
                if (v < 1 || v > TRACE_K_MAX) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"top_k\": %lld out of range 1..%d", c->path, line, (long long)v, TRACE_K_MAX); goto out; }
                c->meta_topk = (uint32_t)v;
            }
            json_t *ll = json_object_get(o, "layers_logged");
            if (ll) {
                if (!json_is_array(ll)) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"layers_logged\": expected an array, got %s", c->path, line, jtype(ll)); goto out; }
                if (!c->meta_logged && !(c->meta_logged = calloc(65535, 1))) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
                c->meta_line = line;
                for (size_t i = 0; i < json_array_size(ll); i++) {
                    json_t *x = json_array_get(ll, i);
                    if (!json_is_integer(x)) {
                        rc = D2_EFORMAT; d2_err_set("%s:%u: field \"layers_logged\"[%zu]: expected an integer, got %s", c->path, line, i, jtype(x));
                        goto out;
                    }
                    if (json_integer_value(x) < 0 || json_integer_value(x) > 65534) {
                        rc = D2_EFORMAT; d2_err_set("%s:%u: field \"layers_logged\"[%zu]: %lld out of range 0..65534", c->path, line, i,
                                                    (long long)json_integer_value(x));
                        goto out;
                    }
                    uint32_t l = (uint32_t)json_integer_value(x);
                    for (size_t i2 = 0; i2 < i; i2++)
                        if (json_integer_value(json_array_get(ll, i2)) == (json_int_t)l) {
                            rc = D2_EFORMAT; d2_err_set("%s:%u: field \"layers_logged\"[%zu]: layer %u listed twice", c->path, line, i, l); goto out;
                        }
                    c->meta_logged[l] = 1;
                    if (l + 1 > c->meta_layers) c->meta_layers = l + 1;
                }
            }
            goto out;
        }
        if (strcmp(json_string_value(t), "route")) { c->rep->skipped_other++; goto out; }
    }
    raw *r = row_new(c);
    if (!r) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    r->line = line;
    int64_t layer, pos;
    char name[256];
    if ((rc = jint(c, line, o, "layer", &layer))) goto out;
    if ((rc = jint(c, line, o, "token_idx", &pos))) goto out;
    if (vllm) {
        json_t *q;
        if ((rc = jget(c, line, o, "req_id", &q))) goto out;
        if (json_is_string(q) && strlen(json_string_value(q)) >= sizeof name) {
            rc = D2_EFORMAT; d2_err_set("%s:%u: field \"req_id\": longer than %zu bytes", c->path, line, sizeof name - 1); goto out;
        }
        if (json_is_string(q)) snprintf(name, sizeof name, "%s", json_string_value(q));
        else if (json_is_integer(q)) snprintf(name, sizeof name, "%lld", (long long)json_integer_value(q));
        else { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"req_id\": expected a string or integer, got %s", c->path, line, jtype(q)); goto out; }
        r->phase = TRACE_UNKNOWN; /* a vLLM log does not say which rows are prompt tokens */
        rc = jroute(c, line, o, "topk_ids", "topk_weights", r);
    } else {
        int64_t pid;
        if ((rc = jint(c, line, o, "problem_id", &pid))) goto out;
        json_t *ds = json_object_get(o, "dataset");
        if (ds && !json_is_string(ds)) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"dataset\": expected a string, got %s", c->path, line, jtype(ds)); goto out; }
        /* a request = (dataset, problem_id) */
        snprintf(name, sizeof name, "%.200s/%lld", ds ? json_string_value(ds) : "", (long long)pid);
        /* token_idx counts generated tokens (data/README.md): decode phase */
        r->phase = TRACE_DECODE;
        rc = jroute(c, line, o, "experts", "gating_probs", r);
    }
    if (rc) goto out;
    if (pos < 0) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"token_idx\": %lld is negative", c->path, line, (long long)pos); goto out; }
    r->layer = layer;
    r->pos = pos;
    if ((rc = req_id(c, name, &r->req))) goto out;
    c->n++;
    c->rep->rows++;
out:
    json_decref(o);
    return rc;
}


/* ------------------------------------------------------- JSON fast path */

/* A strict parser for the flat objects routing logs are made of: string,
 * number and array-of-number values, no escapes.  It only serves valid
 * lines of the expected shape; anything else (nesting, escapes, literals,
 * a missing field, a wrong type, a key given twice) returns 0 and the line goes through
 * jansson, which gives the error message.  Numbers follow the JSON grammar;
 * integers are numbers without fraction or exponent, as in jansson. */
#define FJ_FIELDS 16
#define FJ_ARR 64
typedef struct fj_val {
    const char *key;
    size_t klen;
    char type; /* 'i' integer, 'r' real, 's' string, 'a' array */
    int64_t i;
    double d;
    const char *s;
    size_t slen;
    int n;               /* array length */
    int all_int;         /* array: every element an integer */
    double arr[FJ_ARR];
} fj_val;

typedef struct fj_obj { fj_val v[FJ_FIELDS]; int n; } fj_obj;

static const char *fj_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* number at p: returns end or NULL */
static const char *fj_num(const char *p, const char *e, int *is_int, int64_t *iv, double *dv)
{
    const char *b = p;
    int neg = 0;
    if (p < e && *p == '-') { neg = 1; p++; }
    if (p >= e || *p < '0' || *p > '9') return NULL;
    uint64_t acc = 0;
    int digits = 0;
    if (*p == '0') { p++; digits = 1; }
    else
        while (p < e && *p >= '0' && *p <= '9') {
            if (++digits > 18) return NULL; /* leave big integers to jansson */
            acc = acc * 10 + (uint64_t)(*p++ - '0');
        }
    int frac = 0;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
        frac = 1;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return NULL;
        while (p < e && *p >= '0' && *p <= '9') p++;
        frac = 1;
    }
    if (!frac) {
        *is_int = 1;
        *iv = neg ? -(int64_t)acc : (int64_t)acc;
        *dv = (double)*iv;
    } else {
        char tmp[64];
        size_t n = (size_t)(p - b);
        if (n >= sizeof tmp) return NULL;
        memcpy(tmp, b, n);
        tmp[n] = 0;
        *is_int = 0;
        *dv = strtod(tmp, NULL);
        if (!isfinite(*dv)) return NULL;
    }
    return p;
}

static int fj_parse(const char *p, size_t len, fj_obj *o)
{
    const char *e = p + len;
    o->n = 0;
    p = fj_ws(p, e);
    if (p >= e || *p++ != '{') return 0;
    p = fj_ws(p, e);
    if (p < e && *p == '}') return 0;
    for (;;) {
        if (o->n == FJ_FIELDS) return 0;
        fj_val *v = &o->v[o->n++];
        p = fj_ws(p, e);
        if (p >= e || *p++ != '"') return 0;
        v->key = p;
        while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
        if (p >= e || *p != '"') return 0;
        v->klen = (size_t)(p - v->key);
        /* a key given twice: jansson refuses it (JSON_REJECT_DUPLICATES) and
         * names it, so both paths fail alike (traces/README.md, "Limits") */
        for (int i = 0; i < o->n - 1; i++)
            if (o->v[i].klen == v->klen && !memcmp(o->v[i].key, v->key, v->klen)) return 0;
        p = fj_ws(p + 1, e);
        if (p >= e || *p++ != ':') return 0;
        p = fj_ws(p, e);
        if (p >= e) return 0;
        if (*p == '"') {
            v->type = 's';
            v->s = ++p;
            while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x80) p++;
            if (p >= e || *p != '"') return 0;
            v->slen = (size_t)(p - v->s);
            p++;
        } else if (*p == '[') {
            v->type = 'a';
            v->n = 0;
            v->all_int = 1;
            p = fj_ws(p + 1, e);
            if (p < e && *p == ']') p++;
            else
                for (;;) {
                    int isint;
                    int64_t iv;
                    double dv;
                    if (v->n == FJ_ARR) return 0;
                    p = fj_num(p, e, &isint, &iv, &dv);
                    if (!p) return 0;
                    v->arr[v->n++] = dv;
                    if (!isint) v->all_int = 0;
                    p = fj_ws(p, e);
                    if (p < e && *p == ',') { p = fj_ws(p + 1, e); continue; }
                    if (p < e && *p == ']') { p++; break; }
                    return 0;
                }
        } else {
            int isint;
            p = fj_num(p, e, &isint, &v->i, &v->d);
            if (!p) return 0;
            v->type = isint ? 'i' : 'r';
        }
        p = fj_ws(p, e);
        if (p < e && *p == ',') { p++; continue; }
        if (p < e && *p == '}') { p++; break; }
        return 0;
    }
    return fj_ws(p, e) == e;
}

static const fj_val *fj_get(const fj_obj *o, const char *key)
{
    size_t n = strlen(key);
    for (int i = 0; i < o->n; i++) /* keys are unique (fj_parse) */
        if (o->v[i].klen == n && !memcmp(o->v[i].key, key, n)) return &o->v[i];
    return NULL;
}

/* The happy path of parse_json_line; 0 = not handled (use jansson). */
static int fast_line(ctx *c, uint32_t line, const char *buf, size_t len, int vllm, int *rc)
{
    fj_obj o;
    *rc = D2_OK;
    if (!fj_parse(buf, len, &o)) return 0;
    const fj_val *layer = fj_get(&o, "layer"), *pos = fj_get(&o, "token_idx");
    const fj_val *ex = fj_get(&o, vllm ? "topk_ids" : "experts"), *w = fj_get(&o, vllm ? "topk_weights" : "gating_probs");
    if (!layer || layer->type != 'i' || !pos || pos->type != 'i' || pos->i < 0 || !ex || ex->type != 'a' || !ex->all_int ||
        !w || w->type != 'a' || ex->n != w->n || ex->n < 1 || ex->n > TRACE_K_MAX)
        return 0;
    char name[256];
    if (vllm) {
        const fj_val *t = fj_get(&o, "type"), *q = fj_get(&o, "req_id");
        if (!t || t->type != 's' || t->slen != 5 || memcmp(t->s, "route", 5) || !q) return 0;
        if (q->type == 's' && q->slen < sizeof name) { memcpy(name, q->s, q->slen); name[q->slen] = 0; }
        else if (q->type == 'i') snprintf(name, sizeof name, "%lld", (long long)q->i);
        else return 0;
    } else {
        const fj_val *pid = fj_get(&o, "problem_id"), *ds = fj_get(&o, "dataset");
        if (!pid || pid->type != 'i' || (ds && ds->type != 's')) return 0;
        snprintf(name, sizeof name, "%.*s/%lld", ds ? (int)(ds->slen < 200 ? ds->slen : 200) : 0, ds ? ds->s : "", (long long)pid->i);
    }
    raw *r = row_new(c);
    if (!r) { *rc = D2_ENOMEM; d2_err_set("out of memory"); return 1; }
    r->line = line;
    r->layer = layer->i;
    r->pos = pos->i;
    r->phase = vllm ? TRACE_UNKNOWN : TRACE_DECODE; /* as in parse_json_line */
    for (int j = 0; j < ex->n; j++) {
        double x = ex->arr[j];
        r->ex[j] = x < -1 || x > 65535 ? -1 : (int32_t)x;
        r->w[j] = (float)w->arr[j];
    }
    r->k = r->nw = (uint8_t)ex->n;
    if ((*rc = req_id(c, name, &r->req))) return 1;
    c->n++;
    c->rep->rows++;
    return 1;
}

/* -------------------------------------------------------------------- CSV */

/* Generic CSV (traces/README.md): header
 *   req,pos,phase,layer,e0..e{k-1},w0..w{k-1}[,b0..b{k-1}]
 * req is any text without commas; phase prefill|decode|unknown. */
typedef struct csv_cols { int k, has_bits; } csv_cols;

static int csv_split(char *s, char **f, int max)
{
    int n = 0;
    for (;;) {
        if (n == max) return -1;
        f[n++] = s;
        char *comma = strchr(s, ',');
        if (!comma) break;
        *comma = 0;
        s = comma + 1;
    }
    return n;
}

static int csv_header(ctx *c, char *line, csv_cols *cc)
{
    char *f[3 * TRACE_K_MAX + 8];
    int n = csv_split(line, f, 3 * TRACE_K_MAX + 8);
    static const char *fixed[] = {"req", "pos", "phase", "layer"};
    if (n < 6) D2_ERROR(D2_EFORMAT, "%s:1: CSV header: expected req,pos,phase,layer,e0..,w0..[,b0..]", c->path);
    for (int i = 0; i < 4; i++)
        if (strcmp(f[i], fixed[i])) D2_ERROR(D2_EFORMAT, "%s:1: CSV header column %d: expected \"%s\", got \"%s\"", c->path, i + 1, fixed[i], f[i]);
    int k = 0;
    while (4 + k < n && f[4 + k][0] == 'e') k++;
    if (k < 1 || k > TRACE_K_MAX) D2_ERROR(D2_EFORMAT, "%s:1: CSV header: %d expert columns, expected 1..%d", c->path, k, TRACE_K_MAX);
    int has_bits = n == 4 + 3 * k;
    if (n != 4 + 2 * k && !has_bits) D2_ERROR(D2_EFORMAT, "%s:1: CSV header: %d columns, expected %d or %d for k = %d", c->path, n, 4 + 2 * k, 4 + 3 * k, k);
    for (int j = 0; j < k * (2 + has_bits); j++) {
        char want[16];
        snprintf(want, sizeof want, "%c%d", j < k ? 'e' : j < 2 * k ? 'w' : 'b', j % k);
        if (strcmp(f[4 + j], want)) D2_ERROR(D2_EFORMAT, "%s:1: CSV header column %d: expected \"%s\", got \"%s\"", c->path, 5 + j, want, f[4 + j]);
    }
    cc->k = k;
    cc->has_bits = has_bits;
    return D2_OK;
}

static int csv_int(ctx *c, uint32_t line, const char *col, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": expected an integer, got \"%.40s\"", c->path, line, col, s);
    if (v < lo || v > hi) D2_ERROR(D2_EFORMAT, "%s:%u: field \"%s\": %lld out of range %lld..%lld", c->path, line, col, v, (long long)lo, (long long)hi);
    *out = v;
    return D2_OK;
}

static int parse_csv_line(ctx *c, uint32_t line, char *buf, const csv_cols *cc)
{
    char *f[3 * TRACE_K_MAX + 8];
    int want = 4 + cc->k * (2 + cc->has_bits);
    int n = csv_split(buf, f, 3 * TRACE_K_MAX + 8);
    if (n != want) D2_ERROR(D2_EFORMAT, "%s:%u: %d fields, the header has %d", c->path, line, n < 0 ? 3 * TRACE_K_MAX + 8 : n, want);
    raw *r = row_new(c);
    if (!r) D2_ERROR(D2_ENOMEM, "out of memory");
    r->line = line;
    int64_t v;
    D2_TRY(csv_int(c, line, "pos", f[1], 0, INT64_MAX, &r->pos));
    if (!strcmp(f[2], "prefill")) r->phase = TRACE_PREFILL;
    else if (!strcmp(f[2], "decode")) r->phase = TRACE_DECODE;
    else if (!strcmp(f[2], "unknown")) r->phase = TRACE_UNKNOWN;
    else D2_ERROR(D2_EFORMAT, "%s:%u: field \"phase\": expected prefill, decode or unknown, got \"%.40s\"", c->path, line, f[2]);
    D2_TRY(csv_int(c, line, "layer", f[3], INT32_MIN, INT32_MAX, &r->layer));
    for (int j = 0; j < cc->k; j++) {
        char col[8];
        snprintf(col, sizeof col, "e%d", j);
        D2_TRY(csv_int(c, line, col, f[4 + j], INT32_MIN, INT32_MAX, &v));
        r->ex[j] = v < -1 || v > 65535 ? -1 : (int32_t)v;
        char *end;
        const char *s = f[4 + cc->k + j];
        double w = strtod(s, &end);
        if (end == s || *end) D2_ERROR(D2_EFORMAT, "%s:%u: field \"w%d\": expected a number, got \"%.40s\"", c->path, line, j, s);
        r->w[j] = (float)w;
        if (cc->has_bits) {
            snprintf(col, sizeof col, "b%d", j);
            D2_TRY(csv_int(c, line, col, f[4 + 2 * cc->k + j], 0, 32, &v));
            r->bits[j] = (uint8_t)v;
        }
    }
    r->k = r->nw = (uint8_t)cc->k;
    r->has_bits = (uint8_t)cc->has_bits;
    if (!f[0][0]) D2_ERROR(D2_EFORMAT, "%s:%u: field \"req\": empty", c->path, line);
    D2_TRY(req_id(c, f[0], &r->req));
    c->n++;
    c->rep->rows++;
    return D2_OK;
}

/* ------------------------------------------------------------- read lines */

/* A UTF-8 byte order mark, which Windows tools put at the start of a text
 * file: skipped there, in traces and in activation tables. */
#define UTF8_BOM "\xEF\xBB\xBF"

static int read_input(ctx *c, int fmt, int *has_bits)
{
    /* a regular file of at most FILEIO_TEXT_MAX bytes, lines of at most
     * FILEIO_LINE_MAX bytes (traces/README.md, "Limits") */
    FILE *f;
    D2_TRY(fileio_open_read(c->path, FILEIO_TEXT_MAX, &f, NULL));
    char *buf = NULL;
    size_t cap = 0, len;
    uint32_t line = 0;
    int rc = D2_OK, got;
    csv_cols cc = {0, 0};
    while ((got = fileio_getline(f, c->path, (uint64_t)line + 1, FILEIO_LINE_MAX, &buf, &cap, &len)) == 1) {
        if (line == UINT32_MAX - 1) { rc = D2_ERANGE; d2_err_set("%s:%u: more than %u lines", c->path, line, UINT32_MAX - 1); break; }
        line++;
        if (memchr(buf, 0, len)) { rc = D2_EFORMAT; d2_err_set("%s:%u: binary data (NUL byte): not a text trace", c->path, line); break; }
        if (line == 1 && len >= 3 && !memcmp(buf, UTF8_BOM, 3)) { /* from Windows tools: skipped (traces/README.md) */
            memmove(buf, buf + 3, len - 3 + 1);
            len -= 3;
        }
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = 0;
        size_t sp = 0;
        while (sp < (size_t)len && isspace((unsigned char)buf[sp])) sp++;
        if (sp == (size_t)len) continue; /* blank line */
        if (fmt == 2) {
            if (!cc.k) rc = csv_header(c, buf, &cc);
            else rc = parse_csv_line(c, line, buf, &cc);
        } else if (!fast_line(c, line, buf, (size_t)len, fmt == 1, &rc)) {
            rc = parse_json_line(c, line, buf, (size_t)len, fmt == 1);
        }
        if (rc) break;
    }
    if (!rc && got > 1) rc = got;
    c->rep->lines = line;
    free(buf);
    fclose(f);
    *has_bits = cc.has_bits;
    if (!rc && fmt == 2 && !cc.k) { rc = D2_EFORMAT; d2_err_set("%s: empty file: no CSV header", c->path); }
    if (!rc && c->n == 0) { rc = D2_EFORMAT; d2_err_set("%s: %s: no routing records", c->path, line ? "no usable lines" : "empty file"); }
    return rc;
}

/* vLLM's warm-up dummy batch: a leading run of identical route rows.  A
 * dummy batch feeds the same input to every token, so at each layer all its
 * rows carry the same ids and the same weights (uniform 1/k in the OLMoE log,
 * non-uniform in the Qwen1.5-MoE log).  The run (rows of one req_id) ends at
 * the first row that differs from the first run row of its layer.  It is a
 * warm-up only when every layer in it has at least two rows (one token's rows
 * across layers are not a batch) and either
 *   - its weights are uniform, 1/k each with k >= 2 (the OLMoE log, whose
 *     token_idx runs on across the warm-up), or
 *   - it is a forward batch of its own: the row that ends it has the run's
 *     req_id and a token_idx not above the run's last at its layer, i.e.
 *     it starts a new batch (the Qwen1.5-MoE log restarts token_idx).
 * Two leading tokens routed alike are not enough: in a top-1 log every
 * weight is 1.0 and that is common.  Its length is detected, never assumed. */
static void skip_warmup(ctx *c)
{
    if (!c->n) return;
    enum { SLOTS = 64 }; /* layers tracked; a warm-up over more layers is not detected */
    int64_t lay[SLOTS], lastpos[SLOTS];
    size_t first[SLOTS], cnt[SLOTS];
    int nl = 0;
    size_t n = 0;
    for (; n < c->n; n++) {
        const raw *r = &c->rows[n];
        if (r->drop || !r->k || r->req != c->rows[0].req) break;
        int i = 0;
        while (i < nl && lay[i] != r->layer) i++;
        if (i == nl) {
            if (nl == SLOTS) break;
            lay[nl] = r->layer; first[nl] = n; cnt[nl] = 0; nl++;
        }
        const raw *a = &c->rows[first[i]];
        if (r->k != a->k || memcmp(r->ex, a->ex, r->k * sizeof r->ex[0]) || memcmp(r->w, a->w, r->k * sizeof r->w[0])) break;
        cnt[i]++;
        lastpos[i] = r->pos;
    }
    for (int i = 0; i < nl; i++)
        if (cnt[i] < 2) return;
    if (n < 2) return;
    int uniform = 1;
    for (int i = 0; i < nl && uniform; i++) {
        const raw *a = &c->rows[first[i]];
        if (a->k < 2) uniform = 0;
        for (int j = 1; j < a->k; j++)
            if (a->w[j] != a->w[0]) uniform = 0;
    }
    int restart = 0;
    if (n < c->n) {
        const raw *r = &c->rows[n];
        if (!r->drop && r->k && r->req == c->rows[0].req)
            for (int i = 0; i < nl; i++)
                if (lay[i] == r->layer && cnt[i] && r->pos <= lastpos[i]) restart = 1;
    }
    if (!uniform && !restart) return;
    for (size_t i = 0; i < n; i++) c->rows[i].drop = 1;
    c->rep->warmup = n;
}

/* Forward batches of a vLLM log (traces/README.md, "Reading a vLLM log").
 * Rows of one req_id are taken in file order; a row whose token_idx is not
 * above the last token_idx seen at its layer in the current batch starts a
 * new forward batch.  A req_id whose rows form one batch (token_idx a running
 * counter, or a true per-request log) is left as it is.  Otherwise the first
 * batch is the prefill (phase prefill, positions = token_idx) and the later
 * ones are decode batches: a run of consecutive decode batches of equal size
 * B holds one row per running request, so row j (token_idx j) of each batch
 * of the run is request j of that run, one position per batch.  When the
 * first run has B = 1 its request continues the prefill's request.  A change
 * of size ends a run: the log does not say which request finished, so the
 * next run's rows become new requests. */
static const raw *sort_rows;
static int cmp_req_line(const void *pa, const void *pb)
{
    const raw *a = &sort_rows[*(const uint32_t *)pa], *b = &sort_rows[*(const uint32_t *)pb];
    if (a->req != b->req) return a->req < b->req ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

/* Two rows with the same token_idx, layer, ids and weights (a repeated line). */
static int same_route(const raw *a, const raw *b)
{
    return a->pos == b->pos && a->layer == b->layer && a->k == b->k && !memcmp(a->ex, b->ex, a->k * sizeof a->ex[0]) &&
           !memcmp(a->w, b->w, a->k * sizeof a->w[0]);
}

static uint64_t vhash(uint64_t serial, int64_t layer, int64_t pos)
{
    uint64_t h = serial * 0x9E3779B97F4A7C15ULL ^ (uint64_t)layer * 0xC2B2AE3D27D4EB4FULL ^ (uint64_t)pos * 0x165667B19E3779F9ULL;
    return h ^ (h >> 29);
}

static int vllm_structure(ctx *c)
{
    int rc = D2_OK;
    size_t m = 0;
    uint32_t *idx = malloc((c->n ? c->n : 1) * sizeof *idx);
    uint32_t *bno = malloc((c->n ? c->n : 1) * sizeof *bno);
    int64_t *last = malloc(65536 * sizeof *last);
    uint64_t *stamp = calloc(65536, sizeof *stamp);
    int64_t *bmin = NULL, *bmax = NULL;
    size_t bmin_cap = 0, bmax_cap = 0; /* equal unless growing bmax failed */
    uint8_t *seen = calloc(65536, 1);
    uint64_t *hser = NULL;
    uint32_t *hval = NULL;
    if (!idx || !bno || !last || !stamp || !seen) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    for (size_t i = 0; i < c->n; i++)
        if (!c->rows[i].drop) idx[m++] = (uint32_t)i;
    sort_rows = c->rows;
    qsort(idx, m, sizeof *idx, cmp_req_line);
    /* rows of the current batch by (batch serial, layer, token_idx), to tell
     * a repeated line from a restart: open addressing, value = row + 1 */
    size_t hcap = 16;
    while (hcap < 2 * (size_t)m + 2) hcap *= 2;
    hser = malloc(hcap * sizeof *hser);
    hval = calloc(hcap, sizeof *hval);
    if (!hser || !hval) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    uint64_t serial = 0;
    for (size_t i = 0; i < m;) {
        size_t j = i;
        uint32_t q = c->rows[idx[i]].req;
        while (j < m && c->rows[idx[j]].req == q) j++;
        /* batches of request q: rows idx[i..j) in file order */
        uint32_t nb = 0;
        size_t next_other = 0; /* cache of the lookahead below: first row after a run of copies */
        serial++;
        for (size_t t = i; t < j; t++) {
            raw *r = &c->rows[idx[t]];
            size_t l = (size_t)(r->layer < 0 ? 0 : r->layer > 65535 ? 65535 : r->layer);
            if (t > i && stamp[l] == serial && r->pos <= last[l]) {
                /* This row would start a new batch.  If the current batch
                 * already holds a row with the same token_idx, layer, ids and
                 * weights, it is a repeated line (dropped, counted as a
                 * duplicate) unless the next row that is not another copy of
                 * it also restarts the current batch: then it is a batch of
                 * its own routed alike (vLLM decode batches of one row). */
                const raw *e = NULL;
                for (size_t h = vhash(serial, r->layer, r->pos) & (hcap - 1); hval[h]; h = (h + 1) & (hcap - 1)) {
                    const raw *x = &c->rows[hval[h] - 1];
                    if (hser[h] == serial && x->layer == r->layer && x->pos == r->pos) { e = x; break; }
                }
                if (e && same_route(e, r)) {
                    if (next_other <= t) {
                        next_other = t + 1;
                        while (next_other < j && same_route(&c->rows[idx[next_other]], r)) next_other++;
                    }
                    int restart = 0;
                    if (next_other < j) {
                        const raw *nx = &c->rows[idx[next_other]];
                        size_t l2 = (size_t)(nx->layer < 0 ? 0 : nx->layer > 65535 ? 65535 : nx->layer);
                        restart = stamp[l2] == serial && nx->pos <= last[l2];
                    }
                    if (!restart) {
                        rc = problem(c, IMPORT_DUP, r->line, "req_id \"%.100s\" token_idx %lld layer %lld: the same route as line %u (a repeated line)",
                                     c->byid[q], (long long)r->pos, (long long)r->layer, e->line);
                        if (rc) goto out;
                        r->drop = 1;
                        continue;
                    }
                }
            }
            if (t == i || (stamp[l] == serial && r->pos <= last[l])) {
                serial++;
                if ((rc = VEC_RESERVE(bmin, bmin_cap, (size_t)nb + 1)) != D2_OK) goto out;
                if ((rc = VEC_RESERVE(bmax, bmax_cap, (size_t)nb + 1)) != D2_OK) goto out;
                bmin[nb] = bmax[nb] = r->pos;
                nb++;
            }
            stamp[l] = serial;
            last[l] = r->pos;
            if (r->pos < bmin[nb - 1]) bmin[nb - 1] = r->pos;
            if (r->pos > bmax[nb - 1]) bmax[nb - 1] = r->pos;
            bno[idx[t]] = nb - 1;
            size_t h = vhash(serial, r->layer, r->pos) & (hcap - 1);
            while (hval[h]) h = (h + 1) & (hcap - 1);
            hser[h] = serial;
            hval[h] = idx[t] + 1;
        }
        if (nb < 2) { c->rep->batches++; i = j; continue; }
        c->rep->batches += nb;
        c->rep->batched_reqs++;
        c->rep->prefill_batches++;
        c->rep->decode_batches += nb - 1;
        /* runs of equal-size decode batches */
        const char *qname = c->byid[q];
        uint32_t run = 0, step = 0;
        int64_t P = bmax[0] - bmin[0] + 1;
        /* per batch: run number and step within the run, recomputed on the fly */
        uint32_t *brun = malloc(nb * sizeof *brun), *bstep = malloc(nb * sizeof *bstep);
        if (!brun || !bstep) { free(brun); free(bstep); rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
        for (uint32_t b = 1; b < nb; b++) {
            if (b > 1 && bmax[b] - bmin[b] == bmax[b - 1] - bmin[b - 1]) step++;
            else { if (b > 1) run++; step = 0; c->rep->decode_runs++; }
            brun[b] = run;
            bstep[b] = step;
        }
        int64_t B0 = nb > 1 ? bmax[1] - bmin[1] + 1 : 0;
        for (size_t t = i; t < j && !rc; t++) {
            raw *r = &c->rows[idx[t]];
            if (r->drop) continue; /* a repeated line */
            uint32_t b = bno[idx[t]];
            if (b == 0) {
                r->pos -= bmin[0];
                r->phase = TRACE_PREFILL;
                continue;
            }
            int64_t row = r->pos - bmin[b];
            r->phase = TRACE_DECODE;
            if (brun[b] == 0 && B0 == 1) {
                r->pos = P + bstep[b];
                continue;
            }
            char name[300];
            snprintf(name, sizeof name, "%.200s#run%u.row%lld", qname, brun[b], (long long)row);
            r->pos = bstep[b];
            rc = req_id(c, name, &r->req);
        }
        free(brun);
        free(bstep);
        if (rc) goto out;
        i = j;
    }
    /* layers logged */
    for (size_t t = 0; t < m; t++) {
        const raw *r = &c->rows[idx[t]];
        if (!r->drop && r->layer >= 0 && r->layer <= 65535 && !seen[r->layer]) {
            seen[r->layer] = 1;
            c->rep->layers_logged++;
            size_t len = strlen(c->rep->layer_list);
            if (len + 8 < sizeof c->rep->layer_list)
                snprintf(c->rep->layer_list + len, sizeof c->rep->layer_list - len, "%s%lld", len ? "," : "", (long long)r->layer);
            else if (!strstr(c->rep->layer_list, ",..."))
                snprintf(c->rep->layer_list + len, sizeof c->rep->layer_list - len, ",...");
        }
    }
out:
    free(idx); free(bno); free(last); free(stamp); free(bmin); free(bmax); free(seen); free(hser); free(hval);
    return rc;
}

static int cmp_idx(const void *pa, const void *pb)
{
    const raw *a = &sort_rows[*(const uint32_t *)pa], *b = &sort_rows[*(const uint32_t *)pb];
    if (a->req != b->req) return a->req < b->req ? -1 : 1;
    if (a->pos != b->pos) return a->pos < b->pos ? -1 : 1;
    if (a->layer != b->layer) return a->layer < b->layer ? -1 : 1;
    return a->line < b->line ? -1 : a->line > b->line;
}

static int check_rows(ctx *c, uint32_t L, uint32_t E, uint32_t K)
{
    for (size_t i = 0; i < c->n; i++) {
        raw *r = &c->rows[i];
        if (r->drop) continue;
        if (r->k != K) {
            D2_TRY(problem(c, IMPORT_K, r->line, "field \"experts\": expected %u ids, got %u", K, r->k));
            r->drop = 1;
            continue;
        }
        if (r->layer < 0 || r->layer >= L) {
            D2_TRY(problem(c, IMPORT_RANGE, r->line, "field \"layer\": %lld out of range 0..%u", (long long)r->layer, L - 1));
            r->drop = 1;
            continue;
        }
        if (c->meta_logged && (r->layer > 65534 || !c->meta_logged[r->layer])) {
            D2_TRY(problem(c, IMPORT_RANGE, r->line, "field \"layer\": %lld is not among the layers_logged of line %u", (long long)r->layer,
                           c->meta_line));
            r->drop = 1;
            continue;
        }
        for (int j = 0; j < r->k && !r->drop; j++) {
            if (r->ex[j] < 0 || (uint32_t)r->ex[j] >= E) {
                D2_TRY(problem(c, IMPORT_RANGE, r->line, "field \"experts\"[%d]: id out of range 0..%u", j, E - 1));
                r->drop = 1;
            } else if (!isfinite(r->w[j]) || r->w[j] < 0) {
                D2_TRY(problem(c, IMPORT_WEIGHT, r->line, "field \"weights\"[%d]: %g is not a finite weight >= 0", j, (double)r->w[j]));
                r->drop = 1;
            } else {
                for (int i2 = 0; i2 < j; i2++)
                    if (r->ex[i2] == r->ex[j]) {
                        D2_TRY(problem(c, IMPORT_DUPEXP, r->line, "field \"experts\": id %d appears twice", r->ex[j]));
                        r->drop = 1;
                        break;
                    }
            }
        }
        if (r->drop) continue;
        int sorted = 1;
        for (int j = 1; j < r->k; j++)
            if (r->w[j] > r->w[j - 1]) sorted = 0;
        if (!sorted) {
            D2_TRY(problem(c, IMPORT_ORDER, r->line, "field \"weights\": not in descending order"));
            for (int a = 1; a < r->k; a++) /* insertion sort, stable */
                for (int b = a; b > 0 && r->w[b] > r->w[b - 1]; b--) {
                    float tw = r->w[b]; r->w[b] = r->w[b - 1]; r->w[b - 1] = tw;
                    int32_t te = r->ex[b]; r->ex[b] = r->ex[b - 1]; r->ex[b - 1] = te;
                    uint8_t tb = r->bits[b]; r->bits[b] = r->bits[b - 1]; r->bits[b - 1] = tb;
                }
        }
    }
    return D2_OK;
}

static int write_rows(ctx *c, const char *out, uint32_t L, uint32_t E, uint32_t K, int has_bits)
{
    uint32_t *idx = malloc((c->n ? c->n : 1) * sizeof *idx);
    if (!idx) D2_ERROR(D2_ENOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!c->rows[i].drop) idx[m++] = (uint32_t)i;
    sort_rows = c->rows;
    qsort(idx, m, sizeof *idx, cmp_idx);
    /* duplicates: keep the first line */
    size_t w = 0;
    for (size_t i = 0; i < m; i++) {
        const raw *r = &c->rows[idx[i]];
        if (w) {
            const raw *p = &c->rows[idx[w - 1]];
            if (p->req == r->req && p->pos == r->pos && p->layer == r->layer) {
                int rc = problem(c, IMPORT_DUP, r->line, "request %u position %lld layer %lld: duplicate of line %u", r->req,
                                 (long long)r->pos, (long long)r->layer, p->line);
                if (rc) { free(idx); return rc; }
                continue;
            }
        }
        idx[w++] = idx[i];
    }
    m = w;
    if (!m) { free(idx); D2_ERROR(D2_EFORMAT, "%s: no usable records (all %llu rows dropped)", c->path, (unsigned long long)c->rep->rows); }
    /* token checks (missing layers, gaps) before writing, so --strict fails
     * cleanly.  A token misses a layer when it lacks one of the layers the
     * file logs (a log of layers 3 and 7 is complete with those two). */
    uint32_t nlog = 0;
    {
        uint8_t *seen = calloc(L ? L : 1, 1);
        if (!seen) { free(idx); D2_ERROR(D2_ENOMEM, "out of memory"); }
        for (size_t i = 0; i < m; i++) {
            const raw *r = &c->rows[idx[i]];
            if (!seen[r->layer]) { seen[r->layer] = 1; nlog++; }
        }
        free(seen);
    }
    for (size_t i = 0; i < m;) {
        size_t j = i;
        const raw *r = &c->rows[idx[i]];
        while (j < m && c->rows[idx[j]].req == r->req && c->rows[idx[j]].pos == r->pos) j++;
        if (j - i < nlog) {
            int rc = problem(c, IMPORT_MISSING, r->line, "request %u position %lld: %zu of the %u logged layers present", r->req,
                             (long long)r->pos, j - i, nlog);
            if (rc) { free(idx); return rc; }
        }
        if (j < m && c->rows[idx[j]].req == r->req && c->rows[idx[j]].pos != r->pos + 1) {
            int rc = problem(c, IMPORT_GAP, c->rows[idx[j]].line, "request %u: position %lld follows %lld", r->req,
                             (long long)c->rows[idx[j]].pos, (long long)r->pos);
            if (rc) { free(idx); return rc; }
        }
        i = j;
    }
    trace_header h = {0};
    h.layers = L; h.experts = E; h.top_k = K; h.has_bits = has_bits;
    if (c->o->model) snprintf(h.model, sizeof h.model, "%s", c->o->model);
    trace_writer *tw;
    int rc = trace_writer_new(out, &h, &tw);
    if (rc) { free(idx); return rc; }
    /* Requests are renumbered densely in order of first appearance among
     * kept rows; positions are renumbered 0,1,2.. per request in file order
     * of position (the first recorded position becomes 0). */
    uint32_t req = UINT32_MAX, newreq = 0, newpos = 0;
    int64_t lastpos = 0;
    for (size_t i = 0; i < m && !rc; i++) {
        const raw *r = &c->rows[idx[i]];
        if (r->req != req) {
            if (req != UINT32_MAX) newreq++;
            req = r->req;
            newpos = 0;
            lastpos = r->pos;
        } else if (r->pos != lastpos) {
            newpos++;
            lastpos = r->pos;
        }
        trace_rec t;
        memset(&t, 0, sizeof t);
        t.req = newreq;
        t.pos = newpos;
        t.layer = (uint16_t)r->layer;
        t.phase = r->phase;
        for (uint32_t j = 0; j < K; j++) {
            t.experts[j] = (uint16_t)r->ex[j];
            t.weights[j] = r->w[j];
            t.bits[j] = r->bits[j];
        }
        rc = trace_writer_put(tw, &t);
    }
    free(idx);
    if (rc) { trace_writer_abort(tw); return rc; }
    c->rep->records = m;
    c->rep->requests = newreq + 1;
    return trace_writer_close(tw);
}

int import_run(const char *in, const char *out, const import_opts *o, import_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int fmt;
    if (!o->format) D2_ERROR(D2_EINVAL, "no input format given (mixtral-jsonl, vllm-jsonl or csv)");
    if (!strcmp(o->format, "mixtral-jsonl")) fmt = 0;
    else if (!strcmp(o->format, "vllm-jsonl")) fmt = 1;
    else if (!strcmp(o->format, "csv")) fmt = 2;
    else D2_ERROR(D2_EINVAL, "format \"%s\": expected mixtral-jsonl, vllm-jsonl or csv", o->format);
    ctx c = {0};
    c.path = in;
    c.o = o;
    c.rep = rep;
    int has_bits = 0;
    int rc = read_input(&c, fmt, &has_bits);
    if (!rc && fmt == 1) {
        skip_warmup(&c);
        if (rep->warmup == rep->rows) { rc = D2_EFORMAT; d2_err_set("%s: only warm-up rows (%llu), no real routing", in, (unsigned long long)rep->warmup); }
        else rc = vllm_structure(&c);
    }
    uint32_t L = o->layers, E = o->experts, K = o->top_k;
    if (!rc) {
        if (!E) E = c.meta_experts;
        if (!K) K = c.meta_topk;
        if (!L) L = c.meta_layers;
        int64_t maxl = -1, maxe = -1;
        uint32_t firstk = 0;
        for (size_t i = 0; i < c.n; i++) {
            const raw *r = &c.rows[i];
            if (r->drop) continue;
            if (!firstk) firstk = r->k;
            if (r->layer <= 65534 && r->layer > maxl) maxl = r->layer;
            for (int j = 0; j < r->k; j++)
                if (r->ex[j] <= 65534 && r->ex[j] > maxe) maxe = r->ex[j];
        }
        /* Inferred shape: largest id seen + 1 (then nothing is out of range),
         * ids up to the format's 65535 experts (a larger one is out of range,
         * reported at its line like any other). */
        if (!K) K = firstk;
        if (!L) L = maxl >= 0 ? (uint32_t)maxl + 1 : 1;
        if (!E) E = maxe >= 0 ? (uint32_t)maxe + 1 : 1;
        if (E < K && o->experts) { rc = D2_EINVAL; d2_err_set("--experts %u: fewer than top-k %u", E, K); }
        else if (E < K && c.meta_experts) { rc = D2_EFORMAT; d2_err_set("%s: meta line: num_experts %u is fewer than top-k %u", in, E, K); }
        else if (E < K) E = K; /* inferred from the largest id seen: widened to hold a record */
        if (!K || K > TRACE_K_MAX) { rc = D2_EFORMAT; d2_err_set("%s: cannot tell top-k (no valid record)", in); }
    }
    if (!rc) rc = check_rows(&c, L, E, K);
    if (!rc) {
        rep->layers = L; rep->experts = E; rep->top_k = K;
        rc = write_rows(&c, out, L, E, K, has_bits);
    }
    if (!rc) {
        trace_file *tf;
        rc = trace_file_open(out, &tf);
        if (!rc) { rep->tokens = trace_file_header(tf)->tokens; trace_file_close(tf); }
    }
    for (size_t i = 0; i < c.hcap; i++) free(c.names[i]);
    free(c.names); free(c.ids); free(c.rows); free(c.byid); free(c.meta_logged);
    return rc;
}

/* ------------------------------------------------------------------ tables */

void import_table_clear(import_table *t)
{
    free(t->shares);
    memset(t, 0, sizeof *t);
}

/* Values of a table: finite, >= 0, at most this (a larger count or fraction
 * is no activation table; the sums would overflow). */
#define TABLE_VALUE_MAX 1e15
static int table_check_rows(const char *path, import_table *t, const uint32_t *lines);

static int table_json(const char *path, const char *text, size_t len, import_table *t)
{
    json_error_t err;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!o) D2_ERROR(D2_EFORMAT, "%s:%d: malformed JSON: %s", path, err.line, err.text);
    int rc = D2_OK;
    json_t *ne = json_object_get(o, "num_experts"), *by = json_object_get(o, "expert_usage_by_layer");
    if (!json_is_integer(ne) || json_integer_value(ne) < 1 || json_integer_value(ne) > 65535) { rc = D2_EFORMAT; d2_err_set("%s: field \"num_experts\": expected an integer 1..65535", path); goto out; }
    if (!json_is_object(by) || json_object_size(by) == 0) { rc = D2_EFORMAT; d2_err_set("%s: field \"expert_usage_by_layer\": expected a non-empty object", path); goto out; }
    t->experts = (uint32_t)json_integer_value(ne);
    t->layers = (uint32_t)json_object_size(by);
    t->top_k = 0; /* counts: k unknown */
    long *keys = malloc(t->layers * sizeof *keys);
    t->shares = calloc((size_t)t->layers * t->experts, sizeof *t->shares);
    if (!keys || !t->shares) { free(keys); rc = D2_ENOMEM; d2_err_set("out of memory"); goto out; }
    const char *k;
    json_t *v;
    size_t n = 0;
    json_object_foreach(by, k, v) {
        char *end;
        keys[n] = strtol(k, &end, 10);
        if (*end || end == k) { free(keys); rc = D2_EFORMAT; d2_err_set("%s: field \"expert_usage_by_layer\": key \"%s\" is not a layer number", path, k); goto out; }
        n++;
    }
    /* layers in numeric order */
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b > 0 && keys[b] < keys[b - 1]; b--) { long x = keys[b]; keys[b] = keys[b - 1]; keys[b - 1] = x; }
    for (size_t l = 0; l < n && !rc; l++) {
        char kb[32];
        snprintf(kb, sizeof kb, "%ld", keys[l]);
        json_t *lay = json_object_get(by, kb);
        if (!json_is_object(lay)) { rc = D2_EFORMAT; d2_err_set("%s: field \"expert_usage_by_layer\".\"%s\": expected an object", path, kb); break; }
        json_object_foreach(lay, k, v) {
            char *end;
            long e = strtol(k, &end, 10);
            if (*end || end == k || e < 0 || e >= (long)t->experts) { rc = D2_EFORMAT; d2_err_set("%s: layer %s: expert \"%s\" out of range 0..%u", path, kb, k, t->experts - 1); break; }
            if (!json_is_number(v) || !(json_number_value(v) >= 0) || json_number_value(v) > TABLE_VALUE_MAX) { rc = D2_EFORMAT; d2_err_set("%s: layer %s expert %s: expected a count 0..%g", path, kb, k, TABLE_VALUE_MAX); break; }
            t->shares[l * t->experts + (size_t)e] = json_number_value(v);
        }
    }
    free(keys);
    if (!rc) rc = table_check_rows(path, t, NULL);
out:
    json_decref(o);
    if (rc) import_table_clear(t);
    return rc;
}

/* Every layer of a table must have some activation: a row of zeros (or a
 * whole table of them) cannot be measured or fitted. */
static int table_check_rows(const char *path, import_table *t, const uint32_t *lines)
{
    for (uint32_t l = 0; l < t->layers; l++) {
        double s = 0;
        for (uint32_t e = 0; e < t->experts; e++) s += t->shares[(size_t)l * t->experts + e];
        if (!(s > 0) || !isfinite(s)) {
            if (lines) D2_ERROR(D2_EFORMAT, "%s:%u: layer %u: values sum to %g (all zero or not finite)", path, lines[l], l, s);
            D2_ERROR(D2_EFORMAT, "%s: layer %u: values sum to %g (all zero or not finite)", path, l, s);
        }
    }
    return D2_OK;
}

/* Qwen3 activation CSV: header Layer,Language,Expert_0,Expert_1,... exactly;
 * the Layer column decides the layer; the rows of the
 * chosen language must hold layers 0..L-1 exactly once each (duplicates,
 * gaps and non-numeric layers are errors at file:line).  Line numbers count
 * every line, blank ones included. */
static int table_csv(const char *path, char *text, const char *language, import_table *t)
{
    const char *lang = language ? language : "English";
    char *p = text;
    uint32_t lineno = 0;
    char *line = NULL;
    /* next line (CR stripped) into line; NULL at the end */
#define NEXT_LINE()                                                  \
    do {                                                             \
        if (!*p) { line = NULL; break; }                             \
        line = p;                                                    \
        char *nl_ = strchr(p, '\n');                                 \
        if (nl_) { *nl_ = 0; p = nl_ + 1; } else p += strlen(p);     \
        size_t n_ = strlen(line);                                    \
        if (n_ && line[n_ - 1] == '\r') line[n_ - 1] = 0;            \
        lineno++;                                                    \
    } while (0)
    NEXT_LINE();
    if (!line) D2_ERROR(D2_EFORMAT, "%s: empty file", path);
    /* header: Layer,Language,Expert_0,Expert_1,... exactly: every column
     * after the first two is Expert_<i> with i = 0, 1, 2, ... in order (a
     * value is read by its position, so another column or another order
     * would be read as the wrong expert) */
    uint32_t E = 0;
    {
        const char *q = line;
        for (uint32_t col = 1;; col++) {
            size_t n = strcspn(q, ",");
            char want[32];
            if (col == 1) snprintf(want, sizeof want, "Layer");
            else if (col == 2) snprintf(want, sizeof want, "Language");
            else snprintf(want, sizeof want, "Expert_%u", col - 3);
            if (n != strlen(want) || memcmp(q, want, n))
                D2_ERROR(D2_EFORMAT, "%s:1: header column %u: expected \"%s\", got \"%.*s\"", path, col, want, n > 40 ? 40 : (int)n, q);
            if (col >= 3) E++;
            if (!q[n]) {
                if (col < 3) D2_ERROR(D2_EFORMAT, "%s:1: header: expected Layer,Language,Expert_0,..., got %u column(s)", path, col);
                break;
            }
            if (E == 65535) D2_ERROR(D2_EFORMAT, "%s:1: header: more than 65535 expert columns", path);
            q += n + 1;
        }
    }
    double *sh = NULL;   /* [layer][E] shares */
    uint32_t *at = NULL; /* line of each layer's row, 0 = none yet */
    size_t cap = 0, sh_cap = 0; /* layers with room in at (zeroed) and in sh; sh_cap counts doubles */
    uint32_t L = 0, rows = 0;
    double ksum = 0;
    int rc = D2_OK;
    for (;;) {
        NEXT_LINE();
        if (!line) break;
        if (!*line) continue;
        char *c1 = strchr(line, ',');
        char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c2) { rc = D2_EFORMAT; d2_err_set("%s:%u: expected Layer,Language,values", path, lineno); break; }
        *c1 = 0;
        *c2 = 0;
        if (strcmp(c1 + 1, lang)) continue;
        char *end;
        errno = 0;
        long lay = strtol(line, &end, 10);
        if (end == line || *end || errno || lay < 0 || lay > 65534) {
            rc = D2_EFORMAT; d2_err_set("%s:%u: field \"Layer\": expected a layer number 0..65534, got \"%.40s\"", path, lineno, line); break;
        }
        if ((size_t)lay >= cap) {
            size_t old = cap;
            if ((rc = VEC_RESERVE(at, cap, (size_t)lay + 1)) != D2_OK) break;
            memset(at + old, 0, (cap - old) * sizeof *at);
            if ((rc = VEC_RESERVE(sh, sh_cap, cap * E)) != D2_OK) break;
        }
        if (at[lay]) { rc = D2_EFORMAT; d2_err_set("%s:%u: field \"Layer\": layer %ld again (first at line %u)", path, lineno, lay, at[lay]); break; }
        at[lay] = lineno;
        if ((uint32_t)lay + 1 > L) L = (uint32_t)lay + 1;
        char *q = c2 + 1;
        uint32_t nf = 1; /* value fields on the line: the header's count, else the row is short or long */
        for (const char *x = q; *x; x++) nf += *x == ',';
        if (nf != E) {
            rc = D2_EFORMAT;
            d2_err_set("%s:%u: %u fields, the header has %u (Layer, Language and %u expert columns)", path, lineno, nf + 2, E + 2, E);
            break;
        }
        double rs = 0;
        for (uint32_t e = 0; e < E; e++) {
            double v = strtod(q, &end);
            if (end == q || !isfinite(v) || v < 0 || v > TABLE_VALUE_MAX || (e + 1 < E ? *end != ',' : *end != 0)) {
                rc = D2_EFORMAT;
                d2_err_set("%s:%u: field \"Expert_%u\": expected a number 0..%g", path, lineno, e, TABLE_VALUE_MAX);
                break;
            }
            sh[(size_t)lay * E + e] = v;
            rs += v;
            q = end + 1;
        }
        if (rc) break;
        ksum += rs;
        rows++;
    }
#undef NEXT_LINE
    if (!rc && !rows) { rc = D2_EFORMAT; d2_err_set("%s: no rows with Language = %s", path, lang); }
    for (uint32_t l = 0; !rc && l < L; l++)
        if (!at[l]) { rc = D2_EFORMAT; d2_err_set("%s: field \"Layer\": layer %u missing (layers 0..%u expected, once each)", path, l, L - 1); }
    if (!rc) {
        t->layers = L;
        t->experts = E;
        t->shares = sh;
        rc = table_check_rows(path, t, at);
        if (rc) t->shares = NULL;
    }
    if (rc) { free(sh); free(at); memset(t, 0, sizeof *t); return rc; }
    free(at);
    double k = ksum / L;
    /* activation fractions: a row sums to top-k (data/README.md) */
    t->top_k = fabs(k - round(k)) < 0.05 && round(k) >= 1 && round(k) <= TRACE_K_MAX ? (uint32_t)round(k) : 0;
    return D2_OK;
}

int import_table_read(const char *path, const char *language, import_table *t)
{
    memset(t, 0, sizeof *t);
    FILE *f;
    uint64_t size;
    D2_TRY(fileio_open_read(path, FILEIO_TABLE_MAX, &f, &size));
    long sz = (long)size;
    if (sz <= 0) { fclose(f); D2_ERROR(D2_EFORMAT, "%s: empty file", path); }
    char *buf = malloc((size_t)sz + 1);
    if (!buf) { fclose(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
    size_t got = fread(buf, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) { free(buf); D2_ERROR(D2_EIO, "%s: read error", path); }
    buf[sz] = 0;
    int rc;
    if (memchr(buf, 0, (size_t)sz)) { rc = D2_EFORMAT; d2_err_set("%s: binary data: neither a .d2t trace nor an activation table", path); }
    else {
        size_t b = sz >= 3 && !memcmp(buf, UTF8_BOM, 3) ? 3 : 0, i = b;
        while (i < (size_t)sz && isspace((unsigned char)buf[i])) i++;
        rc = buf[i] == '{' ? table_json(path, buf + b, (size_t)sz - b, t) : table_csv(path, buf + b, language, t);
    }
    free(buf);
    return rc;
}
