/* units.h - parse and print numbers with unit suffixes.
 *
 * Suffixes: k/K, M, G, T are decimal (10^3..10^12); Ki, Mi, Gi, Ti are binary
 * (2^10..2^40); an optional trailing "B" or "B/s" is accepted and ignored
 * ("3.5GB/s", "6GiB", "200M").  Parsing is strict: trailing junk, NaN, Inf and
 * overflow are errors.  Nothing here knows about files or error messages. */
#ifndef D2_CORE_UNITS_H
#define D2_CORE_UNITS_H

#include <stdint.h>
#include <stddef.h>

/* 0 on success, -1 on malformed text, -2 on overflow. */
int units_parse_double(const char *s, double *out);
/* Integer with optional suffix; the scaled value must be integral. */
int units_parse_int64(const char *s, int64_t *out);

/* A bound in bytes from the environment variable `name`, read in MiB (a
 * plain decimal integer); unset, empty, unreadable or too large: `dflt_mib`.
 * For caches whose bound never changes a result (the route and step memos). */
size_t units_env_mib(const char *name, size_t dflt_mib);

/* "1.50 GiB"-style rendering for people (not for storage). */
const char *units_fmt_bytes(double bytes, char *buf, size_t n);

#endif
