/* params.c - the "sim" parameter table (see sim.h): every knob of the
 * serving simulator, so --set sim.key=value works and every effective value
 * is stored with a run. */
#include "sim/sim.h"

#include <stddef.h>

#define F(x) offsetof(sim_params, x)
static const param_def defs[] = {
    {"policy", PARAM_STRING, F(policy), "d2moe-v1", 0, 0, "", "named system (d2moe simulate --list; docs/simulator.md)"},
    {"budget", PARAM_INT, F(budget), "1600M", 1, 1e15, "bytes", "expert memory budget M (paper: 200 MB .. 2500 MB)"},
    {"requests", PARAM_INT, F(requests), "32", 1, 4096, "", "requests in the synchronous batch (paper: 4 .. 32)"},
    {"prompt", PARAM_INT, F(prompt), "128", 1, 1 << 20, "tokens", "prompt tokens per request (paper: 128)"},
    {"gen", PARAM_INT, F(gen), "128", 1, 1 << 20, "tokens", "generated tokens per request (paper: 128)"},
    {"arrival", PARAM_STRING, F(arrival), "batch", 0, 0, "", "request arrivals: batch (all at 0, the paper), poisson or uniform at sim.arrival_rate (continuous batching)"},
    {"arrival_rate", PARAM_DOUBLE, F(arrival_rate), "1", 1e-6, 1e9, "requests/s", "arrival rate of poisson and uniform arrivals"},
    {"seed", PARAM_INT, F(seed), "1", 0, 9.2e18, "", "seed of every random choice (routing generator, capacity draws, predictor noise)"},
    {"bitroute", PARAM_STRING, F(bitroute), "", 0, 0, "", "bit-width routing, a name from d2moe simulate --list (e.g. gate, uniform:B; empty = the system's)"},
    {"plan", PARAM_STRING, F(plan), "", 0, 0, "", "planner, a name from d2moe simulate --list (e.g. hebf, optimal; empty = the system's)"},
    {"mem", PARAM_STRING, F(mem), "", 0, 0, "", "memory policy, a name from d2moe simulate --list (e.g. budget, lru, belady, arc; empty = the system's)"},
    {"caps", PARAM_STRING, F(caps), "", 0, 0, "", "bit-width capacities c_k, e.g. 0.3/0.4/0.3 (empty = the system's)"},
    {"group", PARAM_INT, F(group), "128", 1, 1 << 20, "weights", "quantization group size (paper: 128)"},
    {"storage", PARAM_STRING, F(storage), "", 0, 0, "", "storage format of a nested system's levels: empty = the paper's (b1-bit codes, then sign planes, FP16 scales per group of sim.group); v1, v2 (the .mwq layouts of kern.h), v1k, v2k (the k-quant nested presets of kq.h: 256-weight super-blocks, quantized sub-block scales); its level count must be the system's (docs/mwq.md)"},
    {"nonexpert_bits", PARAM_INT, F(nonexpert_bits), "4", 1, 32, "bits", "bits per resident non-expert weight (4: weights-only INT4, see docs/simulator.md)"},
    {"kv_bits", PARAM_INT, F(kv_bits), "16", 1, 32, "bits", "bits per KV-cache element"},
    {"kv_on_device", PARAM_BOOL, F(kv_on_device), "true", 0, 1, "", "count the KV cache in accelerator memory (false: kept in host memory; attention cost unchanged -- see docs/simulator.md)"},
    {"nested_compute", PARAM_STRING, F(nested_compute), "uniform", 0, 0, "", "cost of a nested system's level-k item: uniform (the paper's reading: every level item computes the whole expert for its T_k tokens at >= k) or swiglu (the data flow d2moe execute runs: gate/up of level k for the T_k tokens, and the down projection of levels 1..k for the tokens whose last level is k; same total work)"},
    {"transient_fp16", PARAM_BOOL, F(transient_fp16), "true", 0, 1, "", "count the FP16 copy a dequantized expert level occupies while it computes (only where a kernel writes one: the per-level kernel on a device that dequantizes, device.dequant_rate < 1e15)"},
    {"plan_gap", PARAM_BOOL, F(plan_gap), "false", 0, 1, "", "also plan each step with hebf, id-order and optimal and report their makespan gaps"},
    {"opt_max_states", PARAM_INT, F(opt_max_states), "1048576", 1, 1e9, "states", "optimal planner: largest dynamic program per step (beyond: hebf, counted)"},
    {"prefetch", PARAM_STRING, F(prefetch), "", 0, 0, "", "preloading predictor, a name from d2moe simulate --list (e.g. none, paths, oracle; empty = the system's)"},
    {"prefetch_k", PARAM_INT, F(prefetch_k), "0", 0, 4096, "experts", "experts preloaded for the next layer when the system preloads; 0 = top_k"},
    {"predict_acc", PARAM_DOUBLE, F(predict_acc), "1", 0, 1, "", "accuracy of the oracle predictor: each true next-layer expert kept with this probability"},
    {"profile_requests", PARAM_INT, F(profile_requests), "8", 1, 4096, "", "requests after the batch's ids used for offline profiling (static levels, predictor)"},
    {"nested_kernel", PARAM_STRING, F(nested_kernel), "per-level", 0, 0, "", "dequantize + GEMM kernel of every system that dequantizes: per-level (a dequantize pass then an FP16 GEMM per unit, two launches; what d2moe execute runs on this host) or fused (the paper's parallel loading dequantization kernel: dequantization in step with the GEMM, max of the two, one launch per expert)"},
    {"buffer", PARAM_STRING, F(buffer), "", 0, 0, "", "what bounds resident experts: budget (sim.budget, D2MoE's Algorithm 2 and systems built on it) or device (all device memory left after non-expert weights, KV cache and the FP16 transient: a buffer that fills the device); empty = the system's"},
    {"router_overhead", PARAM_DOUBLE, F(router_overhead), "0.015", 0, 1, "", "bit router latency as a fraction of expert compute (paper: 1-2%)"},
    {"miss_target", PARAM_DOUBLE, F(miss_target), "0.1", 0, 1, "", "bit routing slice (SliceMoE): an expert is raised above the precision cached only while the recent miss rate of its units stays within this (our value)"},
    {"gate_acc", PARAM_DOUBLE, F(gate_acc), "0.9715", 0, 1, "", "predictor fate-gate: probability its cross-layer gate predicts each of a token's next-layer experts (default: the accuracy we recall Fate, arXiv 2502.12224, reporting; unverified here, see docs/simulator.md)"},
    {"gate_ahead_acc", PARAM_DOUBLE, F(gate_ahead_acc), "0.8", 0, 1, "", "predictors gate-ahead and gate-adaptive (mixtral-offloading, hobbit): probability the next layer's gate on this layer's hidden state predicts each of a token's next-layer experts (default 0.8: our assumption, neither paper gives one; see docs/simulator.md)"},
};
#undef F

const param_table sim_param_table = {"sim", "sim", defs, sizeof defs / sizeof defs[0]};
