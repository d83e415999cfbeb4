/* qerr.h - the per-level error report of a quantized matrix: weight MSE, SNR
 * (dB), relative Frobenius error, output error ||(W - What) X|| / ||W X||
 * when activations are given, and bits per weight.  Pure numbers: printing,
 * JSON and the database are the caller's (src/cli) business. */
#ifndef D2_QUANT_QERR_H
#define D2_QUANT_QERR_H

#include <stdint.h>

typedef struct qerr_row {
    char method[16];    /* mwq-rtn, mwq-gptq, rtn-int, msb-slice */
    int level;          /* 1-based */
    int bits;           /* nominal bit-width of this level */
    double mse;         /* mean (w - what)^2 */
    double snr_db;      /* 10 log10(sum w^2 / sum (w - what)^2); +inf when exact */
    double rel_err;     /* ||W - What||_F / ||W||_F */
    double out_rel_err; /* ||(W - What) X^T||_F / ||W X^T||_F; NAN without activations */
    double bpw;         /* stored bits per weight up to this level, scales and zeros included */
} qerr_row;

/* X: T x cols activations (one row per token) or NULL. */
int qerr_eval(const float *w, const float *what, int64_t rows, int64_t cols, const float *X, int64_t T, qerr_row *out);

#endif
