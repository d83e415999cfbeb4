/* cmd_show.c - `d2moe show model|device NAME [--set key=value]...`: the
 * effective parameters of a profile and the sizes derived from them. */
#include "cli/cli.h"
#include "core/device.h"
#include "core/err.h"
#include "core/model.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe show model|device NAME [--set key=value]... [--group G]\n\n"
                 "Print the effective values of a profile (after --set overrides) and, for a\n"
                 "model, the derived sizes: expert matrix bytes at each bit-width with group\n"
                 "size G (default 128; FP16 scales and zeros), MWQ level bytes, non-expert\n"
                 "bytes, KV cache per token.  NAME is a profile name or a path to an .ini.\n\n"
                 "Model keys:\n");
    param_print_help(&model_params, out);
    fprintf(out, "Device keys:\n");
    param_print_help(&device_params, out);
}

#define MB(x) ((double)(x) / 1e6)

static void show_model_derived(const model *m, int64_t g)
{
    printf("\n; derived (group size %lld, FP16 scales/zeros; MB = 10^6 bytes)\n", (long long)g);
    printf("moe_layers             = %lld\n", (long long)model_moe_layers(m));
    for (int i = 0; i < m->expert_matrices; i++) {
        int64_t r, c;
        model_expert_matrix_shape(m, i, &r, &c);
        printf("expert_matrix_%d        = %lld x %lld\n", i, (long long)r, (long long)c);
    }
    printf("expert_params          = %lld\n", (long long)model_expert_params(m));
    static const int bits[] = {16, 8, 4, 3, 2};
    for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
        int64_t b = model_expert_bytes_uniform(m, bits[i], g);
        printf("expert_bytes_int%-2d     = %lld ; %.3f MB, %.4f bits/weight\n", bits[i], (long long)b, MB(b),
               8.0 * (double)b / (double)model_expert_params(m));
    }
    static const struct { const char *name; int b1, k; } var[] = {{"v1", 2, 3}, {"v2", 5, 4}};
    for (int v = 0; v < 2; v++) {
        int64_t tot = 0;
        for (int k = 1; k <= var[v].k; k++) {
            int64_t b = model_expert_level_bytes(m, var[v].b1, k, g);
            tot += b;
            printf("mwq_%s_level%d_bytes    = %lld ; %.3f MB, cumulative INT%d = %.3f MB\n", var[v].name, k,
                   (long long)b, MB(b), var[v].b1 + k - 1, MB(tot));
        }
        printf("mwq_%s_bits_per_weight = %.4f\n", var[v].name, 8.0 * (double)tot / (double)model_expert_params(m));
    }
    int64_t all_experts = model_moe_layers(m) * m->experts;
    printf("experts_total          = %lld\n", (long long)all_experts);
    printf("experts_fp16_bytes     = %lld ; %.1f MB\n", (long long)(all_experts * model_expert_bytes_uniform(m, 16, 0)),
           MB(all_experts * model_expert_bytes_uniform(m, 16, 0)));
    printf("nonexpert_params       = %lld\n", (long long)model_nonexpert_params(m));
    printf("nonexpert_bytes_fp16   = %lld ; %.1f MB\n", (long long)model_nonexpert_bytes(m, 16), MB(model_nonexpert_bytes(m, 16)));
    printf("total_params           = %lld ; %.2f B\n", (long long)model_total_params(m), (double)model_total_params(m) / 1e9);
    printf("kv_bytes_per_token     = %lld ; FP16, all layers\n", (long long)model_kv_bytes_per_token(m, 16));
    printf("expert_flops_per_token = %.0f\n", model_expert_flops_per_token(m));
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {"set", required_argument, NULL, 's'},
        {"group", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0}};
    const char *sets[64];
    int nsets = 0;
    long group = 128;
    int c;
    while ((c = cli_getopt_long(argc, argv, "hs:g:", opts, "s=", NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 's':
            if (nsets == 64) return cli_usage_error("show", "too many --set options (64 at most)");
            sets[nsets++] = optarg;
            break;
        case 'g': {
            char *end;
            group = strtol(optarg, &end, 10);
            if (*end || group < 1 || group > 1 << 20) return cli_usage_error("show", "--group %s: expected an integer 1..1048576", optarg);
            break;
        }
        default: return cli_bad_option("show", argc, argv);
        }
    }
    if (argc - optind != 2) return cli_usage_error("show", "expected: model NAME or device NAME");
    const char *what = argv[optind], *name = argv[optind + 1];
    if (!strcmp(what, "model")) {
        model m;
        param_origin o; /* the profile's values, then the sets, then the checks across keys */
        int rc = model_read(&m, name, &o);
        for (int i = 0; rc == D2_OK && i < nsets; i++) {
            rc = param_apply_set_from(&model_params, &m, sets[i], &o, "--set");
            if (rc == D2_ENOTFOUND) return cli_usage_error("show", "--set %s: not a model key", sets[i]);
        }
        if (rc == D2_OK) rc = model_check(&m, &o);
        if (rc) return cli_fail(rc);
        printf("[model]\n");
        param_print(&model_params, &m, stdout);
        show_model_derived(&m, group);
        return 0;
    }
    if (!strcmp(what, "device")) {
        device d;
        param_origin o;
        int rc = device_read(&d, name, &o);
        for (int i = 0; rc == D2_OK && i < nsets; i++) {
            rc = param_apply_set_from(&device_params, &d, sets[i], &o, "--set");
            if (rc == D2_ENOTFOUND) return cli_usage_error("show", "--set %s: not a device key", sets[i]);
        }
        if (rc == D2_OK) rc = device_check(&d, &o);
        if (rc) return cli_fail(rc);
        printf("[device]\n");
        param_print(&device_params, &d, stdout);
        return 0;
    }
    return cli_usage_error("show", "'%s': expected model or device", what);
}

const cli_cmd cli_cmd_show = {"show", "print a model or device profile with derived sizes", run};
