/* sim.h - the serving simulator's public face: the "sim" parameter table,
 * one run from in-memory inputs (sim_run), one run from the same inputs as
 * the command line (sim_job_run), and the result with its registered
 * metrics.  It does not open databases or print: src/cli (and sweeps) turn a
 * sim_result into rows through the visitors below. */
#ifndef D2_SIM_SIM_H
#define D2_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "core/device.h"
#include "core/model.h"
#include "core/param.h"

typedef int64_t sim_ns; /* simulated nanoseconds since the run started; never negative */

/* The simulator's knobs: table "sim" (--set sim.key=value).  String policy
 * fields that are empty mean "the named system's choice" (sim.policy). */
typedef struct sim_params {
    char policy[PARAM_STR_MAX];   /* named system: d2moe-v1, hold-int8, ... */
    int64_t budget;               /* expert memory budget M, bytes */
    int64_t requests;             /* R requests in the synchronous batch */
    int64_t prompt;               /* prompt tokens per request */
    int64_t gen;                  /* generated tokens per request */
    char arrival[PARAM_STR_MAX];  /* arrival process: batch, poisson, uniform */
    double arrival_rate;          /* requests/s (poisson, uniform) */
    int64_t seed;                 /* seed of every random choice */
    char bitroute[PARAM_STR_MAX]; /* bit-width routing override ("" = system's) */
    char plan[PARAM_STR_MAX];     /* planner override */
    char mem[PARAM_STR_MAX];      /* memory policy override */
    char caps[PARAM_STR_MAX];     /* bit-width capacities c_k, "0.3/0.4/0.3" ("" = system's) */
    int64_t group;                /* quantization group, weights */
    int64_t nonexpert_bits;       /* bits per non-expert weight */
    int64_t kv_bits;              /* bits per KV-cache element */
    int kv_on_device;             /* count the KV cache in accelerator memory */
    char nested_compute[PARAM_STR_MAX]; /* nested level-item cost: "uniform" or "swiglu" */
    int transient_fp16;           /* count the transient FP16 dequantized expert in memory */
    int plan_gap;                 /* also evaluate hebf and optimal per step (plan_gap_*) */
    int64_t opt_max_states;       /* optimal planner: largest search (states) per step */
    char prefetch[PARAM_STR_MAX]; /* preloading predictor override ("" = system's) */
    int64_t prefetch_k;           /* experts preloaded per next layer; 0 = top_k */
    double predict_acc;           /* oracle predictor accuracy, 0..1 */
    int64_t profile_requests;     /* requests (ids after the batch) used for offline profiling */
    double router_overhead;       /* bit-router latency, fraction of the expert compute it gates */
    char nested_kernel[PARAM_STR_MAX]; /* dequantize + GEMM kernel reading: "per-level" or "fused" */
    char buffer[PARAM_STR_MAX];   /* expert memory bound: "budget" (sim.budget), "device" (free device
                                     memory), "" = the system's */
} sim_params;

extern const param_table sim_param_table;

/* Expert routing of one (request, position, MoE layer): top_k expert ids in
 * descending gate order, gate weights, recorded bit-widths (0 = none). */
typedef int (*sim_route_fn)(void *user, uint32_t req, uint32_t pos, uint32_t layer,
                            uint16_t *experts, float *weights, uint8_t *bits);

typedef struct sim_input {
    const model *model;
    const device *device;
    const sim_params *params;
    sim_route_fn route;
    void *route_user;
    int route_has_bits;   /* the routing records bit-widths (for bitroute "trace") */
    FILE *timeline;       /* NULL, or CSV: start_ns,end_ns,queue,layer,expert,level,tokens */
} sim_input;

typedef struct sim_result sim_result;

/* Run one configuration.  Bad configuration (unknown policy, budget below
 * one expert's level set, ...): D2_EINVAL/D2_ERANGE with a one-line message and no
 * result.  Out of memory is a result (status "oom"), not an error. */
int sim_run(const sim_input *in, sim_result **out);

/* Hooks into a run (tests, tools); NULL members are skipped. */
typedef struct sim_observer {
    /* An expert unit left accelerator memory at simulated time t: evicted to
     * make room, or freed after use (memory policy "none"); level 1-based. */
    void (*unit_freed)(void *user, sim_ns t, uint32_t layer, uint32_t expert, uint32_t level);
    void *user;
} sim_observer;
/* sim_run, telling obs (may be NULL) as the run goes. */
int sim_run_observed(const sim_input *in, const sim_observer *obs, sim_result **out);

/* One configuration from the command line's inputs, for sweeps:
 * model and device are profile names or .ini paths; trace NULL = the trace
 * generator preset for the model (trace_source_open_gen); the reading's
 * settings (sim/readings.h) and then sets, "table.key=value", are applied in
 * order to the model, device and sim tables after seed (sim.seed).
 * timeline: NULL or a CSV path to write.  The result carries the reading
 * (params reading.name, reading.settings; input "reading"). */
typedef struct sim_job {
    const char *model;
    const char *device;
    const char *trace;
    const char *const *sets;
    size_t nsets;
    uint64_t seed;
    const char *timeline;
    const char *readings; /* reading set: NAME (experiments/readings/NAME.ini) or a path; NULL or "" =
                             READINGS_DEFAULT ("datasheet"); "none" = nothing applied.  Applied before sets. */
} sim_job;
int sim_job_run(const sim_job *job, sim_result **out);

void sim_result_free(sim_result *r);
const char *sim_result_status(const sim_result *r); /* "ok" or "oom" */
uint64_t sim_result_seed(const sim_result *r);       /* sim.seed of the run */
/* Why a run is oom (one line), "" when ok. */
const char *sim_result_reason(const sim_result *r);
/* Look up one metric by name; D2_ENOTFOUND when absent. */
int sim_result_metric(const sim_result *r, const char *name, double *value);
/* Every effective parameter ("model.*", "device.*", "sim.*" plus the
 * system's resolved parts "system.*"), as param_foreach does. */
int sim_result_foreach_param(const sim_result *r, param_visit_fn fn, void *user);
/* Every metric, in registration order. */
typedef int (*sim_metric_fn)(const char *name, double value, const char *unit, void *user);
int sim_result_foreach_metric(const sim_result *r, sim_metric_fn fn, void *user);
/* Inputs: role "trace" with the file path (NULL for the generator) and the
 * trace content id; "model"/"device" with their profile paths. */
typedef int (*sim_input_fn)(const char *role, const char *path, const char *id, void *user);
int sim_result_foreach_input(const sim_result *r, sim_input_fn fn, void *user);
/* "name = value unit" lines. */
void sim_result_print(const sim_result *r, FILE *out);

#endif
