/* ffnq.c - quantized FFN weight sets (see ffnq.h).  Each method fills one
 * dequantized FP32 copy per level of a matrix; the set owns them. */
#include "config.h"
#include "eval/ffnq.h"
#include "core/err.h"
#include "quant/kern.h"
#include "quant/rtn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ffnq_set {
    const ffnq_method *method;
    int64_t layers;
    int levels, bits[KERN_MAX_LEVELS];
    double bpw[KERN_MAX_LEVELS], stored[KERN_MAX_LEVELS], rel[KERN_MAX_LEVELS];
    float **w; /* [(layer*3 + which)*levels + level-1] */
    mwq_matrix **kern; /* [layer*3 + which], NULL entries for methods without a kernel format */
};

/* MWQ: quantize once, decode levels 1..K with the kernels' dequant */
static int build_mwq(const float *w, int64_t rows, int64_t cols, const mwq_config *c, float **lv, double *bpw, mwq_matrix **kern)
{
    mwq_matrix *m;
    D2_TRY(mwq_matrix_quantize(w, rows, cols, c, NULL, 0, &m));
    kern_mat v;
    mwq_matrix_view(m, m->levels, &v);
    double bytes = 0;
    for (int k = 1; k <= m->levels; k++) {
        kern_mat_dequant(&v, k, lv[k - 1]);
        bytes += (double)m->chunk_bytes[k - 1];
        bpw[k - 1] = 8.0 * bytes / (double)(rows * cols);
    }
    *kern = m;
    return D2_OK;
}

static int build_rtn(const float *w, int64_t rows, int64_t cols, const mwq_config *c, float **lv, double *bpw, mwq_matrix **kern)
{
    *kern = NULL;
    for (int k = 0; k < (int)c->levels; k++) {
        const int bits = (int)c->base_bits + k;
        D2_TRY(rtn_int_dequant(w, rows, cols, bits, c, lv[k]));
        bpw[k] = rtn_bpw(rows, cols, bits, c->group);
    }
    return D2_OK;
}

static int build_msb(const float *w, int64_t rows, int64_t cols, const mwq_config *c, float **lv, double *bpw, mwq_matrix **kern)
{
    *kern = NULL;
    int bits[KERN_MAX_LEVELS];
    for (int k = 0; k < (int)c->levels; k++) {
        bits[k] = (int)c->base_bits + k;
        bpw[k] = rtn_bpw(rows, cols, bits[k], c->group);
    }
    return rtn_msb_dequant(w, rows, cols, bits, (int)c->levels, c, lv);
}

static const ffnq_method methods[] = {
    {.name = "mwq", .summary = "MWQ nested levels (base + sign planes), decoded by the kernels", .storage = "nested", .build = build_mwq},
    {.name = "rtn-int", .summary = "independent asymmetric INT-b copy per bit-width (separate copies)", .storage = "separate", .build = build_rtn},
    {.name = "msb-slice", .summary = "top b bits of one INT-8 code (Matryoshka Quantization)", .storage = "nested", .build = build_msb},
};
static const ffnq_method *const method_list[] = {&methods[0], &methods[1], &methods[2], NULL};

const ffnq_method *const *ffnq_method_list(void) { return method_list; }

const ffnq_method *ffnq_method_find(const char *name)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i].name, name)) return &methods[i];
    return NULL;
}

void ffnq_set_free(ffnq_set *s)
{
    if (!s) return;
    for (int64_t i = 0; s->w && i < s->layers * 3 * s->levels; i++) free(s->w[i]);
    for (int64_t i = 0; s->kern && i < s->layers * 3; i++) mwq_matrix_free(s->kern[i]);
    free(s->w);
    free(s->kern);
    free(s);
}

int ffnq_set_build(const llm_model *m, const ffnq_method *method, const mwq_config *c, ffnq_set **out)
{
    *out = NULL;
    D2_TRY(mwq_config_check(c));
    const llm_config *mc = llm_model_config(m);
    ffnq_set *s = calloc(1, sizeof *s);
    if (!s) D2_ERROR(D2_ENOMEM, "out of memory");
    s->method = method;
    s->layers = mc->n_layers;
    s->levels = (int)c->levels;
    s->w = calloc((size_t)(s->layers * 3 * s->levels), sizeof *s->w);
    s->kern = calloc((size_t)(s->layers * 3), sizeof *s->kern);
    if (!s->w || !s->kern) { ffnq_set_free(s); D2_ERROR(D2_ENOMEM, "out of memory"); }
    double err2[KERN_MAX_LEVELS] = {0}, bits_sum[KERN_MAX_LEVELS] = {0}, norm2 = 0, nw = 0, int8_bits = 0;
    int rc = D2_OK;
    for (int64_t l = 0; !rc && l < s->layers; l++)
        for (int which = 0; !rc && which < 3; which++) {
            const int64_t rows = which == 1 ? mc->dim : mc->hidden_dim, cols = which == 1 ? mc->hidden_dim : mc->dim;
            const float *w = llm_model_ffn(m, l, which);
            float **lv = s->w + (l * 3 + which) * s->levels;
            for (int k = 0; k < s->levels; k++)
                if (!(lv[k] = malloc((size_t)(rows * cols) * sizeof(float)))) { rc = D2_ENOMEM; d2_err_set("out of memory"); }
            double bpw[KERN_MAX_LEVELS];
            if (!rc && (rc = method->build(w, rows, cols, c, lv, bpw, &s->kern[l * 3 + which])))
                d2_err_prefix("layers.%lld.w%d: ", (long long)l, which + 1);
            for (int k = 0; !rc && k < s->levels; k++) {
                double e = 0;
                for (int64_t i = 0; i < rows * cols; i++) { double d = (double)w[i] - lv[k][i]; e += d * d; }
                err2[k] += e;
                bits_sum[k] += bpw[k] * (double)(rows * cols);
            }
            for (int64_t i = 0; !rc && i < rows * cols; i++) norm2 += (double)w[i] * w[i];
            nw += (double)(rows * cols);
            int8_bits += rtn_bpw(rows, cols, RTN_MSB_PARENT_BITS, c->group) * (double)(rows * cols);
        }
    if (rc) { ffnq_set_free(s); return rc; }
    double cum = 0;
    for (int k = 0; k < s->levels; k++) {
        s->bits[k] = (int)c->base_bits + k;
        s->bpw[k] = bits_sum[k] / nw;
        s->rel[k] = norm2 > 0 ? sqrt(err2[k] / norm2) : 0;
        cum += s->bpw[k];
        s->stored[k] = strcmp(method->storage, "separate") == 0 ? cum : s->bpw[k];
    }
    if (!strcmp(method->name, "msb-slice")) /* the INT-8 parent is what is stored */
        for (int k = 0; k < s->levels; k++) s->stored[k] = int8_bits / nw;
    *out = s;
    return D2_OK;
}

int ffnq_levels(const ffnq_set *s) { return s->levels; }
int ffnq_level_bits(const ffnq_set *s, int level) { return level >= 1 && level <= s->levels ? s->bits[level - 1] : 0; }
double ffnq_level_bpw(const ffnq_set *s, int level) { return level >= 1 && level <= s->levels ? s->bpw[level - 1] : NAN; }
double ffnq_stored_bpw(const ffnq_set *s, int level) { return level >= 1 && level <= s->levels ? s->stored[level - 1] : NAN; }
double ffnq_level_rel_err(const ffnq_set *s, int level) { return level >= 1 && level <= s->levels ? s->rel[level - 1] : NAN; }

int ffnq_kern(const ffnq_set *s, int64_t layer, int which, kern_mat *out)
{
    if (layer < 0 || layer >= s->layers || which < 0 || which > 2 || !s->kern[layer * 3 + which])
        D2_ERROR(D2_ENOTFOUND, "%s: no kernel format for layers.%lld.w%d", s->method->name, (long long)layer, which + 1);
    mwq_matrix_view(s->kern[layer * 3 + which], s->levels, out);
    return D2_OK;
}

const float *ffnq_weight(const ffnq_set *s, int64_t layer, int which, int level)
{
    if (layer < 0 || layer >= s->layers || which < 0 || which > 2 || level < 1 || level > s->levels) return NULL;
    return s->w[(layer * 3 + which) * s->levels + level - 1];
}
