/* qerr.c - error metrics (see qerr.h).  Sums in double; the output error uses
 * the float GEMM of gptq.c on (W - What) and W. */
#include "config.h"
#include "quant/qerr.h"
#include "quant/mwq_int.h"
#include "core/err.h"

#include <math.h>
#include <stdlib.h>

static int out_norm2(const float *A, int64_t rows, int64_t cols, const float *Xt, int64_t T, double *n2)
{
    float *Y = calloc((size_t)(rows * T), sizeof *Y);
    if (!Y) D2_ERROR(D2_ENOMEM, "out of memory");
    int rc = gptq_gemm(rows, T, cols, 1.0f, A, cols, Xt, T, Y, T);
    double s = 0;
    for (int64_t i = 0; i < rows * T; i++) s += (double)Y[i] * Y[i];
    free(Y);
    *n2 = s;
    return rc;
}

int qerr_eval(const float *w, const float *what, int64_t rows, int64_t cols, const float *X, int64_t T, qerr_row *out)
{
    double sw = 0, se = 0;
    int64_t n = rows * cols;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)w[i] - what[i];
        sw += (double)w[i] * w[i];
        se += d * d;
    }
    out->mse = se / (double)n;
    out->snr_db = se > 0 ? 10.0 * log10(sw / se) : INFINITY;
    out->rel_err = sw > 0 ? sqrt(se / sw) : (se > 0 ? INFINITY : 0.0);
    out->out_rel_err = NAN;
    if (X && T > 0) {
        float *Xt = malloc((size_t)(cols * T) * sizeof *Xt), *E = malloc((size_t)n * sizeof *E);
        if (!Xt || !E) { free(Xt); free(E); D2_ERROR(D2_ENOMEM, "out of memory"); }
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < cols; c++) Xt[c * T + t] = X[t * cols + c];
        for (int64_t i = 0; i < n; i++) E[i] = w[i] - what[i];
        double nw, ne;
        int rc = out_norm2(w, rows, cols, Xt, T, &nw);
        if (!rc) rc = out_norm2(E, rows, cols, Xt, T, &ne);
        free(Xt);
        free(E);
        if (rc) return rc;
        out->out_rel_err = nw > 0 ? sqrt(ne / nw) : (ne > 0 ? INFINITY : 0.0);
    }
    return D2_OK;
}
