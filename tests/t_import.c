/* t_import.c - the vLLM importer on logs shaped like the two real layouts
 * (tests/data/trace/vllm-*.jsonl, written by vllm-logs.py in that
 * folder's README) and on the shared OLMoE log ($D2_SHARED, # SKIP when
 * absent).  Record counts and per-layer expert counts are computed here from
 * the JSONL by a plain pass that skips the known number of warm-up rows, and
 * compared with what the .d2t holds. */
#include "core/err.h"
#include "trace/import.h"
#include "trace/trace.h"
#include "tap.h"

#include <jansson.h>
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

#define LMAX 8
#define EMAX 64

/* Expected: expert counts [layer][expert] over route rows after the first
 * `warm` route rows; returns the number of those rows, -1 on error. */
static long expect_counts(const char *path, long warm, uint64_t cnt[LMAX][EMAX])
{
    memset(cnt, 0, sizeof(uint64_t) * LMAX * EMAX);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    long route = 0, kept = 0;
    while (fgets(line, sizeof line, f)) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue;
        const char *t = json_string_value(json_object_get(o, "type"));
        if (t && !strcmp(t, "route") && route++ >= warm) {
            long l = (long)json_integer_value(json_object_get(o, "layer"));
            json_t *ids = json_object_get(o, "topk_ids");
            for (size_t j = 0; j < json_array_size(ids); j++) {
                long e = (long)json_integer_value(json_array_get(ids, j));
                if (l >= 0 && l < LMAX && e >= 0 && e < EMAX) cnt[l][e]++;
            }
            kept++;
        }
        json_decref(o);
    }
    fclose(f);
    return kept;
}

/* Counts from the .d2t; also the layer set and per-request info. */
static long got_counts(const char *path, uint64_t cnt[LMAX][EMAX], uint32_t *layers_mask)
{
    memset(cnt, 0, sizeof(uint64_t) * LMAX * EMAX);
    *layers_mask = 0;
    trace_reader *r;
    if (trace_reader_open(path, &r)) return -1;
    const trace_header *h = trace_reader_header(r);
    trace_rec rec;
    long n = 0;
    int rc;
    while ((rc = trace_reader_next(r, &rec)) == 1) {
        for (uint32_t j = 0; j < h->top_k; j++)
            if (rec.layer < LMAX && rec.experts[j] < EMAX) cnt[rec.layer][rec.experts[j]]++;
        if (rec.layer < 32) *layers_mask |= 1u << rec.layer;
        n++;
    }
    trace_reader_close(r);
    return rc ? -1 : n;
}

static int same_counts(uint64_t a[LMAX][EMAX], uint64_t b[LMAX][EMAX])
{
    return !memcmp(a, b, sizeof(uint64_t) * LMAX * EMAX);
}

typedef struct layout {
    const char *file;
    long warm;           /* warm-up rows by construction (README) */
    long records;        /* route rows after the warm-up */
    uint32_t requests, tokens, layers_mask, header_layers;
    uint64_t batches, decode_runs;
    uint32_t req0_positions, req0_prefill; /* request 0 of the .d2t */
} layout;

static void test_layouts(void)
{
    static const layout L[] = {
        /* OLMoE-like: uniform warm-up of 6 rows, token_idx a running counter: one batch, one request */
        {"vllm-olmoe-like.jsonl", 6, 20, 1, 20, 1u << 0, 1, 1, 0, 20, 0},
        /* Qwen-like, one layer (5): warm-up 8 rows with weights 0.62/0.38; batches of 7 (prefill), 2,2,2, 1,1:
         * requests = the prefill + 2 (first run) + 1 (second run); layer 5 kept, so the header says 6 layers */
        {"vllm-qwen-like.jsonl", 8, 15, 4, 15, 1u << 5, 6, 6, 2, 7, 7},
        /* the same, layers 1 and 2 logged layer-major (token_idx restarts at each layer within a batch) */
        {"vllm-qwen-like-2layer.jsonl", 8, 30, 4, 15, (1u << 1) | (1u << 2), 3, 6, 2, 7, 7},
        /* one prompt: prefill of 5, then three decode batches of 1 row: one request of 8 positions */
        {"vllm-qwen-like-1req.jsonl", 8, 8, 1, 8, 1u << 0, 1, 4, 1, 8, 5},
    };
    for (size_t i = 0; i < sizeof L / sizeof L[0]; i++) {
        const layout *x = &L[i];
        import_opts o = {0};
        import_report rep;
        o.format = "vllm-jsonl";
        int rc = import_run(corpus(x->file), tmp("v.d2t"), &o, &rep);
        if (!ok(rc == D2_OK, "%s: imports", x->file)) { tap_diag("%s", d2_err_msg()); continue; }
        is_int(rep.warmup, x->warm, "%s: %ld warm-up rows skipped", x->file, x->warm);
        is_int(rep.records, x->records, "%s: %ld records", x->file, x->records);
        is_int(rep.requests, x->requests, "%s: %u requests", x->file, x->requests);
        is_int(rep.tokens, x->tokens, "%s: %u tokens", x->file, x->tokens);
        is_int(rep.batches, x->batches, "%s: %llu forward batches", x->file, (unsigned long long)x->batches);
        is_int(rep.decode_runs, x->decode_runs, "%s: %llu decode runs", x->file, (unsigned long long)x->decode_runs);
        uint64_t want[LMAX][EMAX], got[LMAX][EMAX];
        uint32_t mask;
        long nw = expect_counts(corpus(x->file), x->warm, want);
        long ng = got_counts(tmp("v.d2t"), got, &mask);
        ok(nw == x->records && ng == x->records, "%s: %ld rows after the warm-up in the JSONL, %ld records in the .d2t", x->file, nw, ng);
        ok(same_counts(want, got), "%s: per-layer expert counts equal those counted in the JSONL", x->file);
        is_int(mask, x->layers_mask, "%s: the logged layer numbers are kept", x->file);
        trace_file *f;
        if (trace_file_open(tmp("v.d2t"), &f) == D2_OK) {
            is_int(trace_file_header(f)->layers, x->header_layers, "%s: header layers", x->file);
            const trace_req_info *q = trace_file_request(f, 0);
            ok(q->positions == x->req0_positions && q->prefill == x->req0_prefill, "%s: request 0 has %u positions (%u prefill)",
               x->file, q->positions, q->prefill);
            trace_file_close(f);
        } else {
            tap_skip(2, "cannot open the written .d2t");
        }
    }
    /* decode mapping: in vllm-qwen-like.jsonl, request 1 is row 0 of the batches of 2, request 3 the batches of 1 */
    import_opts o = {0};
    import_report rep;
    o.format = "vllm-jsonl";
    trace_file *f;
    if (import_run(corpus("vllm-qwen-like.jsonl"), tmp("q.d2t"), &o, &rep) == D2_OK && trace_file_open(tmp("q.d2t"), &f) == D2_OK) {
        ok(trace_file_request(f, 1)->positions == 3 && trace_file_request(f, 2)->positions == 3 && trace_file_request(f, 3)->positions == 2 &&
               trace_file_request(f, 1)->prefill == 0,
           "row j of three decode batches of 2 -> requests 1,2 of 3 decode positions; two batches of 1 -> request 3");
        trace_file_close(f);
    } else {
        ok(0, "vllm-qwen-like.jsonl: %s", d2_err_msg());
    }
}

/* A vLLM route line (the test writes its own tiny logs). */
static void route(FILE *f, const char *req, int tok, int layer, int k, const int *ids, const double *w)
{
    fprintf(f, "{\"type\": \"route\", \"req_id\": \"%s\", \"token_idx\": %d, \"layer\": %d, \"topk_ids\": [", req, tok, layer);
    for (int j = 0; j < k; j++) fprintf(f, "%s%d", j ? ", " : "", ids[j]);
    fprintf(f, "], \"topk_weights\": [");
    for (int j = 0; j < k; j++) fprintf(f, "%s%g", j ? ", " : "", w[j]);
    fprintf(f, "]}\n");
}

/* A per-request log: r0 and r1, 5 tokens x 2 layers, top-2 (ids and weights
 * differ from token to token); the line of (r0, token dup_tok, layer 1)
 * written a second time after line `dup_after` of the route lines (0 = no
 * repeat).  Returns the file line of the repeated copy. */
static int write_per_request(const char *path, int dup_tok, int dup_after)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"type\": \"meta\", \"num_experts\": 8, \"top_k\": 2}\n");
    int n = 0, at = -1;
    for (int q = 0; q < 2; q++)
        for (int t = 0; t < 5; t++)
            for (int l = 0; l < 2; l++) {
                int ids[2] = {(t + l + 3 * q) % 8, (t + l + 3 * q + 1) % 8};
                double w[2] = {0.6 + 0.05 * t, 0.4 - 0.05 * t};
                route(f, q ? "r1" : "r0", t, l, 2, ids, w);
                n++;
                if (dup_after && n == dup_after) {
                    int di[2] = {(dup_tok + 1) % 8, (dup_tok + 2) % 8};
                    double dw[2] = {0.6 + 0.05 * dup_tok, 0.4 - 0.05 * dup_tok};
                    route(f, "r0", dup_tok, 1, 2, di, dw);
                    at = n + 2; /* after the meta line and n route lines */
                    n++;
                }
            }
    fclose(f);
    return at;
}

/* traces/README.md: a second record for (request, position, layer) is
 * dropped (the later line) and counted; a repeated line of a per-request
 * log must not read as a token_idx restart (that split r0 into a "prefill"
 * and decode requests: 21 records, 5 requests). */
static void test_repeated_line(void)
{
    import_opts o = {0};
    import_report rep;
    o.format = "vllm-jsonl";
    /* the repeat right after its original (line 7 = r0 token 2 layer 1), and far after it, at the end of r0's rows */
    static const int after[] = {6, 10};
    for (size_t i = 0; i < sizeof after / sizeof after[0]; i++) {
        int at = write_per_request(tmp("rep.jsonl"), 2, after[i]);
        int rc = import_run(tmp("rep.jsonl"), tmp("rep.d2t"), &o, &rep);
        char want[64];
        snprintf(want, sizeof want, "rep.jsonl:%d: ", at);
        ok(rc == D2_OK && rep.records == 20 && rep.requests == 2 && rep.tokens == 10 && rep.batched_reqs == 0,
           "repeated line %d of a per-request log: 20 records, 2 requests, 10 tokens, no batch split (got %llu, %u, %llu)", at,
           (unsigned long long)rep.records, rep.requests, (unsigned long long)rep.tokens);
        ok(rep.n[IMPORT_DUP] == 1 && strstr(rep.first[IMPORT_DUP], want) && strstr(rep.first[IMPORT_DUP], "same route as line 7"),
           "... counted as 1 duplicate at its line (\"%s\")", rep.first[IMPORT_DUP]);
    }
    o.strict = 1;
    int rc = import_run(tmp("rep.jsonl"), tmp("rep.d2t"), &o, &rep);
    ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "rep.jsonl:12: ") && strstr(d2_err_msg(), "same route as line 7") &&
           strstr(d2_err_msg(), "(--strict)"),
       "... and fatal with --strict (\"%s\")", d2_err_msg());
    o.strict = 0;
    write_per_request(tmp("rep.jsonl"), 0, 0);
    ok(import_run(tmp("rep.jsonl"), tmp("rep.d2t"), &o, &rep) == D2_OK && rep.records == 20 && rep.requests == 2 &&
           rep.n[IMPORT_DUP] == 0,
       "the same log without the repeat: 20 records, 2 requests, no duplicate");
    /* decode batches of one row (token_idx 0 each) routed alike, top-1: batches, not repeated lines */
    FILE *f = fopen(tmp("b1.jsonl"), "w");
    if (f) {
        double one = 1.0;
        for (int t = 0; t < 3; t++)
            for (int l = 0; l < 2; l++) { int e = t + l; route(f, "r1", t, l, 1, &e, &one); }
        for (int b = 0; b < 4; b++)
            for (int l = 0; l < 2; l++) { int e = 5 + l; route(f, "r1", 0, l, 1, &e, &one); }
        fclose(f);
    }
    rc = import_run(tmp("b1.jsonl"), tmp("b1.d2t"), &o, &rep);
    ok(rc == D2_OK && rep.records == 14 && rep.requests == 1 && rep.tokens == 7 &&
           rep.decode_batches == 4 && rep.n[IMPORT_DUP] == 0,
       "top-1 decode batches of one row routed alike: 4 decode batches continuing the prompt, no duplicate (%llu records, %u requests)",
       (unsigned long long)rep.records, rep.requests);
}

/* Warm-up rule (traces/README.md): in a top-1 log every weight is 1.0, so
 * two leading tokens routed alike are no warm-up (they cut token 2 in half:
 * 5 rows dropped); a top-1 warm-up that is a batch of its own (token_idx
 * restarts after it) still is one. */
static void test_top1_warmup(void)
{
    import_opts o = {0};
    import_report rep;
    o.format = "vllm-jsonl";
    double one = 1.0;
    FILE *f = fopen(tmp("t1.jsonl"), "w");
    if (f) {
        /* tokens 0 and 1: experts 3 (layer 0), 4 (layer 1); token 2: 3 then 6; tokens 3, 4: others */
        static const int e[5][2] = {{3, 4}, {3, 4}, {3, 6}, {1, 2}, {5, 0}};
        for (int t = 0; t < 5; t++)
            for (int l = 0; l < 2; l++) route(f, "r0", t, l, 1, &e[t][l], &one);
        fclose(f);
    }
    int rc = import_run(tmp("t1.jsonl"), tmp("t1.d2t"), &o, &rep);
    ok(rc == D2_OK && rep.warmup == 0 && rep.records == 10 && rep.tokens == 5 &&
           rep.n[IMPORT_MISSING] == 0,
       "top-1 log, two leading tokens alike: no warm-up, 10 records, 5 whole tokens (warm-up %llu, records %llu)",
       (unsigned long long)rep.warmup, (unsigned long long)rep.records);
    f = fopen(tmp("t1w.jsonl"), "w");
    if (f) {
        for (int t = 0; t < 3; t++)
            for (int l = 0; l < 2; l++) { int e = 3 + l; route(f, "r1", t, l, 1, &e, &one); }
        for (int t = 0; t < 4; t++)
            for (int l = 0; l < 2; l++) { int e = (t * 3 + l) % 8; route(f, "r1", t, l, 1, &e, &one); }
        fclose(f);
    }
    rc = import_run(tmp("t1w.jsonl"), tmp("t1w.d2t"), &o, &rep);
    ok(rc == D2_OK && rep.warmup == 6 && rep.records == 8 && rep.tokens == 4,
       "top-1 log whose token_idx restarts after 3 tokens alike: 6 warm-up rows, 8 records (warm-up %llu)", (unsigned long long)rep.warmup);
}

static void test_olmoe(void)
{
    char ol[1024];
    snprintf(ol, sizeof ol, "%s/data/traces/olmoe-1b-7b.layer0.gsm8k.vllm.jsonl", tap_shared());
    if (access(ol, R_OK)) { tap_skip(4, "../shared/data absent"); return; }
    import_opts o = {0};
    import_report rep;
    o.format = "vllm-jsonl";
    int rc = import_run(ol, tmp("ol.d2t"), &o, &rep);
    ok(rc == D2_OK && rep.warmup == 2048 && rep.experts == 64 && rep.top_k == 8,
       "OLMoE log: 2,048 warm-up rows detected (data/README.md), 64 experts, top-8");
    uint64_t want[LMAX][EMAX], got[LMAX][EMAX];
    uint32_t mask;
    long nw = expect_counts(ol, 2048, want), ng = got_counts(tmp("ol.d2t"), got, &mask);
    ok(nw == 4471 && ng == 4471 && rep.records == 4471, "OLMoE log: 4,471 real rows (data/README.md): %ld in the JSONL, %ld in the .d2t", nw, ng);
    ok(same_counts(want, got) && mask == 1, "OLMoE log: layer 0 expert counts equal those counted in the JSONL");
    ok(rep.batches == 1 && rep.batched_reqs == 0 && rep.requests == 1 && rep.layers_logged == 1,
       "OLMoE log: one forward batch (token_idx never restarts), one request, one layer logged");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_import.XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("Bail out! mkdtemp\n"); return 1; }
    test_layouts();
    test_repeated_line();
    test_top1_warmup();
    test_olmoe();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
