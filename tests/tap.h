/* tap.h - a tiny TAP producer for the tests (Automake's tap-driver reads it).
 * Header-only; every test program includes it once.  The plan is printed at
 * the end (tap_done), so a test that crashes midway shows as failed. */
#ifndef D2_TESTS_TAP_H
#define D2_TESTS_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_fail;

static int tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    if (!cond) tap_fail++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __VA_ARGS__)

#define is_int(got, want, ...)                                                       \
    do {                                                                             \
        long long g_ = (long long)(got), w_ = (long long)(want);                     \
        if (!ok(g_ == w_, __VA_ARGS__)) printf("#   got %lld, want %lld\n", g_, w_); \
    } while (0)

/* |got - want| <= tol (absolute) */
#define is_near(got, want, tol, ...)                                                  \
    do {                                                                              \
        double g_ = (double)(got), w_ = (double)(want);                               \
        if (!ok(fabs(g_ - w_) <= (tol), __VA_ARGS__))                                 \
            printf("#   got %.17g, want %.17g (tol %g)\n", g_, w_, (double)(tol));    \
    } while (0)

#define is_str(got, want, ...)                                                        \
    do {                                                                              \
        const char *g_ = (got), *w_ = (want);                                         \
        if (!ok(g_ && w_ && strcmp(g_, w_) == 0, __VA_ARGS__))                        \
            printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
    } while (0)

static void tap_skip(int n, const char *why) __attribute__((unused));
static void tap_skip(int n, const char *why)
{
    for (int i = 0; i < n; i++) printf("ok %d # SKIP %s\n", ++tap_n, why);
    fflush(stdout);
}

static void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static int tap_done(void) __attribute__((unused));
static int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_fail ? 1 : 0;
}

/* Paths: the tests run from the build tree; sources and shared data are
 * given by the environment Makefile.am sets (D2_SRCDIR, D2_SHARED). */
static const char *tap_srcdir(void) __attribute__((unused));
static const char *tap_srcdir(void)
{
    const char *s = getenv("D2_SRCDIR");
    return s ? s : ".";
}
static const char *tap_shared(void) __attribute__((unused));
static const char *tap_shared(void)
{
    const char *s = getenv("D2_SHARED");
    return s ? s : "../shared";
}

#endif
