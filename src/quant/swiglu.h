/* swiglu.h - one token's SwiGLU epilogue between an expert's gate/up and its
 * down projection: h = silu(gate) * up, then h quantized into the int8
 * activations the down kernels read.  Shared by the execution engine
 * (host/exec) and the calibration that times exactly this code (host/calib);
 * it holds no weights and does no matrix products (quant/kern does). */
#ifndef D2_QUANT_SWIGLU_H
#define D2_QUANT_SWIGLU_H

#include <stdint.h>
#include "quant/kern.h"

/* h[r] = silu(g[r]) * u[r] for r < f (h: f floats, caller's scratch), then
 * kern_act_set(ha, h).  Returns kern_act_set's status. */
int swiglu_token(const float *g, const float *u, int64_t f, float *h, kern_act *ha);

#endif
