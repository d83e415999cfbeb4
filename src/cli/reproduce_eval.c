/* reproduce_eval.c - the measured-accuracy step of `d2moe reproduce`: runs
 * `d2moe eval` on the real stories260K checkpoint (../shared/data/weights)
 * into the results store, so that the figure evalq and the table of
 * measured KL beside est_ppl come out of the same run.  Skipped, with one line
 * saying why, when the checkpoint is absent.  Sequencing only. */
#include "cli/cli.h"
#include "cli/reproduce.h"

#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

int cli_reproduce_eval(const char *dbp, int quick)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/../shared/data/weights/stories260K.bin", D2_SRCDIR);
    if (access(path, R_OK) != 0) {
        printf("   skipped: %s is absent (the measured accuracy needs a trained llama2.c checkpoint)\n", path);
        return 0;
    }
    char *argv[] = {"eval", "--input", path, "--db", (char *)dbp, "--seqs", quick ? "8" : "16", "--len", quick ? "64" : "128", NULL};
    optind = 1;
    fflush(stdout);
    return cli_cmd_eval.run(9, argv);
}
