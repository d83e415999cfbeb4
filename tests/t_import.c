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
    test_olmoe();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
