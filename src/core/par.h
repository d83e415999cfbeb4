/* par.h - run one function over the blocks of a range [0, n) on up to N
 * threads (pthreads, created per call, the caller's thread is worker 0),
 * blocks claimed in increasing order.  For work whose items are independent
 * (rows of a matrix): results never depend on the split.  Not a pool, not a
 * scheduler: no allocation, no state kept between calls; callers give each
 * worker its own scratch (indexed by the worker number) before calling.
 *
 * Errors: a failing call stops its worker; blocks above the lowest failing
 * block are skipped, blocks below it all run, so the status and message
 * handed back (to the calling thread) are those of the lowest failing block,
 * the same as a one-thread run's.  A thread that cannot be created is not an
 * error: the blocks are shared among the workers that did start.
 *
 * Test hook: the environment variable D2_FAIL_THREAD=n (n >= 1) makes the
 * n-th thread creation of every par_run call, and each one after it, fail as
 * if pthread_create had returned EAGAIN (tests/t_core.c, tests/quant.sh). */
#ifndef D2_CORE_PAR_H
#define D2_CORE_PAR_H

#include <stdint.h>

#define PAR_MAX_THREADS 256 /* threads of one call, the caller's included */

/* Items [lo, hi) on worker `worker` (0 .. threads-1, one thread each).
 * Returns a d2_status; on failure it leaves the message (d2_err_set). */
typedef int (*par_fn)(void *ctx, int64_t lo, int64_t hi, int worker);

/* Run fn over [0, n) in blocks of `grain` items (the last may be short) on
 * up to `threads` workers (1..PAR_MAX_THREADS; more than the blocks: one per
 * block).  threads = 1 or a single block: fn(ctx, 0, n, 0) on the calling
 * thread.  *started (may be NULL): workers that ran, the caller included.
 * D2_ERANGE for a bad threads, n or grain; otherwise fn's first failure. */
int par_run(int threads, int64_t n, int64_t grain, par_fn fn, void *ctx, int *started);

/* A grain giving about `per` blocks per thread (at least 1 item). */
int64_t par_grain(int64_t n, int threads, int per);

#endif
