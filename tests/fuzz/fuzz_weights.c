/* fuzz_weights.c - one weight format (FUZZ_WFORMAT: WEIGHTS_LLAMA2C,
 * WEIGHTS_SAFETENSORS or WEIGHTS_NPY): open, then read every tensor of at
 * most 2^20 elements. */
#include "fuzz_common.h"
#include "quant/weights.h"

#ifndef FUZZ_WFORMAT
#define FUZZ_WFORMAT WEIGHTS_NPY
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_write(data, size, ".w");
    weights *w;
    if (weights_open(p, FUZZ_WFORMAT, &w) == 0) {
        for (size_t i = 0; i < weights_count(w); i++) {
            const weights_info *t = weights_get(w, i);
            if (t->rows * t->cols > (1 << 20)) continue;
            float *x;
            if (weights_read(w, i, &x) == 0) free(x);
        }
        weights_free(w);
    }
    unlink(p);
    return 0;
}
