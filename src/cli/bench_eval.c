/* bench_eval.c - `d2moe bench eval`: tokens/s of the llama2.c forward pass
 * (src/eval) on stories260K's shape: FP32 (the reference's sampling), a
 * quantized FFN through dequantized FP32 weights, and through the MWQ
 * kernels (int8 activations).  Reads ../shared/data/weights/stories260K.bin
 * when present, else a synthetic checkpoint of the same shape (speed only:
 * no accuracy is reported).  Best of 3. */
#include "cli/cli.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fileio.h"
#include "eval/evalq.h"
#include "eval/llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int bench_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char path[FILEIO_PATH_MAX], tmp[64] = "";
    int rc = fileio_pathf(path, sizeof path, "%s/../shared/data/weights/stories260K.bin", D2_SRCDIR);
    if (rc) return cli_fail(rc);
    if (access(path, R_OK) != 0) {
        snprintf(tmp, sizeof tmp, "/tmp/d2moe-bench-eval.%ld.bin", (long)getpid());
        llm_config c;
        llm_config_synth_default(&c);
        if ((rc = llm_synth_write(tmp, &c, 1))) return cli_fail(rc);
        snprintf(path, sizeof path, "%s", tmp);
    }
    llm_model *m;
    rc = llm_model_load(path, &m);
    if (tmp[0]) unlink(tmp);
    if (rc) return cli_fail(rc);
    printf("checkpoint: %s (%s)\n", tmp[0] ? "synthetic, stories260K's shape" : path, "16 sequences x 128 tokens, batch = 16");
    evalq_opts o = {.seqs = 16, .len = 128, .seed = 1};
    const double tokens = 16.0 * 128.0;
    double best = 1e30;
    evalq_ref *ref = NULL;
    for (int r = 0; r < 3; r++) {
        evalq_ref_free(ref);
        double t0 = clock_mono_s();
        if ((rc = evalq_ref_sample(m, &o, &ref))) { llm_model_free(m); return cli_fail(rc); }
        double t = clock_mono_s() - t0;
        if (t < best) best = t;
    }
    printf("  %-44s %9.0f tokens/s\n", "FP32 forward + sampling", tokens / best);
    evalq_row row = {.preset = "v1", .method = "mwq"};
    for (int p = 0; p < 2; p++) {
        double tl[KERN_MAX_LEVELS] = {0};
        for (int r = 0; r < 3; r++) {
            evalq_result res[KERN_MAX_LEVELS];
            size_t n;
            if ((rc = evalq_row_run(m, ref, &row, 1, p ? EVALQ_PATH_KERNEL : EVALQ_PATH_DEQUANT, res, &n))) break;
            for (size_t k = 0; k < n; k++)
                if (r == 0 || res[k].seconds < tl[k]) tl[k] = res[k].seconds;
        }
        if (rc) break;
        for (int k = 0; k < 3; k++) {
            char what[64];
            snprintf(what, sizeof what, "v1 MWQ level %d FFN, %s + KL", k + 1, p ? "kernel (int8 act.)" : "dequant FP32");
            printf("  %-44s %9.0f tokens/s\n", what, tokens / tl[k]);
        }
    }
    evalq_ref_free(ref);
    llm_model_free(m);
    return rc ? cli_fail(rc) : 0;
}
