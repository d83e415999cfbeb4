/* rtn.c - rtn-int and msb-slice baselines (see rtn.h). */
#include "config.h"
#include "quant/rtn.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>

/* Each group of each row fitted at P bits (MWQ's base fit, unweighted) and
 * dequantized at each bits[b] <= P by keeping the top bits[b] bits of its
 * code, rounded and clamped: outs[b]. */
static int group_slices(const float *w, int64_t rows, int64_t cols, int P, const int *bits, int nb, const mwq_config *c,
                        float **outs)
{
    int64_t g = c->group;
    uint8_t *q = malloc((size_t)g);
    if (!q) D2_ERROR(D2_ENOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += g) {
            int64_t n = c0 + g <= cols ? g : cols - c0;
            mwq_base_fit f;
            int rc = mwq_base_fit_group(w + r * cols + c0, NULL, n, P, c, &f, q);
            if (rc) { free(q); return rc; }
            for (int b = 0; b < nb; b++) {
                float step = (float)(1 << (P - bits[b])), top = (float)((1 << bits[b]) - 1);
                for (int64_t i = 0; i < n; i++) {
                    float s = step > 1 ? nearbyintf((float)q[i] / step) : (float)q[i]; /* a whole code: no rounding */
                    s = s > top ? top : s;
                    outs[b][r * cols + c0 + i] = (s * step - f.z) * f.s;
                }
            }
        }
    free(q);
    return D2_OK;
}

/* the one slice that keeps every bit: (q - z) * s of the INT-bits fit */
int rtn_int_dequant(const float *w, int64_t rows, int64_t cols, int bits, const mwq_config *c, float *out)
{
    return group_slices(w, rows, cols, bits, &bits, 1, c, &out);
}

int rtn_msb_dequant(const float *w, int64_t rows, int64_t cols, const int *bits, int nb, const mwq_config *c, float **outs)
{
    return group_slices(w, rows, cols, RTN_MSB_PARENT_BITS, bits, nb, c, outs);
}

double rtn_bpw(int64_t rows, int64_t cols, int bits, int64_t group)
{
    int64_t bytes = (rows * cols * bits + 7) / 8 + rows * ((cols + group - 1) / group) * 4;
    return 8.0 * (double)bytes / (double)(rows * cols);
}
