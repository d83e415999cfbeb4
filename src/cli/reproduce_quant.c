/* reproduce_quant.c - step 1 of `d2moe reproduce`: the MWQ per-level error
 * table that the accuracy estimate reads.  Quantizes a synthetic expert
 * matrix of LLaMA-MoE's expert shape (1376 x 4096; the bit/PPL curve the
 * estimate is fitted to is LLaMA-MoE's) with heavy-tailed entries, with the
 * V1 and V2 presets (MWQ levels 2..8 bits and the rtn-int / msb-slice
 * baselines) and the k-quant nested presets v1k / v2k (method kq-mwq),
 * through the `quantize` command.  Skipped when the store
 * already has an error table. */
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/err.h"
#include "core/fileio.h"
#include "quant/synth.h"
#include "results/db.h"

#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_reproduce_quantize(const char *dbp, const char *workdir, int quick)
{
    (void)quick;
    db *d;
    int rc = db_open(dbp, &d);
    if (rc) return cli_fail(rc);
    int have = 0, have_kq = 0;
    static const char *const q[2] = {"SELECT count(DISTINCT bits) FROM quant_errors WHERE method = 'rtn-int'",
                                     "SELECT count(DISTINCT bits) FROM quant_errors WHERE method = 'kq-mwq'"};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db_handle(d), q[i], -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            *(i ? &have_kq : &have) = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    db_close(d);
    if (have >= 7 && have_kq >= 7) {
        printf("   error table already stored (rtn-int at %d bit-widths, kq-mwq at %d)\n", have, have_kq);
        return 0;
    }
    /* Student-t nu = 3 with every 16th input column x8: the heavy-tailed
     * matrices with outlier columns ../shared/data/README.md asks tests to keep
     * beside the light-tailed stories260K (real experts are heavier-tailed) */
    synth_params p = {1376, 4096, 3.0, 0.02, 16, 8.0, 1};
    float *w;
    if ((rc = synth_heavy_tailed(&p, &w))) return cli_fail(rc);
    char npy[FILEIO_PATH_MAX];
    rc = fileio_pathf(npy, sizeof npy, "%s/synthetic-expert-1376x4096.npy", workdir);
    if (!rc) rc = synth_npy_write(npy, w, p.rows, p.cols);
    free(w);
    if (rc) return cli_fail(rc);
    static const char *const presets[] = {"v1", "v2", "v1k", "v2k"};
    for (int i = 0; i < 4; i++) {
        /* the baselines once, with the paper's presets */
        char *argv[] = {"quantize", "--input", npy, "--format", "npy", "--preset", (char *)presets[i], "--db", (char *)dbp,
                        i < 2 ? NULL : "--no-baselines", NULL};
        optind = 1;
        printf("   quantize %s --preset %s (report in the store's quant_errors)\n", npy, presets[i]);
        fflush(stdout);
        /* the per-tensor report goes to the store; keep the terminal short */
        int saved = dup(1), devnull = open("/dev/null", O_WRONLY);
        if (saved >= 0 && devnull >= 0) dup2(devnull, 1);
        int qrc = cli_cmd_quantize.run(i < 2 ? 9 : 10, argv);
        fflush(stdout);
        if (saved >= 0) { dup2(saved, 1); close(saved); }
        if (devnull >= 0) close(devnull);
        if (qrc) return qrc;
    }
    return 0;
}
