/* gptq.h - internal to src/quant: the gptq mode of MWQ (activation-aware
 * fit + GPTQ-style block-level error compensation) and the float GEMM it
 * runs on.  Users call mwq_matrix_quantize with mode "gptq". */
#ifndef D2_QUANT_GPTQ_H
#define D2_QUANT_GPTQ_H

#include <stdint.h>
#include "quant/mwq.h"

/* Fill m (shape and levels set, chunks zeroed) from w with calibration
 * activations X (T x cols, one row per token). */
int gptq_quantize(mwq_matrix *m, const float *w, const float *X, int64_t T, const mwq_config *c);

/* C[M x N] += alpha * A[M x K] * B[K x N]; row-major with leading dims.
 * AVX2+FMA when available, else scalar. */
int gptq_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc);

/* mwq.c: quantize whole groups of columns [c0, c1) of every row of w
 * (leading dimension cols) with per-column fit weights hdiag (NULL = 1);
 * comp_what (rows x (c1-c0), may be NULL) receives W at level comp_level. */
int mwq_quantize_columns(mwq_matrix *m, const float *w, int64_t c0, int64_t c1, const float *hdiag, const mwq_config *c,
                         int comp_level, float *comp_what);

#endif
