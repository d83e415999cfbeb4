/* mwq.h - MWQ, the matryoshka weight quantizer (PAPER.md section 2): a
 * per-group asymmetric base at b1 bits, then K-1 binary residual levels (sign
 * plane + per-group scale).  Modes: rtn (fit on weight error) and gptq
 * (activation-aware fit plus block-level error compensation).  Produces the
 * level chunks of kern.h in memory; writing files is mwqfile.h's job. */
#ifndef D2_QUANT_MWQ_H
#define D2_QUANT_MWQ_H

#include <stdint.h>
#include "core/param.h"
#include "quant/kern.h"

typedef struct mwq_config {
    int64_t base_bits;     /* b1, bits of the level-1 code (2..8) */
    int64_t levels;        /* K, levels including the base; b1 + K - 1 <= 8 */
    int64_t group;         /* g, weights per group along a row */
    char mode[PARAM_STR_MAX]; /* "rtn" or "gptq" */
    int64_t search_steps;  /* T: base scale candidates (nmax + t*delta)/range, t = -T..T */
    double search_delta;   /* code units between candidates */
    char search_objective[PARAM_STR_MAX]; /* "all", "base" or "top": error the base fit minimises */
    double gptq_damp;      /* lambda = damp * mean(diag H), added to diag(H) */
    int64_t gptq_block;    /* gamma, columns per compensation block (multiple of g) */
    int64_t gptq_comp_level; /* level whose error is propagated; 0 = top level K */
} mwq_config;

extern const param_table mwq_params;

/* Defaults (V1: b1 = 2, K = 3, g = 128, rtn). */
void mwq_config_default(mwq_config *c);
/* "v1" (b1 = 2, K = 3) or "v2" (b1 = 5, K = 4); both g = 128. */
int mwq_config_preset(mwq_config *c, const char *name);
int mwq_config_check(const mwq_config *c);

/* A quantized matrix: its level chunks in memory (owned). */
typedef struct mwq_matrix {
    kern_shape shape;
    int levels;
    uint8_t *chunk[KERN_MAX_LEVELS];        /* kern.h layout */
    int64_t chunk_bytes[KERN_MAX_LEVELS];
} mwq_matrix;

/* Empty matrix with zeroed chunks (used by the quantizer and the reader). */
int mwq_matrix_new(const kern_shape *shape, int levels, mwq_matrix **out);
void mwq_matrix_free(mwq_matrix *m);
/* A kernel view of levels 1..k (k <= m->levels). */
void mwq_matrix_view(const mwq_matrix *m, int k, kern_mat *out);

/* Quantize w[rows*cols] (row-major; rows = outputs, groups along cols).
 * calib: T x cols activations (one row per token), required by gptq mode,
 * ignored by rtn.  NaN/Inf in w or calib: D2_EINVAL naming (row, col). */
int mwq_matrix_quantize(const float *w, int64_t rows, int64_t cols, const mwq_config *c,
                        const float *calib, int64_t T, mwq_matrix **out);
/* The same on `threads` workers (1..PAR_MAX_THREADS, core/par.h), rows split
 * among them: the output bytes, and the error of a failing run, are the same
 * for every thread count.  rtn mode is parallel throughout; gptq mode only in
 * its per-block fits (gptq.c).  Scratch is allocated per worker before any
 * thread starts (D2_ENOMEM); a thread that cannot start leaves its rows to
 * the others. */
int mwq_matrix_quantize_threads(const float *w, int64_t rows, int64_t cols, const mwq_config *c, const float *calib,
                                int64_t T, int threads, mwq_matrix **out);

/* The base fit alone (also the "rtn-int" baseline): per group asymmetric
 * b-bit codes with searched scale/zero, FP16.  Used by rtn.c. */
typedef struct mwq_base_fit {
    float s, z;      /* FP16-rounded scale and zero (code units) */
    uint16_t s16, z16;
} mwq_base_fit;
/* Fit x[0..n) (weights h[i] >= 0, NULL = all 1) to `bits`; codes into q[n]. */
int mwq_base_fit_group(const float *x, const float *h, int64_t n, int bits, const mwq_config *c,
                       mwq_base_fit *fit, uint8_t *q);

#endif
