/* plugins.h - private to src/sim: the hooks of the plug-ins that model
 * serving systems from the field (issue 15), each in its own file
 * (mem_layerlru.c, mem_hobbit.c, br_hobbit.c, pf_gate.c, mem_arc.c,
 * pf_moeinf.c, pf_fate.c, slicemoe.c), referenced by rows at the end of the
 * tables in mem.c, bitroute.c and prefetch.c, and the layout of their state
 * for tests.  Nothing here is called by the serving loop directly; nothing
 * outside src/sim (and its tests) includes it. */
#ifndef D2_SIM_PLUGINS_H
#define D2_SIM_PLUGINS_H

#include "sim/bitroute.h"
#include "sim/mem.h"
#include "sim/prefetch.h"

/* mem_layerlru.c: a per-layer LRU cache, each MoE layer a share
 * budget / layers (mixtral-offloading's k experts per layer) */
int layerlru_victim(void *state, const mem *m, uint32_t incoming, uint32_t *out);
int layerlru_wants_room(void *state, const mem *m, uint32_t incoming);

/* mem_hobbit.c: HOBBIT's cache score of recency, frequency and precision */
int hobbit_victim(void *state, const mem *m, uint32_t incoming, uint32_t *out);
/* the weights of the score (exposed for the tests' closed forms) */
#define HOBBIT_W_RECENCY 0.5
#define HOBBIT_W_FREQUENCY 0.3
#define HOBBIT_W_PRECISION 0.2

/* br_hobbit.c: high precision unless the high copy is absent and every use
 * of the expert in the step is less important (gate weight below
 * HOBBIT_LOW_GATE): then the low-precision copy */
#define HOBBIT_LOW_GATE 0.3
int hobbit_assign(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch);
int hobbit_preload_level(const bitroute_cfg *c, uint32_t layer, uint32_t expert, uint32_t *level);

/* pf_gate.c: the next layer's gate applied to the current hidden state,
 * modelled by its accuracy (no hidden states in a routing trace) */
#define GATE_AHEAD_ACC 0.8 /* sim.gate_ahead_acc's default (params.c), used when a context has no parameters */
typedef struct gate_state {
    uint32_t layers, experts;
    uint8_t *pred;   /* [layers * experts] 1: predicted for that layer at its last prediction */
    double *acc;     /* [layers] running accuracy of the predictions for that layer (adaptive), 0..1 */
    uint32_t *npred; /* [layers] experts predicted for that layer last time */
} gate_state;
int gate_init(void *state, const prefetch_ctx *c);
void gate_fini(void *state);
int gate_observe(const prefetch_ctx *c);
int gate_predict_fixed(const prefetch_ctx *c, uint32_t *out, uint32_t *n);
int gate_predict_adaptive(const prefetch_ctx *c, uint32_t *out, uint32_t *n);

#include <stddef.h>
#include <stdint.h>

/* ---- ARC (mem_arc.c): Megiddo and Modha, FAST 2003, in bytes ----------- */

enum arc_list { ARC_NONE = 0, ARC_T1, ARC_T2, ARC_B1, ARC_B2, ARC_NLISTS };
#define ARC_NIL UINT32_MAX

typedef struct arc_state {
    uint32_t n;                      /* entries of the memory */
    uint8_t *list;                   /* [n] enum arc_list */
    uint8_t *fresh;                  /* [n] 1 + the ghost list it came from: preloaded, not used yet; 0: used */
    uint32_t *prev, *next;           /* [n] links towards the MRU (prev) and LRU (next) end */
    uint32_t head[ARC_NLISTS];       /* MRU end of each list (ARC_NIL: empty) */
    uint32_t tail[ARC_NLISTS];       /* LRU end */
    int64_t bytes[ARC_NLISTS];       /* bytes per list */
    double p;                        /* target size of T1, bytes (0 .. c) */
    int64_t c;                       /* cache size: the memory budget, bytes */
    uint32_t adapted;                /* entry p was last adapted for, not yet inserted (ARC_NIL: none) */
    /* shallow-favouring quotas (fate), NULL: one cache for every layer */
    int64_t *quota;                  /* [layers] bytes */
    uint32_t layers;
} arc_state;

int arc_init(void *st, const mem *m);
void arc_fini(void *st);
void arc_on_insert(void *st, const mem *m, uint32_t id);
void arc_on_use(void *st, const mem *m, uint32_t id);
void arc_on_evict(void *st, const mem *m, uint32_t id);
int arc_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out);
/* fate: ARC with per-layer quotas favouring shallow layers */
int fate_mem_init(void *st, const mem *m);
int fate_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out);
/* The shallow-favouring split of `budget` bytes over `layers` layers: layer
 * l gets a share proportional to 1 + (ratio - 1)(L - 1 - l)/(L - 1) (the
 * first layer `ratio` times the last), rounded down, the remainder to the
 * shallowest layers one byte each; sum = budget. */
void fate_quotas(int64_t budget, uint32_t layers, double ratio, int64_t *quota);
#define FATE_SHALLOW_RATIO 2.0 /* first layer's share / last layer's (our choice; docs/simulator.md) */

/* ---- MoE-Infinity (pf_moeinf.c) ----------------------------------------- */

/* The memory policy's state: the predicted activation of every (layer,
 * expert), written by the moe-infinity predictor when it runs beside it. */
typedef struct moeinf_mem_state {
    uint32_t layers, experts, units;
    double *prio;      /* [layers * experts] expected uses per token (matched activation matrices); 0 until predicted */
    int64_t *last;     /* [entries] tick of the last use (kept by on_use: the victim scan reads it without a call) */
    int have;          /* the predictor wrote prio at least once */
} moeinf_mem_state;

typedef struct moeinf_state {
    uint32_t L, E, R, H;   /* layers, experts, requests served (ids 0..R-1), history matrices */
    float *hist;           /* [H][L][E] activation matrices of the profiling requests (token counts) */
    double *hnorm;         /* [H][L] squared norm of each matrix's first l+1 rows (prefix sums) */
    double *hrow;          /* [H][L] token count of each row (its sum) */
    float *cur;            /* [R][L][E] each served request's activation matrix so far */
    double *dot;           /* [R][H] dot(cur[q], hist[j]) */
    double *cnorm;         /* [R] squared norm of cur[q] */
    uint32_t *rows;        /* [R] rows of cur[q] observed (1 + the deepest layer seen; L after a forward step) */
    int32_t *best;         /* [R] its best-matching history matrix (-1: none yet) */
    double *weight;        /* [H] requests currently matched to each history matrix (the memory policy's mix) */
    uint32_t *act;         /* [R] the requests of the layer step observed last */
    double *tokc;          /* [R] their tokens in it */
    uint32_t nact;
    uint64_t *stamp;       /* [R] 1 + the layer step (fstep * L + layer) a request was last seen in */
} moeinf_state;

int moeinf_init(void *st, const prefetch_ctx *c);
void moeinf_fini(void *st);
int moeinf_observe(const prefetch_ctx *c);
int moeinf_predict(const prefetch_ctx *c, uint32_t *out, uint32_t *n);
/* cosine similarity of request q's matrix (its observed rows) with history j */
double moeinf_similarity(const moeinf_state *s, uint32_t q, uint32_t j);
int moeinf_mem_init(void *st, const mem *m);
void moeinf_mem_fini(void *st);
void moeinf_mem_on_use(void *st, const mem *m, uint32_t id);
int moeinf_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out);

/* ---- Fate's cross-layer gate (pf_fate.c) -------------------------------- */

/* Accuracy of Fate's cross-layer gate: the share of a token's next-layer
 * experts the next layer's gate, applied to this layer's input, gets right.
 * Fate (arXiv 2502.12224) reports 97.15% prefetch accuracy; our trace cannot
 * measure it (it records routing, not hidden states).  sim.gate_acc in a
 * run (this default); the constant outside one (ctx.params NULL). */
#define FATE_GATE_ACC 0.9715
int fate_predict(const prefetch_ctx *c, uint32_t *out, uint32_t *n);

/* ---- SliceMoE (slicemoe.c) ---------------------------------------------- */

/* The miss-rate target of SliceMoE's on-demand precision: an expert is
 * raised above what is cached only while the recent unit miss rate stays at
 * or under it (our choice of value; docs/simulator.md; sim.miss_target in a
 * run, this default; the constant outside one).  Recent: each layer
 * step's counts weigh 1, earlier ones decay by 1 - 1/L per layer step (about
 * the last forward step). */
#define SLICEMOE_MISS_TARGET 0.10

typedef struct slice_route_state {
    double items, misses;  /* (expert, unit) items planned recently (decayed counts), of those not resident */
} slice_route_state;
int slice_assign(const bitroute_cfg *c, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch);
/* the level assignment with a given target (slice_assign uses SLICEMOE_MISS_TARGET) */
int slice_assign_target(const bitroute_cfg *c, double target, uint32_t layer, bitroute_use *u, size_t n, uint32_t *scratch);

typedef struct slice_mem_state {
    uint32_t layers, experts, units;
    double *hot;       /* [layers * experts] tokens routed to each expert so far (fed by bit routing slice;
                          without it, layer steps that used the expert's base unit) */
    int fed;           /* bit routing slice feeds hot */
    uint8_t *keep;     /* [layers * experts] predicted hot for decode (after the warmup) */
    /* the resident entries in buckets by eviction class and unit (bucket
     * class * units + units - 1 - unit: evicted in bucket order), each a
     * list from the least recently used (head) to the most (tail) */
    uint32_t *prev, *next;   /* [entries] links (UINT32_MAX: none) */
    uint32_t *bucket;        /* [entries] 1 + its bucket, 0: in none */
    uint32_t *head, *tail;   /* [3 * units] */
    uint32_t *scratch;       /* [entries] the warmup's rebuild (allocated at init: after_step cannot fail) */
    int warm;          /* the warmup ran (the first forward step ended) */
    uint32_t steps;    /* layer steps ended */
} slice_mem_state;
int slice_mem_init(void *st, const mem *m);
void slice_mem_fini(void *st);
void slice_mem_on_use(void *st, const mem *m, uint32_t id);
void slice_mem_on_insert(void *st, const mem *m, uint32_t id);
void slice_mem_on_evict(void *st, const mem *m, uint32_t id);
void slice_mem_after_step(void *st, const mem *m, uint32_t layer);
int slice_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out);

#endif
