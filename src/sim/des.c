/* des.c - array binary heap of (time, seq) keyed events (see des.h).
 * Sift-up/down on a 1-based layout (des_int.h: the push and the pop, which
 * the serving loop calls inline); the invariant walker is des_check. */
#include "sim/des_int.h" /* des.h, and its push and pop inline */
#include "core/err.h"

#include <stdlib.h>

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

/* des.h's functions that des_int.h also has inline (the parentheses keep
 * its macros from expanding the names) */
sim_ns(des_now)(const des *e) { return des_now_inline(e); }
size_t des_pending(const des *e) { return e->n; }

/* the heap is full: double it, then push (out of line, so the common push
 * needs no stack frame) */
__attribute__((noinline, cold)) int des_grow_push(des *e, sim_ns t, int kind, int64_t a, int64_t b)
{
    des_event *h = realloc(e->heap, (2 * e->cap + 1) * sizeof *h);
    if (!h) D2_ERROR(D2_ENOMEM, "des: out of memory");
    e->heap = h;
    e->cap *= 2;
    des_push_room_inline(e, t, kind, a, b);
    return D2_OK;
}

static __attribute__((noinline, cold)) int refuse_at(const des *e, sim_ns t)
{
    if (t < e->now) D2_ERROR(D2_EINTERNAL, "des: event at %lld ns is before now (%lld ns)", (long long)t, (long long)e->now);
    D2_ERROR(D2_ERANGE, "des: an event at %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
             (double)t / 1e9);
}

__attribute__((noinline, cold)) int des_refuse_after(const des *e, sim_ns delay)
{
    if (delay < 0) D2_ERROR(D2_EINTERNAL, "des: negative delay %lld ns", (long long)delay);
    D2_ERROR(D2_ERANGE, "des: an event %.3g s after %.3g s of simulated time is past the horizon (2^62 ns, 146 years): too long a run to simulate",
             (double)delay / 1e9, (double)e->now / 1e9);
}

int des_event_push(des *e, sim_ns t, int kind, int64_t a, int64_t b)
{
    if (t < e->now || t > SIM_NS_MAX) return refuse_at(e, t);
    if (e->n == e->cap) return des_grow_push(e, t, kind, a, b);
    des_push_room_inline(e, t, kind, a, b);
    return D2_OK;
}

int(des_event_after)(des *e, sim_ns delay, int kind, int64_t a, int64_t b) { return des_event_after_inline(e, delay, kind, a, b); }

int(des_event_pop)(des *e, des_event *out) { return des_event_pop_inline(e, out); }

int des_check(const des *e)
{
    for (size_t i = 2; i <= e->n; i++)
        if (des_before_inline(&e->heap[i], &e->heap[i / 2]))
            D2_ERROR(D2_EINTERNAL, "des: heap order broken at %zu", i);
    for (size_t i = 1; i <= e->n; i++)
        if (e->heap[i].time < e->now) D2_ERROR(D2_EINTERNAL, "des: pending event before now");
    if (e->pushed != e->popped + e->n) D2_ERROR(D2_EINTERNAL, "des: %llu pushed, %llu popped, %zu pending: an event was lost",
                                                (unsigned long long)e->pushed, (unsigned long long)e->popped, e->n);
    return D2_OK;
}
