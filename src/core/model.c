/* model.c - model parameter table and derived sizes (see model.h). */
#include "core/model.h"
#include "core/err.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(x) offsetof(model, x)
#define BIG 1e12
static const param_def defs[] = {
    {"name", PARAM_STRING, F(name), NULL, 0, 0, "", "profile name"},
    {"layers", PARAM_INT, F(layers), NULL, 1, 1024, "", "transformer blocks"},
    {"hidden", PARAM_INT, F(hidden), NULL, 1, 1 << 20, "elements", "model width"},
    {"expert_ffn", PARAM_INT, F(expert_ffn), NULL, 1, 1 << 22, "elements", "intermediate size of one routed expert"},
    {"expert_matrices", PARAM_INT, F(expert_matrices), "3", 2, 3, "", "matrices per expert (3 = SwiGLU gate/up/down, 2 = up/down)"},
    {"experts", PARAM_INT, F(experts), NULL, 1, 4096, "", "routed experts per MoE layer"},
    {"top_k", PARAM_INT, F(top_k), NULL, 1, 64, "", "routed experts per token"},
    {"shared_experts", PARAM_INT, F(shared_experts), "0", 0, 64, "", "always-on experts per MoE layer"},
    {"shared_ffn", PARAM_INT, F(shared_ffn), "0", 0, 1 << 22, "elements", "intermediate size of one shared expert"},
    {"moe_first", PARAM_INT, F(moe_first), "0", 0, 1023, "", "index of the first MoE layer"},
    {"moe_every", PARAM_INT, F(moe_every), "1", 1, 64, "", "an MoE FFN every n-th layer from moe_first"},
    {"dense_ffn", PARAM_INT, F(dense_ffn), "0", 0, 1 << 22, "elements", "FFN size of the non-MoE layers"},
    {"heads", PARAM_INT, F(heads), NULL, 1, 1024, "", "attention query heads"},
    {"kv_heads", PARAM_INT, F(kv_heads), NULL, 1, 1024, "", "key/value heads"},
    {"head_dim", PARAM_INT, F(head_dim), NULL, 1, 4096, "elements", "elements per head"},
    {"attn_params", PARAM_INT, F(attn_params), "0", 0, BIG, "params", "attention params per layer; 0 = derive from heads (q,k,v,o)"},
    {"kv_elems", PARAM_INT, F(kv_elems), "0", 0, 1 << 24, "elements", "KV-cache elements per token per layer; 0 = 2*kv_heads*head_dim"},
    {"vocab", PARAM_INT, F(vocab), NULL, 1, 1 << 24, "tokens", "vocabulary size"},
    {"tied_embeddings", PARAM_BOOL, F(tied_embeddings), "false", 0, 1, "", "output head shares the embedding matrix"},
    {"dense", PARAM_BOOL, F(dense), "false", 0, 1, "", "dense model: FFN read as one always-selected expert"},
};
#undef F

const param_table model_params = {"model", "model", defs, sizeof defs / sizeof defs[0]};

#define BLAME(...) PARAM_BLAME(&model_params, o, w, __VA_ARGS__)

int model_check(const model *m, const param_origin *o)
{
    char w[PARAM_PATH_MAX + 64];
    const char *k;
    long long top_k = m->top_k, experts = m->experts, heads = m->heads, kv_heads = m->kv_heads;
    long long moe_first = m->moe_first, layers = m->layers;
    if (m->top_k > m->experts) {
        if (!strcmp(BLAME("top_k", "experts"), "top_k")) D2_ERROR(D2_ERANGE, "%s: %lld is more than experts (%lld)", w, top_k, experts);
        D2_ERROR(D2_ERANGE, "%s: %lld is fewer than top_k (%lld)", w, experts, top_k);
    }
    if (m->heads % m->kv_heads != 0) {
        if (!strcmp(BLAME("kv_heads", "heads"), "kv_heads")) D2_ERROR(D2_ERANGE, "%s: %lld does not divide heads (%lld)", w, kv_heads, heads);
        D2_ERROR(D2_ERANGE, "%s: %lld is not a multiple of kv_heads (%lld)", w, heads, kv_heads);
    }
    if (m->moe_first >= m->layers) {
        if (!strcmp(BLAME("moe_first", "layers"), "moe_first")) D2_ERROR(D2_ERANGE, "%s: %lld is not below layers (%lld)", w, moe_first, layers);
        D2_ERROR(D2_ERANGE, "%s: %lld is not above moe_first (%lld)", w, layers, moe_first);
    }
    if (m->shared_experts > 0 && m->shared_ffn == 0) {
        if (!strcmp(BLAME("shared_ffn", "shared_experts"), "shared_ffn")) D2_ERROR(D2_ERANGE, "%s: must be > 0 when shared_experts > 0", w);
        D2_ERROR(D2_ERANGE, "%s: %lld needs shared_ffn > 0", w, (long long)m->shared_experts);
    }
    if (model_moe_layers(m) < m->layers && m->dense_ffn == 0) {
        k = BLAME("dense_ffn", "moe_every", "moe_first", "layers");
        if (!strcmp(k, "dense_ffn")) D2_ERROR(D2_ERANGE, "%s: must be > 0 when some layers are not MoE", w);
        const param_def *d = param_find(&model_params, k);
        long long v = d ? *(const int64_t *)((const char *)m + d->offset) : 0;
        D2_ERROR(D2_ERANGE, "%s: %lld leaves %lld of the %lld layers not MoE, which needs dense_ffn > 0", w, v,
                 (long long)(m->layers - model_moe_layers(m)), layers);
    }
    if (m->dense && (m->experts != 1 || m->top_k != 1)) {
        k = BLAME("dense", "experts", "top_k");
        if (!strcmp(k, "dense")) D2_ERROR(D2_ERANGE, "%s: a dense model has experts = 1 and top_k = 1", w);
        D2_ERROR(D2_ERANGE, "%s: %lld, but a dense model (dense = true) has experts = 1 and top_k = 1", w,
                 !strcmp(k, "experts") ? experts : top_k);
    }
    /* Each key is within its range, but together they can describe a model
     * whose byte counts overflow int64 (1024 layers x 4096 experts of 3 x
     * 2^20 x 2^22): bound the total (the non-expert part cannot overflow,
     * the expert product is taken in double). */
    double total = (double)model_nonexpert_params(m) + (double)model_moe_layers(m) * (double)m->experts * (double)model_expert_params(m);
    if (total > MODEL_PARAMS_MAX) {
        k = BLAME("experts", "layers", "expert_ffn", "hidden");
        const param_def *d = param_find(&model_params, k);
        long long v = d ? *(const int64_t *)((const char *)m + d->offset) : 0;
        D2_ERROR(D2_ERANGE, "%s: %lld: %.3g parameters in all: more than %.0e (layers, experts, hidden and ffn sizes together)", w,
                 v, total, MODEL_PARAMS_MAX);
    }
    return D2_OK;
}
#undef BLAME

static int check_any(const void *m, const param_origin *o) { return model_check(m, o); }
int model_load(model *m, const char *name_or_path)
{
    param_origin o; /* as param_profile_load, through the memo of files read */
    D2_TRY(model_read(m, name_or_path, &o));
    return check_any(m, &o);
}
int model_read(model *m, const char *name_or_path, param_origin *o) { return param_profile_read_memo(&model_params, name_or_path, m, sizeof *m, o); }

int model_layer_is_moe(const model *m, int64_t l)
{
    return l >= m->moe_first && (l - m->moe_first) % m->moe_every == 0;
}

int64_t model_moe_layers(const model *m)
{
    if (m->moe_first >= m->layers) return 0;
    return (m->layers - m->moe_first + m->moe_every - 1) / m->moe_every;
}

void model_expert_matrix_shape(const model *m, int i, int64_t *rows, int64_t *cols)
{
    if (i < m->expert_matrices - 1) { *rows = m->expert_ffn; *cols = m->hidden; }
    else { *rows = m->hidden; *cols = m->expert_ffn; }
}

int64_t model_expert_params(const model *m)
{
    return m->expert_matrices * m->hidden * m->expert_ffn;
}

/* bytes of one matrix: a code plane of `bits` per weight (padded to a byte)
 * plus `group_bytes` per group of each row */
static int64_t matrix_bytes(int64_t rows, int64_t cols, int bits, int64_t group, int64_t group_bytes)
{
    int64_t codes = (rows * cols * bits + 7) / 8;
    if (group <= 0) return codes;
    int64_t groups = rows * ((cols + group - 1) / group);
    return codes + groups * group_bytes;
}

static int64_t expert_bytes(const model *m, int bits, int64_t group, int64_t group_bytes)
{
    int64_t total = 0;
    for (int i = 0; i < m->expert_matrices; i++) {
        int64_t r, c;
        model_expert_matrix_shape(m, i, &r, &c);
        total += matrix_bytes(r, c, bits, group, group_bytes);
    }
    return total;
}

int64_t model_expert_bytes_uniform(const model *m, int bits, int64_t group)
{
    if (bits >= 16) return expert_bytes(m, 16, 0, 0);
    return expert_bytes(m, bits, group, 4); /* FP16 scale + FP16 zero */
}

int64_t model_expert_level_bytes(const model *m, int base_bits, int level, int64_t group)
{
    if (level <= 1) return expert_bytes(m, base_bits, group, 4); /* scale + zero */
    return expert_bytes(m, 1, group, 2);                         /* sign plane + scale */
}

int64_t model_expert_mwq_bytes(const model *m, int base_bits, int levels, int64_t group)
{
    int64_t t = 0;
    for (int k = 1; k <= levels; k++) t += model_expert_level_bytes(m, base_bits, k, group);
    return t;
}

/* The storage formats of model_expert_format_level_bytes: the paper's MWQ
 * (per-group FP16 scales, kq = 0) and the k-quant nested format (bytes per
 * 256-weight super-block and level, kq = 1; quant/kq.h's layout). */
static const struct storage_format {
    const char *name;
    int kq;           /* 0: kern.h layout, 1: kq.h super-blocks */
    int base_bits;    /* kern.h: b1 */
    int levels;       /* K */
    int sb_bytes[4];  /* kq.h: bytes per super-block of level 1..K */
} storage_formats[] = {
    {.name = "v1", .kq = 0, .base_bits = 2, .levels = 3},
    {.name = "v2", .kq = 0, .base_bits = 5, .levels = 4},
    {.name = "v1k", .kq = 1, .base_bits = 2, .levels = 3, .sb_bytes = {74, 36, 34}},
    {.name = "v2k", .kq = 1, .base_bits = 5, .levels = 4, .sb_bytes = {176, 32, 32, 32}},
};

static const struct storage_format *storage_find(const char *name)
{
    for (size_t i = 0; i < sizeof storage_formats / sizeof storage_formats[0]; i++)
        if (!strcmp(name, storage_formats[i].name)) return &storage_formats[i];
    return NULL;
}

int model_format_is_kq(const char *format)
{
    const struct storage_format *f = storage_find(format);
    return f && f->kq;
}

int model_format_levels(const char *format, int *levels)
{
    const struct storage_format *f = storage_find(format);
    if (!f) D2_ERROR(D2_EINVAL, "storage format '%s': expected v1, v2, v1k or v2k", format);
    *levels = f->levels;
    return D2_OK;
}

int model_expert_format_level_bytes(const model *m, const char *format, int level, int64_t group, int64_t *bytes)
{
    *bytes = 0;
    const struct storage_format *f = storage_find(format);
    if (!f) D2_ERROR(D2_EINVAL, "storage format '%s': expected v1, v2, v1k or v2k", format);
    if (level < 1 || level > f->levels) D2_ERROR(D2_EINVAL, "storage format %s: level %d is outside 1..%d", format, level, f->levels);
    if (!f->kq && group < 1) D2_ERROR(D2_EINVAL, "storage format %s: group %lld must be >= 1", format, (long long)group);
    int64_t total = 0;
    for (int i = 0; i < m->expert_matrices; i++) {
        int64_t r, c;
        model_expert_matrix_shape(m, i, &r, &c);
        if (f->kq) {
            if (c % 256) D2_ERROR(D2_EINVAL, "storage format %s: expert matrix %d is %lld x %lld; its cols are not a multiple of 256", format, i, (long long)r, (long long)c);
            total += r * (c / 256) * f->sb_bytes[level - 1];
        } else {
            const int64_t G = (c + group - 1) / group;
            if (level == 1) {
                /* slices of 4, 2, 1 bits (kern.h), each row slice padded to a byte */
                int64_t rowb = 0;
                for (int bits = f->base_bits, w = 4; w >= 1; w /= 2)
                    while (bits >= w) { rowb += (c * w + 7) / 8; bits -= w; }
                total += r * (4 * G + rowb);
            } else
                total += r * (2 * G + (c + 7) / 8);
        }
    }
    *bytes = total;
    return D2_OK;
}

static int64_t attn_params_per_layer(const model *m)
{
    if (m->attn_params > 0) return m->attn_params;
    int64_t q = m->hidden * m->heads * m->head_dim;
    int64_t kv = 2 * m->hidden * m->kv_heads * m->head_dim;
    int64_t o = m->heads * m->head_dim * m->hidden;
    return q + kv + o;
}

int64_t model_nonexpert_params(const model *m)
{
    int64_t moe = model_moe_layers(m);
    int64_t embed = m->vocab * m->hidden * (m->tied_embeddings ? 1 : 2);
    int64_t per_layer = attn_params_per_layer(m) + 2 * m->hidden; /* + two RMSNorms */
    int64_t router = m->dense ? 0 : m->hidden * m->experts;
    int64_t shared = m->shared_experts * m->expert_matrices * m->hidden * m->shared_ffn;
    int64_t dense = m->expert_matrices * m->hidden * m->dense_ffn;
    return embed + m->hidden /* final norm */ + m->layers * per_layer + moe * (router + shared)
         + (m->layers - moe) * dense;
}

int64_t model_nonexpert_bytes(const model *m, int bits)
{
    return (model_nonexpert_params(m) * bits + 7) / 8;
}

int64_t model_total_params(const model *m)
{
    return model_nonexpert_params(m) + model_moe_layers(m) * m->experts * model_expert_params(m);
}

int64_t model_kv_bytes_per_token(const model *m, int kv_bits)
{
    int64_t e = m->kv_elems > 0 ? m->kv_elems : 2 * m->kv_heads * m->head_dim;
    return (m->layers * e * kv_bits + 7) / 8;
}

double model_expert_flops_per_token(const model *m)
{
    return 2.0 * (double)model_expert_params(m);
}
