/* cost.h - the device cost model: how long a load, an expert-level compute
 * and a layer's non-expert work take on a device profile.  Pure functions of
 * (device, sizes); every duration is rounded UP to whole nanoseconds and a
 * non-empty operation takes at least 1 ns.  It keeps no state and no clock. */
#ifndef D2_SIM_COST_H
#define D2_SIM_COST_H

#include <stdint.h>
#include "sim/simtime.h"
#include "core/device.h"
#include "core/model.h"

/* The longest duration the model returns: 2^46 ns (19.5 hours).  Every
 * parameter is within its range, but together they can ask for more (an
 * expert of 10^13 weights at 100 FLOP/s); such a duration saturates here and
 * the simulator refuses it (sums of up to 2^16 of them then fit int64). */
#define COST_NS_MAX ((sim_ns)1 << 46)

/* ceil(amount / rate) seconds in ns; 0 for amount 0; 1..COST_NS_MAX otherwise. */
sim_ns cost_dur_ns(double amount, double rate);

/* One load of `bytes` into accelerator memory, through up to three stages:
 *   flash      bytes / flash_bw, when not in the host page cache, plus
 *              ceil(reads / flash_qd) * flash_lat_ns, reads =
 *              ceil(bytes / flash_read_bytes) (1 when flash_read_bytes = 0);
 *   host copy  bytes / host_copy_bw: a buffered read() copies from the page
 *              cache into a (pinned) user buffer; paid by every page-cache
 *              hit, and by a flash read too when device.buffered_io;
 *   link       link_lat_ns + bytes / link_bw, unless unified (on unified
 *              memory the read()'s copy is the transfer).
 * The stages' bandwidth terms add up, or with device.io_chunk_bytes = c > 0
 * they are pipelined in n = ceil(bytes / c) chunks: max + (sum - max) / n.
 * Plus io_overhead_ns. */
sim_ns cost_load_ns(const device *d, int64_t bytes, int page_cached); /* <= COST_NS_MAX */
/* The slowest stage's bandwidth term alone: no load of `bytes` from that
 * tier is faster, however it is pipelined (for the bound, sim_bound). */
sim_ns cost_load_floor_ns(const device *d, int64_t bytes, int page_cached);

/* Parts of one expert-unit compute, ns (see cost.c). */
typedef struct cost_compute {
    sim_ns dequant;   /* dequantize the unit to FP16 */
    sim_ns gemm;      /* roofline of the token GEMMs (FLOPs vs the weight stream), plus the
                         cold weight stream (device.cold_weight_bw) */
    sim_ns overhead;  /* kernel launches */
    sim_ns total;     /* <= COST_NS_MAX */
    double stream;    /* bytes the GEMMs' weight-stream floors read at mem_bw x mem_eff
                         (cost_weight_stream_bytes of each GEMM): gemm, and so total, is at least
                         their time; the bound's memory term (sim_bound) */
} cost_compute;

/* A dequant_rate at or above this (weights/s) means the device has no FP16
 * copy step: its kernels work on the packed codes (`d2moe calibrate`
 * writes 1e16 when dequantization costs nothing measurable), so a GEMM's
 * memory floor streams the stored bytes, not 2 bytes per weight. */
#define COST_NO_FP16_COPY 1e15

/* The bytes the weight-stream floor of a GEMM over `weights` weights reads
 * from accelerator memory (stored: their bytes; bits: their width): the FP16
 * weights, 2 x weights, or the stored bytes when bits < 16 and the device
 * has no FP16 copy step (dequant_rate >= COST_NO_FP16_COPY).  Every expert
 * GEMM in this file is max(FLOP time, this / (mem_bw x mem_eff)) or more. */
double cost_weight_stream_bytes(const device *d, int64_t weights, int64_t stored, int bits);

/* weights: weights in the unit (all matrices of one expert); stored: its
 * bytes; bits: its bit-width (16 = no dequantization); tokens: rows.
 * With device.cold_weight_bw > 0 the GEMM term adds stored / cold_weight_bw
 * once per call: a serving loop over many experts finds their weights in
 * DRAM, not in the cache a kernel benchmark repeating one expert warms
 * (d2moe calibrate measures the difference; docs/host.md). */
void cost_expert(const device *d, int64_t weights, int64_t stored, int bits, int64_t tokens, cost_compute *out);

/* The paper's fused nested kernel (sim.nested_kernel = fused): one pass
 * in which dequantization (CUDA cores) runs in step with the GEMM (tensor
 * cores), so the unit costs max(dequant, gemm), plus one kernel launch when
 * `launch` (a nested expert launches once, on its first level; a copy on
 * each unit).  "Each level adding its bytes and bit operations": the
 * dequantization of a unit is in proportion to its own stored bits,
 * plane_bits (a nested base level b1, a sign plane 1, a copy its width):
 * weights x plane_bits / COST_DEQUANT_REF_BITS / dequant_rate (the fitted
 * rates are of INT4 codes), or with dequant_rate = 0 one read of the stored
 * unit at mem_bw x mem_eff (no FP16 copy is written). */
#define COST_DEQUANT_REF_BITS 4.0
void cost_expert_fused(const device *d, int64_t weights, int64_t stored, int bits, int plane_bits, int64_t tokens,
                       int launch, cost_compute *out);

/* Level item k (1-based) of a nested (MWQ) expert costed as the SwiGLU data
 * flow runs it (sim.nested_compute = swiglu): the gate/up matrices of level
 * k for its `tokens` (weights - weights/matrices, their share of
 * level_bytes[k-1]), plus, for the `final` tokens whose last level is k, the
 * down matrix at levels 1..k (k * weights/matrices, a 1/matrices share of
 * each level's bytes).  level_bytes[i]: bytes of level i+1 of the expert;
 * ffn: the expert's intermediate size (elements the epilogue handles per
 * token).
 * At fp16_flops (the default): over an expert's items the total equals
 * cost_expert's per level and token (sum_k k F_k = sum_k T_k), the
 * epilogue inside the rate.  When the device has the measured SwiGLU rates
 * of level k (cost_swiglu_rates_set; per-level kernels only, not `fused`),
 * the FLOP-side times are instead
 *   gate/up    (weights - weights/matrices) tokens / swiglu_gu_rate[k-1]
 *   down       weights/matrices final / swiglu_down_rate[k-1]
 *              (levels 1..k in one call: a weight counted once)
 *   epilogue   ffn final / swiglu_epilogue_rate (added after the roofline)
 * each rounded up; dequantization, the weight-stream floor, the cold
 * weight stream and the launches are cost_expert's. */
void cost_expert_swiglu_item(const device *d, int64_t weights, int64_t matrices, int64_t ffn, const int64_t *level_bytes,
                             int k, int bits, int64_t tokens, int64_t final, int fused, cost_compute *out);
/* 1 when d has every measured SwiGLU rate level k's items use (gate/up and
 * down of level k, the epilogue), else 0. */
int cost_swiglu_rates_set(const device *d, int k);

/* Non-expert work of one MoE-layer slot of a forward step: attention, norms,
 * router, shared experts and the dense layers between MoE layers, spread
 * evenly over the MoE layers.  tokens: new tokens in the step; ctx_sum: sum
 * over those tokens of the context each attends to. */
/* FLOPs of that work (the GEMMs and attention): the compute term of
 * cost_nonexpert_ns before it meets the device (for the bound). */
double cost_nonexpert_flops(const model *m, int64_t tokens, double ctx_sum);
/* The bytes of that work's memory floor, read at mem_bw x mem_eff: the
 * slot's share of the non-expert weights at nonexpert_bits and the KV cache
 * its tokens read (kv_bits); the memory term of cost_nonexpert_ns (for the
 * bound). */
double cost_nonexpert_stream_bytes(const model *m, int nonexpert_bits, int kv_bits, double ctx_sum);
sim_ns cost_nonexpert_ns(const device *d, const model *m, int nonexpert_bits, int kv_bits,
                         int64_t tokens, double ctx_sum); /* <= COST_NS_MAX */

#endif
