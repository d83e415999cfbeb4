/* engine.c - the I/O channel and the compute unit: start the next load
 * (asking memory for room, the page cache for its tier), start the next ready
 * compute, re-rate a compute under I/O interference and a flash load under
 * read interference, and run the event loop
 * (non-expert work done, load done, compute done).  The order of loads is the
 * planner's (step.c); what is evicted is the memory policy's (mem.c). */
#include "sim/sim_int.h"

#include <math.h>
#include <string.h>

/* an entry left memory: tell the observer (kept out of the hook's common path) */
static __attribute__((noinline)) void tell_freed(run *r, uint32_t id)
{
    r->obs->unit_freed(r->obs->user, des_now(r->ev), id / r->U / r->E, (id / r->U) % r->E, id % r->U + 1);
}

/* mem's free hook.  Invariant: a unit leaving memory is not held by the
 * running layer step, and none whose item has started computing leaves
 * while its group (nested: the expert) still has an item pending. */
void engine_unit_freed(void *user, uint32_t id)
{
    run *r = user;
    int32_t ii = r->item_of[id];
    if (ii >= 0 && !r->bad_free) {
        const step_item *it = &r->items[ii];
        if (it->held || (it->state >= 2 && r->groups[it->grp].left > 0)) r->bad_free = id + 1;
    }
    if (r->obs_freed) tell_freed(r, id);
}

static __attribute__((noinline, cold)) int report_freed(const run *r)
{
    uint32_t id = r->bad_free - 1;
    D2_ERROR(D2_EINTERNAL, "sim: level %u of expert %u (layer %u) left memory while its layer step still needs it",
             id % r->U + 1, (id / r->U) % r->E, id / r->U / r->E);
}

/* D2_OK, or the error for the unit that left memory too early */
static inline int check_freed(const run *r) { return r->bad_free ? report_freed(r) : D2_OK; }

/* Start a rated task of full-rate duration `dur` ns, slowed to 1/(1+x)
 * while `slow`: push its end (kind, a, version). */
static int rated_start(run *r, rated_task *t, double x, int slow, sim_ns dur, int kind, int64_t a)
{
    t->rem_ns = (double)dur;
    t->last_ns = r->now;
    t->ver++;
    return des_event_after(r->ev, (sim_ns)ceil(t->rem_ns * (slow ? 1 + x : 1)), kind, a, t->ver);
}

/* A rated task's rate changed now (slow_before -> slow_now): bring its
 * remaining work up to date and push its new end. */
static int rated_change(run *r, rated_task *t, double x, int slow_before, int slow_now, int kind, int64_t a)
{
    t->rem_ns -= (double)(r->now - t->last_ns) / (slow_before ? 1 + x : 1);
    if (t->rem_ns < 0) t->rem_ns = 0;
    t->last_ns = r->now;
    t->ver++;
    return des_event_after(r->ev, (sim_ns)ceil(t->rem_ns * (slow_now ? 1 + x : 1)), kind, a, t->ver);
}

/* The I/O queue went from busy_before to r->io_busy: the running expert
 * compute (I/O interference) changes rate. */
static inline int comp_rerate(run *r, int busy_before)
{
    return r->comp_active && busy_before != r->io_busy
               ? rated_change(r, &r->comp_rt, r->d->io_interference, busy_before, r->io_busy, EV_COMP_DONE, r->comp_idx)
               : D2_OK;
}

/* An expert compute started (computing = 1) or ended (0): the flash load
 * in flight (read interference) changes rate. */
static inline int load_rerate(run *r, int computing)
{
    return r->load_active ? rated_change(r, &r->load_rt, r->d->read_interference, !computing, computing, EV_LOAD_DONE_V,
                                         r->load_entry)
                          : D2_OK;
}

/* an expert compute runs (the compute unit is busy in the expert phase) */
static inline int expert_computing(const run *r) { return r->comp_busy && r->phase == 1; }

static int kick_compute(run *r);

/* Start the queue's next load if the channel is idle (see kick_io). */
static int io_next(run *r)
{
    while (!r->io_busy && r->qhead < r->qtail && !r->oom && !r->done) {
        io_req *q = &r->ioq[r->qhead];
        if (r->serial && !q->prefetch && (r->comp_busy || r->rhead < r->rtail)) return D2_OK;
        step_item *it = NULL;
        uint32_t unit;
        if (q->prefetch) {
            if (mem_entry_state(r->mm, q->entry) != MEM_ABSENT) { r->qhead++; continue; } /* already resident or loading */
            unit = q->entry % r->U;
        } else {
            if (r->nested) {
                int go;
                RUN_TRY(step_pick_load(r, &go));
                if (!go) return D2_OK;
                q = &r->ioq[r->qhead];
            }
            int32_t ii = r->item_of[q->entry];
            it = &r->items[ii];
            unit = it->unit;
            int st = mem_entry_state(r->mm, q->entry);
            if (st != MEM_ABSENT) { /* a deferred group's unit still resident: a hit after all */
                step_hold_item(r, it);
                it->hit = 1;
                r->hits++;
                if (it->pred) r->pf_used++;
                if (st == MEM_RESIDENT) {
                    it->state = 1;
                    r->ready[r->rtail++] = (uint32_t)ii;
                }
                r->qhead++;
                RUN_TRY(kick_compute(r));
                continue;
            }
        }
        const uint32_t entry = q->entry;
        int evicted, fits;
        RUN_TRY(mem_entry_reserve(r->mm, entry, &fits, &evicted));
        RUN_TRY(check_freed(r));
        if (!fits) {
            if (q->prefetch) { /* never stall the channel for a guess */
                mem_entry_predict(r->mm, entry, 0);
                r->qhead++;
                continue;
            }
            return D2_OK; /* wait until a compute frees a level */
        }
        if (it) {
            step_hold_item(r, it);
            it->started = 1;
            /* invariant: nested levels of an expert load in ascending order */
            if (r->nested && unit > 0) {
                int32_t jj = r->item_of[entry - 1];
                if (jj < 0 || !(r->items[jj].hit || r->items[jj].started))
                    D2_ERROR(D2_EINTERNAL, "sim: level %u of expert %u loads before level %u", unit + 1,
                             (entry / r->U) % r->E, unit);
            }
        }
        const int64_t bytes = r->unit_bytes[unit]; /* mem_entry_bytes: an entry's bytes are its unit's */
#ifdef D2_DEBUG
        if (bytes != mem_entry_bytes(r->mm, entry))
            D2_ERROR(D2_EINTERNAL, "sim: entry %u has %lld bytes in memory, %lld as its unit", entry,
                     (long long)mem_entry_bytes(r->mm, entry), (long long)bytes);
#endif
        int cached = 0;
        if (r->cache_bytes > 0) RUN_TRY(mem_cache_access(r->mm, entry, &cached)); /* mem has no page cache without room for one */
        sim_ns t = r->io_unit[unit]; /* checked once at setup */
        if (cached) {
            r->pc_hits++;
            t = cost_load_ns(r->d, bytes, 1);
            RUN_TRY(account_check_dur(t, "expert load"));
        }
        const sim_ns now = r->now;
        const int prefetch = q->prefetch;
        if (__builtin_expect(r->rinterfere, 0)) {
            /* every load's end event carries a version (stale ones are
             * dropped); a flash load's duration depends on the expert
             * computes while it runs: accounted and told when it ends */
            r->load_active = !cached;
            if (!cached) {
                r->load_entry = entry;
                r->load_layer = q->layer;
                r->load_unit = unit;
                r->load_tokens = prefetch ? 0 : it->tokens;
                r->load_prefetch = prefetch;
                r->load_bytes = bytes;
                r->load_start = now;
            }
            RUN_TRY(rated_start(r, &r->load_rt, r->d->read_interference, !cached && expert_computing(r), t, EV_LOAD_DONE_V, entry));
        } else {
            RUN_TRY(des_event_after(r->ev, t, EV_LOAD_DONE, entry, prefetch));
        }
        if (!r->load_active) { /* its duration is known now */
            account_emit(r, SIM_OP_LOAD, now, now + t, q->layer, (int)((entry / r->U) % r->E), unit + 1,
                         prefetch ? 0 : it->tokens, 0, prefetch, cached ? SIM_TIER_PAGE_CACHE : SIM_TIER_FLASH, bytes);
            r->io_busy_ns += t;
        }
        r->io_busy = 1;
        RUN_TRY(comp_rerate(r, 0));
        r->io_bytes += bytes;
        if (prefetch) r->pf_loads++;
        else r->loads++;
        r->qhead++;
        account_mem(r);
        return D2_OK; /* the channel is busy now */
    }
    return D2_OK;
}

/* Start the next load when the channel is idle and a load is queued: the
 * common calls (a compute ended while a load runs) return here. */
static inline int kick_io(run *r) { return r->io_busy || r->qhead >= r->qtail ? D2_OK : io_next(r); }

/* Start the next ready compute (see kick_compute). */
static int compute_next(run *r)
{
    step_item *it = &r->items[r->ready[r->rhead++]];
    if (mem_entry_state(r->mm, it->entry) != MEM_RESIDENT)
        D2_ERROR(D2_EINTERNAL, "sim: compute of expert %u level %u starts before its load completed", it->expert, it->unit + 1);
    sim_ns now = r->now;
    if (r->waiting) { r->bubble_ns += now - r->idle_since; r->waiting = 0; }
    it->state = 2;
    if (r->fp16_copy && r->unit_bits[it->unit] < 16) {
        r->transient = 2 * r->W;
        account_mem(r);
    }
    r->comp_busy = 1;
    if (__builtin_expect(r->rinterfere, 0)) RUN_TRY(load_rerate(r, 1));
    if (__builtin_expect(r->interfere, 0)) {
        /* the duration depends on the I/O queue while it runs: accounted
         * and written to the timeline when it ends */
        r->comp_active = 1;
        r->comp_idx = (uint32_t)(it - r->items);
        r->comp_start = now;
        RUN_TRY(rated_start(r, &r->comp_rt, r->d->io_interference, r->io_busy, it->t_comp, EV_COMP_DONE, r->comp_idx));
    } else {
        RUN_TRY(des_event_after(r->ev, it->t_comp, EV_COMP_DONE, it - r->items, 0));
        account_emit(r, SIM_OP_COMPUTE, now, now + it->t_comp, r->layer, (int)it->expert, it->unit + 1, it->tokens, it->final, 0,
                     SIM_TIER_NONE, 0);
        r->comp_ns += it->t_comp;
        r->expert_ns += it->t_comp;
    }
    r->dequant_ns += it->dequant;
    r->router_ns += it->router;
    return D2_OK;
}

/* Start the next ready compute when the unit is free in the expert phase. */
static inline int kick_compute(run *r)
{
    return r->comp_busy || r->phase != 1 || r->rhead == r->rtail || r->oom ? D2_OK : compute_next(r);
}

/* one event (inline in the loop below: twenty million a sweep) */
static inline int handle(run *r, const des_event *e)
{
    switch (e->kind) {
    case EV_STEP_START:
        return step_start(r);
    case EV_NONEXP_DONE:
        r->comp_busy = 0;
        r->phase = 1;
        RUN_TRY(step_plan(r));
        r->waiting = 1;
        r->idle_since = r->now;
        if (r->nitems == 0) return step_end(r);
        RUN_TRY(kick_compute(r));
        return kick_io(r);
    case EV_LOAD_DONE_V: { /* a load's end under the read interference model */
        if (e->b != r->load_rt.ver) return D2_OK; /* superseded by a rate change */
        if (r->load_active) {
            sim_ns now = r->now;
            r->load_active = 0;
            account_emit(r, SIM_OP_LOAD, r->load_start, now, r->load_layer, (int)(((uint32_t)e->a / r->U) % r->E),
                         r->load_unit + 1, r->load_tokens, 0, r->load_prefetch, SIM_TIER_FLASH, r->load_bytes);
            r->io_busy_ns += now - r->load_start;
        }
    }
        __attribute__((fallthrough)); /* the rest is every load's end */
    case EV_LOAD_DONE: {
        uint32_t id = (uint32_t)e->a;
        r->io_busy = 0;
        RUN_TRY(comp_rerate(r, 1));
        mem_entry_loaded(r->mm, id);
        int32_t ii = r->item_of[id];
        if (ii >= 0 && r->items[ii].held && r->items[ii].state == 0) {
            r->items[ii].state = 1;
            r->ready[r->rtail++] = (uint32_t)ii;
        }
        RUN_TRY(kick_compute(r));
        return kick_io(r);
    }
    case EV_COMP_DONE: {
        step_item *it = &r->items[e->a];
        if (__builtin_expect(r->interfere_any, 0)) { /* either interference model */
            if (r->interfere) {
                if (e->b != r->comp_rt.ver || !r->comp_active) return D2_OK; /* superseded by a rate change */
                sim_ns now = r->now;
                r->comp_active = 0;
                account_emit(r, SIM_OP_COMPUTE, r->comp_start, now, r->layer, (int)it->expert, it->unit + 1, it->tokens, it->final,
                             0, SIM_TIER_NONE, 0);
                r->comp_ns += now - r->comp_start;
                r->expert_ns += now - r->comp_start;
            }
            if (r->rinterfere) RUN_TRY(load_rerate(r, 0));
        }
        it->state = 3;
        r->comp_busy = 0;
        r->transient = 0;
        step_group *g = &r->groups[it->grp];
        /* its part of the open groups' need (step_group_rest) changes only
         * when this is its last item (left was at least 1): from need - held,
         * if it holds bytes, to 0 */
        if (--g->left == 0) { /* the group's last item: its units may go */
            if (g->held > 0) r->open_rest -= g->need - g->held;
            for (uint32_t i = g->first, end = g->first + g->n; i < end; i++) {
                step_item *x = &r->items[i];
                x->held = 0;
                mem_entry_done(r->mm, x->entry); /* kept or freed: the memory policy's choice */
            }
            r->held_total -= g->held;
            g->held = 0;
            RUN_TRY(check_freed(r));
        }
        if (--r->remaining == 0) {
            RUN_TRY(kick_io(r)); /* preloads may proceed during the next layer's non-expert work */
            return step_end(r);
        }
        r->waiting = 1;
        r->idle_since = r->now;
        RUN_TRY(kick_compute(r));
        return kick_io(r);
    }
    }
    D2_ERROR(D2_EINTERNAL, "sim: unknown event kind %d", e->kind);
}

int engine_run(run *r)
{
    int rc = D2_OK;
    des_event e;
    while (rc == D2_OK && !r->oom && !r->done && des_event_pop(r->ev, &e)) {
        r->now = e.time; /* des_now(r->ev), kept for the handlers */
        rc = handle(r, &e);
    }
    return rc;
}
