/* swiglu.c - the SwiGLU epilogue of one token (see swiglu.h). */
#include "quant/swiglu.h"

#include <math.h>

static float silu(float v) { return v / (1.0f + expf(-v)); }

int swiglu_token(const float *g, const float *u, int64_t f, float *h, kern_act *ha)
{
    for (int64_t r = 0; r < f; r++) h[r] = silu(g[r]) * u[r];
    return kern_act_set(ha, h);
}
