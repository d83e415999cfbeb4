/* t_systems.c - issue 15's systems (sysa's part): the belady memory policy
 * against lru, lfu and budget on the same routing (generated, the committed
 * trace, and the real Mixtral GSM8K routing from ../shared, # SKIP when
 * absent), the debug build's shadow-LRU assertion, and the named systems
 * hobbit, mixtral-offloading and d2moe-v1/v2-prefetch: closed-form cases of
 * each mechanism and a small run whose distinguishing metric moves the
 * right way. */
#include "config.h"
#include "sim/sim.h"
#include "sim/stepmemo.h"
#include "sim/bitroute.h"
#include "sim/mem.h"
#include "sim/policy.h"
#include "sim/prefetch.h"
#include "sim/plugins.h"
#include "core/rng.h"
#include "trace/import.h"
#include "core/err.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static double metric(const sim_result *r, const char *name)
{
    double v = -1;
    if (sim_result_metric(r, name, &v)) tap_diag("no metric %s", name);
    return v;
}

/* One run through the command line's path (profiles by name, a trace or
 * the generator, sets).  NULL on failure (diagnosed). */
static sim_result *job(const char *mname, const char *dname, const char *trace, const char *const *sets, size_t nsets)
{
    sim_job j = {.model = mname, .device = dname, .trace = trace, .sets = sets, .nsets = nsets, .seed = 1, .readings = "none"};
    sim_result *r = NULL;
    int rc = sim_job_run(&j, &r);
    if (rc) {
        tap_diag("sim_job_run: %s", d2_err_msg());
        return NULL;
    }
    return r;
}

/* ---- belady never loads more than lru, lfu, budget ------------------------ */

/* For each budget: belady's loads <= each other policy's, on a single-level
 * system (moqe-dynaio-int4: one INT4 copy, demand loads only), so Belady's
 * MIN is the optimum over equal-size units.  *strict counts budgets where
 * belady beats every other policy (the ceiling is not trivial). */
static void belady_vs(const char *what, const char *trace, const char *requests, const char *prompt, const char *gen)
{
    static const char *const budgets[] = {"200M", "400M", "800M", "1600M", "3200M", "6400M"};
    static const char *const others[] = {"lru", "lfu", "budget"};
    int good = 1, strict = 0, ran = 0;
    for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
        char bud[64], mset[64];
        snprintf(bud, sizeof bud, "sim.budget=%s", budgets[b]);
        double bl = -1, best_other = 1e300;
        for (size_t k = 0; k < 4; k++) {
            snprintf(mset, sizeof mset, "sim.mem=%s", k == 0 ? "belady" : others[k - 1]);
            const char *sets[] = {"sim.policy=moqe-dynaio-int4", bud, mset, requests, prompt, gen};
            sim_result *r = job("mixtral-8x7b", "env2", trace, sets, 6);
            if (!r || strcmp(sim_result_status(r), "ok")) {
                good = 0;
                sim_result_free(r);
                continue;
            }
            ran++;
            double loads = metric(r, "loads");
            if (k == 0) bl = loads;
            else {
                if (loads < best_other) best_other = loads;
                if (bl > loads) {
                    good = 0;
                    tap_diag("%s, budget %s: belady %g loads > %s %g", what, budgets[b], bl, others[k - 1], loads);
                }
            }
            sim_result_free(r);
        }
        strict += bl >= 0 && bl < best_other; /* a failed belady run (bl = -1) counts nothing */
    }
    ok(good && ran == 24, "%s: belady needs no more loads than lru, lfu, budget at 6 budgets (24 runs)", what);
    ok(good && ran == 24 && strict >= 4, "%s: and strictly fewer than all three at %d of 6 budgets (the smallest holds two experts: all tie)", what,
       strict);
}

static void test_belady_bound(void)
{
    belady_vs("generated routing (4 requests)", NULL, "sim.requests=4", "sim.prompt=16", "sim.gen=32");
    char committed[1024];
    snprintf(committed, sizeof committed, "%s/traces/mixtral-8x7b.r2.p16.d32.s1.d2t", tap_srcdir());
    belady_vs("committed trace mixtral-8x7b.r2.p16.d32.s1", committed, "sim.requests=2", "sim.prompt=16", "sim.gen=32");
    char mx[1024], out[512];
    snprintf(mx, sizeof mx, "%s/data/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl", tap_shared());
    snprintf(out, sizeof out, "%s/mx.d2t", tmpdir);
    if (access(mx, R_OK) != 0) {
        tap_skip(3, "../shared/data/traces/mixtral-8x7b-instruct.gsm8k.routing.jsonl absent");
        return;
    }
    import_opts o = {.format = "mixtral-jsonl", .layers = 32, .experts = 8, .top_k = 2, .model = "mixtral-8x7b"};
    import_report rep;
    ok(import_run(mx, out, &o, &rep) == D2_OK, "import the real Mixtral GSM8K routing");
    belady_vs("real Mixtral GSM8K routing", out, "sim.requests=2", "sim.prompt=16", "sim.gen=64");
}

/* ---- small closed-form cases: a tiny model, routing from a function ---- */

typedef struct tiny_route {
    uint32_t layers, experts, top_k;
    const uint16_t *seq;  /* [positions][layers][top_k] expert ids */
    const float *w;       /* the same shape, gate weights (NULL: descending 0.6, 0.4, ...) */
    uint32_t positions;
} tiny_route;

static int route_tiny(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    const tiny_route *t = u;
    (void)req;
    pos %= t->positions;
    for (uint32_t k = 0; k < t->top_k; k++) {
        size_t at = ((size_t)pos * t->layers + layer) * t->top_k + k;
        e[k] = t->seq[at];
        w[k] = t->w ? t->w[at] : (k == 0 ? 0.6f : 0.4f / (float)(t->top_k - 1));
        if (b) b[k] = 0;
    }
    return D2_OK;
}

/* A 1-request run of `gen` tokens (prompt 1) on a tiny model whose expert
 * loads take 1 ms per MB; budget in units of one expert at tiny_bits bits
 * (the system's storage).  sets are extra sim.* settings. */
static int tiny_bits = 4;
static sim_result *tiny_run(const tiny_route *t, const char *system, double budget_experts, uint32_t gen,
                            const char *const *sets, size_t nsets, int *rc)
{
    model m;
    param_defaults(&model_params, &m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.layers = t->layers; m.hidden = 128; m.expert_ffn = 256; m.expert_matrices = 2;
    m.experts = t->experts; m.top_k = t->top_k; m.heads = 1; m.kv_heads = 1; m.head_dim = 128; m.vocab = 16;
    device d;
    param_defaults(&device_params, &d);
    snprintf(d.name, sizeof d.name, "testdev");
    d.mem_bytes = 1000000000000LL; d.mem_bw = 1e12; d.fp16_flops = 10e9; d.unified = 1;
    d.host_mem_bytes = d.mem_bytes; d.flash_bw = 1e9; d.flash_lat_ns = 0; d.dequant_rate = 1e12;
    d.page_cache_bytes = 0;
    sim_params p;
    param_defaults(&sim_param_table, &p);
    snprintf(p.policy, sizeof p.policy, "%s", system);
    p.router_overhead = 0; p.transient_fp16 = 0; p.nonexpert_bits = 16;
    p.requests = 1; p.prompt = 1; p.gen = gen; p.profile_requests = 1;
    p.budget = (int64_t)(budget_experts * (double)model_expert_bytes_uniform(&m, tiny_bits, p.group));
    for (size_t i = 0; i < nsets; i++)
        if ((*rc = param_apply_set(&sim_param_table, &p, sets[i])) != D2_OK) {
            tap_diag("%s: %s", sets[i], d2_err_msg());
            return NULL;
        }
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_tiny, .route_user = (void *)t};
    sim_result *r = NULL;
    *rc = sim_run(&in, &r);
    if (*rc) tap_diag("sim_run: %s", d2_err_msg());
    return r;
}

/* The debug build's assertion (mem.c, D2_DEBUG): a clairvoyant policy that
 * evicts the unit used again SOONEST (the anti-Belady) loses to LRU on
 * 0 1 0 1 0 1 2 repeated with room for two experts (LRU misses 0, 1 and 2
 * once per period after the first, 3 of 7; evicting the soonest misses
 * nearly every use), and the run stops with an internal error.  Without
 * --enable-debug the assertion is compiled out: # SKIP. */
static int pick_soonest(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    const uint32_t *c;
    uint32_t n;
    mem_candidates(m, &c, &n);
    uint64_t best = UINT64_MAX;
    *out = c[0];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t w;
        D2_TRY(mem_next_use(m, c[i], &w));
        if (w < best) best = w, *out = c[i];
    }
    return D2_OK;
}
static const mem_policy_type soonest = {
    .name = "test-soonest", .summary = "test only: evict the unit used again soonest (clairvoyant and worst)",
    .keep = 1, .needs_oracle = 1, .victim = pick_soonest,
};

static void test_belady_assertion(void)
{
    ok(mem_policy_register(&soonest) == D2_OK, "a clairvoyant test policy registered");
    static const uint16_t seq[] = {0, 1, 0, 1, 0, 1, 2};
    tiny_route t = {.layers = 1, .experts = 4, .top_k = 1, .seq = seq, .positions = 7};
    int rc;
    const char *lru[] = {"sim.mem=lru"};
    sim_result *r = tiny_run(&t, "moqe-dynaio-int4", 2, 28, lru, 1, &rc);
    /* by hand, 28 uses (prompt 1 + 27 fed tokens): LRU misses 0, 1 and 2
     * in every period (2 evicts 0, the next 0 evicts 1, that 1 evicts 2):
     * 3 x 4 = 12; Belady keeps 0 when 2 comes (evicting 1), then 1 evicts
     * 2 (used a period later): 3 + 2 x 3 = 9 */
    ok(r && metric(r, "loads") == 12, "LRU on (0 1 0 1 0 1 2) x 4, room for 2: 12 loads (by hand)");
    sim_result_free(r);
    const char *bel[] = {"sim.mem=belady"};
    r = tiny_run(&t, "moqe-dynaio-int4", 2, 28, bel, 1, &rc);
    ok(r && metric(r, "loads") == 9, "belady: 9 loads (by hand)");
    sim_result_free(r);
    const char *soon[] = {"sim.mem=test-soonest"};
    r = tiny_run(&t, "moqe-dynaio-int4", 2, 28, soon, 1, &rc);
#ifdef D2_DEBUG
    ok(rc == D2_EINTERNAL && strstr(d2_err_msg(), "cannot lose to LRU"),
       "debug build: the shadow LRU catches a clairvoyant policy that loses to LRU (%s)", rc ? d2_err_msg() : "no error");
#else
    ok(rc == D2_OK && r && metric(r, "loads") > 12, "release build: the anti-Belady runs and loses to LRU (%g loads); "
       "the assertion that stops it is in debug builds", r ? metric(r, "loads") : -1);
#endif
    sim_result_free(r);
}


/* ---- HOBBIT: the precision chosen on a miss (br_hobbit.c) ------------------ */

/* A memory of 1 layer x 4 experts x 2 copies (INT2 = unit 0, INT4 = unit 1);
 * `resident` lists (expert, unit) pairs made resident. */
static mem *small_mem(const char *policy, uint32_t layers, uint32_t experts, uint32_t units, const int64_t *bytes,
                      int64_t budget)
{
    mem *m = NULL;
    if (mem_new(mem_policy_find(policy), layers, experts, units, bytes, budget, 0, &m)) tap_diag("mem_new: %s", d2_err_msg());
    return m;
}

static int load(mem *m, uint32_t id)
{
    int fits, ev;
    if (mem_entry_reserve(m, id, &fits, &ev) || !fits) return 0;
    mem_entry_loaded(m, id);
    return 1;
}

static void test_hobbit_choice(void)
{
    static const int64_t bytes[] = {50, 100};
    mem *m = small_mem("lru", 1, 4, 2, bytes, 1000);
    if (!m) { tap_skip(5, "no memory"); return; }
    load(m, mem_entry_id(m, 0, 1, 1)); /* expert 1: INT4 copy resident */
    load(m, mem_entry_id(m, 0, 3, 0)); /* expert 3: only its INT2 copy */
    static const int bits[] = {2, 4};
    bitroute_cfg c = {.levels = 2, .level_bits = bits, .layers = 1, .experts = 4, .mem = m};
    /* by the rule in br_hobbit.c, threshold 0.3 */
    bitroute_use u[] = {
        {.expert = 0, .weight = 0.20f}, /* miss, unimportant: INT2 */
        {.expert = 1, .weight = 0.10f}, /* INT4 resident: INT4 even though unimportant */
        {.expert = 2, .weight = 0.30f}, /* miss, at the threshold: important, INT4 */
        {.expert = 3, .weight = 0.25f}, /* expert 3: one use unimportant ... */
        {.expert = 3, .weight = 0.35f}, /* ... another important: both INT4 (one load serves both) */
        {.expert = 0, .weight = 0.05f}, /* expert 0's second unimportant use: INT2 like the first */
    };
    uint32_t scratch[64];
    ok(hobbit_assign(&c, 0, u, 6, scratch) == D2_OK, "hobbit routing runs");
    ok(u[0].level == 0 && u[5].level == 0, "a miss whose every use is below the gate threshold: the INT2 copy");
    ok(u[1].level == 1, "the INT4 copy resident: INT4 even for an unimportant use");
    ok(u[2].level == 1 && u[3].level == 1 && u[4].level == 1, "any important use of the expert (gate >= 0.3): INT4 for all its uses");
    uint32_t lev = 9;
    ok(hobbit_preload_level(&c, 0, 2, &lev) == D2_OK && lev == 1, "predicted experts are preloaded at INT4");
    mem_free(m);
}

/* ---- HOBBIT's cache score (mem_hobbit.c) ---------------------------------- */

static void test_hobbit_cache(void)
{
    static const int64_t bytes[] = {1, 1};
    mem *m = small_mem("hobbit", 1, 3, 2, bytes, 3);
    if (!m) { tap_skip(2, "no memory"); return; }
    uint32_t A = mem_entry_id(m, 0, 0, 0), B = mem_entry_id(m, 0, 1, 1), C = mem_entry_id(m, 0, 2, 0);
    load(m, A), load(m, B), load(m, C);
    mem_entry_touch(m, A, 5);
    mem_entry_touch(m, B, 2);
    mem_entry_touch(m, C, 8), mem_entry_touch(m, C, 9), mem_entry_touch(m, C, 10);
    /* latest use 10, most uses 3: A = .5 x 5/10 + .3 x 1/3 + .2 x 0 = 0.35,
     * B = .5 x 2/10 + .3 x 1/3 + .2 x 1 = 0.40, C = .5 + .3 + 0 = 0.80:
     * A goes, where LRU would evict B (last use 2): its precision keeps it */
    int fits, ev;
    ok(mem_entry_reserve(m, mem_entry_id(m, 0, 1, 0), &fits, &ev) == D2_OK && fits && ev == 1, "a full cache evicts one");
    ok(mem_entry_state(m, A) == MEM_ABSENT && mem_entry_state(m, B) != MEM_ABSENT && mem_entry_state(m, C) != MEM_ABSENT,
       "hobbit cache: evicts A (score 0.35) and keeps the older INT4 copy B (0.40) and the frequent C (0.80), by hand");
    mem_free(m);
}

/* ---- mixtral-offloading: the per-layer LRU (mem_layerlru.c) ------------- */

static void test_layer_lru(void)
{
    static const int64_t bytes[] = {1};
    mem *m = small_mem("layer-lru", 2, 4, 1, bytes, 4); /* share: 2 per layer */
    if (!m) { tap_skip(4, "no memory"); return; }
    uint32_t l0[4], l1[4];
    for (uint32_t e = 0; e < 4; e++) l0[e] = mem_entry_id(m, 0, e, 0), l1[e] = mem_entry_id(m, 1, e, 0);
    load(m, l0[0]), mem_entry_touch(m, l0[0], 1);
    load(m, l0[1]), mem_entry_touch(m, l0[1], 2);
    load(m, l1[0]), mem_entry_touch(m, l1[0], 3);
    int fits, ev;
    /* layer 0 holds its share (2); the budget has room for one more, yet a
     * third expert of layer 0 evicts layer 0's least recently used */
    ok(mem_entry_reserve(m, l0[2], &fits, &ev) == D2_OK && fits && ev == 1 && mem_entry_state(m, l0[0]) == MEM_ABSENT &&
           mem_entry_state(m, l1[0]) == MEM_RESIDENT && mem_resident_bytes(m) == 3,
       "a layer at its share evicts its own LRU expert although the budget has room");
    mem_entry_loaded(m, l0[2]), mem_entry_touch(m, l0[2], 4);
    /* layer 1 borrows: its next two loads are pinned while loading (no
     * candidate of its own but l1[0]) */
    mem_entry_pin(m, l1[0]);
    ok(mem_entry_reserve(m, l1[1], &fits, &ev) == D2_OK && fits && ev == 0 && mem_resident_bytes(m) == 4,
       "a layer whose own experts are all in use borrows free room (4 of 4)");
    mem_entry_loaded(m, l1[1]), mem_entry_touch(m, l1[1], 5);
    mem_entry_unpin(m, l1[0]);
    /* the budget is full; layer 0 is at its share (2), layer 1 too (2): a
     * load into layer 1 evicts layer 1's LRU (l1[0], tick 3) */
    ok(mem_entry_reserve(m, l1[2], &fits, &ev) == D2_OK && fits && ev == 1 && mem_entry_state(m, l1[0]) == MEM_ABSENT,
       "a full layer evicts its own LRU when the budget is full too");
    mem_entry_loaded(m, l1[2]), mem_entry_touch(m, l1[2], 6);
    /* now make layer 1 over its share: pin its two, load a third by
     * borrowing... the budget is full, so layer 0 (at share) gives nothing
     * and the load is refused until something is unpinned */
    mem_entry_pin(m, l1[1]), mem_entry_pin(m, l1[2]), mem_entry_pin(m, l0[1]), mem_entry_pin(m, l0[2]);
    ok(mem_entry_reserve(m, l1[3], &fits, &ev) == D2_OK && !fits, "everything pinned: the load waits (nothing evicted)");
    ok(mem_check(m) == D2_OK, "memory invariants hold");
    mem_free(m);
}

/* The per-layer LRU on a tiny run, by hand: 2 layers x 4 experts, top-1,
 * room for 2 experts (1 per layer).  Layer 0 always uses expert 0, layer 1
 * alternates 1, 2: layer 0 loads once, layer 1 on every token (its share
 * holds one).  16 tokens: 1 + 16 = 17 loads, 15 hits. */
static void test_layer_lru_run(void)
{
    static const uint16_t seq[] = {0, 1, 0, 2}; /* [pos][layer] */
    tiny_route t = {.layers = 2, .experts = 4, .top_k = 1, .seq = seq, .positions = 2};
    int rc;
    const char *sets[] = {"sim.mem=layer-lru", "sim.prefetch=none"};
    tiny_bits = 3;
    sim_result *r = tiny_run(&t, "mixtral-offloading", 2, 16, sets, 2, &rc);
    tiny_bits = 4;
    ok(r && metric(r, "loads") == 17 && metric(r, "hits") == 15, "layer-lru, 16 tokens: 17 loads, 15 hits (by hand; got %g, %g)",
       r ? metric(r, "loads") : -1, r ? metric(r, "hits") : -1);
    sim_result_free(r);
}

/* ---- speculative loads: used or wasted (pf_gate.c) ------------------------ */

/* share of the 2 true next-layer experts (3 and 5) gate-ahead keeps over
 * 20000 predictions */
static double kept_share(prefetch_ctx *c)
{
    uint64_t kept = 0, total = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t out[8], n;
        c->layer = (uint32_t)(i % 3);
        gate_predict_fixed(c, out, &n);
        for (uint32_t k = 0; k < n; k++) kept += out[k] == 3 || out[k] == 5;
        total += 2;
    }
    return (double)kept / (double)total;
}

static void test_gate_predictors(void)
{
    gate_state st = {0};
    uint16_t next[2] = {3, 5};
    prefetch_ctx c = {.experts = 8, .layers = 4, .top_k = 2, .want = 2, .next = next, .nnext = 2, .state = &st,
                      .rng = rng_new(7, 1)};
    ok(gate_init(&st, &c) == D2_OK, "gate predictor state");
    /* the fixed accuracy: over 20000 predictions of 2 true experts each,
     * the share kept is GATE_AHEAD_ACC within 5 standard deviations
     * (sqrt(0.8 x 0.2 / 40000) = 0.002) */
    is_near(kept_share(&c), GATE_AHEAD_ACC, 0.01, "gate-ahead keeps each true expert with probability 0.8");
    /* sim.gate_ahead_acc replaces the default when the context has the run's parameters */
    {
        sim_params sp;
        param_defaults(&sim_param_table, &sp);
        ok(sp.gate_ahead_acc == GATE_AHEAD_ACC, "sim.gate_ahead_acc defaults to GATE_AHEAD_ACC (%g)", sp.gate_ahead_acc);
        sp.gate_ahead_acc = 0.3;
        c.params = &sp;
        is_near(kept_share(&c), 0.3, 0.012, "--set sim.gate_ahead_acc=0.3: each true expert kept with probability 0.3");
        c.params = NULL;
    }
    /* adaptive: layer 2's predictions all miss twice: its accuracy 1 -> 0.5
     * -> 0.25 (halfway each time), so it predicts round(2 x acc): 2, then 1 */
    uint32_t out[8], n = 0;
    c.layer = 1;
    gate_predict_adaptive(&c, out, &n);
    ok(n == 2, "adaptive: a layer not yet seen to miss gets all 2 (%u)", n);
    uint16_t cur[2] = {6, 7}; /* layer 2 uses neither 3 nor 5 nor a lucky guess: force the prediction */
    memset(st.pred + 2 * 8, 0, 8);
    st.pred[2 * 8 + 3] = st.pred[2 * 8 + 5] = 1;
    st.npred[2] = 2;
    c.layer = 2, c.cur = cur, c.ncur = 2;
    gate_observe(&c);
    is_near(st.acc[2], 0.5, 1e-12, "after a step where both predictions missed: accuracy 0.5");
    c.layer = 1;
    gate_predict_adaptive(&c, out, &n);
    ok(n == 1, "adaptive: accuracy 0.5 -> round(2 x 0.5 + 0.5) ... 1 expert (%u)", n);
    gate_fini(&st);
    gsl_rng_free(c.rng);
}

/* speculative loads counted as used or wasted, by hand: 2 layers x 4
 * experts, top-1, layer 0 always expert 0, layer 1 cycling 1, 2, 3 (room
 * for 2 experts per layer, so layer 1 misses every token without a
 * preload).  The oracle predictor (the same noise model as gate-ahead, its
 * accuracy a parameter) at accuracy 1 preloads layer 1's expert during layer
 * 0 of each of the 12 forward steps (it is always absent): all used; at
 * accuracy 0 it preloads a wrong expert: all wasted, layer 1 still misses. */
static void test_speculative_counts(void)
{
    static const uint16_t seq[] = {0, 1, 0, 2, 0, 3};
    tiny_route t = {.layers = 2, .experts = 4, .top_k = 1, .seq = seq, .positions = 3};
    int rc;
    const char *acc1[] = {"sim.prefetch=oracle", "sim.predict_acc=1"};
    tiny_bits = 3;
    sim_result *r = tiny_run(&t, "mixtral-offloading", 4, 12, acc1, 2, &rc);
    ok(r && metric(r, "prefetch_loads") == 12 && metric(r, "prefetch_used") == 12 && metric(r, "loads") == 1,
       "accuracy 1: 12 preloads, all 12 used, one demand load (layer 0's expert) (got %g, %g, %g)",
       r ? metric(r, "prefetch_loads") : -1, r ? metric(r, "prefetch_used") : -1, r ? metric(r, "loads") : -1);
    sim_result_free(r);
    const char *acc0[] = {"sim.prefetch=oracle", "sim.predict_acc=0"};
    r = tiny_run(&t, "mixtral-offloading", 4, 12, acc0, 2, &rc);
    tiny_bits = 4;
    ok(r && metric(r, "prefetch_used") == 0 && metric(r, "prefetch_accuracy") == 0 && metric(r, "loads") == 13,
       "accuracy 0: every preload wasted, layer 1 misses all 12 tokens (13 loads; got %g used, %g loads)",
       r ? metric(r, "prefetch_used") : -1, r ? metric(r, "loads") : -1);
    sim_result_free(r);
}

/* ---- each system on a small configuration: its metric moves right ------- */

static double run_metric2(const char *system, const char *extra, const char *extra2, const char *budget, const char *name)
{
    char pol[64], bud[64];
    snprintf(pol, sizeof pol, "sim.policy=%s", system);
    snprintf(bud, sizeof bud, "sim.budget=%s", budget);
    const char *sets[] = {pol, bud, "sim.requests=1", "sim.prompt=16", "sim.gen=32", extra ? extra : "sim.seed=1",
                          extra2 ? extra2 : "sim.seed=1"};
    sim_result *r = job("mixtral-8x7b", "env1", NULL, sets, 7);
    double v = r && !strcmp(sim_result_status(r), "ok") ? metric(r, name) : -1;
    sim_result_free(r);
    return v;
}
static double run_metric(const char *system, const char *extra, const char *budget, const char *name)
{
    return run_metric2(system, extra, NULL, budget, name);
}

typedef struct preload_levels { uint64_t preloads, above_base; } preload_levels;
static void count_preloads(void *u, const sim_op *op)
{
    preload_levels *p = u;
    if (op->kind == SIM_OP_LOAD && op->preload) p->preloads++, p->above_base += op->level != 1;
}

static void test_systems_move(void)
{
    double hb = run_metric("hobbit", NULL, "3G", "io_gb"), hb4 = run_metric("hobbit", "sim.bitroute=uniform:4", "3G", "io_gb");
    double low = run_metric("hobbit", NULL, "3G", "uses_bits_2");
    ok(hb > 0 && hb4 > 0 && hb < hb4 && low > 0,
       "hobbit loads fewer bytes (%.1f GB) than the same system without low-precision misses (%.1f GB); %g uses at INT2", hb,
       hb4, low);
    double ll = run_metric("mixtral-offloading", "sim.prefetch=none", "3G", "hit_rate");
    double gl = run_metric("mixtral-offloading", "sim.mem=lru", "3G", "hit_rate");
    double glnp = run_metric2("mixtral-offloading", "sim.mem=lru", "sim.prefetch=none", "3G", "hit_rate");
    ok(ll > 0.05 && glnp == 0, "mixtral-offloading's per-layer LRU hits (%.3f) where one LRU over all layers thrashes on the "
       "cyclic layer order (%.3f)", ll, glnp);
    double sp = run_metric("mixtral-offloading", NULL, "3G", "hit_rate");
    double acc = run_metric("mixtral-offloading", NULL, "3G", "prefetch_accuracy");
    ok(sp > ll && acc > 0.7 && acc < 0.9, "speculative loading raises its hit rate (%.3f > %.3f without; with global LRU %.3f); "
       "measured accuracy %.3f near the assumed 0.8", sp, ll, gl, acc);
    double m3 = run_metric("mixtral-offloading", NULL, "3G", "io_gb"), m2 = run_metric("mixtral-offloading-int2", NULL, "3G", "io_gb");
    double t3 = run_metric("mixtral-offloading", NULL, "3G", "throughput_tps");
    double t2 = run_metric("mixtral-offloading-int2", NULL, "3G", "throughput_tps");
    ok(m2 > 0 && m2 < m3 && t2 > t3, "mixtral-offloading-int2 moves fewer bytes (%.1f < %.1f GB) and serves faster (%.3f > %.3f tok/s) "
       "than its INT3 row", m2, m3, t2, t3);
    double d1 = run_metric("d2moe-v1", NULL, "2G", "hit_rate"), d1p = run_metric("d2moe-v1-prefetch", NULL, "2G", "hit_rate");
    double d2 = run_metric("d2moe-v2", NULL, "4G", "hit_rate"), d2p = run_metric("d2moe-v2-prefetch", NULL, "4G", "hit_rate");
    ok(d1 >= 0 && d1p > d1 && d2 >= 0 && d2p > d2, "preloading raises D2MoE's hit rate: v1 %.3f -> %.3f, v2 %.3f -> %.3f", d1,
       d1p, d2, d2p);
    preload_levels pl = {0, 0};
    sim_observer obs = {.op = count_preloads, .user = &pl};
    const char *sets[] = {"sim.policy=d2moe-v1-prefetch", "sim.budget=2G", "sim.requests=1", "sim.prompt=16", "sim.gen=32"};
    sim_job j = {.model = "mixtral-8x7b", .device = "env1", .sets = sets, .nsets = 5, .seed = 1, .readings = "none", .obs = &obs};
    sim_result *r = NULL;
    int jrc = sim_job_run(&j, &r);
    ok(jrc == D2_OK && pl.preloads > 0 && pl.above_base == 0,
       "d2moe-v1-prefetch preloads base levels only (%llu preloads, %llu above level 1)", (unsigned long long)pl.preloads,
       (unsigned long long)pl.above_base);
    sim_result_free(r);
}


/* ---- the step memo (sim/stepmemo.h) -------------------------------------- */

#define MEMO_MAX_METRICS 512
typedef struct mvec { double v[MEMO_MAX_METRICS]; size_t n; } mvec;
static int mcollect(const char *name, double v, const char *unit, void *u)
{
    (void)unit;
    mvec *m = u;
    if (strcmp(name, "plan_overhead_s") && m->n < MEMO_MAX_METRICS) m->v[m->n++] = v; /* wall clock: not simulated */
    return D2_OK;
}

/* The same jobs with the memo off, then on (the first budget opens the
 * entry, the second records, the third is answered): every metric bit for
 * bit equal, and the memo was
 * used.  Systems: gate ranking without a predictor (routing skipped on a
 * hit), gate ranking with the paths predictor (routing decoded: the memo is
 * checked against it), uniform bits, static bits (not pure: never keyed);
 * batch arrivals (every forward step the same at each budget) and poisson
 * ones (compositions differ between budgets: those steps are recomputed). */
static void test_step_memo(void)
{
    static const char *const systems[] = {"d2moe-v1", "d2moe-v1-prefetch", "moqe-dynaio-int4", "edgemoe"};
    static const char *const budgets[] = {"sim.budget=700M", "sim.budget=1200M", "sim.budget=2600M"};
    static const char *const arrivals[] = {"sim.arrival=batch", "sim.arrival=poisson"};
    int equal = 1, ran = 0;
    uint64_t hits_before = stepmemo_hits();
    for (int mode = 0; mode < 2; mode++) {
        static mvec off[2][4][3];
        stepmemo_limit(mode == 0 ? 0 : (size_t)64 << 20);
        if (mode == 0) is_int((long long)stepmemo_bytes(), 0, "step memo off: holds nothing");
        for (size_t a = 0; a < 2; a++)
            for (size_t s = 0; s < 4; s++)
                for (size_t b = 0; b < 3; b++) {
                    char pol[64];
                    snprintf(pol, sizeof pol, "sim.policy=%s", systems[s]);
                    const char *sets[] = {pol, budgets[b], arrivals[a], "sim.requests=6", "sim.prompt=8", "sim.gen=6",
                                          "sim.arrival_rate=40"};
                    sim_result *r = job("mixtral-8x7b", "env1", NULL, sets, sizeof sets / sizeof *sets);
                    if (!r) { equal = 0; continue; }
                    mvec v = {.n = 0};
                    sim_result_foreach_metric(r, mcollect, &v);
                    if (mode == 0) off[a][s][b] = v;
                    else {
                        ran++;
                        if (v.n != off[a][s][b].n || memcmp(v.v, off[a][s][b].v, v.n * sizeof *v.v)) {
                            equal = 0;
                            tap_diag("%s, %s, %s: metrics differ with the step memo", systems[s], budgets[b], arrivals[a]);
                        }
                    }
                    sim_result_free(r);
                }
    }
    ok(equal && ran == 24, "24 jobs: every metric bit for bit equal with the step memo off and on");
    ok(stepmemo_hits() > hits_before, "the step memo answered forward steps (%llu)",
       (unsigned long long)(stepmemo_hits() - hits_before));
    ok(stepmemo_bytes() > 0, "the step memo holds %zu bytes", stepmemo_bytes());
    stepmemo_limit(0);
    is_int((long long)stepmemo_bytes(), 0, "bound 0 frees what the memo held");

    /* the entry itself: whole forward steps only, compositions compared exactly */
    stepmemo_limit((size_t)1 << 20);
    stepmemo *m = NULL;
    ok(stepmemo_open("k", 2, 3, &m) == D2_OK && m, "an entry opens");
    const uint32_t comp[3] = {1, 0, 5}, other[3] = {1, 0, 6}, cnt[2][3] = {{1, 2, 3}, {4, 5, 6}};
    const double g[2][3] = {{.5, .25, .125}, {1, 2, 3}}, g2[2][3] = {{.25, .0625, 0}, {1, 4, 9}};
    stepmemo_put(m, 0, comp, 3, 0, cnt[0], g[0], g2[0]);
    stepmemo_put(m, 0, comp, 3, 1, cnt[1], g[1], g2[1]);
    ok(!stepmemo_have(m, 0, comp, 3) && stepmemo_bytes() == 0, "the first run of a key records nothing (%zu bytes)",
       stepmemo_bytes());
    stepmemo_close(m);
    ok(stepmemo_open("k", 2, 3, &m) == D2_OK && m, "the key's second run opens the same entry");
    stepmemo_put(m, 0, comp, 3, 0, cnt[0], g[0], g2[0]);
    ok(!stepmemo_have(m, 0, comp, 3), "a forward step with one of two layers recorded is not answered");
    stepmemo_put(m, 0, comp, 3, 1, cnt[1], g[1], g2[1]);
    ok(stepmemo_have(m, 0, comp, 3), "recorded whole: answered");
    ok(!stepmemo_have(m, 0, other, 3) && !stepmemo_have(m, 0, comp, 2) && !stepmemo_have(m, 1, comp, 3),
       "another composition, a shorter one or another forward step: not answered");
    const uint32_t *c;
    const double *x, *x2;
    stepmemo_get(m, 0, 1, &c, &x, &x2);
    ok(!memcmp(c, cnt[1], sizeof cnt[1]) && !memcmp(x, g[1], sizeof g[1]) && !memcmp(x2, g2[1], sizeof g2[1]),
       "layer 1 gives back what was put");
    stepmemo_put(m, 0, other, 3, 0, cnt[1], g[1], g2[1]);
    stepmemo_get(m, 0, 0, &c, &x, &x2);
    ok(stepmemo_have(m, 0, comp, 3) && !memcmp(c, cnt[0], sizeof cnt[0]), "a whole forward step is kept as it was");
    stepmemo *m2 = NULL;
    ok(stepmemo_open("k", 2, 4, &m2) == D2_OK && !m2, "the same key with another shape is not used");
    stepmemo_close(m);
    stepmemo_limit(0);
    ok(stepmemo_open("k", 2, 3, &m) == D2_OK && !m, "memo off: no entry");
    stepmemo_limit((size_t)64 << 20);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/t_systems.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_belady_bound();
    test_belady_assertion();
    test_hobbit_choice();
    test_hobbit_cache();
    test_layer_lru();
    test_layer_lru_run();
    test_gate_predictors();
    test_speculative_counts();
    test_systems_move();
    test_step_memo();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) tap_diag("could not remove %s", tmpdir);
    return tap_done();
}
