/* cpushare: the CPU time other processes of this machine take on given
 * CPUs during a run, so a sim-vs-real comparison can tell a busy machine.
 *
 * hostwatch (hostwatch.h) sees the host stopping the VM; it cannot see
 * another guest process sharing a CPU with the run's threads, because its
 * real-time watchers preempt such a process at once.  Here the kernel's
 * own account says it: the busy time /proc/stat charges to each CPU (user,
 * nice and system: process context; interrupt, softirq, steal and idle
 * time left out), read at the start and the end of a span; the caller
 * subtracts its own threads' CPU time on that CPU and what is left ran for
 * someone else.  The account is kept in USER_HZ ticks (100 per second
 * here), so each CPU's figure is good to about two ticks (20 ms).
 *
 * Not for: naming the other processes; Linux only (elsewhere, or when
 * /proc/stat cannot be read or lacks a CPU, cpushare_read says D2_ENOTFOUND
 * and nothing is measured). */
#ifndef D2_HOST_CPUSHARE_H
#define D2_HOST_CPUSHARE_H

#include <stdint.h>

#define CPUSHARE_MAX 8 /* CPUs read at once */

/* busy_ns[i] = the busy time the kernel has charged to CPU cpus[i] since
 * boot (user + nice + system), ns; D2_EINVAL for n outside 1..CPUSHARE_MAX
 * or a negative CPU, D2_ENOTFOUND when /proc/stat cannot tell. */
int cpushare_read(const int *cpus, int n, int64_t *busy_ns);

/* The same from the text of a /proc/stat (for the tests): D2_EFORMAT for
 * a cpuN line that is not numbers, D2_ENOTFOUND for a CPU it lacks. */
int cpushare_parse(const char *text, const int *cpus, int n, int64_t *busy_ns);

#endif
