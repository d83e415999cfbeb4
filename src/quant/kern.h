/* kern.h - the MWQ level-chunk layout and the kernels that read it: dequantize
 * a row at level k, and dot / mat-vec products at level k, incremental across
 * levels (level k adds a_k * (sign plane . x) to level k-1's result).  A scalar
 * reference and an AVX2 path chosen at run time.  Nothing here reads files
 * (mwqfile.h does) or fits weights (mwq.h does).
 *
 * Chunk of level k of a rows x cols tensor, group g along each row,
 * G = ceil(cols/g) groups per row (the last may be short), RB = ceil(cols/8):
 *   scales  rows*G  FP16 (little-endian)  s (level 1) or a_k (level k > 1)
 *   zeros   rows*G  FP16, level 1 only     z, in code units
 *   planes  rows * P * RB bytes, P = b1 for level 1 and 1 for k > 1;
 *           row r, plane p at (r*P + p)*RB; weight c is bit (c%8) of byte c/8.
 * Level 1 code Q = sum_p 2^p * bit_p; W1 = (Q - z)*s.  Level k: bit 1 means
 * +1, bit 0 means -1; W_k = W_{k-1} + a_k * (+-1).  Floats are computed in
 * exactly this order by every path (quantizer, dequant, tests). */
#ifndef D2_QUANT_KERN_H
#define D2_QUANT_KERN_H

#include <stddef.h>
#include <stdint.h>

#define KERN_MAX_LEVELS 8   /* b1 + K - 1 <= 8 and b1 >= 1 */

typedef struct kern_shape {
    int64_t rows, cols; /* weights: rows = outputs, cols = inputs */
    int64_t group;      /* weights per group along a row */
    int base_bits;      /* b1, bits of the level-1 code, 1..8 */
} kern_shape;

int64_t kern_groups_per_row(const kern_shape *s);
int64_t kern_row_bytes(const kern_shape *s);           /* RB: bytes of one row plane */
int kern_level_planes(const kern_shape *s, int level); /* P */
/* Byte size and section offsets of the chunk of `level` (1-based). */
int64_t kern_chunk_bytes(const kern_shape *s, int level);
int64_t kern_chunk_zeros_offset(const kern_shape *s);  /* level 1 */
int64_t kern_chunk_planes_offset(const kern_shape *s, int level);

/* A tensor's levels 1..levels, each a chunk in memory (not owned). */
typedef struct kern_mat {
    kern_shape shape;
    int levels;                              /* chunks available */
    const uint8_t *chunk[KERN_MAX_LEVELS];   /* chunk[k-1] = level k */
} kern_mat;

/* Dequantize row `row` at level k (1 <= k <= m->levels) into out[cols]. */
void kern_row_dequant(const kern_mat *m, int level, int64_t row, float *out);
/* Dequantize the whole matrix at level k into out[rows*cols]. */
void kern_mat_dequant(const kern_mat *m, int level, float *out);

/* ---- activations: one token's input vector, quantized for the kernels ---- */
/* x is quantized to int8 per group of the weight's group size (scale
 * max|x|/127), as fast CPU kernels do; the products computed are exactly
 * W_k . xhat with xhat the dequantized activations (kern_act_dequant). */
typedef struct kern_act kern_act;
int kern_act_new(int64_t cols, int64_t group, kern_act **out);
void kern_act_free(kern_act *a);
/* Quantize x[cols]; D2_EINVAL naming the index of the first NaN/Inf. */
int kern_act_set(kern_act *a, const float *x);
void kern_act_dequant(const kern_act *a, float *xhat);

typedef enum kern_impl { KERN_AUTO = 0, KERN_SCALAR, KERN_AVX2 } kern_impl;
/* 1 when this CPU runs the AVX2+FMA+F16C path. */
int kern_have_avx2(void);
/* Force a path (tests, bench); KERN_AUTO = best available.  Returns the
 * path that will be used. */
kern_impl kern_impl_set(kern_impl impl);
const char *kern_impl_name(kern_impl impl);

/* Sum over levels lo..hi (1 <= lo <= hi <= m->levels) of level k's
 * contribution to row `row` . xhat: level 1 gives W1.xhat, level k > 1 gives
 * a_k.(B_k . xhat).  So dot(1..k) = dot(1..k-1) + dot(k..k). */
float kern_dot(const kern_mat *m, int64_t row, int lo, int hi, const kern_act *a);
/* y[r] += kern_dot(m, r, lo, hi, a) for every row: a token's mat-vec,
 * incremental across levels (call with lo = k to add level k to level k-1's). */
void kern_matvec(const kern_mat *m, int lo, int hi, const kern_act *a, float *y);
/* T tokens: Y[t*rows + r] += kern_dot(m, r, lo, hi, acts[t]); weights stream
 * once, each row is reused from cache for all tokens. */
void kern_matmul(const kern_mat *m, int lo, int hi, kern_act *const *acts, int64_t T, float *Y);

/* Reference in double with float activations x (no int8): y[r] = W_hi . x
 * minus W_{lo-1} . x (i.e. the same incremental contribution), via dequant. */
int kern_matvec_ref(const kern_mat *m, int lo, int hi, const float *x, double *y);

#endif
