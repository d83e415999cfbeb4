/* sim_int.h - private to the serving simulator (src/sim): the run's state,
 * the result's layout and the functions the simulator's files share (SQLite's
 * btreeInt.h habit).  Nothing outside src/sim includes it.  run.c sets a run
 * up and drives the event loop; account.c keeps the memory account, the
 * operations told to the observer and the saturated durations; engine.c is the I/O channel and the compute
 * unit; step.c plans a layer step and admits its loads; profile.c is the
 * offline profiling; result.c turns a finished run into metrics; system.c
 * resolves a named system; timeline.c is the timeline CSV observer. */
#ifndef D2_SIM_SIM_INT_H
#define D2_SIM_SIM_INT_H

#include "sim/sim.h"
#include "sim/arrival.h"
#include "sim/bitroute.h"
#include "sim/cost.h"
#include "sim/des_int.h" /* des.h, and its push and pop inline */
#include "sim/mem_int.h" /* mem.h, and its accessors inline */
#include "sim/plan.h"
#include "sim/policy.h"
#include "sim/prefetch.h"
#include "sim/stepmemo.h"
#include "core/err.h"
#include "sim/readings.h"

#include <gsl/gsl_rng.h>
#include <stddef.h>
#include <stdint.h>

/* ---- metrics: each registered once in result.c (name, unit, field) ------- */

typedef struct sim_metrics {
    double throughput_tps, total_tps, makespan_s, ttft_s, tpot_s;
    double peak_mem_mb, peak_expert_mb, io_gb, io_busy_s, compute_busy_s, expert_compute_s, nonexpert_s;
    double dequant_s, router_s, bubble_s, bubble_ratio, hit_rate, loads, hits, evictions;
    double prefetch_loads, prefetch_used, prefetch_accuracy, page_cache_hits;
    double plan_overhead_s, plan_gap_mean, plan_gap_max, plan_gap_idorder_mean, plan_gap_steps, plan_gap_skipped;
    double opt_fallbacks, layer_steps, tokens_generated, tokens_total, avg_bits;
    double nonexpert_mb, kv_mb, ttft_max_s, latency_s;
    double bound_tps, bound_util, bound_io_s, bound_compute_s, bound_flops_s, bound_mem_s, page_cache_gb;
} sim_metrics;

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
    char reading_name[PARAM_STR_MAX], reading_settings[READINGS_TEXT_MAX], reading_path[PARAM_PATH_MAX];
    char trace_path[PARAM_PATH_MAX], trace_id[128], model_path[PARAM_PATH_MAX], device_path[PARAM_PATH_MAX];
};

/* ---- run state ------------------------------------------------------------ */

/* A task in flight whose rate depends on the other queue (the interference
 * models, engine.c): its end event is pushed again, with a new version,
 * whenever the rate changes, and the stale ones are dropped. */
typedef struct rated_task {
    double rem_ns;          /* remaining work at full rate, ns */
    sim_ns last_ns;         /* when rem_ns was last brought up to date, ns */
    int64_t ver;            /* version of its latest end event (event field b) */
} rated_task;

enum { EV_NONEXP_DONE = 1, EV_LOAD_DONE, EV_COMP_DONE, EV_STEP_START, EV_LOAD_DONE_V /* a load's end under device.read_interference: versioned */ };

typedef struct step_item {
    uint32_t entry, expert, unit, tokens;
    uint32_t final;      /* tokens whose own level is this unit (copies: = tokens) */
    uint32_t grp;        /* its group in this step (step_group) */
    sim_ns t_comp;       /* ns */
    sim_ns dequant, router; /* parts of t_comp, ns */
    int state;           /* 0 waiting for load, 1 ready, 2 computing, 3 done */
    int hit;             /* resident or loading when the step was planned, or when its deferred load came up */
    int started;         /* its load has started in this step */
    int held;            /* the step holds (pins) its unit: from its hit or load until its group is done */
    int pred;            /* present at planning as a preload (predicted, or still loading) */
} step_item;

/* An item's compute cost as the step uses it, ns: the whole (cost model
 * and router), its dequantization and router parts; and the bytes its
 * GEMMs' weight-stream floors read (cost_compute.stream, for the bound) */
typedef struct step_cost { sim_ns t_comp, dequant, router; double stream; } step_cost;

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
    int64_t present;         /* bytes of its units resident or loading when the step was planned (hits) */
    int loading;             /* one of those was still loading then (a preload) */
} step_group;

typedef struct grp_need { int64_t rem, held; } grp_need; /* group_admit scratch */

/* What an open group (holding bytes, items left) still needs, bytes; 0 for
 * a group not open.  run.open_rest is its sum over the step's groups. */
static inline int64_t step_group_rest(const step_group *x) { return x->held > 0 && x->left > 0 ? x->need - x->held : 0; }

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
    bitroute_cfg bc;        /* bit routing's configuration and state */
    plan_ctx pc;
    prefetch_ctx fc;        /* the predictor's context and state */
    int bt_live, ft_live;   /* their init ran (fini is due) */
    uint32_t *tok_req;      /* [ntok_max] request of each token of the forward step */
    uint64_t *next_use;     /* next-use oracle (oracle.c): [L*E] bitsets over forward steps, NULL when unused */
    uint32_t nfsteps, nu_words; /* forward steps the oracle covers; 64-bit words per (layer, expert) */
    double caps[POLICY_MAX_LEVELS];          /* capacities c_k, fractions summing to 1 */
    int64_t unit_bytes[POLICY_MAX_LEVELS];   /* bytes of one expert's unit k */
    int unit_bits[POLICY_MAX_LEVELS];        /* bit-width of level k */
    uint32_t L, E, K, U, R, P, G;            /* MoE layers, experts, top_k, units, requests, prompt and gen tokens */
    int64_t W;              /* weights per expert */
    sim_ns io_unit[POLICY_MAX_LEVELS]; /* load time of a unit from flash, ns */
    step_cost *ccache;      /* [U][tokens] compute cost memo (t_comp 0 = not yet) */
    des *ev;
    mem *mm;
    gsl_rng *rng_bits, *rng_pred, *rng_arrival;
    /* routing of the current forward step: [layer][tok][k] */
    uint16_t *rexp;         /* expert ids */
    float *rw;              /* gate weights */
    uint8_t *rb;            /* recorded bit-widths, bits (0 = none) */
    size_t ntok_max;        /* tokens of the largest forward step (the prefill) */
    size_t route_faulted;   /* entries of rexp / rw / rb faulted in at once so far (prefault) */
    bitroute_use *uses;     /* one layer step's (token, expert) uses */
    uint32_t *scratch;      /* bit routing scratch (6 per use), then B[expert][unit] counts */
    double *gsum;           /* [2][expert][unit] a layer step's gate-weight sums and sums of squares (step_plan) */
    int swiglu;             /* sim.nested_compute = swiglu (nested systems only) */
    int fused;              /* sim.nested_kernel = fused */
    int fp16_copy;          /* a unit below 16 bits is computed from an FP16 copy held while it computes: sim.transient_fp16,
                               per-level kernel, a device that dequantizes (dequant_rate < COST_NO_FP16_COPY) */
    int64_t cache_bytes;    /* host page cache capacity, bytes (0 = none) */
    /* the bound (sim_bound): work no schedule avoids */
    int64_t fstep_need;     /* bytes of distinct units the current forward step needs */
    int64_t fstep_avail;    /* bytes that can be resident when it begins: the budget (the first step: what is) */
    sim_ns lb_io_ns;        /* I/O time no schedule avoids, summed over forward steps, ns */
    /* the compute unit's share, per forward step (folded in by bound_fstep) */
    double fs_ne_flops;     /* the current forward step's non-expert FLOPs */
    double fs_wt;           /* its expert uses as weights x tokens (W per token-expert use) */
    double fs_stream;       /* bytes its computes' memory floors read (weight streams, non-expert weights, KV) */
    double ne_stream;       /* of those, one layer's non-expert work in it (cost_nonexpert_stream_bytes) */
    double lb_flops_s;      /* sum over forward steps of their FLOPs at peak, s (bound_flops_s) */
    double lb_mem_s;        /* sum over forward steps of fs_stream / (mem_bw x mem_eff), s (bound_mem_s) */
    double lb_comp_s;       /* sum over forward steps of the larger of the two, s (bound_compute_s) */
    /* offline profiling */
    uint8_t *static_level;  /* [L*E] */
    double *trans;          /* [L*E*E] P(e' at l+1 | e at l) */
    /* step */
    uint32_t f, layer, ntok;       /* forward step, MoE layer, tokens of the forward step */
    double ctx_sum;                /* sum over those tokens of the context each attends to, tokens */
    sim_ns ne_ns;                  /* a layer's non-expert work in this forward step, ns (cost_nonexpert_ns) */
    double ne_flops;               /* its FLOPs (cost_nonexpert_flops) */
    /* requests: arrival, progress; a forward step = prefills of the
     * requests in pre_q (P tokens each, position-major) then one decode
     * token of each request in dec_q */
    const arrival_type *at;
    sim_ns *arrive_ns, *first_ns, *finish_ns; /* per request, ns */
    uint32_t *gen_cnt;             /* tokens generated so far per request (0: not prefilled) */
    uint32_t *pre_q, *dec_q, *dec_pos;
    uint32_t npre, ndec, ndone;
    int64_t kv_peak;               /* bytes */
    step_item *items;
    uint32_t nitems, remaining;    /* units in the layer step, units not yet computed */
    step_group *groups;     /* of the layer step [ngroups] */
    uint32_t ngroups;
    int64_t held_total;     /* bytes held by the layer step (sum of groups' held) */
    int64_t open_rest;      /* bytes the open groups still need (sum of step_group_rest), kept as they change */
    int bad_rest;           /* debug builds: open_rest disagreed with the groups once */
    uint8_t *gflag;         /* per group: open (planning), seen (pick_load) */
    grp_need *gneed;
    uint32_t bad_free;      /* 1 + an entry that left memory while its step needed it; 0 */
    const sim_observer *obs;
    int obs_op, obs_freed;  /* obs is set and has op / unit_freed (one test each in the serving loop) */
    /* the step memo (stepmemo.h): this run's entry (NULL: not remembered),
     * whether a remembered forward step needs its routing decoded, whether
     * the current one is remembered, and its composition (npre, ndec, the
     * prefill requests, the decoding requests, their positions) */
    stepmemo *smemo;
    int smemo_skip_route;
    int smemo_hit;
    uint32_t *smemo_comp;   /* [2 + 3 R] */
    size_t smemo_ncomp;
    int32_t *item_of;       /* entry -> item index in this step, -1 */
    plan_item *pitems;
    uint32_t *order, *order2;
    uint32_t *ready;        /* FIFO of items whose unit is resident, in readiness order */
    uint32_t rhead, rtail;
    io_req *ioq;            /* loads not yet started, in order */
    uint32_t qhead, qtail;
    size_t qcap;            /* room in ioq (core/vec.h) */
    int io_busy, comp_busy, phase; /* flags; phase: 0 non-expert, 1 expert */
    int waiting;            /* the compute unit waits for a load (a bubble is open) */
    sim_ns now;             /* the time of the event being handled, ns: des_now, kept here by engine_run for the handlers */
    int interfere;          /* device.io_interference > 0: expert computes slow down while a load runs */
    int nested, serial, kv_on_device; /* sys->nested, pt->serial, p->kv_on_device, kept here for the serving loop */
    /* the running expert compute when device.io_interference > 0: its rate
     * changes whenever the I/O queue starts or stops, so its end event is
     * re-pushed with a new version and stale ones are dropped */
    int comp_active;        /* an expert item is computing under the interference model */
    uint32_t comp_idx;      /* its item index */
    sim_ns comp_start;      /* when it started, ns */
    rated_task comp_rt;     /* its remaining work and end-event version */
    /* the load from flash in flight when device.read_interference > 0: its
     * rate changes whenever an expert compute starts or ends, re-pushed the
     * same way (EV_LOAD_DONE_V; every load's end carries a version then),
     * and it is told to the observer when it ends */
    int rinterfere;         /* device.read_interference > 0 */
    int interfere_any;      /* interfere || rinterfere: one test in the compute's end for both models */
    int load_active;        /* a flash load is in flight under that model */
    uint32_t load_entry, load_layer, load_unit, load_tokens; /* its entry, layer, unit, tokens */
    int load_prefetch;      /* it is a prefetch */
    int64_t load_bytes;     /* its bytes */
    sim_ns load_start;      /* when it started, ns */
    rated_task load_rt;     /* its remaining work and the latest load end event's version */
    sim_ns idle_since;      /* when that bubble opened, ns */
    uint32_t *predicted;    /* entries marked predicted */
    uint32_t npredicted;
    /* memory account, bytes */
    int64_t fixed_bytes, kv_bytes, transient, peak_total, kv_per_token;
    int oom;
    int done;               /* the last step has ended */
    sim_ns end_ns;          /* when it ended, ns */
    int64_t tick;           /* use counter for lru/lfu and the page cache (not time) */
    /* accumulators */
    sim_ns io_busy_ns, comp_ns, expert_ns, nonexp_ns, dequant_ns, router_ns, bubble_ns; /* ns */
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

/* account.c */
int account_check_dur(sim_ns t, const char *what);
void account_oom(run *r, int64_t total);
/* the device memory account after a change: its peak, and the run stops
 * (status oom, with the reason) when it exceeds the device */
static inline void account_mem(run *r)
{
    int64_t total = r->fixed_bytes + (r->kv_on_device ? r->kv_bytes : 0) + mem_resident_bytes(r->mm) + r->transient;
    if (total > r->peak_total) r->peak_total = total;
    if (total > r->d->mem_bytes && !r->oom) account_oom(r, total);
}
void account_op(run *r, sim_op_kind kind, sim_ns t0, sim_ns t1, uint32_t layer, int expert, uint32_t level, uint32_t tokens,
                uint32_t final, int preload, sim_op_tier tier, int64_t bytes);
/* an operation to the observer, if one listens (inline: without one the
 * arguments are not even computed) */
static inline void account_emit(run *r, sim_op_kind kind, sim_ns t0, sim_ns t1, uint32_t layer, int expert, uint32_t level,
                                uint32_t tokens, uint32_t final, int preload, sim_op_tier tier, int64_t bytes)
{
    if (r->obs_op) account_op(r, kind, t0, t1, layer, expert, level, tokens, final, preload, tier, bytes);
}
/* profile.c: per-expert static levels and layer-to-layer transitions from
 * the profiling requests */
int profile_run(run *r);
/* step.c: a layer step's start, plan (bit routing, items, groups, hits,
 * load order, preloads) and end; admission of loads within the budget */
int step_start(run *r);
int step_plan(run *r);
int step_end(run *r);
/* The step holds the item's unit (resident or loading) until its group is done. */
static inline void step_hold_item(run *r, step_item *it)
{
    mem_entry_pin(r->mm, it->entry);
    it->held = 1;
    step_group *g = &r->groups[it->grp];
    const int64_t b = r->unit_bytes[it->unit];
    r->open_rest -= step_group_rest(g);
    g->held += b;
    r->open_rest += step_group_rest(g);
    r->held_total += b;
}
int step_group_admit_order(run *r, uint32_t g, int64_t bytes, int64_t room);
void step_rest_check(run *r);
/* May group g hold `bytes` more now?  They must fit beside what the step
 * holds (unheld resident units can be evicted), and afterwards every open
 * group must still be able to finish: a banker's check with one resource,
 * the budget (open groups by remaining need ascending; each that fits
 * returns what it holds when done; step_group_admit_order).  Inline: what
 * the open groups need with g holding `bytes` more (the kept sum with g's
 * part replaced) mostly fits beside the room, and then there is nothing to
 * order. */
static inline int step_group_admit(run *r, uint32_t g, int64_t bytes)
{
    const int64_t room = mem_budget(r->mm) - r->held_total - bytes;
    if (room < 0) return 0;
    const step_group *x = &r->groups[g];
    const int64_t held = x->held + bytes;
    const int64_t rest = r->open_rest - step_group_rest(x) + (held > 0 && x->left > 0 ? x->need - held : 0);
#ifdef D2_DEBUG
    step_rest_check(r);
#endif
    return rest <= room ? 1 : step_group_admit_order(r, g, bytes, room);
}
int step_pick_other(run *r, int *go);
/* Nested storage: make the queue's head a unit the step can take now.  The
 * planner's head if admissible (inline); else step_pick_other: wait while a
 * group that needs no more loads is computing (it will free its units);
 * else the first admissible unit further on that is its group's first in
 * the queue (levels stay ascending).  One exists while every open group can
 * finish (admission keeps that true).  *go = 1: the head may go; 0: wait.
 * A D2 status. */
static inline int step_pick_load(run *r, int *go)
{
    const step_item *it = &r->items[r->item_of[r->ioq[r->qhead].entry]];
    *go = 1;
    return step_group_admit(r, it->grp, r->unit_bytes[it->unit]) ? D2_OK : step_pick_other(r, go);
}
/* engine.c: the I/O channel, the compute unit, the events */
/* the event loop: handle events until the last step ends, memory runs out,
 * an error, or none is left */
int engine_run(run *r);
void engine_unit_freed(void *user, uint32_t id);
/* oracle.c: the next-use oracle from the routing source, read ahead */
int oracle_build(run *r);
int oracle_next_use(void *user, uint32_t layer, uint32_t expert, uint64_t *when);
/* result.c */
void result_finish(run *r);

#endif
