/* reproduce_eval.c - the measured-accuracy step of `d2moe reproduce`: runs
 * `d2moe eval` on the real stories260K checkpoint (../shared/data/weights)
 * into the results store, so that the figure evalq and the table of
 * measured KL beside est_ppl come out of the same run.  Skipped, with one line
 * saying why, when the checkpoint is absent, and when the store already holds
 * this code version's eval runs of it.  The shared folder is $D2_SHARED when
 * set (as in `make check`), else ../shared beside the source tree. */
#include "cli/cli.h"
#include "cli/reproduce.h"
#include "core/version.h"
#include "core/err.h"
#include "core/fileio.h"
#include "results/db.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int cli_reproduce_eval(const char *dbp, int quick)
{
    char path[FILEIO_PATH_MAX];
    const char *sh = getenv("D2_SHARED");
    int prc = sh && *sh ? fileio_pathf(path, sizeof path, "%s/data/weights/stories260K.bin", sh)
                        : fileio_pathf(path, sizeof path, "%s/../shared/data/weights/stories260K.bin", D2_SRCDIR);
    if (prc) return cli_fail(prc);
    if (access(path, R_OK) != 0) {
        printf("   skipped: %s is absent (the measured accuracy needs a trained llama2.c checkpoint)\n", path);
        return 0;
    }
    const char *seqs = quick ? "8" : "16", *len = quick ? "64" : "128";
    db *d;
    int have = 0;
    if (db_open(dbp, &d) == D2_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db_handle(d),
                               "SELECT count(*) FROM runs r JOIN params c ON c.run_id = r.id AND c.key = 'eval.checkpoint'"
                               " JOIN params n ON n.run_id = r.id AND n.key = 'eval.seqs'"
                               " JOIN params t ON t.run_id = r.id AND t.key = 'eval.len'"
                               " WHERE r.kind = 'eval' AND r.status = 'ok' AND r.code_version = ?1"
                               "   AND c.value = 'stories260K.bin' AND n.value = ?2 AND t.value = ?3",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, d2_version(), -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, seqs, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, len, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
        db_close(d);
    }
    if (have > 0) {
        printf("   already stored (%d eval runs of stories260K.bin for this code version)\n", have);
        return 0;
    }
    char *argv[] = {"eval", "--input", path, "--db", (char *)dbp, "--seqs", (char *)seqs, "--len", (char *)len, NULL};
    optind = 1;
    fflush(stdout);
    return cli_cmd_eval.run(9, argv);
}
