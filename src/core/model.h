/* model.h - the shape of an MoE (or dense) transformer, and sizes derived
 * from it.  Values come from experiments/models/<name>.ini through the
 * parameter table model_params; nothing here knows about devices or time.
 *
 * Layers: layer l (0-based) has an MoE FFN iff l >= moe_first and
 * (l - moe_first) % moe_every == 0; the other layers have a dense FFN of
 * dense_ffn.  Traces number only the MoE layers (0..model_moe_layers-1).
 * A dense model (llama2-13b) is experts = 1, top_k = 1: its FFN is one
 * always-selected expert, as the paper's dense extension reads it. */
#ifndef D2_CORE_MODEL_H
#define D2_CORE_MODEL_H

#include <stdint.h>
#include "core/param.h"

typedef struct model {
    char name[PARAM_STR_MAX];
    int64_t layers;          /* transformer blocks */
    int64_t hidden;          /* model width d, elements */
    int64_t expert_ffn;      /* intermediate size of one routed expert, elements */
    int64_t expert_matrices; /* matrices per expert: 3 (gate, up, down SwiGLU) or 2 */
    int64_t experts;         /* routed experts per MoE layer */
    int64_t top_k;           /* routed experts per token */
    int64_t shared_experts;  /* always-on experts per MoE layer */
    int64_t shared_ffn;      /* intermediate size of one shared expert, elements */
    int64_t moe_first;       /* index of the first MoE layer */
    int64_t moe_every;       /* MoE every n-th layer from moe_first */
    int64_t dense_ffn;       /* FFN size of non-MoE layers, elements */
    int64_t heads;           /* attention (query) heads */
    int64_t kv_heads;        /* key/value heads (GQA) */
    int64_t head_dim;        /* elements per head */
    int64_t attn_params;     /* per-layer attention params; 0 = derive from heads */
    int64_t kv_elems;        /* KV-cache elements per token per layer; 0 = 2*kv_heads*head_dim */
    int64_t vocab;           /* vocabulary size */
    int tied_embeddings;     /* output head shares the embedding matrix */
    int dense;               /* a dense model read as one always-selected expert */
} model;

extern const param_table model_params;

/* Load experiments/models/<name>.ini (or a path containing '/' or ".ini"),
 * then model_check. */
int model_load(model *m, const char *name_or_path);
/* Load without model_check, o (may be NULL) getting each value's line: for
 * callers that apply --set overrides (param_apply_set_from) and then check
 * the effective values. */
int model_read(model *m, const char *name_or_path, param_origin *o);
/* Cross-field checks (top_k <= experts, kv_heads divides heads, at most
 * MODEL_PARAMS_MAX parameters in all, so every byte count fits int64).  The
 * message names the key it blames with its line in the profile, or the
 * option that set it (o may be NULL: the key alone). */
#define MODEL_PARAMS_MAX 1e15
/* The simulator's limits on a model's routing (tables sized by them). */
#define MODEL_MAX_EXPERTS 4096 /* routed experts per MoE layer */
#define MODEL_MAX_TOP_K 64     /* experts per token */
int model_check(const model *m, const param_origin *o);

int64_t model_moe_layers(const model *m);
int model_layer_is_moe(const model *m, int64_t layer);

/* One routed expert: rows x cols of matrix i (0 <= i < expert_matrices).
 * Matrices 0..n-2 map hidden -> ffn (rows = ffn, cols = hidden); the last
 * maps ffn -> hidden.  Quantization groups run along cols (input dim). */
void model_expert_matrix_shape(const model *m, int i, int64_t *rows, int64_t *cols);
int64_t model_expert_params(const model *m);

/* Storage of one routed expert.  Group scales and zeros are FP16.
 *  - uniform INT-b, asymmetric: b bits/weight + (scale, zero) per group
 *  - MWQ level 1: b1 bits/weight + (scale, zero) per group
 *  - MWQ level k>1: 1 sign bit/weight + one scale per group
 * Each matrix's code plane is padded to a whole byte.  bits = 16: plain FP16
 * with no groups.  group: weights per group along a row (rows shorter than
 * a group, or not a multiple of it, end with one short group). */
int64_t model_expert_bytes_uniform(const model *m, int bits, int64_t group);
int64_t model_expert_level_bytes(const model *m, int base_bits, int level, int64_t group);
/* Levels 1..k together. */
int64_t model_expert_mwq_bytes(const model *m, int base_bits, int levels, int64_t group);

/* Bytes of level k (1-based) of one routed expert in a named storage format,
 * exactly as the quantizer's level chunks are laid out (what one loadable
 * chunk per expert and level costs; the .mwq file adds only alignment):
 *  "v1" (b1 2, K 3), "v2" (b1 5, K 4): the paper's MWQ (kern.h), group g
 *      along each row, FP16 scale (+ zero at level 1) per group, each row
 *      slice padded to a whole byte;
 *  "v1k" (K 3), "v2k" (K 4): the k-quant nested format (kq.h), 256-weight
 *      super-blocks of 74 / 36 / 34 bytes (v1k) or 176 / 32 / 32 / 32 (v2k)
 *      per level; group is ignored and every matrix's cols must be a
 *      multiple of 256.
 * D2_EINVAL naming the format, level or matrix when they do not fit. */
int model_expert_format_level_bytes(const model *m, const char *format, int level, int64_t group, int64_t *bytes);
/* Levels of a named storage format (3 or 4); D2_EINVAL when unknown. */
int model_format_levels(const char *format, int *levels);
/* 1 when `format` is a k-quant nested format (v1k, v2k: quant/kq.h's
 * layout), 0 for the others and for an unknown name. */
int model_format_is_kq(const char *format);

/* Everything that is not a routed expert: embeddings, output head, attention,
 * norms, routers, shared experts, dense FFNs. */
int64_t model_nonexpert_params(const model *m);
int64_t model_nonexpert_bytes(const model *m, int bits);
int64_t model_total_params(const model *m);
/* Bytes of KV cache per token over all layers at kv_bits per element. */
int64_t model_kv_bytes_per_token(const model *m, int kv_bits);
/* FLOPs of one routed expert for one token (2 per multiply-add). */
double model_expert_flops_per_token(const model *m);

#endif
