/* accuracy.h - the accuracy estimate est_ppl: from a run's mix of
 * (bit-width, gate weight) expert uses to an estimated WikiText2 perplexity.
 *
 * Model (assumptions stated, each a choice the reader can change):
 *  1. Quality depends on expert-weight error only: non-expert weights are
 *     held at the reference precision in every method.
 *  2. The relative weight error e of a stored bit-width comes from the real
 *     quantizer's per-level error table (quant_errors: rel_err, averaged over
 *     tensors weighted by their size): method "rtn-int" for uniform INT-b
 *     copies, "mwq-*" levels for nested MWQ bit-widths.
 *  3. The public bit-width/perplexity curve (a CSV in experiments/accuracy/) is
 *     mapped onto error: the points (e_rtn(b), PPL(b)) plus (0, PPL(16)),
 *     joined by monotone (Steffen) interpolation; beyond the largest error,
 *     linear extrapolation of the last segment.
 *  4. A token's MoE output is the gate-weighted sum of its experts; with
 *     independent errors its squared error adds as sum w^2 e^2, so a run's
 *     effective error is e_eff = sqrt(sum w^2 e^2 / sum w^2) over all uses.
 *     Uniform-bit runs therefore land exactly on the curve.
 * Nothing here runs the simulator or the quantizer. */
#ifndef D2_RESULTS_ACCURACY_H
#define D2_RESULTS_ACCURACY_H

#include <stddef.h>
#include "results/db.h"

#define ACC_MAX_BITS 16

typedef struct accuracy_model accuracy_model;

/* curve_csv: "bits,ppl" lines ('#' comments); errors come from the store's
 * quant_errors rows (the most recent quantize run that has each method). */
int accuracy_model_load(const char *curve_csv, db *d, accuracy_model **out);
/* The same with the shipped curve when curve_csv is NULL:
 * <source tree>/experiments/accuracy/llama-moe-wikitext2.csv. */
int accuracy_model_load_default(const char *curve_csv, db *d, accuracy_model **out);
void accuracy_model_free(accuracy_model *a);

/* Relative weight error of `bits` under storage format `format`
 * ("nested": MWQ levels; "nested-k": the k-quant nested presets v1k / v2k,
 * method "kq-mwq"; "separate"/"uniform": independent INT-b copies);
 * NaN when the table lacks it. */
double accuracy_bits_error(const accuracy_model *a, const char *format, int bits);
/* PPL at a relative error (the fitted curve). */
double accuracy_ppl_at_error(const accuracy_model *a, double e);
/* PPL of a run: use_w2[b] = sum of squared gate weights of the uses at b
 * bits (b = 1..ACC_MAX_BITS; index 0 unused).  NaN when an error is unknown. */
double accuracy_estimate(const accuracy_model *a, const char *format, const double use_w2[ACC_MAX_BITS + 1]);
/* The curve's PPL at `bits` (for tests). */
double accuracy_curve_ppl(const accuracy_model *a, int bits);
/* est_ppl for every simulated run of d that has its per-bit-width gate
 * weights (metrics gate2_bits_<b>) but no est_ppl, from a (normally loaded
 * from d itself), exactly as a sweep into d computes it (runner.c): what
 * `d2moe merge` does after merging shards swept into stores without the
 * error table.  *filled: runs given a value (a run whose estimate is still
 * unknown keeps none).  One transaction. */
int accuracy_fill_missing(db *d, const accuracy_model *a, long *filled);

#endif
