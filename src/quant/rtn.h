/* rtn.h - the baselines MWQ is compared with, on the same error report:
 *  - rtn-int: independent asymmetric INT-b per group for each b (what
 *    "Matryoshka-Free" stores, one copy per bit-width), with the same scale
 *    search as MWQ's base so the comparison isolates nesting;
 *  - msb-slice: one INT-8 code per group whose top r bits give INT-r, as in
 *    Matryoshka Quantization (Nair et al. 2025): S(q, r) = clamp(rint(q /
 *    2^(8-r)), 0, 2^r - 1) * 2^(8-r), dequantized with the INT-8 (s, z).
 * Both return dequantized matrices; they are not written to .mwq files. */
#ifndef D2_QUANT_RTN_H
#define D2_QUANT_RTN_H

#include <stdint.h>
#include "quant/mwq.h"

#define RTN_MSB_PARENT_BITS 8

int rtn_int_dequant(const float *w, int64_t rows, int64_t cols, int bits, const mwq_config *c, float *out);
/* nb bit-widths bits[0..nb) sliced from one INT-8 code; outs[i] rows*cols each. */
int rtn_msb_dequant(const float *w, int64_t rows, int64_t cols, const int *bits, int nb, const mwq_config *c, float **outs);
/* Storage of an asymmetric INT-b matrix with FP16 scale + zero per group
 * (model.h convention), in bits per weight. */
double rtn_bpw(int64_t rows, int64_t cols, int bits, int64_t group);

#endif
