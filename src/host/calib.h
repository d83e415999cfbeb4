/* calib.h - measure this machine: storage read time against read size with
 * the page cache bypassed, memory streaming bandwidth, a float GEMV/GEMM
 * rate, and a fitted t = lat + size/bw.  Produces numbers only: it does not
 * write profiles (the CLI does, with calib_file_write_atomic), never prints,
 * and installs no signal handlers: its temporary data file has no name from
 * the moment it exists (O_TMPFILE, or mkstemp + immediate unlink). */
#ifndef D2_HOST_CALIB_H
#define D2_HOST_CALIB_H

#include <stdint.h>
#include <stddef.h>

#include "core/fileio.h"

#define CALIB_MAX_SIZES 40
#define KERN_MAX_LEVELS_CALIB 8 /* = KERN_MAX_LEVELS of quant/kern.h */

/* Options of the storage measurement; calib_io_opts_init sets defaults. */
typedef struct calib_io_opts {
    char dir[FILEIO_PATH_MAX]; /* directory of the temporary data file */
    int64_t file_bytes;      /* temporary file size, bytes (default 1 GiB) */
    int64_t min_read;        /* smallest read, bytes, a multiple of 4096 (default 4 KiB) */
    int64_t max_read;        /* largest read, bytes, >= min_read (default 64 MiB) */
    double size_step;        /* factor between read sizes, each rounded up to 4 KiB
                                (default 2: powers of 2; 1.25 samples a range densely) */
    int64_t bytes_per_size;  /* bytes read per size and pass, bytes (default 128 MiB) */
    int min_reps, max_reps;  /* timed reads per size: at least / at most (default 5 / 200) */
    int fresh_buffers;       /* 1: read into a new aligned allocation each time (page
                                faults included); 0 (default): reuse one, as `execute`
                                does with its recycled, already mapped weight buffers */
    int64_t buf_pool_bytes;  /* the reads land in turn in a pool of this many bytes of execute's kind of
                                memory (host/iobuf.h), as execute's loads go to the buffers of its weight
                                pool, bytes (default 128 MiB; at least max_read is used) */
    uint64_t seed;           /* offsets and file content */
    int reader_cpu;          /* calib_interference's reader thread pinned to this CPU
                                (host/cpupin.h; default -1, CPUPIN_NONE: not pinned) */
    char read_file[FILEIO_PATH_MAX]; /* read this existing file instead of writing a temporary one
                                (execute's weight file: the reads the run makes; "" = the temporary
                                file of file_bytes in dir); every step that reads the disk reads it */
    int fit_mean;            /* 1 (default): fit each size's mean read time without its stalls (the
                                expected time of a read, what a sum of loads adds up); 0: its median */
} calib_io_opts;

void calib_io_opts_init(calib_io_opts *o);

/* One read size: repeated reads at random aligned offsets, interleaved with
 * the other sizes so machine noise hits all sizes alike. */
typedef struct calib_io_point {
    int64_t size;            /* bytes per read */
    int reps;                /* timed reads */
    double median_ns;        /* median time of one read, ns */
    double mean_ns;          /* mean time of one read without the stalls (CALIB_STALL_FACTOR), ns */
    double min_ns, max_ns;   /* fastest and slowest read, ns */
    double fit_ns;           /* lat + size/bw of the fit, ns */
} calib_io_point;

typedef struct calib_io_result {
    char cache_bypass[32];   /* "O_DIRECT" or "POSIX_FADV_DONTNEED" */
    char tmpfile[32];        /* "O_TMPFILE" or "mkstemp+unlink" */
    int64_t file_bytes;      /* bytes written to the temporary file */
    double write_bw;         /* bytes/s writing it (fdatasync included) */
    int n;                   /* points */
    calib_io_point pt[CALIB_MAX_SIZES];
    int fit_mean;            /* the fit's statistic per size: 1 the mean without stalls, 0 the median */
    double bw;               /* fitted bandwidth, bytes/s */
    double lat_ns;           /* fitted latency per read, ns (>= 0) */
    double max_rel_err;      /* max |y - fit| / y over the points (y: the fitted statistic) */
    int64_t reads;           /* timed reads, all sizes */
    int64_t stalls;          /* of them, reads longer than CALIB_STALL_FACTOR x their size's median */
    double stall_ns;         /* the stalls' summed time, ns (reported: the fit uses medians) */
    int64_t buf_bytes;       /* bytes of the reads' buffer pool (host/iobuf.h: what execute's weight pool reads into) */
    int64_t buf_huge_bytes;  /* of them, bytes the kernel backed with huge pages; -1 when it cannot tell */
} calib_io_result;

#define CALIB_STALL_FACTOR 10 /* a stall: a read (or an execute load, host/opjoin.h) over 10x its typical time */

/* Write the temporary file (or open o->read_file), time the reads, fit
 * (weighted least squares, weights 1/y^2, y each size's mean without stalls
 * or, with fit_mean = 0, its median, so each point counts by its relative
 * error; GSL).  D2_EIO names the directory or file and the reason
 * (read-only, no space, ...); the temporary file never outlives the call or
 * the process. */
int calib_io_measure(const calib_io_opts *o, calib_io_result *r);

/* Fit t = lat + size/bw to the points' means (r->fit_mean) or medians
 * (fills bw, lat_ns, fit_ns, max_rel_err).  Exposed for tests. */
int calib_io_fit(calib_io_result *r);

/* Streaming read bandwidth of a buffer of `bytes` (>= 1 MiB) by `threads`
 * threads (each sums its share), median of `reps` passes, bytes/s. */
int calib_mem_bw(int64_t bytes, int threads, int reps, double *bw);

/* Rate of a plain C float32 y = W x over `tokens` input vectors (W rows x
 * cols, row-major; the loop the compiler vectorizes), median of `reps`,
 * FLOP/s (2 per multiply-add). */
int calib_gemm_rate(int64_t rows, int64_t cols, int tokens, int reps, double *flops);

/* The MWQ level-k kernels (quant/kern.h kern_matmul, incremental level k)
 * on one expert of shape (ffn x hidden gate and up, hidden x ffn down),
 * synthetic weights quantized by MWQ (b1, K, group), for each level and
 * token count: median thread CPU time of the three matrices' products
 * (CPU time, so other processes on a shared machine do not inflate it;
 * the kernels are single-threaded and compute-bound).  Then per
 * level a least-squares line t = a_k + b_k T (GSL, weights 1/t^2). */
#define CALIB_MAX_T 12
typedef struct calib_kern_result {
    int levels;                               /* K */
    int nt;                                   /* token counts measured */
    int tokens[CALIB_MAX_T];                  /* token counts */
    double ns[KERN_MAX_LEVELS_CALIB][CALIB_MAX_T]; /* median time, ns */
    double a_ns[KERN_MAX_LEVELS_CALIB];       /* fitted fixed part per level, ns */
    double b_ns[KERN_MAX_LEVELS_CALIB];       /* fitted time per token per level, ns */
    int64_t weights;                          /* weights of one expert */
    double epi_ns;                            /* median time of one token's SwiGLU
                                                 epilogue (silu(gate) * up, int8
                                                 activations for down), ns */
    /* The calls execute makes (src/host/exec.c comp_slice), each timed and
     * fitted as above: gate and up at level k alone (kern_matmul lo = hi =
     * k), and down over levels 1..k in one call (lo = 1, hi = k). */
    double gu_ns[KERN_MAX_LEVELS_CALIB][CALIB_MAX_T];   /* median time of gate + up at level k, ns */
    double gu_a_ns[KERN_MAX_LEVELS_CALIB], gu_b_ns[KERN_MAX_LEVELS_CALIB]; /* fit, ns and ns/token */
    double dn_ns[KERN_MAX_LEVELS_CALIB][CALIB_MAX_T];   /* median time of down over levels 1..k, ns */
    double dn_a_ns[KERN_MAX_LEVELS_CALIB], dn_b_ns[KERN_MAX_LEVELS_CALIB]; /* fit, ns and ns/token */
    int64_t gu_weights;                       /* weights of gate and up: 2 hidden ffn */
    int64_t dn_weights;                       /* weights of down: hidden ffn */
    int64_t ffn;                              /* epilogue elements per token */
    char impl[16];                            /* kernel path: "scalar" or "avx2" */
} calib_kern_result;

/* The simulator's SwiGLU rates from a kernel result (device.h
 * swiglu_gu_rate, swiglu_down_rate, swiglu_epilogue_rate), for levels
 * 1..r->levels (at most n): gu[k-1] = gu_weights / gu_b_ns[k-1] and
 * dn[k-1] = dn_weights / dn_b_ns[k-1] in weights x tokens / s, *epi = ffn /
 * epi_ns in elements x tokens / s.  D2_ERANGE when a slope or the epilogue
 * is not > 0 (the machine too noisy to fit). */
int calib_swiglu_rates(const calib_kern_result *r, int n, double *gu, double *dn, double *epi);
int calib_kern_measure(int64_t hidden, int64_t ffn, int64_t group, int base_bits, int levels, const int *tokens,
                       int nt, int reps, calib_kern_result *r);

/* A kernel probe: one expert of hidden x ffn quantized (V1, synthetic
 * weights, seeded) once; a pass = levels 1, 2, 3 of its three matrices for one
 * token, as an execute item runs them.  calibrate records the probe's median
 * with the profile and execute runs it right before and after its timed run,
 * so a validation can tell whether the machine kept the speed it was
 * calibrated at. */
typedef struct calib_probe calib_probe;
int calib_probe_new(int64_t hidden, int64_t ffn, calib_probe **out);
/* Median wall time of `passes` passes, ns. */
double calib_probe_run(calib_probe *p, int passes);
void calib_probe_free(calib_probe *p);
/* 1 when both probe times are within tol (a fraction) of the reference. */
int calib_probe_agrees(double before_ns, double after_ns, double ref_ns, double tol);

/* What reading the clocks costs (wall ns per read, median of `blocks` blocks
 * of `reads` reads each): the monotonic clock execute reads around every
 * operation, and the thread CPU-time clock it reads once per run (on this
 * project's VM the second is a system call, ~1.3 us; docs/host.md). */
int calib_clock_cost(int reads, int blocks, double *mono_ns, double *thread_cpu_ns);

/* The same pass on the weights as a serving loop finds them: a pool of
 * copies of the probe's expert (at least pool_bytes, far beyond the caches;
 * calib_cold's pool), each pass on the next copy.  The warm probe above runs
 * from the CPU cache, so a machine whose DRAM got slower (another tenant
 * streaming memory) passes it while every expert compute of a run slows;
 * this one sees that.  calibrate records its median, execute runs it
 * before and after its timed run beside the warm one. */
typedef struct calib_cold_probe calib_cold_probe;
/* The cold probe's pool, in calibrate and in execute alike (whatever
 * calibrate's --pool-size), so the reference and the runs' probes read the
 * same pool. */
#define CALIB_COLD_PROBE_POOL_BYTES (128LL << 20)
int calib_cold_probe_new(int64_t hidden, int64_t ffn, int64_t pool_bytes, calib_cold_probe **out);
/* Median wall time of `passes` passes, each on the next copy, ns.  Before
 * each pass (untimed by the pass) one byte of every 4 KiB page of its copy
 * is read: the copy's page translations present and cached, its data still
 * in DRAM.  Without it a pass right after the pool was made (translations
 * warm) and one after a run (the pool untouched for a second or more) differ
 * by what this VM's host does to idle pages: measured 2026-12-06 (docs/
 * host.md), a first read per page of 28-35 ns fresh and up to 390 ns after
 * 3-10 s idle, 13-22 ns on the next read.  *touch_ns (may be NULL): the
 * median time of those reads per copy, ns: that effect, reported, not gated. */
double calib_cold_probe_run(calib_cold_probe *p, int passes, double *touch_ns);
void calib_cold_probe_free(calib_cold_probe *p);

/* Machine-readable notes calibrate writes into a profile as comment lines
 * "# <key> = <value>" (the simulator's parameters are not the place for
 * them): the probe's median and its ratio to the kernel fits, the cold
 * probe's median. */
#define CALIB_NOTE_PROBE "probe_ns"
#define CALIB_NOTE_PROBE_FIT "probe_fit_ratio"
#define CALIB_NOTE_COLD_PROBE "cold_probe_ns"
#define CALIB_NOTE_COMPUTE_CPU "compute_cpu" /* where calibrate ran its kernels (host/cpupin.h) */
#define CALIB_NOTE_IO_CPU "io_cpu"           /* where it read the disk */
#define CALIB_NOTE_CLOCK_MONO "clock_mono_read_ns"             /* one monotonic clock read, wall ns */
#define CALIB_NOTE_CLOCK_THREAD "clock_thread_cpu_read_ns"      /* one thread CPU-time read, wall ns */
/* The value of note key in the profile at path; 0 when absent or not > 0. */
double calib_profile_note(const char *path, const char *key);

/* Cold weights (the simulator's device.cold_weight_bw).  The kernel rates
 * above repeat one expert, so its weights sit in the CPU cache; a serving
 * loop walks many experts and finds each in DRAM.  A pool of copies of one
 * expert (V1, levels 1..3; at least pool_bytes in all, far beyond the
 * last-level cache) is made, and a pass (levels 1..3 of the three matrices,
 * one token: the probe's pass) is timed in thread CPU time in `blocks`
 * alternating blocks: on the same copy right after a pass over it (warm),
 * and on the next copy of the pool (cold: last touched a whole pool ago).
 * cold_weight_bw = pass_bytes / (median cold - median warm); 0 when cold is
 * not slower (the cache makes no difference). */
typedef struct calib_cold_result {
    double warm_ns, cold_ns;      /* medians of one pass, ns */
    int64_t pass_bytes;           /* stored bytes one pass reads */
    int copies;                   /* expert copies in the pool */
    double bw;                    /* cold_weight_bw, bytes/s (0 = none) */
} calib_cold_result;
int calib_cold(int64_t hidden, int64_t ffn, int64_t pool_bytes, int blocks, calib_cold_result *r);
/* bytes / (cold_ns - warm_ns) in bytes/s; 0 when cold_ns <= warm_ns or
 * either is not > 0.  Exposed for tests. */
double calib_cold_bw(int64_t bytes, double warm_ns, double cold_ns);

/* The reads of the interference and host-stops steps: the size execute
 * issues for a model whose V1 level-1 expert chunk (three matrices) is
 * level1_bytes, one matrix's third rounded up to 4 KiB, into *read_bytes;
 * *out = *o with the file at most 256 MiB and at least two reads. */
void calib_reader_io(const calib_io_opts *o, int64_t level1_bytes, calib_io_opts *out, int64_t *read_bytes);
/* The read sizes a calibration before a run samples densely (a factor 1.25
 * apart), where read time is not linear in size: half a level-2 chunk ..
 * twice a level-1 chunk of a model whose V1 expert levels 1 and 2 (three
 * matrices each) are level1_bytes and level2_bytes (a chunk: one matrix's
 * third), 4 KiB-aligned, within 4 KiB..64 MiB; *lo = *hi = 0 when empty. */
void calib_read_range(int64_t level1_bytes, int64_t level2_bytes, int64_t *lo, int64_t *hi);

/* How much a concurrent load slows the kernels (the simulator's
 * device.io_interference) and how much the kernels slow a load
 * (device.read_interference): `blocks` blocks cycling through three kinds,
 * (0) passes over the pool of calib_cold (cold weights, as a serving loop
 * computes; pool_bytes) alone, (1) the same passes while a second thread
 * reads a nameless temporary file (o->dir, o->file_bytes) with O_DIRECT at
 * random offsets, read_bytes per read, (2) that reader while the calling
 * thread spins (execute's compute thread polls while it waits), as many
 * reads as in the block before.  x = median pass time (1) / (0) - 1 in
 * thread CPU time: what the reads' memory traffic and interrupts cost the
 * kernels, not how long other processes kept the compute thread off a
 * CPU; y = median read time (1) / (2) - 1, wall time (a read's time is
 * the disk's and the memory system's, not a CPU's).  Both at least 0. */
typedef struct calib_interference_result {
    double alone_ns, with_io_ns;  /* medians of one pass, ns */
    double x;                     /* compute slowdown while loading */
    double read_passes_ns, read_spin_ns; /* medians of one read during passes / while spinning, ns (wall) */
    double y;                     /* read slowdown while computing */
    int64_t reads_passes, reads_spin; /* reads timed in each kind */
    int64_t reads, read_bytes;    /* reads the reader made, bytes per read */
} calib_interference_result;
int calib_interference(const calib_io_opts *o, int64_t hidden, int64_t ffn, int64_t pool_bytes, int64_t read_bytes,
                       int blocks, calib_interference_result *r);

/* The time the host takes this machine's CPUs (host/hostwatch.h) while
 * the disk is read back to back, against while it is not: passes over the
 * pool of calib_cold (pool_bytes) on the calling thread, which runs on
 * compute_cpu, for idle_s seconds while a thread on o->reader_cpu spins
 * (both CPUs busy, as in execute, nothing read), then for read_s seconds
 * from the moment a reader thread there runs, while it reads a nameless
 * temporary file (o->dir, o->file_bytes) with O_DIRECT at random offsets,
 * read_bytes per read (at least one read however late the thread starts);
 * a watcher on each of the two CPUs throughout.  Measured and reported, not
 * a device parameter: on this project's VM the host's share moved between
 * 0 and ~10% from one run to the next at the same reads (docs/host.md,
 * "Host stops").  D2_EINVAL (CPUs not pinned to two, bad sizes or
 * durations), D2_EIO (no real-time priority: the message says so), D2_ENOMEM. */
typedef struct calib_host_phase {
    int64_t span_ns;              /* wall time of the phase, ns */
    int64_t taken_ns[2];          /* time the host took the compute CPU [0] and the I/O CPU [1]
                                     (late watcher wakeups: lower bounds), ns */
    int64_t stopped_ns;           /* both at once (the machine stood still), ns */
    int64_t stopped_spans;        /* such spans */
    int64_t reads;                /* reads made in the phase (0 in the idle one) */
    int passes;                   /* kernel passes made */
    double pass_ns;               /* median pass, wall time, ns */
} calib_host_phase;
typedef struct calib_host_stops_result {
    calib_host_phase idle, reading;
    int64_t read_bytes;           /* bytes per read */
} calib_host_stops_result;
int calib_host_stops(const calib_io_opts *o, int compute_cpu, int64_t hidden, int64_t ffn, int64_t pool_bytes,
                     int64_t read_bytes, double idle_s, double read_s, calib_host_stops_result *r);

/* Median of n doubles (sorts a copy).  n >= 1. */
double calib_median(const double *x, int n);
/* Of t[0..n), the values above factor x median: how many, and their sum. */
void calib_stalls(const double *t, int n, double median, double factor, int64_t *count, double *sum);

/* Write data to path atomically: a temporary file in the same directory,
 * fsync, rename.  The temporary is registered with core/fileio while it
 * exists (removed on a signal by src/cli's handler).  On failure nothing is
 * left and path is untouched. */
int calib_file_write_atomic(const char *path, const char *data, size_t n);

/* Host facts for the profile. */
int64_t calib_host_mem_bytes(void);
int calib_host_cpus(void);
void calib_host_cpu_name(char *buf, size_t n);
/* The 1-minute load average (/proc/loadavg): how quiet the machine was; -1 if unknown. */
double calib_host_loadavg1(void);

#endif
