/* source.h - where the simulator's expert routing comes from: a .d2t file or
 * the synthetic generator, behind one random-access-by-(request, position,
 * layer) interface.  It does not decide bit-widths (src/sim/bitroute does)
 * and does not batch requests; it only answers "which experts, which gates". */
#ifndef D2_TRACE_SOURCE_H
#define D2_TRACE_SOURCE_H

#include <stddef.h>
#include <stdint.h>

typedef struct trace_source trace_source;

typedef struct trace_shape {
    uint32_t layers;   /* MoE layers */
    uint32_t experts;  /* routed experts per layer */
    uint32_t top_k;    /* experts per token */
    uint32_t requests; /* distinct requests available (generator: unbounded -> UINT32_MAX) */
    int has_bits;      /* records carry bit-widths */
} trace_shape;

/* Open a .d2t file (header and request index are checked; records are
 * checked chunk by chunk as they are read). */
int trace_source_open_file(const char *path, trace_source **out);

/* Generator source with the preset for a model profile name (e.g.
 * "mixtral-8x7b"), shape from that model. */
int trace_source_open_gen(const char *model_name, uint64_t seed, trace_source **out);

void trace_source_shape(const trace_source *s, trace_shape *out);

/* Routing of request `req` at token position `pos` (positions 0..prompt-1
 * are prefill, then decode) at MoE layer `layer`: top_k expert ids in
 * descending gate weight, their gate weights, and recorded bit-widths (0 when
 * not recorded; bits may be NULL).
 *
 * Intended call order (any order is served, this one is fast): for a batch
 * of R requests, for pos = 0,1,2,...: for layer = 0..L-1: for req = 0..R-1.
 *
 * File source: memory does not grow with trace length (one cursor per
 * request over the request index kept in the file).  Requests beyond the
 * file's count wrap modulo the count (req % requests); positions beyond a
 * request's recorded length wrap within that request (pos % length).  A
 * (position, layer) missing from the file (an importer kept a token that
 * lacks layers) is served from the nearest earlier recorded layer of that
 * token, else from the token's next recorded layer.
 *
 * Generator source: every request id is distinct (up to 2^24), positions
 * are unbounded; the answer for (req, pos, layer) depends only on (seed,
 * req, pos, layer) and the preset (traces/presets/<model>.ini), not on call
 * order.  Generated positions are remembered in a process-wide memo shared
 * by every source of the same id (a sweep's jobs on one model and seed
 * generate once), bounded by trace_source_memo_limit; past the bound a
 * request is generated forward as it goes and asking for an earlier
 * position regenerates it from position 0.  The memo never changes an
 * answer, only its cost. */
int trace_source_route(trace_source *s, uint32_t req, uint32_t pos, uint32_t layer,
                       uint16_t *experts, float *weights, uint8_t *bits);

/* Every layer of one (request, position) at once: layer l's top_k experts,
 * weights and bits (if not NULL) at [l * stride, l * stride + top_k) of
 * each array (stride >= top_k, in elements; top_k gives [layers][top_k]);
 * the same values as one trace_source_route per layer, with one call
 * instead of `layers`.  A caller that keeps [layer][token][top_k] passes
 * its token's column and stride = tokens * top_k: no copy in between. */
int trace_source_route_token(trace_source *s, uint32_t req, uint32_t pos,
                             uint16_t *experts, float *weights, uint8_t *bits, size_t stride);

/* XXH3-128 hex of the file, or a hash of the generator parameters + seed:
 * stored with results. */
const char *trace_source_id(const trace_source *s);

void trace_source_free(trace_source *s);

/* Bound of the generated-routing memo in bytes (0 turns it off: each source
 * generates its own routing and keeps nothing once freed).  Default:
 * D2MOE_ROUTE_MEMO_MB MiB from the environment, else 128 MiB.  Takes effect
 * for what is recorded from then on. */
void trace_source_memo_limit(size_t bytes);

/* Routing bytes the memo holds now. */
size_t trace_source_memo_bytes(void);

/* on = 1: record generated routing from the first source of an id on, for a
 * process that will open more on the same id (a sweep worker); 0 (the
 * default): from the second, so a single run pays no copies. */
void trace_source_memo_record_first(int on);

#endif
