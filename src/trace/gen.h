/* gen.h - the synthetic router-trace generator: per-layer expert popularity
 * (Zipf skew over a seeded per-layer ranking, or a fitted share vector),
 * temporal locality (top-1 kept on the next token), cross-layer correlation
 * (top-1 follows the previous layer's top-1 by rank), Dirichlet gate
 * weights, per-request task mixtures; every draw from a seeded stream
 * (xoshiro256** seeded through GSL, gen.c).
 * It also fits itself to real statistics (--like).  It knows nothing about
 * the simulator; source.h serves it to the simulator. */
#ifndef D2_TRACE_GEN_H
#define D2_TRACE_GEN_H

#include <stdint.h>

#include "core/param.h"
#include "trace/stat.h"
#include "trace/trace.h"

/* Table "gen": presets are traces/presets/<model>.ini ([gen] section). */
typedef struct gen_params {
    char model[PARAM_STR_MAX]; /* model profile giving the shape ("" = use layers/experts/top_k) */
    int64_t layers;     /* MoE layers; 0 = from the model */
    int64_t experts;    /* experts per layer; 0 = from the model */
    int64_t top_k;      /* experts per token; 0 = from the model */
    int64_t requests;   /* requests in a generated file */
    int64_t prefill;    /* prompt tokens per request, tokens */
    int64_t decode;     /* generated tokens per request, tokens */
    double skew;        /* Zipf exponent s of expert popularity, p(rank r) ~ (r+1)^-s */
    double repeat;      /* probability the top-1 expert is kept from the previous token */
    double xlayer;      /* probability the top-1 follows the previous layer's top-1 (same popularity rank) */
    double gate_alpha;  /* Dirichlet concentration of the k gate weights (sorted descending) */
    int64_t tasks;      /* tasks in the per-request mixture (each its own expert ranking) */
    double task_share;  /* fraction of a task's ranking kept from the common one, 0..1 */
} gen_params;

extern const param_table gen_params_table;

/* Defaults, then traces/presets/<model>.ini (directory: $D2_PRESET_DIR or
 * the source tree).  A name with '/' or ending ".ini" is a path. */
int gen_preset_load(const char *model_or_path, gen_params *p);
/* The same, o (may be NULL) given the line of each key read. */
int gen_preset_read(const char *model_or_path, gen_params *p, param_origin *o);
/* The file gen_preset_load reads for model_or_path (not checked to exist). */
int gen_preset_path(const char *model_or_path, char *out, size_t n);
/* Fill layers/experts/top_k from the model profile where they are 0. */
int gen_params_resolve(gen_params *p);
/* rc of gen_params_resolve (or of what calls it) unchanged; when it is
 * D2_ENOTFOUND (gen.model names no profile), the message is prefixed with
 * where the name came from: o's line of `model` (gen_preset_read) or the
 * override that set it.  o may be NULL. */
int gen_params_blame(int rc, const param_origin *o);
/* The generator parameters for the model named model_name: its preset
 * (gen_preset_read), gen.model defaulting to model_name when the preset
 * names none, and the shape resolved (gen_params_resolve).  A missing model
 * profile (D2_ENOTFOUND) is named where its name came from: the preset's
 * line of `model` (gen_params_blame), or, when the preset names none, the
 * model's name. */
int gen_preset_resolve(const char *model_name, gen_params *p);

typedef struct gen_model gen_model;
int gen_model_new(const gen_params *p, uint64_t seed, gen_model **out);
void gen_model_free(gen_model *m);
const gen_params *gen_model_params(const gen_model *m);
/* Replace a layer's popularity with a share vector (>= 0, any scale) and its
 * repeat probability (NAN = keep). */
int gen_model_set_layer(gen_model *m, uint32_t layer, const double *share, double repeat);

/* Fit to target statistics: per-layer shares, top-1 repeat where known, the
 * mean top-1 gate weight where known.  Iterates pilot runs (deterministic,
 * seeded) so the generated statistics meet the target.  *out is new. */
int gen_model_fit(const gen_params *base, const stat_acc *target, uint64_t seed, gen_model **out);

/* One request's token stream. */
typedef struct gen_stream gen_stream;
int gen_stream_new(const gen_model *m, uint32_t req, gen_stream **out);
/* Generate the next position (all layers); returns its position. */
uint32_t gen_stream_next(gen_stream *s);
/* The current position's routing at a layer (after gen_stream_next). */
void gen_stream_route(const gen_stream *s, uint32_t layer, uint16_t *experts, float *weights);
int gen_stream_reset(gen_stream *s);
uint32_t gen_stream_pos(const gen_stream *s); /* UINT32_MAX before the first next() */
void gen_stream_free(gen_stream *s);

/* Write requests x (prefill + decode) tokens to a .d2t. */
int gen_write(const gen_model *m, const char *path);
/* Feed the same tokens into a stat accumulator (no file). */
int gen_stat(const gen_model *m, uint32_t requests, uint32_t tokens, stat_acc *s);

/* Canonical text of the parameters (for ids and for printing). */
int gen_model_describe(const gen_model *m, char *buf, size_t n);

#endif
