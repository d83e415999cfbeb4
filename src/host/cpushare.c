/* cpushare.c - other processes' CPU time from /proc/stat (see cpushare.h). */
#include "host/cpushare.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cpushare_parse(const char *text, const int *cpus, int n, int64_t *busy_ns)
{
    if (n < 1 || n > CPUSHARE_MAX) D2_ERROR(D2_EINVAL, "cpushare: %d CPUs (1 to %d)", n, CPUSHARE_MAX);
    for (int i = 0; i < n; i++)
        if (cpus[i] < 0) D2_ERROR(D2_EINVAL, "cpushare: CPU %d", cpus[i]);
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0) hz = 100;
    int found = 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, "cpu", 3) || l[3] < '0' || l[3] > '9') continue; /* the "cpu " total and other lines */
        char *e;
        long c = strtol(l + 3, &e, 10);
        int k = -1;
        for (int i = 0; i < n; i++)
            if (cpus[i] == c) k = i;
        if (k < 0) continue;
        unsigned long long v[3];
        for (int f = 0; f < 3; f++) { /* user, nice, system */
            const char *s = e;
            while (*s == ' ') s++;
            if (*s < '0' || *s > '9') D2_ERROR(D2_EFORMAT, "/proc/stat: cpu%ld: field %d is not a number", c, f + 1);
            v[f] = strtoull(s, &e, 10);
        }
        busy_ns[k] = (int64_t)((v[0] + v[1] + v[2]) * (1000000000ULL / (unsigned long long)hz));
        found |= 1 << k;
    }
    for (int i = 0; i < n; i++)
        if (!(found & (1 << i))) D2_ERROR(D2_ENOTFOUND, "/proc/stat: no line for cpu%d", cpus[i]);
    return D2_OK;
}

int cpushare_read(const int *cpus, int n, int64_t *busy_ns)
{
    if (n < 1 || n > CPUSHARE_MAX) D2_ERROR(D2_EINVAL, "cpushare: %d CPUs (1 to %d)", n, CPUSHARE_MAX);
    FILE *f = fopen("/proc/stat", "r");
    if (!f) D2_ERROR(D2_ENOTFOUND, "/proc/stat cannot be read");
    char buf[1 << 16]; /* the cpuN lines come first; a machine with more CPUs than fit is read in part */
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    return cpushare_parse(buf, cpus, n, busy_ns);
}
