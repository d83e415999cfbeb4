/* fuzz_common.h - shared by the libFuzzer harnesses: every reader takes a
 * path, so each input is written to a per-process temporary file first. */
#ifndef D2_FUZZ_COMMON_H
#define D2_FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fuzz_path(const char *suffix)
{
    static char p[256];
    snprintf(p, sizeof p, "/tmp/d2fuzz.%ld%s", (long)getpid(), suffix);
    return p;
}

static const char *fuzz_write(const uint8_t *data, size_t size, const char *suffix)
{
    const char *p = fuzz_path(suffix);
    FILE *f = fopen(p, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return p;
}
#endif
