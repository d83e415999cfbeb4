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
#include "sim/simtime.h" /* sim_ns: simulated nanoseconds, every time and duration of a run */

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
    char storage[PARAM_STR_MAX];  /* nested levels' storage format: "" (the paper's per-group layout) or v1, v2, v1k, v2k */
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
    double miss_target;           /* bit routing slice (SliceMoE): recent unit miss rate allowed, 0..1 */
    double gate_acc;              /* predictor fate-gate (Fate): share of next-layer experts its gate gets right */
    double gate_ahead_acc;        /* predictors gate-ahead/gate-adaptive (mixtral-offloading, HOBBIT): the same share, assumed */
} sim_params;

extern const param_table sim_param_table;

/* Expert routing of one (request, position, MoE layer): top_k expert ids in
 * descending gate order, gate weights, recorded bit-widths (0 = none). */
typedef int (*sim_route_fn)(void *user, uint32_t req, uint32_t pos, uint32_t layer,
                            uint16_t *experts, float *weights, uint8_t *bits);

/* Optional: every MoE layer of one (request, position) at once, layer l's
 * top_k experts, weights and bits at [l * stride, l * stride + top_k) of
 * each array (stride in elements, >= top_k); the same values as one route
 * call per layer (the serving loop then makes one call per token, not per
 * layer, and the source writes straight into its [layer][token][top_k]
 * arrays). */
typedef int (*sim_route_token_fn)(void *user, uint32_t req, uint32_t pos,
                                  uint16_t *experts, float *weights, uint8_t *bits, size_t stride);

typedef struct sim_input {
    const model *model;
    const device *device;
    const sim_params *params;
    sim_route_fn route;
    void *route_user;
    int route_has_bits;   /* the routing records bit-widths (for bitroute "trace") */
    sim_route_token_fn route_token; /* NULL: route per layer */
    const char *route_id; /* the routing's identity (trace_source_id: equal ids, equal routing),
                             NULL: none; keys the step memo (stepmemo.h) */
} sim_input;

/* What a named system resolves to under a configuration: the row of
 * policy.c with the sim.* overrides applied (sim_system_resolve).  It lets a
 * caller (d2moe execute, the audit) know what a run will do without running
 * it. */
typedef struct sim_system {
    char name[PARAM_STR_MAX];
    int nested;                   /* 1: MWQ nested levels (level k = units 1..k); 0: separate copies */
    int levels;                   /* K */
    int bits[8];                  /* bit-width of level / copy k (0-based) */
    char caps[PARAM_STR_MAX], bitroute[PARAM_STR_MAX], plan[PARAM_STR_MAX], mem[PARAM_STR_MAX];
    char prefetch[PARAM_STR_MAX], buffer[PARAM_STR_MAX];
    int serial;                   /* its planner forbids I/O-compute overlap */
    int preloads;                 /* it loads predicted experts of the next layer */
    int hold;                     /* every expert resident from the start, no expert I/O */
} sim_system;
/* D2_EINVAL with a message when a name (system, planner, ...) is unknown. */
int sim_system_resolve(const sim_params *p, sim_system *out);
/* The rest of what a run refuses about a configuration before it starts,
 * without running it: the arrival process, sim.nested_kernel and
 * sim.nested_compute, the capacities (one per level, summing to 1), a model
 * with MoE layers within the simulator's limits, the storage format's
 * levels for this model, a uniform:B bit routing that names a stored
 * level, and a clairvoyant memory policy under batch arrival.  Not checked
 * here: the budget against the experts' sizes (sim_run refuses a budget
 * below one expert's level set; out of memory is a result) and the
 * routing source (sim_job_run checks it against the model).  D2_EINVAL /
 * D2_ERANGE with a message that starts with the key it is about. */
int sim_system_check(const sim_system *s, const model *m, const sim_params *p);
/* Capacities "c1/c2/.../cK": exactly `levels` numbers 0..1 separated by
 * '/', summing to 1 (within 1e-6), into caps; D2_EINVAL with a message
 * that starts with `what` (sim.caps, or an eval configuration). */
int sim_system_caps_parse(const char *s, int levels, double *caps, const char *what);

/* One operation of a run, as the simulator performed it: a typed record
 * handed to observers (the timeline writer, d2moe execute's plan, tests). */
typedef enum sim_op_kind {
    SIM_OP_NONEXPERT = 0, /* a layer slot's non-expert work: opens a layer step */
    SIM_OP_LOAD,          /* an expert unit loaded into accelerator memory */
    SIM_OP_COMPUTE,       /* an expert unit computed for its tokens */
} sim_op_kind;
typedef enum sim_op_tier {
    SIM_TIER_NONE = 0,    /* not a load */
    SIM_TIER_FLASH,       /* read from flash */
    SIM_TIER_PAGE_CACHE,  /* served by the host page cache */
} sim_op_tier;
typedef struct sim_op {
    sim_op_kind kind;
    uint32_t fstep;       /* forward step (0 = the first) */
    uint32_t step;        /* layer step of the run (fstep x MoE layers + layer) it belongs to */
    uint32_t layer;       /* MoE layer it serves (a preload: the next layer) */
    int32_t expert;       /* expert id; -1 for non-expert work */
    uint32_t level;       /* 1-based level (nested) or copy index + 1; 0 for non-expert work */
    uint32_t tokens;      /* compute: tokens that need this unit; load: the same for its item (0: a preload);
                             non-expert: the tokens of the forward step */
    uint32_t final;       /* compute: tokens whose own level is this one (nested); = tokens for copies */
    int preload;          /* load: for the next layer, predicted */
    sim_op_tier tier;     /* load: where its bytes came from */
    int64_t bytes;        /* load: bytes moved */
    sim_ns start, end;    /* simulated ns */
} sim_op;

typedef struct sim_result sim_result;

/* Run one configuration.  Bad configuration (unknown policy, budget below
 * one expert's level set, ...): D2_EINVAL/D2_ERANGE with a one-line message and no
 * result.  Out of memory is a result (status "oom"), not an error. */
int sim_run(const sim_input *in, sim_result **out);

/* Hooks into a run (tests, tools); NULL members are skipped. */
typedef struct sim_observer {
    /* Every operation: a load when it starts (its end is known then), a
     * compute when it starts (when it ends under device.io_interference,
     * whose rate changes while it runs), non-expert work when it starts. */
    void (*op)(void *user, const sim_op *op);
    /* An expert unit left accelerator memory at simulated time t: evicted to
     * make room, or freed after use (memory policy "none"); level 1-based. */
    void (*unit_freed)(void *user, sim_ns t, uint32_t layer, uint32_t expert, uint32_t level);
    void *user;
} sim_observer;
/* sim_run, telling obs (may be NULL) as the run goes. */
int sim_run_observed(const sim_input *in, const sim_observer *obs, sim_result **out);

/* The timeline CSV as an observer: start_ns,end_ns,queue,layer,expert,level,
 * tokens (queue io or compute; non-expert work expert -1, level 0; preloads
 * tokens 0).  sim_timeline_begin writes the header, SIM_TIMELINE_HEADER
 * (also execute's real timeline's, and what its readers check). */
#define SIM_TIMELINE_HEADER "start_ns,end_ns,queue,layer,expert,level,tokens"
typedef struct sim_timeline { FILE *f; } sim_timeline;
void sim_timeline_begin(sim_timeline *t, FILE *f, sim_observer *obs);

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
    const sim_observer *obs; /* NULL, or told of every operation (beside the timeline) */
} sim_job;
int sim_job_run(const sim_job *job, sim_result **out);
/* The effective model, device, parameters and system of a job, without
 * running it (any out-pointer may be NULL); with s, the configuration also
 * passes sim_system_check. */
int sim_job_resolve(const sim_job *job, model *m, device *d, sim_params *p, sim_system *s);
/* Profiles, readings and generator shapes a series of sim_job_check calls
 * loaded, kept by name for the next call (NULL: load every time). */
typedef struct sim_job_memo sim_job_memo;
int sim_job_memo_new(sim_job_memo **out);
void sim_job_memo_free(sim_job_memo *memo);
/* Would sim_job_run refuse this job's configuration?  sim_job_resolve with
 * the system checks, and a trace file's routing shape against the model
 * (and bit-widths recorded when the bit routing reads them; the generator
 * records none).  Runs nothing; reads the profiles, the reading and the
 * trace's header.  The budget against the experts' sizes is left to the run
 * (see sim_system_check). */
int sim_job_check(const sim_job *job, sim_job_memo *memo);
/* The files a run of this job reads, resolved as sim_job_run resolves them:
 * fn(role, path) for "model" and "device" (the profiles), "reading" (the
 * reading set's file; none for "none"), then "trace" (the job's trace file)
 * or, without one, "preset" (the generator preset of the model's name).
 * Opens no file but the profiles (memo: as for sim_job_check). */
typedef int (*sim_job_file_fn)(const char *role, const char *path, void *user);
int sim_job_files(const sim_job *job, sim_job_memo *memo, sim_job_file_fn fn, void *user);

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
