/* sim.c - the serving loop: R requests (a synchronous batch, or arriving
 * over time with continuous batching), one forward step (prefills and one
 * decode token per running request) at a time, layer by layer; per layer
 * step bit routing -> plan -> I/O channel and compute unit driven by the
 * event engine, with the memory account deciding what stays resident.
 * It does not parse command lines or write databases (see job.c, src/cli). */
#include "sim/sim.h"
#include "sim/bitroute.h"
#include "sim/cost.h"
#include "sim/des.h"
#include "sim/mem.h"
#include "sim/plan.h"
#include "sim/policy.h"
#include "sim/prefetch.h"
#include "sim/arrival.h"
#include "core/err.h"
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- metrics: each registered once (name, unit, field) ----------------- */

typedef struct sim_metrics {
    double throughput_tps, total_tps, makespan_s, ttft_s, tpot_s;
    double peak_mem_mb, peak_expert_mb, io_gb, io_busy_s, compute_busy_s, expert_compute_s, nonexpert_s;
    double dequant_s, router_s, bubble_s, bubble_ratio, hit_rate, loads, hits, evictions;
    double prefetch_loads, prefetch_used, prefetch_accuracy, page_cache_hits;
    double plan_overhead_s, plan_gap_mean, plan_gap_max, plan_gap_idorder_mean, plan_gap_steps, plan_gap_skipped;
    double opt_fallbacks, layer_steps, tokens_generated, tokens_total, avg_bits;
    double nonexpert_mb, kv_mb, ttft_max_s, latency_s;
    double bound_tps, bound_util, bound_io_s, bound_compute_s, page_cache_gb;
} sim_metrics;

typedef struct metric_def {
    const char *name, *unit;
    size_t off;
} metric_def;

#define M(n, u) {#n, u, offsetof(sim_metrics, n)}
static const metric_def metric_defs[] = {
    M(throughput_tps, "tokens/s"), M(total_tps, "tokens/s"), M(makespan_s, "s"), M(ttft_s, "s"), M(tpot_s, "s"),
    M(peak_mem_mb, "MB"), M(peak_expert_mb, "MB"), M(io_gb, "GB"), M(io_busy_s, "s"), M(compute_busy_s, "s"),
    M(expert_compute_s, "s"), M(nonexpert_s, "s"), M(dequant_s, "s"), M(router_s, "s"), M(bubble_s, "s"),
    M(bubble_ratio, ""), M(hit_rate, ""), M(loads, ""), M(hits, ""), M(evictions, ""),
    M(prefetch_loads, ""), M(prefetch_used, ""), M(prefetch_accuracy, ""), M(page_cache_hits, ""),
    M(plan_overhead_s, "s"), M(plan_gap_mean, ""), M(plan_gap_max, ""), M(plan_gap_idorder_mean, ""),
    M(plan_gap_steps, ""), M(plan_gap_skipped, ""), M(opt_fallbacks, ""), M(layer_steps, ""),
    M(tokens_generated, "tokens"), M(tokens_total, "tokens"), M(avg_bits, "bits"),
    M(nonexpert_mb, "MB"), M(kv_mb, "MB"), M(ttft_max_s, "s"), M(latency_s, "s"),
    M(bound_tps, "tokens/s"), M(bound_util, ""), M(bound_io_s, "s"), M(bound_compute_s, "s"), M(page_cache_gb, "GB"),
};
#undef M
#define NMETRIC (sizeof metric_defs / sizeof metric_defs[0])

struct sim_result {
    char status[8];
    char reason[256];
    sim_metrics m;
    int levels;
    int level_bits[POLICY_MAX_LEVELS];
    double uses[POLICY_MAX_LEVELS];     /* token-expert uses per level */
    double gate_sum[POLICY_MAX_LEVELS]; /* sum of their gate weights */
    double gate2_sum[POLICY_MAX_LEVELS]; /* sum of their squared gate weights */
    model model;
    device device;
    sim_params params;
    char sys_bitroute[PARAM_STR_MAX], sys_plan[PARAM_STR_MAX], sys_mem[PARAM_STR_MAX], sys_caps[PARAM_STR_MAX];
    int nested;
    char sys_prefetch[PARAM_STR_MAX];
    char sys_buffer[PARAM_STR_MAX];
    char reading_name[PARAM_STR_MAX], reading_settings[2048], reading_path[4096];
    char trace_path[4096], trace_id[128], model_path[4096], device_path[4096];
};

/* ---- run state ------------------------------------------------------------ */

enum { EV_NONEXP_DONE = 1, EV_LOAD_DONE, EV_COMP_DONE, EV_STEP_START };

typedef struct step_item {
    uint32_t entry, expert, unit, tokens;
    uint32_t final;      /* tokens whose own level is this unit (copies: = tokens) */
    uint32_t grp;        /* its group in this step (step_group) */
    int64_t t_comp;      /* ns */
    int64_t dequant, router; /* parts of t_comp, ns */
    int state;           /* 0 waiting for load, 1 ready, 2 computing, 3 done */
    int hit;             /* resident or loading when the step was planned, or when its deferred load came up */
    int started;         /* its load has started in this step */
    int held;            /* the step holds (pins) its unit: from its hit or load until its group is done */
    int pred;            /* present at planning as a preload (predicted, or still loading) */
} step_item;

/* The items of a layer step that are used together.  Nested storage: one
 * expert's units (levels 1..k): the expert's FFN is SwiGLU, so a token at
 * level k sums the gate/up products of levels 1..k before the nonlinearity
 * and then goes through down at levels 1..k; every unit stays resident until
 * the expert's last item has computed.  Copies: each unit alone.  A group
 * is "open" once it holds a unit; loads are admitted so that every open
 * group can still finish within the budget (group_admit). */
typedef struct step_group {
    uint32_t first, n, left; /* items [first, first + n); not yet computed */
    int64_t need, held;      /* bytes of its units; of those, held by the step */
} step_group;

typedef struct grp_need { int64_t rem, held; } grp_need; /* group_admit scratch */

typedef struct io_req {
    uint32_t entry;
    int prefetch;        /* preload for the next layer */
    uint32_t layer;      /* layer it serves (timeline) */
} io_req;

typedef struct run {
    const sim_input *in;
    const model *m;
    const device *d;
    const sim_params *p;
    const policy_system *sys;
    sim_system rs;          /* the system as resolved (overrides applied) */
    const bitroute_type *bt;
    const plan_type *pt;
    const mem_policy_type *mt;
    const prefetch_type *ft;
    bitroute_cfg bc;
    plan_ctx pc;
    double caps[POLICY_MAX_LEVELS];          /* capacities c_k, fractions summing to 1 */
    int64_t unit_bytes[POLICY_MAX_LEVELS];   /* bytes of one expert's unit k */
    int unit_bits[POLICY_MAX_LEVELS];        /* bit-width of level k */
    uint32_t L, E, K, U, R, P, G;            /* MoE layers, experts, top_k, units, requests, prompt and gen tokens */
    int64_t W;              /* weights per expert */
    int64_t io_unit[POLICY_MAX_LEVELS]; /* load time of a unit from flash, ns */
    cost_compute *ccache;   /* [U][tokens] compute cost memo (total 0 = not yet) */
    des *ev;
    mem *mm;
    gsl_rng *rng_bits, *rng_pred, *rng_arrival;
    /* routing of the current forward step: [layer][tok][k] */
    uint16_t *rexp;         /* expert ids */
    float *rw;              /* gate weights */
    uint8_t *rb;            /* recorded bit-widths, bits (0 = none) */
    size_t ntok_max;        /* tokens of the largest forward step (the prefill) */
    bitroute_use *uses;     /* one layer step's (token, expert) uses */
    uint32_t *scratch;      /* bit routing scratch (6 per use), then B[expert][unit] counts */
    uint32_t *Bfin;         /* [expert][unit] tokens whose last level is unit (nested) */
    int swiglu;             /* sim.nested_compute = swiglu (nested systems only) */
    int fused;              /* sim.nested_kernel = fused */
    int64_t cache_bytes;    /* host page cache capacity, bytes (0 = none) */
    /* the bound (sim_bound): work no schedule avoids */
    int64_t fstep_need;     /* bytes of distinct units the current forward step needs */
    int64_t fstep_avail;    /* bytes that can be resident when it begins: the budget (the first step: what is) */
    int64_t lb_io_ns;       /* I/O time no schedule avoids, summed over forward steps, ns */
    double lb_flops;        /* FLOPs of the expert uses (2 W per token-expert use) and non-expert work */
    /* offline profiling */
    uint8_t *static_level;  /* [L*E] */
    double *trans;          /* [L*E*E] P(e' at l+1 | e at l) */
    /* step */
    uint32_t f, layer, ntok;       /* forward step, MoE layer, tokens of the forward step */
    double ctx_sum;                /* sum over those tokens of the context each attends to, tokens */
    /* requests: arrival, progress; a forward step = prefills of the
     * requests in pre_q (P tokens each, position-major) then one decode
     * token of each request in dec_q */
    const arrival_type *at;
    int64_t *arrive_ns, *first_ns, *finish_ns; /* per request, ns */
    uint32_t *gen_cnt;             /* tokens generated so far per request (0: not prefilled) */
    uint32_t *pre_q, *dec_q, *dec_pos;
    uint32_t npre, ndec, ndone;
    int64_t kv_peak;               /* bytes */
    step_item *items;
    uint32_t nitems, remaining;    /* units in the layer step, units not yet computed */
    step_group *groups;     /* of the layer step [ngroups] */
    uint32_t ngroups;
    int64_t held_total;     /* bytes held by the layer step (sum of groups' held) */
    uint8_t *gflag;         /* per group: open (planning), seen (pick_load) */
    grp_need *gneed;
    uint32_t bad_free;      /* 1 + an entry that left memory while its step needed it; 0 */
    const sim_observer *obs;
    int32_t *item_of;       /* entry -> item index in this step, -1 */
    plan_item *pitems;
    uint32_t *order, *order2;
    uint32_t *ready;        /* FIFO of items whose unit is resident, in readiness order */
    uint32_t rhead, rtail;
    io_req *ioq;            /* loads not yet started, in order */
    uint32_t qhead, qtail, qcap;
    int io_busy, comp_busy, phase; /* flags; phase: 0 non-expert, 1 expert */
    int waiting;            /* the compute unit waits for a load (a bubble is open) */
    /* the running expert compute when device.io_interference > 0: its rate
     * changes whenever the I/O queue starts or stops, so its end event is
     * re-pushed with a new version and stale ones are dropped */
    int comp_active;        /* an expert item is computing under the interference model */
    uint32_t comp_idx;      /* its item index */
    int64_t comp_start, comp_last; /* when it started / its remaining work was last updated, ns */
    double comp_rem;        /* its remaining work at full rate, ns */
    int64_t comp_ver;       /* version of its end event (event field b) */
    int64_t idle_since;     /* when that bubble opened, ns */
    uint32_t *predicted;    /* entries marked predicted */
    uint32_t npredicted;
    /* memory account, bytes */
    int64_t fixed_bytes, kv_bytes, transient, peak_total, kv_per_token;
    int oom;
    int done;               /* the last step has ended */
    int64_t end_ns;         /* when it ended */
    int64_t tick;           /* use counter for lru/lfu and the page cache (not time) */
    /* accumulators */
    int64_t io_busy_ns, comp_ns, expert_ns, nonexp_ns, dequant_ns, router_ns, bubble_ns; /* ns */
    int64_t io_bytes;       /* bytes loaded */
    uint64_t loads, hits, pf_loads, pf_used, pc_hits, steps; /* counts */
    double plan_wall;       /* wall-clock seconds in the planner */
    double gap_sum, gap_max, gap_id_sum; /* makespan ratios - 1 */
    uint64_t gap_n, gap_skip;            /* steps compared, steps too large for optimal */
    double uses_k[POLICY_MAX_LEVELS], gate_k[POLICY_MAX_LEVELS]; /* uses, gate-weight sums per level */
    double gate2_k[POLICY_MAX_LEVELS]; /* sums of squared gate weights per level */
    sim_result *res;
} run;

#define RUN_TRY(expr) D2_TRY(expr)

/* A duration the cost model saturated (cost.h): refused, not simulated. */
static int check_dur(int64_t t, const char *what)
{
    if (t >= COST_NS_MAX)
        D2_ERROR(D2_ERANGE, "sim: one %s takes %.1f hours or more of simulated time: the device is too slow for this model",
                 what, (double)COST_NS_MAX / 3.6e12);
    return D2_OK;
}

static int parse_caps(const char *s, int levels, double *caps, const char *what)
{
    int n = 0;
    double sum = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0 || v > 1 || n == levels)
            D2_ERROR(D2_EINVAL, "%s: \"%s\": expected %d capacities 0..1 separated by '/'", what, s, levels);
        caps[n++] = v;
        sum += v;
        p = end;
        if (*p == '/') p++;
        else if (*p) D2_ERROR(D2_EINVAL, "%s: \"%s\": expected %d capacities 0..1 separated by '/'", what, s, levels);
    }
    if (n != levels) D2_ERROR(D2_EINVAL, "%s: \"%s\": the storage format has %d levels", what, s, levels);
    if (fabs(sum - 1) > 1e-6) D2_ERROR(D2_EINVAL, "%s: \"%s\": capacities sum to %g, not 1", what, s, sum);
    return D2_OK;
}

/* ---- memory account ------------------------------------------------------ */

static void mem_account(run *r)
{
    int64_t total = r->fixed_bytes + (r->p->kv_on_device ? r->kv_bytes : 0) + mem_resident_bytes(r->mm) + r->transient;
    if (total > r->peak_total) r->peak_total = total;
    if (total > r->d->mem_bytes && !r->oom) {
        r->oom = 1;
        snprintf(r->res->reason, sizeof r->res->reason,
                 "at %.6f s (layer %u of forward step %u): %lld bytes needed (non-expert %lld, KV %lld, experts %lld, "
                 "FP16 transient %lld), the device has %lld",
                 (double)des_now(r->ev) / 1e9, r->layer, r->f, (long long)total, (long long)r->fixed_bytes,
                 (long long)(r->p->kv_on_device ? r->kv_bytes : 0), (long long)mem_resident_bytes(r->mm),
                 (long long)r->transient, (long long)r->d->mem_bytes);
    }
}

/* Tell the observer of one operation. */
static void emit(run *r, sim_op_kind kind, int64_t t0, int64_t t1, uint32_t layer, int expert, uint32_t level, uint32_t tokens,
                 uint32_t final, int preload, sim_op_tier tier, int64_t bytes)
{
    if (!r->obs || !r->obs->op) return;
    sim_op op = {.kind = kind, .fstep = r->f, .step = (uint32_t)r->steps, .layer = layer, .expert = expert, .level = level,
                 .tokens = tokens, .final = final, .preload = preload, .tier = tier, .bytes = bytes, .start = t0, .end = t1};
    r->obs->op(r->obs->user, &op);
}

static void timeline_op(void *user, const sim_op *op)
{
    sim_timeline *t = user;
    fprintf(t->f, "%lld,%lld,%s,%u,%d,%u,%u\n", (long long)op->start, (long long)op->end,
            op->kind == SIM_OP_LOAD ? "io" : "compute", op->layer, (int)op->expert, op->level, op->tokens);
}

void sim_timeline_begin(sim_timeline *t, FILE *f, sim_observer *obs)
{
    t->f = f;
    fprintf(f, "start_ns,end_ns,queue,layer,expert,level,tokens\n");
    memset(obs, 0, sizeof *obs);
    obs->op = timeline_op;
    obs->user = t;
}

/* ---- profiling (offline, from requests the batch does not use) ----------- */

static int profile(run *r)
{
    size_t LE = (size_t)r->L * r->E;
    double *mass = calloc(LE, sizeof *mass);
    double *cnt = calloc(LE * r->E, sizeof *cnt);
    uint16_t ex[2][64];
    float w[64];
    if (!mass || !cnt) { free(mass); free(cnt); D2_ERROR(D2_ENOMEM, "sim: out of memory"); }
    uint32_t npos = r->P + r->G;
    for (uint32_t q = 0; q < (uint32_t)r->p->profile_requests; q++) {
        uint32_t req = r->R + q; /* ids after the batch; a trace file wraps them */
        for (uint32_t pos = 0; pos < npos; pos++)
            for (uint32_t l = 0; l < r->L; l++) {
                int rc = r->in->route(r->in->route_user, req, pos, l, ex[l & 1], w, NULL);
                if (rc) { free(mass); free(cnt); return rc; }
                for (uint32_t k = 0; k < r->K; k++) mass[(size_t)l * r->E + ex[l & 1][k]] += w[k];
                if (l > 0)
                    for (uint32_t a = 0; a < r->K; a++)
                        for (uint32_t b = 0; b < r->K; b++)
                            cnt[((size_t)(l - 1) * r->E + ex[(l - 1) & 1][a]) * r->E + ex[l & 1][b]] += 1;
            }
    }
    int rc = bitroute_static_levels(mass, r->L, r->E, r->caps, r->U, r->static_level);
    if (rc) { free(mass); free(cnt); return rc; }
    for (size_t row = 0; row < LE; row++) { /* rows -> conditional probabilities */
        double s = 0;
        for (uint32_t e = 0; e < r->E; e++) s += cnt[row * r->E + e];
        for (uint32_t e = 0; e < r->E; e++) r->trans[row * r->E + e] = s > 0 ? cnt[row * r->E + e] / s : 1.0 / r->E;
    }
    free(mass);
    free(cnt);
    return D2_OK;
}

/* ---- routing of one forward step ---------------------------------------- */

static int route_one(run *r, uint32_t q, uint32_t pos, uint32_t l, size_t tok)
{
    size_t at = ((size_t)l * r->ntok + tok) * r->K;
    int rc = r->in->route(r->in->route_user, q, pos, l, r->rexp + at, r->rw + at, r->rb + at);
    if (rc) return rc;
    for (uint32_t k = 0; k < r->K; k++)
        if (r->rexp[at + k] >= r->E)
            D2_ERROR(D2_EFORMAT, "routing: request %u position %u layer %u: expert %u is not below %u", q, pos, l,
                     (unsigned)r->rexp[at + k], r->E);
    return D2_OK;
}

/* In the source's fast order: for position, for layer, for request. */
static int fetch_routing(run *r)
{
    for (uint32_t pp = 0; r->npre && pp < r->P; pp++)
        for (uint32_t l = 0; l < r->L; l++)
            for (uint32_t i = 0; i < r->npre; i++)
                D2_TRY(route_one(r, r->pre_q[i], pp, l, (size_t)pp * r->npre + i));
    size_t base = (size_t)r->npre * r->P;
    for (uint32_t l = 0; r->ndec && l < r->L; l++)
        for (uint32_t j = 0; j < r->ndec; j++) D2_TRY(route_one(r, r->dec_q[j], r->dec_pos[j], l, base + j));
    return D2_OK;
}

/* ---- the I/O channel and the compute unit -------------------------------- */

static int kick_compute(run *r);

/* The step holds the item's unit (resident or loading) until its group is done. */
static void hold_item(run *r, step_item *it)
{
    mem_entry_pin(r->mm, it->entry);
    it->held = 1;
    r->groups[it->grp].held += r->unit_bytes[it->unit];
    r->held_total += r->unit_bytes[it->unit];
}

static int cmp_need(const void *a, const void *b)
{
    const grp_need *x = a, *y = b;
    return x->rem < y->rem ? -1 : x->rem > y->rem;
}

/* May group g hold `bytes` more now?  They must fit beside what the step
 * holds (unheld resident units can be evicted), and afterwards every open
 * group must still be able to finish: a banker's check with one resource,
 * the budget (open groups by remaining need ascending; each that fits
 * returns what it holds when done). */
static int group_admit(run *r, uint32_t g, int64_t bytes)
{
    int64_t room = mem_budget(r->mm) - r->held_total - bytes, rest = 0;
    if (room < 0) return 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->ngroups; i++) {
        const step_group *x = &r->groups[i];
        int64_t held = x->held + (i == g ? bytes : 0);
        if (!held || !x->left) continue;
        r->gneed[n++] = (grp_need){x->need - held, held};
        rest += x->need - held;
    }
    if (rest <= room) return 1;
    qsort(r->gneed, n, sizeof *r->gneed, cmp_need);
    for (uint32_t i = 0; i < n; i++) {
        if (r->gneed[i].rem > room) return 0;
        room += r->gneed[i].held;
    }
    return 1;
}

static int load_admit(run *r, uint32_t qi)
{
    const step_item *it = &r->items[r->item_of[r->ioq[qi].entry]];
    return group_admit(r, it->grp, r->unit_bytes[it->unit]);
}

/* Nested storage: make the queue's head a unit the step can take now.  The
 * planner's head if admissible; else wait while a group that needs no more
 * loads is computing (it will free its units); else the first admissible
 * unit further on that is its group's first in the queue (levels stay
 * ascending).  One exists while every open group can finish (admission
 * keeps that true).  *go = 1: the head may go; 0: wait.  A D2 status. */
static int pick_load(run *r, int *go)
{
    *go = 1;
    if (load_admit(r, r->qhead)) return D2_OK;
    *go = 0;
    for (uint32_t g = 0; g < r->ngroups; g++)
        if (r->groups[g].left && r->groups[g].held == r->groups[g].need) return D2_OK;
    memset(r->gflag, 0, r->ngroups);
    r->gflag[r->items[r->item_of[r->ioq[r->qhead].entry]].grp] = 1;
    for (uint32_t i = r->qhead + 1; i < r->qtail && !r->ioq[i].prefetch; i++) {
        uint32_t g = r->items[r->item_of[r->ioq[i].entry]].grp;
        if (r->gflag[g]) continue;
        r->gflag[g] = 1;
        if (load_admit(r, i)) {
            io_req t = r->ioq[i];
            memmove(r->ioq + r->qhead + 1, r->ioq + r->qhead, (i - r->qhead) * sizeof *r->ioq);
            r->ioq[r->qhead] = t;
            *go = 1;
            return D2_OK;
        }
    }
    D2_ERROR(D2_EINTERNAL, "sim: layer %u of forward step %u: no load fits the budget and no compute can free room", r->layer, r->f);
}

/* mem's free hook.  Invariant: a unit leaving memory is not held by the
 * running layer step, and none whose item has started computing leaves
 * while its group (nested: the expert) still has an item pending. */
static void unit_freed(void *user, uint32_t id)
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

static int check_freed(run *r)
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

static int kick_io(run *r)
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
                RUN_TRY(pick_load(r, &go));
                if (!go) return D2_OK;
                q = &r->ioq[r->qhead];
            }
            int32_t ii = r->item_of[q->entry];
            it = &r->items[ii];
            int st = mem_entry_state(r->mm, q->entry);
            if (st != MEM_ABSENT) { /* a deferred group's unit still resident: a hit after all */
                hold_item(r, it);
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
        int evicted, fits;
        RUN_TRY(mem_entry_reserve(r->mm, q->entry, &fits, &evicted));
        RUN_TRY(check_freed(r));
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
            hold_item(r, it);
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
        RUN_TRY(check_dur(t, "expert load"));
        int64_t now = des_now(r->ev);
        RUN_TRY(des_event_after(r->ev, t, EV_LOAD_DONE, q->entry, q->prefetch));
        emit(r, SIM_OP_LOAD, now, now + t, q->layer, (int)((q->entry / r->U) % r->E), unit + 1,
             q->prefetch ? 0 : r->items[r->item_of[q->entry]].tokens, 0, q->prefetch,
             cached ? SIM_TIER_PAGE_CACHE : SIM_TIER_FLASH, bytes);
        r->io_busy = 1;
        RUN_TRY(comp_rerate(r, 0));
        r->io_busy_ns += t;
        r->io_bytes += bytes;
        if (q->prefetch) r->pf_loads++;
        else r->loads++;
        r->qhead++;
        mem_account(r);
    }
    return D2_OK;
}

static int kick_compute(run *r)
{
    if (r->comp_busy || r->phase != 1 || r->rhead == r->rtail || r->oom) return D2_OK;
    step_item *it = &r->items[r->ready[r->rhead++]];
    if (mem_entry_state(r->mm, it->entry) != MEM_RESIDENT)
        D2_ERROR(D2_EINTERNAL, "sim: compute of expert %u level %u starts before its load completed", it->expert, it->unit + 1);
    int64_t now = des_now(r->ev);
    if (r->waiting) { r->bubble_ns += now - r->idle_since; r->waiting = 0; }
    it->state = 2;
    if (r->p->transient_fp16 && r->unit_bits[it->unit] < 16) {
        r->transient = 2 * r->W;
        mem_account(r);
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
        emit(r, SIM_OP_COMPUTE, now, now + it->t_comp, r->layer, (int)it->expert, it->unit + 1, it->tokens, it->final, 0,
             SIM_TIER_NONE, 0);
        r->comp_ns += it->t_comp;
        r->expert_ns += it->t_comp;
    }
    r->dequant_ns += it->dequant;
    r->router_ns += it->router;
    return D2_OK;
}

/* ---- preloading (EdgeMoE) -------------------------------------------------- */

static int queue_io(run *r, uint32_t entry, int prefetch, uint32_t layer)
{
    if (r->qtail == r->qcap) {
        if (r->qhead > 0) {
            memmove(r->ioq, r->ioq + r->qhead, (r->qtail - r->qhead) * sizeof *r->ioq);
            r->qtail -= r->qhead;
            r->qhead = 0;
        } else {
            io_req *q = realloc(r->ioq, 2 * r->qcap * sizeof *q);
            if (!q) D2_ERROR(D2_ENOMEM, "sim: out of memory");
            r->ioq = q;
            r->qcap *= 2;
        }
    }
    r->ioq[r->qtail++] = (io_req){entry, prefetch, layer};
    return D2_OK;
}

static int issue_prefetch(run *r)
{
    if (r->layer + 1 >= r->L) return D2_OK; /* EdgeMoE predicts within a token's pass */
    uint32_t ex[4096];
    size_t nu = (size_t)r->ntok * r->K;
    prefetch_ctx pc = {r->E, r->p->prefetch_k > 0 ? (uint32_t)r->p->prefetch_k : r->K,
                       r->rexp + (size_t)r->layer * nu, nu, r->rexp + (size_t)(r->layer + 1) * nu, nu,
                       r->trans + (size_t)r->layer * r->E * r->E, r->p->predict_acc, r->rng_pred};
    if (pc.want > r->E) pc.want = r->E;
    uint32_t n = r->ft->predict(&pc, ex);
    for (uint32_t i = 0; i < n; i++) {
        /* the unit(s) the expert will use: its static level if the system
         * has one, else the base level (nested) / most common copy */
        uint32_t lev = 0;
        if (r->bt->needs_profile) lev = r->static_level[(size_t)(r->layer + 1) * r->E + ex[i]];
        else if (!r->sys->nested)
            for (uint32_t k = 1; k < r->U; k++)
                if (r->caps[k] > r->caps[lev]) lev = k;
        for (uint32_t u = r->sys->nested ? 0 : lev; u <= lev; u++) {
            uint32_t id = mem_entry_id(r->mm, r->layer + 1, ex[i], u);
            if (mem_entry_state(r->mm, id) != MEM_ABSENT) continue;
            mem_entry_predict(r->mm, id, 1);
            r->predicted[r->npredicted++] = id;
            RUN_TRY(queue_io(r, id, 1, r->layer + 1));
        }
    }
    return D2_OK;
}

/* ---- one layer step ------------------------------------------------------ */

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* wall clock: only for plan_overhead_s */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int step_start(run *r)
{
    int64_t now = des_now(r->ev);
    if (r->layer == 0) { /* a new forward step: who is in it, its tokens' KV cache */
        r->npre = r->ndec = 0;
        int64_t next = INT64_MAX;
        for (uint32_t q = 0; q < r->R; q++) {
            if (r->finish_ns[q] >= 0) continue;
            if (r->arrive_ns[q] > now) { /* joins a later forward step */
                if (r->arrive_ns[q] < next) next = r->arrive_ns[q];
                continue;
            }
            if (r->gen_cnt[q] == 0) r->pre_q[r->npre++] = q;
            else {
                r->dec_q[r->ndec] = q;
                r->dec_pos[r->ndec++] = r->P + r->gen_cnt[q] - 1;
            }
        }
        if (r->npre + r->ndec == 0) /* nobody to serve: wait for the next arrival */
            return des_event_push(r->ev, next, EV_STEP_START, 0, 0);
        r->ntok = r->npre * r->P + r->ndec;
        r->ctx_sum = (double)r->npre * (double)r->P * ((double)r->P + 1) / 2;
        for (uint32_t j = 0; j < r->ndec; j++) r->ctx_sum += (double)r->dec_pos[j] + 1;
        r->kv_bytes += (int64_t)r->ntok * r->kv_per_token;
        r->fstep_avail = r->f == 0 ? mem_resident_bytes(r->mm) : mem_budget(r->mm);
        if (r->kv_bytes > r->kv_peak) r->kv_peak = r->kv_bytes;
        RUN_TRY(fetch_routing(r));
    }
    mem_set_layer(r->mm, r->layer);
    mem_account(r);
    int64_t t = cost_nonexpert_ns(r->d, r->m, (int)r->p->nonexpert_bits, (int)r->p->kv_bits, r->ntok, r->ctx_sum);
    r->lb_flops += cost_nonexpert_flops(r->m, r->ntok, r->ctx_sum);
    RUN_TRY(check_dur(t, "layer's non-expert work"));
    emit(r, SIM_OP_NONEXPERT, now, now + t, r->layer, -1, 0, r->ntok, 0, 0, SIM_TIER_NONE, 0);
    r->phase = 0;
    r->comp_busy = 1;
    r->comp_ns += t;
    r->nonexp_ns += t;
    return des_event_after(r->ev, t, EV_NONEXP_DONE, 0, 0);
}

static int plan_step(run *r)
{
    /* bit routing of every (token, expert) use of this layer step */
    size_t n = (size_t)r->ntok * r->K;
    const size_t base = (size_t)r->layer * r->ntok * r->K;
    for (size_t i = 0; i < n; i++)
        r->uses[i] = (bitroute_use){r->rexp[base + i], r->rw[base + i], r->rb[base + i], 0};
    RUN_TRY(r->bt->assign(&r->bc, r->layer, r->uses, n, r->scratch));
    r->lb_flops += 2.0 * (double)r->W * (double)n; /* every token-expert use is at least one GEMM of the expert */
    /* B[j][u]: tokens that need unit u of expert j */
    uint32_t *B = r->scratch; /* reuse: E*U <= n*... sized at setup */
    memset(B, 0, (size_t)r->E * r->U * sizeof *B);
    for (size_t i = 0; i < n; i++) { /* uses at exactly (expert, level) */
        const bitroute_use *u = &r->uses[i];
        r->uses_k[u->level] += 1;
        r->gate_k[u->level] += u->weight;
        r->gate2_k[u->level] += (double)u->weight * u->weight;
        B[u->expert * r->U + u->level]++;
    }
    memcpy(r->Bfin, B, (size_t)r->E * r->U * sizeof *B);
    if (r->sys->nested) /* nesting: a use at level k needs units 1..k */
        for (uint32_t j = 0; j < r->E; j++)
            for (uint32_t k = r->U - 1; k-- > 0;) B[j * r->U + k] += B[j * r->U + k + 1];
    r->nitems = 0;
    r->ngroups = 0;
    r->held_total = 0;
    r->rhead = r->rtail = 0;
    for (uint32_t j = 0; j < r->E; j++)
        for (uint32_t u = 0; u < r->U; u++) {
            uint32_t cnt = B[j * r->U + u];
            if (!cnt) continue;
            step_item *it = &r->items[r->nitems];
            it->entry = mem_entry_id(r->mm, r->layer, j, u);
            it->expert = j;
            it->unit = u;
            it->tokens = cnt;
            it->final = r->Bfin[j * r->U + u];
            cost_compute cc = {0, 0, 0, 0};
            if (r->swiglu)
                cost_expert_swiglu_item(r->d, r->W, r->m->expert_matrices, r->unit_bytes, (int)u + 1, r->unit_bits[u], cnt,
                                        r->Bfin[j * r->U + u], r->fused, &cc);
            else {
                if (cnt <= r->ntok_max) cc = r->ccache[(size_t)u * (r->ntok_max + 1) + cnt];
                if (cc.total == 0) {
                    if (r->fused) /* one launch per expert: on its first level (nested), on every copy */
                        cost_expert_fused(r->d, r->W, r->unit_bytes[u], r->unit_bits[u],
                                          r->sys->nested && u > 0 ? 1 : r->unit_bits[u], cnt, !r->sys->nested || u == 0, &cc);
                    else
                        cost_expert(r->d, r->W, r->unit_bytes[u], r->unit_bits[u], cnt, &cc);
                    if (cnt <= r->ntok_max) r->ccache[(size_t)u * (r->ntok_max + 1) + cnt] = cc;
                }
            }
            RUN_TRY(check_dur(cc.total, "expert compute"));
            it->dequant = cc.dequant;
            it->router = r->bt->is_router ? (int64_t)ceil(r->p->router_overhead * (double)cc.total) : 0;
            it->t_comp = cc.total + it->router;
            int st = mem_entry_state(r->mm, it->entry);
            it->hit = st != MEM_ABSENT; /* present; a hit if its group opens below */
            it->pred = it->hit && (mem_entry_predicted(r->mm, it->entry) || st == MEM_LOADING);
            it->started = it->held = 0;
            it->state = 0;
            if (!r->sys->nested || !r->ngroups || r->items[r->groups[r->ngroups - 1].first].expert != j)
                r->groups[r->ngroups++] = (step_group){r->nitems, 0, 0, 0, 0};
            step_group *g = &r->groups[r->ngroups - 1];
            g->n++;
            g->left++;
            g->need += r->unit_bytes[u];
            r->fstep_need += r->unit_bytes[u];
            it->grp = r->ngroups - 1;
            mem_entry_touch(r->mm, it->entry, r->tick++);
            r->item_of[it->entry] = (int32_t)r->nitems;
            r->nitems++;
        }
    r->remaining = r->nitems;
    /* Which groups hold their present units now (hits).  Groups all present,
     * or with a unit still loading (a preload: at most one), and every group
     * of copies open at once (always safe); then nested groups partly
     * present, in expert order, while every open group can still finish.
     * Any other group is deferred: its present units stay evictable and
     * all its units are planned as loads; a unit still resident when its
     * load comes up is a hit then. */
    memset(r->gflag, 0, r->ngroups);
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t g = 0; g < r->ngroups; g++) {
            step_group *x = &r->groups[g];
            int64_t present = 0;
            int loading = 0;
            for (uint32_t i = x->first; i < x->first + x->n; i++)
                if (r->items[i].hit) {
                    present += r->unit_bytes[r->items[i].unit];
                    loading |= mem_entry_state(r->mm, r->items[i].entry) == MEM_LOADING;
                }
            if (r->gflag[g] || !present) continue;
            if (pass == 0 ? !(present == x->need || loading || !r->sys->nested) : !group_admit(r, g, present)) continue;
            r->gflag[g] = 1;
            for (uint32_t i = x->first; i < x->first + x->n; i++)
                if (r->items[i].hit) hold_item(r, &r->items[i]);
        }
    for (uint32_t i = 0; i < r->nitems; i++) {
        step_item *it = &r->items[i];
        if (it->held) {
            r->hits++;
            if (it->pred) r->pf_used++;
            if (mem_entry_state(r->mm, it->entry) == MEM_RESIDENT) {
                it->state = 1;
                r->ready[r->rtail++] = i;
            }
        } else {
            it->hit = 0;
        }
        r->pitems[i] = (plan_item){it->expert, it->unit, it->tokens, it->hit ? 0 : r->io_unit[it->unit], it->t_comp, !it->hit};
    }
    /* predictions made for this layer are settled now */
    for (uint32_t i = 0; i < r->npredicted; i++) mem_entry_predict(r->mm, r->predicted[i], 0);
    r->npredicted = 0;
    r->qhead = r->qtail = 0; /* drop preloads that have not started */
    /* plan the loads (wall-clock timed: plan_overhead_s) */
    double w0 = wall_now();
    size_t k;
    int prc = r->pt->order(&r->pc, r->pitems, r->nitems, r->order, &k);
    r->plan_wall += wall_now() - w0;
    RUN_TRY(prc);
    if (r->p->plan_gap && k > 0) {
        plan_ctx hc = r->pc;
        size_t kh, ki, ko;
        int found;
        RUN_TRY(plan_find("hebf")->order(&hc, r->pitems, r->nitems, r->order2, &kh));
        int64_t mh = plan_makespan(r->pitems, r->nitems, r->order2, kh);
        RUN_TRY(plan_find("id-order")->order(&hc, r->pitems, r->nitems, r->order2, &ki));
        int64_t mi = plan_makespan(r->pitems, r->nitems, r->order2, ki);
        RUN_TRY(plan_optimal(&r->pc, r->pitems, r->nitems, r->order2, &ko, &found));
        if (found) {
            int64_t mo = plan_makespan(r->pitems, r->nitems, r->order2, ko);
            if (mo > mh) D2_ERROR(D2_EINTERNAL, "sim: optimal plan (%lld ns) worse than hebf (%lld ns)", (long long)mo, (long long)mh);
            double g = (double)mh / (double)mo - 1;
            r->gap_sum += g;
            r->gap_id_sum += (double)mi / (double)mo - 1;
            if (g > r->gap_max) r->gap_max = g;
            r->gap_n++;
        } else {
            r->gap_skip++;
        }
    }
    for (size_t i = 0; i < k; i++) RUN_TRY(queue_io(r, r->items[r->order[i]].entry, 0, r->layer));
    return issue_prefetch(r);
}

/* The bound (docs/simulator.md, "The bound"): the units a forward step
 * needs (N bytes, distinct) were either resident when it began (at most the
 * budget M: resident bytes never exceed it, loading ones included; in the
 * first forward step exactly what the system starts with) or are
 * loaded during it, so at least N - M bytes cross the host link, and of
 * those at least N - M - C come from flash (C: the page cache, which held
 * at most C of them when the step began).  Each tier's bytes take at least
 * their slowest stage's bandwidth term (cost_load_floor_ns); the page-cache
 * share is costed at the cheaper of its two ways in.  One I/O channel: the
 * run lasts at least the sum. */
static void bound_fstep(run *r)
{
    int64_t need = r->fstep_need - r->fstep_avail;
    r->fstep_need = 0;
    if (need <= 0) return;
    int64_t flash = need - r->cache_bytes;
    if (flash < 0) flash = 0;
    int64_t cached = need - flash;
    int64_t tc = 0;
    if (cached > 0) {
        int64_t hit = cost_load_floor_ns(r->d, cached, 1), miss = cost_load_floor_ns(r->d, cached, 0);
        tc = hit < miss ? hit : miss;
    }
    r->lb_io_ns += (flash > 0 ? cost_load_floor_ns(r->d, flash, 0) : 0) + tc;
}

static int step_end(run *r)
{
    for (uint32_t i = 0; i < r->nitems; i++) r->item_of[r->items[i].entry] = -1;
    r->steps++;
    RUN_TRY(mem_check(r->mm));
    RUN_TRY(des_check(r->ev));
    if (++r->layer == r->L) { /* the forward step is complete: every request in it has a new token */
        int64_t now = des_now(r->ev);
        bound_fstep(r);
        r->layer = 0;
        r->f++;
        for (uint32_t i = 0; i < r->npre + r->ndec; i++) {
            uint32_t q = i < r->npre ? r->pre_q[i] : r->dec_q[i - r->npre];
            if (r->gen_cnt[q]++ == 0) r->first_ns[q] = now;
            if (r->gen_cnt[q] == r->G) { /* finished: its KV cache (prompt + G-1 fed tokens) is freed */
                r->finish_ns[q] = now;
                r->ndone++;
                r->kv_bytes -= (int64_t)(r->P + r->G - 1) * r->kv_per_token;
            }
        }
        if (r->ndone == r->R) { /* done; preloads still in flight do not count */
            r->done = 1;
            r->end_ns = now;
            return D2_OK;
        }
    }
    return des_event_after(r->ev, 0, EV_STEP_START, 0, 0);
}

static int handle(run *r, const des_event *e)
{
    switch (e->kind) {
    case EV_STEP_START:
        return step_start(r);
    case EV_NONEXP_DONE:
        r->comp_busy = 0;
        r->phase = 1;
        RUN_TRY(plan_step(r));
        r->waiting = 1;
        r->idle_since = des_now(r->ev);
        if (r->nitems == 0) return step_end(r);
        RUN_TRY(kick_compute(r));
        return kick_io(r);
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
        if (r->d->io_interference > 0) {
            if (e->b != r->comp_ver || !r->comp_active) return D2_OK; /* superseded by a rate change */
            int64_t now = des_now(r->ev);
            r->comp_active = 0;
            emit(r, SIM_OP_COMPUTE, r->comp_start, now, r->layer, (int)it->expert, it->unit + 1, it->tokens, it->final, 0,
                 SIM_TIER_NONE, 0);
            r->comp_ns += now - r->comp_start;
            r->expert_ns += now - r->comp_start;
        }
        it->state = 3;
        r->comp_busy = 0;
        r->transient = 0;
        step_group *g = &r->groups[it->grp];
        if (--g->left == 0) { /* the group's last item: its units may go */
            for (uint32_t i = g->first; i < g->first + g->n; i++) {
                step_item *x = &r->items[i];
                x->held = 0;
                mem_entry_unpin(r->mm, x->entry);
                if (!r->mt->keep) mem_entry_release(r->mm, x->entry);
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
        r->idle_since = des_now(r->ev);
        RUN_TRY(kick_compute(r));
        return kick_io(r);
    }
    }
    D2_ERROR(D2_EINTERNAL, "sim: unknown event kind %d", e->kind);
}

/* ---- setup and teardown -------------------------------------------------- */

static void run_free(run *r)
{
    des_free(r->ev);
    mem_free(r->mm);
    if (r->rng_bits) gsl_rng_free(r->rng_bits);
    if (r->rng_pred) gsl_rng_free(r->rng_pred);
    if (r->rng_arrival) gsl_rng_free(r->rng_arrival);
    free(r->arrive_ns); free(r->first_ns); free(r->finish_ns); free(r->gen_cnt);
    free(r->pre_q); free(r->dec_q); free(r->dec_pos);
    free(r->rexp); free(r->rw); free(r->rb); free(r->uses); free(r->scratch); free(r->Bfin);
    free(r->static_level); free(r->trans); free(r->items); free(r->item_of);
    free(r->pitems); free(r->order); free(r->order2); free(r->ready); free(r->ioq); free(r->predicted); free(r->ccache);
    free(r->groups); free(r->gflag); free(r->gneed);
}

int sim_system_resolve(const sim_params *p, sim_system *out)
{
    memset(out, 0, sizeof *out);
    const policy_system *sys = policy_find(p->policy);
    if (!sys) D2_ERROR(D2_EINVAL, "sim.policy: unknown system \"%s\" (see d2moe simulate --list)", p->policy);
    snprintf(out->name, sizeof out->name, "%s", sys->name);
    out->nested = sys->nested;
    out->levels = sys->levels;
    for (int k = 0; k < sys->levels; k++) out->bits[k] = sys->bits[k];
#define PICK(f) snprintf(out->f, sizeof out->f, "%s", p->f[0] ? p->f : sys->f)
    PICK(caps);
    PICK(bitroute);
    PICK(plan);
    PICK(mem);
    PICK(prefetch);
    PICK(buffer);
#undef PICK
    int arg = 0;
    const plan_type *pt = plan_find(out->plan);
    const mem_policy_type *mt = mem_policy_find(out->mem);
    const prefetch_type *ft = prefetch_find(out->prefetch);
    if (!ft) D2_ERROR(D2_EINVAL, "sim.prefetch: unknown predictor \"%s\" (none, paths, oracle)", out->prefetch);
    if (!bitroute_find(out->bitroute, &arg))
        D2_ERROR(D2_EINVAL, "sim.bitroute: unknown bit-width routing \"%s\" (capacity, gate, static, uniform:B, trace)", out->bitroute);
    if (!pt) D2_ERROR(D2_EINVAL, "sim.plan: unknown planner \"%s\" (hebf, id-order, sequential, optimal)", out->plan);
    if (!mt) D2_ERROR(D2_EINVAL, "sim.mem: unknown memory policy \"%s\" (budget, lru, lfu, none, hold)", out->mem);
    if (strcmp(out->buffer, "budget") && strcmp(out->buffer, "device"))
        D2_ERROR(D2_EINVAL, "sim.buffer: \"%s\": expected budget or device", out->buffer);
    out->serial = pt->serial;
    out->hold = mt->hold;
    out->preloads = strcmp(ft->name, "none") != 0;
    return D2_OK;
}

static int setup(run *r, const sim_input *in)
{
    const sim_params *p = in->params;
    r->in = in;
    r->m = in->model;
    r->d = in->device;
    r->p = p;
    D2_TRY(sim_system_resolve(p, &r->rs));
    r->sys = policy_find(p->policy);
    const char *br = r->rs.bitroute, *pl = r->rs.plan, *mp = r->rs.mem, *cp = r->rs.caps, *pf = r->rs.prefetch;
    if (!(r->at = arrival_find(p->arrival))) D2_ERROR(D2_EINVAL, "sim.arrival: unknown arrival process \"%s\" (batch, poisson, uniform)", p->arrival);
    if (strcmp(p->nested_kernel, "per-level") && strcmp(p->nested_kernel, "fused"))
        D2_ERROR(D2_EINVAL, "sim.nested_kernel: \"%s\": expected per-level or fused", p->nested_kernel);
    r->fused = !strcmp(p->nested_kernel, "fused");
    if (strcmp(p->nested_compute, "uniform") && strcmp(p->nested_compute, "swiglu"))
        D2_ERROR(D2_EINVAL, "sim.nested_compute: \"%s\": expected uniform or swiglu", p->nested_compute);
    r->swiglu = r->sys->nested && !strcmp(p->nested_compute, "swiglu") && r->m->expert_matrices >= 2;
    int arg = 0;
    r->ft = prefetch_find(pf);
    r->bt = bitroute_find(br, &arg);
    r->pt = plan_find(pl);
    r->mt = mem_policy_find(mp); /* all four known: sim_system_resolve checked them */
    r->U = (uint32_t)r->sys->levels;
    D2_TRY(parse_caps(cp, (int)r->U, r->caps, "sim.caps"));
    if (r->bt->needs_bits && !in->route_has_bits)
        D2_ERROR(D2_EINVAL, "sim.bitroute: \"trace\" needs bit-widths recorded in the trace; this routing has none");
    r->L = (uint32_t)model_moe_layers(r->m);
    r->E = (uint32_t)r->m->experts;
    r->K = (uint32_t)r->m->top_k;
    if (r->L == 0) D2_ERROR(D2_EINVAL, "model %s: no MoE layers", r->m->name);
    if (r->E > 4096 || r->K > 64) D2_ERROR(D2_ERANGE, "model %s: at most 4096 experts and top_k 64", r->m->name);
    r->R = (uint32_t)p->requests;
    r->P = (uint32_t)p->prompt;
    r->G = (uint32_t)p->gen;
    r->W = model_expert_params(r->m);
    int64_t maxunit = 0, total_units = 0;
    for (uint32_t u = 0; u < r->U; u++) {
        r->unit_bits[u] = r->sys->bits[u];
        r->unit_bytes[u] = r->sys->nested ? model_expert_level_bytes(r->m, r->sys->bits[0], (int)u + 1, p->group)
                                          : model_expert_bytes_uniform(r->m, r->sys->bits[u], p->group);
        if (r->unit_bytes[u] > maxunit) maxunit = r->unit_bytes[u];
        total_units += r->unit_bytes[u];
    }
    if (r->bt->has_arg) {
        int found = 0;
        for (uint32_t u = 0; u < r->U; u++) found |= r->unit_bits[u] == arg;
        if (!found) D2_ERROR(D2_EINVAL, "sim.bitroute: uniform:%d: system %s stores no %d-bit level", arg, r->sys->name, arg);
    }
    r->fixed_bytes = model_nonexpert_bytes(r->m, (int)p->nonexpert_bits);
    r->kv_per_token = model_kv_bytes_per_token(r->m, (int)p->kv_bits);
    const char *buf = r->rs.buffer;
    snprintf(r->res->sys_buffer, sizeof r->res->sys_buffer, "%s", buf);
    int64_t budget = p->budget;
    if (r->mt->hold) budget = total_units * (int64_t)r->L * r->E;
    else if (!strcmp(buf, "device")) {
        /* a buffer that fills the device: what the non-expert weights, the
         * largest KV cache of the run and the FP16 transient leave free */
        int64_t kv = p->kv_on_device ? (int64_t)r->R * (r->P + r->G - 1) * r->kv_per_token : 0;
        int64_t tr = p->transient_fp16 ? 2 * r->W : 0;
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
    mem_set_free_hook(r->mm, unit_freed, r);
    r->rng_bits = rng_new((uint64_t)p->seed, 101);
    r->rng_pred = rng_new((uint64_t)p->seed, 102);
    r->ntok_max = (size_t)r->R * (r->P > 1 ? r->P : 1);
    size_t nroute = (size_t)r->L * r->ntok_max * r->K;
    size_t nuse = r->ntok_max * r->K;
    size_t nent = (size_t)r->L * r->E * r->U;
    size_t nit = (size_t)r->E * r->U;
    r->rexp = malloc(nroute * sizeof *r->rexp);
    r->rw = malloc(nroute * sizeof *r->rw);
    r->rb = calloc(nroute, sizeof *r->rb);
    r->uses = malloc(nuse * sizeof *r->uses);
    r->scratch = malloc((6 * nuse > nit ? 6 * nuse : nit) * sizeof *r->scratch);
    r->Bfin = malloc(nit * sizeof *r->Bfin);
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
    r->rng_arrival = rng_new((uint64_t)p->seed, 103);
    for (uint32_t u = 0; u < r->U; u++) {
        r->io_unit[u] = cost_load_ns(r->d, r->unit_bytes[u], 0);
        D2_TRY(check_dur(r->io_unit[u], "expert load"));
    }
    if (!r->rng_bits || !r->rng_pred || !r->rexp || !r->rw || !r->rb || !r->uses || !r->scratch || !r->Bfin || !r->static_level ||
        !r->trans || !r->items || !r->groups || !r->gflag || !r->gneed || !r->item_of || !r->pitems || !r->order || !r->order2 || !r->ready || !r->ioq || !r->predicted || !r->ccache ||
        !r->arrive_ns || !r->first_ns || !r->finish_ns || !r->gen_cnt || !r->pre_q || !r->dec_q || !r->dec_pos || !r->rng_arrival)
        D2_ERROR(D2_ENOMEM, "sim: out of memory");
    for (size_t i = 0; i < nent; i++) r->item_of[i] = -1;
    for (uint32_t q = 0; q < r->R; q++) r->first_ns[q] = r->finish_ns[q] = -1;
    D2_TRY(r->at->times(p->arrival_rate, r->rng_arrival, r->R, r->arrive_ns));
    r->bc = (bitroute_cfg){r->U, r->unit_bits, r->caps, arg, r->L, r->E, r->static_level, r->rng_bits};
    r->pc = (plan_ctx){r->sys->nested, p->opt_max_states, 0};
    if (r->bt->needs_profile || r->ft->needs_profile) D2_TRY(profile(r));
    if (r->mt->hold) D2_TRY(mem_hold_all(r->mm));
    return D2_OK;
}

static void finish(run *r)
{
    sim_result *s = r->res;
    sim_metrics *m = &s->m;
    double T = (double)(r->done ? r->end_ns : des_now(r->ev)) / 1e9;
    snprintf(s->status, sizeof s->status, "%s", r->oom ? "oom" : "ok");
    m->makespan_s = T;
    m->tokens_generated = r->oom ? 0 : (double)r->R * r->G;
    m->tokens_total = r->oom ? 0 : (double)r->R * (r->P + r->G);
    m->throughput_tps = T > 0 ? m->tokens_generated / T : 0;
    m->total_tps = T > 0 ? m->tokens_total / T : 0;
    /* per request: time to first token from its arrival, time per output
     * token after it, latency from arrival to its last token */
    int64_t sft = 0, mft = 0, stp = 0, slat = 0;
    uint32_t nft = 0, nfin = 0;
    for (uint32_t q = 0; q < r->R; q++) {
        if (r->first_ns[q] < 0) continue;
        int64_t ft = r->first_ns[q] - r->arrive_ns[q];
        sft += ft;
        if (ft > mft) mft = ft;
        nft++;
        if (r->finish_ns[q] < 0) continue;
        stp += r->finish_ns[q] - r->first_ns[q];
        slat += r->finish_ns[q] - r->arrive_ns[q];
        nfin++;
    }
    m->ttft_s = nft ? (double)(sft / nft) / 1e9 : 0;
    m->ttft_max_s = (double)mft / 1e9;
    m->tpot_s = r->G > 1 && nfin && !r->oom ? (double)(stp / nfin) / 1e9 / (r->G - 1) : 0;
    m->latency_s = nfin ? (double)(slat / nfin) / 1e9 : 0;
    m->peak_mem_mb = (double)r->peak_total / 1e6;
    m->nonexpert_mb = (double)r->fixed_bytes / 1e6;
    m->kv_mb = (double)r->kv_peak / 1e6;
    m->peak_expert_mb = (double)mem_peak_bytes(r->mm) / 1e6;
    m->io_gb = (double)r->io_bytes / 1e9;
    m->io_busy_s = (double)r->io_busy_ns / 1e9;
    m->compute_busy_s = (double)r->comp_ns / 1e9;
    m->expert_compute_s = (double)r->expert_ns / 1e9;
    m->nonexpert_s = (double)r->nonexp_ns / 1e9;
    m->dequant_s = (double)r->dequant_ns / 1e9;
    m->router_s = (double)r->router_ns / 1e9;
    m->bubble_s = (double)r->bubble_ns / 1e9;
    m->bubble_ratio = T > 0 ? m->bubble_s / T : 0;
    m->loads = (double)r->loads;
    m->hits = (double)r->hits;
    m->hit_rate = r->hits + r->loads ? (double)r->hits / (double)(r->hits + r->loads) : 0;
    m->evictions = (double)mem_evictions(r->mm);
    m->prefetch_loads = (double)r->pf_loads;
    m->prefetch_used = (double)r->pf_used;
    m->prefetch_accuracy = r->pf_loads ? (double)r->pf_used / (double)r->pf_loads : 0;
    m->page_cache_hits = (double)r->pc_hits;
    m->plan_overhead_s = r->plan_wall;
    m->plan_gap_mean = r->gap_n ? r->gap_sum / (double)r->gap_n : 0;
    m->plan_gap_max = r->gap_max;
    m->plan_gap_idorder_mean = r->gap_n ? r->gap_id_sum / (double)r->gap_n : 0;
    m->plan_gap_steps = (double)r->gap_n;
    m->plan_gap_skipped = (double)r->gap_skip;
    m->opt_fallbacks = (double)r->pc.fallbacks;
    m->layer_steps = (double)r->steps;
    /* the bound: the run lasts at least its unavoidable I/O and its FLOPs at peak */
    m->bound_io_s = (double)r->lb_io_ns / 1e9;
    m->bound_compute_s = r->lb_flops / r->d->fp16_flops;
    double tlb = m->bound_io_s > m->bound_compute_s ? m->bound_io_s : m->bound_compute_s;
    m->bound_tps = r->oom || tlb <= 0 ? 0 : (double)r->R * r->G / tlb;
    m->bound_util = m->bound_tps > 0 ? m->throughput_tps / m->bound_tps : 0;
    m->page_cache_gb = (double)r->cache_bytes / 1e9;
    s->levels = (int)r->U;
    double ub = 0, un = 0;
    for (uint32_t k = 0; k < r->U; k++) {
        s->level_bits[k] = r->unit_bits[k];
        s->uses[k] = r->uses_k[k];
        s->gate_sum[k] = r->gate_k[k];
        s->gate2_sum[k] = r->gate2_k[k];
        ub += r->uses_k[k] * r->unit_bits[k];
        un += r->uses_k[k];
    }
    m->avg_bits = un > 0 ? ub / un : 0;
    snprintf(s->sys_bitroute, sizeof s->sys_bitroute, "%s", r->p->bitroute[0] ? r->p->bitroute : r->sys->bitroute);
    snprintf(s->sys_plan, sizeof s->sys_plan, "%s", r->pt->name);
    snprintf(s->sys_mem, sizeof s->sys_mem, "%s", r->mt->name);
    snprintf(s->sys_caps, sizeof s->sys_caps, "%s", r->p->caps[0] ? r->p->caps : r->sys->caps);
    s->nested = r->sys->nested;
    snprintf(s->sys_prefetch, sizeof s->sys_prefetch, "%s", r->ft->name);
}

int sim_run(const sim_input *in, sim_result **out) { return sim_run_observed(in, NULL, out); }

int sim_run_observed(const sim_input *in, const sim_observer *obs, sim_result **out)
{
    *out = NULL;
    run rr, *r = &rr;
    memset(r, 0, sizeof *r);
    r->obs = obs;
    sim_result *res = calloc(1, sizeof *res);
    if (!res) D2_ERROR(D2_ENOMEM, "sim: out of memory");
    r->res = res;
    res->model = *in->model;
    res->device = *in->device;
    res->params = *in->params;
    int rc = setup(r, in);
    if (rc == D2_OK) {
        mem_account(r);
        if (!r->oom) rc = des_event_push(r->ev, 0, EV_STEP_START, 0, 0);
        des_event e;
        while (rc == D2_OK && !r->oom && !r->done && des_event_pop(r->ev, &e)) rc = handle(r, &e);
        if (rc == D2_OK && !r->oom && !r->done)
            rc = (d2_err_set("sim: the run stopped before its last step (a load could never fit)"), D2_EINTERNAL);
        if (rc == D2_OK && !r->oom) {
            /* every byte loaded is accounted: loaded = resident + evicted + released */
            if (!r->mt->hold && r->io_bytes != mem_reserved_total(r->mm))
                rc = (d2_err_set("sim: %lld bytes loaded but %lld reserved", (long long)r->io_bytes,
                                 (long long)mem_reserved_total(r->mm)), D2_EINTERNAL);
            if (rc == D2_OK) rc = mem_check(r->mm);
        }
        if (rc == D2_OK) finish(r);
        /* invariant: no run beats its bound */
        if (rc == D2_OK && res->m.throughput_tps > res->m.bound_tps * (1 + 1e-9) && !r->oom)
            rc = (d2_err_set("sim: throughput %.9g tokens/s above its bound %.9g", res->m.throughput_tps, res->m.bound_tps),
                  D2_EINTERNAL);
    }
    run_free(r);
    if (rc != D2_OK) { free(res); return rc; }
    *out = res;
    return D2_OK;
}

/* ---- results --------------------------------------------------------------- */

void sim_result_free(sim_result *r) { free(r); }
const char *sim_result_status(const sim_result *r) { return r->status; }
const char *sim_result_reason(const sim_result *r) { return r->reason; }
uint64_t sim_result_seed(const sim_result *r) { return (uint64_t)r->params.seed; }

int sim_result_foreach_metric(const sim_result *r, sim_metric_fn fn, void *user)
{
    for (size_t i = 0; i < NMETRIC; i++)
        D2_TRY(fn(metric_defs[i].name, *(const double *)((const char *)&r->m + metric_defs[i].off), metric_defs[i].unit, user));
    for (int k = 0; k < r->levels; k++) {
        char name[64];
        snprintf(name, sizeof name, "uses_bits_%d", r->level_bits[k]);
        D2_TRY(fn(name, r->uses[k], "uses", user));
        snprintf(name, sizeof name, "gate_bits_%d", r->level_bits[k]);
        D2_TRY(fn(name, r->gate_sum[k], "", user));
        snprintf(name, sizeof name, "gate2_bits_%d", r->level_bits[k]);
        D2_TRY(fn(name, r->gate2_sum[k], "", user));
    }
    return D2_OK;
}

typedef struct find_ctx { const char *name; double v; int found; } find_ctx;
static int find_visit(const char *name, double v, const char *unit, void *u)
{
    (void)unit;
    find_ctx *c = u;
    if (!strcmp(name, c->name)) { c->v = v; c->found = 1; }
    return D2_OK;
}

int sim_result_metric(const sim_result *r, const char *name, double *value)
{
    find_ctx c = {name, 0, 0};
    sim_result_foreach_metric(r, find_visit, &c);
    if (!c.found) return D2_ENOTFOUND;
    *value = c.v;
    return D2_OK;
}

int sim_result_foreach_param(const sim_result *r, param_visit_fn fn, void *user)
{
    D2_TRY(param_foreach(&model_params, &r->model, fn, user));
    D2_TRY(param_foreach(&device_params, &r->device, fn, user));
    D2_TRY(param_foreach(&sim_param_table, &r->params, fn, user));
    char bits[64] = "";
    for (int k = 0; k < r->levels; k++) {
        size_t l = strlen(bits);
        snprintf(bits + l, sizeof bits - l, "%s%d", k ? "/" : "", r->level_bits[k]);
    }
    D2_TRY(fn("system.format", r->nested ? "nested" : "copies", "", user));
    D2_TRY(fn("system.bits", bits, "bits", user));
    D2_TRY(fn("system.caps", r->sys_caps, "", user));
    D2_TRY(fn("system.bitroute", r->sys_bitroute, "", user));
    D2_TRY(fn("system.plan", r->sys_plan, "", user));
    D2_TRY(fn("system.mem", r->sys_mem, "", user));
    D2_TRY(fn("system.prefetch", r->sys_prefetch, "", user));
    D2_TRY(fn("system.buffer", r->sys_buffer, "", user));
    D2_TRY(fn("system.rng", D2_RNG_NAME, "", user));
    D2_TRY(fn("reading.name", r->reading_name, "", user));
    D2_TRY(fn("reading.settings", r->reading_settings, "", user));
    return D2_OK;
}

int sim_result_foreach_input(const sim_result *r, sim_input_fn fn, void *user)
{
    if (r->model_path[0]) D2_TRY(fn("model", r->model_path, NULL, user));
    if (r->device_path[0]) D2_TRY(fn("device", r->device_path, NULL, user));
    if (r->reading_path[0]) D2_TRY(fn("reading", r->reading_path, NULL, user));
    if (r->trace_id[0]) D2_TRY(fn("trace", r->trace_path[0] ? r->trace_path : NULL, r->trace_id, user));
    return D2_OK;
}

static int print_visit(const char *name, double v, const char *unit, void *u)
{
    fprintf((FILE *)u, "%-22s = %.9g%s%s\n", name, v, unit[0] ? " " : "", unit);
    return D2_OK;
}

void sim_result_print(const sim_result *r, FILE *out)
{
    fprintf(out, "%-22s = %s\n", "status", r->status);
    if (r->reason[0]) fprintf(out, "%-22s = %s\n", "reason", r->reason);
    sim_result_foreach_metric(r, print_visit, out);
}

/* for job.c */
void sim_result_set_inputs(sim_result *r, const char *model_path, const char *device_path,
                           const char *trace_path, const char *trace_id);
void sim_result_set_inputs(sim_result *r, const char *model_path, const char *device_path,
                           const char *trace_path, const char *trace_id)
{
    snprintf(r->model_path, sizeof r->model_path, "%s", model_path ? model_path : "");
    snprintf(r->device_path, sizeof r->device_path, "%s", device_path ? device_path : "");
    snprintf(r->trace_path, sizeof r->trace_path, "%s", trace_path ? trace_path : "");
    snprintf(r->trace_id, sizeof r->trace_id, "%s", trace_id ? trace_id : "");
}

void sim_result_set_reading(sim_result *r, const char *name, const char *settings, const char *path);
void sim_result_set_reading(sim_result *r, const char *name, const char *settings, const char *path)
{
    snprintf(r->reading_name, sizeof r->reading_name, "%s", name);
    snprintf(r->reading_settings, sizeof r->reading_settings, "%s", settings);
    snprintf(r->reading_path, sizeof r->reading_path, "%s", path);
}
