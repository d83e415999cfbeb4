/* opjoin.h - typed operation records of one run (a load, an expert compute
 * or the non-expert work of a layer step, with its start and end) and the
 * join of a predicted run with the real run of the same plan: each op paired
 * with its counterpart, and each timeline's makespan split into exact terms
 * (compute per level, the compute queue waiting for a load, the hand-off
 * after the load was done, non-expert work, tail) so the difference shows
 * where the real run spends time the simulator did not predict.  It runs no
 * simulation or execution and never prints. */
#ifndef D2_HOST_OPJOIN_H
#define D2_HOST_OPJOIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "sim/simtime.h"

typedef enum opjoin_kind { OPJOIN_LOAD = 0, OPJOIN_COMPUTE = 1, OPJOIN_NONEXPERT = 2 } opjoin_kind;
#define OPJOIN_MAX_LEVEL 8 /* levels 1..8 (= KERN_MAX_LEVELS) */

typedef struct opjoin_op {
    opjoin_kind kind;
    int32_t step;              /* forward step (0-based) */
    int32_t layer;             /* MoE layer */
    int32_t expert;            /* expert, -1 for non-expert work */
    int32_t level;             /* bit level 1..OPJOIN_MAX_LEVEL, 0 for non-expert work */
    int32_t tokens;            /* tokens of the op (information only) */
    int64_t start_ns, end_ns;  /* wall or simulated time, ns, end >= start */
} opjoin_op;

/* A run's ops, in any order.  Opaque. */
typedef struct opjoin_tl opjoin_tl;
int opjoin_tl_new(opjoin_tl **out);
void opjoin_tl_free(opjoin_tl *tl);
/* Append one op (the simulator's op observer or the executor calls this).
 * D2_EINVAL for a kind, level or interval out of range. */
int opjoin_tl_add(opjoin_tl *tl, const opjoin_op *op);
size_t opjoin_tl_size(const opjoin_tl *tl);
const opjoin_op *opjoin_tl_get(const opjoin_tl *tl, size_t i);

/* Read a timeline CSV (`d2moe simulate --timeline`, `d2moe execute
 * --timeline/--real-timeline`): header start_ns,end_ns,queue,layer,expert,
 * level,tokens, then one line per op.  A compute line with expert -1 is the
 * non-expert work of a layer step and opens it; the step counter advances
 * when such a line's layer is not above the previous one's.  Expert lines
 * belong to the latest step.  `name` is used in errors (name:line). */
int opjoin_tl_read_csv(FILE *f, const char *name, opjoin_tl *tl);
/* A timeline file as `plot timeline` and the timeline figures take it: a
 * regular file (a FIFO or device refused, not waited on) with the header
 * SIM_TIMELINE_HEADER and at least one record, every record read as above
 * (file:line and field).  *rows (may be NULL): its records. */
int opjoin_tl_check_file(const char *path, size_t *rows);
/* opjoin_tl_check_file without the count (a hook's signature) */
int opjoin_tl_check(const char *path);
/* Write the same CSV lines (the header line is the caller's): per step and
 * layer, the non-expert line, then its loads, then its computes (each group
 * by start time). */
int opjoin_tl_write_csv(const opjoin_tl *tl, FILE *f);

/* One term of the comparison, in ns summed over the ops it covers. */
typedef struct opjoin_term {
    char name[32];      /* e.g. "compute_l2", "wait_l1", "handoff_l3", "load_l1" */
    int in_sum;         /* 1: part of the makespan split (the in_sum terms add up to it) */
    sim_ns pred_ns;     /* predicted (simulated), ns */
    int64_t real_ns;    /* measured, ns */
    int64_t n_pred;     /* ops behind the predicted figure */
    int64_t n_real;     /* ops behind the measured one */
} opjoin_term;

#define OPJOIN_MAX_TERMS (6 * OPJOIN_MAX_LEVEL + 4)
#define OPJOIN_STALL_FACTOR 10 /* a stall: a real load more than this many times its predicted duration (= CALIB_STALL_FACTOR) */

typedef struct opjoin_report {
    sim_ns makespan_pred_ns;                    /* last end - first start, simulated ns */
    int64_t makespan_real_ns;                   /* the same, wall ns */
    int64_t matched;                            /* op pairs joined */
    int64_t pred_only, real_only;               /* ops with no counterpart */
    sim_ns pred_only_ns;                        /* their summed durations: predicted ops, simulated ns */
    int64_t real_only_ns;                       /* real ops, wall ns */
    int nterm;
    opjoin_term term[OPJOIN_MAX_TERMS];
    /* the joined pair with the largest real - predicted duration */
    opjoin_op worst_pred, worst_real;           /* valid when matched > 0 */
} opjoin_report;

/* Join pred and real.  Ops are paired on (kind, step, layer, expert, level),
 * the i-th occurrence with the i-th (ordered by start).  The makespan split
 * of each timeline, over its compute queue (compute and non-expert ops in
 * start order, from the first op start of the run):
 *   makespan = sum(compute_lk) + nonexpert + sum(wait_lk) + sum(handoff_lk)
 *            + nonexpert_gap + tail
 * where, before a compute of level k of (step, layer, expert), the idle
 * time since the queue's previous op ended is "wait" up to the end of the
 * last load of that expert's levels 1..k in that step, "handoff" after it;
 * idle time before non-expert work is nonexpert_gap; "tail" is after the
 * queue's last op until the run's last op ends.  Not in the sum: load_lk
 * (load durations per level, the I/O queue), io_idle (I/O queue idle) and
 * fresh_lk: the part of compute_lk whose items had a load of their levels
 * 1..k end in the same step before they started (compute on weights just
 * read), so fresh and resident items can be told apart; stall_lk: the
 * joined loads of level k whose real duration exceeds OPJOIN_STALL_FACTOR
 * times their predicted one (storage stalls), both sides' durations of
 * those pairs.
 * Terms at levels no op has are still present, with zeros. */
int opjoin_join(const opjoin_tl *pred, const opjoin_tl *real, opjoin_report *out);

/* Index of the term called name, or -1. */
int opjoin_report_term(const opjoin_report *r, const char *name);

/* An empty report: every term named (as opjoin_join names them), zeros. */
void opjoin_report_init(opjoin_report *r);

/* sum += r, both named by opjoin_report_init (the same terms in the same
 * order): every term's durations and op counts, the makespans, the matched
 * and unmatched counts and durations.  The worst pair stays sum's. */
void opjoin_report_add(opjoin_report *sum, const opjoin_report *r);

/* The report as metrics, in the results store's names and units (d2moe
 * execute stores them with its real run; validate reads them back):
 *   join_makespan_sim_s, join_makespan_real_s            (s)
 *   per term with ops on either side:
 *     join_<term>_sim_s, join_<term>_real_s              (s)
 *     join_<term>_sim_ops, join_<term>_real_ops          (ops)
 *   join_matched, join_sim_only, join_real_only          (ops)
 *   join_sim_only_s, join_real_only_s                    (s)
 * ("sim" is the predicted side).  The worst pair is not among them.  The
 * walk stops at fn's first non-zero status and returns it. */
typedef int (*opjoin_metric_fn)(const char *name, double value, const char *unit, void *user);
int opjoin_report_foreach_metric(const opjoin_report *r, opjoin_metric_fn fn, void *user);
/* Put one such metric back into r (start from opjoin_report_init):
 * seconds rounded to the nearest ns, counts to the nearest integer.
 * D2_ENOTFOUND (no message) when name is not one of them; D2_ERANGE for
 * a negative or non-finite value. */
int opjoin_report_set_metric(opjoin_report *r, const char *name, double value);

#endif
