/* hostwatch: late wakeups of real-time watcher threads, per CPU and for
 * the whole machine (hostwatch.h).  Not for: anything that acts on what it
 * sees. */
#define _GNU_SOURCE
#include "host/hostwatch.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "host/cpupin.h"

typedef struct watcher {
    struct hostwatch *w;
    int cpu;
    pthread_t th;
    int started;            /* th is a thread to join */
    hostwatch_span *span;   /* [HOSTWATCH_MAX_SPANS] */
    size_t nspan;
    int64_t wakeups, dropped;
    int64_t cpu_ns;         /* the thread's CPU time at its end, ns */
    int err;                /* errno of a failed pin or SCHED_FIFO, 0 when running */
    atomic_int ready;       /* 1: pinned and real-time (or err set) */
} watcher;

struct hostwatch {
    watcher wt[HOSTWATCH_MAX_CPUS];
    int n;
    atomic_int quit;
    int stopped;
};

static void *watch_main(void *arg)
{
    watcher *x = arg;
    struct sched_param sp = {.sched_priority = sched_get_priority_min(SCHED_FIFO)};
    int e = cpupin_self(x->cpu, NULL) == D2_OK ? 0 : EINVAL;
    if (!e) e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    x->err = e;
    atomic_store(&x->ready, 1);
    if (e) return NULL;
    int64_t next = clock_mono_ns(), prev = next;
    while (!atomic_load_explicit(&x->w->quit, memory_order_relaxed)) {
        next += HOSTWATCH_PERIOD_NS;
        struct timespec ts = {.tv_sec = (time_t)(next / 1000000000LL), .tv_nsec = (long)(next % 1000000000LL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
        int64_t now = clock_mono_ns();
        x->wakeups++;
        if (now - next > HOSTWATCH_LATE_NS) {
            if (x->nspan < HOSTWATCH_MAX_SPANS)
                x->span[x->nspan++] = (hostwatch_span){.start_ns = next, .end_ns = now, .from_ns = prev};
            else x->dropped++;
            next = now; /* the missed deadlines are not made up */
        }
        prev = now;
    }
    x->cpu_ns = clock_thread_cpu_ns();
    return NULL;
}

int hostwatch_start(const int *cpus, int ncpu, hostwatch **out)
{
    *out = NULL;
    if (ncpu < 1 || ncpu > HOSTWATCH_MAX_CPUS) D2_ERROR(D2_EINVAL, "hostwatch: %d CPUs to watch (1..%d)", ncpu, HOSTWATCH_MAX_CPUS);
    for (int i = 0; i < ncpu; i++) {
        D2_TRY(cpupin_check(cpus[i], "hostwatch: CPU"));
        for (int j = 0; j < i; j++)
            if (cpus[j] == cpus[i]) D2_ERROR(D2_EINVAL, "hostwatch: CPU %d named twice", cpus[i]);
    }
    hostwatch *w = calloc(1, sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "hostwatch: out of memory");
    atomic_init(&w->quit, 0);
    w->n = ncpu;
    int rc = D2_OK;
    for (int i = 0; i < ncpu && rc == D2_OK; i++) {
        watcher *x = &w->wt[i];
        x->w = w;
        x->cpu = cpus[i];
        atomic_init(&x->ready, 0);
        x->span = malloc(HOSTWATCH_MAX_SPANS * sizeof *x->span);
        if (!x->span) { rc = D2_ENOMEM; d2_err_set("hostwatch: out of memory"); break; }
        if (pthread_create(&x->th, NULL, watch_main, x) != 0) { rc = D2_EIO; d2_err_set("hostwatch: cannot start a thread"); break; }
        x->started = 1;
        while (!atomic_load(&x->ready)) sched_yield();
        if (x->err) {
            rc = D2_EIO;
            d2_err_set("hostwatch: CPU %d: %s", x->cpu,
                       x->err == EPERM ? "real-time priority (SCHED_FIFO) refused" : "cannot pin the watcher");
        }
    }
    if (rc) { hostwatch_free(w); return rc; }
    *out = w;
    return D2_OK;
}

void hostwatch_stop(hostwatch *w)
{
    if (!w || w->stopped) return;
    atomic_store(&w->quit, 1);
    for (int i = 0; i < w->n; i++)
        if (w->wt[i].started) pthread_join(w->wt[i].th, NULL);
    w->stopped = 1;
}

void hostwatch_free(hostwatch *w)
{
    if (!w) return;
    hostwatch_stop(w);
    for (int i = 0; i < w->n; i++) free(w->wt[i].span);
    free(w);
}

int hostwatch_cpu(const hostwatch *w, int k, int64_t from_ns, int64_t to_ns, hostwatch_tally *t)
{
    memset(t, 0, sizeof *t);
    if (k < 0 || k >= w->n) D2_ERROR(D2_EINVAL, "hostwatch: no watcher %d", k);
    const watcher *x = &w->wt[k];
    t->cpu = x->cpu;
    t->wakeups = x->wakeups;
    t->dropped = x->dropped;
    t->cpu_ns = x->cpu_ns;
    for (size_t i = 0; i < x->nspan; i++) {
        int64_t a = x->span[i].start_ns > from_ns ? x->span[i].start_ns : from_ns;
        int64_t b = x->span[i].end_ns < to_ns ? x->span[i].end_ns : to_ns;
        if (b > a) t->late++, t->late_ns += b - a;
        int64_t a2 = x->span[i].from_ns > from_ns ? x->span[i].from_ns : from_ns;
        if (b > a2) t->late_max_ns += b - a2;
    }
    return D2_OK;
}

static int64_t lo_of(const hostwatch_span *s, int wide) { return wide ? s->from_ns : s->start_ns; }

static int sorted(const hostwatch_span *s, size_t n, int wide)
{
    for (size_t i = 0; i < n; i++)
        if (s[i].end_ns < s[i].start_ns || s[i].from_ns > s[i].start_ns || (i && lo_of(&s[i], wide) < s[i - 1].end_ns))
            return 0;
    return 1;
}

/* a (as [start, end)) and b (as [lo_of, end)) sorted, disjoint; their
 * intersection into out as [start, end) (at most na + nb spans) */
static size_t intersect(const hostwatch_span *a, size_t na, const hostwatch_span *b, size_t nb, int wide, hostwatch_span *out)
{
    size_t i = 0, j = 0, m = 0;
    while (i < na && j < nb) {
        int64_t bl = lo_of(&b[j], wide);
        int64_t lo = a[i].start_ns > bl ? a[i].start_ns : bl;
        int64_t hi = a[i].end_ns < b[j].end_ns ? a[i].end_ns : b[j].end_ns;
        if (hi > lo) out[m++] = (hostwatch_span){.start_ns = lo, .end_ns = hi, .from_ns = lo};
        if (a[i].end_ns < b[j].end_ns) i++;
        else j++;
    }
    return m;
}

int hostwatch_overlap(const hostwatch_span *const *lists, const size_t *n, int k, int wide, int64_t from, int64_t to,
                      int64_t *ns, int64_t *spans)
{
    *ns = *spans = 0;
    if (k < 0 || k > HOSTWATCH_MAX_CPUS) D2_ERROR(D2_EINVAL, "hostwatch: %d span lists (0..%d)", k, HOSTWATCH_MAX_CPUS);
    if (k == 0 || to <= from) return D2_OK;
    size_t total = 1;
    for (int i = 0; i < k; i++) {
        if (!sorted(lists[i], n[i], wide)) D2_ERROR(D2_EINVAL, "hostwatch: span list %d is not sorted and disjoint", i);
        total += n[i];
    }
    hostwatch_span *cur = malloc(total * sizeof *cur), *tmp = malloc(total * sizeof *tmp);
    if (!cur || !tmp) { free(cur); free(tmp); D2_ERROR(D2_ENOMEM, "hostwatch: out of memory"); }
    hostwatch_span window = {.start_ns = from, .end_ns = to, .from_ns = from};
    size_t m = intersect(&window, 1, lists[0], n[0], wide, cur);
    for (int i = 1; i < k && m; i++) {
        m = intersect(cur, m, lists[i], n[i], wide, tmp);
        hostwatch_span *s = cur; cur = tmp; tmp = s;
    }
    for (size_t i = 0; i < m; i++) {
        *ns += cur[i].end_ns - cur[i].start_ns;
        if (i == 0 || cur[i].start_ns > cur[i - 1].end_ns) ++*spans; /* touching pieces are one span */
    }
    free(cur);
    free(tmp);
    return D2_OK;
}

int hostwatch_stopped(const hostwatch *w, int64_t from_ns, int64_t to_ns, int64_t *ns, int64_t *max_ns, int64_t *spans)
{
    const hostwatch_span *lists[HOSTWATCH_MAX_CPUS];
    size_t n[HOSTWATCH_MAX_CPUS];
    for (int i = 0; i < w->n; i++) lists[i] = w->wt[i].span, n[i] = w->wt[i].nspan;
    int64_t sp2;
    D2_TRY(hostwatch_overlap(lists, n, w->n, 1, from_ns, to_ns, max_ns, &sp2));
    return hostwatch_overlap(lists, n, w->n, 0, from_ns, to_ns, ns, spans);
}
