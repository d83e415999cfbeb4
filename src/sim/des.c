/* des.c - array binary heap of (time, seq) keyed events (see des.h).
 * Sift-up/down on a 1-based layout; the invariant walker is des_check. */
#include "sim/des.h"
#include "core/err.h"

#include <stdlib.h>

struct des {
    des_event *heap; /* heap[1..n] */
    size_t n, cap;
    des_ns now;        /* time of the last popped event, ns */
    uint64_t seq;      /* next seq */
    uint64_t pushed, popped;
};

static int before(const des_event *x, const des_event *y)
{
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

int des_new(des **out)
{
    des *e = calloc(1, sizeof *e);
    if (!e) D2_ERROR(D2_ENOMEM, "des: out of memory");
    e->cap = 64;
    e->heap = malloc((e->cap + 1) * sizeof *e->heap);
    if (!e->heap) { free(e); D2_ERROR(D2_ENOMEM, "des: out of memory"); }
    *out = e;
    return D2_OK;
}

void des_free(des *e)
{
    if (!e) return;
    free(e->heap);
    free(e);
}

des_ns des_now(const des *e) { return e->now; }
size_t des_pending(const des *e) { return e->n; }

/* the push once t is checked (now <= t <= DES_NS_MAX) */
static inline int push_checked(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    if (e->n == e->cap) {
        des_event *h = realloc(e->heap, (2 * e->cap + 1) * sizeof *h);
        if (!h) D2_ERROR(D2_ENOMEM, "des: out of memory");
        e->heap = h;
        e->cap *= 2;
    }
    des_event ev = {t, e->seq++, kind, a, b};
    size_t i = ++e->n;
    while (i > 1 && before(&ev, &e->heap[i / 2])) {
        e->heap[i] = e->heap[i / 2];
        i /= 2;
    }
    e->heap[i] = ev;
    e->pushed++;
    return D2_OK;
}

int des_event_push(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    if (t < e->now) D2_ERROR(D2_EINTERNAL, "des: event at %lld ns is before now (%lld ns)", (long long)t, (long long)e->now);
    if (t > DES_NS_MAX)
        D2_ERROR(D2_ERANGE, "des: an event at %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
                 (double)t / 1e9);
    return push_checked(e, t, kind, a, b);
}

int des_event_after(des *e, des_ns delay, int kind, int64_t a, int64_t b)
{
    if (delay < 0) D2_ERROR(D2_EINTERNAL, "des: negative delay %lld ns", (long long)delay);
    if (delay > DES_NS_MAX - e->now)
        D2_ERROR(D2_ERANGE, "des: an event %.3g s after %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
                 (double)delay / 1e9, (double)e->now / 1e9);
    return push_checked(e, e->now + delay, kind, a, b); /* now <= now + delay <= DES_NS_MAX: checked above */
}

int des_event_pop(des *e, des_event *out)
{
    if (e->n == 0) return 0;
    *out = e->heap[1];
    des_event last = e->heap[e->n--];
    size_t i = 1;
    for (;;) {
        size_t c = 2 * i;
        if (c > e->n) break;
        if (c + 1 <= e->n && before(&e->heap[c + 1], &e->heap[c])) c++;
        if (!before(&e->heap[c], &last)) break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->n) e->heap[i] = last;
    e->now = out->time;
    e->popped++;
    return 1;
}

int des_check(const des *e)
{
    for (size_t i = 2; i <= e->n; i++)
        if (before(&e->heap[i], &e->heap[i / 2]))
            D2_ERROR(D2_EINTERNAL, "des: heap order broken at %zu", i);
    for (size_t i = 1; i <= e->n; i++)
        if (e->heap[i].time < e->now) D2_ERROR(D2_EINTERNAL, "des: pending event before now");
    if (e->pushed != e->popped + e->n) D2_ERROR(D2_EINTERNAL, "des: %llu pushed, %llu popped, %zu pending: an event was lost",
                                                (unsigned long long)e->pushed, (unsigned long long)e->popped, e->n);
    return D2_OK;
}
