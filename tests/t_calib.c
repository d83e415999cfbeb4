/* t_calib.c - host calibration: the storage fit on known answers, medians,
 * the atomic profile write (including into a read-only place), and a small
 * real storage run that leaves no file behind.  No timing is asserted:
 * rates are measured by `d2moe calibrate`, not here. */
#define _GNU_SOURCE /* sched_getaffinity, sched_getcpu, CPU_* */
#include "core/err.h"
#include "host/calib.h"
#include "host/cpupin.h"
#include "host/iobuf.h"
#include "tap.h"

#include <dirent.h>
#include <sched.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_fit(void)
{
    /* exact line: lat 80 us, 2 GB/s -> t = 80000 + size / 2 ns (by hand) */
    calib_io_result r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 6; i++) {
        r.pt[i].size = 4096LL << (2 * i);
        r.pt[i].median_ns = 80000.0 + (double)r.pt[i].size / 2.0;
    }
    r.n = 6;
    ok(calib_io_fit(&r) == D2_OK, "fit of an exact line succeeds");
    is_near(r.lat_ns, 80000, 1e-3, "latency 80 us recovered");
    is_near(r.bw, 2e9, 1e-3, "bandwidth 2 GB/s recovered");
    is_near(r.max_rel_err, 0, 1e-9, "no residual on an exact line");

    /* relative weighting: a 10% error on the largest point moves bw, barely lat */
    r.pt[5].median_ns *= 1.10;
    ok(calib_io_fit(&r) == D2_OK, "fit with one noisy point");
    ok(r.bw < 2e9 && r.bw > 1.7e9, "bandwidth pulled down by the slow large read (%.4g)", r.bw);
    ok(fabs(r.lat_ns - 80000) < 8000, "latency stays near 80 us (%.0f)", r.lat_ns);

    /* flat times: the page cache was not bypassed -> refused, not a silly profile */
    for (int i = 0; i < 6; i++) r.pt[i].median_ns = 1000.0 - i;
    int rc = calib_io_fit(&r);
    ok(rc == D2_ERANGE && strstr(d2_err_msg(), "does not grow"), "time falling with size is refused: %s", d2_err_msg());

    /* pure bandwidth, negative intercept by least squares -> clamped to 0 */
    for (int i = 0; i < 6; i++) r.pt[i].median_ns = (double)r.pt[i].size * (i == 0 ? 0.5 : 1.0);
    ok(calib_io_fit(&r) == D2_OK && r.lat_ns == 0 && r.bw > 0, "negative latency clamped to 0 (bw %.4g)", r.bw);

    r.n = 1;
    ok(calib_io_fit(&r) == D2_EINVAL, "one point cannot be fitted");

    /* the statistic: with fit_mean the means are fitted, the medians ignored
     * (means on lat 100 us, 1 GB/s; medians 20% below: a right-skewed read time) */
    r.n = 6;
    r.fit_mean = 1;
    for (int i = 0; i < 6; i++) {
        r.pt[i].mean_ns = 100000.0 + (double)r.pt[i].size;
        r.pt[i].median_ns = 0.8 * r.pt[i].mean_ns;
    }
    ok(calib_io_fit(&r) == D2_OK, "fit of the means succeeds");
    is_near(r.lat_ns, 100000, 1e-3, "fit_mean: latency 100 us of the means (medians 80 us)");
    is_near(r.bw, 1e9, 1e-3, "fit_mean: bandwidth 1 GB/s of the means (medians 1.25 GB/s)");
    is_near(r.pt[3].fit_ns, r.pt[3].mean_ns, 1e-6, "fit_mean: the fitted line passes through the means");
    r.fit_mean = 0;
    ok(calib_io_fit(&r) == D2_OK, "fit of the medians succeeds");
    is_near(r.lat_ns, 80000, 1e-3, "fit_mean = 0: latency 80 us of the medians");
    is_near(r.bw, 1.25e9, 1e-3, "fit_mean = 0: bandwidth 1.25 GB/s of the medians");
}

static void test_median(void)
{
    double a[] = {5, 1, 3};
    is_near(calib_median(a, 3), 3, 0, "median of 3");
    double b[] = {4, 1, 3, 2};
    is_near(calib_median(b, 4), 2.5, 0, "median of 4 = mean of middle two");
    {
        const double t[6] = {10, 12, 101, 100, 9, 250};
        int64_t n = -1;
        double sum = -1;
        calib_stalls(t, 6, 10, 10, &n, &sum);
        ok(n == 2 && sum == 351, "stalls over 10x a median of 10: 101 and 250 (100 is not over), sum 351 (got %lld, %g)",
           (long long)n, sum);
        calib_stalls(t, 0, 10, 10, &n, &sum);
        ok(n == 0 && sum == 0, "no reads, no stalls");
    }
    {
        double cm = -1, ct = -1;
        int crc = calib_clock_cost(1000, 3, &cm, &ct);
        ok(crc == D2_OK && cm > 0 && ct > 0 && cm < 1e6 && ct < 1e6,
           "clock read costs measured (monotonic %.1f ns, thread CPU %.1f ns per read)", cm, ct);
        ok(calib_clock_cost(0, 3, &cm, &ct) == D2_EINVAL && calib_clock_cost(10, 0, &cm, &ct) == D2_EINVAL &&
               calib_clock_cost(10, 65, &cm, &ct) == D2_EINVAL,
           "clock cost: no reads, no blocks or too many blocks refused");
    }
    ok(a[0] == 5 && a[1] == 1, "median leaves its input unsorted");
}

static void test_atomic(const char *dir)
{
    char path[512], buf[64];
    snprintf(path, sizeof path, "%s/p.ini", dir);
    ok(calib_file_write_atomic(path, "[device]\n", 9) == D2_OK, "atomic write");
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    ok(n == 9 && memcmp(buf, "[device]\n", 9) == 0, "content written");
    is_int(count_entries(dir), 1, "only the profile is left");
    unlink(path);

    snprintf(path, sizeof path, "%s/no/such/dir/p.ini", dir);
    int rc = calib_file_write_atomic(path, "x", 1);
    ok(rc == D2_EIO && strstr(d2_err_msg(), "cannot create the profile"), "missing directory: %s", d2_err_msg());
    rc = calib_file_write_atomic("/proc/d2moe-p.ini", "x", 1);
    ok(rc == D2_EIO, "unwritable place (/proc): %s", d2_err_msg());
}

static void test_measure(const char *dir)
{
    calib_io_opts o;
    calib_io_opts_init(&o);
    snprintf(o.dir, sizeof o.dir, "%s", dir);
    o.file_bytes = 4 << 20;
    o.max_read = 1 << 20;
    o.bytes_per_size = 1 << 20;
    o.min_reps = 3;
    o.max_reps = 8;
    o.buf_pool_bytes = 3 << 20;
    calib_io_result r;
    int rc = calib_io_measure(&o, &r);
    ok(rc == D2_OK, "small storage run (4 MiB file, 4 KiB..1 MiB reads): %s", rc ? d2_err_msg() : "ok");
    ok(r.buf_bytes == 3 << 20 && r.buf_huge_bytes >= -1 && r.buf_huge_bytes <= r.buf_bytes,
       "the reads' pool: 3 MiB as asked (%lld bytes, %lld in huge pages)", (long long)r.buf_bytes, (long long)r.buf_huge_bytes);
    is_int(r.n, 9, "9 read sizes, 4 KiB .. 1 MiB");
    int sane = 1;
    for (int i = 0; i < r.n; i++)
        sane &= r.pt[i].reps >= 3 && r.pt[i].reps <= 8 && r.pt[i].min_ns > 0 && r.pt[i].min_ns <= r.pt[i].median_ns &&
                r.pt[i].median_ns <= r.pt[i].max_ns;
    ok(sane, "every size: 3..8 reads, 0 < min <= median <= max");
    ok(r.bw > 0 && r.lat_ns >= 0, "fitted bw %.3g B/s, latency %.0f ns", r.bw, r.lat_ns);
    ok(!strcmp(r.cache_bypass, "O_DIRECT") || !strcmp(r.cache_bypass, "POSIX_FADV_DONTNEED"),
       "page cache bypass named (%s)", r.cache_bypass);
    is_int(count_entries(dir), 0, "no temporary file left in the directory");
    {
        /* the mean per size, stalls left out: between min and max, the fit on it */
        int mean_ok = r.fit_mean == 1;
        for (int i = 0; i < r.n; i++)
            mean_ok &= r.pt[i].mean_ns >= r.pt[i].min_ns && r.pt[i].mean_ns <= r.pt[i].max_ns;
        ok(mean_ok, "every size's mean without stalls lies within [min, max] and the fit uses the means (default)");
    }

    /* --read-file: an existing file is read, not written, and left as it was */
    {
        char f[FILEIO_PATH_MAX];
        snprintf(f, sizeof f, "%s/data.bin", dir);
        FILE *fp = fopen(f, "wb");
        int wrote = fp != NULL;
        for (int i = 0; wrote && i < (3 << 20) / 8; i++) {
            uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
            wrote = fwrite(&x, sizeof x, 1, fp) == 1;
        }
        if (fp && fclose(fp) != 0) wrote = 0;
        struct stat st0, st1;
        ok(wrote && stat(f, &st0) == 0, "a 3 MiB data file written");
        calib_io_opts ro = o;
        snprintf(ro.read_file, sizeof ro.read_file, "%s", f);
        ro.file_bytes = 1; /* not used with a read file */
        ro.max_read = 1 << 20;
        rc = calib_io_measure(&ro, &r);
        ok(rc == D2_OK && r.file_bytes == 3 << 20 && r.write_bw == 0 && !strcmp(r.tmpfile, "existing file"),
           "--read-file: the file's 3 MiB read, nothing written (%s)", rc ? d2_err_msg() : r.tmpfile);
        ok(stat(f, &st1) == 0 && st1.st_size == st0.st_size && st1.st_mtime == st0.st_mtime, "--read-file: the file is unchanged");
        is_int(count_entries(dir), 1, "--read-file: nothing else left in the directory");
        ro.max_read = 2 << 20; /* reads of 2 MiB need 4 MiB */
        rc = calib_io_measure(&ro, &r);
        ok(rc == D2_EINVAL && strstr(d2_err_msg(), "data.bin") && strstr(d2_err_msg(), "less than twice the largest read"),
           "--read-file smaller than twice the largest read refused: %s", d2_err_msg());
        snprintf(ro.read_file, sizeof ro.read_file, "%s/missing.bin", dir);
        ro.max_read = 1 << 20;
        rc = calib_io_measure(&ro, &r);
        ok(rc == D2_EIO && strstr(d2_err_msg(), "missing.bin") && strstr(d2_err_msg(), "no such file"),
           "--read-file missing: %s", d2_err_msg());
        snprintf(ro.read_file, sizeof ro.read_file, "%s", dir);
        rc = calib_io_measure(&ro, &r);
        ok(rc != D2_OK, "--read-file a folder refused: %s", d2_err_msg());
        unlink(f);
    }

    o.file_bytes = 1 << 20; /* smaller than twice the largest read */
    ok(calib_io_measure(&o, &r) == D2_EINVAL, "file too small for the reads refused: %s", d2_err_msg());
    o.file_bytes = 4 << 20;
    o.min_read = 1000;
    ok(calib_io_measure(&o, &r) == D2_EINVAL, "read size not a multiple of 4 KiB refused");
    o.min_read = 4096;
    o.size_step = 1.0;
    ok(calib_io_measure(&o, &r) == D2_EINVAL, "size step 1 (no progress) refused");
    o.size_step = 1.25;
    o.min_read = 8192;
    o.max_read = 32768;
    rc = calib_io_measure(&o, &r);
    /* 8192 * 1.25 = 10240 -> 12288 (rounded up to 4 KiB); 15360 -> 16384; 20480; 25600 -> 28672; 36864 > 32768 stops */
    static const int64_t want[] = {8192, 12288, 16384, 20480, 28672};
    /* the sizes are set before the fit; on a busy machine the fit of such
     * small reads may be refused (slope <= 0), which is not what this checks */
    if (rc != D2_OK) tap_diag("--size-step run: %s", d2_err_msg());
    int steps_ok = (rc == D2_OK || rc == D2_ERANGE) && r.n == 5;
    for (int i = 0; steps_ok && i < 5; i++) steps_ok = r.pt[i].size == want[i];
    ok(steps_ok, "--size-step 1.25 from 8 KiB: 8, 12, 16, 20, 28 KiB (each rounded up to 4 KiB; got %d sizes)", r.n);
    o.size_step = 2;
    o.max_read = 1 << 20;
    snprintf(o.dir, sizeof o.dir, "%s/missing", dir);
    rc = calib_io_measure(&o, &r);
    ok(rc == D2_EIO && strstr(d2_err_msg(), "missing"), "missing directory named: %s", d2_err_msg());
}

/* host/iobuf.h: 2 MiB-aligned, zeroed, writable; sizes refused; the
 * huge-page count bounded by the mapping; not an iobuf: not found */
static void test_iobuf(void)
{
    void *p = NULL;
    int rc = iobuf_alloc(1, &p);
    ok(rc == D2_OK && p && (uintptr_t)p % IOBUF_ALIGN == 0, "iobuf of 1 byte: a 2 MiB-aligned mapping");
    if (rc == D2_OK) {
        unsigned char *c = p, any = 0;
        for (size_t i = 0; i < IOBUF_ALIGN; i++) any |= c[i];
        c[0] = 1;
        c[IOBUF_ALIGN - 1] = 2; /* the whole rounded mapping is the buffer's */
        ok(!any && c[IOBUF_ALIGN - 1] == 2, "zeroed and writable to its 2 MiB end");
        int64_t huge = -1;
        rc = iobuf_huge_bytes(p, 1, &huge);
        ok(rc == D2_ENOTFOUND || (rc == D2_OK && huge >= 0 && huge <= 1), "huge pages under it: %lld bytes (0 .. 1: the caller's 1 byte)",
           (long long)huge);
        iobuf_free(p, 1);
    }
    rc = iobuf_alloc((3u << 20) + 5, &p);
    ok(rc == D2_OK && (uintptr_t)p % IOBUF_ALIGN == 0, "iobuf of 3 MiB + 5: aligned");
    if (rc == D2_OK) {
        ((unsigned char *)p)[(4u << 20) - 1] = 7; /* rounded up to 4 MiB */
        int64_t huge = -1;
        rc = iobuf_huge_bytes(p, (3u << 20) + 5, &huge);
        ok(rc == D2_ENOTFOUND || (rc == D2_OK && huge >= 0 && huge <= (int64_t)(3u << 20) + 5), "huge pages: %lld of 3 MiB + 5",
           (long long)huge);
        iobuf_free(p, (3u << 20) + 5);
    }
    p = (void *)1;
    ok(iobuf_alloc(0, &p) == D2_ENOMEM && p == NULL, "0 bytes refused (D2_ENOMEM, no buffer)");
    ok(iobuf_alloc(SIZE_MAX - 1, &p) == D2_ENOMEM && p == NULL, "SIZE_MAX - 1 bytes refused");
    int local = 0;
    int64_t h = 5;
    ok(iobuf_huge_bytes(&local, 4096, &h) == D2_ENOTFOUND && h == 0, "a stack address is no iobuf: not found");
    iobuf_free(NULL, 10); /* ignored */
}

static void test_rates(void)
{
    double bw = 0, fl = 0;
    int rc = calib_mem_bw(4 << 20, 1, 2, &bw);
    ok(rc == D2_OK && bw > 0, "memory bandwidth measured (%.3g B/s)", bw);
    rc = calib_mem_bw(4 << 20, 2, 2, &bw);
    ok(rc == D2_OK && bw > 0, "memory bandwidth, 2 threads (%.3g B/s)", bw);
    ok(calib_mem_bw(1000, 1, 1, &bw) == D2_EINVAL, "tiny buffer refused");
    rc = calib_gemm_rate(64, 256, 4, 2, &fl);
    ok(rc == D2_OK && fl > 0, "GEMM rate measured (%.3g FLOP/s)", fl);
    ok(calib_gemm_rate(0, 256, 4, 2, &fl) == D2_EINVAL, "empty GEMM refused");
    ok(calib_host_mem_bytes() > 0 && calib_host_cpus() >= 1, "host memory and CPUs known");
    double la = calib_host_loadavg1();
    ok(access("/proc/loadavg", R_OK) == 0 ? la >= 0 : la == -1, "1-minute load average %.2f (-1: no /proc/loadavg)", la);
}

/* calib_cold_bw: the cold-weight rate from a warm and a cold pass (by hand) */
static void test_cold_bw(void)
{
    /* 4,866,048 stored bytes, 600 us warm, 650 us cold: 4866048 / 50e-6 s */
    is_near(calib_cold_bw(4866048, 600e3, 650e3), 4866048 / 50e-6, 1e-3, "cold_weight_bw = bytes / (cold - warm)");
    is_near(calib_cold_bw(1000, 1000, 2000), 1e9, 1e-6, "1000 bytes in 1000 ns more: 1 GB/s");
    ok(calib_cold_bw(4866048, 650e3, 650e3) == 0, "cold no slower than warm: 0 (no cost)");
    ok(calib_cold_bw(4866048, 650e3, 600e3) == 0, "cold faster than warm (noise): 0");
    ok(calib_cold_bw(4866048, 0, 600e3) == 0 && calib_cold_bw(0, 1, 2) == 0, "no warm time or no bytes: 0");
}

/* calib_swiglu_rates: the simulator's SwiGLU rates from fitted slopes (by
 * hand, tiny-moe's expert: gate + up 5,767,168 weights, down 2,883,584,
 * ffn 2,816) */
static void test_swiglu_rates(void)
{
    calib_kern_result r;
    memset(&r, 0, sizeof r);
    r.levels = 3;
    r.gu_weights = 5767168;
    r.dn_weights = 2883584;
    r.ffn = 2816;
    const double gb[3] = {156250, 144000, 144000}, db[3] = {68000, 115000, 167000};
    for (int k = 0; k < 3; k++) { r.gu_b_ns[k] = gb[k]; r.dn_b_ns[k] = db[k]; }
    r.epi_ns = 12800;
    double gu[3] = {0}, dn[3] = {0}, epi = 0;
    ok(calib_swiglu_rates(&r, 3, gu, dn, &epi) == D2_OK, "rates from the fits");
    is_near(gu[0], 5767168 / 156.25e-6, 1e-3, "gate/up level 1: 5,767,168 weights / 156.25 us a token = 3.691e10");
    is_near(dn[2], 2883584 / 167e-6, 1e-3, "down over levels 1..3: 2,883,584 weights / 167 us a token");
    is_near(epi, 2816 / 12.8e-6, 1e-6, "epilogue: 2,816 elements / 12.8 us a token = 2.2e8");
    r.dn_b_ns[1] = -5;
    ok(calib_swiglu_rates(&r, 3, gu, dn, &epi) == D2_ERANGE && strstr(d2_err_msg(), "level 2"),
       "a slope <= 0 refused, naming the level (%s)", d2_err_msg());
    r.dn_b_ns[1] = 115000;
    r.epi_ns = 0;
    ok(calib_swiglu_rates(&r, 3, gu, dn, &epi) == D2_ERANGE, "an epilogue of no time refused");
}

/* cpupin: parse, check, pin and restore */
static void test_cpupin(void)
{
    int c = 7;
    ok(cpupin_parse("--compute-cpu", "none", &c) == D2_OK && c == CPUPIN_NONE, "'none': not pinned");
    ok(cpupin_parse("--compute-cpu", "3", &c) == D2_OK && c == 3, "'3': CPU 3");
    char nb[CPUPIN_NAME_MAX];
    ok(!strcmp(cpupin_arg(12, nb), "12") && !strcmp(cpupin_arg(CPUPIN_NONE, nb), "none") &&
           !strcmp(cpupin_words(12, nb), "CPU 12") && !strcmp(cpupin_words(CPUPIN_NONE, nb), "any CPU"),
       "names: 12 / none as option values, CPU 12 / any CPU in words");
    ok(cpupin_parse("--io-cpu", cpupin_arg(1023, nb), &c) == D2_OK && c == 1023, "cpupin_arg reads back through cpupin_parse");
    const char *bad[] = {"", "x", "-1", "1024", "2x", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(cpupin_parse("--io-cpu", bad[i], &c) == D2_EINVAL && strstr(d2_err_msg(), "--io-cpu"), "'%s' refused, naming the option",
           bad[i]);
    int comp, io;
    ok(cpupin_default(&comp, &io) == D2_OK, "default placement");
    cpu_set_t mask;
    sched_getaffinity(0, sizeof mask, &mask);
    if (CPU_COUNT(&mask) >= 2) ok(comp >= 0 && io > comp && CPU_ISSET(comp, &mask) && CPU_ISSET(io, &mask),
                                  "two CPUs or more: the first two allowed (%d, %d)", comp, io);
    else ok(comp == CPUPIN_NONE && io == CPUPIN_NONE, "one CPU: nothing pinned");
    int rc_ = comp, ri = CPUPIN_DEFAULT;
    ok(cpupin_resolve(&rc_, &ri) == D2_OK && rc_ == comp && ri == io, "resolve: a given CPU kept, a default filled in (%d, %d)",
       rc_, ri);
    int nc = CPUPIN_NONE, ni = CPUPIN_NONE;
    ok(cpupin_resolve(&nc, &ni) == D2_OK && nc == CPUPIN_NONE && ni == CPUPIN_NONE, "resolve: none stays none");
    int first = -1, outside = -1;
    for (int k = 0; k < CPU_SETSIZE; k++) {
        if (CPU_ISSET(k, &mask) && first < 0) first = k;
        if (!CPU_ISSET(k, &mask) && outside < 0) outside = k;
    }
    cpupin_saved old;
    ok(cpupin_self(first, &old) == D2_OK && old.valid, "pin to CPU %d", first);
    ok(sched_getcpu() == first, "running on CPU %d (%d)", first, sched_getcpu());
    cpupin_restore(&old);
    cpu_set_t back;
    sched_getaffinity(0, sizeof back, &back);
    ok(CPU_EQUAL(&mask, &back), "mask restored");
    ok(cpupin_self(CPUPIN_NONE, &old) == D2_OK && !old.valid, "CPUPIN_NONE: nothing done, nothing to restore");
    ok(outside >= 0 && cpupin_self(outside, &old) == D2_EINVAL && !old.valid, "CPU %d outside the mask: D2_EINVAL", outside);
    ok(cpupin_check(outside, "--compute-cpu") == D2_EINVAL && strstr(d2_err_msg(), "--compute-cpu"), "check names the option");
    int bc = CPUPIN_DEFAULT, bi = outside;
    ok(cpupin_resolve(&bc, &bi) == D2_EINVAL && strstr(d2_err_msg(), "--io-cpu"), "resolve: an I/O CPU outside the mask named");
}

/* calib_reader_io: a third of the level-1 chunk rounded up to 4 KiB; the
 * file capped at 256 MiB and raised to two reads */
static void test_reader_io(void)
{
    calib_io_opts o, out;
    calib_io_opts_init(&o);
    int64_t rb = 0;
    o.file_bytes = 1LL << 30;
    calib_reader_io(&o, 30000, &out, &rb);
    ok(rb == 12288 && out.file_bytes == 256LL << 20, "30000-byte level: reads of 12288 bytes (10000 up to 4 KiB), a 1 GiB file capped at "
                                                     "256 MiB (%lld, %lld)", (long long)rb, (long long)out.file_bytes);
    o.file_bytes = 4096;
    calib_reader_io(&o, 3 * 8192, &out, &rb);
    ok(rb == 8192 && out.file_bytes == 16384, "a 4 KiB file raised to two 8 KiB reads (%lld, %lld)", (long long)rb, (long long)out.file_bytes);
}

/* calib_read_range: the sampled read sizes, by hand */
static void test_read_range(void)
{
    int64_t lo = -1, hi = -1;
    calib_read_range(3 * 300000, 3 * 100000, &lo, &hi);
    ok(lo == 49152 && hi == 602112, "chunks of 300000 and 100000 bytes: 50000 down to 4 KiB (49152) .. 600000 up (602112): "
                                    "%lld..%lld", (long long)lo, (long long)hi);
    calib_read_range(3 * (100LL << 20), 3 * 1000, &lo, &hi);
    ok(lo == 4096 && hi == 64LL << 20, "within 4 KiB..64 MiB (%lld..%lld)", (long long)lo, (long long)hi);
    calib_read_range(3 * 1000, 3 * 100000, &lo, &hi);
    ok(lo == 0 && hi == 0, "an empty range: 0..0 (%lld..%lld)", (long long)lo, (long long)hi);
}

int main(void)
{
    char dir[] = "/tmp/t_calib.XXXXXX";
    if (!mkdtemp(dir)) { printf("Bail out! mkdtemp\n"); return 1; }
    test_fit();
    test_median();
    test_reader_io();
    test_read_range();
    test_atomic(dir);
    test_measure(dir);
    test_iobuf();
    test_rates();
    test_cold_bw();
    test_swiglu_rates();
    test_cpupin();
    rmdir(dir);
    return tap_done();
}
