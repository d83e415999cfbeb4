/* cpupin: where this machine's measurements and runs execute.
 *
 * calibrate times the kernels and execute runs its compute thread on one
 * CPU, and reads the disk on another; both pin their threads the same way
 * so that the rates a profile records are rates of the CPU the run
 * computes on.  Why: on this project's 2-vCPU VM the same kernel pass took
 * 580 us on vCPU 0 and 710-890 us on vCPU 1 (2026-12-06, docs/log/validation.md
 * "Where the threads run"), and the disk's interrupts all land on vCPU 1.
 * Not for: choosing CPUs by speed (the default is the first two CPUs the
 * process may use, whatever they measure), NUMA placement. */
#ifndef D2_HOST_CPUPIN_H
#define D2_HOST_CPUPIN_H

#define CPUPIN_NONE (-1)    /* a thread left where the scheduler puts it */
#define CPUPIN_DEFAULT (-2) /* not given: cpupin_resolve puts the default there */

/* A thread's CPU mask, kept to restore. */
typedef struct cpupin_saved {
    unsigned char bits[128]; /* the mask before cpupin_self, CPU c at bit c % 8 of byte c / 8
                                (a cpu_set_t's 1024 CPUs, without making every includer
                                define _GNU_SOURCE) */
    int valid;               /* 1 when bits hold a mask to restore */
} cpupin_saved;

/* The default placement: with two or more CPUs allowed to this process the
 * first one computes and the second reads; with one, *compute = *io =
 * CPUPIN_NONE.  Status: D2_OK, D2_EIO when the mask cannot be read. */
int cpupin_default(int *compute, int *io);

/* "This process's CPUs" below: the calling thread's CPU mask at the first
 * call of any of these functions (call cpupin_default before pinning). */

/* The options --compute-cpu and --io-cpu as calibrate and execute take
 * them: each CPUPIN_DEFAULT becomes the default placement's CPU, then both
 * are checked.  D2_OK; D2_EINVAL naming the option (a bad argument);
 * D2_EIO (the mask cannot be read). */
int cpupin_resolve(int *compute, int *io);

/* Is cpu one this process may run on?  D2_OK, or D2_EINVAL naming what
 * (the option name `what` in the message). */
int cpupin_check(int cpu, const char *what);

/* Pin the calling thread to cpu (CPUPIN_NONE: leave it); its old mask into
 * *old (may be NULL).  D2_OK, D2_EINVAL (not an allowed CPU), D2_EIO. */
int cpupin_self(int cpu, cpupin_saved *old);

/* Give the calling thread back the mask *old held (nothing when invalid). */
void cpupin_restore(const cpupin_saved *old);

/* cpu as an option value ("N", or "none" for CPUPIN_NONE; what
 * cpupin_parse reads back) and as words for a person ("CPU N", "any CPU"),
 * into buf[CPUPIN_NAME_MAX]. */
#define CPUPIN_NAME_MAX 16
const char *cpupin_arg(int cpu, char *buf);
const char *cpupin_words(int cpu, char *buf);

/* Parse "N" (a CPU number, 0..1023) or "none" for option `opt`.  D2_OK or
 * D2_EINVAL with a message naming opt and the value. */
int cpupin_parse(const char *opt, const char *s, int *cpu);

#endif
