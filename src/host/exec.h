/* exec.h - run a serving plan for real on this host: one I/O thread reads
 * MWQ level chunks with pread (page cache bypassed) in the plan's load order
 * into real allocations under the expert-memory budget; compute threads run
 * the level-k kernels of quant/kern.h for each item's tokens as soon as its
 * load is done; wall-clock times of every operation are recorded.  It does
 * not decide the plan (src/sim does; host/execplan.h adapts it) and does not
 * print or open databases. */
#ifndef D2_HOST_EXEC_H
#define D2_HOST_EXEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/fileio.h"
#include "host/opjoin.h"
#include "quant/kern.h"

#define EXEC_MATRICES 3 /* gate, up, down (SwiGLU) */
#define EXEC_HOST_LEVELS 8 /* levels exec_result.host_in_compute_ns tells apart */

/* Where each (layer, expert, matrix, level) chunk lies in the model file.
 * Matrices 0 and 1 map hidden -> ffn (gate, up), matrix 2 ffn -> hidden. */
typedef struct exec_chunk {
    int64_t off;   /* file offset, bytes */
    int64_t bytes; /* chunk size, bytes (kern_chunk_bytes) */
} exec_chunk;

typedef struct exec_store {
    char path[FILEIO_PATH_MAX];
    int fd;                     /* open for reading */
    int direct;                 /* fd has O_DIRECT (reads widened to 4 KiB-aligned extents) */
    uint32_t layers, experts;   /* MoE layers, experts per layer */
    int levels;                 /* K */
    kern_shape shape[EXEC_MATRICES];
    exec_chunk *chunk;          /* [((layer*experts + expert)*3 + matrix)*levels + level-1] */
} exec_store;

/* Open path for reading with the given layout (chunk array copied).
 * O_DIRECT when the filesystem accepts it (each chunk then read as the 4 KiB
 * aligned extent around it); otherwise buffered reads, each followed by
 * POSIX_FADV_DONTNEED so the next load of it reads the disk again. */
int exec_store_open(exec_store *s, const char *path, uint32_t layers, uint32_t experts, int levels,
                    const kern_shape shape[EXEC_MATRICES], const exec_chunk *chunk);
void exec_store_close(exec_store *s);
const exec_chunk *exec_store_chunk(const exec_store *s, uint32_t layer, uint32_t expert, int matrix, int level);
/* Bytes of one unit = level `level` of every matrix of an expert. */
int64_t exec_store_unit_bytes(const exec_store *s, uint32_t layer, uint32_t expert, int level);

/* One operation of the plan.  phase = step * layers + layer: the loads of a
 * phase start only after every compute of the earlier phases has ended (the
 * routing of a layer is known only then: no preloading, paper section 4). */
typedef struct exec_op {
    uint32_t phase;            /* step * layers + layer */
    uint32_t layer, expert;
    uint32_t level;            /* 1-based */
    uint32_t tokens;           /* compute: tokens that need this level or a higher one */
    uint32_t final;            /* compute: tokens whose bit-width is exactly this level */
} exec_op;

/* Loads in I/O-queue order, computes in compute-queue order (phases
 * non-decreasing in both).  A compute of level k needs levels 1..k of its
 * expert resident: loaded in an earlier phase and kept, or loaded in this
 * one.  serial: a load starts only when every compute whose unit is already
 * loaded has ended (the "sequential" strategy). */
typedef struct exec_plan {
    exec_op *load;
    size_t n_load;
    exec_op *comp;
    size_t n_comp;
    int serial;
} exec_plan;

typedef struct exec_opts {
    int64_t budget;            /* expert bytes held at once, bytes */
    int threads;               /* compute threads (tokens split among them), >= 1 */
    uint64_t seed;             /* token activations */
    int verify;                /* keep one token per (phase, expert) to check afterwards */
    FILE *timeline;            /* NULL, or CSV lines start_ns,end_ns,queue,layer,expert,level,tokens
                                  (no header),
                                  phase by phase as the simulator writes it (opjoin_tl_write_csv;
                                  a zero-length non-expert line opens each phase) */
    int prefault;              /* before timing: fill the weight pool (loads are read into its
                                  buffers, each zeroed by the CPU when new) with as many buffers
                                  per level as the budget holds at once; 0: it grows during the run */
    int sleep_wait;            /* 0 (default): the I/O thread and the compute coordinator poll
                                  (spin with pause) when they wait for each other, as serving
                                  engines' worker threads do; 1: they block on a condition
                                  variable.  On this project's VM a compute that starts after
                                  its thread slept 0.2-1 ms ran 40-60% slower for its first
                                  ~200 us (docs/host.md), which the simulator does not model */
    opjoin_tl *ops;            /* NULL, or receives every op of the run as a typed record
                                  (times from the run's first op, ns; step = phase / layers) */
    int compute_cpu;           /* the compute thread pinned to this CPU (CPUPIN_NONE = -1:
                                  not pinned); calibrate times the kernels there */
    int io_cpu;                /* the calling thread, which runs the I/O loop, pinned here
                                  during the run and given its old mask back after it
                                  (CPUPIN_NONE: not pinned) */
    int host_watch;            /* 1: a real-time watcher on the compute CPU and one on the I/O
                                  CPU measure the time the host takes them away during the run
                                  (host/hostwatch.h; needs both pinned and SCHED_FIFO, else
                                  exec_result.host_watch_note says why nothing was measured) */
} exec_opts;

typedef struct exec_result {
    int64_t makespan_ns;       /* first load start to last operation end, ns */
    int64_t io_busy_ns;        /* sum of load durations, ns */
    int64_t comp_busy_ns;      /* sum of compute durations, ns */
    int64_t comp_thread_cpu_ns;  /* CPU time of the compute coordinator thread from its start to its
                                    end (its waits included: they spin unless --wait sleep), ns;
                                    helpers not counted */
    int64_t comp_thread_wall_ns; /* wall time of the same span, ns (CPU < wall: the thread was kept
                                    off the CPU, or slept in its waits) */
    int64_t comp_idle_ns;      /* makespan - comp_busy: the compute queue's bubbles, ns */
    int64_t io_wait_mem_ns;    /* time the I/O thread waited for budget room, ns */
    int64_t bytes_read;        /* expert bytes loaded, bytes */
    int64_t loads, computes;   /* operations done */
    int64_t peak_expert_bytes; /* most expert bytes held at once, bytes (<= budget) */
    int64_t peak_alloc_bytes;  /* the same allocations with alignment padding, bytes */
    int64_t pool_new_buffers;  /* weight-pool buffers allocated (and zeroed) during the timed run
                                  (0 when exec_opts.prefault filled the pool) */
    int64_t pool_bytes;        /* the weight pool's buffers made before timing (host/iobuf.h), bytes */
    int64_t pool_huge_bytes;   /* of them, bytes in transparent huge pages; -1 when it cannot tell */
    int64_t peak_rss_bytes;    /* process peak resident set (getrusage), bytes */
    int64_t token_products;    /* token x level x matrix products computed */
    double verify_max_rel;     /* max relative difference to the one-shot kernels, 0 if none checked */
    double verify_max_rel_ref; /* max relative difference to kern_matvec_ref (double, float x) */
    int64_t verified;          /* tokens checked */
    char io_method[32];        /* "O_DIRECT" or "POSIX_FADV_DONTNEED" */
    int host_watched;          /* 1: the host_* fields below were measured (exec_opts.host_watch) */
    char host_watch_note[160]; /* when asked but not measured: why ("" otherwise) */
    int64_t host_stopped_ns;   /* within the makespan, time both CPUs ran no guest code at once
                                  (the machine stood still; a lower bound), ns */
    int64_t host_stopped_max_ns; /* the same counted from each watcher's wakeup before the late one
                                  (an upper bound), ns */
    int64_t host_stopped_spans;/* such spans */
    int64_t host_late_ns[2];   /* within the makespan, time the compute CPU [0] and the I/O CPU
                                  [1] each ran no guest code (lower bounds), ns */
    int64_t host_late_max_ns[2]; /* the same counted from each watcher's wakeup before the late one
                                  (upper bounds), ns */
    int64_t host_late_spans[2];/* late wakeups of each watcher within the makespan */
    int64_t host_watch_cpu_ns; /* the watchers' own CPU time (their cost to the run), ns */
    int64_t host_in_compute_ns[EXEC_HOST_LEVELS]; /* [k-1]: of the level-k compute items, the time the
                                  host took the compute CPU inside them (lower bound), ns;
                                  levels above EXEC_HOST_LEVELS count in the last */
    int levels;                /* K of the store (host_in_compute_ns[0..min(K, EXEC_HOST_LEVELS)) apply) */
    int others_measured;       /* 1: others_ns was measured (host/cpushare.h; the threads pinned to
                                  two CPUs, no helper threads, /proc/stat readable) */
    int64_t others_ns[2];      /* CPU time other processes of this machine took on the compute CPU [0]
                                  and the I/O CPU [1] from the compute thread's start to its end
                                  (the kernel's busy time there less this run's threads on it,
                                  kept in [0, others_span_ns]; good to about 20 ms each), ns */
    int64_t others_span_ns;    /* that span, ns */
} exec_result;

/* Check that the plan is consistent with the store and self-consistent
 * (levels in range, every compute's levels present, loads ascending per
 * expert within a phase).  D2_EINVAL naming the first bad op. */
int exec_plan_check(const exec_plan *p, const exec_store *s);

/* Run it.  A unit larger than the budget: D2_ERANGE.  The budget is never
 * exceeded: the I/O thread waits for computes to free room; should the
 * plan need more than the budget with nothing left to free, D2_ERANGE
 * (never a hang). */
int exec_run(const exec_store *s, const exec_plan *p, const exec_opts *o, exec_result *r);

#endif
