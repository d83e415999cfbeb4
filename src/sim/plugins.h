/* plugins.h - private to src/sim: the hooks of issue 15's plug-ins that live
 * in their own files (mem_layerlru.c, mem_hobbit.c, br_hobbit.c, pf_gate.c)
 * and are named by rows at the end of the tables in mem.c, bitroute.c and
 * prefetch.c.  Nothing outside src/sim (and its tests) includes it. */
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
#define GATE_AHEAD_ACC 0.8
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

#endif
