/* evalq.h - measured accuracy of quantized FFNs (issue 17): N sequences of T
 * tokens sampled from the FP32 model itself, then the same sequences through
 * the model with its FFN weights quantized (uniformly at one level, or routed
 * per token among levels with capacities c_k); per configuration the mean KL
 * divergence of the next-token distributions to FP32's, top-1 agreement and
 * the perplexity of the sampled tokens.  Attention, embeddings and norms stay
 * FP32.  Configurations are rows of one table (evalq_rows).  Nothing here
 * prints, writes files or reads the results store. */
#ifndef D2_EVAL_EVALQ_H
#define D2_EVAL_EVALQ_H

#include <stddef.h>
#include <stdint.h>
#include "eval/llm.h"
#include "quant/kern.h"

#define EVALQ_BOS 1 /* llama2.c's BOS token id: every sequence starts with it */

typedef struct evalq_opts {
    int64_t seqs;  /* N sequences (also the batch: one layer step routes N tokens) */
    int64_t len;   /* T sampled tokens after BOS; T <= seq_len */
    uint64_t seed; /* sampling and capacity draws (core/rng.h streams) */
} evalq_opts;

/* The FP32 reference: sequences sampled at temperature 1 from the model's
 * full softmax (no top-p), and the FP32 logits at every position. */
typedef struct evalq_ref evalq_ref;
int evalq_ref_sample(const llm_model *m, const evalq_opts *o, evalq_ref **out);
void evalq_ref_free(evalq_ref *r);
/* tokens of sequence i: T + 1 ids (BOS first) */
const int32_t *evalq_ref_tokens(const evalq_ref *r, int64_t i);
/* perplexity of the sampled tokens under the FP32 model */
double evalq_ref_ppl(const evalq_ref *r);

typedef struct evalq_metrics {
    double kl;     /* mean over the N*T positions of KL(P_fp32 || P_config), nats */
    double top1;   /* share of positions where both argmax tokens agree */
    double ppl;    /* exp(-mean log P_config(sampled next token)) */
    int64_t positions; /* N*T */
} evalq_metrics;

/* Run the reference's sequences through m with the FFN hook (NULL = FP32)
 * and compare with the reference. */
int evalq_measure(const llm_model *m, const evalq_ref *ref, llm_ffn_fn ffn, void *user, evalq_metrics *out);

/* ---- per-token bit routing --------------------------------------------------
 * The policy picks each token's level in a layer step of the N tokens at one
 * position, with the exact c_k mix (largest remainder), through the
 * simulator's own bit-routing code (sim/bitroute.h): "capacity" draws the
 * assignment at random; the "rank:" policies give the tokens with the
 * largest run-time signal the highest levels (the simulator's "gate" policy
 * with the signal in place of the gate weight). */
typedef enum evalq_signal {
    EVALQ_SIG_NONE = 0,
    EVALQ_SIG_FFN_IN_NORM,   /* ||h||, the residual stream entering the FFN (pre-RMSNorm) */
    EVALQ_SIG_ATTN_OUT_NORM, /* ||attention output after wo|| of the layer */
    EVALQ_SIG_FFN_REL_UPDATE /* ||FFN_level1(xn)|| / ||h||: the level-1 FFN update relative to the stream */
} evalq_signal;

typedef struct evalq_route {
    const char *name;    /* "capacity", "rank:ffn-in-norm", ... */
    const char *summary;
    const char *sim_policy; /* sim/bitroute.h row: "capacity" or "gate" */
    evalq_signal signal;
} evalq_route;
const evalq_route *evalq_route_find(const char *name);
const evalq_route *evalq_route_list(size_t *n);

/* ---- the configurations -------------------------------------------------- */
typedef struct evalq_row {
    const char *preset;   /* mwq preset (quant/mwq.h): the bit-widths and MWQ's parameters */
    const char *method;   /* eval/ffnq.h method: "mwq", "rtn-int", "msb-slice" */
    const char *bitroute; /* NULL: each level uniformly (one configuration per level); else a routed mix */
    const char *caps;     /* capacities c_k of the routed mix, "0.3/0.4/0.3" (the paper's, PAPER.md section 2) */
} evalq_row;
const evalq_row *evalq_rows(size_t *n);

/* How a quantized FFN computes: "dequant" decodes the weights to FP32 and
 * multiplies in FP32 (the weight error alone); "kernel" runs methods stored
 * in the MWQ container through kern_matmul, which also quantizes the
 * activations to int8 per group (what the deployed kernels compute);
 * methods without a kernel format are dequantized either way. */
typedef enum evalq_path { EVALQ_PATH_DEQUANT = 0, EVALQ_PATH_KERNEL } evalq_path;
int evalq_path_parse(const char *s, evalq_path *out);
const char *evalq_path_name(evalq_path p);

typedef struct evalq_result {
    char preset[16], method[16], bitroute[32], caps[64];
    int level;          /* 1..K for a uniform configuration, 0 for a routed mix */
    int bits;           /* nominal bits of a uniform configuration, 0 for a mix */
    int levels;         /* K */
    int level_bits[KERN_MAX_LEVELS];
    double share[KERN_MAX_LEVELS]; /* measured share of token-layer uses at each level */
    double bpw;         /* mean bits per FFN weight read per token (scales and zeros included) */
    double stored_bpw;  /* bits per FFN weight stored to serve the configuration */
    double rel_err;     /* FFN weight error: sqrt(sum_k share_k e_k^2), e_k = ||W - W_k||_F / ||W||_F */
    double est_bits_w2[17]; /* share of uses at each nominal bit-width (for est_ppl) */
    evalq_metrics m;
    double seconds;     /* wall time of the measurement */
    int kernel;         /* 1: computed through kern_matmul (int8 activations) */
} evalq_result;

/* Evaluate one row: writes K results (uniform) or 1 (routed) into res[]
 * (room for KERN_MAX_LEVELS) and their count into *n. */
int evalq_row_run(const llm_model *m, const evalq_ref *ref, const evalq_row *row, uint64_t seed, evalq_path path,
                  evalq_result *res, size_t *n);

/* Spearman's rank correlation of x and y (average ranks for ties); NaN
 * entries are left out pairwise.  *rho = NaN when fewer than 3 pairs remain
 * or a side is constant; *used = the pairs used. */
int evalq_spearman(const double *x, const double *y, size_t n, double *rho, size_t *used);

#endif
