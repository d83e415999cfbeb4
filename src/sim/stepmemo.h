/* stepmemo.h - the step memo: a layer step's bit-routing outcome remembered
 * across the runs of one process.  A sweep worker runs many jobs on the
 * same routing that differ only in budget, device or planner; for a bit
 * routing that is a pure function of the step's uses (bitroute_type.pure:
 * gate, uniform, trace), the uses of each (expert, level) and their
 * gate-weight sums in a layer step are then the same in every job.  The
 * memo keeps them per key (the routing source's id, the bit routing and the
 * model's shape: the caller hashes them) and per forward step, tagged with
 * the step's composition (which requests at which positions), so a later
 * run whose forward step has the same composition takes them instead of
 * decoding the routing and ranking the gate weights again.  The values are
 * the ones the run computes (same inputs, same order of summation): a hit
 * never changes a result.  Process-wide, single-threaded (sweep workers
 * are processes), bounded by stepmemo_limit (D2MOE_STEP_MEMO_MB, default
 * 64 MiB; 0 = off).  Not for bit routings that read memory, state or a
 * generator (capacity, static, hobbit, slice): those are never keyed. */
#ifndef D2_SIM_STEPMEMO_H
#define D2_SIM_STEPMEMO_H

#include <stddef.h>
#include <stdint.h>

typedef struct stepmemo stepmemo;

/* Bound of the memo in bytes (0 turns it off and frees what it holds).
 * Until called, read from D2MOE_STEP_MEMO_MB (MiB), else the default. */
void stepmemo_limit(size_t bytes);
/* Bytes the memo holds now. */
size_t stepmemo_bytes(void);
/* Forward steps answered from the memo since the process started (tests). */
uint64_t stepmemo_hits(void);

/* The entry of `key` (text compared exactly) for runs of `layers` layer
 * steps per forward step and `cells` (expert, level) cells per layer step;
 * *out = NULL when the memo is off or full (the run computes everything).
 * An entry of the same key with another geometry is not used.  D2 status
 * (D2_ENOMEM). */
int stepmemo_open(const char *key, uint32_t layers, uint32_t cells, stepmemo **out);
void stepmemo_close(stepmemo *m);

/* 1 when forward step f was recorded whole with composition comp[0..n)
 * (compared exactly). */
int stepmemo_have(const stepmemo *m, uint32_t f, const uint32_t *comp, size_t n);
/* Forward step f, layer l of a step stepmemo_have answered 1 for: the
 * counts [cells] and the two gate sums [cells] each. */
void stepmemo_get(const stepmemo *m, uint32_t f, uint32_t l, const uint32_t **count, const double **gsum,
                  const double **gsum2);
/* Record layer l of forward step f (composition comp[0..n)), layers in
 * order from 0; a forward step already recorded whole is kept as it was.
 * Past the bound nothing is recorded; nor in the first run of a key (its
 * first stepmemo_open): a key is recorded from its second run on and
 * answers from its third, so a process that runs one job spends nothing
 * on a memo it would never read (as the route memo, trace/source.h). */
void stepmemo_put(stepmemo *m, uint32_t f, const uint32_t *comp, size_t n, uint32_t l, const uint32_t *count,
                  const double *gsum, const double *gsum2);

#endif
