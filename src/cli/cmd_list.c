/* cmd_list.c - `d2moe list models|devices`: the profiles in experiments/,
 * one line each with their headline sizes. */
#include "config.h"
#include "cli/cli.h"
#include "sim/readings.h"
#include "core/device.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/model.h"
#include "core/param.h"
#include "core/suggest.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe [--profiles DIR] list [models|devices|readings]\n\n"
                 "List the model, device or reading profiles with their headline sizes and the folder\n"
                 "each came from; without an argument, the folders searched.  Sizes: MB = 10^6\n"
                 "bytes, B = 10^9 params.  A profile name is looked up in, first match wins:\n"
                 "  1. --profiles DIR   2. $D2MOE_PROFILES   3. ./experiments (current folder)\n"
                 "  4. the installed data folder (%s/experiments, 'make install')\n"
                 "  5. the build's source tree (%s/experiments)\n"
                 "each holding models/, devices/ and readings/ (<name>.ini).  Folders 3-5 are\n"
                 "skipped when missing; a --profiles DIR or $D2MOE_PROFILES that is not a folder is\n"
                 "an error (exit status 2), never passed over.\n", D2_DATADIR, D2_SRCDIR);
}

static int list_models(void)
{
    char **names;
    size_t n;
    int rc = param_profile_list("model", &names, &n);
    if (rc) return cli_fail(rc);
    printf("%-20s %6s %7s %5s %9s %9s %10s %10s %10s  %s\n", "model", "layers", "experts", "top_k",
           "params_B", "active_B", "expert_MB", "int4_MB", "mwq_v1_MB", "from");
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        model m;
        rc = model_load(&m, names[i]);
        if (rc) { status = cli_fail(rc); continue; }
        double active = (double)model_nonexpert_params(&m)
                      + (double)model_moe_layers(&m) * (double)m.top_k * (double)model_expert_params(&m);
        char path[FILEIO_PATH_MAX];
        const char *origin = "?";
        param_profile_find("model", names[i], path, sizeof path, &origin);
        printf("%-20s %6lld %7lld %5lld %9.2f %9.2f %10.2f %10.2f %10.2f  %s (%s)\n", m.name, (long long)m.layers,
               (long long)m.experts, (long long)m.top_k, (double)model_total_params(&m) / 1e9, active / 1e9,
               (double)model_expert_bytes_uniform(&m, 16, 0) / 1e6,
               (double)model_expert_bytes_uniform(&m, 4, 128) / 1e6,
               (double)model_expert_mwq_bytes(&m, 2, 3, 128) / 1e6, origin, path);
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
        char txt[READINGS_TEXT_MAX];
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
    printf("%-22s %-10s %10s %10s %11s %10s %9s  %s\n", "device", "kind", "mem_GB", "mem_GB/s", "fp16_TFLOPS",
           "flash_GB/s", "unified", "from");
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        device d;
        rc = device_load(&d, names[i]);
        if (rc) { status = cli_fail(rc); continue; }
        char path[FILEIO_PATH_MAX];
        const char *origin = "?";
        param_profile_find("device", names[i], path, sizeof path, &origin);
        printf("%-22s %-10s %10.2f %10.1f %11.2f %10.2f %9s  %s (%s)\n", d.name, d.kind, (double)d.mem_bytes / 1e9,
               d.mem_bw / 1e9, d.fp16_flops / 1e12, d.flash_bw / 1e9, d.unified ? "yes" : "no", origin, path);
    }
    param_names_free(names, n);
    return status;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = cli_getopt_long(argc, argv, "h", opts, NULL, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        return cli_bad_option("list", argc, argv);
    }
    if (argc == optind) {
        int rc = param_profile_roots_check();
        if (rc) return cli_fail(rc);
        const char *roots[PARAM_MAX_ROOTS], *origins[PARAM_MAX_ROOTS];
        size_t n = param_profile_roots(roots, origins);
        printf("profiles are looked up in (first match wins):\n");
        for (size_t i = 0; i < n; i++) printf("  %zu. %-16s %s\n", i + 1, origins[i], roots[i]);
        printf("'d2moe list models', 'd2moe list devices' and 'd2moe list readings' list them.\n");
        return 0;
    }
    if (argc - optind != 1) return cli_usage_error("list", "expected one of: models, devices, readings");
    const char *what = argv[optind];
    if (!strcmp(what, "models")) return list_models();
    if (!strcmp(what, "devices")) return list_devices();
    if (!strcmp(what, "readings")) return list_readings();
    static const char *const kinds[] = {"models", "devices", "readings"};
    char hint[100];
    suggest_hint(what, kinds, 3, hint, sizeof hint);
    return cli_usage_error("list", "'%s': expected models, devices or readings%s", what, hint);
}

const cli_cmd cli_cmd_list = {"list", "list the model, device or reading profiles, or the folders searched", run};
