/* calib.c - measurements of this machine (see calib.h).  Storage: a nameless
 * temporary file written with O_DIRECT (or buffered + fdatasync when the
 * filesystem refuses O_DIRECT), then timed reads that bypass the page cache,
 * fitted by GSL weighted least squares.  Memory and compute: timed loops. */
#define _GNU_SOURCE
#include "host/calib.h"
#include "host/cpupin.h"
#include "host/hostwatch.h"
#include "host/iobuf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "quant/kern.h"
#include "quant/mwq.h"
#include "quant/swiglu.h"

#include <errno.h>
#include <fcntl.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_fit.h>
#include <gsl/gsl_randist.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ALIGN 4096

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double calib_median(const double *x, int n)
{
    double buf[256], *c = n <= 256 ? buf : malloc((size_t)n * sizeof *c);
    if (!c) return x[0];
    memcpy(c, x, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    if (c != buf) free(c);
    return m;
}

void calib_stalls(const double *t, int n, double median, double factor, int64_t *count, double *sum)
{
    *count = 0;
    *sum = 0;
    for (int i = 0; i < n; i++)
        if (t[i] > factor * median) {
            (*count)++;
            *sum += t[i];
        }
}

void calib_io_opts_init(calib_io_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->dir, sizeof o->dir, ".");
    o->file_bytes = 1LL << 30;
    o->min_read = 4096;
    o->max_read = 64LL << 20;
    o->buf_pool_bytes = 128LL << 20;
    o->bytes_per_size = 128LL << 20;
    o->size_step = 2.0;
    o->min_reps = 5;
    o->max_reps = 200;
    o->fresh_buffers = 0;
    o->seed = 7;
    o->reader_cpu = CPUPIN_NONE;
    o->fit_mean = 1;
}


/* The reason of an errno, in words a user acts on. */
static const char *why(int e)
{
    switch (e) {
    case EROFS: return "read-only file system";
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EFBIG: return "file size limit exceeded";
    case EACCES: case EPERM: return "permission denied";
    case ENOENT: return "no such file or directory";
    case ENOTDIR: return "not a directory";
    default: return strerror(e);
    }
}

/* A nameless file in dir: O_TMPFILE where the filesystem has it, else
 * mkstemp and unlink at once.  *direct = 1 when O_DIRECT was accepted. */
static int open_tmp(const char *dir, int *fd_out, int *direct, char *method, size_t mn)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0600);
    if (fd >= 0) { *direct = 1; snprintf(method, mn, "O_TMPFILE"); *fd_out = fd; return D2_OK; }
    int e = errno;
    if (e == EINVAL) { /* O_DIRECT refused (tmpfs on older kernels) */
        fd = open(dir, O_TMPFILE | O_RDWR, 0600);
        if (fd >= 0) { *direct = 0; snprintf(method, mn, "O_TMPFILE"); *fd_out = fd; return D2_OK; }
        e = errno;
    }
    if (e == EROFS || e == EACCES || e == EPERM || e == ENOENT || e == ENOTDIR || e == ENOSPC || e == EDQUOT)
        D2_ERROR(D2_EIO, "%s: cannot create the calibration file: %s", dir, why(e));
    /* no O_TMPFILE support: a named file, unlinked before any data is written */
    char path[FILEIO_PATH_MAX];
    D2_TRY(fileio_pathf(path, sizeof path, "%s/.d2moe-calib.XXXXXX", dir));
    fd = mkstemp(path);
    if (fd < 0) D2_ERROR(D2_EIO, "%s: cannot create the calibration file: %s", dir, why(errno));
    unlink(path);
    snprintf(method, mn, "mkstemp+unlink");
    int fl = fcntl(fd, F_GETFL);
    *direct = fl >= 0 && fcntl(fd, F_SETFL, fl | O_DIRECT) == 0;
    *fd_out = fd;
    return D2_OK;
}

static int write_file(int fd, const calib_io_opts *o, int direct, double *bw);

/* The file the reads come from: o->read_file when set (an existing file,
 * opened read-only with O_DIRECT where the filesystem takes it, else read
 * with POSIX_FADV_DONTNEED before each read; nothing written, *wbw = 0),
 * else a nameless temporary file of o->file_bytes in o->dir, written first
 * (*wbw its write rate).  *bytes: how many bytes reads may span (the file's
 * size rounded down to 4 KiB). */
static int open_data(const calib_io_opts *o, int *fd_out, int *direct, int64_t *bytes, char *method, size_t mn, double *wbw)
{
    *wbw = 0;
    if (!o->read_file[0]) {
        D2_TRY(open_tmp(o->dir, fd_out, direct, method, mn));
        *bytes = o->file_bytes;
        int rc = write_file(*fd_out, o, *direct, wbw);
        if (rc) { close(*fd_out); *fd_out = -1; }
        return rc;
    }
    int fd = open(o->read_file, O_RDONLY | O_DIRECT);
    *direct = fd >= 0;
    if (fd < 0 && errno == EINVAL) fd = open(o->read_file, O_RDONLY); /* O_DIRECT refused: fadvise before each read */
    if (fd < 0) D2_ERROR(D2_EIO, "%s: cannot read the calibration file: %s", o->read_file, why(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        D2_ERROR(D2_EINVAL, "%s: --read-file: not a regular file", o->read_file);
    }
    *bytes = (int64_t)st.st_size / ALIGN * ALIGN;
    snprintf(method, mn, "existing file");
    *fd_out = fd;
    return D2_OK;
}

static void fill_random(uint64_t *p, size_t words, uint64_t *state)
{
    uint64_t x = *state;
    for (size_t i = 0; i < words; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p[i] = x;
    }
    *state = x;
}

static int write_file(int fd, const calib_io_opts *o, int direct, double *bw)
{
    const size_t chunk = 4u << 20;
    void *buf;
    if (posix_memalign(&buf, ALIGN, chunk)) D2_ERROR(D2_ENOMEM, "calibration: out of memory (4 MiB buffer)");
    uint64_t st = o->seed * 0x9E3779B97F4A7C15ULL + 1;
    int64_t t0 = clock_mono_ns();
    for (int64_t off = 0; off < o->file_bytes; off += (int64_t)chunk) {
        size_t n = (size_t)(o->file_bytes - off < (int64_t)chunk ? o->file_bytes - off : (int64_t)chunk);
        fill_random(buf, chunk / 8, &st);
        size_t done = 0;
        while (done < n) {
            ssize_t w = pwrite(fd, (char *)buf + done, n - done, off + (off_t)done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                int e = w < 0 ? errno : ENOSPC;
                free(buf);
                D2_ERROR(D2_EIO, "%s: cannot write the %lld-byte calibration file: %s", o->dir,
                         (long long)o->file_bytes, why(e));
            }
            done += (size_t)w;
        }
    }
    free(buf);
    if (fdatasync(fd) != 0)
        D2_ERROR(D2_EIO, "%s: cannot write the calibration file: %s", o->dir, why(errno));
    int64_t t1 = clock_mono_ns();
    *bw = (double)o->file_bytes / ((double)(t1 - t0) * 1e-9);
    if (!direct) /* drop what the buffered writes left in the page cache */
        posix_fadvise(fd, 0, o->file_bytes, POSIX_FADV_DONTNEED);
    return D2_OK;
}

int calib_io_fit(calib_io_result *r)
{
    if (r->n < 2) D2_ERROR(D2_EINVAL, "calibration: need at least two read sizes to fit");
    double x[CALIB_MAX_SIZES], y[CALIB_MAX_SIZES], w[CALIB_MAX_SIZES];
    for (int i = 0; i < r->n; i++) {
        x[i] = (double)r->pt[i].size;
        y[i] = r->fit_mean ? r->pt[i].mean_ns : r->pt[i].median_ns;
        if (!(y[i] > 0)) D2_ERROR(D2_EINTERNAL, "calibration: read of %lld bytes took no time", (long long)r->pt[i].size);
        w[i] = 1.0 / (y[i] * y[i]);
    }
    double c0, c1, cov00, cov01, cov11, chisq;
    int rc = gsl_fit_wlinear(x, 1, w, 1, y, 1, (size_t)r->n, &c0, &c1, &cov00, &cov01, &cov11, &chisq);
    if (rc != GSL_SUCCESS) D2_ERROR(D2_EINTERNAL, "calibration: the storage fit failed: %s", gsl_strerror(rc));
    if (!(c1 > 0))
        D2_ERROR(D2_ERANGE, "calibration: read time does not grow with read size (slope %g ns/byte): "
                            "the page cache was not bypassed or the machine is too noisy", c1);
    if (c0 < 0) { /* latency cannot be negative: refit the slope through the origin */
        double s = 0, ww = 0;
        for (int i = 0; i < r->n; i++) { s += w[i] * x[i] * y[i]; ww += w[i] * x[i] * x[i]; }
        c0 = 0;
        c1 = s / ww;
    }
    r->lat_ns = c0;
    r->bw = 1e9 / c1;
    r->max_rel_err = 0;
    for (int i = 0; i < r->n; i++) {
        r->pt[i].fit_ns = c0 + c1 * x[i];
        double e = fabs(r->pt[i].fit_ns - y[i]) / y[i];
        if (e > r->max_rel_err) r->max_rel_err = e;
    }
    return D2_OK;
}

static int timed_read(int fd, int direct, int fresh, void *reuse, int64_t size, int64_t off, double *ns)
{
    void *buf = reuse;
    if (!direct) posix_fadvise(fd, off, size, POSIX_FADV_DONTNEED);
    int64_t t0 = clock_mono_ns();
    if (fresh && posix_memalign(&buf, ALIGN, (size_t)size)) D2_ERROR(D2_ENOMEM, "calibration: out of memory");
    int64_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (char *)buf + done, (size_t)(size - done), off + done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            if (fresh) free(buf);
            D2_ERROR(D2_EIO, "calibration: read of %lld bytes failed: %s", (long long)size, strerror(e));
        }
        done += n;
    }
    if (fresh) free(buf);
    *ns = (double)(clock_mono_ns() - t0);
    return D2_OK;
}

int calib_io_measure(const calib_io_opts *o, calib_io_result *r)
{
    memset(r, 0, sizeof *r);
    if (o->min_read % ALIGN || o->min_read < ALIGN || o->max_read < o->min_read || !(o->size_step >= 1.05 && o->size_step <= 16))
        D2_ERROR(D2_EINVAL, "calibration: read sizes must be multiples of %d with min <= max, and the size step 1.05..16", ALIGN);
    if (!o->read_file[0] && (o->file_bytes < 2 * o->max_read || o->file_bytes % ALIGN))
        D2_ERROR(D2_EINVAL, "calibration: the file size %lld must be a multiple of 4 KiB and at least twice the "
                            "largest read (%lld bytes)", (long long)o->file_bytes, (long long)o->max_read);
    if (o->min_reps < 1 || o->max_reps < o->min_reps || o->max_reps > 100000)
        D2_ERROR(D2_EINVAL, "calibration: repetitions must satisfy 1 <= min <= max <= 100000");
    {
        int cnt = 0;
        for (int64_t s = o->min_read; s <= o->max_read; s = ((int64_t)ceil((double)s * o->size_step) + ALIGN - 1) / ALIGN * ALIGN)
            cnt++;
        if (cnt > CALIB_MAX_SIZES)
            D2_ERROR(D2_EINVAL, "calibration: %d read sizes from %lld to %lld bytes a factor %g apart, at most %d: "
                                "raise --size-step or narrow the range", cnt, (long long)o->min_read, (long long)o->max_read,
                     o->size_step, CALIB_MAX_SIZES);
    }
    struct stat st;
    if (stat(o->dir, &st) != 0) D2_ERROR(D2_EIO, "%s: %s", o->dir, why(errno));
    if (!S_ISDIR(st.st_mode)) D2_ERROR(D2_EIO, "%s: not a directory", o->dir);

    int fd, direct;
    int64_t fbytes;
    D2_TRY(open_data(o, &fd, &direct, &fbytes, r->tmpfile, sizeof r->tmpfile, &r->write_bw));
    snprintf(r->cache_bypass, sizeof r->cache_bypass, "%s", direct ? "O_DIRECT" : "POSIX_FADV_DONTNEED");
    r->file_bytes = fbytes;
    r->fit_mean = o->fit_mean;
    if (fbytes < 2 * o->max_read) {
        close(fd);
        D2_ERROR(D2_EINVAL, "%s: --read-file: %lld bytes, less than twice the largest read (%lld bytes): lower --max-read",
                 o->read_file, (long long)fbytes, (long long)o->max_read);
    }
    int rc;

    /* sizes and repetitions */
    int nsz = 0, reps[CALIB_MAX_SIZES], total = 0;
    for (int64_t s = o->min_read; s <= o->max_read;
         s = ((int64_t)ceil((double)s * o->size_step) + ALIGN - 1) / ALIGN * ALIGN) {
        if (nsz == CALIB_MAX_SIZES) break; /* refused above, before the file */
        int64_t k = o->bytes_per_size / s;
        reps[nsz] = (int)(k < o->min_reps ? o->min_reps : k > o->max_reps ? o->max_reps : k);
        r->pt[nsz].size = s;
        total += reps[nsz];
        nsz++;
    }
    r->n = nsz;
    /* an interleaved schedule: every size's reads spread over the whole run */
    int *order = malloc((size_t)total * sizeof *order);
    double *times = malloc((size_t)total * sizeof *times);
    /* the reads' buffer: the kind of memory execute's weight pool is
     * (host/iobuf.h: the page size under it sets a read's speed) */
    const size_t pool = (size_t)(o->buf_pool_bytes > o->max_read ? o->buf_pool_bytes : o->max_read);
    void *reuse = NULL;
    if (!order || !times || iobuf_alloc(pool, &reuse) != D2_OK) {
        free(order); free(times); close(fd);
        D2_ERROR(D2_ENOMEM, "calibration: out of memory");
    }
    r->buf_bytes = (int64_t)pool;
    if (iobuf_huge_bytes(reuse, pool, &r->buf_huge_bytes) != D2_OK) r->buf_huge_bytes = -1;
    size_t at = 0; /* where the next read lands in the pool */
    int left[CALIB_MAX_SIZES], base[CALIB_MAX_SIZES];
    for (int i = 0, b = 0; i < nsz; i++) { left[i] = reps[i]; base[i] = b; b += reps[i]; }
    gsl_rng *g = rng_new(o->seed, 0x10);
    if (!g) { free(order); free(times); iobuf_free(reuse, pool); close(fd); D2_ERROR(D2_ENOMEM, "calibration: out of memory"); }
    for (int j = 0; j < total; j++) { /* pick a size with probability proportional to its remaining reads */
        int64_t remaining = total - j, u = (int64_t)gsl_rng_uniform_int(g, (unsigned long)remaining), i = 0;
        while (i < nsz - 1 && u >= left[i]) u -= left[i++];
        while (!left[i]) i++;
        order[j] = (int)i;
        left[i]--;
    }
    int done_i[CALIB_MAX_SIZES] = {0};
    rc = D2_OK;
    for (int j = 0; j < total && rc == D2_OK; j++) {
        int i = order[j];
        int64_t s = r->pt[i].size, slots = (fbytes - s) / ALIGN + 1;
        int64_t off = (int64_t)gsl_rng_uniform_int(g, (unsigned long)slots) * ALIGN;
        if (off + s > fbytes) off = fbytes - s;
        double ns = 0;
        if (at + (size_t)s > pool) at = 0;
        rc = timed_read(fd, direct, o->fresh_buffers, (char *)reuse + at, s, off, &ns);
        at += (size_t)((s + ALIGN - 1) / ALIGN * ALIGN);
        times[base[i] + done_i[i]++] = ns;
    }
    gsl_rng_free(g);
    iobuf_free(reuse, pool);
    close(fd); /* the file had no name: closing frees it */
    if (rc == D2_OK) {
        for (int i = 0; i < nsz; i++) {
            calib_io_point *p = &r->pt[i];
            double *t = times + base[i];
            p->reps = reps[i];
            p->median_ns = calib_median(t, reps[i]);
            int64_t ns_cnt = 0;
            double ns_sum = 0, all = 0;
            calib_stalls(t, reps[i], p->median_ns, CALIB_STALL_FACTOR, &ns_cnt, &ns_sum);
            for (int k = 0; k < reps[i]; k++) all += t[k];
            p->mean_ns = (all - ns_sum) / (double)(reps[i] - ns_cnt); /* the stalls are at most half: median <= them */
            r->reads += reps[i];
            r->stalls += ns_cnt;
            r->stall_ns += ns_sum;
            p->min_ns = p->max_ns = t[0];
            for (int k = 1; k < reps[i]; k++) {
                if (t[k] < p->min_ns) p->min_ns = t[k];
                if (t[k] > p->max_ns) p->max_ns = t[k];
            }
        }
        rc = calib_io_fit(r);
    }
    free(order);
    free(times);
    return rc;
}

/* ---- memory bandwidth ------------------------------------------------ */

typedef struct membw_job {
    const uint64_t *p;       /* start of this thread's share */
    size_t words;            /* 8-byte words in the share */
    uint64_t sum;            /* result, so the loads are not optimised away */
    int64_t t0, t1;          /* this thread's start and end, ns (monotonic) */
    pthread_barrier_t *bar;  /* all threads start together */
} membw_job;

static uint64_t sum_words(const uint64_t *p, size_t n)
{
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3];
        a4 += p[i + 4]; a5 += p[i + 5]; a6 += p[i + 6]; a7 += p[i + 7];
    }
    for (; i < n; i++) a0 += p[i];
    return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

static void *membw_thread(void *arg)
{
    membw_job *j = arg;
    pthread_barrier_wait(j->bar);
    j->t0 = clock_mono_ns();
    j->sum = sum_words(j->p, j->words);
    j->t1 = clock_mono_ns();
    return NULL;
}

int calib_mem_bw(int64_t bytes, int threads, int reps, double *bw)
{
    if (bytes < (1 << 20) || threads < 1 || threads > 256 || reps < 1 || reps > 1000)
        D2_ERROR(D2_EINVAL, "memory bandwidth: need bytes >= 1 MiB, 1..256 threads, 1..1000 passes");
    size_t words = (size_t)bytes / 8;
    uint64_t *p;
    if (posix_memalign((void **)&p, 64, words * 8)) D2_ERROR(D2_ENOMEM, "memory bandwidth: cannot allocate %lld bytes", (long long)bytes);
    for (size_t i = 0; i < words; i++) p[i] = i * 0x9E3779B97F4A7C15ULL; /* touch every page */
    double *t = malloc((size_t)reps * sizeof *t);
    membw_job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!t || !jobs || !tid) { free(p); free(t); free(jobs); free(tid); D2_ERROR(D2_ENOMEM, "memory bandwidth: out of memory"); }
    volatile uint64_t sink = 0;
    int rc = D2_OK;
    for (int r = 0; r < reps && rc == D2_OK; r++) {
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
        size_t share = words / (size_t)threads;
        int started = 0;
        for (int i = 0; i < threads; i++) {
            jobs[i] = (membw_job){p + (size_t)i * share, i == threads - 1 ? words - (size_t)i * share : share, 0, 0, 0, &bar};
            if (pthread_create(&tid[i], NULL, membw_thread, &jobs[i]) != 0) { rc = D2_EIO; break; }
            started++;
        }
        if (rc) { /* release the ones that started; they wait on the barrier */
            pthread_barrier_destroy(&bar);
            for (int i = 0; i < started; i++) pthread_cancel(tid[i]), pthread_join(tid[i], NULL);
            break;
        }
        pthread_barrier_wait(&bar);
        int64_t t0 = INT64_MAX, t1 = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            sink += jobs[i].sum;
            if (jobs[i].t0 < t0) t0 = jobs[i].t0;
            if (jobs[i].t1 > t1) t1 = jobs[i].t1;
        }
        t[r] = (double)(t1 - t0); /* first start to last end */
        pthread_barrier_destroy(&bar);
    }
    (void)sink;
    if (rc == D2_OK) *bw = (double)(words * 8) / (calib_median(t, reps) * 1e-9);
    free(p); free(t); free(jobs); free(tid);
    if (rc) D2_ERROR(D2_EIO, "memory bandwidth: cannot start a thread");
    return D2_OK;
}

/* ---- compute -------------------------------------------------------- */

int calib_gemm_rate(int64_t rows, int64_t cols, int tokens, int reps, double *flops)
{
    if (rows < 1 || cols < 1 || tokens < 1 || tokens > 4096 || reps < 1 || reps > 1000 || rows * cols > (1LL << 28))
        D2_ERROR(D2_EINVAL, "GEMM rate: bad shape %lld x %lld, %d tokens, %d passes", (long long)rows,
                 (long long)cols, tokens, reps);
    float *w = malloc((size_t)(rows * cols) * sizeof *w);
    float *x = malloc((size_t)(cols * tokens) * sizeof *x);
    float *y = malloc((size_t)(rows * tokens) * sizeof *y);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!w || !x || !y || !t) { free(w); free(x); free(y); free(t); D2_ERROR(D2_ENOMEM, "GEMM rate: out of memory"); }
    for (int64_t i = 0; i < rows * cols; i++) w[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (int64_t i = 0; i < cols * tokens; i++) x[i] = (float)(i % 17) * 0.1f;
    for (int r = 0; r < reps; r++) {
        int64_t t0 = clock_mono_ns();
        for (int64_t i = 0; i < rows; i++) {
            const float *wr = w + i * cols;
            for (int k = 0; k < tokens; k++) {
                const float *xk = x + (int64_t)k * cols;
                float a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
                int64_t c = 0;
                for (; c + 8 <= cols; c += 8) {
                    a0 += wr[c] * xk[c]; a1 += wr[c + 1] * xk[c + 1]; a2 += wr[c + 2] * xk[c + 2];
                    a3 += wr[c + 3] * xk[c + 3]; a4 += wr[c + 4] * xk[c + 4]; a5 += wr[c + 5] * xk[c + 5];
                    a6 += wr[c + 6] * xk[c + 6]; a7 += wr[c + 7] * xk[c + 7];
                }
                for (; c < cols; c++) a0 += wr[c] * xk[c];
                y[(int64_t)k * rows + i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
            }
        }
        t[r] = (double)(clock_mono_ns() - t0);
    }
    volatile float sink = y[0] + y[rows * tokens - 1];
    (void)sink;
    *flops = 2.0 * (double)rows * (double)cols * tokens / (calib_median(t, reps) * 1e-9);
    free(w); free(x); free(y); free(t);
    return D2_OK;
}

/* ---- MWQ kernels ---------------------------------------------------- */

/* One synthetic expert (gate, up: ffn x hidden; down: hidden x ffn), weights
 * N(0, 0.02^2) from g, quantized with c: what the kernel fits and the probe
 * time (the same seed, so the probe runs the expert the fits measured). */
#define CALIB_EXPERT_SEED 11
#define CALIB_EXPERT_STREAM 0x6b65726e
static int expert_quantize(int64_t hidden, int64_t ffn, const mwq_config *c, gsl_rng *g, mwq_matrix *q[3])
{
    const int64_t rows[3] = {ffn, ffn, hidden}, cols[3] = {hidden, hidden, ffn};
    float *w = malloc((size_t)(hidden * ffn) * sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "kernel rates: out of memory");
    int rc = D2_OK;
    for (int m = 0; m < 3 && rc == D2_OK; m++) {
        for (int64_t i = 0; i < rows[m] * cols[m]; i++) w[i] = (float)(0.02 * gsl_ran_gaussian_ziggurat(g, 1.0));
        rc = mwq_matrix_quantize(w, rows[m], cols[m], c, NULL, 0, &q[m]);
    }
    free(w);
    return rc;
}

/* t = a + b T through (tokens, ns) by weighted least squares (weights
 * 1/t^2, GSL). */
static int kern_fit(const int *tokens, const double *ns, int nt, double *a, double *b)
{
    double xs[CALIB_MAX_T], ws[CALIB_MAX_T], c0, c1, v00, v01, v11, chi;
    for (int i = 0; i < nt; i++) {
        xs[i] = tokens[i];
        ws[i] = 1.0 / (ns[i] * ns[i]);
    }
    int grc = gsl_fit_wlinear(xs, 1, ws, 1, ns, 1, (size_t)nt, &c0, &c1, &v00, &v01, &v11, &chi);
    *a = c0;
    *b = c1;
    if (grc != GSL_SUCCESS) D2_ERROR(D2_EINTERNAL, "kernel rates: fit failed: %s", gsl_strerror(grc));
    return D2_OK;
}

int calib_swiglu_rates(const calib_kern_result *r, int n, double *gu, double *dn, double *epi)
{
    for (int k = 0; k < r->levels && k < n; k++) {
        if (!(r->gu_b_ns[k] > 0) || !(r->dn_b_ns[k] > 0))
            D2_ERROR(D2_ERANGE, "calibrate: level %d: gate/up or down time does not grow with tokens (machine too noisy?)",
                     k + 1);
        gu[k] = (double)r->gu_weights / (r->gu_b_ns[k] * 1e-9);
        dn[k] = (double)r->dn_weights / (r->dn_b_ns[k] * 1e-9);
    }
    if (!(r->epi_ns > 0)) D2_ERROR(D2_ERANGE, "calibrate: the SwiGLU epilogue took no time");
    *epi = (double)r->ffn / (r->epi_ns * 1e-9);
    return D2_OK;
}

int calib_kern_measure(int64_t hidden, int64_t ffn, int64_t group, int base_bits, int levels, const int *tokens,
                       int nt, int reps, calib_kern_result *r)
{
    memset(r, 0, sizeof *r);
    if (nt < 2 || nt > CALIB_MAX_T || levels < 1 || levels > KERN_MAX_LEVELS_CALIB || reps < 1 || hidden < 1 || ffn < 1 ||
        hidden * ffn > (1LL << 28))
        D2_ERROR(D2_EINVAL, "kernel rates: bad shape or token list");
    int maxT = 0;
    for (int i = 0; i < nt; i++) {
        if (tokens[i] < 1 || tokens[i] > 1024) D2_ERROR(D2_EINVAL, "kernel rates: token counts must be 1..1024");
        if (tokens[i] > maxT) maxT = tokens[i];
    }
    mwq_config c;
    mwq_config_default(&c);
    c.base_bits = base_bits;
    c.levels = levels;
    c.group = group;
    D2_TRY(mwq_config_check(&c));
    mwq_matrix *q[3] = {NULL, NULL, NULL};
    kern_act *acts[2][1024];
    memset(acts, 0, sizeof acts);
    float *x = malloc((size_t)(hidden > ffn ? hidden : ffn) * sizeof *x);
    float *Y = calloc((size_t)maxT * (size_t)(hidden > ffn ? hidden : ffn), sizeof *Y);
    double *t = malloc((size_t)reps * sizeof *t);
    gsl_rng *g = rng_new(CALIB_EXPERT_SEED, CALIB_EXPERT_STREAM);
    int rc = (!x || !Y || !t || !g) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("kernel rates: out of memory");
    if (rc == D2_OK) rc = expert_quantize(hidden, ffn, &c, g, q);
    for (int a = 0; a < 2 && rc == D2_OK; a++) {
        int64_t n = a == 0 ? hidden : ffn;
        for (int64_t i = 0; i < n; i++) x[i] = (float)gsl_ran_gaussian_ziggurat(g, 1.0);
        for (int i = 0; i < maxT && rc == D2_OK; i++) {
            rc = kern_act_new(n, group, &acts[a][i]);
            if (rc == D2_OK) rc = kern_act_set(acts[a][i], x);
        }
    }
    for (int k = 1; k <= levels && rc == D2_OK; k++)
        for (int ti = 0; ti < nt; ti++) {
            for (int rep = 0; rep < reps; rep++) {
                /* thread CPU time: what the kernels cost, not how long other
                 * processes on a shared machine kept this one waiting */
                int64_t t0 = clock_thread_cpu_ns();
                for (int m = 0; m < 3; m++) {
                    kern_mat v;
                    mwq_matrix_view(q[m], levels, &v);
                    kern_matmul(&v, k, k, acts[m == 2], tokens[ti], Y);
                }
                t[rep] = (double)(clock_thread_cpu_ns() - t0);
            }
            r->ns[k - 1][ti] = calib_median(t, reps);
        }
    /* the calls execute makes (exec.c comp_slice): gate and up at level k
     * alone, then down over levels 1..k in one call */
    for (int k = 1; k <= levels && rc == D2_OK; k++)
        for (int ti = 0; ti < nt; ti++) {
            kern_mat v[3];
            for (int m = 0; m < 3; m++) mwq_matrix_view(q[m], levels, &v[m]);
            for (int rep = 0; rep < reps; rep++) {
                int64_t t0 = clock_thread_cpu_ns();
                kern_matmul(&v[0], k, k, acts[0], tokens[ti], Y);
                kern_matmul(&v[1], k, k, acts[0], tokens[ti], Y);
                t[rep] = (double)(clock_thread_cpu_ns() - t0);
            }
            r->gu_ns[k - 1][ti] = calib_median(t, reps);
            for (int rep = 0; rep < reps; rep++) {
                int64_t t0 = clock_thread_cpu_ns();
                kern_matmul(&v[2], 1, k, acts[1], tokens[ti], Y);
                t[rep] = (double)(clock_thread_cpu_ns() - t0);
            }
            r->dn_ns[k - 1][ti] = calib_median(t, reps);
        }
    if (rc == D2_OK) { /* the per-token SwiGLU epilogue, as execute runs it */
        float *gv = malloc((size_t)ffn * sizeof *gv), *uv = malloc((size_t)ffn * sizeof *uv), *hv = malloc((size_t)ffn * sizeof *hv);
        kern_act *ha = NULL;
        if (!gv || !uv || !hv || kern_act_new(ffn, group, &ha)) { rc = D2_ENOMEM; d2_err_set("kernel rates: out of memory"); }
        for (int64_t i = 0; rc == D2_OK && i < ffn; i++) {
            gv[i] = (float)gsl_ran_gaussian_ziggurat(g, 1.0);
            uv[i] = (float)gsl_ran_gaussian_ziggurat(g, 1.0);
        }
        for (int rep = 0; rc == D2_OK && rep < reps; rep++) {
            int64_t t0 = clock_thread_cpu_ns();
            for (int i = 0; i < 8 && rc == D2_OK; i++) rc = swiglu_token(gv, uv, ffn, hv, ha);
            t[rep] = (double)(clock_thread_cpu_ns() - t0) / 8;
        }
        if (rc == D2_OK) r->epi_ns = calib_median(t, reps);
        free(gv); free(uv); free(hv);
        kern_act_free(ha);
    }
    if (rc == D2_OK) {
        r->levels = levels;
        r->nt = nt;
        memcpy(r->tokens, tokens, (size_t)nt * sizeof *tokens);
        r->weights = 3 * hidden * ffn;
        r->gu_weights = 2 * hidden * ffn;
        r->dn_weights = hidden * ffn;
        r->ffn = ffn;
        snprintf(r->impl, sizeof r->impl, "%s", kern_impl_name(kern_have_avx2() ? KERN_AVX2 : KERN_SCALAR));
        for (int k = 0; k < levels && rc == D2_OK; k++) {
            rc = kern_fit(tokens, r->ns[k], nt, &r->a_ns[k], &r->b_ns[k]);
            if (rc == D2_OK) rc = kern_fit(tokens, r->gu_ns[k], nt, &r->gu_a_ns[k], &r->gu_b_ns[k]);
            if (rc == D2_OK) rc = kern_fit(tokens, r->dn_ns[k], nt, &r->dn_a_ns[k], &r->dn_b_ns[k]);
        }
    }
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < 1024; i++) kern_act_free(acts[a][i]);
    for (int m = 0; m < 3; m++) mwq_matrix_free(q[m]);
    free(x); free(Y); free(t);
    if (g) gsl_rng_free(g);
    return rc;
}

/* ---- I/O interference ------------------------------------------------ */

typedef struct reader_arg {
    int fd, direct;
    int cpu;                /* pinned there (CPUPIN_NONE: not) */
    int64_t file_bytes, size;
    void *buf;
    int run;                /* atomic: 1 keeps the reader going */
    int64_t reads;          /* atomic: reads made so far (all blocks) */
    double *t;              /* this block's read times, ns (NULL: not kept) */
    int tcap, tn;           /* room in t, reads kept there (tn atomic) */
    int stopped;            /* atomic: the reader thread has ended (its read failed or run was cleared) */
    int started;            /* atomic: the reader thread is running, pinned, its first read next */
} reader_arg;

static void *reader_main(void *p)
{
    reader_arg *a = p;
    if (cpupin_self(a->cpu, NULL) != D2_OK) { /* checked by the caller; reads == 0 reports it */
        __atomic_store_n(&a->stopped, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    __atomic_store_n(&a->started, 1, __ATOMIC_RELEASE);
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    const int64_t slots = (a->file_bytes - a->size) / ALIGN + 1;
    while (__atomic_load_n(&a->run, __ATOMIC_ACQUIRE)) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        double ns;
        if (timed_read(a->fd, a->direct, 0, a->buf, a->size, (int64_t)(st % (uint64_t)slots) * ALIGN, &ns)) break;
        if (a->t && a->tn < a->tcap) {
            a->t[a->tn] = ns;
            __atomic_store_n(&a->tn, a->tn + 1, __ATOMIC_RELEASE);
        }
        __atomic_add_fetch(&a->reads, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&a->stopped, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Wait until the reader thread just created runs (or has ended): a span
 * that counts its reads starts after this, so that a machine slow to
 * schedule the new thread gives fewer reads, not none (run is 1 before the
 * thread starts, so a started reader makes at least one read). */
static void reader_wait_started(reader_arg *a)
{
    struct timespec ts = {0, 50000};
    while (!__atomic_load_n(&a->started, __ATOMIC_ACQUIRE) && !__atomic_load_n(&a->stopped, __ATOMIC_ACQUIRE))
        nanosleep(&ts, NULL);
}

struct calib_probe {
    mwq_matrix *q[3];
    kern_act *acts[2];
    float *Y;
    double *t;
    int tcap;
};

void calib_probe_free(calib_probe *p)
{
    if (!p) return;
    for (int m = 0; m < 3; m++) mwq_matrix_free(p->q[m]);
    for (int a = 0; a < 2; a++) kern_act_free(p->acts[a]);
    free(p->Y);
    free(p->t);
    free(p);
}

/* The probe's expert (the kernel fits' one: expert_quantize from
 * CALIB_EXPERT_SEED, default MWQ config) and its two one-token activations
 * (hidden and ffn wide, N(0, 1), the next draws of the same stream), for the
 * probe and the cold-weight pool; `what` names the caller when out of memory. */
static int probe_expert(int64_t hidden, int64_t ffn, const char *what, mwq_matrix *q[3], kern_act *acts[2])
{
    float *w = malloc((size_t)(hidden > ffn ? hidden : ffn) * sizeof *w);
    gsl_rng *g = rng_new(CALIB_EXPERT_SEED, CALIB_EXPERT_STREAM);
    int rc = (!w || !g) ? D2_ENOMEM : D2_OK;
    if (rc) d2_err_set("%s: out of memory", what);
    mwq_config c;
    mwq_config_default(&c);
    if (rc == D2_OK) rc = expert_quantize(hidden, ffn, &c, g, q);
    for (int a = 0; a < 2 && rc == D2_OK; a++) {
        int64_t n = a == 0 ? hidden : ffn;
        for (int64_t i = 0; i < n; i++) w[i] = (float)gsl_ran_gaussian_ziggurat(g, 1.0);
        rc = kern_act_new(n, c.group, &acts[a]);
        if (rc == D2_OK) rc = kern_act_set(acts[a], w);
    }
    free(w);
    if (g) gsl_rng_free(g);
    return rc;
}

int calib_probe_new(int64_t hidden, int64_t ffn, calib_probe **out)
{
    *out = NULL;
    if (hidden < 1 || ffn < 1 || hidden * ffn > (1LL << 28)) D2_ERROR(D2_EINVAL, "probe: bad expert shape");
    calib_probe *p = calloc(1, sizeof *p);
    if (!p) D2_ERROR(D2_ENOMEM, "probe: out of memory");
    int rc = probe_expert(hidden, ffn, "probe", p->q, p->acts);
    if (rc == D2_OK && !(p->Y = calloc((size_t)(hidden > ffn ? hidden : ffn), sizeof *p->Y))) {
        rc = D2_ENOMEM;
        d2_err_set("probe: out of memory");
    }
    if (rc) { calib_probe_free(p); return rc; }
    *out = p;
    return D2_OK;
}

double calib_probe_run(calib_probe *p, int passes)
{
    if (passes < 1) passes = 1;
    if (passes > p->tcap) {
        double *t = realloc(p->t, (size_t)passes * sizeof *t);
        if (!t) return 0;
        p->t = t;
        p->tcap = passes;
    }
    for (int i = 0; i < passes; i++) {
        int64_t t0 = clock_mono_ns();
        for (int k = 1; k <= 3; k++)
            for (int m = 0; m < 3; m++) {
                kern_mat v;
                mwq_matrix_view(p->q[m], 3, &v);
                kern_matmul(&v, k, k, &p->acts[m == 2], 1, p->Y);
            }
        p->t[i] = (double)(clock_mono_ns() - t0);
    }
    return calib_median(p->t, passes);
}

int calib_clock_cost(int reads, int blocks, double *mono_ns, double *thread_cpu_ns)
{
    if (reads < 1 || blocks < 1 || blocks > 64) D2_ERROR(D2_EINVAL, "clock cost: bad reads %d or blocks %d", reads, blocks);
    double tm[64], tc[64];
    volatile int64_t sink = 0;
    for (int b = 0; b < blocks; b++) {
        int64_t t0 = clock_mono_ns();
        for (int i = 0; i < reads; i++) sink += clock_mono_ns();
        int64_t t1 = clock_mono_ns();
        for (int i = 0; i < reads; i++) sink += clock_thread_cpu_ns();
        int64_t t2 = clock_mono_ns();
        tm[b] = (double)(t1 - t0) / reads;
        tc[b] = (double)(t2 - t1) / reads;
    }
    (void)sink;
    *mono_ns = calib_median(tm, blocks);
    *thread_cpu_ns = calib_median(tc, blocks);
    return D2_OK;
}

int calib_probe_agrees(double before_ns, double after_ns, double ref_ns, double tol)
{
    return ref_ns > 0 && fabs(before_ns / ref_ns - 1) <= tol && fabs(after_ns / ref_ns - 1) <= tol;
}

double calib_profile_note(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[512], pre[96];
    int np = snprintf(pre, sizeof pre, "# %s = ", key);
    double v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, pre, (size_t)np)) {
            v = strtod(line + np, NULL);
            break;
        }
    fclose(f);
    return v > 0 ? v : 0;
}

/* ---- a pool of expert copies (cold weights) --------------------------- */

typedef struct kpool {
    mwq_matrix *q[3];             /* the quantized expert */
    int n;                        /* copies */
    uint8_t **mem;                /* [n]: one aligned block per copy */
    kern_mat *v;                  /* [n * 3] views into the copies */
    kern_act *acts[2];
    float *Y;
    int64_t pass_bytes;           /* stored bytes of levels 1..3, three matrices */
    int64_t copy_bytes;           /* bytes of one copy (chunks 64-byte aligned) */
    uint8_t touch_sink;           /* what kpool_touch read (kept so the reads stay) */
} kpool;

static void kpool_free(kpool *p)
{
    for (int i = 0; p->mem && i < p->n; i++) free(p->mem[i]);
    free(p->mem); free(p->v); free(p->Y);
    for (int m = 0; m < 3; m++) mwq_matrix_free(p->q[m]);
    for (int a = 0; a < 2; a++) kern_act_free(p->acts[a]);
    memset(p, 0, sizeof *p);
}

static int kpool_new(int64_t hidden, int64_t ffn, int64_t pool_bytes, kpool *p)
{
    memset(p, 0, sizeof *p);
    if (hidden < 1 || ffn < 1 || hidden * ffn > (1LL << 28) || pool_bytes < 1 || pool_bytes > (1LL << 34))
        D2_ERROR(D2_EINVAL, "cold weights: bad expert shape or pool size %lld", (long long)pool_bytes);
    int rc = probe_expert(hidden, ffn, "cold weights", p->q, p->acts);
    int64_t per = 0; /* bytes of one copy, each chunk 64-byte aligned */
    for (int m = 0; m < 3 && rc == D2_OK; m++)
        for (int k = 0; k < 3; k++) {
            p->pass_bytes += p->q[m]->chunk_bytes[k];
            per += (p->q[m]->chunk_bytes[k] + 63) / 64 * 64;
        }
    if (rc == D2_OK) {
        p->copy_bytes = per;
        p->n = (int)((pool_bytes + per - 1) / per);
        if (p->n < 2) p->n = 2;
        p->mem = calloc((size_t)p->n, sizeof *p->mem);
        p->v = calloc((size_t)p->n * 3, sizeof *p->v);
        p->Y = calloc((size_t)(hidden > ffn ? hidden : ffn), sizeof *p->Y);
        if (!p->mem || !p->v || !p->Y) { rc = D2_ENOMEM; d2_err_set("cold weights: out of memory"); }
    }
    for (int i = 0; i < p->n && rc == D2_OK; i++) {
        void *b;
        if (posix_memalign(&b, ALIGN, (size_t)per)) { rc = D2_ENOMEM; d2_err_set("cold weights: out of memory (%d copies of %lld bytes)", p->n, (long long)per); break; }
        p->mem[i] = b;
        int64_t off = 0;
        for (int m = 0; m < 3; m++) {
            kern_mat *v = &p->v[(size_t)i * 3 + (size_t)m];
            mwq_matrix_view(p->q[m], 3, v);
            for (int k = 0; k < 3; k++) {
                memcpy(p->mem[i] + off, p->q[m]->chunk[k], (size_t)p->q[m]->chunk_bytes[k]);
                v->chunk[k] = p->mem[i] + off;
                off += (p->q[m]->chunk_bytes[k] + 63) / 64 * 64;
            }
        }
    }
    if (rc) kpool_free(p);
    return rc;
}

/* One pass over copy i (levels 1..3, three matrices, one token), thread CPU ns. */
static double kpool_pass(kpool *p, int i)
{
    int64_t t0 = clock_thread_cpu_ns();
    for (int k = 1; k <= 3; k++)
        for (int m = 0; m < 3; m++) kern_matmul(&p->v[(size_t)i * 3 + (size_t)m], k, k, &p->acts[m == 2], 1, p->Y);
    return (double)(clock_thread_cpu_ns() - t0);
}

struct calib_cold_probe {
    kpool pool;
    int next;  /* the copy the next pass runs on */
    double *t; /* [2 * tcap] pass times, then touch times, ns */
    int tcap;
};

int calib_cold_probe_new(int64_t hidden, int64_t ffn, int64_t pool_bytes, calib_cold_probe **out)
{
    *out = NULL;
    calib_cold_probe *p = calloc(1, sizeof *p);
    if (!p) D2_ERROR(D2_ENOMEM, "cold probe: out of memory");
    int rc = kpool_new(hidden, ffn, pool_bytes, &p->pool);
    if (rc) { free(p); return rc; }
    *out = p;
    return D2_OK;
}

/* One read per 4 KiB page of copy i (one cache line of each): the page
 * translations of the copy made present and cached, its data left in DRAM.
 * Returns the wall time, ns. */
static double kpool_touch(kpool *p, int i, int64_t bytes)
{
    volatile const uint8_t *m = p->mem[i];
    uint8_t s = 0;
    int64_t t0 = clock_mono_ns();
    for (int64_t o = 0; o < bytes; o += 4096) s ^= m[o];
    int64_t t1 = clock_mono_ns();
    p->touch_sink ^= s;
    return (double)(t1 - t0);
}

double calib_cold_probe_run(calib_cold_probe *p, int passes, double *touch_ns)
{
    if (touch_ns) *touch_ns = 0;
    if (passes < 1) passes = 1;
    if (passes > p->tcap) {
        double *t = realloc(p->t, (size_t)passes * 2 * sizeof *t);
        if (!t) return 0;
        p->t = t;
        p->tcap = passes;
    }
    double *tt = p->t + passes; /* the touches' times */
    for (int i = 0; i < passes; i++) {
        tt[i] = kpool_touch(&p->pool, p->next, p->pool.copy_bytes);
        int64_t t0 = clock_mono_ns();
        for (int k = 1; k <= 3; k++)
            for (int m = 0; m < 3; m++)
                kern_matmul(&p->pool.v[(size_t)p->next * 3 + (size_t)m], k, k, &p->pool.acts[m == 2], 1, p->pool.Y);
        p->t[i] = (double)(clock_mono_ns() - t0);
        p->next = (p->next + 1) % p->pool.n;
    }
    if (touch_ns) *touch_ns = calib_median(tt, passes);
    return calib_median(p->t, passes);
}

void calib_cold_probe_free(calib_cold_probe *p)
{
    if (!p) return;
    kpool_free(&p->pool);
    free(p->t);
    free(p);
}

double calib_cold_bw(int64_t bytes, double warm_ns, double cold_ns)
{
    if (!(warm_ns > 0) || !(cold_ns > warm_ns) || bytes <= 0) return 0;
    return (double)bytes / ((cold_ns - warm_ns) * 1e-9);
}

int calib_cold(int64_t hidden, int64_t ffn, int64_t pool_bytes, int blocks, calib_cold_result *r)
{
    memset(r, 0, sizeof *r);
    if (blocks < 2 || blocks > 1000) D2_ERROR(D2_EINVAL, "cold weights: %d blocks (2..1000)", blocks);
    kpool p;
    D2_TRY(kpool_new(hidden, ffn, pool_bytes, &p));
    const int per = 5;
    double *t[2] = {malloc((size_t)(blocks * per) * sizeof(double)), malloc((size_t)(blocks * per) * sizeof(double))};
    int rc = (!t[0] || !t[1]) ? D2_ENOMEM : D2_OK, n[2] = {0, 0}, next = 1;
    if (rc) d2_err_set("cold weights: out of memory");
    for (int i = 0; i < p.n && rc == D2_OK; i++) kpool_pass(&p, i); /* every copy mapped and touched once */
    for (int b = 0; b < blocks && rc == D2_OK; b++)
        for (int i = 0; i < per; i++) {
            if (b & 1) { /* cold: the next copy, last touched a whole pool ago (copy 0 is the warm one) */
                t[1][n[1]++] = kpool_pass(&p, next);
                next = next + 1 < p.n ? next + 1 : 1;
            } else {
                kpool_pass(&p, 0);
                t[0][n[0]++] = kpool_pass(&p, 0);
            }
        }
    if (rc == D2_OK) {
        r->warm_ns = calib_median(t[0], n[0]);
        r->cold_ns = calib_median(t[1], n[1]);
        r->pass_bytes = p.pass_bytes;
        r->copies = p.n;
        r->bw = calib_cold_bw(p.pass_bytes, r->warm_ns, r->cold_ns);
    }
    free(t[0]); free(t[1]);
    kpool_free(&p);
    return rc;
}

int calib_interference(const calib_io_opts *o, int64_t hidden, int64_t ffn, int64_t pool_bytes, int64_t read_bytes,
                       int blocks, calib_interference_result *r)
{
    memset(r, 0, sizeof *r);
    if (read_bytes < ALIGN || read_bytes % ALIGN || (!o->read_file[0] && o->file_bytes < 2 * read_bytes) || blocks < 2 ||
        blocks > 1000)
        D2_ERROR(D2_EINVAL, "interference: read size %lld (a multiple of 4 KiB, at most half the file), %d blocks",
                 (long long)read_bytes, blocks);
    struct stat st;
    if (stat(o->dir, &st) != 0) D2_ERROR(D2_EIO, "%s: %s", o->dir, why(errno));
    D2_TRY(cpupin_check(o->reader_cpu, "interference: reader CPU"));
    kpool pool;
    D2_TRY(kpool_new(hidden, ffn, pool_bytes, &pool));
    const int per = 5;
    /* read times kept per block (the reader makes a few per pass; beyond
     * this many a block's reads are counted, not kept) */
    const int rper = 256;
    double *t[2] = {malloc((size_t)(blocks * per) * sizeof(double)), malloc((size_t)(blocks * per) * sizeof(double))};
    double *rt[2] = {malloc((size_t)(blocks * rper) * sizeof(double)), malloc((size_t)(blocks * rper) * sizeof(double))};
    reader_arg ra = {.fd = -1, .direct = 0, .cpu = o->reader_cpu, .file_bytes = o->file_bytes, .size = read_bytes,
                     .buf = NULL, .run = 0, .reads = 0, .t = NULL, .tcap = 0, .tn = 0, .stopped = 0};
    int rc = (!t[0] || !t[1] || !rt[0] || !rt[1] || iobuf_alloc((size_t)read_bytes, &ra.buf) != D2_OK) ? D2_ENOMEM : D2_OK;
    if (rc) { ra.buf = NULL; d2_err_set("interference: out of memory"); }
    char method[64];
    double wbw;
    if (rc == D2_OK) rc = open_data(o, &ra.fd, &ra.direct, &ra.file_bytes, method, sizeof method, &wbw);
    if (rc == D2_OK && ra.file_bytes < 2 * read_bytes) {
        rc = D2_EINVAL;
        d2_err_set("%s: --read-file: %lld bytes, less than twice the interference step's read (%lld bytes)", o->read_file,
                   (long long)ra.file_bytes, (long long)read_bytes);
    }
    /* blocks cycle through three kinds: the passes alone; the passes with
     * a reader thread; the reader alone while this thread spins, as
     * execute's compute thread polls while it waits for a load (as many
     * reads as the reader made in the block before).  All passes walk the
     * pool (cold weights), as a serving loop computes.  Kinds 0 and 1 give
     * io_interference (pass times), kinds 1 and 2 read_interference (the
     * reader's read times, wall). */
    int n[2] = {0, 0}, rn[2] = {0, 0}, next = 0;
    int64_t last_reads = 4; /* reads in the last block with passes */
    for (int b = 0; b < blocks && rc == D2_OK; b++) {
        const int kind = b % 3, on = kind >= 1, rk = kind - 1; /* rk: read kind, 0 during passes, 1 while spinning */
        pthread_t th;
        if (on) {
            ra.t = rt[rk] + rn[rk];
            ra.tcap = rper;
            ra.tn = 0;
            ra.stopped = 0;
            ra.started = 0;
            __atomic_store_n(&ra.run, 1, __ATOMIC_RELEASE);
            if (pthread_create(&th, NULL, reader_main, &ra)) { rc = D2_EIO; d2_err_set("interference: cannot start a thread"); break; }
            reader_wait_started(&ra);
            struct timespec ts = {0, 2000000}; /* let the first read start */
            nanosleep(&ts, NULL);
        }
        if (kind <= 1) {
            int64_t r0 = __atomic_load_n(&ra.reads, __ATOMIC_ACQUIRE);
            for (int i = 0; i < per; i++) {
                t[kind][n[kind]++] = kpool_pass(&pool, next);
                next = next + 1 < pool.n ? next + 1 : 0;
            }
            if (kind == 1) {
                last_reads = __atomic_load_n(&ra.reads, __ATOMIC_ACQUIRE) - r0;
                if (last_reads < 4) last_reads = 4;
                if (last_reads > rper) last_reads = rper;
            }
        } else {
            /* spin until the reader has made last_reads reads in this block
             * (or stopped: a failed read ends it) */
            while (__atomic_load_n(&ra.tn, __ATOMIC_ACQUIRE) < last_reads && !__atomic_load_n(&ra.stopped, __ATOMIC_ACQUIRE)) {
                for (volatile int spin = 0; spin < 1000; spin++) {
                }
            }
        }
        if (on) {
            __atomic_store_n(&ra.run, 0, __ATOMIC_RELEASE);
            pthread_join(th, NULL);
            rn[rk] += ra.tn;
            ra.t = NULL;
        }
    }
    if (rc == D2_OK) {
        if (ra.reads == 0 || rn[0] == 0 || rn[1] == 0) { rc = D2_EIO; d2_err_set("interference: the reader thread read nothing"); }
        else {
            r->alone_ns = calib_median(t[0], n[0]);
            r->with_io_ns = calib_median(t[1], n[1]);
            r->x = r->with_io_ns / r->alone_ns - 1;
            if (r->x < 0) r->x = 0;
            r->read_passes_ns = calib_median(rt[0], rn[0]);
            r->read_spin_ns = calib_median(rt[1], rn[1]);
            r->y = r->read_passes_ns / r->read_spin_ns - 1;
            if (r->y < 0) r->y = 0;
            r->reads_passes = rn[0];
            r->reads_spin = rn[1];
            r->reads = ra.reads;
            r->read_bytes = read_bytes;
        }
    }
    if (ra.fd >= 0) close(ra.fd); /* nameless: closing frees it */
    iobuf_free(ra.buf, (size_t)ra.size);
    kpool_free(&pool);
    free(t[0]); free(t[1]); free(rt[0]); free(rt[1]);
    return rc;
}

void calib_reader_io(const calib_io_opts *o, int64_t level1_bytes, calib_io_opts *out, int64_t *read_bytes)
{
    const int64_t rb = (level1_bytes / 3 + ALIGN - 1) / ALIGN * ALIGN;
    *out = *o;
    if (out->file_bytes > (256LL << 20)) out->file_bytes = 256LL << 20;
    if (out->file_bytes < 2 * rb) out->file_bytes = 2 * rb;
    *read_bytes = rb;
}

void calib_read_range(int64_t level1_bytes, int64_t level2_bytes, int64_t *lo, int64_t *hi)
{
    int64_t c1 = level1_bytes / 3, c2 = level2_bytes / 3;
    int64_t a = c2 / 2 / 4096 * 4096, b = (2 * c1 + 4095) / 4096 * 4096;
    if (a < 4096) a = 4096;
    if (b > (64LL << 20)) b = 64LL << 20;
    *lo = b > a ? a : 0;
    *hi = b > a ? b : 0;
}

/* ---- host stops --------------------------------------------------- */

/* the idle phase's second CPU: busy, as execute's spinning I/O thread
 * keeps it, but reading nothing */
typedef struct spin_arg {
    int cpu;
    int run; /* atomic: 1 keeps it spinning */
} spin_arg;

static void *spin_main(void *p)
{
    spin_arg *a = p;
    if (cpupin_self(a->cpu, NULL) != D2_OK) return NULL;
    while (__atomic_load_n(&a->run, __ATOMIC_ACQUIRE)) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause(); /* as execute's waits spin */
#endif
    }
    return NULL;
}

/* passes on the calling thread until `until` (monotonic ns); wall times
 * into t (at most cap), their count into *n */
static void host_passes(kpool *pool, int *next, int64_t until, double *t, int cap, int *n)
{
    *n = 0;
    while (clock_mono_ns() < until) {
        int64_t t0 = clock_mono_ns();
        kpool_pass(pool, *next);
        *next = *next + 1 < pool->n ? *next + 1 : 0;
        if (*n < cap) t[(*n)++] = (double)(clock_mono_ns() - t0);
    }
}

static int host_tally(const hostwatch *w, int64_t a, int64_t b, calib_host_phase *ph)
{
    hostwatch_tally t;
    ph->span_ns = b - a;
    for (int k = 0; k < 2; k++) {
        D2_TRY(hostwatch_cpu(w, k, a, b, &t));
        ph->taken_ns[k] = t.late_ns;
    }
    int64_t mx;
    return hostwatch_stopped(w, a, b, &ph->stopped_ns, &mx, &ph->stopped_spans);
}

int calib_host_stops(const calib_io_opts *o, int compute_cpu, int64_t hidden, int64_t ffn, int64_t pool_bytes,
                     int64_t read_bytes, double idle_s, double read_s, calib_host_stops_result *r)
{
    memset(r, 0, sizeof *r);
    if (compute_cpu < 0 || o->reader_cpu < 0 || compute_cpu == o->reader_cpu)
        D2_ERROR(D2_EINVAL, "host stops: the compute and the I/O CPU must be two pinned CPUs");
    if (read_bytes < ALIGN || read_bytes % ALIGN || (!o->read_file[0] && o->file_bytes < 2 * read_bytes))
        D2_ERROR(D2_EINVAL, "host stops: read size %lld (a multiple of 4 KiB, at most half the file)", (long long)read_bytes);
    if (!(idle_s >= 0.1 && idle_s <= 600) || !(read_s >= 0.1 && read_s <= 600))
        D2_ERROR(D2_EINVAL, "host stops: durations %g s and %g s (0.1..600 each)", idle_s, read_s);
    D2_TRY(cpupin_check(o->reader_cpu, "host stops: reader CPU"));
    kpool pool;
    D2_TRY(kpool_new(hidden, ffn, pool_bytes, &pool));
    enum { CAP = 1 << 16 };
    double *t = malloc(CAP * sizeof *t);
    reader_arg ra = {.fd = -1, .direct = 0, .cpu = o->reader_cpu, .file_bytes = o->file_bytes, .size = read_bytes,
                     .buf = NULL, .run = 0, .reads = 0};
    int rc = (!t || iobuf_alloc((size_t)read_bytes, &ra.buf) != D2_OK) ? D2_ENOMEM : D2_OK;
    if (rc) { ra.buf = NULL; d2_err_set("host stops: out of memory"); }
    char method[64];
    double wbw;
    if (rc == D2_OK) rc = open_data(o, &ra.fd, &ra.direct, &ra.file_bytes, method, sizeof method, &wbw);
    if (rc == D2_OK && ra.file_bytes < 2 * read_bytes) {
        rc = D2_EINVAL;
        d2_err_set("%s: --read-file: %lld bytes, less than twice the host-stops step's read (%lld bytes)", o->read_file,
                   (long long)ra.file_bytes, (long long)read_bytes);
    }
    hostwatch *w = NULL;
    int cpus[2] = {compute_cpu, o->reader_cpu};
    if (rc == D2_OK) rc = hostwatch_start(cpus, 2, &w);
    int next = 0, n = 0;
    int64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    if (rc == D2_OK) {
        spin_arg sa = {.cpu = o->reader_cpu, .run = 1};
        pthread_t sp;
        if (pthread_create(&sp, NULL, spin_main, &sa)) { rc = D2_EIO; d2_err_set("host stops: cannot start a thread"); }
        a0 = clock_mono_ns();
        if (rc == D2_OK) host_passes(&pool, &next, a0 + (int64_t)(idle_s * 1e9), t, CAP, &n);
        a1 = clock_mono_ns();
        if (rc == D2_OK) {
            __atomic_store_n(&sa.run, 0, __ATOMIC_RELEASE);
            pthread_join(sp, NULL);
        }
        r->idle.passes = n;
        r->idle.pass_ns = n ? calib_median(t, n) : 0;
        pthread_t th;
        __atomic_store_n(&ra.run, 1, __ATOMIC_RELEASE);
        if (rc == D2_OK && pthread_create(&th, NULL, reader_main, &ra)) {
            rc = D2_EIO;
            d2_err_set("host stops: cannot start a thread");
        } else if (rc == D2_OK) {
            reader_wait_started(&ra); /* the phase starts with the reader: at least one read */
            b0 = clock_mono_ns();
            host_passes(&pool, &next, b0 + (int64_t)(read_s * 1e9), t, CAP, &n);
            b1 = clock_mono_ns();
            __atomic_store_n(&ra.run, 0, __ATOMIC_RELEASE);
            pthread_join(th, NULL);
            r->reading.passes = n;
            r->reading.pass_ns = n ? calib_median(t, n) : 0;
            r->reading.reads = ra.reads;
            if (ra.reads == 0) { rc = D2_EIO; d2_err_set("host stops: the reader thread read nothing"); }
        }
    }
    hostwatch_stop(w);
    if (rc == D2_OK) rc = host_tally(w, a0, a1, &r->idle);
    if (rc == D2_OK) rc = host_tally(w, b0, b1, &r->reading);
    r->read_bytes = read_bytes;
    hostwatch_free(w);
    if (ra.fd >= 0) close(ra.fd);
    iobuf_free(ra.buf, (size_t)ra.size);
    free(t);
    kpool_free(&pool);
    return rc;
}

/* ---- profile file and host facts ----------------------------------- */

int calib_file_write_atomic(const char *path, const char *data, size_t n)
{
    /* like every output (core/fileio.h): a FIFO, device or symlink at path
     * is refused, never replaced */
    D2_TRY(fileio_out_check(path));
    char tmp[FILEIO_PATH_MAX];
    D2_TRY(fileio_pathf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path));
    int fd = mkstemp(tmp);
    if (fd < 0) D2_ERROR(D2_EIO, "%s: cannot create the profile: %s", path, why(errno));
    fileio_tmp_register(tmp); /* removed on SIGINT/SIGTERM (src/cli's handler) */
    mode_t mask = umask(0);
    umask(mask);
    size_t done = 0;
    int e = fchmod(fd, 0666 & ~mask) != 0 ? errno : 0;
    while (!e && done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { e = w < 0 ? errno : ENOSPC; break; }
        done += (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (!e && fileio_out_check(path) != D2_OK) e = EEXIST; /* replaced by a non-regular file meanwhile */
    if (!e && rename(tmp, path) != 0) e = errno;
    fileio_tmp_forget(tmp);
    if (e) {
        unlink(tmp);
        D2_ERROR(D2_EIO, "%s: cannot write the profile: %s", path, why(e));
    }
    return D2_OK;
}

int64_t calib_host_mem_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), sz = sysconf(_SC_PAGESIZE);
    return pages > 0 && sz > 0 ? (int64_t)pages * sz : 0;
}

int calib_host_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double calib_host_loadavg1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

void calib_host_cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) {
                c++;
                while (*c == ' ' || *c == '\t') c++;
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}
