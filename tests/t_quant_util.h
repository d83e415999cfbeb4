/* t_quant_util.h - shared helpers of the quant tests: synthetic heavy-tailed
 * matrices (seeded GSL), the stories260K checkpoint from $D2_SHARED, and
 * small file writers.  Header-only, included once per test program. */
#ifndef D2_TESTS_T_QUANT_UTIL_H
#define D2_TESTS_T_QUANT_UTIL_H

#include "core/rng.h"
#include "quant/weights.h"

#include <gsl/gsl_randist.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Student-t (nu = 3) entries of scale 0.02, and every 16th column (the
 * outlier input channels seen in real LLM weights) scaled by 8. */
static float *tq_heavy(int64_t rows, int64_t cols, uint64_t seed) __attribute__((unused));
static float *tq_heavy(int64_t rows, int64_t cols, uint64_t seed)
{
    gsl_rng *r = rng_new(seed, 7);
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    for (int64_t i = 0; i < rows * cols; i++) {
        double v = 0.02 * gsl_ran_tdist(r, 3.0);
        if ((i % cols) % 16 == 5) v *= 8.0;
        w[i] = (float)v;
    }
    gsl_rng_free(r);
    return w;
}

static float *tq_gauss(int64_t n, double sigma, uint64_t seed) __attribute__((unused));
static float *tq_gauss(int64_t n, double sigma, uint64_t seed)
{
    gsl_rng *r = rng_new(seed, 3);
    float *w = malloc((size_t)n * sizeof *w);
    for (int64_t i = 0; i < n; i++) w[i] = (float)gsl_ran_gaussian(r, sigma);
    gsl_rng_free(r);
    return w;
}

/* Path of stories260K.bin, or NULL when the shared data is absent. */
static const char *tq_stories(void) __attribute__((unused));
static const char *tq_stories(void)
{
    static char p[4096];
    snprintf(p, sizeof p, "%s/data/weights/stories260K.bin", tap_shared());
    return access(p, R_OK) == 0 ? p : NULL;
}

static char tq_tmp[256];
static const char *tq_tmpdir(void) __attribute__((unused));
static const char *tq_tmpdir(void)
{
    if (!tq_tmp[0]) {
        snprintf(tq_tmp, sizeof tq_tmp, "/tmp/d2quant.XXXXXX");
        if (!mkdtemp(tq_tmp)) { perror("mkdtemp"); exit(1); }
    }
    return tq_tmp;
}

static const char *tq_path(const char *name) __attribute__((unused));
static const char *tq_path(const char *name)
{
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", tq_tmpdir(), name);
    return p[k];
}

static void tq_write(const char *path, const void *data, size_t n) __attribute__((unused));
static void tq_write(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) { perror(path); exit(1); }
    fclose(f);
}

static void tq_cleanup(void) __attribute__((unused));
static void tq_cleanup(void)
{
    if (tq_tmp[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tq_tmp);
        if (system(cmd)) {}
    }
}

#endif
