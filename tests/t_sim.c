/* t_sim.c - the serving simulator: cost model known answers, closed-form
 * pipeline cases (pure I/O-bound step, pure compute-bound step, the
 * two-expert HEBF example where id-order leaves a bubble), the optimal
 * planner against brute force, memory policies, bit routing, out of memory
 * as a result, bad arguments, repeatability, nested levels of an expert
 * held together until its last item (observed through sim_run_observed and
 * the timeline).  The library checks its
 * invariants (budget, load-before-compute, bytes accounted, ascending
 * levels) on every run and fails with D2_EINTERNAL, so every run here also
 * tests them.  Routing is built by hand: no dependency on src/trace. */
#include "sim/sim.h"
#include "sim/policy.h"
#include "sim/bitroute.h"
#include "sim/cost.h"
#include "sim/mem.h"
#include "sim/plan.h"
#include "core/err.h"
#include "core/rng.h"
#include "tap.h"

/* a tiny model: 1..2 MoE layers, experts of 2 x 128 x 256 = 65536 weights */
static model tiny(int layers, int experts, int top_k)
{
    model m;
    param_defaults(&model_params, &m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.layers = layers; m.hidden = 128; m.expert_ffn = 256; m.expert_matrices = 2;
    m.experts = experts; m.top_k = top_k; m.heads = 1; m.kv_heads = 1; m.head_dim = 128; m.vocab = 16;
    return m;
}

/* unified device: flash 1 GB/s, no latencies, 10 GFLOP/s, 1 TB/s memory */
static device dev(void)
{
    device d;
    param_defaults(&device_params, &d);
    snprintf(d.name, sizeof d.name, "testdev");
    d.mem_bytes = 1000000000000LL; d.mem_bw = 1e12; d.fp16_flops = 10e9; d.unified = 1;
    d.host_mem_bytes = d.mem_bytes; d.flash_bw = 1e9; d.flash_lat_ns = 0; d.dequant_rate = 1e12;
    return d;
}

static sim_params params(const char *policy)
{
    sim_params p;
    param_defaults(&sim_param_table, &p);
    snprintf(p.policy, sizeof p.policy, "%s", policy);
    p.router_overhead = 0;
    p.transient_fp16 = 0;
    p.nonexpert_bits = 16;
    return p;
}

/* routing table: expert of request r at every position and layer = map[r] */
typedef struct fixed_route { const uint16_t *map; uint32_t k; } fixed_route;
static int route_fixed(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)pos; (void)layer;
    fixed_route *f = u;
    for (uint32_t i = 0; i < f->k; i++) { e[i] = f->map[req * f->k + i]; w[i] = 1.0f / (float)(i + 1); if (b) b[i] = 0; }
    return D2_OK;
}

/* random routing from (seed, req, pos, layer): top_k distinct experts, skewed */
typedef struct rand_route { uint32_t E, K; uint64_t seed; } rand_route;
static int route_rand(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    rand_route *r = u;
    gsl_rng *g = rng_new(r->seed, ((uint64_t)req << 40) ^ ((uint64_t)pos << 16) ^ layer);
    for (uint32_t i = 0; i < r->K; i++) {
        uint16_t x;
        int dup;
        do {
            double v = gsl_rng_uniform(g);
            x = (uint16_t)((double)r->E * v * v); /* skew toward low ids */
            dup = 0;
            for (uint32_t j = 0; j < i; j++) dup |= e[j] == x;
        } while (dup);
        e[i] = x;
        w[i] = (float)gsl_rng_uniform(g);
        if (b) b[i] = (uint8_t)(2 + gsl_rng_uniform_int(g, 3));
    }
    gsl_rng_free(g);
    return D2_OK;
}

static double metric(const sim_result *r, const char *name)
{
    double v = -1;
    if (sim_result_metric(r, name, &v)) tap_diag("no metric %s", name);
    return v;
}

static void test_cost(void)
{
    is_int(cost_dur_ns(3.5e9, 3.5e9), 1000000000, "3.5 GB at 3.5 GB/s = 1 s exactly");
    is_int(cost_dur_ns(1, 3e9), 1, "1 byte at 3 GB/s rounds up to 1 ns");
    is_int(cost_dur_ns(10, 3e9), 4, "10 bytes at 3 GB/s = 3.33 ns -> 4 ns");
    is_int(cost_dur_ns(0, 1e9), 0, "nothing takes 0 ns");
    is_int(cost_dur_ns(1e30, 1e-6), COST_NS_MAX, "10^30 units at 10^-6/s saturates at COST_NS_MAX (no float-to-int overflow)");
    device d = dev();
    d.unified = 0; d.link_bw = 25e9; d.link_lat_ns = 10000; d.flash_lat_ns = 66667; d.io_overhead_ns = 5000;
    d.flash_bw = 3.5e9;
    /* by hand: 5 us + 66.667 us + 100 MB / 3.5 GB/s (28,571,428.57 -> 28,571,429 ns) + 10 us + 100 MB / 25 GB/s (4 ms) */
    is_int(cost_load_ns(&d, 100000000, 0), 5000 + 66667 + 28571429 + 10000 + 4000000, "load of 100 MB from flash over PCIe, by hand");
    d.host_copy_bw = 10e9;
    /* a page-cache hit: the read()'s copy into the user buffer, 100 MB / 10 GB/s = 10 ms, then the link */
    is_int(cost_load_ns(&d, 100000000, 1), 5000 + 10000 + 10000000 + 4000000, "from the page cache: host copy + link copy, no flash");
    d.buffered_io = 1; /* a buffered flash read pays the host copy too */
    is_int(cost_load_ns(&d, 100000000, 0), 5000 + 66667 + 28571429 + 10000000 + 10000 + 4000000, "buffered flash read: flash + host copy + link");
    /* pipelined in 10 MB chunks (n = 10): max stage 28,571,429 + (sum - max) / 10 = 1,400,000 */
    d.io_chunk_bytes = 10000000;
    is_int(cost_load_ns(&d, 100000000, 0), 5000 + 66667 + 10000 + 28571429 + 1400000, "chunked pipelining: slowest stage + one chunk of the others");
    is_int(cost_load_floor_ns(&d, 100000000, 0), 28571429, "floor of a flash load: its slowest stage (flash)");
    is_int(cost_load_floor_ns(&d, 100000000, 1), 10000000, "floor of a page-cache hit: its slowest stage (host copy)");
    d.unified = 1;
    is_int(cost_load_ns(&d, 100000000, 1), 5000 + 10000000, "unified memory: the read()'s copy is the transfer");
    d.unified = 0; d.buffered_io = 0; d.io_chunk_bytes = 0;
    d.flash_read_bytes = 1 << 20; d.flash_qd = 4;
    /* 96 reads of 1 MiB -> 24 waves of latency */
    is_int(cost_load_ns(&d, 96 << 20, 0), 5000 + 24 * 66667 + cost_dur_ns(96 << 20, 3.5e9) + 10000 + cost_dur_ns(96 << 20, 25e9),
           "reads split by flash_read_bytes pay one latency per queue-depth wave");
    cost_compute c;
    device t = dev();
    cost_expert(&t, 65536, 66000, 8, 9, &c);
    /* GEMM 2*65536*9 FLOP / 10 GFLOP/s = 117,964.8 -> 117,965 ns; dequant 65536 / 1e12 -> 66 ns */
    is_int(c.gemm, 117965, "expert GEMM is FLOP-bound: 117,965 ns by hand");
    is_int(c.dequant, 66, "dequantization at dequant_rate: 66 ns by hand");
    cost_expert(&t, 65536, 131072, 16, 1, &c);
    is_int(c.dequant, 0, "FP16 needs no dequantization");
    /* the weight-stream floor: memory 1 GB/s, one token, 65,536 weights
     * stored as an INT2 base level of 18,432 bytes.  FLOPs: 2 x 65,536 /
     * 10 GFLOP/s = 13,107.2 -> 13,108 ns.  With an FP16 copy step
     * (dequant_rate 1e12) the FP16 weights stream: 131,072 B / 1 GB/s =
     * 131,072 ns.  Without one (dequant_rate 1e16 >= 1e15, kernels on the
     * bit planes) the stored bytes do: 18,432 ns; dequantization 65,536 /
     * 1e16 s rounds up to 1 ns. */
    t.mem_bw = 1e9;
    cost_expert(&t, 65536, 18432, 2, 1, &c);
    is_int(c.gemm, 131072, "with an FP16 copy step the GEMM floor streams 2 bytes per weight: 131,072 ns by hand");
    t.dequant_rate = 1e16;
    cost_expert(&t, 65536, 18432, 2, 1, &c);
    is_int(c.gemm, 18432, "without one (dequant_rate 1e16) it streams the stored bytes: 18,432 ns by hand");
    is_int(c.total, 18433, "total = 18,432 + 1 ns of dequantization + no kernel overhead");
    cost_expert(&t, 65536, 18432, 2, 16, &c);
    is_int(c.gemm, 209716, "16 tokens are FLOP-bound either way: 2 x 65,536 x 16 / 10 GFLOP/s = 209,715.2 -> 209,716 ns");
    t.dequant_rate = 1e15 * (1 - 1e-9);
    cost_expert(&t, 65536, 18432, 2, 1, &c);
    is_int(c.gemm, 131072, "dequant_rate just below 1e15: an FP16 copy step again");
    /* device.cold_weight_bw: the stored bytes once more, from DRAM, added to
     * the roofline: 16 tokens, 18,432 stored bytes at 1 GB/s = 18,432 ns on
     * top of the 209,716 ns FLOP term (by hand); 0 leaves it unchanged */
    t.dequant_rate = 1e16;
    t.cold_weight_bw = 1e9;
    cost_expert(&t, 65536, 18432, 2, 16, &c);
    is_int(c.gemm, 209716 + 18432, "cold weights add stored / cold_weight_bw: 209,716 + 18,432 ns by hand");
    t.cold_weight_bw = 0;
}

/* One step, R requests at prefill P = 1, gen = 1: exactly one forward step. */
struct freed_log;
static int run_obs(const sim_input *in, FILE *tl, struct freed_log *fl, sim_result **r);

static sim_result *run1(const char *policy, const char *plan, const uint16_t *map, int R, int layers, int64_t budget,
                        const device *d, FILE *tl)
{
    model m = tiny(layers, 2, 1);
    sim_params p = params(policy);
    snprintf(p.plan, sizeof p.plan, "%s", plan);
    p.requests = R; p.prompt = 1; p.gen = 1; p.budget = budget;
    fixed_route fr = {map, 1};
    sim_input in = {.model = &m, .device = d, .params = &p, .route = route_fixed, .route_user = &fr, .route_has_bits = 0, .route_token = NULL};
    sim_result *r = NULL;
    int rc = run_obs(&in, tl, NULL, &r);
    if (rc) tap_diag("sim_run: %s", d2_err_msg());
    return r;
}

/* ---- nested levels held together (observer + timeline) ---------------- */

typedef struct freed { sim_ns t; uint32_t layer, expert, level; } freed;
typedef struct freed_log { freed *v; size_t n, cap; } freed_log;

static void on_freed(void *user, sim_ns t, uint32_t layer, uint32_t expert, uint32_t level)
{
    freed_log *f = user;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->v = realloc(f->v, f->cap * sizeof *f->v);
        if (!f->v) abort();
    }
    f->v[f->n++] = (freed){t, layer, expert, level};
}

typedef struct tl_line { sim_ns s, e; int layer, expert, level; } tl_line;

/* A run with the library's timeline writer (an observer) into tl and the
 * free hook into fl; either may be NULL. */
typedef struct tl_obs { sim_timeline tw; sim_observer tlo; freed_log *fl; } tl_obs;
static void tobs_op(void *u, const sim_op *op)
{
    tl_obs *t = u;
    if (t->tlo.op) t->tlo.op(t->tlo.user, op);
}
static void tobs_freed(void *u, sim_ns t, uint32_t layer, uint32_t expert, uint32_t level)
{
    tl_obs *o = u;
    if (o->fl) on_freed(o->fl, t, layer, expert, level);
}
static int run_obs(const sim_input *in, FILE *tl, struct freed_log *fl, sim_result **r)
{
    tl_obs t;
    memset(&t, 0, sizeof t);
    if (tl) sim_timeline_begin(&t.tw, tl, &t.tlo);
    t.fl = fl;
    sim_observer o = {.op = tobs_op, .unit_freed = tobs_freed, .user = &t};
    return sim_run_observed(in, &o, r);
}

/* Compute lines of a timeline (non-expert lines have expert -1). */
static tl_line *read_computes(FILE *tl, size_t *n)
{
    char line[256], q[16];
    size_t cap = 256;
    tl_line *v = malloc(cap * sizeof *v);
    *n = 0;
    rewind(tl);
    while (v && fgets(line, sizeof line, tl)) {
        long long s0, e0;
        int l, e, k;
        unsigned tok;
        if (sscanf(line, "%lld,%lld,%15[^,],%d,%d,%d,%u", &s0, &e0, q, &l, &e, &k, &tok) != 7 || strcmp(q, "compute")) continue;
        if (*n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        if (v) v[(*n)++] = (tl_line){s0, e0, l, e, k};
    }
    return v;
}

/* Frees that broke the rule, in the layer step (between two non-expert
 * lines) whose span holds the free.  literal: a free of (j, u) while an
 * item (j, u' > u) of the step has not finished.  Otherwise: a free of
 * (j, u) after its own compute started in the step while any other item of
 * expert j in the step has not finished (frees of units the step has not
 * used yet are allowed: a deferred expert's resident levels). */
static int bad_frees(FILE *tl, const freed_log *f, int literal)
{
    size_t n;
    tl_line *c = read_computes(tl, &n);
    int bad = 0;
    for (size_t i = 0; c && i < f->n; i++) {
        const freed *x = &f->v[i];
        size_t w = n;
        for (size_t k = 0; k < n; k++)
            if (c[k].expert < 0 && c[k].s <= x->t) w = k;
        if (w == n || c[w].layer != (int)x->layer) continue;
        int used = literal;
        for (size_t k = w + 1; k < n && c[k].expert >= 0; k++)
            if (c[k].expert == (int)x->expert && c[k].level == (int)x->level && c[k].s <= x->t) used = 1;
        for (size_t k = w + 1; used && k < n && c[k].expert >= 0; k++)
            if (c[k].expert == (int)x->expert && c[k].e > x->t &&
                (literal ? c[k].level > (int)x->level : c[k].level != (int)x->level)) {
                if (bad++ < 3)
                    tap_diag("layer %u expert %u level %u freed at %lld ns; level %d computes until %lld ns", x->layer,
                             x->expert, x->level, (long long)x->t, c[k].level, (long long)c[k].e);
                break;
            }
    }
    if (!c) bad = -1;
    free(c);
    return bad;
}

/* Deferred experts that were partly hits after all, in a timeline: in a
 * layer step, a level of expert j is freed and then loaded again in the
 * same step, while another level of j computes in the step without a load.
 * A level resident at planning is freed within its step only if its
 * expert was deferred (an open expert holds its resident levels), and a
 * deferred expert has no hits at planning: that other level was resident
 * when its load came up. */
static int deferred_hits(FILE *tl, const freed_log *f)
{
    char line[256], q[16];
    size_t n = 0, cap = 256;
    tl_line *v = malloc(cap * sizeof *v);
    int *io = malloc(cap * sizeof *io), found = 0;
    rewind(tl);
    while (v && io && fgets(line, sizeof line, tl)) {
        long long s0, e0;
        int l, e, k;
        unsigned tok;
        if (sscanf(line, "%lld,%lld,%15[^,],%d,%d,%d,%u", &s0, &e0, q, &l, &e, &k, &tok) != 7) continue;
        if (n == cap) {
            cap *= 2;
            v = realloc(v, cap * sizeof *v);
            io = realloc(io, cap * sizeof *io);
            if (!v || !io) break;
        }
        io[n] = !strcmp(q, "io") ? (tok > 0 ? 1 : 2) : 0; /* 1 load, 2 preload, 0 compute */
        v[n++] = (tl_line){s0, e0, l, e, k};
    }
    for (size_t w = 0; v && io && w < n; w++) {
        if (io[w] || v[w].expert >= 0) continue; /* a non-expert line opens a layer step */
        size_t end = w + 1;
        while (end < n && !(io[end] == 0 && v[end].expert < 0)) end++;
        sim_ns t1 = end < n ? v[end].s : INT64_MAX;
        for (size_t i = 0; i < f->n; i++) {
            const freed *x = &f->v[i];
            if (x->t <= v[w].s || x->t >= t1 || (int)x->layer != v[w].layer) continue;
            int reloaded = 0, hit = 0;
            for (size_t k = w + 1; k < end; k++)
                reloaded |= io[k] == 1 && v[k].expert == (int)x->expert && v[k].level == (int)x->level && v[k].s >= x->t;
            for (size_t c = w + 1; reloaded && c < end; c++) {
                if (io[c] || v[c].expert != (int)x->expert) continue;
                int loaded = 0;
                for (size_t k = w + 1; k < end; k++)
                    loaded |= io[k] == 1 && v[k].expert == v[c].expert && v[k].level == v[c].level;
                hit |= !loaded;
            }
            found += reloaded && hit;
        }
    }
    free(v);
    free(io);
    return found;
}

/* requests: expert (top-1) and recorded bit-width */
typedef struct bits_route { const uint16_t *ex; const uint8_t *bits; } bits_route;
static int route_bits(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)pos; (void)layer;
    bits_route *br = u;
    e[0] = br->ex[req];
    w[0] = 1;
    if (b) b[0] = br->bits[req];
    return D2_OK;
}

/* One layer step of d2moe-v1 (INT2 base + 2 planes, hebf, budget policy) on
 * two experts, budget = one expert's three levels S = b1 + b2 + b3 =
 * 18,432 + 9,216 + 9,216 = 36,864 bytes = 2 x b1.  Expert 1: three tokens
 * at INT2 and one at INT4 (units 1, 2, 3 with 4, 1, 1 tokens); expert 0:
 * two tokens at INT2 (unit 1, 2 tokens).  hebf loads (1,1), (0,1), (1,2),
 * (1,3); after the first two the budget is full.  The old loop unpinned
 * (1,1) when it had computed and evicted it to load (1,2): expert 1's
 * base level was gone while its levels 2 and 3 were still to compute.
 * Now (1,1) stays until (1,3) has computed; (1,2) waits until expert 0 is
 * done and frees (0,1), the only eviction.  By hand (io_k: load of unit
 * k, c_k(n): compute of unit k for n tokens, A: non-expert work):
 *   t = A + io_1: (1,1) loaded, computes c_1(4) while (0,1) loads;
 *   (0,1) computes c_1(2) after it: expert 0 done at T = A + io_1 + c_1(4) + c_1(2);
 *   (1,2) loads T .. T + io_2, computes c_2(1) (> io_3, so (1,3), loaded
 *   meanwhile, follows at once) and (1,3) computes c_3(1):
 *   makespan = A + io_1 + c_1(4) + c_1(2) + io_2 + c_2(1) + c_3(1). */
static void test_nested_hold(void)
{
    model m = tiny(1, 2, 1);
    device d = dev();
    sim_params p = params("d2moe-v1");
    snprintf(p.bitroute, sizeof p.bitroute, "trace");
    p.requests = 6; p.prompt = 1; p.gen = 1;
    int64_t b1 = model_expert_level_bytes(&m, 2, 1, 128), b2 = model_expert_level_bytes(&m, 2, 2, 128);
    int64_t b3 = model_expert_level_bytes(&m, 2, 3, 128);
    is_int(b1 + b2 + b3, 36864, "S = 18,432 + 9,216 + 9,216 = 36,864 bytes = 2 x b1");
    p.budget = b1 + b2 + b3;
    static const uint16_t ex[6] = {1, 1, 1, 1, 0, 0};
    static const uint8_t bits[6] = {2, 2, 2, 4, 2, 2};
    bits_route br = {ex, bits};
    FILE *tl = tmpfile();
    freed_log fl = {0};
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_bits, .route_user = &br, .route_has_bits = 1, .route_token = NULL};
    sim_result *r = NULL;
    int rc = run_obs(&in, tl, &fl, &r);
    ok(rc == D2_OK && r, "one step at a budget of one expert's three levels runs%s%s", rc ? ": " : "", rc ? d2_err_msg() : "");
    if (r && tl) {
        sim_ns io1 = cost_load_ns(&d, b1, 0), io2 = cost_load_ns(&d, b2, 0);
        cost_compute c14, c12, c21, c31;
        cost_expert(&d, 65536, b1, 2, 4, &c14);
        cost_expert(&d, 65536, b1, 2, 2, &c12);
        cost_expert(&d, 65536, b2, 3, 1, &c21);
        cost_expert(&d, 65536, b3, 4, 1, &c31);
        sim_ns A = cost_nonexpert_ns(&d, &m, 16, 16, 6, 6);
        ok(c21.total > cost_load_ns(&d, b3, 0) && c14.total > io1, "the case is set up as intended: c_2(1) > io_3, c_1(4) > io_1");
        is_int(bad_frees(tl, &fl, 1), 0, "no unit (j, u) freed while an item (j, u' > u) of the step is pending");
        ok(fl.n == 1 && fl.v[0].expert == 0 && fl.v[0].level == 1 && fl.v[0].t == A + io1 + c14.total + c12.total,
           "the one eviction is (0,1), when expert 0 is done (%zu frees; first: expert %u level %u at %lld ns)", fl.n,
           fl.n ? fl.v[0].expert : 0, fl.n ? fl.v[0].level : 0, fl.n ? (long long)fl.v[0].t : 0LL);
        is_near(metric(r, "makespan_s") * 1e9, A + io1 + c14.total + c12.total + io2 + c21.total + c31.total, 0.5,
                "makespan = A + io_1 + c_1(4) + c_1(2) + io_2 + c_2(1) + c_3(1), by hand");
        is_near(metric(r, "loads"), 4, 0, "four loads, none repeated");
        is_near(metric(r, "evictions"), 1, 0, "one eviction");
        ok(metric(r, "peak_expert_mb") * 1e6 <= (double)p.budget, "resident experts within the budget");
    }
    sim_result_free(r);
    free(fl.v);
    if (tl) fclose(tl);

    /* a step whose partly resident experts cannot all hold their levels at
     * once: some are deferred (their resident levels stay evictable, all
     * their levels queued), and a deferred level still resident when its
     * turn comes is a hit then (found by a search over seeds) */
    {
        model m3 = tiny(1, 3, 2);
        sim_params q = params("d2moe-v1");
        q.requests = 4; q.prompt = 2; q.gen = 6; q.budget = b1 + b2 + b3 + 2 * b2;
        snprintf(q.bitroute, sizeof q.bitroute, "trace");
        rand_route rr = {3, 2, 2};
        FILE *t3 = tmpfile();
        freed_log f3 = {0};
        sim_input in3 = {.model = &m3, .device = &d, .params = &q, .route = route_rand, .route_user = &rr, .route_has_bits = 1, .route_token = NULL};
        r = NULL;
        rc = run_obs(&in3, t3, &f3, &r);
        ok(rc == D2_OK && r && t3, "deferred experts: runs%s%s", rc ? ": " : "", rc ? d2_err_msg() : "");
        if (r && t3) {
            int late = deferred_hits(t3, &f3);
            ok(late > 0, "an expert deferred: a resident level of it evicted and reloaded in its step, another a hit when "
               "its load came up (%d such)", late);
            is_int(bad_frees(t3, &f3, 0), 0, "and no level freed while its expert still computes (%zu frees)", f3.n);
        }
        sim_result_free(r);
        free(f3.v);
        if (t3) fclose(t3);
    }

    /* random routing at the smallest legal budget (one expert's levels):
     * every memory policy and planner, with preloading too; the rule holds
     * on every step (the loop also checks it itself: D2_EINTERNAL) */
    model m4 = tiny(4, 8, 2);
    struct { const char *mem, *plan, *prefetch; } cases[] = {
        {"budget", "hebf", ""}, {"lru", "hebf", ""}, {"lfu", "id-order", ""}, {"none", "hebf", ""},
        {"budget", "optimal", ""}, {"budget", "sequential", ""}, {"lru", "hebf", "oracle"}, {"budget", "hebf", "paths"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int extra = 0; extra < 2; extra++) {
            sim_params q = params("d2moe-v1");
            q.requests = 6; q.prompt = 3; q.gen = 4;
            q.budget = b1 + b2 + b3 + extra * b1; /* S, then S + one base level (experts interleave) */
            snprintf(q.mem, sizeof q.mem, "%s", cases[i].mem);
            snprintf(q.plan, sizeof q.plan, "%s", cases[i].plan);
            snprintf(q.prefetch, sizeof q.prefetch, "%s", cases[i].prefetch);
            rand_route rr = {8, 2, 11};
            FILE *t2 = tmpfile();
            freed_log f2 = {0};
            sim_input in2 = {.model = &m4, .device = &d, .params = &q, .route = route_rand, .route_user = &rr, .route_has_bits = 1, .route_token = NULL};
            r = NULL;
            rc = run_obs(&in2, t2, &f2, &r);
            ok(rc == D2_OK && r && metric(r, "peak_expert_mb") * 1e6 <= (double)q.budget && t2 && bad_frees(t2, &f2, 0) == 0,
               "budget %s, mem %s, plan %s%s%s: runs within it, no level freed while its expert still computes "
               "(%zu frees)%s%s", extra ? "S + b1" : "S", cases[i].mem, cases[i].plan, cases[i].prefetch[0] ? ", prefetch " : "",
               cases[i].prefetch, f2.n, rc ? ": " : "", rc ? d2_err_msg() : "");
            sim_result_free(r);
            free(f2.v);
            if (t2) fclose(t2);
        }
}

static void test_closed_form(void)
{
    device d = dev();
    model m = tiny(1, 2, 1);
    int64_t bytes = model_expert_bytes_uniform(&m, 8, 128);
    sim_ns io = cost_load_ns(&d, bytes, 0);
    cost_compute c1, c9;
    cost_expert(&d, 65536, bytes, 8, 1, &c1);
    cost_expert(&d, 65536, bytes, 8, 9, &c9);
    sim_ns A = cost_nonexpert_ns(&d, &m, 16, 16, 10, 10);
    tap_diag("io %lld ns, compute 1 token %lld ns, 9 tokens %lld ns, non-expert %lld ns", (long long)io,
             (long long)c1.total, (long long)c9.total, (long long)A);
    ok(c1.total < io && c9.total >= io, "the case is set up as intended: c(1) < io <= c(9)");
    uint16_t map[10] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1}; /* expert 0: 1 token, expert 1: 9 tokens */

    /* id-order: load 0, load 1 back to back; compute 0 waits io, compute 1 waits 2 io */
    sim_result *r = run1("moqe-dynaio-int8", "id-order", map, 10, 1, 1000000000, &d, NULL);
    ok(r != NULL, "id-order run");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + 2 * io + c9.total, 0.5, "id-order makespan = A + 2 io + c(9)");
        is_near(metric(r, "bubble_s") * 1e9, 2 * io - c1.total, 0.5, "id-order bubble = io (first load) + io - c(1) (the hole)");
        sim_result_free(r);
    }
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &d, NULL);
    ok(r != NULL, "hebf run");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + io + c9.total + c1.total, 0.5, "hebf makespan = A + io + c(9) + c(1)");
        is_near(metric(r, "bubble_s") * 1e9, io, 0.5, "hebf bubble = only the first load: no hole");
        sim_result_free(r);
    }
    /* I/O interference (device.io_interference = x): compute runs at 1/(1+x)
     * while a load is in flight.  hebf: c(9) overlaps load 0 for io ns, so it
     * does io/(1+x) of its work then and ends io*x/(1+x) later. */
    device di = d;
    di.io_interference = 1.0;
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &di, NULL);
    ok(r != NULL, "hebf run with io_interference = 1");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + io + c9.total + c1.total + io / 2.0, 1.5,
                "interference 1: hebf makespan = A + io + c(9) + c(1) + io * x/(1+x)");
        is_near(metric(r, "compute_busy_s") * 1e9, A + c9.total + c1.total + io / 2.0, 1.5,
                "interference 1: compute busy grows by the same io/2 (the overlapped part ran at half rate)");
        sim_result_free(r);
    }
    di.io_interference = 0.25;
    r = run1("moqe-dynaio-int8", "id-order", map, 10, 1, 1000000000, &di, NULL);
    ok(r != NULL, "id-order run with io_interference = 0.25");
    if (r) {
        /* id-order: c(1) starts at A + io while load 1 runs until A + 2 io > its end, so
         * all of c(1) runs at 1/1.25; c(9) runs alone after load 1 */
        is_near(metric(r, "makespan_s") * 1e9, A + 2 * io + c9.total, 1.5,
                "interference 0.25, id-order: c(1) slowed inside the hole, makespan unchanged = A + 2 io + c(9)");
        is_near(metric(r, "compute_busy_s") * 1e9, A + 1.25 * c1.total + c9.total, 1.5,
                "interference 0.25, id-order: compute busy = A + 1.25 c(1) + c(9)");
        sim_result_free(r);
    }
    /* read interference (device.read_interference = y): a flash load runs at
     * 1/(1+y) while an expert compute runs.  hebf: load 1 starts with c(9)
     * at A + io; with y = 3 it has done c(9)/4 of its io when c(9) ends
     * (c(9) < 4 io) and the rest alone, so c(1) starts at
     * A + io + c(9) + io - c(9)/4. */
    device dr = d;
    dr.read_interference = 3.0;
    ok(c9.total < 4 * io, "the case is set up as intended: load 1 outlasts c(9) at y = 3");
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &dr, NULL);
    ok(r != NULL, "hebf run with read_interference = 3");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + io + c9.total + (io - c9.total / 4.0) + c1.total, 1.5,
                "read interference 3: hebf makespan = A + io + c(9) + (io - c(9)/4) + c(1)");
        is_near(metric(r, "io_busy_s") * 1e9, io + c9.total + (io - c9.total / 4.0), 1.5,
                "read interference 3: I/O busy = io (alone) + c(9) + io - c(9)/4 (load 1, slowed while c(9) ran)");
        is_near(metric(r, "compute_busy_s") * 1e9, A + c9.total + c1.total, 1.5, "read interference 3: computes unchanged");
        sim_result_free(r);
    }
    /* both (x = y = 1): while c(9) and load 1 overlap each runs at half
     * rate; load 1 ends 2 io after it started (c(9) >= io), having let c(9)
     * do io of its work; c(9) finishes the rest alone, then c(1):
     * makespan A + io + 2 io + (c(9) - io) + c(1). */
    dr.read_interference = 1.0;
    dr.io_interference = 1.0;
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &dr, NULL);
    ok(r != NULL, "hebf run with io_interference = read_interference = 1");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + 2 * io + c9.total + c1.total, 2.5,
                "both interferences 1: hebf makespan = A + 2 io + c(9) + c(1)");
        is_near(metric(r, "io_busy_s") * 1e9, 3 * io, 2.5, "both interferences 1: I/O busy = io + 2 io");
        is_near(metric(r, "compute_busy_s") * 1e9, A + c9.total + io + c1.total, 2.5,
                "both interferences 1: compute busy = A + (c(9) + io) + c(1)");
        sim_result_free(r);
    }
    /* a timeline under read interference: every load is told once, with
     * the duration it had (ended at its event, not at its start's estimate) */
    dr.io_interference = 0;
    dr.read_interference = 3.0;
    FILE *tl = tmpfile();
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &dr, tl);
    if (r && tl) {
        rewind(tl);
        char line[512];
        int loads = 0;
        double longest = 0;
        while (fgets(line, sizeof line, tl)) {
            if (!strstr(line, ",io,")) continue;
            loads++;
            double t0, t1;
            const char *p = line;
            if (sscanf(p, "%lf,%lf", &t0, &t1) == 2 && t1 - t0 > longest) longest = t1 - t0; /* ns */
        }
        ok(loads == 2, "read interference: the timeline has both loads (%d)", loads);
        is_near(longest, c9.total + (io - c9.total / 4.0), 2.5, "read interference: load 1's row lasts c(9) + io - c(9)/4");
    } else {
        ok(0, "read interference: timeline run");
        ok(0, "read interference: timeline run");
    }
    sim_result_free(r);
    if (tl) fclose(tl);
    r = run1("moqe-dynaio-int8", "sequential", map, 10, 1, 1000000000, &d, NULL);
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + 2 * io + c1.total + c9.total, 0.5, "sequential makespan = A + io + c(1) + io + c(9)");
        sim_result_free(r);
    }

    /* pure I/O-bound: compute nearly free -> A + 2 io + c_last */
    device fast = d;
    fast.fp16_flops = 1e17;
    cost_compute f9;
    cost_expert(&fast, 65536, bytes, 8, 9, &f9);
    sim_ns Af = cost_nonexpert_ns(&fast, &m, 16, 16, 10, 10);
    r = run1("moqe-dynaio-int8", "hebf", map, 10, 1, 1000000000, &fast, NULL);
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, Af + 2 * io + f9.total, 0.5, "I/O-bound step: A + io + io + c(9)");
        is_near(metric(r, "io_busy_s") * 1e9, 2 * io, 0.5, "I/O busy = 2 io");
        /* the bound, by hand: one forward step needs both units and starts
         * with nothing resident, so 2 x bytes cross flash at 1 GB/s; FLOPs
         * 2 W per use x 10 uses + the non-expert work at 1e17 FLOP/s */
        is_near(metric(r, "bound_io_s") * 1e9, (double)cost_dur_ns(2.0 * (double)bytes, 1e9), 0.5, "bound: I/O = 2 units from flash");
        is_near(metric(r, "bound_flops_s"), (2.0 * 65536 * 10 + cost_nonexpert_flops(&m, 10, 10)) / 1e17, 1e-15,
                "bound: FLOPs at peak");
        /* the memory floor (by hand below, the memory-bound case): 407,808 B at 1 TB/s, above the FLOPs */
        is_near(metric(r, "bound_mem_s"), 407808 / 1e12, 1e-18, "bound: memory = 407,808 B at 1 TB/s");
        is_near(metric(r, "bound_compute_s"), metric(r, "bound_mem_s"), 0, "bound: compute unit = the larger, memory");
        is_near(metric(r, "bound_tps"), 10 / metric(r, "bound_io_s"), 1e-6, "I/O-bound: bound_tps = 10 tokens / bound_io_s");
        is_near(metric(r, "bound_util"), 2.0 * (double)io / (double)(Af + 2 * io + f9.total), 1e-6,
                "I/O-bound: bound_util = 2 io / (A + 2 io + c(9))");
        sim_result_free(r);
    }
    /* pure compute-bound: hold (nothing to load) -> A + c(1) + c(9) */
    r = run1("hold-int8", "", map, 10, 1, 1000000000, &d, NULL);
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, A + c1.total + c9.total, 0.5, "compute-bound step (hold): A + c(1) + c(9)");
        is_near(metric(r, "io_gb"), 0, 0, "hold loads nothing");
        is_near(metric(r, "hit_rate"), 1, 0, "hold: every level a hit");
        is_near(metric(r, "bubble_s"), 0, 0, "hold: no bubble");
        is_near(metric(r, "bound_io_s"), 0, 0, "hold: no I/O in the bound (everything resident from the start)");
        double fl = 2.0 * 65536 * 10 + cost_nonexpert_flops(&m, 10, 10);
        is_near(metric(r, "bound_tps"), 10 / (fl / 10e9), 1e-6, "compute-bound: bound_tps = 10 / (FLOPs / 10 GFLOP/s)");
        ok(metric(r, "bound_util") <= 1 && metric(r, "bound_util") > 0.5, "compute-bound: bound_util %.4f (dequant, memory floors)", metric(r, "bound_util"));
        sim_result_free(r);
    }
    /* memory-bound: the same hold run with FLOPs nearly free (1e17 FLOP/s)
     * and accelerator memory at 2 GB/s x mem_eff 0.5 = 1 GB/s.  By hand, the
     * bytes the one forward step's computes stream: two expert units (1 and
     * 9 tokens), each an FP16 weight stream of 2 x 65,536 B (the device
     * dequantizes: dequant_rate 1e12 < COST_NO_FP16_COPY) = 262,144 B; the
     * non-expert weights at 16 bits, 70,272 parameters (embeddings 2 x 16 x
     * 128 = 4,096, final norm 128, attention 4 x 128 x 128 = 65,536, two
     * norms 256, router 128 x 2 = 256) = 140,544 B; the KV cache read, 512 B
     * a token (K and V, 128 elements each, at 16 bits) x a context sum of
     * 10 = 5,120 B.  In all 407,808 B at 1 GB/s = 407,808 ns: the bound. */
    device dm = d;
    dm.fp16_flops = 1e17;
    dm.mem_bw = 2e9;
    dm.mem_eff = 0.5;
    ok(model_nonexpert_params(&m) == 70272 && model_kv_bytes_per_token(&m, 16) == 512,
       "the case is set up as intended: 70,272 non-expert parameters, 512 KV bytes a token");
    cost_compute m1, m9;
    cost_expert(&dm, 65536, bytes, 8, 1, &m1);
    cost_expert(&dm, 65536, bytes, 8, 9, &m9);
    sim_ns Am = cost_nonexpert_ns(&dm, &m, 16, 16, 10, 10);
    is_near(m1.stream, 131072, 0, "memory-bound: an expert unit streams its FP16 weights, 131,072 B");
    r = run1("hold-int8", "", map, 10, 1, 1000000000, &dm, NULL);
    ok(r != NULL, "memory-bound hold run");
    if (r) {
        is_near(metric(r, "makespan_s") * 1e9, Am + m1.total + m9.total, 0.5, "memory-bound (hold): A + c(1) + c(9)");
        is_near(metric(r, "bound_mem_s"), 407808e-9, 1e-18, "memory-bound: bound_mem_s = 407,808 B / 1 GB/s, by hand");
        is_near(metric(r, "bound_compute_s"), 407808e-9, 1e-18, "memory-bound: the compute unit's floor is the memory term");
        is_near(metric(r, "bound_flops_s"), (2.0 * 65536 * 10 + cost_nonexpert_flops(&m, 10, 10)) / 1e17, 1e-15,
                "memory-bound: FLOPs at peak, far below");
        is_near(metric(r, "bound_tps"), 10 / 407808e-9, 1e-6, "memory-bound: bound_tps = 10 tokens / 407,808 ns");
        is_near(metric(r, "bound_util"), 407808.0 / (double)(Am + m1.total + m9.total), 1e-9,
                "memory-bound: bound_util = 407,808 ns / makespan");
        ok(metric(r, "bound_util") > 0.99 && metric(r, "bound_util") <= 1, "memory-bound: bound_util %.6f (dequantization "
           "and rounding above the floor)", metric(r, "bound_util"));
        sim_result_free(r);
    }
    /* no FP16 copy (dequant_rate >= COST_NO_FP16_COPY: the kernels read the
     * packed codes): each unit streams its stored bytes instead of 2 x 65,536 */
    dm.dequant_rate = 1e16;
    r = run1("hold-int8", "", map, 10, 1, 1000000000, &dm, NULL);
    if (r) {
        is_near(metric(r, "bound_mem_s"), (2.0 * (double)bytes + 145664) / 1e9, 1e-18,
                "memory-bound, no FP16 copy: 2 x the stored unit + 145,664 B non-expert and KV, at 1 GB/s");
        ok(metric(r, "bound_util") > 0.9 && metric(r, "bound_util") <= 1, "no FP16 copy: bound_util %.6f", metric(r, "bound_util"));
        sim_result_free(r);
    }
    /* the fused kernel: max(dequant, gemm) + one launch, by hand */
    device k = d;
    k.kernel_overhead_ns = 1000;
    k.dequant_rate = 1e9; /* 65,536 weights: 65,536 ns of dequantization per pass (per-level) */
    cost_compute pl, fu, fn, f1;
    cost_expert(&k, 65536, bytes, 8, 9, &pl);
    cost_expert_fused(&k, 65536, bytes, 8, 4, 9, 1, &fu);  /* 4 stored bits: the fit's reference */
    cost_expert_fused(&k, 65536, bytes, 8, 4, 9, 0, &fn);
    cost_expert_fused(&k, 65536, bytes, 8, 1, 9, 0, &f1);  /* a sign plane: a quarter of the bit operations */
    is_int(pl.total, 65536 + pl.gemm + 2000, "per-level: dequant + GEMM + two launches");
    is_int(fu.dequant, 65536, "fused: a 4-bit unit dequantizes at the fitted rate");
    is_int(fu.total, (65536 > pl.gemm ? 65536 : pl.gemm) + 1000, "fused: max(dequant, GEMM) + one launch");
    is_int(fn.total, fu.total - 1000, "fused, not the expert's first level: no launch");
    is_int(f1.dequant, 16384, "fused: a 1-bit sign plane costs 1/4 of the INT4 bit operations");
    k.dequant_rate = 1e15; /* GEMM-bound: dequantization hides entirely */
    cost_expert_fused(&k, 65536, bytes, 8, 8, 9, 1, &fu);
    is_int(fu.total, fu.gemm + 1000, "fused, fast dequantization: GEMM + one launch");
}

/* every permutation respecting ascending units per expert */
static sim_ns brute(const plan_item *it, size_t n, uint32_t *perm, size_t k, size_t depth, int nested)
{
    if (depth == k) return plan_makespan(it, n, perm, k);
    sim_ns best = INT64_MAX;
    for (size_t i = depth; i < k; i++) {
        uint32_t t = perm[depth]; perm[depth] = perm[i]; perm[i] = t;
        int okc = 1;
        if (nested) /* no lower unit of the same expert may come later */
            for (size_t j = depth + 1; j < k; j++)
                if (it[perm[j]].expert == it[perm[depth]].expert && it[perm[j]].unit < it[perm[depth]].unit) okc = 0;
        if (okc) {
            sim_ns v = brute(it, n, perm, k, depth + 1, nested);
            if (v < best) best = v;
        }
        t = perm[depth]; perm[depth] = perm[i]; perm[i] = t;
    }
    return best;
}

/* HEBF by sorting (non-increasing chains) = HEBF by scanning the queue
 * heads: the same order on random steps, nested and not, with ties, in any
 * input order; chains that rise take the scan (the same code path both). */
static void test_hebf_sort(void)
{
    gsl_rng *g = rng_new(7, 1);
    int same = 0, cases = 400, rising = 0;
    for (int c = 0; c < cases; c++) {
        plan_item it[64];
        uint32_t E = 1 + (uint32_t)gsl_rng_uniform_int(g, 16), U = 1 + (uint32_t)gsl_rng_uniform_int(g, 4);
        int nested = c % 2, monotone = c % 4 != 3;
        uint32_t span = c % 8 < 4 ? 6 : 600; /* small counts (many ties, the counting sort) or counts past 256 (insertion) */
        size_t n = 0;
        for (uint32_t e = 0; e < E; e++) {
            uint32_t tok = 1 + (uint32_t)gsl_rng_uniform_int(g, span);
            for (uint32_t u = 0; u < U && n < 64; u++) {
                if (gsl_rng_uniform(g) < 0.3) continue;
                if (monotone && u > 0) tok -= (uint32_t)gsl_rng_uniform_int(g, tok + 1) / 2; /* never below 0, may stay */
                else if (!monotone) tok = 1 + (uint32_t)gsl_rng_uniform_int(g, span);
                it[n++] = (plan_item){e, u, tok, 100, 50, gsl_rng_uniform(g) < 0.9};
            }
        }
        for (size_t i = n; i > 1; i--) { /* any input order */
            size_t j = (size_t)gsl_rng_uniform_int(g, i);
            plan_item t = it[i - 1]; it[i - 1] = it[j]; it[j] = t;
        }
        plan_ctx a = {.nested = nested, .max_states = 1 << 20}, b = a;
        b.hebf_scan = 1;
        uint32_t oa[64], ob[64];
        size_t ka, kb;
        const plan_type *h = plan_find("hebf");
        int ra = h->order(&a, it, n, oa, &ka), rb = h->order(&b, it, n, ob, &kb);
        if (ra == D2_OK && rb == D2_OK && ka == kb && !memcmp(oa, ob, ka * sizeof *oa)) same++;
        if (nested && !monotone) rising++;
    }
    is_int(same, cases, "hebf: sorting the id order = scanning the queue heads, %d random steps", cases);
    ok(rising > 50, "hebf: the cases include rising nested chains (the scan's path)");
    /* by hand: expert 0 counts (5, 3), expert 1 (5, 3), expert 2 (4): 0/1, 1/1, 2/1, 0/2, 1/2 */
    plan_item h5[5] = {{1, 1, 3, 1, 1, 1}, {0, 0, 5, 1, 1, 1}, {2, 0, 4, 1, 1, 1}, {0, 1, 3, 1, 1, 1}, {1, 0, 5, 1, 1, 1}};
    plan_ctx pc = {.nested = 1, .max_states = 1 << 20};
    uint32_t o[5];
    size_t k;
    ok(plan_find("hebf")->order(&pc, h5, 5, o, &k) == D2_OK && k == 5 && o[0] == 1 && o[1] == 4 && o[2] == 2 && o[3] == 3 && o[4] == 0,
       "hebf: ties to the lower expert, chains in level order (by hand)");
    gsl_rng_free(g);
}

static void test_optimal(void)
{
    gsl_rng *g = rng_new(42, 1);
    int agree = 0, never_worse = 0, chains_ok = 1, cases = 60;
    for (int c = 0; c < cases; c++) {
        plan_item it[8];
        size_t n = 0;
        int nested = c % 2;
        while (n < 6) {
            uint32_t e = (uint32_t)gsl_rng_uniform_int(g, 3), lev = (uint32_t)gsl_rng_uniform_int(g, 3);
            int dup = 0;
            for (size_t i = 0; i < n; i++) dup |= it[i].expert == e && it[i].unit == lev;
            if (dup) continue;
            uint32_t tok = 1 + (uint32_t)gsl_rng_uniform_int(g, 20);
            it[n++] = (plan_item){e, lev, tok, 100 + (sim_ns)gsl_rng_uniform_int(g, 900), 50 * (sim_ns)tok, gsl_rng_uniform(g) < 0.85};
        }
        plan_ctx pc = {.nested = nested, .max_states = 1 << 20};
        uint32_t ord[8], perm[8];
        size_t k;
        int found;
        plan_optimal(&pc, it, n, ord, &k, &found);
        size_t kk = 0;
        for (size_t i = 0; i < n; i++) if (it[i].load) perm[kk++] = (uint32_t)i;
        sim_ns bf = brute(it, n, perm, kk, 0, nested);
        sim_ns mo = plan_makespan(it, n, ord, k);
        if (mo == bf && found) agree++;
        if (nested)
            for (size_t a = 0; a < k; a++)
                for (size_t b = a + 1; b < k; b++)
                    if (it[ord[a]].expert == it[ord[b]].expert && it[ord[a]].unit > it[ord[b]].unit) chains_ok = 0;
        const plan_type *h = plan_find("hebf");
        size_t kh;
        h->order(&pc, it, n, perm, &kh);
        if (plan_makespan(it, n, perm, kh) >= mo) never_worse++;
    }
    is_int(agree, cases, "optimal = brute force over all valid orders on %d random steps", cases);
    is_int(never_worse, cases, "hebf never beats optimal");
    ok(chains_ok, "optimal keeps nested levels ascending");
    /* the fixed two-expert case: id-order >= hebf >= optimal */
    plan_item two[2] = {{0, 0, 1, 1000, 200, 1}, {1, 0, 9, 1000, 1800, 1}};
    plan_ctx pc = {.nested = 1, .max_states = 1 << 20};
    uint32_t o[2];
    size_t k;
    int found;
    ok(plan_find("id-order")->order(&pc, two, 2, o, &k) == D2_OK && k == 2, "id-order: status OK, two loads");
    sim_ns mi = plan_makespan(two, 2, o, k);
    plan_find("hebf")->order(&pc, two, 2, o, &k);
    sim_ns mh = plan_makespan(two, 2, o, k);
    ok(o[0] == 1, "hebf loads the hot expert first");
    plan_optimal(&pc, two, 2, o, &k, &found);
    sim_ns mo = plan_makespan(two, 2, o, k);
    is_int(mi, 1000 + 1000 + 1800, "id-order: 2 loads then the hot compute (3800 by hand)");
    is_int(mh, 1000 + 1800 + 200, "hebf: load, hot compute hides the next load (3000 by hand)");
    ok(mo <= mh && mh <= mi, "optimal <= hebf <= id-order");
    pc.max_states = 2;
    ok(plan_optimal(&pc, two, 2, o, &k, &found) == D2_OK && !found, "optimal: a search above max_states is 'not found', not an error");
    gsl_rng_free(g);
}

static void test_mem(void)
{
    int64_t ub[3] = {100, 50, 50};
    mem *m;
    mem_new(mem_policy_find("budget"), 4, 2, 3, ub, 300, 0, &m);
    int ev, f0, f1, f2;
    /* layer 1 expert 0 all levels, layer 2 expert 1 base */
    uint32_t a0 = mem_entry_id(m, 1, 0, 0), a1 = mem_entry_id(m, 1, 0, 1), a2 = mem_entry_id(m, 1, 0, 2);
    uint32_t b0 = mem_entry_id(m, 2, 1, 0);
    mem_set_layer(m, 1);
    ok(!mem_entry_reserve(m, a0, &f0, &ev) && !mem_entry_reserve(m, a1, &f1, &ev) && !mem_entry_reserve(m, a2, &f2, &ev) &&
           f0 && f1 && f2, "fill layer 1");
    mem_entry_loaded(m, a0); mem_entry_loaded(m, a1); mem_entry_loaded(m, a2);
    mem_set_layer(m, 2);
    ok(!mem_entry_reserve(m, b0, &f0, &ev) && f0 && ev == 0, "room for a base level: nothing evicted");
    mem_entry_loaded(m, b0);
    mem_set_layer(m, 3);
    uint32_t c1 = mem_entry_id(m, 3, 0, 1);
    ok(!mem_entry_reserve(m, c1, &f0, &ev) && f0 && ev == 1, "next layer needs 50 bytes: one victim");
    ok(mem_entry_state(m, a2) == MEM_ABSENT && mem_entry_state(m, a0) == MEM_RESIDENT,
       "budget policy evicts the previous layers' highest level first, base levels stay");
    mem_entry_pin(m, a0); mem_entry_pin(m, a1); mem_entry_pin(m, b0);
    uint32_t c0 = mem_entry_id(m, 3, 1, 0);
    ok(mem_entry_reserve(m, c0, &f0, &ev) == D2_OK && !f0 && mem_resident_bytes(m) == 300,
       "no room without evicting pinned levels: refused (fits = 0, status OK), nothing changed");
    ok(mem_check(m) == D2_OK, "resident <= budget, bytes accounted");
    mem_free(m);
    ok(mem_policy_find("lru") && mem_policy_find("lfu") && mem_policy_find("none") && mem_policy_find("hold") && !mem_policy_find("fifo"),
       "memory policies by name");
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

static void test_bitroute(void)
{
    double caps[3] = {0.3, 0.4, 0.3};
    size_t cnt[3];
    bitroute_split(caps, 3, 10, cnt);
    ok(cnt[0] == 3 && cnt[1] == 4 && cnt[2] == 3, "c = .3/.4/.3 of 10 uses: 3/4/3");
    bitroute_split(caps, 3, 7, cnt);
    is_int(cnt[0] + cnt[1] + cnt[2], 7, "split of 7 uses sums to 7");
    int bits[3] = {2, 3, 4};
    gsl_rng *g = rng_new(3, 0);
    bitroute_cfg c = {.levels = 3, .level_bits = bits, .caps = caps, .layers = 1, .experts = 8, .rng = g};
    bitroute_use u[10];
    uint64_t scratch64[30];
    uint32_t *scratch = (uint32_t *)(void *)scratch64;
    for (int i = 0; i < 10; i++) u[i] = (bitroute_use){(uint32_t)i % 8, (float)i / 10.0f, 0, 9};
    int a;
    const bitroute_type *gate = bitroute_find("gate", &a);
    gate->assign(&c, 0, u, 10, scratch);
    ok(u[0].level == 0 && u[2].level == 0 && u[3].level == 1 && u[6].level == 1 && u[7].level == 2 && u[9].level == 2,
       "gate: lowest 3 weights INT2, next 4 INT3, top 3 INT4");
    const bitroute_type *cap = bitroute_find("capacity", &a);
    size_t n[3] = {0, 0, 0};
    cap->assign(&c, 0, u, 10, scratch);
    for (int i = 0; i < 10; i++) n[u[i].level]++;
    ok(n[0] == 3 && n[1] == 4 && n[2] == 3, "capacity: exact 3/4/3 mix");
    /* a large step: groups by weight rank must not overlap */
    enum { NB = 1000 };
    bitroute_use *big = malloc(NB * sizeof *big);
    uint64_t *sc = malloc(3 * NB * sizeof *sc);
    for (int i = 0; i < NB; i++) big[i] = (bitroute_use){0, (float)gsl_rng_uniform_int(g, 300) / 300.0f, 0, 9};
    gate->assign(&c, 0, big, NB, (uint32_t *)(void *)sc);
    float hi[3] = {-1, -1, -1}, lo[3] = {2, 2, 2};
    size_t nb[3] = {0, 0, 0};
    for (int i = 0; i < NB; i++) {
        int l = big[i].level;
        nb[l]++;
        if (big[i].weight > hi[l]) hi[l] = big[i].weight;
        if (big[i].weight < lo[l]) lo[l] = big[i].weight;
    }
    ok(nb[0] == 300 && nb[1] == 400 && nb[2] == 300 && hi[0] <= lo[1] && hi[1] <= lo[2],
       "gate on 1000 uses with ties: 300/400/300 and no level below holds a heavier weight");
    free(big);
    free(sc);
    /* gate against a full sort by (weight, index): sizes on both sides of
     * the histogram path (32 uses), a decode step of 32 requests (64), the
     * bucket count's steps (255 - 257), ties, negative weights, one repeated
     * weight, and empty levels */
    {
        static const size_t sizes[] = {1, 7, 31, 32, 33, 64, 255, 256, 257, 1000, 8192, 20011};
        static const double capsets[4][3] = {{.3, .4, .3}, {0, .5, .5}, {.5, .5, 0}, {0, 0, 1}};
        int agree = 1, agree_arr = 1, cases = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
            for (int kind = 0; kind < 4; kind++)
                for (int ci = 0; ci < 4; ci++) {
                    size_t N = sizes[si];
                    bitroute_use *v = malloc(N * sizeof *v);
                    uint64_t *sc2 = malloc(3 * N * sizeof *sc2), *ref = malloc(N * sizeof *ref); /* scratch: 6n uint32 (bitroute.h) */
                    for (size_t i = 0; i < N; i++) {
                        float w = kind == 0 ? (float)gsl_rng_uniform(g)
                                : kind == 1 ? (float)gsl_rng_uniform_int(g, 7) / 7.0f /* many ties */
                                : kind == 2 ? (float)(gsl_rng_uniform(g) - 0.5) * 1e-3f /* negative, tiny range */
                                : 0.25f;                                              /* all equal */
                        v[i] = (bitroute_use){0, w, 0, 9};
                        float fw = w;
                        uint32_t x;
                        memcpy(&x, &fw, sizeof x);
                        x = (x & 0x80000000u) ? ~x : (x | 0x80000000u);
                        ref[i] = ((uint64_t)x << 32) | i;
                    }
                    qsort(ref, N, sizeof *ref, cmp_u64);
                    bitroute_cfg cc = c;
                    cc.caps = capsets[ci];
                    size_t ct[3];
                    bitroute_split(capsets[ci], 3, N, ct);
                    gate->assign(&cc, 0, v, N, (uint32_t *)(void *)sc2);
                    size_t at = 0;
                    for (int l = 0; l < 3; l++)
                        for (size_t j = 0; j < ct[l]; j++, at++)
                            if (v[(uint32_t)ref[at]].level != l) agree = 0;
                    /* the same levels from the arrays (assign_levels) */
                    float *wa = malloc(N * sizeof *wa);
                    uint16_t *ea = calloc(N, sizeof *ea);
                    uint8_t *la = malloc(N), *ba = calloc(N, 1);
                    for (size_t i = 0; i < N; i++) wa[i] = v[i].weight;
                    if (gate->assign_levels(&cc, 0, ea, wa, ba, N, la, (uint32_t *)(void *)sc2) != D2_OK) agree = 0;
                    for (size_t i = 0; i < N; i++)
                        if (la[i] != v[i].level) agree_arr = 0;
                    cases++;
                    free(v); free(sc2); free(ref); free(wa); free(ea); free(la); free(ba);
                }
        ok(agree, "gate equals a full sort by (weight, index) in %d cases (sizes 1..20011, ties, negative, equal weights, empty levels)", cases);
        ok(agree_arr, "gate's assign_levels gives assign's levels in the same %d cases", cases);
    }
    const bitroute_type *un = bitroute_find("uniform:3", &a);
    ok(un && a == 3, "uniform:3 parses");
    { /* a level per expert (expert_levels) = assign's level of each use */
        uint8_t sl[8] = {2, 0, 1, 1, 0, 2, 2, 0}, lv[8];
        bitroute_cfg cs = c;
        cs.static_level = sl;
        cs.arg_bits = 3;
        const bitroute_type *st = bitroute_find("static", &a), *ty[2] = {st, un};
        int same = 1;
        for (int t = 0; t < 2; t++) {
            for (int i = 0; i < 10; i++) u[i] = (bitroute_use){(uint32_t)(i * 3) % 8, (float)i / 10.0f, 0, 9};
            if (!ty[t]->expert_levels || ty[t]->assign(&cs, 0, u, 10, scratch) != D2_OK ||
                ty[t]->expert_levels(&cs, 0, lv) != D2_OK)
                same = 0;
            else
                for (int i = 0; i < 10; i++) same &= u[i].level == lv[u[i].expert];
        }
        ok(same, "static and uniform:3: expert_levels gives each use's assigned level");
    }
    ok(!bitroute_find("uniform", &a) && !bitroute_find("uniform:x", &a) && !bitroute_find("bogus", &a), "bad bit routing names refused");
    gsl_rng_free(g);
}

static sim_result *run_rand(const char *policy, const model *m, const device *d, sim_params *p, uint64_t seed, int *rc)
{
    rand_route rr = {(uint32_t)m->experts, (uint32_t)m->top_k, seed};
    snprintf(p->policy, sizeof p->policy, "%s", policy);
    sim_input in = {.model = m, .device = d, .params = p, .route = route_rand, .route_user = &rr, .route_has_bits = 1, .route_token = NULL};
    sim_result *r = NULL;
    *rc = sim_run(&in, &r);
    return r;
}

static void test_systems(void)
{
    model m = tiny(4, 8, 2);
    device d = dev();
    const char *sys[] = {"d2moe-v1", "d2moe-v2", "hold-int8", "hold-awq-int4", "matryoshka-free", "edgemoe",
                         "moqe-dynaio-int4", "moqe-dynaio-int8", "ablate-router", "ablate-mwq", "ablate-hebf"};
    int64_t lvl = model_expert_bytes_uniform(&m, 8, 128);
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
        sim_params p = params("");
        p.requests = 6; p.prompt = 4; p.gen = 5; p.budget = 5 * lvl; p.plan_gap = 1;
        int rc;
        sim_result *r = run_rand(sys[i], &m, &d, &p, 9, &rc);
        ok(rc == D2_OK && r && !strcmp(sim_result_status(r), "ok"), "%s runs (invariants held)%s%s", sys[i], rc ? ": " : "", rc ? d2_err_msg() : "");
        if (!r) continue;
        double peak = metric(r, "peak_expert_mb") * 1e6;
        const policy_system *ps = policy_find(sys[i]);
        if (strncmp(sys[i], "hold", 4) && !strcmp(ps->buffer, "budget"))
            ok(peak <= (double)p.budget, "%s: resident experts (%.0f) within the budget", sys[i], peak);
        else if (strncmp(sys[i], "hold", 4))
            ok(peak > (double)p.budget && peak <= (double)d.mem_bytes, "%s: its buffer fills the device, not sim.budget (%.0f)", sys[i], peak);
        ok(metric(r, "bound_tps") >= metric(r, "throughput_tps") && metric(r, "bound_util") > 0 && metric(r, "bound_util") <= 1 + 1e-9,
           "%s: throughput %.4g <= bound %.4g", sys[i], metric(r, "throughput_tps"), metric(r, "bound_tps"));
        ok(metric(r, "plan_gap_mean") >= 0 && (metric(r, "plan_gap_steps") > 0 || !strncmp(sys[i], "hold", 4)), "%s: optimal <= hebf on every step (checked in the run); hebf gap %.4f, id-order gap %.4f", sys[i],
           metric(r, "plan_gap_mean"), metric(r, "plan_gap_idorder_mean"));
        is_near(metric(r, "tokens_generated"), 30, 0, "%s: 6 x 5 tokens generated", sys[i]);
        if (!strcmp(sys[i], "edgemoe"))
            ok(metric(r, "uses_bits_2") > 0 && metric(r, "uses_bits_3") > 0 && metric(r, "uses_bits_4") > 0,
               "edgemoe: static levels use all three bit-widths (%.0f/%.0f/%.0f)", metric(r, "uses_bits_2"),
               metric(r, "uses_bits_3"), metric(r, "uses_bits_4"));
        sim_result_free(r);
    }
    /* prefetching measured vs given accuracy */
    sim_params p = params("");
    p.requests = 4; p.prompt = 2; p.gen = 6; p.budget = 6 * lvl; p.predict_acc = 1;
    snprintf(p.prefetch, sizeof p.prefetch, "oracle");
    int rc;
    sim_result *r = run_rand("edgemoe", &m, &d, &p, 9, &rc);
    if (r) {
        ok(metric(r, "prefetch_loads") > 0 && metric(r, "prefetch_accuracy") > 0.5, "edgemoe with a perfect predictor: %.0f preloads, %.2f used",
           metric(r, "prefetch_loads"), metric(r, "prefetch_accuracy"));
        sim_result_free(r);
    }
    /* the smallest legal budget: nested, one expert's levels 1..3 (a token at
     * level 3 holds them all); copies, one copy.  Loads wait for computes to
     * free room.  (It was one base level before levels were held together.) */
    for (int pol = 0; pol < 3; pol++) {
        const char *mp[] = {"budget", "lru", "none"};
        p = params("");
        p.requests = 6; p.prompt = 3; p.gen = 4;
        p.budget = model_expert_level_bytes(&m, 2, 1, 128) + 2 * model_expert_level_bytes(&m, 2, 2, 128);
        snprintf(p.mem, sizeof p.mem, "%s", mp[pol]);
        r = run_rand("d2moe-v1", &m, &d, &p, 4, &rc);
        ok(rc == D2_OK && r && metric(r, "peak_expert_mb") * 1e6 <= (double)p.budget, "budget of one expert's three levels, mem %s: runs within it%s%s",
           mp[pol], rc ? ": " : "", rc ? d2_err_msg() : "");
        sim_result_free(r);
        p.budget = model_expert_bytes_uniform(&m, 4, 128);
        r = run_rand("matryoshka-free", &m, &d, &p, 4, &rc);
        ok(rc == D2_OK && r && metric(r, "peak_expert_mb") * 1e6 <= (double)p.budget, "copies: budget of one INT4 copy, mem %s: runs within it%s%s",
           mp[pol], rc ? ": " : "", rc ? d2_err_msg() : "");
        sim_result_free(r);
    }
    /* host page cache in front of flash: second reads skip the flash term */
    p = params("");
    p.requests = 4; p.prompt = 2; p.gen = 6; p.budget = 2 * lvl;
    device pc = d;
    pc.page_cache_bytes = 1000000000;
    r = run_rand("moqe-dynaio-int8", &m, &pc, &p, 9, &rc);
    sim_result *r0 = run_rand("moqe-dynaio-int8", &m, &d, &p, 9, &rc);
    if (r && r0) {
        ok(metric(r, "page_cache_hits") > 0 && metric(r0, "page_cache_hits") == 0, "page cache: %.0f loads served from host DRAM",
           metric(r, "page_cache_hits"));
        ok(metric(r, "io_busy_s") < metric(r0, "io_busy_s") && metric(r, "io_gb") == metric(r0, "io_gb"),
           "page cache: same bytes loaded, less I/O time (unified copy at memory speed)");
    } else {
        ok(0, "page cache runs");
    }
    sim_result_free(r);
    sim_result_free(r0);
    /* bit routing from the trace, lfu, optimal as the planner */
    p = params("");
    p.requests = 5; p.prompt = 3; p.gen = 4; p.budget = 4 * lvl;
    snprintf(p.bitroute, sizeof p.bitroute, "trace");
    snprintf(p.mem, sizeof p.mem, "lfu");
    snprintf(p.plan, sizeof p.plan, "optimal");
    r = run_rand("d2moe-v1", &m, &d, &p, 5, &rc);
    ok(rc == D2_OK && r, "d2moe-v1 with bitroute=trace, mem=lfu, plan=optimal%s%s", rc ? ": " : "", rc ? d2_err_msg() : "");
    if (r) {
        double u2 = metric(r, "uses_bits_2"), u3 = metric(r, "uses_bits_3"), u4 = metric(r, "uses_bits_4");
        is_near(u2 + u3 + u4, 5 * (3 + 3) * 2 * 4, 0, "every token-expert use counted once (5 req x 6 positions x top-2 x 4 layers)");
        ok(metric(r, "gate_bits_2") > 0, "gate weight sums reported");
        ok(metric(r, "gate2_bits_2") > 0 && metric(r, "gate2_bits_2") <= metric(r, "gate_bits_2"),
           "squared gate weight sums reported (<= the sums, weights <= 1)");
        sim_result_free(r);
    }
}

static void test_errors_and_oom(void)
{
    model m = tiny(2, 8, 2);
    device d = dev();
    sim_params p = params("");
    int rc;
    sim_result *r = run_rand("no-such-system", &m, &d, &p, 1, &rc);
    ok(rc == D2_EINVAL && !r && d2_exit_code(rc) == 2, "unknown policy: EINVAL, exit 2 (%s)", d2_err_msg());
    p.budget = 1000;
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_ERANGE && !r && strstr(d2_err_msg(), "smaller than one expert level"), "budget below one level: ERANGE (%s)", d2_err_msg());
    /* nested: one byte short of one expert's levels 1..3 (18,432 + 2 x 9,216) */
    p.budget = 36863;
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_ERANGE && !r && d2_exit_code(rc) == 2 && strstr(d2_err_msg(), "smaller than one expert level set (36864 bytes)"),
       "nested budget below one expert's three levels: ERANGE, exit 2, names 36,864 bytes (%s)", d2_err_msg());
    p.budget = 36864;
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_OK && r, "exactly one expert's three levels is legal%s%s", rc ? ": " : "", rc ? d2_err_msg() : "");
    sim_result_free(r);
    /* copies: one copy is enough (matryoshka-free's largest, INT4) */
    p.budget = model_expert_bytes_uniform(&m, 4, 128) - 1;
    r = run_rand("matryoshka-free", &m, &d, &p, 1, &rc);
    ok(rc == D2_ERANGE && !r && strstr(d2_err_msg(), "smaller than one expert level ("), "copies: budget below the largest copy: ERANGE (%s)", d2_err_msg());
    p = params("");
    snprintf(p.plan, sizeof p.plan, "fastest");
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_EINVAL, "unknown planner refused");
    p = params("");
    snprintf(p.caps, sizeof p.caps, "0.5/0.5");
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_EINVAL, "caps with the wrong number of levels refused");
    { /* the capacities parser itself (also eval's configuration rows) */
        double caps[8];
        ok(sim_system_caps_parse("0.3/0.4/0.3", 3, caps, "sim.caps") == D2_OK && caps[1] == 0.4, "capacities 0.3/0.4/0.3 parse");
        ok(sim_system_caps_parse("0.3/0.4", 3, caps, "sim.caps") == D2_EINVAL && strstr(d2_err_msg(), "has 3 levels"),
           "capacities: too few refused (%s)", d2_err_msg());
        ok(sim_system_caps_parse("0.5/0.4/0.3", 3, caps, "sim.caps") == D2_EINVAL &&
               !strcmp(d2_err_msg(), "sim.caps: \"0.5/0.4/0.3\": capacities sum to 1.2, not 1"),
           "capacities: a sum other than 1 refused (%s)", d2_err_msg());
        ok(sim_system_caps_parse("0.3/x/0.3", 3, caps, "sim.caps") == D2_EINVAL, "capacities: not a number refused");
        ok(sim_system_caps_parse("nan/0.5/0.5", 3, caps, "sim.caps") == D2_EINVAL &&
               sim_system_caps_parse("0.5/0.5/nan", 3, caps, "sim.caps") == D2_EINVAL,
           "capacities: NaN refused wherever it stands (it passed both range tests and the sum once)");
    }
    p = params("");
    snprintf(p.bitroute, sizeof p.bitroute, "uniform:5");
    r = run_rand("d2moe-v1", &m, &d, &p, 1, &rc);
    ok(rc == D2_EINVAL, "uniform:5 on an INT2/3/4 format refused");
    /* out of memory is a result */
    device small = d;
    small.mem_bytes = 2 * model_expert_bytes_uniform(&m, 8, 128);
    p = params("");
    p.requests = 2; p.prompt = 2; p.gen = 2;
    r = run_rand("hold-int8", &m, &small, &p, 1, &rc);
    ok(rc == D2_OK && r && !strcmp(sim_result_status(r), "oom") && sim_result_reason(r)[0], "hold-int8 that does not fit: status oom (%s)",
       r ? sim_result_reason(r) : d2_err_msg());
    if (r) { is_near(metric(r, "throughput_tps"), 0, 0, "oom reports no throughput"); sim_result_free(r); }
}

static void test_arrivals(void)
{
    model m = tiny(3, 8, 2);
    device d = dev();
    int rc;
    sim_params p = params("");
    p.requests = 5; p.prompt = 4; p.gen = 3; p.budget = 8 * model_expert_bytes_uniform(&m, 4, 128);
    /* one request every 1000 s: each is served alone, so there are
     * requests x gen forward steps of layers layer steps */
    snprintf(p.arrival, sizeof p.arrival, "uniform");
    p.arrival_rate = 0.001;
    sim_result *r = run_rand("d2moe-v1", &m, &d, &p, 3, &rc);
    ok(rc == D2_OK && r, "uniform arrivals run");
    if (r) {
        is_near(metric(r, "layer_steps"), 5 * 3 * 3, 0, "requests far apart: each alone, 5 x 3 forward steps x 3 layers");
        ok(metric(r, "makespan_s") > 4000 && metric(r, "makespan_s") < 4001, "makespan = last arrival (4000 s) + one request's service");
        ok(metric(r, "latency_s") >= metric(r, "ttft_s") && metric(r, "ttft_max_s") >= metric(r, "ttft_s"), "latency >= ttft, max >= mean");
        sim_result_free(r);
    }
    snprintf(p.arrival, sizeof p.arrival, "poisson");
    p.arrival_rate = 50;
    r = run_rand("d2moe-v1", &m, &d, &p, 3, &rc);
    ok(rc == D2_OK && r && metric(r, "tokens_generated") == 15, "poisson arrivals: every request served");
    sim_result_free(r);
    snprintf(p.arrival, sizeof p.arrival, "bursty");
    r = run_rand("d2moe-v1", &m, &d, &p, 3, &rc);
    ok(rc == D2_EINVAL && !r, "unknown arrival process refused");
}

static int collect(const char *name, double v, const char *unit, void *u)
{
    (void)unit;
    if (strcmp(name, "plan_overhead_s")) { /* wall clock: the one non-simulated metric */
        double **p = u;
        *(*p)++ = v;
    }
    return D2_OK;
}

/* The SwiGLU item as costed before the measured rates existed (cost.c at
 * c44aa47, written out): with every rate 0 the new code must give exactly
 * this, field by field. */
static void swiglu_item_old(const device *d, int64_t weights, int64_t matrices, const int64_t *level_bytes, int k,
                            int bits, int64_t tokens, int64_t final, cost_compute *out)
{
    const int64_t Wm = weights / matrices, ub = level_bytes[k - 1];
    int64_t down_bytes = 0;
    for (int l = 0; l < k; l++) down_bytes += level_bytes[l] / matrices;
    cost_compute gu, dn = {.total = 0, .stream = 0};
    cost_expert(d, weights - Wm, ub - ub / matrices, bits, tokens, &gu);
    if (final > 0) cost_expert(d, Wm * k, down_bytes, bits, final, &dn);
    out->dequant = gu.dequant + dn.dequant;
    out->gemm = gu.gemm + dn.gemm;
    out->overhead = gu.overhead + dn.overhead;
    out->total = gu.total + dn.total;
}

static int same_cc(const cost_compute *a, const cost_compute *b)
{
    return a->dequant == b->dequant && a->gemm == b->gemm && a->overhead == b->overhead && a->total == b->total;
}

/* device.swiglu_*_rate (d2moe calibrate): each part of a SwiGLU item at its
 * own measured rate.  Hand-made expert: hidden 128, ffn 256, 3 matrices:
 * Wm = 32,768, W = 98,304 (gate + up 65,536); level bytes 30,000 / 15,000
 * / 15,000 (a third each per matrix); memory 1 TB/s, dequant_rate 1e16 (no
 * FP16 copy: 1 ns of dequantization per call), no cold stream, no launch
 * cost.  Rates: gate/up 1e9, 2e9, 4e9; down 1e9, 5e8, 2.5e8 weights x
 * tokens/s; epilogue 1e8 elements x tokens/s (256 elements: 2,560 ns a
 * token).  By hand:
 *   level 1, 3 tokens, 1 final: 65,536 x 3 / 1e9 = 196,608 + 1; down
 *     32,768 / 1e9 = 32,768 + epilogue 2,560 + 1: 231,938 ns
 *   level 2, 2 tokens, 1 final: 65,536 x 2 / 2e9 = 65,536 + 1; down
 *     32,768 / 5e8 = 65,536 + 2,560 + 1: 133,634 ns
 *   level 3, 1 token, 1 final: 65,536 / 4e9 = 16,384 + 1; down
 *     32,768 / 2.5e8 = 131,072 + 2,560 + 1: 150,018 ns
 *   level 2, 2 tokens, none final: 65,537 ns
 * (the weight-stream floors, at most 20,000 B / 1 TB/s = 20 ns, stay
 * below every FLOP-side term). */
static void test_swiglu_rates(void)
{
    device d = dev();
    d.dequant_rate = 1e16;
    const int64_t W = 98304, M = 3, F = 256, lb[3] = {30000, 15000, 15000};
    const double gu[3] = {1e9, 2e9, 4e9}, dn[3] = {1e9, 5e8, 2.5e8};
    cost_compute c;
    ok(!cost_swiglu_rates_set(&d, 1) && !cost_swiglu_rates_set(&d, 3), "defaults: no SwiGLU rates set");
    for (int k = 0; k < 3; k++) { d.swiglu_gu_rate[k] = gu[k]; d.swiglu_down_rate[k] = dn[k]; }
    d.swiglu_epilogue_rate = 1e8;
    ok(cost_swiglu_rates_set(&d, 1) && cost_swiglu_rates_set(&d, 3) && !cost_swiglu_rates_set(&d, 4) &&
       !cost_swiglu_rates_set(&d, 0), "rates set for levels 1..3 (none beyond DEVICE_SWIGLU_LEVELS)");
    cost_expert_swiglu_item(&d, W, M, F, lb, 1, 4, 3, 1, 0, &c);
    is_int(c.total, 231938, "level 1, 3 tokens, 1 final: 196,609 + 35,329 ns by hand");
    is_int(c.gemm, 196608 + 32768 + 2560, "  its GEMM terms: gate/up + down + epilogue");
    is_int(c.dequant, 2, "  and 1 ns of dequantization per call");
    cost_expert_swiglu_item(&d, W, M, F, lb, 2, 4, 2, 1, 0, &c);
    is_int(c.total, 133634, "level 2, 2 tokens, 1 final: 65,537 + 68,097 ns by hand");
    cost_expert_swiglu_item(&d, W, M, F, lb, 3, 4, 1, 1, 0, &c);
    is_int(c.total, 150018, "level 3, 1 token, 1 final: 16,385 + 133,633 ns by hand (down over levels 1..3 in one call)");
    cost_expert_swiglu_item(&d, W, M, F, lb, 2, 4, 2, 0, 0, &c);
    is_int(c.total, 65537, "level 2, no token ending there: gate/up only, 65,537 ns");
    /* cold weights still stream once per call: level 3's gate/up reads
     * 10,000 B, its down 10,000 + 5,000 + 5,000 B, at 1 GB/s */
    d.cold_weight_bw = 1e9;
    cost_expert_swiglu_item(&d, W, M, F, lb, 3, 4, 1, 1, 0, &c);
    is_int(c.total, 150018 + 10000 + 20000, "cold_weight_bw adds each call's stored bytes: + 10,000 + 20,000 ns");
    d.cold_weight_bw = 0;
    /* fused (the paper's kernel) keeps its own costing */
    cost_compute f0, f1;
    device z = dev();
    z.dequant_rate = 1e16;
    cost_expert_swiglu_item(&d, W, M, F, lb, 2, 4, 2, 1, 1, &f1);
    cost_expert_swiglu_item(&z, W, M, F, lb, 2, 4, 2, 1, 1, &f0);
    ok(same_cc(&f0, &f1), "sim.nested_kernel = fused: the rates are not used");
    /* any rate of the level missing: the item is costed at fp16_flops */
    d.swiglu_epilogue_rate = 0;
    cost_expert_swiglu_item(&d, W, M, F, lb, 2, 4, 2, 1, 0, &f1);
    swiglu_item_old(&d, W, M, lb, 2, 4, 2, 1, &f0);
    ok(same_cc(&f0, &f1), "epilogue rate 0: the old costing");
    d.swiglu_epilogue_rate = 1e8;
    d.swiglu_down_rate[2] = 0;
    cost_expert_swiglu_item(&d, W, M, F, lb, 3, 4, 1, 1, 0, &f1);
    swiglu_item_old(&d, W, M, lb, 3, 4, 1, 1, &f0);
    ok(same_cc(&f0, &f1), "level 3's down rate 0: level 3 costed the old way");
    cost_expert_swiglu_item(&d, W, M, F, lb, 2, 4, 2, 1, 0, &c);
    is_int(c.total, 133634, "  while level 2 keeps its rates");

    /* every rate 0 (the default): bit for bit the old costing, over levels,
     * token counts, bit widths and devices with every other term active */
    int bad = 0, n = 0;
    for (int dv = 0; dv < 3; dv++) {
        device o = dev();
        if (dv == 1) { o.dequant_rate = 1e16; o.cold_weight_bw = 7.3e10; o.kernel_overhead_ns = 1234; }
        if (dv == 2) { o.dequant_rate = 0; o.mem_bw = 3.3e9; o.fp16_flops = 7.7e10; o.compute_eff = 0.61; }
        for (int k = 1; k <= 3; k++)
            for (int64_t t = 1; t <= 40; t += 3)
                for (int64_t fin = 0; fin <= t; fin += 2) {
                    cost_compute a, b;
                    cost_expert_swiglu_item(&o, 8650752, 3, 2816, (const int64_t[]){2433024, 1216512, 1216512}, k, 1 + k, t,
                                            fin, 0, &a);
                    swiglu_item_old(&o, 8650752, 3, (const int64_t[]){2433024, 1216512, 1216512}, k, 1 + k, t, fin, &b);
                    bad += !same_cc(&a, &b);
                    n++;
                }
    }
    ok(bad == 0, "rates 0: %d items of tiny-moe's shape costed bit for bit as before (%d differ)", n, bad);
}

/* sim.nested_compute = swiglu: one token at the top level of V1 (levels 2,
 * 3, 4 bits).  Items 1 and 2 run gate/up only (W - Wm weights, Wm = one
 * matrix); item 3 adds the down projection of levels 1..3 (3 Wm weights).
 * uniform: every item computes W.  Durations from cost_expert, by hand. */
static void test_swiglu(void)
{
    device d = dev();
    d.dequant_rate = 1e16; /* no FP16 copy: the floor is the packed bytes */
    model m = tiny(1, 2, 1);
    const int64_t W = model_expert_params(&m), Wm = W / m.expert_matrices;
    int64_t ub[3];
    for (int k = 0; k < 3; k++) ub[k] = model_expert_level_bytes(&m, 2, k + 1, 128);
    cost_compute gu[3], dn, un[3];
    for (int k = 0; k < 3; k++) {
        cost_expert(&d, W - Wm, ub[k] - ub[k] / m.expert_matrices, 2 + k, 1, &gu[k]);
        cost_expert(&d, W, ub[k], 2 + k, 1, &un[k]);
    }
    cost_expert(&d, 3 * Wm, ub[0] / 2 + ub[1] / 2 + ub[2] / 2, 4, 1, &dn);
    uint16_t map[1] = {0};
    long long step_total[2] = {0, 0};
    /* mode 2: swiglu on a device with the measured SwiGLU rates; each item
     * as cost_expert_swiglu_item gives it (its closed form: test_swiglu_rates) */
    device dr = d;
    for (int k = 0; k < 3; k++) { dr.swiglu_gu_rate[k] = 3e9 + 1e9 * k; dr.swiglu_down_rate[k] = 4e9 / (k + 1); }
    dr.swiglu_epilogue_rate = 2e8;
    cost_compute wr[3];
    for (int k = 0; k < 3; k++)
        cost_expert_swiglu_item(&dr, W, m.expert_matrices, m.expert_ffn, ub, k + 1, 2 + k, 1, k == 2, 0, &wr[k]);
    for (int mode = 0; mode < 3; mode++) {
        sim_params p = params("d2moe-v1");
        snprintf(p.bitroute, sizeof p.bitroute, "uniform:4");
        snprintf(p.nested_compute, sizeof p.nested_compute, "%s", mode ? "swiglu" : "uniform");
        p.requests = 1; p.prompt = 1; p.gen = 1; p.budget = 1000000000;
        fixed_route fr = {map, 1};
        FILE *tl = tmpfile();
        sim_input in = {.model = &m, .device = mode == 2 ? &dr : &d, .params = &p, .route = route_fixed, .route_user = &fr, .route_has_bits = 0, .route_token = NULL};
        sim_result *r = NULL;
        int rc = run_obs(&in, tl, NULL, &r);
        if (!ok(rc == D2_OK, "%s run (%s)", p.nested_compute, rc ? d2_err_msg() : "ok")) { fclose(tl); continue; }
        rewind(tl);
        char line[256];
        long long t0, t1;
        int layer, expert, level, tokens, n = 0, good = 1;
        char q[16];
        while (fgets(line, sizeof line, tl))
            if (sscanf(line, "%lld,%lld,%15[^,],%d,%d,%d,%d", &t0, &t1, q, &layer, &expert, &level, &tokens) == 7 &&
                !strcmp(q, "compute") && expert >= 0 && n < 3) { /* the first step's three items */
                sim_ns want = mode == 2 ? wr[level - 1].total
                               : mode ? gu[level - 1].total + (level == 3 ? dn.total : 0) : un[level - 1].total;
                if (t1 - t0 != want) { tap_diag("%s level %d: %lld ns, want %lld", p.nested_compute, level, t1 - t0, (long long)want); good = 0; }
                n++;
            }
        ok(good && n == 3, mode == 2 ? "swiglu with measured rates: each item as cost_expert_swiglu_item (levels 1, 2 gate/up; 3 with down)"
                           : mode ? "swiglu: items 1, 2 = gate/up of their level; item 3 = gate/up + down of levels 1..3 (cost_expert by hand)"
                                  : "uniform: each level item = the whole expert for its tokens");
        if (mode == 2) {
            ok(wr[0].total != gu[0].total && wr[2].total != gu[2].total + dn.total, "  (the rates changed the items)");
            fclose(tl);
            sim_result_free(r);
            continue;
        }
        step_total[mode] = 0;
        rewind(tl);
        n = 0;
        while (fgets(line, sizeof line, tl))
            if (sscanf(line, "%lld,%lld,%15[^,],%d,%d,%d,%d", &t0, &t1, q, &layer, &expert, &level, &tokens) == 7 &&
                !strcmp(q, "compute") && expert >= 0 && n++ < 3)
                step_total[mode] += t1 - t0;
        fclose(tl);
        sim_result_free(r);
    }
    /* compute-bound (10 GFLOP/s, memory 1 TB/s): the same total work, moved
     * between items (sum_k k F_k = sum_k T_k); a few ns of rounding per call */
    is_near((double)step_total[1], (double)step_total[0], 8, "swiglu and uniform: the same total compute per token (%lld vs %lld ns)",
            (long long)step_total[1], (long long)step_total[0]);
    sim_params p = params("d2moe-v1");
    snprintf(p.nested_compute, sizeof p.nested_compute, "downward");
    p.requests = 1; p.prompt = 1; p.gen = 1; p.budget = 1000000000;
    fixed_route fr = {map, 1};
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_fixed, .route_user = &fr, .route_has_bits = 0, .route_token = NULL};
    sim_result *r = NULL;
    int rc = sim_run(&in, &r);
    ok(rc == D2_EINVAL && strstr(d2_err_msg(), "sim.nested_compute"), "unknown sim.nested_compute refused (%s)", d2_err_msg());
    sim_result_free(r);
}

static void test_repeatable(void)
{
    model m = tiny(3, 8, 2);
    device d = dev();
    double a[128], b[128], *pa = a, *pb = b;
    int rc;
    sim_params p = params("");
    p.requests = 8; p.prompt = 4; p.gen = 6; p.budget = 6 * model_expert_bytes_uniform(&m, 4, 128);
    snprintf(p.bitroute, sizeof p.bitroute, "capacity");
    sim_result *r1 = run_rand("d2moe-v1", &m, &d, &p, 77, &rc);
    sim_result *r2 = run_rand("d2moe-v1", &m, &d, &p, 77, &rc);
    p.seed = 2;
    sim_result *r3 = run_rand("d2moe-v1", &m, &d, &p, 77, &rc);
    if (r1 && r2 && r3) {
        sim_result_foreach_metric(r1, collect, &pa);
        sim_result_foreach_metric(r2, collect, &pb);
        ok(pa - a == pb - b && !memcmp(a, b, (size_t)(pa - a) * sizeof *a), "same seed: every metric bit for bit equal");
        double m1 = metric(r1, "makespan_s"), m3 = metric(r3, "makespan_s");
        ok(m1 != m3 || metric(r1, "uses_bits_2") == metric(r3, "uses_bits_2"), "another seed draws other capacity levels");
    } else {
        ok(0, "repeatability runs");
    }
    sim_result_free(r1); sim_result_free(r2); sim_result_free(r3);
}

/* ---- typed operations (sim_op) ------------------------------------------ */

typedef struct op_log { sim_op *v; size_t n, cap; } op_log;
static void log_op(void *u, const sim_op *op)
{
    op_log *l = u;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        sim_op *q = realloc(l->v, l->cap * sizeof *q);
        if (!q) return;
        l->v = q;
    }
    l->v[l->n++] = *op;
}

static void test_ops(void)
{
    model m = tiny(3, 8, 2);
    device d = dev();
    sim_params p = params("d2moe-v1");
    p.requests = 5; p.prompt = 3; p.gen = 4; p.budget = 6 * model_expert_level_bytes(&m, 2, 1, 128) * 3;
    rand_route rr = {8, 2, 5};
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_rand, .route_user = &rr, .route_has_bits = 1, .route_token = NULL};
    op_log lg = {0};
    sim_observer obs = {.op = log_op, .user = &lg};
    sim_result *r = NULL;
    int rc = sim_run_observed(&in, &obs, &r);
    ok(rc == D2_OK && r && lg.n > 0, "typed operations observed (%zu)", lg.n);
    if (!r) return;
    int bad_step = 0, bad_order = 0, bad_final = 0, nload = 0, ncomp = 0;
    for (size_t i = 0; i < lg.n; i++) {
        const sim_op *o = &lg.v[i];
        if (!o->preload && o->step != o->fstep * 3 + o->layer) bad_step++;
        if (o->kind == SIM_OP_LOAD) { nload++; if (o->bytes <= 0 || o->tier != SIM_TIER_FLASH) bad_step++; }
        if (o->kind != SIM_OP_COMPUTE) continue;
        ncomp++;
        /* no compute before its load (same unit, same layer step) */
        for (size_t j = 0; j < lg.n; j++) {
            const sim_op *x = &lg.v[j];
            if (x->kind == SIM_OP_LOAD && !x->preload && x->step == o->step && x->expert == o->expert &&
                x->level == o->level && x->end > o->start)
                bad_order++;
        }
        /* final tokens: over an expert's level items they add up to its uses (its level-1 tokens) */
        if (o->level == 1) {
            uint32_t sum = 0;
            for (size_t j = 0; j < lg.n; j++)
                if (lg.v[j].kind == SIM_OP_COMPUTE && lg.v[j].step == o->step && lg.v[j].expert == o->expert) sum += lg.v[j].final;
            if (sum != o->tokens) bad_final++;
        }
    }
    ok(!bad_step, "every operation names its forward step, layer step and layer consistently; loads their tier and bytes");
    ok(!bad_order, "no compute starts before its unit's load in the same layer step (from the typed operations)");
    ok(!bad_final, "final tokens over an expert's levels add up to its uses");
    is_near((double)nload, metric(r, "loads") + metric(r, "prefetch_loads"), 0, "one load operation per counted load");
    /* the timeline writer is an observer of the same stream: one line per operation */
    FILE *tl = tmpfile();
    sim_result *r2 = NULL;
    rc = run_obs(&in, tl, NULL, &r2);
    size_t lines = 0;
    char buf[256];
    rewind(tl);
    while (fgets(buf, sizeof buf, tl)) lines++;
    is_int((int64_t)lines, (int64_t)lg.n + 1, "the timeline CSV: a header and one line per operation");
    fclose(tl);
    sim_result_free(r2);
    /* the effective system without running it */
    sim_system sys;
    sim_params q = params("ablate-mwq");
    snprintf(q.plan, sizeof q.plan, "hebf");
    ok(sim_system_resolve(&q, &sys) == D2_OK && sys.nested && sys.levels == 3 && !strcmp(sys.plan, "hebf") && !sys.serial &&
           !sys.preloads && !strcmp(sys.mem, "none"),
       "sim_system_resolve: ablate-mwq with sim.plan=hebf is nested, 3 levels, hebf, overlapping, no preloads");
    q = params("edgemoe");
    ok(sim_system_resolve(&q, &sys) == D2_OK && sys.preloads && !strcmp(sys.buffer, "device"), "edgemoe preloads; its buffer fills the device");
    q = params("nosuch");
    ok(sim_system_resolve(&q, &sys) == D2_EINVAL, "unknown system: D2_EINVAL");
    sim_result_free(r);
    free(lg.v);
}

/* An expert id at or above the model's count is a format error naming the
 * request, position and layer, both when routing comes a layer at a time
 * and a token at once (sim_input.route_token). */
static int route_fixed_token(void *u, uint32_t req, uint32_t pos, uint16_t *e, float *w, uint8_t *b, size_t stride)
{
    for (uint32_t l = 0; l < 3; l++) /* the tiny models below: 3 layers */
        D2_TRY(route_fixed(u, req, pos, l, e + (size_t)l * stride, w + (size_t)l * stride, b ? b + (size_t)l * stride : NULL));
    return D2_OK;
}

static void test_bad_expert_id(void)
{
    static const uint16_t map[2] = {1, 2}; /* request 1 routes to expert 2 of 2 */
    model m = tiny(3, 2, 1);
    device d = dev();
    sim_params p = params("moqe-dynaio-int4");
    p.requests = 2; p.prompt = 1; p.gen = 1; p.budget = 1LL << 40;
    fixed_route fr = {map, 1};
    for (int tok = 0; tok < 2; tok++) {
        sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_fixed, .route_user = &fr, .route_has_bits = 0, .route_token = tok ? route_fixed_token : NULL};
        sim_result *r = NULL;
        int rc = sim_run(&in, &r);
        ok(rc == D2_EFORMAT && strstr(d2_err_msg(), "request 1 position 0 layer 0: expert 2 is not below 2"),
           "expert id 2 of 2 experts refused (%s): \"%s\"", tok ? "a token at once" : "a layer at a time", rc ? d2_err_msg() : "ran");
        sim_result_free(r);
    }
    /* top-2 a token at once: the ids are or-ed first (1 | 2 = 3, not below 3
     * experts, though both ids are), then compared one by one */
    static const uint16_t map2[4] = {1, 2, 2, 3}; /* request 0: experts 1 and 2 of 3; request 1: 2 and 3 */
    model m2 = tiny(3, 3, 2);
    fixed_route fr2 = {map2, 2};
    sim_input in2 = {.model = &m2, .device = &d, .params = &p, .route = route_fixed, .route_user = &fr2, .route_has_bits = 0, .route_token = route_fixed_token};
    sim_result *r2 = NULL;
    int rc2 = sim_run(&in2, &r2);
    ok(rc2 == D2_EFORMAT && strstr(d2_err_msg(), "request 1 position 0 layer 0: expert 3 is not below 3"),
       "top-2, 3 experts: ids 1 and 2 pass, 3 is refused: \"%s\"", rc2 ? d2_err_msg() : "ran");
    sim_result_free(r2);
    p.requests = 1;
    r2 = NULL;
    rc2 = sim_run(&in2, &r2);
    ok(rc2 == D2_OK, "top-2, 3 experts: ids 1 and 2 (or-ed: 3) run (%s)", rc2 ? d2_err_msg() : "ok");
    sim_result_free(r2);
}

int main(void)
{
    test_cost();
    test_closed_form();
    test_swiglu();
    test_swiglu_rates();
    test_nested_hold();
    test_optimal();
    test_hebf_sort();
    test_mem();
    test_bitroute();
    test_systems();
    test_errors_and_oom();
    test_repeatable();
    test_arrivals();
    test_ops();
    test_bad_expert_id();
    return tap_done();
}
