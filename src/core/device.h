/* device.h - an edge device as the simulator sees it: accelerator memory and
 * compute rates, the flash -> host DRAM (page cache) -> accelerator path, and
 * per-operation software overheads.  Values come from
 * experiments/devices/<name>.ini through device_params; each number in those
 * files names its source.  Nothing here computes times: src/sim does. */
#ifndef D2_CORE_DEVICE_H
#define D2_CORE_DEVICE_H

#include <stdint.h>
#include "core/param.h"

/* Levels with their own SwiGLU rates (the calibrated kernel model, V1: K = 3). */
#define DEVICE_SWIGLU_LEVELS 3

typedef struct device {
    char name[PARAM_STR_MAX];
    char kind[PARAM_STR_MAX];   /* "datasheet", "calibrated" or "measured" */
    /* accelerator */
    int64_t mem_bytes;          /* accelerator memory, bytes */
    double mem_bw;              /* accelerator memory bandwidth, bytes/s */
    double fp16_flops;          /* peak dense FP16 throughput, FLOP/s */
    double compute_eff;         /* fraction of fp16_flops expert GEMMs reach, 0..1 */
    double mem_eff;             /* fraction of mem_bw weight streaming reaches, 0..1 */
    int64_t kernel_overhead_ns; /* fixed cost per expert-level kernel launch, ns */
    int64_t layer_overhead_ns;  /* fixed software cost per transformer layer per forward step, ns */
    double dequant_rate;        /* weights/s dequantized to FP16 (0 = costed as memory traffic) */
    double io_interference;     /* while a load is in flight, expert compute runs at 1/(1 + x)
                                   of its rate; 0 = independent queues */
    double read_interference;   /* while an expert compute runs, a load from flash runs at 1/(1 + y)
                                   of its rate; 0 = independent queues */
    double cold_weight_bw;      /* an expert compute reads its stored weights from DRAM, not from the cache
                                   its kernels were timed warm in: each unit compute adds
                                   stored bytes / cold_weight_bw, bytes/s (0 = no such cost) */
    /* The SwiGLU data flow's three kinds of work, each at its own measured
     * rate (d2moe calibrate times what d2moe execute runs; used by
     * cost_expert_swiglu_item when every rate its item needs is > 0;
     * 0 = not set: the item is costed at fp16_flops as before).  Index k-1
     * is level k of a nested (MWQ) expert. */
    double swiglu_gu_rate[DEVICE_SWIGLU_LEVELS];   /* gate and up at level k alone, weights x tokens / s */
    double swiglu_down_rate[DEVICE_SWIGLU_LEVELS]; /* down over levels 1..k in one call, weights x tokens / s
                                                      (a weight counted once, not once per level) */
    double swiglu_epilogue_rate; /* silu(gate) * up and the int8 activations for down,
                                    FFN elements x tokens / s */
    int unified;                /* accelerator shares host DRAM (no link copy) */
    /* host */
    int64_t host_mem_bytes;     /* host DRAM, bytes */
    int64_t page_cache_bytes;   /* host DRAM available to cache expert files, bytes (0 = none) */
    int page_cache_auto;        /* derive the page cache from host RAM (device_page_cache_bytes) */
    char page_cache_policy[PARAM_STR_MAX]; /* "two-list" (Linux active/inactive) or "lru" */
    int64_t host_os_bytes;      /* host DRAM the OS and other programs take, bytes */
    int64_t host_process_bytes; /* host DRAM the serving process itself takes (runtime), bytes */
    int64_t host_pinned_bytes;  /* pinned staging buffers for expert loads, bytes */
    double host_copy_bw;        /* CPU memcpy rate of a buffered read (page cache -> user buffer), bytes/s */
    int buffered_io;            /* loads are buffered read()s through the page cache (each pays a host copy) */
    int64_t io_chunk_bytes;     /* a load is pipelined in chunks of this size across flash, host copy and
                                   link (0 = the stages run one after the other) */
    /* flash */
    double flash_bw;            /* sequential read bandwidth, bytes/s */
    int64_t flash_lat_ns;       /* latency of one read request, ns */
    int64_t flash_qd;           /* reads in flight the device serves in parallel */
    int64_t flash_read_bytes;   /* largest single read request, bytes (0 = one read per load) */
    int64_t io_overhead_ns;     /* software cost per load (allocation, sync), ns */
    /* host -> accelerator link */
    double link_bw;             /* bytes/s (ignored when unified) */
    int64_t link_lat_ns;        /* per transfer, ns */
} device;

extern const param_table device_params;

/* Load a profile, then device_check. */
int device_load(device *d, const char *name_or_path);
/* Load without device_check, o (may be NULL) getting each value's line
 * (model_read says why). */
int device_read(device *d, const char *name_or_path, param_origin *o);
/* Bytes of host DRAM the page cache can hold: page_cache_bytes, or when
 * page_cache_auto, host_mem_bytes minus the OS, the process, the pinned
 * buffers and (unified memory) what the accelerator side uses (accel_bytes:
 * non-expert weights, KV cache and the expert budget); never below 0. */
int64_t device_page_cache_bytes(const device *d, int64_t accel_bytes);
/* Cross-field checks; the message names the key it blames with its line in
 * the profile or the option that set it (o may be NULL: the key alone). */
int device_check(const device *d, const param_origin *o);

#endif
