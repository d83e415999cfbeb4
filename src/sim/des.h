/* des.h - the discrete-event engine: a binary heap of events keyed by
 * (time, seq), seq a global counter, so ties run FIFO and runs repeat bit for
 * bit.  Only the engine owns "now"; it never reads the wall clock.  It knows
 * nothing about loads or experts: an event is a kind and two integers. */
#ifndef D2_SIM_DES_H
#define D2_SIM_DES_H

#include <stddef.h>
#include <stdint.h>
#include "sim/simtime.h"

/* Times are sim_ns (simtime.h).  Pushing an event past the horizon,
 * SIM_NS_MAX, is D2_ERANGE (a run too long to simulate, from parameters
 * that are each in range). */

typedef struct des_event {
    sim_ns time;   /* when it fires, ns */
    uint64_t seq;  /* push order: ties fire in FIFO order */
    int kind;      /* caller's event type */
    int64_t a, b;  /* caller's payload */
} des_event;

typedef struct des des;

int des_new(des **out);
void des_free(des *e);
sim_ns des_now(const des *e);
size_t des_pending(const des *e);
/* Schedule at absolute time now <= t <= SIM_NS_MAX (D2_EINTERNAL before
 * now, D2_ERANGE past the horizon). */
int des_event_push(des *e, sim_ns t, int kind, int64_t a, int64_t b);
/* Schedule after a delay >= 0 (D2_ERANGE past the horizon). */
int des_event_after(des *e, sim_ns delay, int kind, int64_t a, int64_t b);
/* Pop the earliest event and advance now to its time; 0 when empty. */
int des_event_pop(des *e, des_event *out);
/* Heap order, no event before now, every pushed event either popped or
 * pending (pushed == popped + pending).  D2_OK or D2_EINTERNAL. */
int des_check(const des *e);

#endif
