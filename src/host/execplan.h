/* execplan.h - adapters between the simulator, the .mwq container and the
 * execution engine: the plan the simulator chose (read back from its
 * typed operations) as an exec_plan, a .mwq model file as an exec_store, and a
 * synthetic model file made with the MWQ quantizer when none is given.  It
 * decides nothing about scheduling itself. */
#ifndef D2_HOST_EXECPLAN_H
#define D2_HOST_EXECPLAN_H

#include <stdint.h>
#include <stdio.h>
#include "core/model.h"
#include "host/exec.h"
#include "quant/mwq.h"

/* The simulator's plan as an exec_plan, built from its typed operations
 * (sim_op): install the builder's observer (sim_job.obs), run the
 * simulation, then finish.  Each layer step is a phase; loads and expert
 * computes belong to their layer step, in the order they started; a compute
 * carries its final-token count from the simulator.  Preloads (systems with
 * prefetch) are refused: execute runs on-demand plans only.  serial as
 * plan_type's.  finish hands the plan (execplan_free) or the first error.
 * With ops set (after init), every operation, non-expert work included, is
 * also added to it as an opjoin_op: the predicted side of the op join
 * (step = the forward step, times in simulated ns). */
typedef struct execplan_builder {
    exec_plan plan;
    size_t capl, capc;     /* allocated load / compute records */
    opjoin_tl *ops;        /* NULL, or receives the simulated operations (not owned) */
    int rc;                /* first error (D2 status), D2_OK */
    char err[256];         /* its message */
} execplan_builder;
struct sim_observer;
void execplan_builder_init(execplan_builder *b, int serial, struct sim_observer *obs);
int execplan_builder_finish(execplan_builder *b, exec_plan *out);
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
