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

/* the push once t is checked (now <= t <= DES_NS_MAX) into a heap with
 * room: the new event's hole sifts up from the end, parents moving down
 * into it */
static inline void push_room(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    des_event *h = e->heap;
    const uint64_t seq = e->seq++;
    size_t i = ++e->n;
    /* a parent is before the new event unless its time is later: its seq is
     * smaller (pushed earlier), so ties stay FIFO */
    while (i > 1 && t < h[i / 2].time) {
        h[i] = h[i / 2];
        i /= 2;
    }
    h[i] = (des_event){t, seq, kind, a, b};
    e->pushed++;
}

/* the heap is full: double it, then push (out of line, so the common push
 * needs no stack frame) */
static __attribute__((noinline, cold)) int grow_push(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    des_event *h = realloc(e->heap, (2 * e->cap + 1) * sizeof *h);
    if (!h) D2_ERROR(D2_ENOMEM, "des: out of memory");
    e->heap = h;
    e->cap *= 2;
    push_room(e, t, kind, a, b);
    return D2_OK;
}

static inline int push_checked(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    if (e->n == e->cap) return grow_push(e, t, kind, a, b);
    push_room(e, t, kind, a, b);
    return D2_OK;
}

static __attribute__((noinline, cold)) int refuse_at(const des *e, des_ns t)
{
    if (t < e->now) D2_ERROR(D2_EINTERNAL, "des: event at %lld ns is before now (%lld ns)", (long long)t, (long long)e->now);
    D2_ERROR(D2_ERANGE, "des: an event at %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
             (double)t / 1e9);
}

static __attribute__((noinline, cold)) int refuse_after(const des *e, des_ns delay)
{
    if (delay < 0) D2_ERROR(D2_EINTERNAL, "des: negative delay %lld ns", (long long)delay);
    D2_ERROR(D2_ERANGE, "des: an event %.3g s after %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
             (double)delay / 1e9, (double)e->now / 1e9);
}

int des_event_push(des *e, des_ns t, int kind, int64_t a, int64_t b)
{
    if (t < e->now || t > DES_NS_MAX) return refuse_at(e, t);
    return push_checked(e, t, kind, a, b);
}

int des_event_after(des *e, des_ns delay, int kind, int64_t a, int64_t b)
{
    if (delay < 0 || delay > DES_NS_MAX - e->now) return refuse_after(e, delay);
    return push_checked(e, e->now + delay, kind, a, b); /* now <= now + delay <= DES_NS_MAX: checked above */
}

int des_event_pop(des *e, des_event *out)
{
    size_t n = e->n;
    if (n == 0) return 0;
    des_event *h = e->heap;
    *out = h[1];
    e->now = out->time;
    e->popped++;
    e->n = --n;
    /* the last event (left in place at h[n + 1], beyond the heap) sifts
     * down from the root's hole */
    const des_event *last = &h[n + 1];
    size_t i = 1;
    for (;;) {
        size_t c = 2 * i;
        if (c > n) break;
        if (c < n && before(&h[c + 1], &h[c])) c++;
        if (!before(&h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = *last;
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
