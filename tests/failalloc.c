/* failalloc.c - allocation-failure injection for a test build of d2moe
 * (tests/d2moe-failalloc, linked with -Wl,--wrap=malloc,calloc,realloc,
 * strdup,strndup,aligned_alloc,posix_memalign).  With D2_FAIL_ALLOC=N the Nth
 * allocation made by the project's own code fails (once, as SQLite's test
 * harness does); the shared libraries (GSL, SQLite, jansson, libc itself)
 * are not wrapped and allocate normally.  With D2_FAIL_ALLOC_COUNT set, the
 * number of allocations made is printed to stderr at exit.  Not part of the
 * d2moe binary. */
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

static unsigned long calls, fail_at;
static int ready;

static void report(void) { fprintf(stderr, "failalloc: %lu allocations\n", calls); }

static int fail_now(void)
{
    if (!ready) {
        ready = 1;
        const char *v = getenv("D2_FAIL_ALLOC");
        if (v) fail_at = strtoul(v, NULL, 10);
        if (getenv("D2_FAIL_ALLOC_COUNT")) atexit(report);
    }
    return ++calls == fail_at;
}

/* For test programs linked with these wrappers: fail the allocation k
 * calls from now (k = 1: the next one), once. */
void failalloc_fail_in(unsigned long k);
void failalloc_fail_in(unsigned long k)
{
    (void)fail_now; /* read D2_FAIL_ALLOC first, so it cannot override this later */
    if (!ready) { ready = 1; if (getenv("D2_FAIL_ALLOC_COUNT")) atexit(report); }
    fail_at = calls + k;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_now() ? NULL : __real_strndup(s, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fail_now() ? NULL : __real_aligned_alloc(align, n); }
int __wrap_posix_memalign(void **p, size_t align, size_t n) { return fail_now() ? ENOMEM : __real_posix_memalign(p, align, n); }
