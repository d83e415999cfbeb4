/* stat.h - statistics of a router trace, accumulated in one streaming pass
 * (memory depends on layers x experts, never on trace length): per-layer
 * expert share, skew (max/mean, CV, Gini, entropy), temporal locality,
 * cross-layer predictability, gate weights, and the expected number of
 * distinct experts and (expert, level) items a batch of R tokens needs.
 * It builds a JSON object but never prints; src/cli formats text. */
#ifndef D2_TRACE_STAT_H
#define D2_TRACE_STAT_H

#include <jansson.h>
#include <stdint.h>

#include "core/param.h"
#include "trace/trace.h"

#define STAT_LEVELS_MAX 8
#define STAT_BATCH_MAX 16

/* Parameters of the derived quantities (table "stat"). */
typedef struct stat_params {
    char level_mix[PARAM_STR_MAX]; /* "c1,c2,...": fraction of token-expert pairs at level k (sums to 1) */
    int64_t batch_max;             /* largest batch R; R = 1,2,4,...,batch_max, requests */
} stat_params;
extern const param_table stat_params_table;
void stat_params_default(stat_params *p);

typedef struct stat_layer {
    uint64_t records;        /* records at this layer */
    double *share;           /* [experts] fraction of the layer's expert slots (sums to 1) */
    double max_over_mean;    /* max share / mean share, dimensionless */
    double cv;               /* population std / mean of share */
    double gini;             /* Gini coefficient of share, 0..1 */
    double entropy;          /* of share, bits */
    double top1_repeat;      /* P(top-1 at pos+1 == top-1 at pos), NAN without pairs */
    uint64_t repeat_pairs;   /* consecutive-position pairs behind top1_repeat */
    double topk_overlap;     /* mean |S(pos) & S(pos+1)| / k, NAN without pairs */
    double next_top1_acc;    /* predict layer l+1 top-1 from layer l top-1 (most frequent successor, in-sample); NAN for the last layer */
    double next_top1_chance; /* same, always guessing layer l+1's most frequent top-1 */
    double next_topk_hit;    /* predict layer l+1's k experts as the k most frequent given layer l's top-1: fraction hit */
    double w_mean[TRACE_K_MAX]; /* gate weight at rank j, mean */
    double w_std[TRACE_K_MAX];  /* gate weight at rank j, population std */
    double *distinct_experts;   /* [nbatch] E[distinct experts needed by R independent tokens] */
    double *distinct_items;     /* [nbatch] E[distinct (expert, level) items, levels nested] */
} stat_layer;

typedef struct stat_acc stat_acc;

int stat_new(uint32_t layers, uint32_t experts, uint32_t top_k, stat_acc **out);
/* Count only shares, repeats and gate weights (what a generator fit's
 * pilots read): no cross-layer transitions (next_* stay NaN) and no
 * distinct_experts / distinct_items (NaN).  Call before the first add. */
void stat_set_light(stat_acc *s);
/* Records must arrive in (req, pos, layer) order, as a .d2t holds them. */
void stat_add(stat_acc *s, const trace_rec *r);
/* Set a layer's expert activation counts directly (activation tables, which
 * have shares but no token order); `weights` are counts or fractions. */
void stat_add_shares(stat_acc *s, uint32_t layer, const double *weights);
/* Compute the per-layer results; call once, after the last add. */
int stat_finish(stat_acc *s, const stat_params *p);
const stat_layer *stat_layer_get(const stat_acc *s, uint32_t layer);
uint32_t stat_layers(const stat_acc *s);
uint32_t stat_experts(const stat_acc *s);
uint32_t stat_top_k(const stat_acc *s);
uint64_t stat_records(const stat_acc *s);
uint64_t stat_tokens(const stat_acc *s);
uint32_t stat_requests(const stat_acc *s);
/* Batch sizes R behind distinct_experts / distinct_items. */
int stat_batches(const stat_acc *s, const uint32_t **batch);
/* Median over layers of a field given by offset into stat_layer (doubles
 * only; NAN layers skipped).  NAN when no layer has a value. */
double stat_median(const stat_acc *s, size_t field_offset);
double stat_mean(const stat_acc *s, size_t field_offset);
/* The whole result as one JSON object (keys documented in traces/README.md). */
json_t *stat_json(const stat_acc *s);
void stat_free(stat_acc *s);

/* Stream a .d2t file through stat_add; *out is finished with params p. */
int stat_file(const char *path, const stat_params *p, stat_acc **out);

#endif
