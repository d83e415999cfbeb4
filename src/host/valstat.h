/* valstat.h - the statistics of the sim-vs-real validation: the median of a
 * small sample with a percentile-bootstrap confidence interval (resampling
 * through a GSL generator seeded via core/rng.h, so the same sample and seed
 * give the same interval), and the verdict a bound allows.  It knows nothing
 * of runs, stores or timelines and never prints. */
#ifndef D2_HOST_VALSTAT_H
#define D2_HOST_VALSTAT_H

#include <stdint.h>

/* The median of a sample and its bootstrap interval. */
typedef struct valstat_ci {
    int n;            /* sample size */
    int resamples;    /* bootstrap resamples drawn (0 when n == 1: the interval is the point) */
    double level;     /* confidence level, a fraction (0.95) */
    double median;    /* sample median (mean of the two middle values for even n), sample units */
    double lo, hi;    /* interval: the (1-level)/2 and (1+level)/2 quantiles of the resampled
                         medians (the smallest resampled median whose empirical CDF reaches
                         the level), sample units */
} valstat_ci;

/* The paired error of a prediction: (sim - real) / real; 0 when real <= 0.
 * valstat_error(sim, real - removed) is the error a run would have without
 * `removed` of its time. */
double valstat_error(double sim, double real);

/* Median of x[0..n) (sorts a copy); D2_EINVAL for n < 1, D2_ENOMEM. */
int valstat_median(const double *x, int n, double *out);

/* Percentile bootstrap of the median: `resamples` (>= 100) samples of n
 * drawn with replacement (gsl_rng_uniform_int on rng_new(seed, stream
 * VALSTAT_RNG_STREAM)), level in (0, 1).  n == 1: lo = hi = median. */
#define VALSTAT_RNG_STREAM 18

/* Default gate of a busy machine, percent of the compute CPU other
 * processes may take during a run (`validate --busy-tol`; execute warns
 * above it): the compute thread spins, so the kernel delays it by the CPU
 * time others take there, and at 5% that is at most half the default 10%
 * bound (an argument from the scheduler, docs/host.md). */
#define VALSTAT_BUSY_TOL_PCT 5.0
int valstat_median_ci(const double *x, int n, int resamples, double level, uint64_t seed, valstat_ci *out);

/* What an interval lets one say about |value| <= bound (bound > 0):
 * WITHIN when the whole interval lies in [-bound, bound], OUTSIDE when it
 * lies wholly above bound or wholly below -bound, else CANNOT (the sample
 * is too noisy to decide). */
typedef enum valstat_verdict { VALSTAT_WITHIN, VALSTAT_OUTSIDE, VALSTAT_CANNOT } valstat_verdict;
valstat_verdict valstat_judge(const valstat_ci *ci, double bound);
/* The verdict that holds whatever share of the host's measured time
 * delayed the run.  `measured`: the interval of the paired errors as
 * measured; `host_free`: the interval of the same rounds, in the same order,
 * bootstrapped with the same seed, each round's real makespan less the
 * upper bound of the time the host took from it.  A round's error grows
 * with the time removed, a resample's median with each of its values, and
 * an order statistic of the resampled medians with each of them, so the
 * interval of any removal between none and the upper bound lies between
 * these two ends: WITHIN when both are WITHIN, OUTSIDE when both lie wholly
 * beyond the same side of the bound, else CANNOT (the host's time decides
 * the verdict, or the sample is too noisy). */
valstat_verdict valstat_judge_host(const valstat_ci *measured, const valstat_ci *host_free, double bound);
/* "within", "outside", "cannot conclude" */
const char *valstat_verdict_name(valstat_verdict v);

#endif
