/* synth.c - seeded heavy-tailed synthetic weights and a .npy writer. */
#include "quant/synth.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/rng.h"

#include <errno.h>
#include <gsl/gsl_randist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int synth_heavy_tailed(const synth_params *p, float **out)
{
    *out = NULL;
    if (p->rows < 1 || p->cols < 1 || p->rows > (1LL << 20) || p->cols > (1LL << 20))
        D2_ERROR(D2_ERANGE, "synthetic matrix %lld x %lld: each side must be 1..2^20", (long long)p->rows, (long long)p->cols);
    if (!(p->nu > 0) || !(p->scale > 0)) D2_ERROR(D2_ERANGE, "synthetic matrix: nu and scale must be > 0");
    float *w = malloc((size_t)(p->rows * p->cols) * sizeof *w);
    if (!w) D2_ERROR(D2_ENOMEM, "out of memory (%lld x %lld floats)", (long long)p->rows, (long long)p->cols);
    gsl_rng *r = rng_new(p->seed, 0x5e17);
    if (!r) { free(w); D2_ERROR(D2_ENOMEM, "out of memory"); }
    for (int64_t i = 0; i < p->rows; i++)
        for (int64_t j = 0; j < p->cols; j++) {
            double v = p->scale * gsl_ran_tdist(r, p->nu);
            if (p->outlier_every > 0 && j % p->outlier_every == 0) v *= p->outlier_gain;
            w[i * p->cols + j] = (float)v;
        }
    gsl_rng_free(r);
    *out = w;
    return D2_OK;
}

int synth_npy_write(const char *path, const float *w, int64_t rows, int64_t cols)
{
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     (long long)rows, (long long)cols);
    /* magic(6) + version(2) + header length(2) + header, padded with spaces
     * and a final newline to a multiple of 64 bytes */
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    fileio_out *o; /* the path must be a regular file or new; written through path.tmp */
    FILE *f;
    D2_TRY(fileio_out_open(path, &o, &f));
    unsigned short hl = (unsigned short)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(w, sizeof *w, (size_t)(rows * cols), f) == (size_t)(rows * cols);
    if (!ok) {
        int e = errno;
        fileio_out_abort(o);
        D2_ERROR(D2_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return fileio_out_commit(o);
}
