/* llm.h - a llama2.c-compatible dense transformer in FP32 (Karpathy's
 * llama2.c run.c: RMSNorm, RoPE on pairs (2i, 2i+1), grouped-query
 * attention, SwiGLU FFN, classifier shared with the token embedding unless
 * the checkpoint has its own), run on a batch of sequences in lockstep with a
 * KV cache.  The FFN of every layer step can be replaced by a caller's hook
 * (quantized weights, per-token bit routing); everything else stays FP32.
 * No tokenizer, no sampling, no quantization here (evalq.h, ffnq.h do those). */
#ifndef D2_EVAL_LLM_H
#define D2_EVAL_LLM_H

#include <stdint.h>

/* The 7 int32 of a llama2.c header (vocab_size < 0 in the file means an own
 * classifier; here vocab_size is its absolute value and shared_cls says). */
typedef struct llm_config {
    int64_t dim;        /* model width (elements) */
    int64_t hidden_dim; /* FFN width (elements) */
    int64_t n_layers;
    int64_t n_heads;    /* query heads; head_size = dim / n_heads */
    int64_t n_kv_heads; /* key/value heads (n_heads a multiple of it) */
    int64_t vocab_size; /* tokens */
    int64_t seq_len;    /* longest sequence (positions) */
    int shared_cls;     /* 1: logits use tok_embeddings (positive vocab_size in the file) */
} llm_config;

typedef struct llm_model llm_model;

/* Read a llama2.c checkpoint through quant/weights.h; the header's head
 * counts and seq_len are checked against the tensor shapes.  Errors name the
 * file and field (D2_EFORMAT). */
int llm_model_load(const char *path, llm_model **out);
void llm_model_free(llm_model *m);
const llm_config *llm_model_config(const llm_model *m);
/* FFN matrices of a layer, row-major rows = outputs: which 0 = w1
 * (hidden x dim), 1 = w2 (dim x hidden), 2 = w3 (hidden x dim). */
const float *llm_model_ffn(const llm_model *m, int64_t layer, int which);

/* Write a llama2.c checkpoint (legacy version 0 layout, as export.py's
 * legacy_export: header, tensors, freq_cis tables) whose every tensor is drawn
 * from a seeded generator: Gaussian attention weights of std 1/sqrt(fan_in),
 * Student-t (nu = 5) FFN weights of the same std, RMSNorm gains 1 +- 0.1,
 * embeddings of std 0.3.  A SYNTHETIC model for exercising the evaluation
 * where no trained checkpoint is at hand; its numbers say nothing about a
 * trained model.  Written to a temporary file, then renamed. */
int llm_synth_write(const char *path, const llm_config *c, uint64_t seed);
/* The shape used by `d2moe eval --write-synthetic`: stories260K's
 * (64, 172, 5 layers, 8/4 heads, vocab 512, 512 positions). */
void llm_config_synth_default(llm_config *c);

/* ---- running: B sequences in lockstep ------------------------------------ */
typedef struct llm_batch llm_batch;
/* B sequences of at most T positions (T <= seq_len). */
int llm_batch_new(const llm_model *m, int64_t B, int64_t T, llm_batch **out);
void llm_batch_free(llm_batch *b);

/* One FFN layer step of the batch, handed to a hook.  The hook writes
 * out[n*dim] = FFN(xn) for each token; the other inputs are per-token
 * signals available at run time, for routing. */
typedef struct llm_ffn_step {
    int64_t layer, pos, n; /* layer, position (same for all), tokens */
    int64_t dim, hidden;
    const float *xn;    /* [n*dim] FFN input after RMSNorm */
    const float *resid; /* [n*dim] residual stream entering the FFN (pre-norm) */
    const float *attn;  /* [n*dim] this layer's attention output (after wo) */
    float *out;         /* [n*dim] to fill */
} llm_ffn_step;
typedef int (*llm_ffn_fn)(void *user, const llm_ffn_step *s);

/* out[i*dim ..] = w2 . (silu(w1 . x_i) * (w3 . x_i)) for n tokens x[n*dim]:
 * SwiGLU with the given matrices (layout as llm_model_ffn);
 * scratch[2*n*hidden]. */
void llm_ffn(const float *w1, const float *w2, const float *w3, int64_t dim, int64_t hidden, const float *x, int64_t n,
             float *scratch, float *out);

/* Feed tokens[B] at position pos (0 = first; positions 0..pos-1 must have
 * been fed) and write logits[B*vocab].  ffn NULL: the model's FP32 FFN. */
int llm_batch_step(const llm_model *m, llm_batch *b, const int32_t *tokens, int64_t pos, llm_ffn_fn ffn, void *user,
                   float *logits);

/* y[i*out + r] = dot(w[r*in ..], x[i*in ..]) for i < n, r < out: FP32 with
 * 8 partial sums, AVX2 + FMA when the CPU has them; both paths add in the
 * same order, so results are the same bytes either way. */
void llm_matmul(float *y, const float *x, const float *w, int64_t n, int64_t in, int64_t out);
/* Force the scalar path (1) or allow AVX2 (0); for tests and benchmarks. */
void llm_force_scalar(int on);

#endif
