/* cmd_mwq.c - `d2moe mwq inspect FILE [--verify] [--json]`: the tensor index
 * of a .mwq file (shape, levels, chunk offsets, sizes, checksums, cumulative
 * bits per weight), and with --verify every chunk read and checksummed and
 * the padding between chunks checked to be zero. */
#include "cli/cli.h"
#include "core/err.h"
#include "quant/mwqfile.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe mwq inspect FILE [--verify] [--json]\n\n"
                 "Print the tensors of a .mwq file: shape, group, base bits, levels, and for each\n"
                 "level its chunk (offset, bytes, XXH3-64) and the bits per weight of levels 1..k.\n"
                 "Opening reads only the header and the index; --verify also reads every chunk\n"
                 "and checks its checksum and that the padding after it is zero.\n");
}

static int run(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, NULL, 'h'},
                                       {"verify", no_argument, NULL, 'v'},
                                       {"json", no_argument, NULL, 'j'},
                                       {NULL, 0, NULL, 0}};
    int verify = 0, json = 0, c;
    while ((c = cli_getopt_long(argc, argv, "hvj", lo, NULL, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return 0;
        case 'v': verify = 1; break;
        case 'j': json = 1; break;
        default: return cli_bad_option("mwq", argc, argv);
        }
    }
    if (argc - optind < 1) return cli_usage_error("mwq", "expected a subcommand: inspect");
    if (strcmp(argv[optind], "inspect")) return cli_usage_error("mwq", "'%s': unknown subcommand (expected inspect)", argv[optind]);
    if (argc - optind != 2) return cli_usage_error("mwq", "inspect: expected one FILE");
    mwqfile *f;
    int rc = mwqfile_open(argv[optind + 1], &f);
    if (rc) return cli_fail(rc);
    if (verify && (rc = mwqfile_verify(f))) { mwqfile_close(f); return cli_fail(rc); }
    json_t *root = json ? json_object() : NULL, *ts = json ? json_array() : NULL;
    if (!json) printf("%s: %zu tensors%s\n", argv[optind + 1], mwqfile_count(f), verify ? ", every chunk checksum verified" : "");
    for (size_t i = 0; i < mwqfile_count(f); i++) {
        const mwqfile_tensor *t = mwqfile_tensor_get(f, i);
        double n = (double)(t->shape.rows * t->shape.cols), cum = 0;
        json_t *jt = NULL, *jl = NULL;
        if (json) {
            jt = json_object();
            jl = json_array();
            json_object_set_new(jt, "name", json_string(t->name));
            json_object_set_new(jt, "rows", json_integer(t->shape.rows));
            json_object_set_new(jt, "cols", json_integer(t->shape.cols));
            json_object_set_new(jt, "group", json_integer(t->shape.group));
            json_object_set_new(jt, "base_bits", json_integer(t->shape.base_bits));
            json_object_set_new(jt, "mode", json_string(t->mode ? "gptq" : "rtn"));
            json_object_set_new(jt, "layout", json_string(t->kq ? "k-quant" : "group"));
            if (t->kq)
                json_object_set_new(jt, "kq", json_pack("{s:i,s:i,s:b,s:s}", "scale_bits", t->kqf.scale_bits, "min_bits", t->kqf.min_bits,
                                                        "min_rel", t->kqf.min_rel, "resid", t->kqf.resid == KQ_BUCKET ? "bucket" : "tied"));
            json_object_set_new(jt, "levels", jl);
            json_array_append_new(ts, jt);
        } else {
            printf("\n%s  %lld x %lld  group %lld  b1 %d  levels %d  mode %s\n", t->name, (long long)t->shape.rows,
                   (long long)t->shape.cols, (long long)t->shape.group, t->shape.base_bits, t->levels, t->mode ? "gptq" : "rtn");
            if (t->kq)
                printf("  k-quant layout: 256-weight super-blocks, sub-block scale/min codes of %d/%d bits, %s mins, %s residual steps\n",
                       t->kqf.scale_bits, t->kqf.min_bits, t->kqf.min_rel ? "relative" : "FP16-scaled", t->kqf.resid == KQ_BUCKET ? "bucket" : "tied");
            printf("  %5s %4s %14s %12s %18s %8s\n", "level", "bits", "offset", "bytes", "xxh3", "bpw_cum");
        }
        for (int k = 1; k <= t->levels; k++) {
            cum += (double)t->bytes[k - 1];
            if (json) {
                json_t *o = json_object();
                json_object_set_new(o, "level", json_integer(k));
                json_object_set_new(o, "bits", json_integer(t->shape.base_bits + k - 1));
                json_object_set_new(o, "offset", json_integer(t->offset[k - 1]));
                json_object_set_new(o, "bytes", json_integer(t->bytes[k - 1]));
                char hx[17];
                snprintf(hx, sizeof hx, "%016llx", (unsigned long long)t->xxh3[k - 1]);
                json_object_set_new(o, "xxh3", json_string(hx));
                json_object_set_new(o, "bpw", json_real(8.0 * cum / n));
                json_array_append_new(jl, o);
            } else {
                printf("  %5d %4d %14lld %12lld   %016llx %8.4f\n", k, t->shape.base_bits + k - 1, (long long)t->offset[k - 1],
                       (long long)t->bytes[k - 1], (unsigned long long)t->xxh3[k - 1], 8.0 * cum / n);
            }
        }
    }
    if (json) {
        json_object_set_new(root, "file", json_string(argv[optind + 1]));
        json_object_set_new(root, "verified", json_boolean(verify));
        json_object_set_new(root, "tensors", ts);
        json_dumpf(root, stdout, JSON_INDENT(1));
        printf("\n");
        json_decref(root);
    }
    mwqfile_close(f);
    return 0;
}

const cli_cmd cli_cmd_mwq = {"mwq", "inspect a .mwq file (mwq inspect FILE)", run};
