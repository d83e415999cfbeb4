/* hash.c - xxHash wrappers. */
#include "core/hash.h"
#include "core/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

static void hex128(XXH128_hash_t h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

int hash_file_hex(const char *path, char out[33])
{
    FILE *f = fopen(path, "rb");
    if (!f) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    XXH3_state_t *st = XXH3_createState();
    if (!st) { fclose(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
    XXH3_128bits_reset(st);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) XXH3_128bits_update(st, buf, n);
    int err = ferror(f);
    fclose(f);
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    if (err) D2_ERROR(D2_EIO, "%s: read error", path);
    hex128(h, out);
    return D2_OK;
}

void hash_mem_hex(const void *p, size_t n, char out[33]) { hex128(XXH3_128bits(p, n), out); }
uint64_t hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }
