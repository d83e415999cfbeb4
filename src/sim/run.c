/* run.c - the serving simulator's run (sim_run, sim_run_observed): set a run
 * up from its inputs (the system resolved, memory, generators, buffers,
 * offline profiling), run it (engine_run, engine.c) until the last forward step ends
 * or memory runs out, check the run's invariants and tear it down.  What
 * happens at each event is in engine.c and step.c; what a run accounts as it
 * goes in account.c; metrics in result.c.  It does not parse command lines or
 * write databases (see job.c, src/cli). */
#include "sim/sim_int.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void teardown(run *r)
{
    stepmemo_close(r->smemo);
    free(r->smemo_comp);
    des_free(r->ev);
    mem_free(r->mm);
    if (r->rng_bits) gsl_rng_free(r->rng_bits);
    if (r->rng_pred) gsl_rng_free(r->rng_pred);
    if (r->rng_arrival) gsl_rng_free(r->rng_arrival);
    if (r->bt_live && r->bt->fini) r->bt->fini(r->bc.state);
    if (r->ft_live && r->ft->fini) r->ft->fini(r->fc.state);
    free(r->bc.state);
    free(r->fc.state);
    free(r->tok_req);
    free(r->next_use);
    free(r->arrive_ns); free(r->first_ns); free(r->finish_ns); free(r->gen_cnt);
    free(r->pre_q); free(r->dec_q); free(r->dec_pos);
    free(r->rexp); free(r->rw); free(r->rb); free(r->uses); free(r->scratch); free(r->gsum);
    free(r->static_level); free(r->trans); free(r->items); free(r->item_of);
    free(r->pitems); free(r->order); free(r->order2); free(r->ready); free(r->ioq); free(r->predicted); free(r->ccache);
    free(r->groups); free(r->gflag); free(r->gneed);
}

#define SIM_ROUTE_MAX_BYTES (16ull << 30) /* routing arrays of one forward step, at most (setup) */
#define SIM_KV_MAX_BYTES 1e18               /* a run's largest KV cache, at most (int64 sums of it and the weights stay exact) */

static int setup(run *r, const sim_input *in)
{
    const sim_params *p = in->params;
    r->in = in;
    r->m = in->model;
    r->d = in->device;
    r->p = p;
    D2_TRY(sim_system_resolve(p, &r->rs));
    /* the configuration's checks (system.c; also run by sweeps and audits
     * before any run): what follows may rely on them */
    D2_TRY(sim_system_check(&r->rs, r->m, p));
    r->sys = policy_find(p->policy);
    const char *br = r->rs.bitroute, *pl = r->rs.plan, *mp = r->rs.mem, *cp = r->rs.caps, *pf = r->rs.prefetch;
    r->at = arrival_find(p->arrival);
    r->fused = !strcmp(p->nested_kernel, "fused");
    /* the transient FP16 copy exists only where a kernel writes one: not in
     * the fused kernel (dequantized tiles feed the GEMM, no copy is written)
     * and not on a device whose kernels read the packed codes */
    r->fp16_copy = p->transient_fp16 && !r->fused && r->d->dequant_rate < COST_NO_FP16_COPY;
    r->interfere = r->d->io_interference > 0;
    r->rinterfere = r->d->read_interference > 0;
    r->interfere_any = r->interfere || r->rinterfere;
    r->swiglu = r->sys->nested && !strcmp(p->nested_compute, "swiglu") && r->m->expert_matrices >= 2;
    int arg = 0;
    r->ft = prefetch_find(pf);
    r->bt = bitroute_find(br, &arg);
    r->pt = plan_find(pl);
    r->mt = mem_policy_find(mp); /* all four known: sim_system_resolve checked them */
    r->nested = r->sys->nested;
    r->serial = r->pt->serial;
    r->kv_on_device = p->kv_on_device;
    r->U = (uint32_t)r->sys->levels;
    D2_TRY(sim_system_caps_parse(cp, (int)r->U, r->caps, "sim.caps")); /* checked: this fills r->caps */
    if (r->bt->needs_bits && !in->route_has_bits)
        D2_ERROR(D2_EINVAL, "sim.bitroute: \"trace\" needs bit-widths recorded in the trace; this routing has none");
    r->L = (uint32_t)model_moe_layers(r->m);
    r->E = (uint32_t)r->m->experts;
    r->K = (uint32_t)r->m->top_k;
    r->R = (uint32_t)p->requests;
    r->P = (uint32_t)p->prompt;
    r->G = (uint32_t)p->gen;
    r->W = model_expert_params(r->m);
    int64_t maxunit = 0, total_units = 0;
    for (uint32_t u = 0; u < r->U; u++) {
        r->unit_bits[u] = r->sys->bits[u];
        if (p->storage[0]) /* checked by sim_system_resolve and sim_system_check; level k still computes as a (b1 + k - 1)-bit code, its bytes are the format's */
            D2_TRY(model_expert_format_level_bytes(r->m, p->storage, (int)u + 1, p->group, &r->unit_bytes[u]));
        else
            r->unit_bytes[u] = r->sys->nested ? model_expert_level_bytes(r->m, r->sys->bits[0], (int)u + 1, p->group)
                                              : model_expert_bytes_uniform(r->m, r->sys->bits[u], p->group);
        if (r->unit_bytes[u] > maxunit) maxunit = r->unit_bytes[u];
        total_units += r->unit_bytes[u];
    }
    r->fixed_bytes = model_nonexpert_bytes(r->m, (int)p->nonexpert_bits);
    r->kv_per_token = model_kv_bytes_per_token(r->m, (int)p->kv_bits);
    /* the largest KV cache of the run, in double first: R x (P + G - 1) x
     * bytes per token passed int64 (4096 requests of 1M tokens at 2 GiB a
     * token).  Below the limit a cache too large for the device is a
     * result (oom); above it, the int64 byte sums of the cache and the
     * weights beside it would not be exact */
    const double kv_all = (double)r->R * ((double)r->P + r->G - 1) * (double)r->kv_per_token;
    if (kv_all > SIM_KV_MAX_BYTES)
        D2_ERROR(D2_ERANGE, "sim.requests x (sim.prompt + sim.gen): the KV cache of %u requests of %u + %u tokens at %lld bytes a token "
                 "is %.3g bytes, more than the %.0e bytes the simulator counts (1000 times the memory a profile can have)",
                 r->R, r->P, r->G, (long long)r->kv_per_token, kv_all, SIM_KV_MAX_BYTES);
    const char *buf = r->rs.buffer;
    snprintf(r->res->sys_buffer, sizeof r->res->sys_buffer, "%s", buf);
    int64_t budget = p->budget;
    if (r->mt->hold) budget = total_units * (int64_t)r->L * r->E;
    else if (!strcmp(buf, "device")) {
        /* a buffer that fills the device: what the non-expert weights, the
         * largest KV cache of the run and the FP16 transient leave free */
        int64_t kv = p->kv_on_device ? (int64_t)r->R * (r->P + r->G - 1) * r->kv_per_token : 0;
        int64_t tr = r->fp16_copy ? 2 * r->W : 0;
        int64_t need = r->sys->nested ? total_units : maxunit;
        budget = r->d->mem_bytes - r->fixed_bytes - kv - tr;
        if (budget < need) {
            r->oom = 1;
            snprintf(r->res->reason, sizeof r->res->reason,
                     "the device leaves %lld bytes for the expert buffer after non-expert %lld, KV %lld and FP16 transient %lld "
                     "bytes of %lld; %s needs at least %lld", (long long)budget, (long long)r->fixed_bytes, (long long)kv,
                     (long long)tr, (long long)r->d->mem_bytes, r->sys->name, (long long)need);
            budget = need;
        }
    } else if (r->sys->nested && budget < total_units) /* a token at the top level holds every level */
        D2_ERROR(D2_ERANGE, "sim.budget: %lld bytes is smaller than one expert level set (%lld bytes) of %s on %s: "
                 "nested levels 1..%u of an expert are used together (a token at level %u needs them all until its down projection)",
                 (long long)budget, (long long)total_units, r->sys->name, r->m->name, r->U, r->U);
    else if (budget < maxunit)
        D2_ERROR(D2_ERANGE, "sim.budget: %lld bytes is smaller than one expert level (%lld bytes) of %s on %s",
                 (long long)budget, (long long)maxunit, r->sys->name, r->m->name);
    D2_TRY(des_new(&r->ev));
    {
        /* the host page cache: fixed, or derived from host RAM (on unified
         * memory the accelerator side's non-expert weights, largest KV cache
         * and expert memory come out of the same DRAM) */
        int64_t kvmax = p->kv_on_device ? (int64_t)r->R * (r->P + r->G - 1) * r->kv_per_token : 0;
        r->cache_bytes = device_page_cache_bytes(r->d, r->fixed_bytes + kvmax + budget);
    }
    D2_TRY(mem_new(r->mt, r->L, r->E, r->U, r->unit_bytes, budget, r->cache_bytes, &r->mm));
    D2_TRY(mem_page_cache_open(r->mm, r->d->page_cache_policy));
    mem_set_free_hook(r->mm, engine_unit_freed, r);
    r->rng_bits = rng_new((uint64_t)p->seed, 101);
    r->rng_pred = rng_new((uint64_t)p->seed, 102);
    r->ntok_max = (size_t)r->R * (r->P > 1 ? r->P : 1);
    /* the largest forward step's routing (every prompt token of every
     * request at every layer) is held at once: a workload whose arrays pass
     * SIM_ROUTE_MAX_BYTES is refused as bad input rather than left to
     * malloc (4096 requests of 1M prompt tokens asked for 1.8 TB) */
    const double route_bytes = (double)r->L * (double)r->ntok_max * r->K * (sizeof *r->rexp + sizeof *r->rw + sizeof *r->rb);
    if (route_bytes > SIM_ROUTE_MAX_BYTES)
        D2_ERROR(D2_ERANGE, "sim.requests x sim.prompt: %u requests of %u prompt tokens x %u layers x top-%u: the prefill step's "
                 "routing takes %.0f bytes, more than the limit of %.0f bytes (fewer requests or a shorter prompt)",
                 r->R, r->P, r->L, r->K, route_bytes, (double)SIM_ROUTE_MAX_BYTES);
    size_t nroute = (size_t)r->L * r->ntok_max * r->K;
    size_t nuse = r->ntok_max * r->K;
    size_t nent = (size_t)r->L * r->E * r->U;
    size_t nit = (size_t)r->E * r->U;
    r->rexp = malloc(nroute * sizeof *r->rexp);
    r->rw = malloc(nroute * sizeof *r->rw);
    r->rb = calloc(nroute, sizeof *r->rb);
    r->uses = malloc(nuse * sizeof *r->uses);
    r->scratch = malloc((6 * nuse > nit ? 6 * nuse : nit) * sizeof *r->scratch);
    r->gsum = malloc(2 * nit * sizeof *r->gsum);
    r->static_level = calloc((size_t)r->L * r->E, 1);
    r->trans = calloc((size_t)r->L * r->E * r->E, sizeof *r->trans);
    r->items = malloc(nit * sizeof *r->items);
    r->groups = malloc(nit * sizeof *r->groups);
    r->gflag = malloc(nit);
    r->gneed = malloc(nit * sizeof *r->gneed);
    r->item_of = malloc(nent * sizeof *r->item_of);
    r->pitems = malloc(nit * sizeof *r->pitems);
    r->order = malloc(nit * sizeof *r->order);
    r->order2 = malloc(nit * sizeof *r->order2);
    r->ready = malloc(nit * sizeof *r->ready);
    r->qcap = (uint32_t)(2 * nit + 16);
    r->ioq = malloc(r->qcap * sizeof *r->ioq);
    r->predicted = malloc(nent * sizeof *r->predicted);
    r->ccache = calloc((size_t)r->U * (r->ntok_max + 1), sizeof *r->ccache);
    r->arrive_ns = malloc(r->R * sizeof *r->arrive_ns);
    r->first_ns = malloc(r->R * sizeof *r->first_ns);
    r->finish_ns = malloc(r->R * sizeof *r->finish_ns);
    r->gen_cnt = calloc(r->R, sizeof *r->gen_cnt);
    r->pre_q = malloc(r->R * sizeof *r->pre_q);
    r->dec_q = malloc(r->R * sizeof *r->dec_q);
    r->dec_pos = malloc(r->R * sizeof *r->dec_pos);
    r->tok_req = malloc(r->ntok_max * sizeof *r->tok_req);
    r->rng_arrival = rng_new((uint64_t)p->seed, 103);
    for (uint32_t u = 0; u < r->U; u++) {
        r->io_unit[u] = cost_load_ns(r->d, r->unit_bytes[u], 0);
        D2_TRY(account_check_dur(r->io_unit[u], "expert load"));
    }
    if (!r->rng_bits || !r->rng_pred || !r->rexp || !r->rw || !r->rb || !r->uses || !r->scratch || !r->gsum || !r->static_level ||
        !r->trans || !r->items || !r->groups || !r->gflag || !r->gneed || !r->item_of || !r->pitems || !r->order || !r->order2 || !r->ready || !r->ioq || !r->predicted || !r->ccache ||
        !r->arrive_ns || !r->first_ns || !r->finish_ns || !r->gen_cnt || !r->pre_q || !r->dec_q || !r->dec_pos || !r->tok_req || !r->rng_arrival)
        D2_ERROR(D2_ENOMEM, "sim: out of memory");
    for (size_t i = 0; i < nent; i++) r->item_of[i] = -1;
    for (uint32_t q = 0; q < r->R; q++) r->first_ns[q] = r->finish_ns[q] = -1;
    D2_TRY(r->at->times(p->arrival_rate, r->rng_arrival, r->R, r->arrive_ns));
    r->pc = (plan_ctx){.nested = r->sys->nested, .max_states = p->opt_max_states};
    if (r->bt->needs_profile || r->ft->needs_profile) D2_TRY(profile_run(r));
    /* plug-in state: bit routing and the predictor (the memory policy's
     * lives in mem) */
    r->bc = (bitroute_cfg){.levels = r->U, .level_bits = r->unit_bits, .caps = r->caps, .arg_bits = arg, .layers = r->L,
                           .experts = r->E, .static_level = r->static_level, .rng = r->rng_bits, .nested = r->sys->nested,
                           .mem = r->mm, .params = p};
    r->fc = (prefetch_ctx){.experts = r->E, .layers = r->L, .top_k = r->K,
                           .want = p->prefetch_k > 0 ? (uint32_t)p->prefetch_k : r->K, .acc = p->predict_acc,
                           .rng = r->rng_pred, .mem = r->mm, .tok_req = r->tok_req, .route = in->route,
                           .route_user = in->route_user, .profile_first = r->R, .profile_n = (uint32_t)p->profile_requests,
                           .positions = r->P + r->G, .params = p};
    if (r->fc.want > r->E) r->fc.want = r->E;
    if (r->bt->state_size && !(r->bc.state = calloc(1, r->bt->state_size))) D2_ERROR(D2_ENOMEM, "sim: out of memory");
    if (r->bt->init) D2_TRY(r->bt->init(r->bc.state, &r->bc));
    r->bt_live = 1;
    if (r->ft->state_size && !(r->fc.state = calloc(1, r->ft->state_size))) D2_ERROR(D2_ENOMEM, "sim: out of memory");
    if (r->ft->init) D2_TRY(r->ft->init(r->fc.state, &r->fc));
    r->ft_live = 1;
    if (in->route_id && in->route_id[0] && r->bt->pure) {
        /* everything a pure bit routing's outcome depends on besides the
         * step's uses: the routing, the bit routing and the shape */
        char key[1024];
        int n = snprintf(key, sizeof key, "%s|%s:%d|K%u E%u k%u L%u P%u bits%d|", in->route_id, r->bt->name, arg, r->U, r->E,
                         r->K, r->L, r->P, in->route_has_bits);
        for (uint32_t u = 0; u < r->U && n > 0 && (size_t)n < sizeof key; u++)
            n += snprintf(key + n, sizeof key - (size_t)n, "%d/%.17g;", r->unit_bits[u], r->caps[u]);
        if (n > 0 && (size_t)n < sizeof key) {
            D2_TRY(stepmemo_open(key, r->L, r->E * r->U, &r->smemo));
            if (r->smemo && !(r->smemo_comp = malloc((2 + 3 * (size_t)r->R) * sizeof *r->smemo_comp)))
                D2_ERROR(D2_ENOMEM, "sim: out of memory");
#ifdef D2_DEBUG
            r->smemo_skip_route = 0; /* debug builds decode and rank every step and compare with the memo */
#else
            r->smemo_skip_route = r->smemo && r->ft->ignores_routing;
#endif
        }
    }
    if (r->mt->needs_oracle) {
        D2_TRY(oracle_build(r));
        mem_set_oracle(r->mm, oracle_next_use, r);
    }
    return D2_OK;
}

int sim_run(const sim_input *in, sim_result **out) { return sim_run_observed(in, NULL, out); }

int sim_run_observed(const sim_input *in, const sim_observer *obs, sim_result **out)
{
    *out = NULL;
    run rr, *r = &rr;
    memset(r, 0, sizeof *r);
    r->obs = obs;
    r->obs_op = obs && obs->op;
    r->obs_freed = obs && obs->unit_freed;
    sim_result *res = calloc(1, sizeof *res);
    if (!res) D2_ERROR(D2_ENOMEM, "sim: out of memory");
    r->res = res;
    res->model = *in->model;
    res->device = *in->device;
    res->params = *in->params;
    int rc = setup(r, in);
    if (rc == D2_OK) {
        account_mem(r);
        if (!r->oom) rc = des_event_push(r->ev, 0, EV_STEP_START, 0, 0);
        if (rc == D2_OK) rc = engine_run(r);
        if (rc == D2_OK && !r->oom && !r->done)
            rc = (d2_err_set("sim: the run stopped before its last step (a load could never fit)"), D2_EINTERNAL);
        if (rc == D2_OK && !r->oom) {
            /* every byte loaded is accounted: loaded = resident + evicted + released */
            if (r->io_bytes != mem_reserved_total(r->mm) - mem_initial_bytes(r->mm))
                rc = (d2_err_set("sim: %lld bytes loaded but %lld reserved", (long long)r->io_bytes,
                                 (long long)mem_reserved_total(r->mm)), D2_EINTERNAL);
            if (rc == D2_OK) rc = mem_check(r->mm);
        }
        if (rc == D2_OK) result_finish(r);
        /* invariant: no run beats its bound */
        if (rc == D2_OK && res->m.throughput_tps > res->m.bound_tps * (1 + 1e-9) && !r->oom)
            rc = (d2_err_set("sim: throughput %.9g tokens/s above its bound %.9g", res->m.throughput_tps, res->m.bound_tps),
                  D2_EINTERNAL);
    }
    teardown(r);
    if (rc != D2_OK) { free(res); return rc; }
    *out = res;
    return D2_OK;
}

