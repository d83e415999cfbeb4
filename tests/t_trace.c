/* t_trace.c - .d2t round trip and damage detection (every flipped byte,
 * every truncation), the routing source (wrap and fallback rules), stats
 * known answers (by hand below), importers and the bad-input corpus,
 * generator determinism, and the --like fits against the real data in
 * $D2_SHARED (# SKIP when absent).  Runs in a few seconds. */
#include "core/err.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/rng.h"
#include "trace/gen.h"
#include "trace/import.h"
#include "trace/source.h"
#include "trace/stat.h"
#include "trace/trace.h"
#include "tap.h"

#include <gsl/gsl_errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char buf[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", tmpdir, name);
    return buf[i];
}

static const char *corpus(const char *name)
{
    static char buf[2][1024];
    static int i;
    i = (i + 1) % 2;
    snprintf(buf[i], sizeof buf[i], "%s/tests/data/trace/%s", tap_srcdir(), name);
    return buf[i];
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void spit(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* A small hand-made trace: 3 layers, 4 experts, top-2; request 0 has
 * positions 0..2 (pos 0 prefill), request 1 has position 0 only and lacks
 * layer 1.  Expert of (req, pos, layer) = (req + pos + layer) % 4 first. */
static int write_small(const char *path, uint32_t chunk)
{
    trace_header h = {0};
    h.layers = 3; h.experts = 4; h.top_k = 2; h.has_bits = 1; h.chunk_records = chunk;
    snprintf(h.model, sizeof h.model, "small");
    trace_writer *w;
    int rc = trace_writer_new(path, &h, &w);
    if (rc) return rc;
    for (uint32_t q = 0; q < 2; q++)
        for (uint32_t p = 0; p < (q ? 1u : 3u); p++)
            for (uint32_t l = 0; l < 3; l++) {
                if (q == 1 && l == 1) continue;
                trace_rec r = {0};
                r.req = q; r.pos = p; r.layer = (uint16_t)l; r.phase = p == 0 ? TRACE_PREFILL : TRACE_DECODE;
                r.experts[0] = (uint16_t)((q + p + l) % 4);
                r.experts[1] = (uint16_t)((q + p + l + 1) % 4);
                r.weights[0] = 0.75f; r.weights[1] = 0.25f;
                r.bits[0] = 4; r.bits[1] = 2;
                if ((rc = trace_writer_put(w, &r))) { trace_writer_abort(w); return rc; }
            }
    return trace_writer_close(w);
}

static void test_roundtrip(void)
{
    const char *p = tmp("small.d2t");
    ok(write_small(p, 2) == D2_OK, "write a small trace (chunks of 2 records)");
    trace_reader *r;
    ok(trace_reader_open(p, &r) == D2_OK, "reopen it");
    const trace_header *h = trace_reader_header(r);
    is_int(h->records, 11, "records = 3*3 + 2");
    is_int(h->tokens, 4, "tokens = 3 + 1");
    is_int(h->requests, 2, "requests = 2");
    is_str(h->model, "small", "model name kept");
    trace_rec rec;
    int n = 0, good = 1, rc;
    while ((rc = trace_reader_next(r, &rec)) == 1) {
        if (rec.experts[0] != (rec.req + rec.pos + rec.layer) % 4 || rec.weights[0] != 0.75f || rec.bits[1] != 2) good = 0;
        n++;
    }
    ok(rc == 0 && n == 11 && good, "all 11 records read back identical");
    trace_reader_close(r);

    /* writer refuses disorder */
    trace_header hh = {0};
    hh.layers = 2; hh.experts = 4; hh.top_k = 1;
    trace_writer *w;
    trace_rec a = {0};
    a.weights[0] = 1;
    trace_writer_new(tmp("bad.d2t"), &hh, &w);
    trace_writer_put(w, &a);
    ok(trace_writer_put(w, &a) == D2_EINVAL && strstr(d2_err_msg(), "not increasing"), "writer refuses a repeated (req,pos,layer)");
    trace_writer_abort(w);
    ok(!file_exists(tmp("bad.d2t")), "aborted writer leaves no file");
    trace_writer_new(tmp("bad.d2t"), &hh, &w);
    a.pos = 1;
    ok(trace_writer_put(w, &a) == D2_EINVAL && strstr(d2_err_msg(), "starts at position 1"), "writer refuses a request not starting at 0");
    trace_writer_abort(w);
    trace_writer_new(tmp("bad.d2t"), &hh, &w);
    a.pos = 0; a.experts[0] = 4;
    ok(trace_writer_put(w, &a) == D2_EFORMAT && strstr(d2_err_msg(), "\"experts\"[0]: id 4 out of range"), "writer refuses an id out of range");
    ok(trace_writer_close(w) != D2_OK && !file_exists(tmp("bad.d2t")), "a refused writer does not leave a file");
    /* layers x experts beyond what a model profile allows: refused by the
     * writer (an importer never makes one) and by the reader (a header made
     * elsewhere, checksum right) */
    hh.layers = 65535; hh.experts = 65535;
    ok(trace_writer_new(tmp("big.d2t"), &hh, &w) == D2_EINVAL && strstr(d2_err_msg(), "65535 layers x 65535 experts") &&
           !file_exists(tmp("big.d2t")),
       "writer refuses 65,535 layers x 65,535 experts (\"%s\")", d2_err_msg());
    size_t nb = 0;
    unsigned char *b = slurp(tmp("small.d2t"), &nb);
    if (b && nb >= 128) {
        const uint32_t L = 65535, E = 65535;
        for (int i = 0; i < 4; i++) { b[16 + i] = (unsigned char)(L >> 8 * i); b[20 + i] = (unsigned char)(E >> 8 * i); }
        uint64_t hs = hash64(b, 120);
        for (int i = 0; i < 8; i++) b[120 + i] = (unsigned char)(hs >> 8 * i);
        spit(tmp("big.d2t"), b, nb);
        trace_file *tf = NULL;
        ok(trace_file_open(tmp("big.d2t"), &tf) == D2_EFORMAT && strstr(d2_err_msg(), "big.d2t") &&
               strstr(d2_err_msg(), "\"layers\" x \"experts\""),
           "reader refuses a header of 65,535 x 65,535 (\"%s\")", d2_err_msg());
        trace_file_close(tf);
        /* reserved bytes, zero as the writer leaves them, behind right checksums:
         * after the model's name in the header, and in an index entry */
        static const struct { int at; unsigned char v; const char *want; } rz[] = {
            {100, 1, "header byte 100 is 1: the bytes after the model's name up to 119 are reserved, 0"},
            {95, 0x41, "header byte 95 is 65"},
            {64, 0x1b, "header field \"model\": a control character (byte 64)"},
        };
        unsigned char *g = slurp(tmp("small.d2t"), &nb);
        for (size_t k = 0; g && k < sizeof rz / sizeof rz[0]; k++) {
            memcpy(b, g, nb);
            b[rz[k].at] = rz[k].v;
            uint64_t hk = hash64(b, 120);
            for (int i = 0; i < 8; i++) b[120 + i] = (unsigned char)(hk >> 8 * i);
            spit(tmp("rz.d2t"), b, nb);
            tf = NULL;
            ok(trace_file_open(tmp("rz.d2t"), &tf) == D2_EFORMAT && strstr(d2_err_msg(), "rz.d2t") && strstr(d2_err_msg(), rz[k].want),
               "reader refuses header byte %d = %u (\"%s\")", rz[k].at, rz[k].v, d2_err_msg());
            trace_file_close(tf);
        }
        if (g) { /* index entry 0's last four bytes (the index: 16 bytes of head, then the entries, ending the file) */
            memcpy(b, g, nb);
            size_t io = 0;
            for (int i = 7; i >= 0; i--) io = io << 8 | b[56 + i]; /* the header's index offset */
            const size_t ne = (nb - io - 16) / 24;
            b[io + 16 + 20] = 1;
            uint64_t hi = hash64(b + io + 16, ne * 24);
            for (int i = 0; i < 8; i++) b[io + 8 + i] = (unsigned char)(hi >> 8 * i);
            spit(tmp("rz.d2t"), b, nb);
            tf = NULL;
            ok(trace_file_open(tmp("rz.d2t"), &tf) == D2_EFORMAT && strstr(d2_err_msg(), "request index entry 0: bytes 20..23 are reserved"),
               "reader refuses a reserved index field set (\"%s\")", d2_err_msg());
            trace_file_close(tf);
        }
        free(g);
    } else ok(0, "read small.d2t back");
    free(b);
}

/* Every single flipped byte and every truncation must be detected by open
 * or by the full read: checksums cover header, chunks and index. */
static void test_damage(void)
{
    const char *p = tmp("small.d2t"), *q = tmp("damaged.d2t");
    size_t n;
    unsigned char *b = slurp(p, &n);
    int undetected = 0, crashed_never = 1;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[i] ^= (unsigned char)(1u << bit);
            spit(q, b, n);
            b[i] ^= (unsigned char)(1u << bit);
            trace_reader *r;
            int rc = trace_reader_open(q, &r);
            if (!rc) {
                trace_rec rec;
                while ((rc = trace_reader_next(r, &rec)) == 1) {}
                trace_reader_close(r);
            }
            if (rc != D2_EFORMAT) { undetected++; if (undetected < 3) tap_diag("flip at byte %zu bit %d: rc %d", i, bit, rc); }
        }
    }
    ok(undetected == 0 && crashed_never, "all %zu x 2 single-bit flips detected as format errors", n);
    /* byte 150: header 128 + chunk head 16 + 6 = inside record 0's payload */
    b[150] ^= 0x10;
    spit(q, b, n);
    b[150] ^= 0x10;
    trace_reader *r;
    int rc = trace_reader_open(q, &r);
    trace_rec rec;
    if (!rc) { while ((rc = trace_reader_next(r, &rec)) == 1) {} trace_reader_close(r); }
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "checksum mismatch"), "a flipped record byte: \"%s\"", d2_err_msg());
    int trunc_ok = 1;
    for (size_t len = 0; len < n; len++) {
        spit(q, b, len);
        rc = trace_reader_open(q, &r);
        if (!rc) { trace_reader_close(r); trunc_ok = 0; }
    }
    ok(trunc_ok, "every truncation (0..%zu bytes) refused at open", n - 1);
    spit(q, b, n - 5);
    rc = trace_reader_open(q, &r);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "truncated"), "truncation message: \"%s\"", d2_err_msg());
    spit(q, (const unsigned char *)"", 0);
    ok(trace_reader_open(q, &r) == D2_EFORMAT && strstr(d2_err_msg(), "empty"), "empty .d2t: \"%s\"", d2_err_msg());
    ok(trace_reader_open(corpus("garbage.bin"), &r) == D2_EFORMAT && strstr(d2_err_msg(), "not a .d2t"), "garbage: \"%s\"", d2_err_msg());
    free(b);
}

static void test_source_file(void)
{
    trace_source *s;
    ok(trace_source_open_file(tmp("small.d2t"), &s) == D2_OK, "file source opens");
    trace_shape sh;
    trace_source_shape(s, &sh);
    ok(sh.layers == 3 && sh.experts == 4 && sh.top_k == 2 && sh.requests == 2 && sh.has_bits == 1, "file source shape");
    ok(strlen(trace_source_id(s)) == 32, "file source id is the 32-hex XXH3-128");
    uint16_t ex[TRACE_K_MAX];
    float w[TRACE_K_MAX];
    uint8_t bits[TRACE_K_MAX];
    int good = 1;
    /* the simulator's order for R = 4 requests, 5 positions: requests wrap mod 2, positions mod length */
    for (uint32_t pos = 0; pos < 5; pos++)
        for (uint32_t l = 0; l < 3; l++)
            for (uint32_t q = 0; q < 4; q++) {
                if (trace_source_route(s, q, pos, l, ex, w, bits)) { good = 0; continue; }
                uint32_t fq = q % 2, fp = fq ? 0 : pos % 3;
                uint32_t fl = (fq == 1 && l == 1) ? 0 : l; /* request 1 lacks layer 1: nearest earlier layer (0) */
                if (ex[0] != (fq + fp + fl) % 4 || w[0] != 0.75f || bits[0] != 4) {
                    good = 0;
                    tap_diag("req %u pos %u layer %u: got %u", q, pos, l, ex[0]);
                }
            }
    ok(good, "file source: known answers with request and position wrap and missing-layer fallback");
    ok(trace_source_route(s, 0, 0, 3, ex, w, NULL) == D2_EINVAL, "layer out of range refused");
    ok(trace_source_route(s, 7, 1000001, 2, ex, w, NULL) == D2_OK && ex[0] == (1 + 0 + 2) % 4, "far request/position wraps");
    trace_source_free(s);
}

/* Missing layers at the start and end of a token, a token spanning two
 * chunks (chunks of 2 records), positions found by search (the request is
 * incomplete): layer 0 of position 0 comes from its next recorded layer (1),
 * layer 2 of position 1 from its nearest earlier one (1). */
static void test_source_gaps(void)
{
    trace_header h = {0};
    h.layers = 3; h.experts = 8; h.top_k = 2; h.chunk_records = 2;
    trace_writer *w;
    int rc = trace_writer_new(tmp("gaps.d2t"), &h, &w);
    const uint32_t have[2][3] = {{0, 1, 1}, {1, 1, 0}};
    for (uint32_t p = 0; p < 2 && !rc; p++)
        for (uint32_t l = 0; l < 3 && !rc; l++) {
            if (!have[p][l]) continue;
            trace_rec r = {0};
            r.pos = p; r.layer = (uint16_t)l; r.phase = TRACE_DECODE;
            r.experts[0] = (uint16_t)(4 * p + l); r.experts[1] = 7;
            r.weights[0] = 0.5f + 0.1f * (float)l; r.weights[1] = 0.1f;
            rc = trace_writer_put(w, &r);
        }
    if (rc) trace_writer_abort(w);
    else rc = trace_writer_close(w);
    trace_source *s = NULL;
    ok(!rc && trace_source_open_file(tmp("gaps.d2t"), &s) == D2_OK, "gappy trace written and opened");
    const uint16_t want[2][3] = {{1, 1, 2}, {4, 5, 5}};
    int good = s != NULL;
    for (uint32_t p = 0; p < 4 && good; p++)
        for (uint32_t l = 0; l < 3 && good; l++) {
            uint16_t ex[TRACE_K_MAX];
            float wt[TRACE_K_MAX];
            uint8_t bits[TRACE_K_MAX];
            if (trace_source_route(s, 0, p, l, ex, wt, bits) || ex[0] != want[p % 2][l] || ex[1] != 7 || bits[0] != 0) {
                good = 0;
                tap_diag("pos %u layer %u: got %u, want %u", p, l, ex[0], want[p % 2][l]);
            }
        }
    ok(good, "file source: missing first and last layers filled from the next and the nearest earlier recorded layer");
    trace_source_free(s);
}

/* A record damaged behind a correct checksum (a file made or edited
 * elsewhere): the simulator's source refuses it as trace stats does.  It
 * used to replay duplicate experts, NaN or ascending weights and a phase of
 * 7, and a layer given twice left the missing layer's routing uninitialized
 * (a garbage expert id, or the previous token's routing). */
static void test_source_damage(void)
{
    const char *p = tmp("dmgsrc.d2t"), *q = tmp("dmgsrc2.d2t");
    ok(write_small(p, 1024) == D2_OK, "a small trace in one chunk");
    size_t nb = 0;
    unsigned char *b0 = slurp(p, &nb);
    const size_t rb = trace_record_bytes(2, 1), rec1 = 144 + rb; /* header 128, chunk head 16; record 1 = req 0 pos 0 layer 1 */
    static const struct { const char *what, *want; } cases[] = {
        {"NaN weight", "record 1: field \"weights\"[0]: nan"},
        {"ascending weights", "record 1: field \"weights\": not in descending order"},
        {"an expert twice", "record 1: field \"experts\": id 1 appears twice"},
        {"phase 7", "record 1: field \"phase\": 7"},
        {"layer 0 twice (layer 1 missing)", "record 1: out of (request, position, layer) order"},
        {"a record of position 2 among position 0's", "record 2: out of (request, position, layer) order"},
        {"the reserved byte 11 set", "record 1: byte 11 is 1: reserved, 0"},
        {"position 1 recorded as position 2 (after a whole position 0)", "record 3: out of (request, position, layer) order"},
    };
    for (size_t k = 0; b0 && nb > rec1 + 3 * rb && k < sizeof cases / sizeof cases[0]; k++) {
        unsigned char *b = malloc(nb);
        memcpy(b, b0, nb);
        const float nan = NAN, up = 0.9f;
        uint32_t two = 2;
        switch (k) {
        case 0: memcpy(b + rec1 + 16, &nan, 4); break;
        case 1: memcpy(b + rec1 + 20, &up, 4); break;
        case 2: b[rec1 + 14] = b[rec1 + 12]; b[rec1 + 15] = b[rec1 + 13]; break;
        case 3: b[rec1 + 10] = 7; break;
        case 4: b[rec1 + 8] = 0; break;
        case 5: memcpy(b + 144 + 2 * rb + 4, &two, 4); break; /* record 2: position 0 layer 2 made position 2 */
        case 6: b[rec1 + 11] = 1; break;
        case 7: memcpy(b + 144 + 3 * rb + 4, &two, 4); break; /* record 3: position 1 layer 0 made position 2 */
        }
        const uint64_t hs = hash64(b + 144, 11 * rb); /* the chunk's checksum over its 11 records, made right again */
        for (int i = 0; i < 8; i++) b[136 + i] = (unsigned char)(hs >> 8 * i);
        spit(q, b, nb);
        free(b);
        trace_source *s = NULL;
        uint16_t ex[3 * TRACE_K_MAX];
        float w[3 * TRACE_K_MAX];
        uint8_t bits[3 * TRACE_K_MAX];
        int rc = trace_source_open_file(q, &s);
        int r1 = rc ? rc : trace_source_route(s, 0, 0, 1, ex, w, bits);
        int ok1 = r1 == D2_EFORMAT && strstr(d2_err_msg(), cases[k].want);
        tap_diag("%s, by layer: \"%s\"", cases[k].what, d2_err_msg());
        trace_source_free(s);
        s = NULL;
        rc = trace_source_open_file(q, &s); /* a fresh cursor: the token read whole, the top-2 direct path first */
        int r2 = rc ? rc : trace_source_route_token(s, 0, 0, ex, w, bits, 2);
        int ok2 = r2 == D2_EFORMAT && strstr(d2_err_msg(), cases[k].want);
        trace_source_free(s);
        ok(ok1 && ok2, "file source refuses %s (\"%s\")", cases[k].what, d2_err_msg());
    }
    free(b0);
}

/* trace_rec_check: one message per rule (the rules are written once, in
 * src/trace/trace_int.h, and the simulator's decoding asks the same
 * predicate), and which rule is named when one entry breaks two: layer,
 * phase, then per entry id range, a repeated id, the weight, its order */
static void test_rec_check(void)
{
    static const struct {
        unsigned layer, phase;
        uint16_t e0, e1;
        float w0, w1;
        const char *want; /* NULL: good */
    } cases[] = {
        {1, 1, 0, 3, 0.75f, 0.25f, NULL},
        {1, 1, 2, 1, 0.5f, 0.5f, NULL}, /* equal weights are non-increasing */
        {3, 7, 0, 4, 0.75f, 0.25f, "where: field \"layer\": 3 out of range 0..2"},
        {1, 7, 0, 4, 0.75f, 0.25f, "where: field \"phase\": 7 is not 0, 1 or 2"},
        {1, 1, 0, 4, 0.75f, NAN, "where: field \"experts\"[1]: id 4 out of range 0..3"},
        {1, 1, 2, 2, 0.75f, NAN, "where: field \"experts\": id 2 appears twice"},
        {1, 1, 2, 2, 0.25f, 0.75f, "where: field \"experts\": id 2 appears twice"},
        {1, 1, 0, 1, 0.75f, NAN, "where: field \"weights\"[1]: nan is not a finite weight >= 0"},
        {1, 1, 0, 1, -1.0f, 0.25f, "where: field \"weights\"[0]: -1 is not a finite weight >= 0"},
        {1, 1, 0, 1, INFINITY, 0.25f, "where: field \"weights\"[0]: inf is not a finite weight >= 0"},
        {1, 1, 0, 1, 0.25f, 0.75f, "where: field \"weights\": not in descending order at [1]"},
    };
    int good = 1;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        trace_rec r = {.layer = (uint16_t)cases[k].layer, .phase = (uint8_t)cases[k].phase};
        r.experts[0] = cases[k].e0; r.experts[1] = cases[k].e1;
        r.weights[0] = cases[k].w0; r.weights[1] = cases[k].w1;
        int rc = trace_rec_check(&r, 3, 4, 2, "where");
        int hit = cases[k].want ? rc == D2_EFORMAT && !strcmp(d2_err_msg(), cases[k].want) : rc == D2_OK;
        if (!hit) tap_diag("case %zu: rc %d \"%s\", want \"%s\"", k, rc, rc ? d2_err_msg() : "", cases[k].want ? cases[k].want : "");
        good &= hit;
    }
    ok(good, "trace_rec_check: each rule's message, the first rule broken named (%zu records)", sizeof cases / sizeof cases[0]);
}

static void test_stats_known(void)
{
    /* 1 request, positions 0..3, 2 layers, 4 experts, top-1.
     * layer 0 experts: 0,0,1,0 -> share (3/4, 1/4, 0, 0); repeats: (0,0) yes, (0,1) no, (1,0) no -> 1/3
     * layer 1 experts: 2,2,2,2 -> share (0,0,1,0); repeat 3/3
     * By hand: layer 0 max/mean = 0.75*4 = 3; Gini of sorted (0,0,.25,.75):
     *   sum (2i-n-1) x_i / n = ((-3)*0 + (-1)*0 + 1*.25 + 3*.75)/4 = 2.5/4 = 0.625
     *   entropy = -(.75 log2 .75 + .25 log2 .25) = 0.811278
     *   cv: mean .25, deviations (.5, 0, -.25, -.25) -> var = (.25+0+.0625+.0625)/4 = .09375, sd .306186, cv 1.224745
     * layer 0 -> 1 top-1 transitions: 0->2 (x3), 1->2 (x1): predict-by-mode accuracy 4/4; chance 4/4. */
    stat_acc *s;
    stat_new(2, 4, 1, &s);
    const uint16_t l0[] = {0, 0, 1, 0};
    for (uint32_t p = 0; p < 4; p++)
        for (uint16_t l = 0; l < 2; l++) {
            trace_rec r = {0};
            r.pos = p; r.layer = l; r.experts[0] = l ? 2 : l0[p]; r.weights[0] = 1;
            stat_add(s, &r);
        }
    stat_params sp;
    stat_params_default(&sp);
    ok(stat_finish(s, &sp) == D2_OK, "stat_finish");
    const stat_layer *y = stat_layer_get(s, 0);
    is_near(y->share[0], 0.75, 1e-12, "share[0] = 3/4");
    is_near(y->max_over_mean, 3, 1e-12, "max/mean = 3");
    is_near(y->gini, 0.625, 1e-12, "Gini = 0.625 (by hand)");
    is_near(y->entropy, 0.8112781244591328, 1e-12, "entropy = 0.811278 bits");
    is_near(y->cv, 1.224744871391589, 1e-12, "CV = 1.224745");
    is_near(y->top1_repeat, 1.0 / 3, 1e-12, "top-1 repeat layer 0 = 1/3");
    is_near(stat_layer_get(s, 1)->top1_repeat, 1, 1e-12, "top-1 repeat layer 1 = 1");
    is_near(y->next_top1_acc, 1, 1e-12, "layer 0 -> 1 top-1 predictable");
    /* distinct experts for R tokens: sum_e 1 - (1 - q_e)^R; R=2: (1-.0625)+(1-.5625) = 1.375 */
    is_near(y->distinct_experts[1], 1.375, 1e-12, "E[distinct experts], R = 2: 1.375 (by hand)");
    is_int(stat_tokens(s), 4, "tokens = 4");
    json_t *j = stat_json(s);
    ok(json_integer_value(json_object_get(j, "records")) == 8 && json_array_size(json_object_get(j, "layers")) == 2 &&
           json_is_array(json_object_get(json_array_get(json_object_get(j, "layers"), 0), "share")),
       "JSON has records, layers[].share");
    json_decref(j);
    stat_free(s);
    stat_params bad;
    stat_params_default(&bad);
    snprintf(bad.level_mix, sizeof bad.level_mix, "0.5,0.4");
    stat_new(1, 2, 1, &s);
    ok(stat_finish(s, &bad) == D2_EINVAL && strstr(d2_err_msg(), "sum to 1"), "level_mix must sum to 1");
    stat_free(s);
}

static int import_expect(const char *name, const char *format, int strict, uint32_t experts, int want_rc, const char *want)
{
    import_opts o = {0};
    o.format = format; o.strict = strict; o.experts = experts;
    import_report rep;
    int rc = import_run(corpus(name), tmp("imp.d2t"), &o, &rep);
    int good = rc == want_rc && (!want || strstr(d2_err_msg(), want));
    ok(good, "%s%s: rc %d, \"%s\"", name, strict ? " --strict" : "", rc, want ? d2_err_msg() : "");
    if (!good) tap_diag("got rc %d: %s", rc, d2_err_msg());
    return rc;
}

static void test_import_corpus(void)
{
    import_expect("truncated.jsonl", "mixtral-jsonl", 0, 0, D2_EFORMAT, "truncated.jsonl:2: malformed JSON");
    import_expect("wrongtype.jsonl", "mixtral-jsonl", 0, 0, D2_EFORMAT, "wrongtype.jsonl:2: field \"layer\": expected an integer, got a string");
    import_expect("wrongtype-elem.jsonl", "mixtral-jsonl", 0, 0, D2_EFORMAT, ":2: field \"experts\"[1]: expected an integer");
    import_expect("range.jsonl", "mixtral-jsonl", 1, 8, D2_EFORMAT, "range.jsonl:2: field \"experts\"[1]: id out of range 0..7");
    import_expect("negweight.jsonl", "mixtral-jsonl", 1, 0, D2_EFORMAT, "negweight.jsonl:2: field \"weights\"[1]");
    import_expect("wrongk.jsonl", "mixtral-jsonl", 1, 0, D2_EFORMAT, "wrongk.jsonl:2: field \"experts\": expected 2 ids, got 3");
    import_expect("dup.jsonl", "mixtral-jsonl", 1, 0, D2_EFORMAT, "dup.jsonl:2: request 0 position 0 layer 0: duplicate of line 1");
    import_expect("missing.jsonl", "mixtral-jsonl", 1, 0, D2_EFORMAT, "missing.jsonl:1: request 0 position 0: 1 of the 2 logged layers present");
    import_expect("empty.jsonl", "mixtral-jsonl", 0, 0, D2_EFORMAT, "empty file");
    import_expect("garbage.bin", "mixtral-jsonl", 0, 0, D2_EFORMAT, "garbage.bin:");
    import_expect("garbage.bin", "vllm-jsonl", 0, 0, D2_EFORMAT, "garbage.bin:");
    import_expect("garbage.bin", "csv", 0, 0, D2_EFORMAT, "garbage.bin:");
    import_expect("notobject.jsonl", "mixtral-jsonl", 0, 0, D2_EFORMAT, "notobject.jsonl:1: expected a JSON object, got an array");
    import_expect("badphase.csv", "csv", 0, 0, D2_EFORMAT, "badphase.csv:3: field \"phase\"");
    import_expect("nanweight.csv", "csv", 1, 0, D2_EFORMAT, "nanweight.csv:2: field \"weights\"[1]: nan");
    import_expect("fields.csv", "csv", 0, 0, D2_EFORMAT, "fields.csv:2: 7 fields, the header has 6");
    import_expect("badheader.csv", "csv", 0, 0, D2_EFORMAT, "badheader.csv:1: CSV header");
    import_expect("good.csv", "tsv", 0, 0, D2_EINVAL, "format \"tsv\"");
    import_expect("nosuchfile.jsonl", "mixtral-jsonl", 0, 0, D2_ENOTFOUND, "cannot open");

    /* default mode: counted and handled */
    import_opts o = {0};
    import_report rep;
    o.format = "mixtral-jsonl"; o.experts = 8;
    ok(import_run(corpus("range.jsonl"), tmp("imp.d2t"), &o, &rep) == D2_OK && rep.n[IMPORT_RANGE] == 1 && rep.records == 1 &&
           strstr(rep.first[IMPORT_RANGE], "range.jsonl:2"),
       "range.jsonl default: 1 record dropped and reported (\"%s\")", rep.first[IMPORT_RANGE]);
    o.experts = 0;
    ok(import_run(corpus("dup.jsonl"), tmp("imp.d2t"), &o, &rep) == D2_OK && rep.n[IMPORT_DUP] == 1 && rep.records == 1,
       "dup.jsonl default: the later duplicate dropped");
    ok(import_run(corpus("missing.jsonl"), tmp("imp.d2t"), &o, &rep) == D2_OK && rep.n[IMPORT_MISSING] == 1 && rep.records == 3,
       "missing.jsonl default: token kept, counted");
    o.format = "vllm-jsonl";
    ok(import_run(corpus("vllm-warmup.jsonl"), tmp("imp.d2t"), &o, &rep) == D2_OK && rep.warmup == 3 && rep.records == 2 &&
           rep.n[IMPORT_GAP] == 1 && rep.n[IMPORT_ORDER] == 1 && rep.experts == 64 && rep.top_k == 2,
       "vllm: 3 warm-up rows detected, a gap renumbered, an order fixed, shape from meta");
    o.format = "csv";
    ok(import_run(corpus("good.csv"), tmp("csv.d2t"), &o, &rep) == D2_OK && rep.records == 6 && rep.requests == 2 && rep.tokens == 3,
       "good.csv: 6 records, 2 requests, 3 tokens");
    trace_file *f;
    ok(trace_file_open(tmp("csv.d2t"), &f) == D2_OK && trace_file_request(f, 0)->prefill == 1 && trace_file_request(f, 0)->positions == 2,
       "csv phases: request a has 1 prefill position of 2");
    trace_file_close(f);
}

/* ../shared/data known values: data/README.md */
static void test_real_data(void)
{
    char mx[1024], ol[1024], qw[1024];
    snprintf(mx, sizeof mx, "%s/data/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl", tap_shared());
    snprintf(ol, sizeof ol, "%s/data/traces/olmoe-1b-7b.layer0.gsm8k.vllm.jsonl", tap_shared());
    snprintf(qw, sizeof qw, "%s/data/stats/qwen3-30b-a3b/avg_activation_gsm.csv", tap_shared());
    stat_params sp;
    stat_params_default(&sp);
    if (!file_exists(mx)) {
        tap_skip(13, "../shared/data absent");
    } else {
        import_opts o = {0};
        import_report rep;
        o.format = "mixtral-jsonl"; o.layers = 32; o.experts = 8; o.top_k = 2;
        ok(import_run(mx, tmp("mx.d2t"), &o, &rep) == D2_OK, "import the Mixtral GSM8K trace");
        is_int(rep.records, 7889, "7,889 records (data/README.md)");
        is_int(rep.tokens, 247, "247 (problem, token) pairs (data/README.md)");
        ok(rep.n[IMPORT_MISSING] > 0 && rep.n[IMPORT_MISSING] <= 15, "a few pairs miss layers: %llu reported", (unsigned long long)rep.n[IMPORT_MISSING]);
        stat_acc *s;
        ok(stat_file(tmp("mx.d2t"), &sp, &s) == D2_OK, "stats of it");
        /* data/README.md: top-1 kept on the next token 0.14 / 0.21 / 0.22 at
         * layers 0 / 15 / 31, printed with two decimals; we get 0.139 / 0.205 /
         * 0.217 over the 244 (pos, pos+1) pairs within a problem, so the
         * tolerance is one unit of the last printed digit. */
        is_near(stat_layer_get(s, 0)->top1_repeat, 0.14, 0.01, "top-1 repeat layer 0 = 0.14");
        is_near(stat_layer_get(s, 15)->top1_repeat, 0.21, 0.01, "top-1 repeat layer 15 = 0.21");
        is_near(stat_layer_get(s, 31)->top1_repeat, 0.22, 0.01, "top-1 repeat layer 31 = 0.22");
        is_int(stat_layer_get(s, 15)->repeat_pairs, 244, "layer 15: 244 consecutive pairs (by a Python check of the JSONL)");
        /* "per-layer expert share 0.03-0.21": our reading is the bulk of the
         * 32 x 8 shares (exact min/max are 0.010/0.235, single outliers of a
         * 247-token trace); >= 95% of them lie in [0.03, 0.21]. */
        int in = 0;
        for (uint32_t l = 0; l < 32; l++)
            for (uint32_t e = 0; e < 8; e++) {
                double v = stat_layer_get(s, l)->share[e];
                in += v >= 0.03 && v <= 0.21;
            }
        ok(in >= 0.95 * 256, "%d of 256 per-layer shares in 0.03..0.21", in);
        ok(fabs(stat_layer_get(s, 0)->w_mean[0] + stat_layer_get(s, 0)->w_mean[1] - 1) < 1e-3, "gates renormalised: w0 + w1 = 1");

        /* --like Mixtral: per-layer max/mean and Gini within 10%, repeat within 0.03 */
        gen_params gp;
        param_defaults(&gen_params_table, &gp);
        gen_model *m;
        int rc = gen_model_fit(&gp, s, 11, &m);
        stat_acc *g;
        stat_new(32, 8, 2, &g);
        if (!rc) rc = gen_stat(m, 64, 256, g);
        if (!rc) rc = stat_finish(g, &sp);
        double wm = 0, wg = 0, wr = 0;
        for (uint32_t l = 0; !rc && l < 32; l++) {
            const stat_layer *a = stat_layer_get(s, l), *b = stat_layer_get(g, l);
            wm = fmax(wm, fabs(b->max_over_mean / a->max_over_mean - 1));
            wg = fmax(wg, fabs(b->gini / a->gini - 1));
            wr = fmax(wr, fabs(b->top1_repeat - a->top1_repeat));
        }
        ok(!rc && wm <= 0.10 && wg <= 0.10 && wr <= 0.03,
           "gen --like Mixtral (64 x 256 tokens): worst layer max/mean %.1f%%, Gini %.1f%%, repeat %.3f", 100 * wm, 100 * wg, wr);
        stat_free(g);
        /* cross-layer: the in-sample next-layer predictability at the trace's own length (2 x 124 tokens) */
        stat_new(32, 8, 2, &g);
        if (!rc) rc = gen_stat(m, 2, 124, g);
        if (!rc) rc = stat_finish(g, &sp);
        double xa = stat_mean(s, offsetof(stat_layer, next_top1_acc)), xb = rc ? NAN : stat_mean(g, offsetof(stat_layer, next_top1_acc));
        ok(fabs(xa - xb) <= 0.05, "gen --like Mixtral: next-layer top-1 predictability %.3f vs %.3f (same length)", xb, xa);
        stat_free(g);
        gen_model_free(m);
        stat_free(s);
    }
    if (!file_exists(ol)) {
        tap_skip(1, "../shared/data absent");
    } else {
        import_opts o = {0};
        import_report rep;
        o.format = "vllm-jsonl";
        ok(import_run(ol, tmp("ol.d2t"), &o, &rep) == D2_OK && rep.warmup == 2048 && rep.records == 4471 && rep.experts == 64 && rep.top_k == 8,
           "OLMoE vLLM log: 2,048 warm-up rows detected, 4,471 real rows (data/README.md)");
    }
    if (!file_exists(qw)) {
        tap_skip(5, "../shared/data absent");
    } else {
        import_table t;
        ok(import_table_read(qw, NULL, &t) == D2_OK && t.layers == 48 && t.experts == 128 && t.top_k == 8, "Qwen3 table: 48 x 128, rows sum to 8");
        stat_acc *s;
        stat_new(t.layers, t.experts, t.top_k, &s);
        for (uint32_t l = 0; l < t.layers; l++) stat_add_shares(s, l, t.shares + (size_t)l * t.experts);
        stat_finish(s, &sp);
        import_table_clear(&t);
        /* data/README.md: GSM8K English rows: max/mean median 8.8, CV median 1.36, Gini median 0.62 */
        is_near(stat_median(s, offsetof(stat_layer, max_over_mean)), 8.8, 0.05, "Qwen3 median max/mean 8.8");
        is_near(stat_median(s, offsetof(stat_layer, cv)), 1.36, 0.005, "Qwen3 median CV 1.36");
        is_near(stat_median(s, offsetof(stat_layer, gini)), 0.62, 0.005, "Qwen3 median Gini 0.62");
        gen_params gp;
        param_defaults(&gen_params_table, &gp);
        gen_model *m;
        int rc = gen_model_fit(&gp, s, 11, &m);
        stat_acc *g;
        stat_new(48, 128, 8, &g);
        if (!rc) rc = gen_stat(m, 16, 256, g);
        if (!rc) rc = stat_finish(g, &sp);
        double wm = 0, wg = 0;
        for (uint32_t l = 0; !rc && l < 48; l++) {
            const stat_layer *a = stat_layer_get(s, l), *b = stat_layer_get(g, l);
            wm = fmax(wm, fabs(b->max_over_mean / a->max_over_mean - 1));
            wg = fmax(wg, fabs(b->gini / a->gini - 1));
        }
        ok(!rc && wm <= 0.10 && wg <= 0.10, "gen --like Qwen3 GSM8K (16 x 256 tokens): worst layer max/mean %.1f%%, Gini %.1f%%", 100 * wm, 100 * wg);
        stat_free(g);
        gen_model_free(m);
        stat_free(s);
    }
}

/* Mutation fuzzing of the importers and the .d2t reader: seeded random
 * byte flips, insertions of JSON/CSV punctuation and truncations of valid
 * inputs.  Every outcome must be success or a format error with a message;
 * nothing may crash (run under ASan/UBSan in the sanitizer build). */
static void test_fuzz(void)
{
    static const struct { const char *file, *format; } in[] = {
        {"vllm-warmup.jsonl", "vllm-jsonl"}, {"good.csv", "csv"}, {"missing.jsonl", "mixtral-jsonl"}, {"dup.jsonl", "mixtral-jsonl"}};
    static const char punct[] = "{}[]\",:0-9.eE\n\\ ";
    gsl_rng *r = rng_new(2026, 0);
    int bad = 0, runs = 0;
    for (size_t f = 0; f < sizeof in / sizeof in[0]; f++) {
        size_t n;
        unsigned char *orig = slurp(corpus(in[f].file), &n);
        unsigned char *b = malloc(n + 16);
        for (int it = 0; it < 150; it++) {
            memcpy(b, orig, n);
            size_t len = n;
            int edits = 1 + (int)gsl_rng_uniform_int(r, 3);
            for (int e = 0; e < edits; e++) {
                size_t at = gsl_rng_uniform_int(r, len);
                switch (gsl_rng_uniform_int(r, 3)) {
                case 0: b[at] ^= (unsigned char)(1u << gsl_rng_uniform_int(r, 8)); break;
                case 1: b[at] = (unsigned char)punct[gsl_rng_uniform_int(r, sizeof punct - 1)]; break;
                default: len = at + 1; break;
                }
            }
            spit(tmp("fuzz.in"), b, len);
            import_opts o = {0};
            import_report rep;
            o.format = in[f].format;
            o.strict = it & 1;
            int rc = import_run(tmp("fuzz.in"), tmp("fuzz.d2t"), &o, &rep);
            runs++;
            if (rc != D2_OK && (rc != D2_EFORMAT || !d2_err_msg()[0])) { bad++; tap_diag("%s mutation %d: rc %d %s", in[f].file, it, rc, d2_err_msg()); }
            if (rc == D2_OK) { /* whatever was accepted must read back cleanly */
                stat_params sp;
                stat_params_default(&sp);
                stat_acc *s;
                if (stat_file(tmp("fuzz.d2t"), &sp, &s) != D2_OK) { bad++; tap_diag("%s mutation %d: written file unreadable: %s", in[f].file, it, d2_err_msg()); }
                else stat_free(s);
            }
        }
        free(orig);
        free(b);
    }
    gsl_rng_free(r);
    ok(bad == 0, "%d mutated inputs: each imported cleanly or refused with a format error", runs);
}

/* The generated-routing memo (source.c) changes cost, never answers: every
 * (req, pos, layer) equals what the generator's own stream gives, whether
 * the memo recorded it, replays it for a second source of the same id,
 * stopped recording at its bound, or is off. */
static int ref_equal(trace_source *s, uint32_t req, uint32_t P, uint32_t L, int backwards)
{
    gen_params p;
    gen_model *g = NULL;
    gen_stream *st = NULL;
    int same = gen_preset_load("mixtral-8x7b", &p) == D2_OK && gen_model_new(&p, 9, &g) == D2_OK &&
               gen_stream_new(g, req, &st) == D2_OK;
    uint16_t *re = calloc((size_t)P * L * 2, sizeof *re);
    float *rw = calloc((size_t)P * L * 2, sizeof *rw);
    same = same && re && rw;
    for (uint32_t pos = 0; same && pos < P; pos++) {
        gen_stream_next(st);
        for (uint32_t l = 0; l < L; l++) gen_stream_route(st, l, re + ((size_t)pos * L + l) * 2, rw + ((size_t)pos * L + l) * 2);
    }
    for (uint32_t i = 0; same && i < P; i++) {
        uint32_t pos = backwards ? P - 1 - i : i;
        for (uint32_t l = 0; same && l < L; l++) {
            uint16_t e[TRACE_K_MAX];
            float w[TRACE_K_MAX];
            uint8_t b[TRACE_K_MAX] = {9, 9};
            size_t at = ((size_t)pos * L + l) * 2;
            same = trace_source_route(s, req, pos, l, e, w, b) == D2_OK && !memcmp(e, re + at, 2 * sizeof *e) &&
                   !memcmp(w, rw + at, 2 * sizeof *w) && b[0] == 0 && b[1] == 0;
        }
    }
    free(re); free(rw);
    gen_stream_free(st);
    gen_model_free(g);
    return same;
}

/* trace_source_route_token gives every layer of a token as one
 * trace_source_route per layer does (positions past a request's end wrap),
 * packed (stride top_k) and into a wider layout (stride 3 top_k, the
 * other slots untouched) */
static int token_equal(trace_source *s, uint32_t R, uint32_t P)
{
    trace_shape sh;
    trace_source_shape(s, &sh);
    const uint32_t L = sh.layers, K = sh.top_k;
    const size_t S = 3 * (size_t)K;
    uint16_t *te = calloc((size_t)L * S, sizeof *te);
    float *tw = calloc((size_t)L * S, sizeof *tw);
    uint8_t *tb = calloc((size_t)L * S, 1);
    int same = te && tw && tb;
    for (int wide = 0; wide < 2; wide++) {
        const size_t stride = wide ? S : K;
        for (uint32_t q = 0; same && q < R; q++)
            for (uint32_t pos = 0; same && pos < P; pos++) {
                if (wide) {
                    for (size_t i = 0; i < (size_t)L * S; i++) te[i] = 0xBEEF, tw[i] = -7.0f, tb[i] = 0xAA;
                    same = trace_source_route_token(s, q, pos, te + K, tw + K, tb + K, stride) == D2_OK;
                } else {
                    same = trace_source_route_token(s, q, pos, te, tw, tb, stride) == D2_OK;
                }
                const size_t off = wide ? K : 0;
                for (uint32_t l = 0; same && l < L; l++) {
                    uint16_t e[TRACE_K_MAX];
                    float w[TRACE_K_MAX];
                    uint8_t b[TRACE_K_MAX];
                    const size_t at = off + (size_t)l * stride;
                    same = trace_source_route(s, q, pos, l, e, w, b) == D2_OK && !memcmp(e, te + at, K * sizeof *e) &&
                           !memcmp(w, tw + at, K * sizeof *w) && !memcmp(b, tb + at, K);
                    for (size_t i = 0; same && wide && i < K; i++) /* the slots around it are not written */
                        same = te[(size_t)l * S + i] == 0xBEEF && tw[(size_t)l * S + 2 * K + i] == -7.0f && tb[(size_t)l * S + i] == 0xAA;
                }
            }
    }
    free(te); free(tw); free(tb);
    return same;
}

static void test_route_token(void)
{
    trace_source *s;
    char path[4096];
    snprintf(path, sizeof path, "%s/traces/mixtral-8x7b.r2.p16.d32.s1.d2t", tap_srcdir());
    ok(trace_source_open_file(path, &s) == D2_OK && token_equal(s, 3, 60), "a token at once = a layer at a time: committed .d2t (wrapping requests and positions)");
    trace_source_free(s);
    trace_source_memo_limit(0);
    ok(trace_source_open_gen("mixtral-8x7b", 4, &s) == D2_OK && token_equal(s, 3, 20), "... generator, memo off");
    trace_source_free(s);
    trace_source_memo_limit((size_t)8 << 20);
    for (int i = 1; i <= 3; i++) { /* the first source of an id records nothing, the second records, the third replays */
        ok(trace_source_open_gen("mixtral-8x7b", 4, &s) == D2_OK && token_equal(s, 3, 20), "... generator, memo on, source %d", i);
        trace_source_free(s);
    }
    ok(trace_source_memo_bytes() > 0, "the memo holds the routing (%zu bytes)", trace_source_memo_bytes());
    {
        uint16_t e[64];
        float w[64];
        ok(trace_source_open_gen("mixtral-8x7b", 4, &s) == D2_OK && trace_source_route_token(s, 0, 0, e, w, NULL, 1) == D2_EINVAL,
           "a layer stride below top_k is refused");
        trace_source_free(s);
    }
    trace_source_memo_limit((size_t)128 << 20);
}

static void test_memo(void)
{
    trace_source *s1, *s2;
    trace_source_memo_limit(0); /* a clean memo */
    size_t before = trace_source_memo_bytes();
    ok(before == 0, "turning the memo off empties it");
    trace_source_memo_limit((size_t)8 << 20);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK && ref_equal(s1, 5, 64, 32, 0),
       "memo on: a first source answers what the stream gives (64 positions of request 5)");
    ok(trace_source_memo_bytes() == 0, "the first source of an id records nothing (%zu bytes)", trace_source_memo_bytes());
    trace_source_free(s1);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK && ref_equal(s1, 5, 64, 32, 0),
       "a second source of the same id answers what the stream gives");
    size_t held = trace_source_memo_bytes();
    ok(held == 64 * 32 * 2 * 6, "the second one recorded them: 64 positions x 32 layers x top-2 x 6 bytes (%zu)", held);
    trace_source_free(s1);
    ok(trace_source_memo_bytes() == held, "it keeps them after the source is freed");
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s2) == D2_OK && ref_equal(s2, 5, 64, 32, 1) && ref_equal(s2, 5, 100, 32, 0) &&
           trace_source_memo_bytes() > held,
       "a third source of the same id replays them (backwards too) and extends them past position 64");
    trace_source_free(s2);
    /* bound of 16 KiB: recording stops after 16 positions (48 would be 18 KiB) */
    trace_source_memo_limit(0);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK, "memo off, then a small bound");
    trace_source_free(s1);
    ok(trace_source_memo_bytes() == 0, "with the memo off, freed sources leave nothing behind (%zu bytes)", trace_source_memo_bytes());
    trace_source_memo_limit(16 << 10);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK, "a small bound: a first source (records nothing)");
    trace_source_free(s1);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK && ref_equal(s1, 2, 80, 32, 0) && ref_equal(s1, 2, 80, 32, 1) &&
           ref_equal(s1, 3, 40, 32, 1),
       "past its bound the memo stops recording and answers stay the stream's, forwards and backwards");
    ok(trace_source_memo_bytes() <= 16 << 10, "the memo stays within its bound (%zu bytes)", trace_source_memo_bytes());
    trace_source_free(s1);
    trace_source_memo_limit(0);
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK && ref_equal(s1, 7, 30, 32, 1) && ref_equal(s1, 7, 30, 32, 0),
       "memo off: answers are the stream's");
    trace_source_free(s1);
    trace_source_memo_limit((size_t)128 << 20);
}

static void test_gen(void)
{
    gen_params p;
    param_defaults(&gen_params_table, &p);
    p.layers = 4; p.experts = 16; p.top_k = 4; p.requests = 3; p.prefill = 5; p.decode = 7; p.tasks = 2;
    gen_model *a, *b, *c;
    ok(gen_model_new(&p, 42, &a) == D2_OK && gen_model_new(&p, 42, &b) == D2_OK && gen_model_new(&p, 43, &c) == D2_OK, "generator models");
    gen_write(a, tmp("g1.d2t"));
    gen_write(b, tmp("g2.d2t"));
    gen_write(c, tmp("g3.d2t"));
    size_t n1, n2, n3;
    unsigned char *x = slurp(tmp("g1.d2t"), &n1), *y = slurp(tmp("g2.d2t"), &n2), *z = slurp(tmp("g3.d2t"), &n3);
    ok(x && y && n1 == n2 && !memcmp(x, y, n1), "same seed, same bytes (%zu)", n1);
    ok(z && (n1 != n3 || memcmp(x, z, n1)), "another seed, other bytes");
    free(x); free(y); free(z);
    trace_reader *r;
    trace_reader_open(tmp("g1.d2t"), &r);
    trace_rec rec;
    int rc, good = 1, n = 0;
    while ((rc = trace_reader_next(r, &rec)) == 1) {
        n++;
        if ((rec.pos < 5) != (rec.phase == TRACE_PREFILL)) good = 0;
        float s = 0;
        for (int j = 0; j < 4; j++) s += rec.weights[j];
        if (fabsf(s - 1) > 1e-4f) good = 0;
    }
    trace_reader_close(r);
    ok(rc == 0 && n == 3 * 12 * 4 && good, "generated file reads back: %d records, phases and gate sums right", n);
    /* the generator source answers by (seed, req, pos, layer), whatever the order */
    uint16_t e1[TRACE_K_MAX], e2[TRACE_K_MAX];
    float w1[TRACE_K_MAX], w2[TRACE_K_MAX];
    trace_source *s1, *s2;
    ok(trace_source_open_gen("mixtral-8x7b", 9, &s1) == D2_OK && trace_source_open_gen("mixtral-8x7b", 9, &s2) == D2_OK, "generator sources from the Mixtral preset");
    trace_shape sh;
    trace_source_shape(s1, &sh);
    ok(sh.layers == 32 && sh.experts == 8 && sh.top_k == 2 && sh.requests == UINT32_MAX && !sh.has_bits, "generator shape from the model");
    ok(!strncmp(trace_source_id(s1), "gen:", 4) && !strcmp(trace_source_id(s1), trace_source_id(s2)), "generator id: %s", trace_source_id(s1));
    int same = 1;
    for (uint32_t pos = 0; pos < 20; pos++)
        for (uint32_t l = 0; l < 32; l++)
            for (uint32_t q = 0; q < 3; q++) trace_source_route(s1, q, pos, l, e1, w1, NULL);
    for (int q = 2; q >= 0; q--) /* reverse request order, then backwards in position */
        for (int pos = 19; pos >= 0; pos -= 3)
            for (uint32_t l = 0; l < 32; l += 5) {
                trace_source_route(s2, (uint32_t)q, (uint32_t)pos, l, e2, w2, NULL);
                trace_source_route(s1, (uint32_t)q, (uint32_t)pos, l, e1, w1, NULL);
                if (memcmp(e1, e2, 2 * sizeof e1[0]) || memcmp(w1, w2, 2 * sizeof w1[0])) same = 0;
            }
    ok(same, "generator source: same answers in any call order");
    trace_source_free(s1);
    trace_source_free(s2);
    /* a preset for every model profile, with the model's shape */
    char **names;
    size_t nn;
    int all = param_profile_list("model", &names, &nn) == D2_OK && nn > 0;
    for (size_t i = 0; all && i < nn; i++) {
        model md;
        trace_source *ps;
        if (model_load(&md, names[i]) || trace_source_open_gen(names[i], 1, &ps)) { all = 0; tap_diag("%s: %s", names[i], d2_err_msg()); continue; }
        trace_source_shape(ps, &sh);
        if (sh.layers != model_moe_layers(&md) || sh.experts != md.experts || sh.top_k != md.top_k) all = 0;
        if (trace_source_route(ps, 3, 5, sh.layers - 1, e1, w1, NULL)) all = 0;
        trace_source_free(ps);
    }
    ok(all, "every model in experiments/models has a generator preset with its shape (%zu)", nn);
    if (nn) param_names_free(names, nn);
    test_memo();
    test_route_token();
    ok(trace_source_open_gen("no-such-model", 1, &s1) == D2_ENOTFOUND && strstr(d2_err_msg(), "no-such-model"), "unknown preset: \"%s\"", d2_err_msg());
    /* a preset without `model =`: the generator takes the caller's model
     * name, and a missing profile is named as that, not at a preset line */
    const char *old_dir = getenv("D2_PRESET_DIR");
    char keep[4096];
    snprintf(keep, sizeof keep, "%s", old_dir ? old_dir : "");
    FILE *pf = fopen(tmp("no-profile.ini"), "w");
    if (pf) { fputs("[gen]\nskew = 0.5\n", pf); fclose(pf); }
    setenv("D2_PRESET_DIR", tmpdir, 1);
    char want[600];
    snprintf(want, sizeof want, "the model's name (preset %s names no model): model 'no-profile'", tmp("no-profile.ini"));
    ok(trace_source_open_gen("no-profile", 1, &s1) == D2_ENOTFOUND && !strncmp(d2_err_msg(), want, strlen(want)),
       "a preset without model, the model's name no profile: \"%s\"", d2_err_msg());
    if (old_dir) setenv("D2_PRESET_DIR", keep, 1);
    else unsetenv("D2_PRESET_DIR");
    gen_model_free(a); gen_model_free(b); gen_model_free(c);
}

int main(void)
{
    gsl_set_error_handler_off();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_trace.XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("Bail out! mkdtemp\n"); return 1; }
    test_roundtrip();
    test_damage();
    test_source_file();
    test_source_gaps();
    test_source_damage();
    test_rec_check();
    test_stats_known();
    test_import_corpus();
    test_fuzz();
    test_gen();
    test_real_data();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
