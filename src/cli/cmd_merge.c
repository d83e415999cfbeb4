/* cmd_merge.c - `d2moe merge OUT.db IN.db...`: merge result stores (sweep
 * shards) into one; idempotent. */
#include "cli/cli.h"
#include "core/err.h"
#include "results/accuracy.h"
#include "results/db.h"
#include "results/merge.h"

#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: d2moe merge OUT.db IN.db...\n\n"
                 "Copy every run of the inputs that OUT lacks (by run uid, and by sweep job +\n"
                 "code version) into OUT, one transaction per input.  Merging the same input\n"
                 "again adds nothing.  Inputs are opened read-only.  Then every simulated run\n"
                 "of OUT without est_ppl (shards swept into stores without the quantizer's\n"
                 "error table) gets it from OUT's error table and the shipped PPL curve, as\n"
                 "a sweep into OUT would have computed it.\n");
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = cli_getopt_long(argc, argv, "h", opts, NULL, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        return cli_bad_option("merge", argc, argv);
    }
    if (argc - optind < 2) return cli_usage_error("merge", "expected OUT.db and at least one IN.db");
    const char *out = argv[optind];
    char ro[PATH_MAX], ri[PATH_MAX];
    int have_out = realpath(out, ro) != NULL;
    /* every input checked, and the output's path, before the first write:
     * a bad input found after others were merged left part of the merge */
    int rc = db_path_check(out);
    if (rc) return cli_fail(rc);
    for (int i = optind + 1; i < argc; i++) {
        if (have_out && realpath(argv[i], ri) && !strcmp(ro, ri))
            return cli_usage_error("merge", "%s: cannot merge a store into itself", argv[i]);
        if ((rc = merge_check(argv[i])) != D2_OK) return cli_fail(rc);
    }
    struct stat ost;
    int existed = lstat(out, &ost) == 0;
    for (int i = optind + 1; rc == D2_OK && i < argc; i++) {
        merge_stats st = {0, 0};
        rc = merge_into(out, argv[i], &st);
        if (rc == D2_OK)
            printf("%s: %lld runs added, %lld already present\n", argv[i], (long long)st.runs_added, (long long)st.runs_present);
    }
    /* est_ppl where a shard could not compute it (its store had no error table) */
    db *d = NULL;
    if (rc == D2_OK) rc = db_open(out, &d);
    accuracy_model *acc = NULL;
    if (!rc) rc = accuracy_model_load_default(NULL, d, &acc);
    long filled = 0;
    if (!rc && !isnan(accuracy_bits_error(acc, "nested", 4))) rc = accuracy_fill_missing(d, acc, &filled);
    accuracy_model_free(acc);
    if (d) db_close(d);
    if (rc) {
        /* a failed merge into a new output leaves none behind */
        if (!existed) {
            char side[PATH_MAX + 8];
            unlink(out);
            snprintf(side, sizeof side, "%s-wal", out);
            unlink(side);
            snprintf(side, sizeof side, "%s-shm", out);
            unlink(side);
        }
        return cli_fail(rc);
    }
    if (filled) printf("%s: est_ppl filled in for %ld runs from its quantizer error table\n", out, filled);
    return 0;
}

const cli_cmd cli_cmd_merge = {"merge", "merge result stores (sweep shards) into one", run};
