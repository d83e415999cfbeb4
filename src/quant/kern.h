/* kern.h - the MWQ level-chunk layout and the kernels that read it: dequantize
 * a row at level k, and dot / mat-vec products at level k, incremental across
 * levels (level k adds a_k * (sign plane . x) to level k-1's result).  A scalar
 * reference and an AVX2 path chosen at run time.  Nothing here reads files
 * (mwqfile.h does) or fits weights (mwq.h does); the quantizer writes codes
 * through kern_pack_codes / kern_pack_bits, so this file alone owns the layout.
 *
 * Chunk of level k of a rows x cols tensor, group g along each row,
 * G = ceil(cols/g) groups per row (the last may be short):
 *   scales  rows*G  FP16 (little-endian)  s (level 1) or a_k (level k > 1)
 *   zeros   rows*G  FP16, level 1 only     z, in code units
 *   codes   rows * RBk bytes, row r at r*RBk.  A row holds the level's slices
 *           one after another.  Level 1's b1-bit code Q is split into slices
 *           of width 4, 2 and 1 bits, greedily and low bits first (b1 = 2: one
 *           2-bit slice; 3: 2+1; 5: 4+1; 7: 4+2+1; 8: 4+4); level k > 1 is
 *           one 1-bit slice, the sign plane (bit 1 = +1, bit 0 = -1).
 * A w-bit slice of a row takes ceil(cols*w/8) bytes in blocks of 32 bytes,
 * each holding B = 256/w weights; the last block holds the n < B remaining
 * weights in nb = ceil(n*w/8) bytes (nb = 32 for full blocks).  The weight at
 * offset o of its block is in byte o % nb at bits w*(o/nb) .. w*(o/nb)+w-1.
 * So in a full block byte i holds weights i, i+32, i+64, ...: shifting the
 * 32-byte block right by w*u and masking w bits gives the codes of the 32
 * consecutive weights 32u .. 32u+31, one shift, and, multiply-add per 32
 * weights whatever w (the layout of llama.cpp's q2_K/q4_K quants, applied to
 * every width).  Level 1: Q = sum over slices of code << (slice's low bit),
 * W1 = (Q - z)*s; level k: W_k = W_{k-1} + a_k * (+-1).  Floats are computed
 * in exactly this order by every path (quantizer, dequant, tests). */
#ifndef D2_QUANT_KERN_H
#define D2_QUANT_KERN_H

#include <stddef.h>
#include <stdint.h>

#define KERN_MAX_LEVELS 8   /* b1 + K - 1 <= 8 and b1 >= 1 */
#define KERN_MAX_SLICES 3   /* b1 = 7: 4 + 2 + 1 */

typedef struct kern_shape {
    int64_t rows, cols; /* weights: rows = outputs, cols = inputs */
    int64_t group;      /* weights per group along a row, 1..2^20 (mwq.group's
                           range; mwqfile refuses larger; the kernels' int16 and
                           int32 sums rely on it) */
    int base_bits;      /* b1, bits of the level-1 code, 1..8 */
} kern_shape;

int64_t kern_groups_per_row(const kern_shape *s);
/* Slices of `level`: widths w[i] (bits) and low code bit o[i]; returns the count. */
int kern_level_slices(const kern_shape *s, int level, int w[KERN_MAX_SLICES], int o[KERN_MAX_SLICES]);
int64_t kern_slice_bytes(int64_t cols, int w);               /* ceil(cols*w/8) */
int64_t kern_level_row_bytes(const kern_shape *s, int level); /* RBk: all slices of one row */
/* Byte size and section offsets of the chunk of `level` (1-based). */
int64_t kern_chunk_bytes(const kern_shape *s, int level);
int64_t kern_chunk_zeros_offset(const kern_shape *s);  /* level 1 */
int64_t kern_chunk_planes_offset(const kern_shape *s, int level); /* start of the codes */

/* Where weight c of a w-bit slice lives (the rule above). */
static inline void kern_slot(int64_t cols, int w, int64_t c, int64_t *byte, int *shift)
{
    const int64_t B = 256 / w, blk = c / B, o = c - blk * B, left = cols - blk * B;
    const int64_t nb = left >= B ? 32 : (left * w + 7) / 8;
    *byte = blk * 32 + o % nb;
    *shift = w * (int)(o / nb);
}

/* Write codes into a zeroed slice row (bits are ORed in): weight c0 + i gets
 * (q[i] >> o) & (2^w - 1), i < n. */
void kern_pack_codes(uint8_t *slice, int64_t cols, int w, int o, int64_t c0, const uint8_t *q, int64_t n);
/* Same for a 1-bit slice from sequential bits: weight c0 + i gets bit i % 8
 * of bits[i / 8]. */
void kern_pack_bits(uint8_t *slice, int64_t cols, int64_t c0, const uint8_t *bits, int64_t n);

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
