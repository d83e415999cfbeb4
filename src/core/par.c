/* par.c - par_run (see par.h): a block counter, workers that claim blocks
 * in order, the lowest failing block's error handed to the caller. */
#include "config.h"
#include "core/par.h"
#include "core/err.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct par_state {
    par_fn fn;
    void *ctx;
    int64_t n, grain, nblocks;
    atomic_int_fast64_t next;     /* next block to claim */
    atomic_int_fast64_t fail_blk; /* lowest failing block, INT64_MAX: none */
    pthread_mutex_t lock;         /* guards the error record below */
    int status;                   /* of fail_blk */
    char msg[1024], where[128];   /* its message and location */
} par_state;

typedef struct par_worker {
    par_state *st;
    int id;
} par_worker;

static void work(par_state *st, int id)
{
    for (;;) {
        const int64_t b = atomic_fetch_add(&st->next, 1);
        if (b >= st->nblocks || b > atomic_load(&st->fail_blk)) return;
        const int64_t lo = b * st->grain, hi = lo + st->grain < st->n ? lo + st->grain : st->n;
        const int rc = st->fn(st->ctx, lo, hi, id);
        if (rc == D2_OK) continue;
        pthread_mutex_lock(&st->lock);
        if (b < atomic_load(&st->fail_blk)) {
            atomic_store(&st->fail_blk, b);
            st->status = rc;
            snprintf(st->msg, sizeof st->msg, "%s", d2_err_msg());
            snprintf(st->where, sizeof st->where, "%s", d2_err_where());
        }
        pthread_mutex_unlock(&st->lock);
        return;
    }
}

static void *worker_main(void *arg)
{
    par_worker *w = arg;
    work(w->st, w->id);
    return NULL;
}

/* D2_FAIL_THREAD (par.h): 0 = no injected failure */
static long fail_thread_at(void)
{
    const char *v = getenv("D2_FAIL_THREAD");
    if (!v || !*v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    return *end || n < 1 ? 0 : n;
}

int64_t par_grain(int64_t n, int threads, int per)
{
    if (threads < 1) threads = 1;
    if (per < 1) per = 1;
    int64_t g = n / ((int64_t)threads * per);
    return g < 1 ? 1 : g;
}

int par_run(int threads, int64_t n, int64_t grain, par_fn fn, void *ctx, int *started)
{
    if (started) *started = 0;
    if (threads < 1 || threads > PAR_MAX_THREADS)
        D2_ERROR(D2_ERANGE, "threads: %d is outside 1..%d", threads, PAR_MAX_THREADS);
    if (n < 0 || grain < 1) D2_ERROR(D2_ERANGE, "par_run: %lld items in blocks of %lld", (long long)n, (long long)grain);
    if (n == 0) return D2_OK;
    const int64_t nblocks = (n - 1) / grain + 1;
    if (threads == 1 || nblocks == 1) {
        if (started) *started = 1;
        return fn(ctx, 0, n, 0);
    }
    int nw = nblocks < threads ? (int)nblocks : threads;
    par_state st = {.fn = fn, .ctx = ctx, .n = n, .grain = grain, .nblocks = nblocks, .status = D2_OK};
    atomic_init(&st.next, 0);
    atomic_init(&st.fail_blk, INT64_MAX);
    if (pthread_mutex_init(&st.lock, NULL) != 0) nw = 1; /* no lock: the caller alone, no sharing */
    pthread_t tid[PAR_MAX_THREADS];
    par_worker wk[PAR_MAX_THREADS];
    const long fail_at = fail_thread_at();
    int nt = 1; /* workers running, the caller's thread included */
    for (int i = 1; i < nw; i++) {
        wk[i] = (par_worker){&st, i};
        if ((fail_at && i >= fail_at) || pthread_create(&tid[i], NULL, worker_main, &wk[i]) != 0) break;
        nt++;
    }
    if (nw == 1) {
        /* the mutex could not be made: one worker over every block */
        if (started) *started = 1;
        return fn(ctx, 0, n, 0);
    }
    work(&st, 0);
    for (int i = 1; i < nt; i++) pthread_join(tid[i], NULL);
    pthread_mutex_destroy(&st.lock);
    if (started) *started = nt;
    if (st.status != D2_OK) {
        d2_err_set("%s", st.msg);
        if (st.where[0]) d2_err_where_restore(st.where);
    }
    return st.status;
}
