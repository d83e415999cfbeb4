/* t_plugin.c - a system written as rows only: a memory policy with state
 * and hooks and a named system that uses it, both registered at run time
 * from this file (no edit of the serving loop or of any table), run
 * against a closed-form case; plus the registry's find/list/names/register
 * on every table.  Known answers: MRU and Belady on the cyclic sequence
 * 0,1,2,0,1,2,... with room for two experts miss 7 of 12 uses, LRU all 12
 * (the classic cyclic-pattern result, worked out in the comments below). */
#include "sim/sim.h"
#include "sim/arrival.h"
#include "sim/bitroute.h"
#include "sim/mem.h"
#include "sim/pcache.h"
#include "sim/plan.h"
#include "sim/policy.h"
#include "sim/prefetch.h"
#include "core/err.h"
#include "tap.h"

#include <string.h>

/* ---- the plug-in: most-recently-used eviction, counting its hooks ------- */

typedef struct mru_state {
    int inits;                   /* init calls */
    int64_t inserts, uses, evicts, steps; /* hook calls */
} mru_state;

static int fini_calls;
static mru_state last_state;     /* copied at fini, for the test to read */

static int mru_init(void *st, const mem *m)
{
    (void)m;
    ((mru_state *)st)->inits++;
    return D2_OK;
}
static void mru_fini(void *st)
{
    fini_calls++;
    last_state = *(mru_state *)st;
}
static void mru_insert(void *st, const mem *m, uint32_t id) { (void)m, (void)id; ((mru_state *)st)->inserts++; }
static void mru_use(void *st, const mem *m, uint32_t id) { (void)m, (void)id; ((mru_state *)st)->uses++; }
static void mru_evict(void *st, const mem *m, uint32_t id) { (void)m, (void)id; ((mru_state *)st)->evicts++; }
static void mru_after(void *st, const mem *m, uint32_t layer) { (void)m, (void)layer; ((mru_state *)st)->steps++; }
static int mru_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    (void)st, (void)incoming;
    const uint32_t *c;
    uint32_t n;
    mem_candidates(m, &c, &n);
    uint32_t best = c[0];
    for (uint32_t i = 1; i < n; i++)
        if (mem_entry_last_use(m, c[i]) > mem_entry_last_use(m, best)) best = c[i];
    *out = best;
    return D2_OK;
}

static const mem_policy_type mru = {
    .name = "test-mru", .summary = "test only: evict the most recently used", .keep = 1,
    .state_size = sizeof(mru_state), .init = mru_init, .fini = mru_fini, .on_insert = mru_insert,
    .on_use = mru_use, .on_evict = mru_evict, .after_step = mru_after, .victim = mru_victim,
};

static const policy_system mru_system = {
    .name = "test-mru-int4", .summary = "test only: INT4 copies loaded on demand, MRU buffer of sim.budget",
    .nested = 0, .levels = 1, .bits = {4}, .caps = "1", .bitroute = "uniform:4", .plan = "id-order",
    .mem = "test-mru", .prefetch = "none", .buffer = "budget",
};

/* ---- the case: one layer, 4 experts, top-1, one request, 12 tokens ------ */

static int route_cyclic(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)u, (void)req, (void)layer;
    e[0] = (uint16_t)(pos % 3);
    w[0] = 1.0f;
    if (b) b[0] = 0;
    return D2_OK;
}

static sim_result *run_case(const char *system, const char *mem_override, int *rc)
{
    model m;
    param_defaults(&model_params, &m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.layers = 1; m.hidden = 128; m.expert_ffn = 256; m.expert_matrices = 2;
    m.experts = 4; m.top_k = 1; m.heads = 1; m.kv_heads = 1; m.head_dim = 128; m.vocab = 16;
    device d;
    param_defaults(&device_params, &d);
    snprintf(d.name, sizeof d.name, "testdev");
    d.mem_bytes = 1000000000000LL; d.mem_bw = 1e12; d.fp16_flops = 10e9; d.unified = 1;
    d.host_mem_bytes = d.mem_bytes; d.flash_bw = 1e9; d.flash_lat_ns = 0; d.dequant_rate = 1e12;
    d.page_cache_bytes = 0;
    sim_params p;
    param_defaults(&sim_param_table, &p);
    snprintf(p.policy, sizeof p.policy, "%s", system);
    if (mem_override) snprintf(p.mem, sizeof p.mem, "%s", mem_override);
    p.router_overhead = 0; p.transient_fp16 = 0; p.nonexpert_bits = 16;
    p.requests = 1; p.prompt = 1; p.gen = 12;
    p.budget = 2 * model_expert_bytes_uniform(&m, 4, p.group); /* room for two experts */
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_cyclic};
    sim_result *r = NULL;
    *rc = sim_run(&in, &r);
    if (*rc) tap_diag("sim_run: %s", d2_err_msg());
    return r;
}

static double metric(const sim_result *r, const char *name)
{
    double v = -1;
    if (sim_result_metric(r, name, &v)) tap_diag("no metric %s", name);
    return v;
}

static void test_rows_only_system(void)
{
    ok(mem_policy_register(&mru) == D2_OK && policy_register(&mru_system) == D2_OK, "a memory policy and a system registered");
    ok(mem_policy_register(&mru) == D2_EINVAL && policy_register(&mru_system) == D2_EINVAL, "registering a name twice is refused");
    ok(mem_policy_find("test-mru") == &mru && policy_find("test-mru-int4") == &mru_system, "both found by name");
    sim_system s;
    ok(sim_system_resolve(&(sim_params){.policy = "test-mru-int4"}, &s) == D2_OK && !strcmp(s.mem, "test-mru"),
       "sim_system_resolve knows the registered system and its policy");

    /* MRU, cache of 2, uses 0 1 2 0 1 2 0 1 2 0 1 2:
     * 0m 1m 2m(evict 1) 0h 1m(evict 0) 2h 0m(evict 2) 1h 2m(evict 1) 0h 1m(evict 0) 2h: 7 loads, 5 hits, 5 evictions */
    int rc;
    fini_calls = 0;
    sim_result *r = run_case("test-mru-int4", NULL, &rc);
    if (ok(rc == D2_OK && r && !strcmp(sim_result_status(r), "ok"), "the rows-only system runs")) {
        is_int((int64_t)metric(r, "loads"), 7, "MRU: 7 loads (closed form)");
        is_int((int64_t)metric(r, "hits"), 5, "MRU: 5 hits");
        is_int((int64_t)metric(r, "evictions"), 5, "MRU: 5 evictions");
        is_int(fini_calls, 1, "its state was finalised once");
        is_int(last_state.inits, 1, "init ran once");
        is_int(last_state.inserts, 7, "on_insert: once per load");
        is_int(last_state.uses, 12, "on_use: once per use");
        is_int(last_state.evicts, 5, "on_evict: once per eviction");
        is_int(last_state.steps, 12, "after_step: once per layer step");
    }
    sim_result_free(r);
    /* the same row with the built-in policies: LRU misses every use of a
     * cycle longer than the cache; Belady matches MRU's 7 here */
    r = run_case("test-mru-int4", "lru", &rc);
    ok(rc == D2_OK && r && metric(r, "loads") == 12 && metric(r, "hits") == 0, "the same system under lru: 12 loads, 0 hits");
    sim_result_free(r);
    r = run_case("test-mru-int4", "belady", &rc);
    ok(rc == D2_OK && r && metric(r, "loads") == 7, "under belady: 7 loads (the optimum on this sequence)");
    sim_result_free(r);
}

/* ---- the registry on every table ----------------------------------------- */

#define CHECK_TABLE(prefix, first)                                                                   \
    do {                                                                                             \
        char names_[512];                                                                            \
        prefix##_names(names_, sizeof names_);                                                       \
        size_t n_ = prefix##_count(), listed_ = 0;                                                   \
        for (size_t i_ = 0; prefix##_list()[i_].name; i_++) listed_++;                               \
        int found_ = 1;                                                                              \
        for (size_t i_ = 0; i_ < n_; i_++) found_ &= prefix##_find(prefix##_at(i_)->name) == prefix##_at(i_); \
        ok(n_ >= listed_ && listed_ > 0 && found_ && !strncmp(names_, first, strlen(first)) &&      \
               !prefix##_find("no-such-row") && !prefix##_find(NULL) && !prefix##_at(n_),            \
           #prefix ": %zu rows, each found by name; names \"%s\"", n_, names_);                      \
    } while (0)

static void test_registry(void)
{
    CHECK_TABLE(policy, "d2moe-v1, d2moe-v2");
    CHECK_TABLE(mem_policy, "budget, lru, lfu, belady");
    CHECK_TABLE(plan, "hebf, id-order, sequential, optimal");
    CHECK_TABLE(prefetch, "none, paths, oracle");
    CHECK_TABLE(bitroute_type, "capacity, gate, static, uniform, trace");
    CHECK_TABLE(arrival, "batch, poisson, uniform");
    CHECK_TABLE(pcache_policy, "lru, two-list");
    char small[8];
    mem_policy_names(small, sizeof small);
    ok(strlen(small) == 7, "names into a small buffer: truncated, terminated (\"%s\")", small);
}

int main(void)
{
    test_registry();
    test_rows_only_system();
    return tap_done();
}
