/* rtn.c - rtn-int and msb-slice baselines (see rtn.h). */
#include "config.h"
#include "quant/rtn.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>

int rtn_int_dequant(const float *w, int64_t rows, int64_t cols, int bits, const mwq_config *c, float *out)
{
    int64_t g = c->group;
    uint8_t *q = malloc((size_t)g);
    if (!q) D2_ERROR(D2_ENOMEM, "out of memory");
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c0 = 0; c0 < cols; c0 += g) {
            int64_t n = c0 + g <= cols ? g : cols - c0;
            mwq_base_fit f;
            int rc = mwq_base_fit_group(w + r * cols + c0, NULL, n, bits, c, &f, q);
            if (rc) { free(q); return rc; }
            for (int64_t i = 0; i < n; i++) out[r * cols + c0 + i] = ((float)q[i] - f.z) * f.s;
        }
    free(q);
    return D2_OK;
}

int rtn_msb_dequant(const float *w, int64_t rows, int64_t cols, const int *bits, int nb, const mwq_config *c, float **outs)
{
    const int P = RTN_MSB_PARENT_BITS;
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
                    float s = nearbyintf((float)q[i] / step);
                    s = s > top ? top : s;
                    outs[b][r * cols + c0 + i] = (s * step - f.z) * f.s;
                }
            }
        }
    free(q);
    return D2_OK;
}

double rtn_bpw(int64_t rows, int64_t cols, int bits, int64_t group)
{
    int64_t bytes = (rows * cols * bits + 7) / 8 + rows * ((cols + group - 1) / group) * 4;
    return 8.0 * (double)bytes / (double)(rows * cols);
}
