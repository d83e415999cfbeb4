/* hash.c - xxHash wrappers.  A file's XXH3-128 is computed once per
 * process and file version: later calls answer from core/fileio's memo
 * (fileio_memo_get: path and version; a sweep worker or a --db run hashes
 * the same trace and profiles for every point).  Not a cross-process
 * cache. */
#include "core/hash.h"
#include "core/err.h"
#include "core/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack (hash_acc) */
#include <xxhash.h>

static const char hash_kind = 0; /* the memo's kind for a file's hex digest */

static void hex128(XXH128_hash_t h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

int hash_file_hex(const char *path, char out[33])
{
    /* remembered: answered from one stat, the file not opened */
    fileio_version v0;
    if (fileio_version_of(path, &v0) == D2_OK && fileio_memo_get(&hash_kind, path, &v0, out, 33)) return D2_OK;
    FILE *f = fopen(path, "rb");
    if (!f) D2_ERROR(D2_ENOTFOUND, "%s: cannot open: %s", path, strerror(errno));
    fileio_version v;
    int cacheable = fileio_version_of_fd(fileno(f), &v) == D2_OK;
    if (cacheable && fileio_memo_get(&hash_kind, path, &v, out, 33)) { fclose(f); return D2_OK; }
    hash_acc h;
    hash_acc_reset(&h);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) hash_acc_add(&h, buf, n);
    int err = ferror(f);
    fclose(f);
    if (err) D2_ERROR(D2_EIO, "%s: read error", path);
    hash_acc_hex(&h, out);
    if (cacheable) fileio_memo_put(&hash_kind, path, &v, out, 33); /* remembered only if unchanged since v */
    return D2_OK;
}

void hash_mem_hex(const void *p, size_t n, char out[33]) { hex128(XXH3_128bits(p, n), out); }
uint64_t hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

_Static_assert(sizeof(XXH3_state_t) <= sizeof(((hash_acc *)0)->state), "hash_acc too small for XXH3_state_t");
_Static_assert(_Alignof(XXH3_state_t) <= 64, "hash_acc under-aligned for XXH3_state_t");

void hash_acc_reset(hash_acc *a)
{
    XXH3_state_t *st = (XXH3_state_t *)(void *)a->state;
    memset(st, 0, sizeof *st); /* XXH3_INITSTATE: no seed, no custom secret */
    XXH3_INITSTATE(st);
    XXH3_128bits_reset(st);
}

void hash_acc_add(hash_acc *a, const void *p, size_t n) { XXH3_128bits_update((XXH3_state_t *)(void *)a->state, p, n); }

void hash_acc_hex(hash_acc *a, char out[33]) { hex128(XXH3_128bits_digest((XXH3_state_t *)(void *)a->state), out); }
