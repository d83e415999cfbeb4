/* mwq_int.h - private header of the MWQ quantizer module (mwq.c: base fit,
 * residual levels, the rtn mode and the mode table; gptq.c: the gptq mode and
 * the float GEMM it runs on), in SQLite's btreeInt.h habit: the two files are
 * one module and share these declarations; nothing outside src/quant/mwq.c,
 * gptq.c and qerr.c (the GEMM) includes it.  Users call mwq_matrix_quantize. */
#ifndef D2_QUANT_MWQ_INT_H
#define D2_QUANT_MWQ_INT_H

#include <stdint.h>
#include "quant/mwq.h"

/* Fill m (shape and levels set, chunks zeroed) from w with calibration
 * activations X (T x cols, one row per token). */
int gptq_quantize(mwq_matrix *m, const float *w, const float *X, int64_t T, const mwq_config *c, int threads);

/* C[M x N] += alpha * A[M x K] * B[K x N]; row-major with leading dims.
 * AVX2+FMA when available, else scalar. */
int gptq_gemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
              float *C, int64_t ldc);

/* mwq.c: quantize whole groups of columns [c0, c1) of every row of w
 * (leading dimension cols) with per-column fit weights hdiag (NULL = 1);
 * comp_what (rows x (c1-c0), may be NULL) receives W at level comp_level.
 * Rows are split among `threads` workers (core/par.h); every row is fitted
 * by the same code whatever the split, so the bytes do not depend on it. */
int mwq_quantize_columns(mwq_matrix *m, const float *w, int64_t c0, int64_t c1, const float *hdiag, const mwq_config *c,
                         int comp_level, float *comp_what, int threads);

/* The quantization modes, one row each (mwq.c); mwq.mode names a row. */
typedef struct mwq_mode {
    const char *name;
    int needs_calib;    /* 1: calibration activations required (and checked for NaN/Inf first) */
    int block_columns;  /* 1: mwq.gptq_block must be a multiple of the group */
    /* fill m (shape and levels set, chunks zeroed) from w; X: T x cols or NULL;
     * threads: workers for the row-parallel parts (identical bytes for any) */
    int (*quantize)(mwq_matrix *m, const float *w, const float *X, int64_t T, const mwq_config *c, int threads);
} mwq_mode;
/* The row named `name`, or NULL. */
const mwq_mode *mwq_mode_find(const char *name);

#endif
