/* cmd_trace.c - `d2moe trace import|gen|stats|info`: router traces.  Parses
 * options, calls src/trace, prints.  No trace logic lives here. */
#include "cli/cli.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/model.h"
#include "core/param.h"
#include "trace/gen.h"
#include "trace/import.h"
#include "trace/stat.h"
#include "trace/trace.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: d2moe trace import --format F IN -o OUT.d2t [--strict] [--model M] [--layers N] [--experts N] [--top-k K]\n"
            "       d2moe trace gen [--model M | --preset FILE] [--like SRC [--language L]] [--seed S] [--set gen.key=value]... -o OUT.d2t\n"
            "       d2moe trace stats [--json] [--top-k K] [--language L] [--set stat.key=value]... FILE\n"
            "       d2moe trace info FILE\n\n"
            "import  convert a published trace: F = mixtral-jsonl, vllm-jsonl or csv (traces/README.md).\n"
            "        Problems are counted and handled (or fatal with --strict); the shape comes from\n"
            "        --model, the vLLM meta line, or the largest ids seen.\n"
            "gen     synthetic trace from the model's preset (traces/presets/M.ini; --model M is a name,\n"
            "        or as for simulate a profile's path whose name picks the preset) or, with --like,\n"
            "        fitted to a .d2t trace or an activation table (Qwen3 CSV, Switch JSON).\n"
            "stats   per-layer statistics of a .d2t (or of an activation table: shares only).\n"
            "info    header, shape and counts of a .d2t.\n\n"
            "Generator keys:\n");
    param_print_help(&gen_params_table, out);
    fprintf(out, "Statistics keys:\n");
    param_print_help(&stat_params_table, out);
}

static int parse_u32(const char *cmd, const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v < lo || v > hi || s[0] == '-')
        return cli_usage_error(cmd, "%s %s: expected an integer %u..%u", opt, s, lo, hi);
    *out = (uint32_t)v;
    return 0;
}

/* ------------------------------------------------------------------ import */

static int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},     {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'}, {"strict", no_argument, NULL, 's'},
        {"model", required_argument, NULL, 'm'},  {"layers", required_argument, NULL, 'L'},
        {"experts", required_argument, NULL, 'E'}, {"top-k", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    import_opts o = {0};
    const char *out = NULL;
    int c;
    while ((c = cli_getopt_long(argc, argv, "hf:o:sm:", opts, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'f': o.format = optarg; break;
        case 'o': out = optarg; break;
        case 's': o.strict = 1; break;
        case 'm': o.model = optarg; break;
        case 'L': if (parse_u32("trace import", "--layers", optarg, 1, 65535, &o.layers)) return 2; break;
        case 'E': if (parse_u32("trace import", "--experts", optarg, 1, 65535, &o.experts)) return 2; break;
        case 'K': if (parse_u32("trace import", "--top-k", optarg, 1, TRACE_K_MAX, &o.top_k)) return 2; break;
        default: return cli_bad_option("trace import", argc, argv);
        }
    }
    if (argc - optind != 1) return cli_usage_error("trace import", "expected one input file");
    if (!o.format) return cli_usage_error("trace import", "--format is required (mixtral-jsonl, vllm-jsonl, csv)");
    if (!out) return cli_usage_error("trace import", "-o OUT.d2t is required");
    if (o.model) {
        gen_params gp;
        param_defaults(&gen_params_table, &gp);
        snprintf(gp.model, sizeof gp.model, "%s", o.model);
        gp.layers = o.layers; gp.experts = o.experts; gp.top_k = o.top_k;
        int rc = gen_params_resolve(&gp);
        if (rc) return cli_fail(rc);
        o.layers = (uint32_t)gp.layers; o.experts = (uint32_t)gp.experts; o.top_k = (uint32_t)gp.top_k;
    }
    import_report rep;
    int rc = import_run(argv[optind], out, &o, &rep);
    if (rc) return cli_fail(rc);
    printf("%s: %llu records, %llu tokens, %u requests; %u layers x %u experts, top-%u\n", out,
           (unsigned long long)rep.records, (unsigned long long)rep.tokens, rep.requests, rep.layers, rep.experts, rep.top_k);
    printf("read %llu lines, %llu routing rows\n", (unsigned long long)rep.lines, (unsigned long long)rep.rows);
    if (!strcmp(o.format, "vllm-jsonl")) {
        printf("vLLM log: %llu warm-up rows skipped (leading run of identical rows: same ids, same weights)\n",
               (unsigned long long)rep.warmup);
        printf("vLLM log: %llu forward batches; %llu req_id(s) with token_idx restarts split into %llu prefill + %llu decode batches "
               "(%llu runs of equal-size decode batches, row j = request j); %u requests written\n",
               (unsigned long long)rep.batches, (unsigned long long)rep.batched_reqs, (unsigned long long)rep.prefill_batches,
               (unsigned long long)rep.decode_batches, (unsigned long long)rep.decode_runs, rep.requests);
        printf("vLLM log: %u layer(s) logged: %s (layer numbers kept)\n", rep.layers_logged, rep.layer_list);
    }
    if (rep.skipped_other) printf("skipped %llu lines of other types\n", (unsigned long long)rep.skipped_other);
    for (int i = 0; i < IMPORT_PROBLEM_N; i++)
        if (rep.n[i])
            printf("problem: %llu x %s (%s); first: %s\n", (unsigned long long)rep.n[i], import_problem_names[i],
                   import_problem_handling[i], rep.first[i]);
    return 0;
}

/* ------------------------------------------------------------------- stats */

static int is_d2t(const char *path)
{
    FILE *f = NULL; /* not a regular file: not a .d2t (the reader then names the problem) */
    if (fileio_open_read(path, UINT64_MAX, &f, NULL) != D2_OK) f = NULL;
    char m[8] = {0};
    int yes = f && fread(m, 1, 8, f) == 8 && !memcmp(m, "D2TRACE", 8);
    if (f) fclose(f);
    return yes;
}

/* Statistics of a .d2t, or of an activation table (shares only). */
/* --language and --top-k describe an activation table: with a .d2t they
 * would be ignored, so they are refused (exit 2) */
static int d2t_only(const char *path, const char *language, int top_k_given)
{
    if (language) D2_ERROR(D2_EINVAL, "%s: a .d2t trace: --language applies to activation tables only", path);
    if (top_k_given) D2_ERROR(D2_EINVAL, "%s: a .d2t trace: --top-k applies to activation tables only (a trace has its own)", path);
    return D2_OK;
}

/* top_k_given: the user's --top-k (refused with a .d2t), not a model's */
static int load_stats(const char *path, const stat_params *sp, const char *language, uint32_t top_k, int top_k_given,
                      stat_acc **out)
{
    if (is_d2t(path)) {
        D2_TRY(d2t_only(path, language, top_k_given));
        return stat_file(path, sp, out);
    }
    FILE *f; /* a FIFO or device: refused here, not waited on */
    D2_TRY(fileio_open_read(path, UINT64_MAX, &f, NULL));
    {
        /* a file that starts like a .d2t but is too short must be diagnosed as one */
        char m[8] = {0};
        size_t n = fread(m, 1, 8, f);
        fclose(f);
        if (n > 0 && !memcmp(m, "D2TRACE", n < 8 ? n : 8)) {
            D2_TRY(d2t_only(path, language, top_k_given));
            return stat_file(path, sp, out);
        }
    }
    import_table t;
    D2_TRY(import_table_read(path, language, &t));
    uint32_t K = top_k ? top_k : t.top_k;
    if (!K) { import_table_clear(&t); D2_ERROR(D2_EINVAL, "%s: the table holds counts: give the top-k (trace stats --top-k K; trace gen --like: --model M or --set gen.top_k=K)", path); }
    if (K > t.experts) { /* else stat_new's "bad shape", naming neither the file nor the top-k */
        const uint32_t E = t.experts;
        import_table_clear(&t);
        D2_ERROR(D2_EINVAL, "%s: top-k %u is more than the table's %u experts (trace stats --top-k, or gen.top_k / the --model's top_k)", path, K, E);
    }
    stat_acc *s;
    int rc = stat_new(t.layers, t.experts, K, &s);
    if (!rc) {
        for (uint32_t l = 0; l < t.layers; l++) stat_add_shares(s, l, t.shares + (size_t)l * t.experts);
        rc = stat_finish(s, sp);
        if (rc) stat_free(s);
    }
    import_table_clear(&t);
    if (!rc) *out = s;
    return rc;
}

/* x with `dec` decimals right-aligned in `w` columns, or "-" when undefined */
static void fmt(char *b, size_t n, double x, int w, int dec)
{
    if (isfinite(x)) snprintf(b, n, "%*.*f", w, dec, x);
    else snprintf(b, n, "%*s", w, "-");
}

/* one row: for each batch size, the mean over the layers that have a value
 * of distinct_items (items = 1) or distinct_experts; "-" when no layer has one */
static void print_layer_means(const stat_acc *s, uint32_t L, int nb, const char *title, int items)
{
    printf("%s", title);
    for (int i = 0; i < nb; i++) {
        double m = 0;
        uint32_t k = 0;
        for (uint32_t l = 0; l < L; l++) {
            const stat_layer *y = stat_layer_get(s, l);
            const double *row = items ? y->distinct_items : y->distinct_experts;
            if (!isnan(row[i])) m += row[i], k++;
        }
        if (k) printf(" %7.2f", m / k);
        else printf(" %7s", "-");
    }
}

static void print_stats(const char *path, const stat_acc *s)
{
    uint32_t L = stat_layers(s), E = stat_experts(s), K = stat_top_k(s);
    printf("%s: %llu records, %llu tokens, %u requests; %u layers x %u experts, top-%u\n", path,
           (unsigned long long)stat_records(s), (unsigned long long)stat_tokens(s), stat_requests(s), L, E, K);
    printf("layer  records  share_min share_max max/mean    cv  gini entropy top1_rep next_acc chance  w_top1\n");
    uint32_t empty = 0;
    for (uint32_t l = 0; l < L; l++) {
        const stat_layer *y = stat_layer_get(s, l);
        /* a trace's layers without records (a one-layer log, a sparse file)
         * have no statistics: counted, not printed as rows of "-" */
        if (stat_records(s) && !y->records) { empty++; continue; }
        double mn = 1, mx = 0;
        for (uint32_t e = 0; e < E; e++) { if (y->share[e] < mn) mn = y->share[e]; if (y->share[e] > mx) mx = y->share[e]; }
        char a[7][16];
        fmt(a[0], 16, y->max_over_mean, 8, 2);
        fmt(a[1], 16, y->cv, 5, 2);
        fmt(a[2], 16, y->gini, 5, 3);
        fmt(a[3], 16, y->entropy, 7, 3);
        fmt(a[4], 16, y->top1_repeat, 8, 3);
        fmt(a[5], 16, y->next_top1_acc, 8, 3);
        fmt(a[6], 16, y->next_top1_chance, 6, 3);
        char w[16];
        fmt(w, 16, y->w_mean[0], 7, 3);
        printf("%5u %8llu %9.4f %9.4f %8s %5s %5s %7s %8s %8s %6s %7s\n", l, (unsigned long long)y->records, mn, mx, a[0], a[1],
               a[2], a[3], a[4], a[5], a[6], w);
    }
    if (empty) printf("(%u layers without records not shown)\n", empty);
    { /* a median over no layer with a value is "-", never "nan" */
        char m[4][16];
        const size_t off[4] = {offsetof(stat_layer, max_over_mean), offsetof(stat_layer, cv), offsetof(stat_layer, gini),
                               offsetof(stat_layer, top1_repeat)};
        const int prec[4] = {2, 2, 3, 3};
        for (int i = 0; i < 4; i++) {
            double v = stat_median(s, off[i]);
            if (isnan(v)) snprintf(m[i], sizeof m[i], "-");
            else snprintf(m[i], sizeof m[i], "%.*f", prec[i], v);
        }
        printf("median over layers: max/mean %s, cv %s, gini %s, top1_repeat %s\n", m[0], m[1], m[2], m[3]);
    }
    const uint32_t *b;
    int nb = stat_batches(s, &b);
    printf("batch R                   ");
    for (int i = 0; i < nb; i++) printf(" %7u", b[i]);
    /* means over the layers that have a value (a layer without records has none) */
    print_layer_means(s, L, nb, "\ndistinct experts (mean/layer)", 0);
    print_layer_means(s, L, nb, "\ndistinct (expert,level) items ", 1);
    printf("\n");
}

static int cmd_stats(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, 'j'},
                                         {"set", required_argument, NULL, 's'}, {"language", required_argument, NULL, 'l'},
                                         {"top-k", required_argument, NULL, 'K'}, {NULL, 0, NULL, 0}};
    int json = 0;
    const char *language = NULL;
    uint32_t top_k = 0;
    stat_params sp;
    stat_params_default(&sp);
    int c;
    while ((c = cli_getopt_long(argc, argv, "hjs:", opts, "s=", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'j': json = 1; break;
        case 'l': language = optarg; break;
        case 'K': if (parse_u32("trace stats", "--top-k", optarg, 1, TRACE_K_MAX, &top_k)) return 2; break;
        case 's': {
            int rc = param_apply_set(&stat_params_table, &sp, optarg);
            if (rc == D2_ENOTFOUND) return cli_usage_error("trace stats", "--set %s: not a stat key", optarg);
            if (rc) return cli_fail(rc);
            break;
        }
        default: return cli_bad_option("trace stats", argc, argv);
        }
    }
    if (argc - optind != 1) return cli_usage_error("trace stats", "expected one trace file");
    stat_acc *s;
    int rc = load_stats(argv[optind], &sp, language, top_k, top_k != 0, &s);
    if (rc) return cli_fail(rc);
    if (json) {
        json_t *o = stat_json(s);
        json_object_set_new(o, "file", json_string(argv[optind]));
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(8));
        printf("\n");
        json_decref(o);
    } else {
        print_stats(argv[optind], s);
    }
    stat_free(s);
    return 0;
}

/* --------------------------------------------------------------------- gen */

static int cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},        {"model", required_argument, NULL, 'm'},
        {"preset", required_argument, NULL, 'p'}, {"like", required_argument, NULL, 'l'},
        {"language", required_argument, NULL, 'g'}, {"seed", required_argument, NULL, 'S'},
        {"set", required_argument, NULL, 's'},   {"output", required_argument, NULL, 'o'},
        {NULL, 0, NULL, 0}};
    const char *modelname = NULL, *preset = NULL, *like = NULL, *language = NULL, *out = NULL;
    const char *sets[64];
    int nsets = 0;
    uint64_t seed = 1;
    int c;
    while ((c = cli_getopt_long(argc, argv, "hm:o:s:", opts, "s=", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'm': modelname = optarg; break;
        case 'p': preset = optarg; break;
        case 'l': like = optarg; break;
        case 'g': language = optarg; break;
        case 'o': out = optarg; break;
        case 'S': {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end || optarg[0] == '-' || errno == ERANGE) return cli_usage_error("trace gen", "--seed %s: expected an integer >= 0", optarg);
            break;
        }
        case 's':
            if (nsets == 64) return cli_usage_error("trace gen", "too many --set options (64 at most)");
            sets[nsets++] = optarg;
            break;
        default: return cli_bad_option("trace gen", argc, argv);
        }
    }
    if (argc != optind) return cli_usage_error("trace gen", "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error("trace gen", "-o OUT.d2t is required");
    { /* a FIFO, device, symlink or directory at OUT: refused before the fit */
        int orc = fileio_out_check(out);
        if (orc) return cli_fail(orc);
    }
    if (!modelname && !preset && !like) return cli_usage_error("trace gen", "give --model, --preset or --like");
    if (language && !like) return cli_usage_error("trace gen", "--language %s goes with --like (a table's rows)", language);
    gen_params p;
    param_origin po; /* the preset's line of each key, or the --set that changed it */
    param_origin_init(&po, NULL);
    int rc;
    /* --model as simulate reads it: a name, or a profile's path whose
     * `name` picks the generator preset (a path was read as a preset) */
    static model mp;
    const size_t ml = modelname ? strlen(modelname) : 0;
    const int mpath = modelname && (strchr(modelname, '/') || (ml > 4 && !strcmp(modelname + ml - 4, ".ini")));
    if (mpath && (rc = model_load(&mp, modelname))) {
        if (rc == D2_EFORMAT && gen_preset_read(modelname, &p, NULL) == D2_OK) /* the old reading of a path */
            return cli_usage_error("trace gen", "--model %s: a generator preset, not a model profile (give a preset with --preset)", modelname);
        return cli_fail(rc);
    }
    if (mpath && strlen(mp.name) >= sizeof p.model) return cli_fail((d2_err_set("%s: name: too long for a generator", modelname), D2_ERANGE));
    if (preset || modelname) rc = gen_preset_read(preset ? preset : mpath ? mp.name : modelname, &p, &po);
    else { param_defaults(&gen_params_table, &p); rc = D2_OK; }
    if (rc) return cli_fail(rc);
    if (modelname) snprintf(p.model, sizeof p.model, "%s", mpath ? mp.name : modelname);
    for (int i = 0; i < nsets; i++) {
        rc = param_apply_set_from(&gen_params_table, &p, sets[i], &po, "--set");
        if (rc == D2_ENOTFOUND) return cli_usage_error("trace gen", "--set %s: not a gen key", sets[i]);
        if (rc) return cli_fail(rc);
    }
    if (mpath && !strcmp(p.model, mp.name)) { /* the shape from the profile given, not one found by its name */
        if (!p.layers) p.layers = model_moe_layers(&mp);
        if (!p.experts) p.experts = mp.experts;
        if (!p.top_k) p.top_k = mp.top_k;
    }
    if (p.model[0]) { /* a model with no profile: named with the preset's line of `model` (or its --set) */
        gen_params q = p;
        rc = gen_params_blame(gen_params_resolve(&q), modelname ? NULL : &po);
        if (rc == D2_ENOTFOUND) return cli_fail(rc);
    }
    gen_model *m;
    if (like) {
        stat_params sp;
        stat_params_default(&sp);
        uint32_t k = (uint32_t)p.top_k;
        if (!k && p.model[0]) {
            gen_params q = p;
            if (!gen_params_resolve(&q)) k = (uint32_t)q.top_k;
        }
        stat_acc *target;
        rc = load_stats(like, &sp, language, k, 0, &target);
        if (rc) return cli_fail(rc);
        rc = gen_model_fit(&p, target, seed, &m);
        stat_free(target);
    } else {
        rc = gen_model_new(&p, seed, &m);
    }
    if (rc) return cli_fail(rc);
    {
        /* the output cap (traces/README.md, "Limits"): refused before writing */
        const gen_params *g = gen_model_params(m);
        double bytes = (double)g->requests * (double)(g->prefill + g->decode) * (double)g->layers *
                       (double)trace_record_bytes((uint32_t)g->top_k, 0);
        if (bytes > (double)TRACE_GEN_MAX_BYTES) {
            long long nr = (long long)g->requests, nt = (long long)(g->prefill + g->decode), nl = (long long)g->layers;
            gen_model_free(m); /* g points into m: its values are copied above */
            return cli_usage_error("trace gen", "%s: %.3g bytes of records, more than the limit of %llu bytes (%lld requests x %lld tokens x %lld layers)",
                                   out, bytes, (unsigned long long)TRACE_GEN_MAX_BYTES, nr, nt, nl);
        }
    }
    rc = gen_write(m, out);
    if (rc) { gen_model_free(m); return cli_fail(rc); }
    const gen_params *q = gen_model_params(m);
    printf("%s: %lld requests x (%lld prefill + %lld decode) tokens x %lld layers, %lld experts, top-%lld; seed %llu%s%s\n", out,
           (long long)q->requests, (long long)q->prefill, (long long)q->decode, (long long)q->layers, (long long)q->experts,
           (long long)q->top_k, (unsigned long long)seed, like ? "; fitted like " : "", like ? like : "");
    if (like) printf("fitted gate_alpha = %.4f, xlayer = %.4f (popularity and repeat per layer)\n", q->gate_alpha, q->xlayer);
    gen_model_free(m);
    return 0;
}

/* -------------------------------------------------------------------- info */

static int cmd_info(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) { usage(stdout); return 0; }
        return cli_usage_error("trace info", "expected one .d2t file");
    }
    trace_file *f;
    int rc = trace_file_open(argv[1], &f);
    if (rc) return cli_fail(rc);
    const trace_header *h = trace_file_header(f);
    printf("file       = %s\nmodel      = %s\nlayers     = %u\nexperts    = %u\ntop_k      = %u\nhas_bits   = %d\n"
           "records    = %llu\ntokens     = %llu\nrequests   = %u\nchunk      = %u records\n",
           argv[1], h->model[0] ? h->model : "-", h->layers, h->experts, h->top_k, h->has_bits,
           (unsigned long long)h->records, (unsigned long long)h->tokens, h->requests, h->chunk_records);
    for (uint32_t i = 0; i < h->requests && i < 8; i++) {
        const trace_req_info *r = trace_file_request(f, i);
        printf("request %u  = %u positions (%u prefill), %u records\n", i, r->positions, r->prefill, r->records);
    }
    if (h->requests > 8) printf("...        (%u more requests)\n", h->requests - 8);
    trace_file_close(f);
    return 0;
}

static int run(int argc, char **argv)
{
    if (argc < 2) return cli_usage_error("trace", "expected import, gen, stats or info");
    const char *sub = argv[1];
    optind = 1;
    opterr = 0;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) { usage(stdout); return 0; }
    if (!strcmp(sub, "import")) return cmd_import(argc - 1, argv + 1);
    if (!strcmp(sub, "gen")) return cmd_gen(argc - 1, argv + 1);
    if (!strcmp(sub, "stats")) return cmd_stats(argc - 1, argv + 1);
    if (!strcmp(sub, "info")) return cmd_info(argc - 1, argv + 1);
    return cli_usage_error("trace", "'%s': expected import, gen, stats or info", sub);
}

const cli_cmd cli_cmd_trace = {"trace", "router traces: import, gen, stats, info", run};
