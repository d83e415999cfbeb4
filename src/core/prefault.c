/* prefault.c - see prefault.h. */
#include "config.h"
#include "core/prefault.h"

#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23 /* linux/mman.h, 5.14; older kernels refuse it with EINVAL */
#endif

void prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    const long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p || n < (size_t)page) return;
    const uintptr_t pg = (uintptr_t)page, s = ((uintptr_t)p + pg - 1) & ~(pg - 1), e = ((uintptr_t)p + n) & ~(pg - 1);
    if (e > s) (void)madvise((void *)s, e - s, MADV_POPULATE_WRITE);
#else
    (void)p;
    (void)n;
#endif
}
