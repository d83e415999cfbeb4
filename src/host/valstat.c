/* valstat.c - median, bootstrap interval and verdict (see valstat.h). */
#include "host/valstat.h"
#include "core/err.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_sorted(const double *s, int n) { return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; }

double valstat_error(double sim, double real) { return real > 0 ? (sim - real) / real : 0; }

int valstat_median(const double *x, int n, double *out)
{
    if (n < 1) D2_ERROR(D2_EINVAL, "median of an empty sample");
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "median: out of memory");
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    *out = median_sorted(s, n);
    free(s);
    return D2_OK;
}

/* type-1 quantile: the smallest v with (number of values <= v) / B >= p */
static double quantile_sorted(const double *s, int B, double p)
{
    double k = ceil(p * B - 1e-9);
    long i = (long)k - 1;
    if (i < 0) i = 0;
    if (i > B - 1) i = B - 1;
    return s[i];
}

int valstat_median_ci(const double *x, int n, int resamples, double level, uint64_t seed, valstat_ci *out)
{
    memset(out, 0, sizeof *out);
    if (n < 1) D2_ERROR(D2_EINVAL, "bootstrap of an empty sample");
    if (!(level > 0 && level < 1)) D2_ERROR(D2_EINVAL, "bootstrap: level %g not in (0, 1)", level);
    if (resamples < 100) D2_ERROR(D2_EINVAL, "bootstrap: %d resamples (at least 100)", resamples);
    out->n = n;
    out->level = level;
    D2_TRY(valstat_median(x, n, &out->median));
    if (n == 1) {
        out->lo = out->hi = out->median;
        return D2_OK;
    }
    double *med = malloc((size_t)resamples * sizeof *med), *tmp = malloc((size_t)n * sizeof *tmp);
    gsl_rng *g = rng_new(seed, VALSTAT_RNG_STREAM);
    if (!med || !tmp || !g) {
        free(med);
        free(tmp);
        if (g) gsl_rng_free(g);
        D2_ERROR(D2_ENOMEM, "bootstrap: out of memory");
    }
    for (int b = 0; b < resamples; b++) {
        for (int i = 0; i < n; i++) tmp[i] = x[gsl_rng_uniform_int(g, (unsigned long)n)];
        qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
        med[b] = median_sorted(tmp, n);
    }
    qsort(med, (size_t)resamples, sizeof *med, cmp_double);
    out->resamples = resamples;
    out->lo = quantile_sorted(med, resamples, (1 - level) / 2);
    out->hi = quantile_sorted(med, resamples, (1 + level) / 2);
    gsl_rng_free(g);
    free(med);
    free(tmp);
    return D2_OK;
}

valstat_verdict valstat_judge(const valstat_ci *ci, double bound)
{
    if (ci->lo >= -bound && ci->hi <= bound) return VALSTAT_WITHIN;
    if (ci->lo > bound || ci->hi < -bound) return VALSTAT_OUTSIDE;
    return VALSTAT_CANNOT;
}

valstat_verdict valstat_judge_host(const valstat_ci *measured, const valstat_ci *host_free, double bound)
{
    valstat_verdict a = valstat_judge(measured, bound), b = valstat_judge(host_free, bound);
    if (a != b) return VALSTAT_CANNOT;
    if (a == VALSTAT_OUTSIDE && (measured->hi < -bound) != (host_free->hi < -bound)) return VALSTAT_CANNOT; /* opposite sides */
    return a;
}

const char *valstat_verdict_name(valstat_verdict v)
{
    switch (v) {
    case VALSTAT_WITHIN: return "within";
    case VALSTAT_OUTSIDE: return "outside";
    default: return "cannot conclude";
    }
}
