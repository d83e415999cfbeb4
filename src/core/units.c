/* units.c - strict number parsing with k/M/G/T and Ki/Mi/Gi/Ti suffixes
 * (case-insensitive; a trailing B or B/s is ignored). */
#include "core/units.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int suffix_scale(const char *s, double *scale)
{
    *scale = 1.0;
    if (*s == '\0') return 0;
    double base = 0;
    switch (*s) {
    /* case-insensitive: "1500mb" is 1500 MB (nothing here is milli) */
    case 'k': case 'K': base = 1e3; break;
    case 'm': case 'M': base = 1e6; break;
    case 'g': case 'G': base = 1e9; break;
    case 't': case 'T': base = 1e12; break;
    default: break;
    }
    if (base != 0) {
        s++;
        if (*s == 'i' || *s == 'I') {
            base = base == 1e3 ? 1024.0 : base == 1e6 ? 1048576.0
                 : base == 1e9 ? 1073741824.0 : 1099511627776.0;
            s++;
        }
        *scale = base;
    }
    if (*s == 'B' || *s == 'b') s++;
    if (strcmp(s, "/s") == 0 || strcmp(s, "/S") == 0) s += 2;
    return *s == '\0' ? 0 : -1;
}

int units_parse_double(const char *s, double *out)
{
    if (!s) return -1;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '\0') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s) return -1;
    if (errno == ERANGE && fabs(v) > 1.0) return -2;
    /* strtod accepts "nan", "inf", hex floats: refuse the first two */
    if (!isfinite(v)) return -1;
    char tail[32];
    size_t tl = strlen(end);
    while (tl > 0 && (end[tl - 1] == ' ' || end[tl - 1] == '\t')) tl--;
    if (tl >= sizeof tail) return -1;
    memcpy(tail, end, tl);
    tail[tl] = '\0';
    double scale;
    if (suffix_scale(tail, &scale) != 0) return -1;
    v *= scale;
    if (!isfinite(v)) return -2;
    *out = v;
    return 0;
}

int units_parse_int64(const char *s, int64_t *out)
{
    double v;
    int rc = units_parse_double(s, &v);
    if (rc) return rc;
    if (v >= 9.2233720368547748e18 || v < -9.2233720368547748e18) return -2;
    if (v != floor(v)) return -1;
    /* a plain integer without suffix: reparse exactly (doubles lose bits) */
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    char *end;
    errno = 0;
    long long ll = strtoll(p, &end, 10);
    if (end != p && (*end == '\0' || *end == ' ' || *end == '\t')) {
        if (errno == ERANGE) return -2;
        *out = (int64_t)ll;
        return 0;
    }
    *out = (int64_t)v;
    return 0;
}

const char *units_fmt_bytes(double bytes, char *buf, size_t n)
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    double v = bytes;
    while (fabs(v) >= 1024.0 && i < 4) { v /= 1024.0; i++; }
    if (i == 0) snprintf(buf, n, "%.0f B", v);
    else snprintf(buf, n, "%.2f %s", v, u[i]);
    return buf;
}

size_t units_env_mib(const char *name, size_t dflt_mib)
{
    const char *v = getenv(name);
    if (v && *v) {
        char *end;
        unsigned long long mb = strtoull(v, &end, 10);
        if (!*end && v[0] >= '0' && v[0] <= '9' && mb <= ((size_t)-1 >> 20)) return (size_t)mb << 20;
    }
    return dflt_mib << 20;
}
