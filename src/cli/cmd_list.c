/* cmd_list.c - `d2moe list models|devices`: the profiles in experiments/,
 * one line each with their headline sizes. */
#include "cli/cli.h"
#include "sim/readings.h"
#include "core/device.h"
#include "core/err.h"
#include "core/model.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe list models|devices|readings\n\n"
                 "List the model or device profiles (experiments/models, experiments/devices)\n"
                 "with their headline sizes.  Sizes: MB = 10^6 bytes, B = 10^9 params.\n");
}

static int list_models(void)
{
    char **names;
    size_t n;
    int rc = param_profile_list("model", &names, &n);
    if (rc) return cli_fail(rc);
    printf("%-20s %6s %7s %5s %9s %9s %10s %10s %10s\n", "model", "layers", "experts", "top_k",
           "params_B", "active_B", "expert_MB", "int4_MB", "mwq_v1_MB");
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        model m;
        rc = model_load(&m, names[i]);
        if (rc) { status = cli_fail(rc); continue; }
        double active = (double)model_nonexpert_params(&m)
                      + (double)model_moe_layers(&m) * (double)m.top_k * (double)model_expert_params(&m);
        printf("%-20s %6lld %7lld %5lld %9.2f %9.2f %10.2f %10.2f %10.2f\n", m.name, (long long)m.layers,
               (long long)m.experts, (long long)m.top_k, (double)model_total_params(&m) / 1e9, active / 1e9,
               (double)model_expert_bytes_uniform(&m, 16, 0) / 1e6,
               (double)model_expert_bytes_uniform(&m, 4, 128) / 1e6,
               (double)model_expert_mwq_bytes(&m, 2, 3, 128) / 1e6);
    }
    param_names_free(names, n);
    return status;
}

/* reading sets (experiments/readings): name and their settings */
static int list_readings(void)
{
    char **names;
    size_t n;
    int rc = readings_list(&names, &n);
    if (rc) return cli_fail(rc);
    for (size_t i = 0; i < n; i++) {
        readings r;
        char txt[2048];
        if ((rc = readings_load(&r, names[i]))) { param_names_free(names, n); return cli_fail(rc); }
        readings_text(&r, txt, sizeof txt);
        printf("%-16s %s\n", r.name, txt);
    }
    param_names_free(names, n);
    return 0;
}

static int list_devices(void)
{
    char **names;
    size_t n;
    int rc = param_profile_list("device", &names, &n);
    if (rc) return cli_fail(rc);
    printf("%-22s %-10s %10s %10s %11s %10s %9s\n", "device", "kind", "mem_GB", "mem_GB/s", "fp16_TFLOPS",
           "flash_GB/s", "unified");
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        device d;
        rc = device_load(&d, names[i]);
        if (rc) { status = cli_fail(rc); continue; }
        printf("%-22s %-10s %10.2f %10.1f %11.2f %10.2f %9s\n", d.name, d.kind, (double)d.mem_bytes / 1e9,
               d.mem_bw / 1e9, d.fp16_flops / 1e12, d.flash_bw / 1e9, d.unified ? "yes" : "no");
    }
    param_names_free(names, n);
    return status;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        return cli_bad_option("list", argc, argv);
    }
    if (argc - optind != 1) return cli_usage_error("list", "expected one of: models, devices, readings");
    const char *what = argv[optind];
    if (!strcmp(what, "models")) return list_models();
    if (!strcmp(what, "devices")) return list_devices();
    if (!strcmp(what, "readings")) return list_readings();
    return cli_usage_error("list", "'%s': expected models, devices or readings", what);
}

const cli_cmd cli_cmd_list = {"list", "list model or device profiles", run};
