/* device.c - device parameter table (see device.h). */
#include "core/device.h"
#include "core/err.h"

#include <stddef.h>
#include <string.h>

#define F(x) offsetof(device, x)
static const param_def defs[] = {
    {"name", PARAM_STRING, F(name), NULL, 0, 0, "", "profile name"},
    {"kind", PARAM_STRING, F(kind), "datasheet", 0, 0, "", "datasheet, calibrated (fitted to the paper) or measured (d2moe calibrate)"},
    {"mem_bytes", PARAM_INT, F(mem_bytes), NULL, 1, 1e15, "bytes", "accelerator memory"},
    {"mem_bw", PARAM_DOUBLE, F(mem_bw), NULL, 1e6, 1e14, "bytes/s", "accelerator memory bandwidth"},
    {"fp16_flops", PARAM_DOUBLE, F(fp16_flops), NULL, 1e6, 1e17, "FLOP/s", "peak dense FP16 throughput"},
    {"compute_eff", PARAM_DOUBLE, F(compute_eff), "1", 1e-4, 1, "", "fraction of fp16_flops reached by expert GEMMs"},
    {"mem_eff", PARAM_DOUBLE, F(mem_eff), "1", 1e-4, 1, "", "fraction of mem_bw reached streaming weights"},
    {"kernel_overhead_ns", PARAM_INT, F(kernel_overhead_ns), "0", 0, 1e12, "ns", "fixed cost per expert-level kernel"},
    {"layer_overhead_ns", PARAM_INT, F(layer_overhead_ns), "0", 0, 1e12, "ns", "fixed software cost per transformer layer per forward step (non-expert kernels, framework)"},
    {"dequant_rate", PARAM_DOUBLE, F(dequant_rate), "0", 0, 1e16, "weights/s", "dequantization rate to FP16; 0 = costed as memory traffic"},
    {"io_interference", PARAM_DOUBLE, F(io_interference), "0", 0, 100, "", "expert compute runs at 1/(1 + x) of its rate while a load is in flight (d2moe calibrate measures it; 0 = independent)"},
    {"read_interference", PARAM_DOUBLE, F(read_interference), "0", 0, 100, "", "a load from flash runs at 1/(1 + y) of its rate while an expert compute runs (d2moe calibrate measures it; 0 = independent)"},
    {"cold_weight_bw", PARAM_DOUBLE, F(cold_weight_bw), "0", 0, 1e15, "bytes/s", "each expert compute also streams its stored bytes from DRAM at this rate (d2moe calibrate; 0 = none)"},
    /* the SwiGLU data flow per level (d2moe calibrate: kern_matmul timed as d2moe execute calls it,
     * t = a + b T over T = 1..32 tokens, rate = weights / b; 0 = not set: costed at fp16_flops) */
    {"swiglu_gu_rate_l1", PARAM_DOUBLE, F(swiglu_gu_rate[0]), "0", 0, 1e17, "weights*tokens/s", "gate and up at level 1 alone (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_gu_rate_l2", PARAM_DOUBLE, F(swiglu_gu_rate[1]), "0", 0, 1e17, "weights*tokens/s", "gate and up at level 2 alone (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_gu_rate_l3", PARAM_DOUBLE, F(swiglu_gu_rate[2]), "0", 0, 1e17, "weights*tokens/s", "gate and up at level 3 alone (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_down_rate_l1", PARAM_DOUBLE, F(swiglu_down_rate[0]), "0", 0, 1e17, "weights*tokens/s", "down over level 1 in one call (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_down_rate_l2", PARAM_DOUBLE, F(swiglu_down_rate[1]), "0", 0, 1e17, "weights*tokens/s", "down over levels 1..2 in one call, a weight counted once (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_down_rate_l3", PARAM_DOUBLE, F(swiglu_down_rate[2]), "0", 0, 1e17, "weights*tokens/s", "down over levels 1..3 in one call, a weight counted once (sim.nested_compute = swiglu; d2moe calibrate; 0 = fp16_flops)"},
    {"swiglu_epilogue_rate", PARAM_DOUBLE, F(swiglu_epilogue_rate), "0", 0, 1e17, "elements*tokens/s", "SwiGLU epilogue: silu(gate) * up and int8 activations for down, per FFN element (d2moe calibrate; 0 = inside fp16_flops)"},
    {"unified", PARAM_BOOL, F(unified), "false", 0, 1, "", "accelerator shares host DRAM (no link copy)"},
    {"host_mem_bytes", PARAM_INT, F(host_mem_bytes), NULL, 1, 1e15, "bytes", "host DRAM"},
    {"page_cache_bytes", PARAM_INT, F(page_cache_bytes), "0", 0, 1e15, "bytes", "host DRAM that caches expert files; 0 = every load reads flash (unless page_cache_auto)"},
    {"page_cache_auto", PARAM_BOOL, F(page_cache_auto), "false", 0, 1, "", "derive the page cache from host RAM: host_mem_bytes - host_os_bytes - host_process_bytes - host_pinned_bytes (- accelerator use when unified)"},
    {"page_cache_policy", PARAM_STRING, F(page_cache_policy), "two-list", 0, 0, "", "page cache replacement: two-list (Linux active/inactive lists with refault detection) or lru"},
    {"host_os_bytes", PARAM_INT, F(host_os_bytes), "2Gi", 0, 1e15, "bytes", "host DRAM the OS and other programs take (page_cache_auto)"},
    {"host_process_bytes", PARAM_INT, F(host_process_bytes), "3Gi", 0, 1e15, "bytes", "host DRAM the serving process's runtime takes (page_cache_auto)"},
    {"host_pinned_bytes", PARAM_INT, F(host_pinned_bytes), "256Mi", 0, 1e15, "bytes", "pinned staging buffers for expert loads (page_cache_auto)"},
    {"host_copy_bw", PARAM_DOUBLE, F(host_copy_bw), "10G", 1e6, 1e13, "bytes/s", "CPU memcpy rate of a buffered read: page cache -> user buffer"},
    {"buffered_io", PARAM_BOOL, F(buffered_io), "false", 0, 1, "", "loads are buffered read()s: each, hit or miss, pays a host copy at host_copy_bw (a page-cache hit always does)"},
    {"io_chunk_bytes", PARAM_INT, F(io_chunk_bytes), "0", 0, 1e15, "bytes", "pipeline a load in chunks of this size across flash, host copy and link (0 = stages one after another)"},
    {"flash_bw", PARAM_DOUBLE, F(flash_bw), NULL, 1e5, 1e12, "bytes/s", "flash sequential read bandwidth"},
    {"flash_lat_ns", PARAM_INT, F(flash_lat_ns), NULL, 0, 1e10, "ns", "latency of one flash read request"},
    {"flash_qd", PARAM_INT, F(flash_qd), "1", 1, 1024, "", "flash reads served in parallel"},
    {"flash_read_bytes", PARAM_INT, F(flash_read_bytes), "0", 0, 1e12, "bytes", "largest read request; a load is split into such reads (0 = one read per load)"},
    {"io_overhead_ns", PARAM_INT, F(io_overhead_ns), "0", 0, 1e12, "ns", "software cost per expert-level load"},
    {"link_bw", PARAM_DOUBLE, F(link_bw), "0", 0, 1e13, "bytes/s", "host->accelerator link bandwidth (ignored when unified)"},
    {"link_lat_ns", PARAM_INT, F(link_lat_ns), "0", 0, 1e10, "ns", "host->accelerator latency per transfer"},
};
#undef F

const param_table device_params = {"device", "device", defs, sizeof defs / sizeof defs[0]};

#define BLAME(...) PARAM_BLAME(&device_params, o, w, __VA_ARGS__)

/* 1: key was given in the profile or by an override (not a default) */
static int device_given(const param_origin *o, const char *key)
{
    const param_def *d = param_find(&device_params, key);
    if (!o || !d) return 0;
    size_t i = (size_t)(d - device_params.defs);
    return o->via[i] || o->line[i] > 0;
}

int device_check(const device *d, const param_origin *o)
{
    char w[PARAM_PATH_MAX + 64];
    const char *k;
    long long host = d->host_mem_bytes, pc = d->page_cache_bytes, mem = d->mem_bytes;
    if (!d->unified && d->link_bw <= 0) {
        if (!strcmp(BLAME("link_bw", "unified"), "link_bw"))
            D2_ERROR(D2_ERANGE, "%s: must be > 0 for a discrete accelerator (or set unified = true)", w);
        D2_ERROR(D2_ERANGE, "%s: false (a discrete accelerator) needs link_bw > 0", w);
    }
    if (d->page_cache_bytes > d->host_mem_bytes) {
        if (!strcmp(BLAME("page_cache_bytes", "host_mem_bytes"), "page_cache_bytes"))
            D2_ERROR(D2_ERANGE, "%s: %lld is larger than host_mem_bytes (%lld)", w, pc, host);
        D2_ERROR(D2_ERANGE, "%s: %lld is smaller than page_cache_bytes (%lld)", w, host, pc);
    }
    /* The OS's, the serving process's and the pinned buffers' shares are
     * parts of host DRAM: one given (in the profile or by --set) cannot be
     * larger than it, and when page_cache_auto subtracts them all from it,
     * together they cannot be either.  An unset one is a default used only
     * by page_cache_auto, so a small host without it is not refused. */
    static const char *const part[] = {"host_os_bytes", "host_process_bytes", "host_pinned_bytes"};
    const int64_t pv[] = {d->host_os_bytes, d->host_process_bytes, d->host_pinned_bytes};
    for (int i = 0; i < 3; i++) {
        if (pv[i] <= d->host_mem_bytes || !(d->page_cache_auto || device_given(o, part[i]))) continue;
        if (!strcmp(BLAME(part[i], "host_mem_bytes"), part[i]))
            D2_ERROR(D2_ERANGE, "%s: %lld is larger than host_mem_bytes (%lld)", w, (long long)pv[i], host);
        D2_ERROR(D2_ERANGE, "%s: %lld is smaller than %s (%lld)", w, host, part[i], (long long)pv[i]);
    }
    if (d->page_cache_auto && pv[0] + pv[1] + pv[2] > d->host_mem_bytes) {
        BLAME("host_os_bytes", "host_process_bytes", "host_pinned_bytes", "host_mem_bytes", "page_cache_auto");
        D2_ERROR(D2_ERANGE, "%s: host_os_bytes + host_process_bytes + host_pinned_bytes (%lld) is larger than host_mem_bytes (%lld)",
                 w, (long long)(pv[0] + pv[1] + pv[2]), host);
    }
    if (d->unified && d->mem_bytes > d->host_mem_bytes) {
        k = BLAME("mem_bytes", "host_mem_bytes", "unified");
        if (!strcmp(k, "mem_bytes"))
            D2_ERROR(D2_ERANGE, "%s: %lld: a unified device cannot have more than host_mem_bytes (%lld)", w, mem, host);
        if (!strcmp(k, "host_mem_bytes"))
            D2_ERROR(D2_ERANGE, "%s: %lld is less than mem_bytes (%lld), which a unified device cannot have", w, host, mem);
        D2_ERROR(D2_ERANGE, "%s: true, but mem_bytes (%lld) is more than host_mem_bytes (%lld)", w, mem, host);
    }
    if (strcmp(d->page_cache_policy, "two-list") && strcmp(d->page_cache_policy, "lru")) {
        BLAME("page_cache_policy");
        D2_ERROR(D2_ERANGE, "%s: \"%s\" is not two-list or lru", w, d->page_cache_policy);
    }
    if (strcmp(d->kind, "datasheet") && strcmp(d->kind, "calibrated") && strcmp(d->kind, "measured")) {
        BLAME("kind");
        D2_ERROR(D2_ERANGE, "%s: \"%s\" is not datasheet, calibrated or measured", w, d->kind);
    }
    return D2_OK;
}
#undef BLAME

static int check_any(const void *d, const param_origin *o) { return device_check(d, o); }
int device_load(device *d, const char *name_or_path)
{
    param_origin o; /* as param_profile_load, through the memo of files read */
    D2_TRY(device_read(d, name_or_path, &o));
    return check_any(d, &o);
}
int device_read(device *d, const char *name_or_path, param_origin *o) { return param_profile_read_memo(&device_params, name_or_path, d, sizeof *d, o); }

int64_t device_page_cache_bytes(const device *d, int64_t accel_bytes)
{
    if (!d->page_cache_auto) return d->page_cache_bytes;
    int64_t c = d->host_mem_bytes - d->host_os_bytes - d->host_process_bytes - d->host_pinned_bytes;
    if (d->unified) c -= accel_bytes;
    return c > 0 ? c : 0;
}
