/* des_int.h - the event heap's internals (des.c), for the serving loop in
 * src/sim: a module that includes this header (through sim_int.h) pushes
 * and pops inline under des.h's names (the macros at the end, as mem_int.h
 * does for the memory account).  Everything outside src/sim sees only
 * des.h and its opaque handle. */
#ifndef D2_SIM_DES_INT_H
#define D2_SIM_DES_INT_H

#include "sim/des.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

struct des {
    des_event *heap; /* heap[1..n] */
    size_t n, cap;
    sim_ns now;        /* time of the last popped event, ns */
    uint64_t seq;      /* next seq */
    uint64_t pushed, popped;
};

/* des.c's slow paths of the inline functions below */
int des_grow_push(des *e, sim_ns t, int kind, int64_t a, int64_t b); /* the heap is full */
int des_refuse_after(const des *e, sim_ns delay);                     /* a delay out of range */

static inline int des_before_inline(const des_event *x, const des_event *y)
{
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

/* the push once t is checked (now <= t <= SIM_NS_MAX) into a heap with
 * room: the new event's hole sifts up from the end, parents moving down
 * into it */
static inline void des_push_room_inline(des *e, sim_ns t, int kind, int64_t a, int64_t b)
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

static inline int des_event_after_inline(des *e, sim_ns delay, int kind, int64_t a, int64_t b)
{
    if (delay < 0 || delay > SIM_NS_MAX - e->now) return des_refuse_after(e, delay);
    if (e->n == e->cap) return des_grow_push(e, e->now + delay, kind, a, b);
    des_push_room_inline(e, e->now + delay, kind, a, b); /* now <= now + delay <= SIM_NS_MAX: checked above */
    return D2_OK;
}

static inline int des_event_pop_inline(des *e, des_event *out)
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
        if (c < n && des_before_inline(&h[c + 1], &h[c])) c++;
        if (!des_before_inline(&h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = *last;
    return 1;
}

static inline sim_ns des_now_inline(const des *e) { return e->now; }

#define des_event_after(e, delay, kind, a, b) des_event_after_inline(e, delay, kind, a, b)
#define des_event_pop(e, out) des_event_pop_inline(e, out)
#define des_now(e) des_now_inline(e)

#endif
