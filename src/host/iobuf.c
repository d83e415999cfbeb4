/* iobuf.c - O_DIRECT destinations on 2 MiB-aligned anonymous mappings
 * with transparent huge pages asked for (see iobuf.h). */
#define _GNU_SOURCE
#include "host/iobuf.h"
#include "core/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* the mapping's length for `bytes`, 0 when it overflows */
static size_t iobuf_len(size_t bytes)
{
    if (bytes == 0 || bytes > SIZE_MAX - IOBUF_ALIGN) return 0;
    return (bytes + IOBUF_ALIGN - 1) / IOBUF_ALIGN * IOBUF_ALIGN;
}

int iobuf_alloc(size_t bytes, void **out)
{
    *out = NULL;
    const size_t len = iobuf_len(bytes);
    if (!len || len > SIZE_MAX - IOBUF_ALIGN) D2_ERROR(D2_ENOMEM, "I/O buffer of %zu bytes: too large", bytes);
    /* map one alignment more, then give back the head and the tail */
    uint8_t *m = mmap(NULL, len + IOBUF_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) D2_ERROR(D2_ENOMEM, "cannot map an I/O buffer of %zu bytes", len);
    uintptr_t a = ((uintptr_t)m + IOBUF_ALIGN - 1) / IOBUF_ALIGN * IOBUF_ALIGN;
    uint8_t *p = (uint8_t *)a;
    if (p > m) munmap(m, (size_t)(p - m));
    size_t tail = (size_t)(m + len + IOBUF_ALIGN - (p + len));
    if (tail) munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE); /* a request: the kernel may decline (iobuf_huge_bytes tells) */
#endif
    memset(p, 0, len); /* the pages exist before the first read */
    *out = p;
    return D2_OK;
}

void iobuf_free(void *p, size_t bytes)
{
    const size_t len = iobuf_len(bytes);
    if (p && len) munmap(p, len);
}

int iobuf_huge_bytes(const void *p, size_t bytes, int64_t *huge)
{
    *huge = 0;
    const size_t len = iobuf_len(bytes);
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!p || !len || !f) {
        if (f) fclose(f);
        return D2_ENOTFOUND;
    }
    /* the entries of the ranges inside [p, p + len): a mapping may have been
     * split by the kernel (each part its own entry) */
    const uintptr_t lo = (uintptr_t)p, hi = lo + len;
    char line[512];
    int inside = 0, found = 0;
    int64_t sum = 0;
    while (fgets(line, sizeof line, f)) {
        uintptr_t a, b;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2) { /* a mapping's first line (field lines are "Name: value") */
            inside = a >= lo && b <= hi;
            found |= inside;
            continue;
        }
        long long kb;
        if (inside && sscanf(line, "AnonHugePages: %lld kB", &kb) == 1) sum += (int64_t)kb * 1024;
    }
    fclose(f);
    if (!found) return D2_ENOTFOUND;
    *huge = sum > (int64_t)bytes ? (int64_t)bytes : sum; /* the rounding's tail is not the caller's */
    return D2_OK;
}
