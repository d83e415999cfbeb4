/* result.c - a finished run's result: the metric registry (each metric
 * registered once with its unit), result_finish (run state -> metrics), and
 * the result's accessors and visitors.  It does not store or print rows
 * beyond sim_result_print (src/results and src/cli do). */
#include "sim/sim_int.h"
#include "core/rng.h"

#include <stdlib.h>
#include <string.h>

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
    M(bound_tps, "tokens/s"), M(bound_util, ""), M(bound_io_s, "s"), M(bound_compute_s, "s"), M(bound_flops_s, "s"),
    M(bound_mem_s, "s"), M(page_cache_gb, "GB"),
};
#undef M
#define NMETRIC (sizeof metric_defs / sizeof metric_defs[0])

void result_finish(run *r)
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
    sim_ns sft = 0, mft = 0, stp = 0, slat = 0;
    uint32_t nft = 0, nfin = 0;
    for (uint32_t q = 0; q < r->R; q++) {
        if (r->first_ns[q] < 0) continue;
        sim_ns ft = r->first_ns[q] - r->arrive_ns[q];
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
    /* the bound (step.c, bound_fstep): the run lasts at least its unavoidable I/O and its compute
     * unit's floor, per forward step the larger of its FLOPs at peak and the bytes its computes
     * stream from accelerator memory */
    m->bound_io_s = (double)r->lb_io_ns / 1e9;
    m->bound_compute_s = r->lb_comp_s;
    m->bound_flops_s = r->lb_flops_s;
    m->bound_mem_s = r->lb_mem_s;
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

