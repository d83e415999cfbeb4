/* cmd_eval.c - `d2moe eval`: measured accuracy of every quantization and bit
 * routing of a llama2.c checkpoint's FFN (src/eval/evalq.h), printed as a
 * table or JSON, stored as runs (--db), beside the estimate est_ppl
 * (results/accuracy.h) and the rank correlation of the two.  Also writes the
 * synthetic checkpoint used where no trained one is at hand. */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/param.h"
#include "eval/evalq.h"
#include "eval/ffnq.h"
#include "eval/llm.h"
#include "quant/mwq.h"
#include "quant/weights.h"
#include "results/accuracy.h"
#include "results/db.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe eval --input FILE [--format llama2c] [--seqs N] [--len T] [--seed S]\n"
            "       [--preset P]... [--ffn-path dequant|kernel] [--db FILE] [--json]\n"
            "       d2moe eval --list\n"
            "       d2moe eval --write-synthetic FILE [--seed S]\n\n"
            "Measure, on a real forward pass of a llama2.c checkpoint, what quantizing its FFN\n"
            "weights (w1, w2, w3) does to the model's output.  N sequences (default 16) of T\n"
            "tokens (default 128) are sampled from the FP32 model itself (BOS first, temperature\n"
            "1, seed S); each configuration runs the same sequences with its FFN quantized and\n"
            "reports the mean KL divergence of the next-token distributions to FP32 (nats),\n"
            "top-1 agreement and the perplexity of the sampled tokens.  Attention, embeddings\n"
            "and norms stay FP32.  Configurations (--list): every level of each preset with MWQ,\n"
            "rtn-int (separate copies) and msb-slice, and per-token bit routing with the\n"
            "paper's capacities; --preset keeps the rows of the named presets.\n"
            "--ffn-path kernel runs the MWQ rows through the project's kernels (kern_matmul,\n"
            "which also quantizes activations to int8 per group) instead of FP32 products\n"
            "with dequantized weights (dequant, the default: the weight error alone).\n"
            "est_ppl, the estimate every simulated run carries, is shown beside the measurement\n"
            "when the --db store holds the quantizer's error table (from `d2moe reproduce` or\n"
            "`d2moe quantize --db`), with Spearman's rank correlation of est_ppl and of the FFN\n"
            "weight error against KL.  --db stores each configuration as a run (kind eval).\n"
            "--write-synthetic writes a SYNTHETIC random llama2.c checkpoint (stories260K's\n"
            "shape, seeded) to exercise the command; its numbers say nothing of a trained model.\n");
}

typedef struct opts {
    const char *input, *dbpath, *synth;
    const char *presets[16];
    int npresets, json, list;
    evalq_path path;
    long seqs, len;
    uint64_t seed;
} opts;

static const char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* est_ppl of a result from the store's error table: MWQ levels are "nested",
 * rtn-int copies "separate"; msb-slice has no format in the estimate (NaN). */
static double est_of(const accuracy_model *acc, const evalq_result *r)
{
    if (!acc) return NAN;
    const char *fmt = !strcmp(r->method, "mwq") ? "nested" : !strcmp(r->method, "rtn-int") ? "separate" : NULL;
    if (!fmt) return NAN;
    return accuracy_estimate(acc, fmt, r->est_bits_w2);
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int store(db *d, const opts *o, const evalq_result *r, double ref_ppl, double est)
{
    db_run *run = db_run_new("eval", "real");
    if (!run) D2_ERROR(D2_ENOMEM, "out of memory");
    db_run_cmdline(run, cli_argc(), cli_argv());
    db_run_seed(run, o->seed);
    char v[64];
    mwq_config c;
    mwq_config_default(&c);
    int rc = mwq_config_preset(&c, r->preset);
    if (!rc) rc = param_foreach(&mwq_params, &c, db_run_param_visit, run);
#define P(k, ...) do { snprintf(v, sizeof v, __VA_ARGS__); if (!rc) rc = db_run_param(run, k, v); } while (0)
    P("eval.checkpoint", "%s", basename_of(o->input));
    P("eval.seqs", "%ld", o->seqs);
    P("eval.len", "%ld", o->len);
    P("eval.seed", "%llu", (unsigned long long)o->seed);
    P("eval.preset", "%s", r->preset);
    P("eval.method", "%s", r->method);
    P("eval.level", "%d", r->level);
    P("eval.bitroute", "%s", r->level ? "uniform" : r->bitroute);
    P("eval.caps", "%s", r->caps);
    P("eval.ffn_path", "%s", r->kernel ? "kernel" : "dequant");
#undef P
    if (!rc) rc = db_run_input(run, "weights", o->input);
    if (!rc) rc = db_run_metric(run, "kl", r->m.kl, "nats");
    if (!rc) rc = db_run_metric(run, "top1_agree", r->m.top1, "");
    if (!rc) rc = db_run_metric(run, "ppl", r->m.ppl, "");
    if (!rc) rc = db_run_metric(run, "ref_ppl", ref_ppl, "");
    if (!rc) rc = db_run_metric(run, "bpw", r->bpw, "bits");
    if (!rc) rc = db_run_metric(run, "stored_bpw", r->stored_bpw, "bits");
    if (!rc) rc = db_run_metric(run, "ffn_rel_err", r->rel_err, "");
    if (!rc) rc = db_run_metric(run, "positions", (double)r->m.positions, "tokens");
    if (!rc) rc = db_run_metric(run, "eval_s", r->seconds, "s");
    if (!rc && isfinite(est)) rc = db_run_metric(run, "est_ppl", est, "");
    for (int k = 0; !rc && k < r->levels; k++) {
        char name[32];
        snprintf(name, sizeof name, "share_%dbit", r->level_bits[k]);
        rc = db_run_metric(run, name, r->share[k], "");
    }
    db_run_status(run, "ok");
    int64_t id;
    if (!rc) rc = db_run_write(d, run, &id);
    db_run_free(run);
    return rc;
}

static int list_rows(void)
{
    size_t n, nr;
    const evalq_row *rows = evalq_rows(&n);
    printf("configurations (one row each; a uniform row is one configuration per level):\n");
    printf("  %-6s %-10s %-22s %s\n", "preset", "method", "bitroute", "capacities");
    for (size_t i = 0; i < n; i++)
        printf("  %-6s %-10s %-22s %s\n", rows[i].preset, rows[i].method, rows[i].bitroute ? rows[i].bitroute : "uniform",
               rows[i].caps ? rows[i].caps : "-");
    const evalq_route *rt = evalq_route_list(&nr);
    printf("\nbit routing (per token, per layer step of the N tokens at one position):\n");
    for (size_t i = 0; i < nr; i++) printf("  %-22s %s\n", rt[i].name, rt[i].summary);
    printf("\nquantization methods:\n");
    for (const ffnq_method *const *m = ffnq_method_list(); *m; m++) printf("  %-10s %s\n", (*m)->name, (*m)->summary);
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"help", no_argument, NULL, 'h'},         {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'f'}, {"seqs", required_argument, NULL, 'n'},
        {"len", required_argument, NULL, 'T'},    {"seed", required_argument, NULL, 's'},
        {"db", required_argument, NULL, 'd'},     {"json", no_argument, NULL, 'j'},
        {"preset", required_argument, NULL, 'p'}, {"list", no_argument, NULL, 'l'},
        {"write-synthetic", required_argument, NULL, 'w'}, {"ffn-path", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0}};
    opts o = {.seqs = 16, .len = 128, .seed = 1};
    int ch;
    while ((ch = cli_getopt_long(argc, argv, "hi:f:n:T:s:d:jp:lw:P:", lo, "p", NULL)) != -1) {
        switch (ch) {
        case 'h': usage(stdout); return 0;
        case 'i': o.input = optarg; break;
        case 'f': {
            weights_format f;
            if (weights_format_parse(optarg, &f)) return cli_usage_error("eval", "%s", d2_err_msg());
            if (f != WEIGHTS_LLAMA2C && f != WEIGHTS_AUTO)
                return cli_usage_error("eval", "--format %s: eval runs llama2.c checkpoints only (--format llama2c)", optarg);
            break;
        }
        case 'n': if (cli_parse_long("eval", "--seqs", optarg, 1, 4096, &o.seqs)) return 2; break;
        case 'T': if (cli_parse_long("eval", "--len", optarg, 1, 1 << 20, &o.len)) return 2; break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (!*optarg || *end || *optarg == '-' || errno) return cli_usage_error("eval", "--seed %s: expected an integer >= 0", optarg);
            o.seed = s;
            break;
        }
        case 'd': o.dbpath = optarg; break;
        case 'j': o.json = 1; break;
        case 'p':
            if (o.npresets == 16) return cli_usage_error("eval", "too many --preset options (16 at most)");
            o.presets[o.npresets++] = optarg;
            break;
        case 'l': o.list = 1; break;
        case 'w': o.synth = optarg; break;
        case 'P': if (evalq_path_parse(optarg, &o.path)) return cli_usage_error("eval", "--ffn-path: %s", d2_err_msg()); break;
        default: return cli_bad_option("eval", argc, argv);
        }
    }
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (o.list) return list_rows();
    if (o.synth) {
        llm_config c;
        llm_config_synth_default(&c);
        int rc = llm_synth_write(o.synth, &c, o.seed);
        if (rc) return cli_fail(rc);
        printf("wrote %s: SYNTHETIC llama2.c checkpoint (seed %llu; dim %lld, hidden %lld, %lld layers, %lld/%lld heads, vocab %lld)\n",
               o.synth, (unsigned long long)o.seed, (long long)c.dim, (long long)c.hidden_dim, (long long)c.n_layers,
               (long long)c.n_heads, (long long)c.n_kv_heads, (long long)c.vocab_size);
        return 0;
    }
    if (!o.input) return cli_usage_error("eval", "--input FILE is required");
    size_t nrows;
    const evalq_row *rows = evalq_rows(&nrows);
    for (int i = 0; i < o.npresets; i++) {
        size_t k = 0;
        while (k < nrows && strcmp(rows[k].preset, o.presets[i])) k++;
        if (k == nrows) return cli_usage_error("eval", "--preset %s: no configuration row has this preset (see --list)", o.presets[i]);
    }

    llm_model *m = NULL;
    evalq_ref *ref = NULL;
    evalq_result *res = NULL;
    db *d = NULL;
    accuracy_model *acc = NULL;
    size_t nres = 0;
    int rc = llm_model_load(o.input, &m);
    if (rc) return cli_fail(rc);
    if (o.dbpath) {
        if ((rc = db_open(o.dbpath, &d))) goto fail;
        if ((rc = accuracy_model_load_default(NULL, d, &acc))) goto fail;
    }
    const llm_config *mc = llm_model_config(m);
    evalq_opts eo = {.seqs = o.seqs, .len = o.len, .seed = o.seed};
    double t0 = clock_mono_s();
    if ((rc = evalq_ref_sample(m, &eo, &ref))) goto fail;
    const double tref = clock_mono_s() - t0;
    res = calloc(nrows * KERN_MAX_LEVELS, sizeof *res);
    if (!res) { rc = D2_ENOMEM; d2_err_set("out of memory"); goto fail; }
    double teval = 0;
    for (size_t i = 0; i < nrows; i++) {
        int keep = o.npresets == 0;
        for (int p = 0; p < o.npresets; p++) keep |= !strcmp(rows[i].preset, o.presets[p]);
        if (!keep) continue;
        size_t n;
        if ((rc = evalq_row_run(m, ref, &rows[i], o.seed, o.path, res + nres, &n))) goto fail;
        for (size_t k = 0; k < n; k++) teval += res[nres + k].seconds;
        nres += n;
    }
    double *est = calloc(nres + 1, sizeof *est), *kl = calloc(nres + 1, sizeof *kl), *rel = calloc(nres + 1, sizeof *rel);
    if (!est || !kl || !rel) { free(est); free(kl); free(rel); rc = D2_ENOMEM; d2_err_set("out of memory"); goto fail; }
    for (size_t i = 0; i < nres; i++) {
        est[i] = est_of(acc, &res[i]);
        kl[i] = res[i].m.kl;
        rel[i] = res[i].rel_err;
    }
    double rho_est, rho_rel;
    size_t n_est, n_rel;
    evalq_spearman(est, kl, nres, &rho_est, &n_est);
    evalq_spearman(rel, kl, nres, &rho_rel, &n_rel);
    const double ref_ppl = evalq_ref_ppl(ref);
    const int have_est = n_est > 0;
    if (o.json) {
        json_t *root = json_object(), *jr = json_object(), *cs = json_array(), *sp = json_object();
        json_object_set_new(root, "checkpoint", json_string(basename_of(o.input)));
        json_object_set_new(root, "quantized", json_string("FFN w1, w2, w3; attention, embeddings and norms FP32"));
        json_object_set_new(jr, "ppl", num(ref_ppl));
        json_object_set_new(jr, "seqs", json_integer(o.seqs));
        json_object_set_new(jr, "len", json_integer(o.len));
        json_object_set_new(jr, "seed", json_integer((json_int_t)o.seed));
        json_object_set_new(root, "reference", jr);
        for (size_t i = 0; i < nres; i++) {
            const evalq_result *r = &res[i];
            json_t *c = json_object(), *sh = json_array();
            json_object_set_new(c, "preset", json_string(r->preset));
            json_object_set_new(c, "method", json_string(r->method));
            json_object_set_new(c, "ffn_path", json_string(r->kernel ? "kernel" : "dequant"));
            json_object_set_new(c, "level", r->level ? json_integer(r->level) : json_null());
            json_object_set_new(c, "bits", r->level ? json_integer(r->bits) : json_null());
            json_object_set_new(c, "bitroute", r->level ? json_null() : json_string(r->bitroute));
            json_object_set_new(c, "caps", r->level ? json_null() : json_string(r->caps));
            for (int k = 0; k < r->levels; k++) json_array_append_new(sh, num(r->share[k]));
            json_object_set_new(c, "level_share", sh);
            json_object_set_new(c, "bpw", num(r->bpw));
            json_object_set_new(c, "stored_bpw", num(r->stored_bpw));
            json_object_set_new(c, "ffn_rel_err", num(r->rel_err));
            json_object_set_new(c, "kl", num(r->m.kl));
            json_object_set_new(c, "top1_agree", num(r->m.top1));
            json_object_set_new(c, "ppl", num(r->m.ppl));
            json_object_set_new(c, "est_ppl", num(est[i]));
            json_array_append_new(cs, c);
        }
        json_object_set_new(root, "configs", cs);
        json_object_set_new(sp, "est_ppl_vs_kl", num(rho_est));
        json_object_set_new(sp, "est_ppl_pairs", json_integer((json_int_t)n_est));
        json_object_set_new(sp, "ffn_rel_err_vs_kl", num(rho_rel));
        json_object_set_new(sp, "ffn_rel_err_pairs", json_integer((json_int_t)n_rel));
        json_object_set_new(root, "spearman", sp);
        json_dumpf(root, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(8));
        printf("\n");
        json_decref(root);
    } else {
        printf("%s: dim %lld, hidden %lld, %lld layers, %lld/%lld heads, vocab %lld\n", o.input, (long long)mc->dim,
               (long long)mc->hidden_dim, (long long)mc->n_layers, (long long)mc->n_heads, (long long)mc->n_kv_heads,
               (long long)mc->vocab_size);
        printf("quantized: FFN w1, w2, w3 only (attention, embeddings, norms stay FP32); FFN path %s\n",
               o.path == EVALQ_PATH_KERNEL ? "kernel (MWQ rows: kern_matmul, int8 activations; baselines dequantized)"
                                           : "dequant (FP32 products with dequantized weights)");
        printf("reference: %ld sequences x %ld tokens sampled from the FP32 model (seed %llu): ppl %.4f\n\n", o.seqs, o.len,
               (unsigned long long)o.seed, ref_ppl);
        printf("%-6s %-9s %-20s %5s %4s %6s %6s %8s %10s %6s %8s %8s\n", "preset", "method", "bitroute", "level", "bits", "bpw",
               "stored", "ffn_err", "kl", "top1", "ppl", "est_ppl");
        for (size_t i = 0; i < nres; i++) {
            const evalq_result *r = &res[i];
            char lv[8] = "mix", bt[8] = "-", es[16] = "-";
            if (r->level) { snprintf(lv, sizeof lv, "%d", r->level); snprintf(bt, sizeof bt, "%d", r->bits); }
            if (isfinite(est[i])) snprintf(es, sizeof es, "%.3f", est[i]);
            printf("%-6s %-9s %-20s %5s %4s %6.3f %6.3f %8.5f %10.6f %6.4f %8.4f %8s\n", r->preset, r->method,
                   r->level ? "uniform" : r->bitroute, lv, bt, r->bpw, r->stored_bpw, r->rel_err, r->m.kl, r->m.top1, r->m.ppl, es);
        }
        printf("\nSpearman rank correlation with measured KL over the configurations:\n");
        printf("  FFN weight error (this checkpoint)  rho = %.3f  (%zu configurations)\n", rho_rel, n_rel);
        if (have_est) printf("  est_ppl (the store's error table)    rho = %.3f  (%zu configurations; msb-slice has no estimate)\n", rho_est, n_est);
        else printf("  est_ppl: %s\n", o.dbpath ? "the store has no quantizer error table (run `d2moe reproduce` or `d2moe quantize --db`)"
                                              : "give --db FILE holding the quantizer's error table to compare with the estimate");
        printf("\n");
    }
    /* timing goes to stderr: stdout is the same bytes for the same seed */
    fflush(stdout);
    fprintf(stderr, "eval: reference %ld x %ld tokens in %.2f s; %zu configurations, %.0f tokens/s through quantized FFNs\n", o.seqs,
            o.len, tref, nres, teval > 0 ? (double)nres * (double)(o.seqs * o.len) / teval : 0.0);
    free(est); free(kl); free(rel);
    if (d) {
        for (size_t i = 0; !rc && i < nres; i++) rc = store(d, &o, &res[i], ref_ppl, est_of(acc, &res[i]));
        if (rc) goto fail;
    }
    accuracy_model_free(acc);
    db_close(d);
    free(res);
    evalq_ref_free(ref);
    llm_model_free(m);
    return 0;
fail:
    accuracy_model_free(acc);
    if (d) db_close(d);
    free(res);
    evalq_ref_free(ref);
    llm_model_free(m);
    return cli_fail(rc);
}

const cli_cmd cli_cmd_eval = {"eval", "measured accuracy of FFN quantization and bit routing on a llama2.c forward pass", run};
