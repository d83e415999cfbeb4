/* execplan.h - adapters between the simulator, the .mwq container and the
 * execution engine: the plan the simulator chose (read back from its
 * timeline CSV) as an exec_plan, a .mwq model file as an exec_store, and a
 * synthetic model file made with the MWQ quantizer when none is given.  It
 * decides nothing about scheduling itself. */
#ifndef D2_HOST_EXECPLAN_H
#define D2_HOST_EXECPLAN_H

#include <stdint.h>
#include <stdio.h>
#include "core/model.h"
#include "host/exec.h"
#include "quant/mwq.h"

/* Parse a sim timeline (start_ns,end_ns,queue,layer,expert,level,tokens,
 * header line first).  Each non-expert compute line (expert -1) opens a
 * phase; io and expert compute lines belong to the latest phase, in the
 * order they started.  Preloads for a later layer (systems with prefetch)
 * are refused: execute runs on-demand plans only.  serial as plan_type. */
int execplan_from_timeline(FILE *tl, int serial, exec_plan *out);
void execplan_free(exec_plan *p);

/* Tensor names in a model file: "l<layer>.e<expert>.<gate|up|down>". */
void execplan_tensor_name(char *buf, size_t n, uint32_t layer, uint32_t expert, int matrix);

/* Open a .mwq file as a store for model m at `levels` levels, base bits b1
 * and group g: every tensor must be present with the model's shapes;
 * D2_EFORMAT naming the first mismatch. */
int execplan_store_open(exec_store *s, const char *path, const model *m, int levels, int base_bits, int64_t group);

/* Write a .mwq file for model m: synthetic weights (Student-t, nu = 5,
 * std 0.02, with 1% outlier columns x8; seeded), quantized by
 * mwq_matrix_quantize with config c.  Atomic (mwqfile writer). */
int execplan_model_generate(const char *path, const model *m, const mwq_config *c, uint64_t seed);

#endif
