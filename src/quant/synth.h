/* synth.h - synthetic expert weight matrices for when no real checkpoint is
 * at hand (the reproduction's error table, tests): Student-t entries, whose
 * heavy tails resemble real LLM FFN weights, with every k-th input column
 * scaled up (the outlier channels of real models).  Seeded GSL, so the same
 * parameters give the same bytes.  Also a plain .npy (float32) writer. */
#ifndef D2_QUANT_SYNTH_H
#define D2_QUANT_SYNTH_H

#include <stdint.h>

typedef struct synth_params {
    int64_t rows, cols;    /* matrix shape (rows = outputs) */
    double nu;             /* Student-t degrees of freedom (3: heavy tails) */
    double scale;          /* scale of the t entries */
    int64_t outlier_every; /* every k-th input column is an outlier (0 = none) */
    double outlier_gain;   /* factor of the outlier columns */
    uint64_t seed;
} synth_params;

int synth_heavy_tailed(const synth_params *p, float **out);
/* Write rows x cols float32, C order, NumPy format 1.0; written to a temp
 * file and renamed, so a crash leaves no half file. */
int synth_npy_write(const char *path, const float *w, int64_t rows, int64_t cols);

#endif
