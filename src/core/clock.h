/* clock.h - the one monotonic wall clock of the program, for benchmarks,
 * progress lines, calibration and the planner's own overhead metric.  It is
 * never simulated time: the simulator's "now" belongs to its event engine
 * (src/sim/des.h) and no model code reads this clock. */
#ifndef D2_CORE_CLOCK_H
#define D2_CORE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC, nanoseconds since an arbitrary fixed point. */
int64_t clock_mono_ns(void);
/* The same in seconds. */
double clock_mono_s(void);
/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), nanoseconds:
 * what a compute-bound kernel cost, whatever else shares the machine. */
int64_t clock_thread_cpu_ns(void);

#endif
