/* kref.h - reference kernels for the k-quant storage layouts q2_K and q4_K,
 * written in this project from the published layouts, as speed baselines
 * measured beside MWQ-K in the same run (`d2moe bench kernels`, issue 16).
 *
 * What it is not: ggml's code, ggml's file format (the bit packing of the
 * scale codes is ours), or ggml's quantizer (ours rounds each sub-block's
 * min/max; the k-quants search scales), so the errors of these matrices are
 * not the k-quants' errors and nothing reports them as such.  What matches
 * the k-quants is what sets a kernel's speed: the bytes per super-block,
 * int8 activations with per-sub-block sums, one `maddubs` per 32 weights and
 * a `madd` by the sub-block scale, the mins taken from the activation sums.
 *
 * Layouts (little-endian), a rows x cols matrix, cols % 256 == 0, one record
 * per super-block of 256 weights, row-major:
 *   q2k-layout, 84 bytes (2.625 bpw): FP16 d, FP16 dmin, 16 bytes (byte j:
 *     scale code sc_j low nibble, min code m_j high nibble; sub-block j =
 *     weights 16j..16j+15), 64 bytes of 2-bit codes (half h = 0, 1: 32
 *     bytes; byte i bits 2s..2s+1 = weight 128h + 32s + i).
 *   q4k-layout, 144 bytes (4.5 bpw): FP16 d, FP16 dmin, 12 bytes = 96 bits
 *     LSB first: 8 x 6-bit scale codes sc_j, then 8 x 6-bit min codes m_j
 *     (sub-block j = weights 32j..32j+31), 128 bytes of 4-bit codes (chunk
 *     c = 0..3: 32 bytes; byte i low nibble = weight 64c + i, high nibble =
 *     weight 64c + 32 + i).
 *   W = d sc_j q - dmin m_j. */
#ifndef D2_QUANT_KREF_H
#define D2_QUANT_KREF_H

#include "quant/kq.h"

#include <stdint.h>

#define KREF_SUPER 256

typedef enum kref_type { KREF_Q2K = 0, KREF_Q4K = 1 } kref_type;

typedef struct kref_matrix {
    kref_type type;
    int64_t rows, cols; /* cols % 256 == 0 */
    uint8_t *data;      /* owned; rows * cols / 256 records */
    int64_t bytes;      /* bytes of data */
} kref_matrix;

/* "q2k-layout" / "q4k-layout": D2_OK, or D2_EINVAL naming the choices. */
int kref_type_find(const char *name, kref_type *t);
const char *kref_type_name(kref_type t);
/* Bytes of one super-block record. */
int kref_record_bytes(kref_type t);

/* Empty matrix (zeroed records): hand-built blocks, speed runs. */
int kref_matrix_new(kref_type t, int64_t rows, int64_t cols, kref_matrix **out);
/* Per sub-block min/max rounding (min clamped to <= 0), scale and min codes
 * rounded against the super-block's FP16 d / dmin.  D2_EINVAL on cols % 256
 * or NaN/Inf weights (naming them). */
int kref_quantize(const float *w, int64_t rows, int64_t cols, kref_type t, kref_matrix **out);
void kref_matrix_free(kref_matrix *m);
void kref_row_dequant(const kref_matrix *m, int64_t row, float *out);

/* One token's activations: int8 per super-block of 256 (scale max|x|/127,
 * as kq_act) and the sums of every 16 and every 32 of them. */
typedef struct kref_act kref_act;
int kref_act_new(int64_t cols, kref_act **out);
void kref_act_free(kref_act *a);
/* D2_EINVAL on NaN/Inf (naming the index). */
int kref_act_set(kref_act *a, const float *x);
void kref_act_dequant(const kref_act *a, float *xhat);

/* row . xhat: KQ_SCALAR the reference (exact integer sums, one float
 * combination per super-block), KQ_AVX2 the vector path (the same integers,
 * float accumulation across super-blocks: equal within float rounding),
 * KQ_AUTO the AVX2 path where the CPU has it. */
float kref_dot(const kref_matrix *m, int64_t row, const kref_act *a, kq_impl impl);
/* y[r] += kref_dot(m, r, a, impl) for every row; D2_EINVAL on a width
 * mismatch. */
int kref_matvec(const kref_matrix *m, const kref_act *a, kq_impl impl, float *y);

#endif
