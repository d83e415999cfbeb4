/* cost.c - device cost model (see cost.h).  Readings of the paper that live
 * here: weights-only quantization dequantized on the fly into FP16, then an
 * FP16 GEMM (paper section 4); a roofline max(FLOP time, weight-stream time)
 * for every GEMM; durations from rates rounded up. */
#include "sim/cost.h"

#include <math.h>

/* a + b, both >= 0, saturating at COST_NS_MAX */
static sim_ns sat_add(sim_ns a, sim_ns b)
{
    return a >= COST_NS_MAX - b ? COST_NS_MAX : a + b;
}

sim_ns cost_dur_ns(double amount, double rate)
{
    if (amount <= 0) return 0;
    double q = amount * 1e9 / rate;
    if (!(q < (double)COST_NS_MAX)) return COST_NS_MAX;
    double r = nearbyint(q);
    /* a rate like 3.5e9 is not exact in binary: treat a quotient within
     * 1e-9 relative of an integer as that integer, round up otherwise */
    sim_ns ns = fabs(q - r) <= 1e-9 * (q > 1 ? q : 1) ? (sim_ns)r : (sim_ns)ceil(q);
    return ns > 0 ? ns : 1;
}

/* The stage durations of one load, ns (bandwidth terms only): flash (when
 * not page-cached), host copy (page-cached, or any buffered read), link
 * (discrete accelerators).  Returns the number of stages. */
static int load_stages(const device *d, int64_t bytes, int page_cached, sim_ns *st)
{
    int n = 0;
    if (!page_cached) st[n++] = cost_dur_ns((double)bytes, d->flash_bw);
    if (page_cached || d->buffered_io) st[n++] = cost_dur_ns((double)bytes, d->host_copy_bw);
    if (!d->unified) st[n++] = cost_dur_ns((double)bytes, d->link_bw);
    return n;
}

sim_ns cost_load_ns(const device *d, int64_t bytes, int page_cached)
{
    sim_ns t = d->io_overhead_ns < COST_NS_MAX ? d->io_overhead_ns : COST_NS_MAX;
    if (!page_cached) {
        int64_t reads = d->flash_read_bytes > 0 ? (bytes + d->flash_read_bytes - 1) / d->flash_read_bytes : 1;
        int64_t waves = (reads + d->flash_qd - 1) / d->flash_qd;
        double lat = (double)waves * (double)d->flash_lat_ns;
        t = sat_add(t, lat < (double)COST_NS_MAX ? (sim_ns)lat : COST_NS_MAX);
    }
    if (!d->unified) t = sat_add(t, d->link_lat_ns < COST_NS_MAX ? d->link_lat_ns : COST_NS_MAX);
    sim_ns st[3], sum = 0, mx = 0;
    int n = load_stages(d, bytes, page_cached, st);
    for (int i = 0; i < n; i++) {
        sum = sat_add(sum, st[i]);
        if (st[i] > mx) mx = st[i];
    }
    /* chunked pipelining: n_c equal chunks through the stages take the
     * slowest stage's whole time plus one chunk of each other stage,
     * max + (sum - max) / n_c (rounded up); without chunks, the sum */
    sim_ns pipe = sum;
    if (d->io_chunk_bytes > 0 && bytes > d->io_chunk_bytes && n > 1) {
        int64_t nc = (bytes + d->io_chunk_bytes - 1) / d->io_chunk_bytes;
        pipe = sat_add(mx, (sum - mx + nc - 1) / nc);
    }
    t = sat_add(t, pipe);
    return t > 0 ? t : 1;
}

sim_ns cost_load_floor_ns(const device *d, int64_t bytes, int page_cached)
{
    sim_ns st[3], mx = 0;
    int n = load_stages(d, bytes, page_cached, st);
    for (int i = 0; i < n; i++)
        if (st[i] > mx) mx = st[i];
    return mx;
}

double cost_weight_stream_bytes(const device *d, int64_t weights, int64_t stored, int bits)
{
    return bits < 16 && d->dequant_rate >= COST_NO_FP16_COPY ? (double)stored : 2.0 * (double)weights;
}

/* The terms of one expert-unit compute around its FLOP-side time tf (ns):
 * dequantization, the roofline max(tf, weight stream), the cold weight
 * stream and the launches.  cost_expert's tf is 2 weights tokens /
 * (fp16_flops x compute_eff); the SwiGLU items' measured rates give theirs. */
static void expert_terms(const device *d, int64_t weights, int64_t stored, int bits, sim_ns tf, cost_compute *out)
{
    double bw = d->mem_bw * d->mem_eff;
    int kernels = 1;
    out->dequant = 0;
    if (bits < 16) {
        kernels = 2;
        /* dequant_rate = 0: a memory-bound pass reading the stored unit and
         * writing FP16 weights */
        out->dequant = d->dequant_rate > 0 ? cost_dur_ns((double)weights, d->dequant_rate)
                                           : cost_dur_ns((double)stored + 2.0 * (double)weights, bw);
    }
    /* the weight-stream floor: the FP16 weights, or, when the device has no
     * FP16 copy step (dequant_rate >= COST_NO_FP16_COPY: the kernels work on
     * the packed bit planes), the stored bytes */
    double streamed = cost_weight_stream_bytes(d, weights, stored, bits);
    sim_ns tm = cost_dur_ns(streamed, bw);
    out->stream = streamed;
    out->gemm = tf > tm ? tf : tm;
    if (d->cold_weight_bw > 0) /* the weights come from DRAM once per call, not overlapped */
        out->gemm = sat_add(out->gemm, cost_dur_ns((double)stored, d->cold_weight_bw));
    out->overhead = d->kernel_overhead_ns < COST_NS_MAX / 2 ? kernels * d->kernel_overhead_ns : COST_NS_MAX;
    out->total = sat_add(sat_add(out->dequant, out->gemm), out->overhead);
    if (out->total < 1) out->total = 1;
}

void cost_expert(const device *d, int64_t weights, int64_t stored, int bits, int64_t tokens, cost_compute *out)
{
    double fl = d->fp16_flops * d->compute_eff;
    expert_terms(d, weights, stored, bits, cost_dur_ns(2.0 * (double)weights * (double)tokens, fl), out);
}

void cost_expert_fused(const device *d, int64_t weights, int64_t stored, int bits, int plane_bits, int64_t tokens,
                       int launch, cost_compute *out)
{
    cost_expert(d, weights, stored, bits, tokens, out);
    if (bits < 16) /* bit operations in proportion to the unit's own bits (fit rates are of INT4 codes) */
        out->dequant = d->dequant_rate > 0
                           ? cost_dur_ns((double)weights * plane_bits / COST_DEQUANT_REF_BITS, d->dequant_rate)
                           : cost_dur_ns((double)stored, d->mem_bw * d->mem_eff);
    out->overhead = launch ? (d->kernel_overhead_ns < COST_NS_MAX ? d->kernel_overhead_ns : COST_NS_MAX) : 0;
    /* dequantization runs in step with the matrix work: the longer of the two */
    out->total = sat_add(out->dequant > out->gemm ? out->dequant : out->gemm, out->overhead);
    if (out->total < 1) out->total = 1;
}

int cost_swiglu_rates_set(const device *d, int k)
{
    return k >= 1 && k <= DEVICE_SWIGLU_LEVELS && d->swiglu_gu_rate[k - 1] > 0 && d->swiglu_down_rate[k - 1] > 0 &&
           d->swiglu_epilogue_rate > 0;
}

void cost_expert_swiglu_item(const device *d, int64_t weights, int64_t matrices, int64_t ffn, const int64_t *level_bytes,
                             int k, int bits, int64_t tokens, int64_t final, int fused, cost_compute *out)
{
    const int64_t Wm = weights / matrices, ub = level_bytes[k - 1];
    int64_t down_bytes = 0;
    for (int l = 0; l < k; l++) down_bytes += level_bytes[l] / matrices;
    cost_compute gu, dn = {.total = 0, .stream = 0};
    if (fused) {
        int pb = k == 1 ? bits : 1; /* level 1: the b1-bit base; above: one sign plane */
        cost_expert_fused(d, weights - Wm, ub - ub / matrices, bits, pb, tokens, k == 1, &gu);
        if (final > 0) cost_expert_fused(d, Wm * k, down_bytes, bits, bits, final, 0, &dn); /* levels 1..k: b1 + k - 1 = bits */
    } else if (cost_swiglu_rates_set(d, k)) {
        /* the measured rates (d2moe calibrate times the calls execute
         * makes): gate/up at level k for `tokens`; the epilogue and down over
         * levels 1..k in one call for `final` (its weights counted once) */
        expert_terms(d, weights - Wm, ub - ub / matrices, bits,
                     cost_dur_ns((double)(weights - Wm) * (double)tokens, d->swiglu_gu_rate[k - 1]), &gu);
        if (final > 0) {
            expert_terms(d, Wm * k, down_bytes, bits, cost_dur_ns((double)Wm * (double)final, d->swiglu_down_rate[k - 1]),
                         &dn);
            sim_ns epi = cost_dur_ns((double)ffn * (double)final, d->swiglu_epilogue_rate);
            dn.gemm = sat_add(dn.gemm, epi);
            dn.total = sat_add(dn.total, epi);
        }
    } else {
        cost_expert(d, weights - Wm, ub - ub / matrices, bits, tokens, &gu);
        if (final > 0) cost_expert(d, Wm * k, down_bytes, bits, final, &dn);
    }
    out->dequant = gu.dequant + dn.dequant;
    out->gemm = gu.gemm + dn.gemm;
    out->overhead = gu.overhead + dn.overhead;
    out->total = sat_add(gu.total, dn.total);
    out->stream = gu.stream + dn.stream;
}

double cost_nonexpert_flops(const model *m, int64_t tokens, double ctx_sum)
{
    double moe = (double)model_moe_layers(m);
    double per_layers = (double)m->layers / moe;
    double w = (double)model_nonexpert_params(m) / moe;
    /* the weight GEMMs, and attention scores and values: 2 FLOPs x 2
     * matmuls x heads x head_dim per (token, context) pair */
    return 2.0 * w * (double)tokens + 4.0 * (double)(m->heads * m->head_dim) * ctx_sum * per_layers;
}

double cost_nonexpert_stream_bytes(const model *m, int nonexpert_bits, int kv_bits, double ctx_sum)
{
    double moe = (double)model_moe_layers(m);
    double w = (double)model_nonexpert_params(m) / moe;
    double wbytes = w * nonexpert_bits / 8.0;
    double kvbytes = (double)model_kv_bytes_per_token(m, kv_bits) / moe * ctx_sum;
    return wbytes + kvbytes;
}

sim_ns cost_nonexpert_ns(const device *d, const model *m, int nonexpert_bits, int kv_bits,
                         int64_t tokens, double ctx_sum)
{
    double moe = (double)model_moe_layers(m);
    double per_layers = (double)m->layers / moe; /* transformer layers per MoE slot */
    double flops = cost_nonexpert_flops(m, tokens, ctx_sum);
    sim_ns tf = cost_dur_ns(flops, d->fp16_flops * d->compute_eff);
    sim_ns tm = cost_dur_ns(cost_nonexpert_stream_bytes(m, nonexpert_bits, kv_bits, ctx_sum), d->mem_bw * d->mem_eff);
    double lo = ceil(per_layers * (double)d->layer_overhead_ns);
    sim_ns t = sat_add(tf > tm ? tf : tm, lo < (double)COST_NS_MAX ? (sim_ns)lo : COST_NS_MAX);
    return t > 0 ? t : 1;
}
