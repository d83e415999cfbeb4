/* hash.c - xxHash wrappers.  A file's XXH3-128 is computed once per
 * process and file version: later calls for the same path, device, inode,
 * size, mtime and ctime answer from a small cache (a sweep worker or a --db
 * run hashes the same trace and profiles for every point).  Not a
 * cross-process cache. */
#include "core/hash.h"
#include "core/err.h"
#include "core/fileio.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define HASH_CACHE_SLOTS 16 /* files remembered (round robin) */

typedef struct hash_slot {
    char *path;             /* as given, NULL = empty slot */
    fileio_version v;
    char hex[33];
} hash_slot;

static hash_slot cache[HASH_CACHE_SLOTS];
static unsigned cache_next;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

/* 1: the cache knows path at version v (its hex into out) */
static int cache_get(const char *path, const fileio_version *v, char out[33])
{
    int hit = 0;
    pthread_mutex_lock(&cache_mu);
    for (unsigned i = 0; i < HASH_CACHE_SLOTS && !hit; i++)
        if (cache[i].path && !strcmp(cache[i].path, path) && fileio_version_same(&cache[i].v, v)) {
            memcpy(out, cache[i].hex, 33);
            hit = 1;
        }
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

static void hex128(XXH128_hash_t h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

int hash_file_hex(const char *path, char out[33])
{
    /* remembered: answered from one stat, the file not opened */
    fileio_version v0;
    if (fileio_version_of(path, &v0) == D2_OK && cache_get(path, &v0, out)) return D2_OK;
    FILE *f = fopen(path, "rb");
    if (!f) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    fileio_version v;
    int cacheable = fileio_version_of_fd(fileno(f), &v) == D2_OK;
    if (cacheable && cache_get(path, &v, out)) { fclose(f); return D2_OK; }
    XXH3_state_t *xs = XXH3_createState();
    if (!xs) { fclose(f); D2_ERROR(D2_ENOMEM, "out of memory"); }
    XXH3_128bits_reset(xs);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) XXH3_128bits_update(xs, buf, n);
    int err = ferror(f);
    fclose(f);
    XXH128_hash_t h = XXH3_128bits_digest(xs);
    XXH3_freeState(xs);
    if (err) D2_ERROR(D2_EIO, "%s: read error", path);
    hex128(h, out);
    /* remembered only if the file did not change while it was read */
    fileio_version v2;
    char *copy = cacheable ? strdup(path) : NULL;
    if (copy && fileio_version_of(path, &v2) == D2_OK && fileio_version_same(&v2, &v)) {
        pthread_mutex_lock(&cache_mu);
        hash_slot *slot = &cache[cache_next++ % HASH_CACHE_SLOTS];
        free(slot->path);
        *slot = (hash_slot){.path = copy, .v = v};
        memcpy(slot->hex, out, 33);
        pthread_mutex_unlock(&cache_mu);
    } else {
        free(copy); /* out of memory or changed: just not remembered */
    }
    return D2_OK;
}

void hash_mem_hex(const void *p, size_t n, char out[33]) { hex128(XXH3_128bits(p, n), out); }
uint64_t hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }
