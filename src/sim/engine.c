/* engine.c - the I/O channel and the compute unit: start the next load
 * (asking memory for room, the page cache for its tier), start the next ready
 * compute, re-rate a compute under I/O interference, and handle the events
 * (non-expert work done, load done, compute done).  The order of loads is the
 * planner's (step.c); what is evicted is the memory policy's (mem.c). */
#include "sim/sim_int.h"

#include <math.h>
#include <string.h>

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
    if (r->obs && r->obs->unit_freed)
        r->obs->unit_freed(r->obs->user, des_now(r->ev), id / r->U / r->E, (id / r->U) % r->E, id % r->U + 1);
}

int engine_check_freed(run *r)
{
    if (!r->bad_free) return D2_OK;
    uint32_t id = r->bad_free - 1;
    D2_ERROR(D2_EINTERNAL, "sim: level %u of expert %u (layer %u) left memory while its layer step still needs it",
             id % r->U + 1, (id / r->U) % r->E, id / r->U / r->E);
}

/* The I/O queue went from busy_before to r->io_busy: the running expert
 * compute (interference model) changes rate; push its new end. */
static int comp_rerate(run *r, int busy_before)
{
    if (!r->comp_active || busy_before == r->io_busy) return D2_OK;
    const double x = r->d->io_interference;
    int64_t now = des_now(r->ev);
    r->comp_rem -= (double)(now - r->comp_last) / (busy_before ? 1 + x : 1);
    if (r->comp_rem < 0) r->comp_rem = 0;
    r->comp_last = now;
    r->comp_ver++;
    double f = r->io_busy ? 1 + x : 1;
    return des_event_after(r->ev, (int64_t)ceil(r->comp_rem * f), EV_COMP_DONE, r->comp_idx, r->comp_ver);
}

int engine_kick_io(run *r)
{
    while (!r->io_busy && r->qhead < r->qtail && !r->oom && !r->done) {
        io_req *q = &r->ioq[r->qhead];
        if (r->pt->serial && !q->prefetch && (r->comp_busy || r->rhead < r->rtail)) return D2_OK;
        step_item *it = NULL;
        if (q->prefetch) {
            if (mem_entry_state(r->mm, q->entry) != MEM_ABSENT) { r->qhead++; continue; } /* already resident or loading */
        } else {
            if (r->sys->nested) {
                int go;
                RUN_TRY(step_pick_load(r, &go));
                if (!go) return D2_OK;
                q = &r->ioq[r->qhead];
            }
            int32_t ii = r->item_of[q->entry];
            it = &r->items[ii];
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
                RUN_TRY(engine_kick_compute(r));
                continue;
            }
        }
        int evicted, fits;
        RUN_TRY(mem_entry_reserve(r->mm, q->entry, &fits, &evicted));
        RUN_TRY(engine_check_freed(r));
        if (!fits) {
            if (q->prefetch) { /* never stall the channel for a guess */
                mem_entry_predict(r->mm, q->entry, 0);
                r->qhead++;
                continue;
            }
            return D2_OK; /* wait until a compute frees a level */
        }
        uint32_t unit = q->entry % r->U;
        if (it) {
            step_hold_item(r, it);
            it->started = 1;
            /* invariant: nested levels of an expert load in ascending order */
            if (r->sys->nested && unit > 0) {
                int32_t jj = r->item_of[q->entry - 1];
                if (jj < 0 || !(r->items[jj].hit || r->items[jj].started))
                    D2_ERROR(D2_EINTERNAL, "sim: level %u of expert %u loads before level %u", unit + 1,
                             (q->entry / r->U) % r->E, unit);
            }
        }
        int64_t bytes = mem_entry_bytes(r->mm, q->entry);
        int cached;
        RUN_TRY(mem_cache_access(r->mm, q->entry, &cached));
        if (cached) r->pc_hits++;
        int64_t t = cached ? cost_load_ns(r->d, bytes, 1) : r->io_unit[unit];
        RUN_TRY(account_check_dur(t, "expert load"));
        int64_t now = des_now(r->ev);
        RUN_TRY(des_event_after(r->ev, t, EV_LOAD_DONE, q->entry, q->prefetch));
        account_emit(r, SIM_OP_LOAD, now, now + t, q->layer, (int)((q->entry / r->U) % r->E), unit + 1,
                     q->prefetch ? 0 : r->items[r->item_of[q->entry]].tokens, 0, q->prefetch,
                     cached ? SIM_TIER_PAGE_CACHE : SIM_TIER_FLASH, bytes);
        r->io_busy = 1;
        RUN_TRY(comp_rerate(r, 0));
        r->io_busy_ns += t;
        r->io_bytes += bytes;
        if (q->prefetch) r->pf_loads++;
        else r->loads++;
        r->qhead++;
        account_mem(r);
    }
    return D2_OK;
}

int engine_kick_compute(run *r)
{
    if (r->comp_busy || r->phase != 1 || r->rhead == r->rtail || r->oom) return D2_OK;
    step_item *it = &r->items[r->ready[r->rhead++]];
    if (mem_entry_state(r->mm, it->entry) != MEM_RESIDENT)
        D2_ERROR(D2_EINTERNAL, "sim: compute of expert %u level %u starts before its load completed", it->expert, it->unit + 1);
    int64_t now = des_now(r->ev);
    if (r->waiting) { r->bubble_ns += now - r->idle_since; r->waiting = 0; }
    it->state = 2;
    if (r->fp16_copy && r->unit_bits[it->unit] < 16) {
        r->transient = 2 * r->W;
        account_mem(r);
    }
    r->comp_busy = 1;
    if (r->d->io_interference > 0) {
        /* the duration depends on the I/O queue while it runs: accounted
         * and written to the timeline when it ends */
        r->comp_active = 1;
        r->comp_idx = (uint32_t)(it - r->items);
        r->comp_start = r->comp_last = now;
        r->comp_rem = (double)it->t_comp;
        r->comp_ver++;
        double f = r->io_busy ? 1 + r->d->io_interference : 1;
        RUN_TRY(des_event_after(r->ev, (int64_t)ceil(r->comp_rem * f), EV_COMP_DONE, r->comp_idx, r->comp_ver));
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

int engine_handle(run *r, const des_event *e)
{
    switch (e->kind) {
    case EV_STEP_START:
        return step_start(r);
    case EV_NONEXP_DONE:
        r->comp_busy = 0;
        r->phase = 1;
        RUN_TRY(step_plan(r));
        r->waiting = 1;
        r->idle_since = des_now(r->ev);
        if (r->nitems == 0) return step_end(r);
        RUN_TRY(engine_kick_compute(r));
        return engine_kick_io(r);
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
        RUN_TRY(engine_kick_compute(r));
        return engine_kick_io(r);
    }
    case EV_COMP_DONE: {
        step_item *it = &r->items[e->a];
        if (r->d->io_interference > 0) {
            if (e->b != r->comp_ver || !r->comp_active) return D2_OK; /* superseded by a rate change */
            int64_t now = des_now(r->ev);
            r->comp_active = 0;
            account_emit(r, SIM_OP_COMPUTE, r->comp_start, now, r->layer, (int)it->expert, it->unit + 1, it->tokens, it->final, 0,
                         SIM_TIER_NONE, 0);
            r->comp_ns += now - r->comp_start;
            r->expert_ns += now - r->comp_start;
        }
        it->state = 3;
        r->comp_busy = 0;
        r->transient = 0;
        step_group *g = &r->groups[it->grp];
        r->open_rest -= step_group_rest(g); /* its part of the open groups' need, before and after */
        --g->left;
        r->open_rest += step_group_rest(g);
        if (g->left == 0) { /* the group's last item: its units may go */
            for (uint32_t i = g->first; i < g->first + g->n; i++) {
                step_item *x = &r->items[i];
                x->held = 0;
                mem_entry_done(r->mm, x->entry); /* kept or freed: the memory policy's choice */
            }
            r->held_total -= g->held;
            g->held = 0;
            RUN_TRY(engine_check_freed(r));
        }
        if (--r->remaining == 0) {
            RUN_TRY(engine_kick_io(r)); /* preloads may proceed during the next layer's non-expert work */
            return step_end(r);
        }
        r->waiting = 1;
        r->idle_since = des_now(r->ev);
        RUN_TRY(engine_kick_compute(r));
        return engine_kick_io(r);
    }
    }
    D2_ERROR(D2_EINTERNAL, "sim: unknown event kind %d", e->kind);
}

