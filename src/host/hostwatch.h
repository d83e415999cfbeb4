/* hostwatch: the time the host takes this machine's CPUs away during a run.
 *
 * On a virtual machine the host can stop a vCPU, and the guest's own
 * accounting does not show it (steal time reads 0 on this project's VM).
 * There both vCPUs stop together for 2-15 ms on a 100 ms grid while the
 * guest reads the disk fast with both vCPUs busy, the pattern of a CPU
 * bandwidth limit on the VM that counts the host's storage work (an
 * inference from the pattern: the guest cannot read the host's settings;
 * 2026-12-07, docs/log/validation.md "Host stops").  A watcher thread per
 * watched CPU, pinned
 * there at real-time priority (SCHED_FIFO, so nothing in the guest delays
 * it), sleeps to absolute deadlines HOSTWATCH_PERIOD_NS apart; a wakeup
 * more than HOSTWATCH_LATE_NS after its deadline means that CPU ran no
 * guest code over [deadline, wakeup] (a lower bound: the stop may have
 * begun up to a period earlier).  Where every watched CPU was late at once,
 * the whole machine stood still: everything it did was pushed back by
 * that much.
 *
 * Not for: saying which host activity took the time; modelling it (the
 * simulator does not: docs/host.md says why); stops shorter than the
 * threshold; machines that refuse SCHED_FIFO (hostwatch_start says so and
 * measures nothing).  A watcher costs its CPU one wakeup per period
 * (hostwatch_tally.cpu_ns says how much). */
#ifndef D2_HOST_HOSTWATCH_H
#define D2_HOST_HOSTWATCH_H

#include <stddef.h>
#include <stdint.h>

#define HOSTWATCH_PERIOD_NS 4000000LL /* 4 ms between deadlines: on this project's VM the two
                                         watchers cost 8-12 ms of CPU per ~1 s execute run;
                                         at 2 ms they cost 21-32 ms (~20-30 us a wakeup) */
#define HOSTWATCH_LATE_NS 1000000LL   /* a wakeup this late: the CPU was taken away (a
                                         separate 2 ms watcher on an idle machine here saw 2
                                         such wakeups in 2 s; on a halted vCPU waking itself
                                         can take that long: execute keeps both CPUs busy) */
#define HOSTWATCH_MAX_CPUS 8
#define HOSTWATCH_MAX_SPANS 16384     /* late spans kept per CPU (32 s of back-to-back
                                         stops at the period); more are counted in dropped */

/* One late wakeup: the CPU ran no guest code over [start_ns, end_ns);
 * the stop began after from_ns (the watcher's previous wakeup). */
typedef struct hostwatch_span {
    int64_t start_ns; /* the missed deadline, CLOCK_MONOTONIC ns */
    int64_t end_ns;   /* the wakeup, CLOCK_MONOTONIC ns */
    int64_t from_ns;  /* the previous wakeup, CLOCK_MONOTONIC ns (<= start_ns) */
} hostwatch_span;

/* What one watched CPU saw within a window. */
typedef struct hostwatch_tally {
    int cpu;           /* the CPU watched */
    int64_t wakeups;   /* wakeups over the whole watch (not only the window) */
    int64_t late;      /* late spans that overlap the window */
    int64_t late_ns;   /* their length within the window, ns (a lower bound of the stops) */
    int64_t late_max_ns; /* the same from each span's from_ns (an upper bound), ns */
    int64_t dropped;   /* late spans not kept (more than HOSTWATCH_MAX_SPANS), whole watch */
    int64_t cpu_ns;    /* the watcher thread's own CPU time over the whole watch, ns */
} hostwatch_tally;

typedef struct hostwatch hostwatch;

/* Start a watcher on each of cpus[0..ncpu) (distinct CPUs this process may
 * use) and return once all are pinned and at real-time priority.  D2_OK;
 * D2_EINVAL (ncpu out of 1..HOSTWATCH_MAX_CPUS, a CPU repeated or not
 * allowed); D2_EIO (a thread cannot start, or SCHED_FIFO is refused: the
 * message says which; nothing keeps running); D2_ENOMEM. */
int hostwatch_start(const int *cpus, int ncpu, hostwatch **out);

/* Stop the watchers (each ends within a period) and keep what they saw.
 * Idempotent. */
void hostwatch_stop(hostwatch *w);

/* What watcher k (0..ncpu) saw within [from_ns, to_ns) (CLOCK_MONOTONIC).
 * Call after hostwatch_stop.  D2_OK, D2_EINVAL (k out of range). */
int hostwatch_cpu(const hostwatch *w, int k, int64_t from_ns, int64_t to_ns, hostwatch_tally *t);

/* The time within [from_ns, to_ns) when every watched CPU was late at
 * once (the machine stood still) and the number of such spans: *ns from
 * the spans as [start_ns, end_ns) (a lower bound), *max_ns from them as
 * [from_ns, end_ns) (an upper bound).  Call after hostwatch_stop.  D2_OK,
 * D2_ENOMEM. */
int hostwatch_stopped(const hostwatch *w, int64_t from_ns, int64_t to_ns, int64_t *ns, int64_t *max_ns, int64_t *spans);

void hostwatch_free(hostwatch *w);

/* The arithmetic of hostwatch_stopped, for any span lists: lists[i] holds
 * n[i] spans sorted by start and not overlapping each other.  *ns = the
 * length of [from, to) covered by a span of every list (each span taken
 * as [start_ns, end_ns), or as [from_ns, end_ns) when wide is 1), *spans =
 * the number of maximal intervals of that cover.  k = 0: 0.  D2_OK,
 * D2_EINVAL (k out of 0..HOSTWATCH_MAX_CPUS, an unsorted list). */
int hostwatch_overlap(const hostwatch_span *const *lists, const size_t *n, int k, int wide, int64_t from, int64_t to,
                      int64_t *ns, int64_t *spans);

#endif
