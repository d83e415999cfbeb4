/* account.c - what a run accounts as it goes, shared by run.c, engine.c and
 * step.c: the device-memory account's out-of-memory stop (the account itself
 * is inline in sim_int.h), operations told to the observer, and durations the
 * cost model saturated.  It decides nothing about the run (engine.c, step.c)
 * and keeps no state of its own. */
#include "sim/sim_int.h"

#include <stdio.h>

/* A duration the cost model saturated (cost.h): refused, not simulated. */
int account_check_dur(sim_ns t, const char *what)
{
    if (t >= COST_NS_MAX)
        D2_ERROR(D2_ERANGE, "sim: one %s takes %.1f hours or more of simulated time: the device is too slow for this model",
                 what, (double)COST_NS_MAX / 3.6e12);
    return D2_OK;
}

void account_oom(run *r, int64_t total)
{
    r->oom = 1;
    snprintf(r->res->reason, sizeof r->res->reason,
             "at %.6f s (layer %u of forward step %u): %lld bytes needed (non-expert %lld, KV %lld, experts %lld, "
             "FP16 transient %lld), the device has %lld",
             (double)des_now(r->ev) / 1e9, r->layer, r->f, (long long)total, (long long)r->fixed_bytes,
             (long long)(r->p->kv_on_device ? r->kv_bytes : 0), (long long)mem_resident_bytes(r->mm),
             (long long)r->transient, (long long)r->d->mem_bytes);
}

/* Tell the observer of one operation (account_emit checks there is one). */
void account_op(run *r, sim_op_kind kind, sim_ns t0, sim_ns t1, uint32_t layer, int expert, uint32_t level, uint32_t tokens,
                uint32_t final, int preload, sim_op_tier tier, int64_t bytes)
{
    sim_op op = {.kind = kind, .fstep = r->f, .step = (uint32_t)r->steps, .layer = layer, .expert = expert, .level = level,
                 .tokens = tokens, .final = final, .preload = preload, .tier = tier, .bytes = bytes, .start = t0, .end = t1};
    r->obs->op(r->obs->user, &op);
}
