/* cpupin: pin threads to CPUs for calibrate and execute (cpupin.h).  Not
 * for: anything that picks CPUs by measuring them. */
#define _GNU_SOURCE
#include "host/cpupin.h"

#include <sched.h>

#include "core/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The process's CPUs: the calling thread's mask at the first call of any
 * cpupin function, before this program pinned anything (calibrate and
 * execute call cpupin_default first). */
static cpu_set_t g_allowed;
static int g_allowed_err;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void read_allowed(void)
{
    CPU_ZERO(&g_allowed);
    if (sched_getaffinity(0, sizeof g_allowed, &g_allowed) != 0) g_allowed_err = errno ? errno : EINVAL;
}

static int allowed(cpu_set_t *s)
{
    pthread_once(&g_once, read_allowed);
    if (g_allowed_err) D2_ERROR(D2_EIO, "cannot read this process's CPU mask: %s", strerror(g_allowed_err));
    *s = g_allowed;
    return D2_OK;
}

int cpupin_default(int *compute, int *io)
{
    *compute = *io = CPUPIN_NONE;
    cpu_set_t s;
    D2_TRY(allowed(&s));
    if (CPU_COUNT(&s) < 2) return D2_OK;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &s)) {
            if (found++ == 0) *compute = c;
            else *io = c;
        }
    return D2_OK;
}

int cpupin_resolve(int *compute, int *io)
{
    int dc, di;
    D2_TRY(cpupin_default(&dc, &di));
    if (*compute == CPUPIN_DEFAULT) *compute = dc;
    if (*io == CPUPIN_DEFAULT) *io = di;
    D2_TRY(cpupin_check(*compute, "--compute-cpu"));
    return cpupin_check(*io, "--io-cpu");
}

int cpupin_check(int cpu, const char *what)
{
    if (cpu == CPUPIN_NONE) return D2_OK;
    cpu_set_t s;
    D2_TRY(allowed(&s));
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &s))
        D2_ERROR(D2_EINVAL, "%s %d: not a CPU this process may run on (%d allowed)", what, cpu, CPU_COUNT(&s));
    return D2_OK;
}

int cpupin_self(int cpu, cpupin_saved *old)
{
    if (old) old->valid = 0;
    if (cpu == CPUPIN_NONE) return D2_OK;
    D2_TRY(cpupin_check(cpu, "CPU"));
    cpu_set_t prev;
    CPU_ZERO(&prev);
    int e = pthread_getaffinity_np(pthread_self(), sizeof prev, &prev);
    if (e) D2_ERROR(D2_EIO, "cannot read a thread's CPU mask: %s", strerror(e));
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    e = pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    if (e) D2_ERROR(D2_EIO, "cannot pin a thread to CPU %d: %s", cpu, strerror(e));
    if (old) {
        memset(old->bits, 0, sizeof old->bits);
        for (int c = 0; c < CPU_SETSIZE && c / 8 < (int)sizeof old->bits; c++)
            if (CPU_ISSET(c, &prev)) old->bits[c / 8] |= (unsigned char)(1u << (c % 8));
        old->valid = 1;
    }
    return D2_OK;
}

void cpupin_restore(const cpupin_saved *old)
{
    if (!old || !old->valid) return;
    cpu_set_t s;
    CPU_ZERO(&s);
    for (int c = 0; c < CPU_SETSIZE && c / 8 < (int)sizeof old->bits; c++)
        if (old->bits[c / 8] >> (c % 8) & 1) CPU_SET(c, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

const char *cpupin_arg(int cpu, char *buf)
{
    if (cpu >= 0) snprintf(buf, CPUPIN_NAME_MAX, "%d", cpu);
    else snprintf(buf, CPUPIN_NAME_MAX, "none");
    return buf;
}

const char *cpupin_words(int cpu, char *buf)
{
    if (cpu >= 0) snprintf(buf, CPUPIN_NAME_MAX, "CPU %d", cpu);
    else snprintf(buf, CPUPIN_NAME_MAX, "any CPU");
    return buf;
}

int cpupin_parse(const char *opt, const char *s, int *cpu)
{
    if (!strcmp(s, "none")) {
        *cpu = CPUPIN_NONE;
        return D2_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !(*s >= '0' && *s <= '9') || *end || v < 0 || v > 1023)
        D2_ERROR(D2_EINVAL, "%s '%s': expected a CPU number 0..1023 or 'none'", opt, s);
    *cpu = (int)v;
    return D2_OK;
}
