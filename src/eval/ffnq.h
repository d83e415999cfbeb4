/* ffnq.h - a model's FFN weights (w1, w2, w3 of every layer) under one
 * quantization method, at every bit-width of a preset: MWQ's nested levels
 * (decoded by quant/kern.h's kernels), the rtn-int baseline (one independent
 * INT-b copy per bit-width) or the msb-slice baseline (INT-b sliced from one
 * INT-8 code).  Held dequantized in FP32, with each level's bits per weight
 * and relative weight error.  Methods are rows of a table.  Attention,
 * embedding and norm weights are never quantized here. */
#ifndef D2_EVAL_FFNQ_H
#define D2_EVAL_FFNQ_H

#include <stdint.h>
#include "eval/llm.h"
#include "quant/mwq.h"

typedef struct ffnq_set ffnq_set;

typedef struct ffnq_method {
    const char *name;    /* "mwq", "rtn-int", "msb-slice" */
    const char *summary;
    const char *storage; /* "nested" (one container, level k reads levels 1..k) or "separate" */
    /* fills levels[k] (dequantized, rows*cols) and level_bpw[k] for k < K;
     * a method with a kernel format hands its matrix back in *kern (else NULL) */
    int (*build)(const float *w, int64_t rows, int64_t cols, const mwq_config *c, float **levels, double *level_bpw,
                 mwq_matrix **kern);
} ffnq_method;

const ffnq_method *ffnq_method_find(const char *name);
const ffnq_method *const *ffnq_method_list(void);

/* Quantize every FFN matrix of m with `method` at the bit-widths of c
 * (b1 .. b1 + K - 1); mwq uses c as given (rtn mode: gptq needs calibration
 * activations, which this module does not collect). */
int ffnq_set_build(const llm_model *m, const ffnq_method *method, const mwq_config *c, ffnq_set **out);
void ffnq_set_free(ffnq_set *s);
int ffnq_levels(const ffnq_set *s);
int ffnq_level_bits(const ffnq_set *s, int level);      /* nominal bits of level 1..K */
/* Bits per weight a token at `level` reads (scales and zeros included):
 * nested = levels 1..k of the container, separate = the one INT-b copy. */
double ffnq_level_bpw(const ffnq_set *s, int level);
/* Bits per weight stored for levels 1..k to be servable (nested: the same
 * as read; separate: the sum of the copies). */
double ffnq_stored_bpw(const ffnq_set *s, int level);
/* ||W - What||_F / ||W||_F over all FFN matrices together, at `level`. */
double ffnq_level_rel_err(const ffnq_set *s, int level);
/* The kernels' view (quant/kern.h) of a matrix, levels 1..K, for methods
 * stored in the MWQ container; D2_ENOTFOUND for the others. */
int ffnq_kern(const ffnq_set *s, int64_t layer, int which, kern_mat *out);
/* Dequantized matrix (layout as llm_model_ffn), level 1..K. */
const float *ffnq_weight(const ffnq_set *s, int64_t layer, int which, int level);

#endif
