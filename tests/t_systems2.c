/* t_systems2.c - the plug-ins of moe-infinity, fate and slicemoe (issue
 * 15): closed-form cases of each mechanism (ARC's lists on a sequence worked
 * by hand from the FAST 2003 pseudo-code, and against a textbook page-based
 * ARC on random sequences; the shallow-favouring split and what it keeps;
 * the activation-matrix match on a hand-made history; slice-level hits and
 * the miss-rate target; the warmup's keep set), and each system run on a
 * small configuration whose distinguishing metric moves the right way. */
#include "sim/sim.h"
#include "sim/plugins.h"
#include "sim/policy.h"
#include "core/err.h"
#include "core/rng.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* ---- a memory of 1-byte units, used as the serving loop uses it ---------- */

static int64_t tick = 1;

/* a use of id: hit when present, else a load (touch first, as step.c) */
static int access_id(mem *m, uint32_t id, int *hit)
{
    *hit = mem_entry_state(m, id) != MEM_ABSENT;
    mem_entry_touch(m, id, tick++);
    if (*hit) return D2_OK;
    int fits = 0, ev = 0;
    D2_TRY(mem_entry_reserve(m, id, &fits, &ev));
    if (!fits) D2_ERROR(D2_EINTERNAL, "test: entry %u does not fit", id);
    mem_entry_loaded(m, id);
    return mem_check(m);
}

static mem *mem_of(const char *policy, uint32_t layers, uint32_t experts, uint32_t units, int64_t budget)
{
    int64_t ub[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    mem *m = NULL;
    if (mem_new(mem_policy_find(policy), layers, experts, units, ub, budget, 0, &m)) tap_diag("mem_new: %s", d2_err_msg());
    return m;
}

/* a list's ids from its MRU end, as a string "3 0" */
static const char *arc_list_str(const arc_state *s, int l)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    size_t at = 0;
    b[0] = 0;
    for (uint32_t id = s->head[l]; id != ARC_NIL && at < 200; id = s->next[id])
        at += (size_t)snprintf(b + at, 256 - at, "%s%u", at ? " " : "", id);
    return b;
}

/* ARC with c = 3 on 0 1 2 0 3 4 1 3 0 5 3, worked by hand from the paper's
 * pseudo-code (Megiddo and Modha, FAST 2003, Fig. 4; lists MRU first):
 *   0 1 2  misses: T1 = 2 1 0
 *   0      hit: T2 = 0, T1 = 2 1
 *   3      miss (IV): |T1| = 2 > p = 0, evict 1 -> B1; T1 = 3 2
 *   4      miss (IV, |T1|+|B1| = c): drop 1 from B1, evict 2 -> B1; T1 = 4 3
 *   1      miss (IV): drop 2, evict 3 -> B1; T1 = 1 4, B1 = 3
 *   3      B1 hit: p = 0 + max(|B2|/|B1|, 1) = 1; |T1| = 2 > 1, evict 4 -> B1; T2 = 3 0
 *   0      hit: T2 = 0 3
 *   5      miss (IV): |T1| = 1 = p, 5 not in B2: evict T2's LRU 3 -> B2; T1 = 5 1
 *   3      B2 hit: p = 1 - max(|B1|/|B2|, 1) = 0; |T1| = 2 > 0, evict 1 -> B1
 * final T1 = 5, T2 = 3 0, B1 = 1 4, B2 = (empty), p = 0; 9 misses, 2 hits. */
static void test_arc_by_hand(void)
{
    mem *m = mem_of("arc", 1, 6, 1, 3);
    if (!ok(m != NULL, "arc: a memory of 3 one-byte units")) return;
    const uint32_t seq[] = {0, 1, 2, 0, 3, 4, 1, 3, 0, 5, 3};
    int hits = 0, rc = D2_OK, hit;
    const arc_state *s = mem_policy_state(m);
    double p_after_b1 = -1;
    for (size_t i = 0; i < sizeof seq / sizeof *seq && rc == D2_OK; i++) {
        rc = access_id(m, seq[i], &hit);
        hits += hit;
        if (i == 7) p_after_b1 = s->p;
    }
    ok(rc == D2_OK, "arc: the sequence runs (%s)", rc ? d2_err_msg() : "ok");
    is_int(hits, 2, "arc: 2 hits (0 twice; the ghost hits on 3 are misses)");
    is_near(p_after_b1, 1, 1e-12, "arc: the B1 ghost hit on 3 raises p to 1");
    is_str(arc_list_str(s, ARC_T1), "5", "arc: T1 = 5");
    is_str(arc_list_str(s, ARC_T2), "3 0", "arc: T2 = 3 0 (MRU first)");
    is_str(arc_list_str(s, ARC_B1), "1 4", "arc: B1 = 1 4");
    is_str(arc_list_str(s, ARC_B2), "", "arc: B2 empty (3 came back)");
    is_near(s->p, 0, 1e-12, "arc: the B2 ghost hit on 3 lowers p back to 0");
    mem_free(m);
}

/* ARC in bytes: units of 1 and 2 bytes (two copies per expert: entry
 * 2e + u has 1 + u bytes), c = 4 bytes; ids 0 2 4 0 1 2 5:
 *   0 2 4  misses (1 byte each): T1 = 4 2 0
 *   0      hit: T2 = 0, T1 = 4 2
 *   1      2 bytes, 1 free: |T1| = 2 > p = 0, evict 2 -> B1; T1 = 1 4
 *   2      B1 hit: p += 1 byte x max(|B2|/|B1|, 1) = 1; |T1| = 3 > 1, evict 4 -> B1; T2 = 2 0
 *   5      2 bytes, none free: |T1| = 2 > 1, evict 1 (2 bytes) -> B1 = 1 4;
 *          T1 = 5, and |T1| + |B1| = 5 > c drops the oldest ghost 4
 * final T1 = 5, T2 = 2 0, B1 = 1, B2 empty, p = 1 byte; 1 hit. */
static void test_arc_bytes(void)
{
    int64_t ub[2] = {1, 2};
    mem *m = NULL;
    if (!ok(mem_new(mem_policy_find("arc"), 1, 4, 2, ub, 4, 0, &m) == D2_OK, "arc in bytes: units of 1 and 2 bytes, c = 4")) return;
    const uint32_t seq[] = {0, 2, 4, 0, 1, 2, 5};
    int hits = 0, rc = D2_OK, hit;
    for (size_t i = 0; i < sizeof seq / sizeof *seq && rc == D2_OK; i++) {
        rc = access_id(m, seq[i], &hit);
        hits += hit;
    }
    const arc_state *s = mem_policy_state(m);
    ok(rc == D2_OK && hits == 1, "arc in bytes: the sequence runs, 1 hit");
    const char *t1 = arc_list_str(s, ARC_T1), *t2 = arc_list_str(s, ARC_T2), *b1 = arc_list_str(s, ARC_B1), *b2 = arc_list_str(s, ARC_B2);
    ok(!strcmp(t1, "5") && !strcmp(t2, "2 0") && !strcmp(b1, "1") && !strcmp(b2, ""),
       "arc in bytes: T1 = 5, T2 = 2 0, B1 = 1, B2 empty (got %s / %s / %s / %s)", t1, t2, b1, b2);
    ok(s->p == 1 && s->bytes[ARC_T1] == 2 && s->bytes[ARC_T2] == 2 && s->bytes[ARC_B1] == 2,
       "arc in bytes: p = 1 byte; T1 2, T2 2, B1 2 bytes");
    mem_free(m);
}

/* ---- textbook ARC over pages, for the random comparison ------------------ */

typedef struct tarc {
    int c;
    double p;
    int n[5];
    uint32_t l[5][64]; /* each list MRU first */
} tarc;

static int tfind(const tarc *a, int li, uint32_t x)
{
    for (int i = 0; i < a->n[li]; i++)
        if (a->l[li][i] == x) return i;
    return -1;
}
static void tdel(tarc *a, int li, int at)
{
    memmove(a->l[li] + at, a->l[li] + at + 1, (size_t)(a->n[li] - at - 1) * sizeof(uint32_t));
    a->n[li]--;
}
static void tpush(tarc *a, int li, uint32_t x)
{
    memmove(a->l[li] + 1, a->l[li], (size_t)a->n[li] * sizeof(uint32_t));
    a->l[li][0] = x;
    a->n[li]++;
}
static void treplace(tarc *a, int in_b2)
{
    if (a->n[ARC_T1] >= 1 && ((in_b2 && a->n[ARC_T1] == a->p) || a->n[ARC_T1] > a->p)) {
        uint32_t x = a->l[ARC_T1][a->n[ARC_T1] - 1];
        tdel(a, ARC_T1, a->n[ARC_T1] - 1);
        tpush(a, ARC_B1, x);
    } else {
        uint32_t x = a->l[ARC_T2][a->n[ARC_T2] - 1];
        tdel(a, ARC_T2, a->n[ARC_T2] - 1);
        tpush(a, ARC_B2, x);
    }
}
static int taccess(tarc *a, uint32_t x)
{
    int i;
    if ((i = tfind(a, ARC_T1, x)) >= 0 || (i = tfind(a, ARC_T2, x)) >= 0) { /* case I */
        tdel(a, tfind(a, ARC_T1, x) >= 0 ? ARC_T1 : ARC_T2, i);
        tpush(a, ARC_T2, x);
        return 1;
    }
    if ((i = tfind(a, ARC_B1, x)) >= 0) { /* case II */
        double d = a->n[ARC_B2] > a->n[ARC_B1] ? (double)a->n[ARC_B2] / a->n[ARC_B1] : 1;
        a->p = a->p + d < a->c ? a->p + d : a->c;
        treplace(a, 0);
        tdel(a, ARC_B1, tfind(a, ARC_B1, x));
        tpush(a, ARC_T2, x);
        return 0;
    }
    if ((i = tfind(a, ARC_B2, x)) >= 0) { /* case III */
        double d = a->n[ARC_B1] > a->n[ARC_B2] ? (double)a->n[ARC_B1] / a->n[ARC_B2] : 1;
        a->p = a->p - d > 0 ? a->p - d : 0;
        treplace(a, 1);
        tdel(a, ARC_B2, tfind(a, ARC_B2, x));
        tpush(a, ARC_T2, x);
        return 0;
    }
    int l1 = a->n[ARC_T1] + a->n[ARC_B1], tot = l1 + a->n[ARC_T2] + a->n[ARC_B2]; /* case IV */
    if (l1 == a->c) {
        if (a->n[ARC_T1] < a->c) {
            tdel(a, ARC_B1, a->n[ARC_B1] - 1);
            treplace(a, 0);
        } else {
            tdel(a, ARC_T1, a->n[ARC_T1] - 1);
        }
    } else if (tot >= a->c) {
        if (tot == 2 * a->c) tdel(a, ARC_B2, a->n[ARC_B2] - 1);
        treplace(a, 0);
    }
    tpush(a, ARC_T1, x);
    return 0;
}

static void test_arc_vs_textbook(void)
{
    gsl_rng *g = rng_new(7, 1);
    int agree = 1, runs = 0, bad_c = 0, bad_step = 0;
    for (int c = 2; c <= 6 && agree; c++)
        for (int rep = 0; rep < 20 && agree; rep++) {
            tarc t;
            memset(&t, 0, sizeof t);
            t.c = c;
            mem *m = mem_of("arc", 1, 12, 1, c);
            if (!m) { agree = 0; break; }
            const arc_state *s = mem_policy_state(m);
            for (int step = 0; step < 300 && agree; step++) {
                /* a skewed draw so that frequency matters: half the uses on 3 ids */
                uint32_t x = gsl_rng_uniform(g) < 0.5 ? (uint32_t)gsl_rng_uniform_int(g, 3) : (uint32_t)gsl_rng_uniform_int(g, 12);
                int hit, th = taccess(&t, x);
                if (access_id(m, x, &hit) || hit != th) agree = 0;
                for (int li = ARC_T1; li <= ARC_B2 && agree; li++) {
                    char want[256] = "";
                    size_t at = 0;
                    for (int i = 0; i < t.n[li]; i++) at += (size_t)snprintf(want + at, sizeof want - at, "%s%u", i ? " " : "", t.l[li][i]);
                    if (strcmp(want, arc_list_str(s, li))) agree = 0;
                }
                if (s->p != t.p) agree = 0;
                if (!agree) bad_c = c, bad_step = step;
            }
            mem_free(m);
            runs++;
        }
    gsl_rng_free(g);
    ok(agree, "arc: the four lists and p equal a textbook page-based ARC after every use (%d runs of 300 uses, c = 2..6%s)", runs,
       agree ? "" : "; first disagreement logged");
    if (!agree) tap_diag("c = %d, step %d", bad_c, bad_step);
}

/* ---- fate: the shallow-favouring split ---------------------------------- */

static void test_fate_split(void)
{
    int64_t q[4];
    fate_quotas(36, 4, 2.0, q);
    /* weights 1 + (L - 1 - l)/(L - 1) = 2, 5/3, 4/3, 1 (sum 6): 36 x 1/3, 5/18, 2/9, 1/6 */
    ok(q[0] == 12 && q[1] == 10 && q[2] == 8 && q[3] == 6, "fate split of 36 bytes over 4 layers, ratio 2: 12 10 8 6 (got %lld %lld %lld %lld)",
       (long long)q[0], (long long)q[1], (long long)q[2], (long long)q[3]);
    int64_t r[3];
    fate_quotas(10, 3, 2.0, r); /* 2, 1.5, 1 (sum 4.5): 4.44 3.33 2.22 -> 4 3 2, the byte left to layer 0 */
    ok(r[0] == 5 && r[1] == 3 && r[2] == 2, "fate split of 10 over 3 layers: 5 3 2, sums to the budget");
    int64_t one;
    fate_quotas(7, 1, 2.0, &one);
    is_int(one, 7, "fate split over one layer: all of it");

    /* 4 layers x 12 experts of 1 byte, budget 36, each layer's 12 experts
     * used once, layer by layer: layer 3 first takes from the layers over
     * their quota (layer 2 by 4, then layer 1 by 2), then from itself, so
     * the memory ends at the quotas 12 10 8 6; plain ARC (LRU here: every
     * use is a first one) ends with layer 0 empty. */
    const char *pol[2] = {"fate", "arc"};
    int64_t want[2][4] = {{12, 10, 8, 6}, {0, 12, 12, 12}};
    for (int k = 0; k < 2; k++) {
        mem *m = mem_of(pol[k], 4, 12, 1, 36);
        int rc = m ? D2_OK : D2_EINTERNAL, hit;
        for (uint32_t l = 0; l < 4 && rc == D2_OK; l++)
            for (uint32_t e = 0; e < 12 && rc == D2_OK; e++) rc = access_id(m, mem_entry_id(m, l, e, 0), &hit);
        ok(rc == D2_OK && mem_layer_bytes(m, 0) == want[k][0] && mem_layer_bytes(m, 1) == want[k][1] &&
               mem_layer_bytes(m, 2) == want[k][2] && mem_layer_bytes(m, 3) == want[k][3],
           "%s: after one pass the layers hold %lld %lld %lld %lld bytes", pol[k], (long long)want[k][0], (long long)want[k][1],
           (long long)want[k][2], (long long)want[k][3]);
        /* the shallow layer's second pass: all hits under fate, none under arc */
        int hits = 0;
        for (uint32_t e = 0; e < 12 && rc == D2_OK; e++) {
            rc = access_id(m, mem_entry_id(m, 0, e, 0), &hit);
            hits += hit;
        }
        is_int(hits, k == 0 ? 12 : 0, "%s: layer 0 used again: %d hits of 12", pol[k], k == 0 ? 12 : 0);
        mem_free(m);
    }
}

/* ---- moe-infinity: the activation-matrix match --------------------------- */

/* Served requests 0..1; profiling requests 2..4 (history 0..2), 4 positions,
 * 2 layers, 4 experts, top-1:
 *   history 0 (request 2): layer 0 expert 0, layer 1 expert 1
 *   history 1 (request 3): layer 0 expert 2, layer 1 expert 3
 *   history 2 (request 4): layer 0 expert 0 at positions 0-1, 2 at 2-3; layer 1 expert 1 */
static int route_hist(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)u;
    static const uint16_t tab[3][2] = {{0, 1}, {2, 3}, {0, 1}};
    if (req < 2 || req > 4 || pos > 3) return D2_EINVAL;
    uint32_t j = req - 2;
    e[0] = tab[j][layer];
    if (j == 2 && layer == 0 && pos >= 2) e[0] = 2;
    w[0] = 1;
    if (b) b[0] = 0;
    return D2_OK;
}

static void test_moeinf_match(void)
{
    const prefetch_type *t = prefetch_find("moe-infinity");
    const mem_policy_type *mt = mem_policy_find("moe-infinity");
    if (!ok(t && mt && t->state_size == sizeof(moeinf_state), "moe-infinity: predictor and memory policy are rows")) return;
    moeinf_state st;
    memset(&st, 0, sizeof st);
    mem *m = mem_of("moe-infinity", 2, 4, 1, 3);
    uint32_t tok_req[2] = {0, 1};
    prefetch_ctx c = {.experts = 4, .layers = 2, .top_k = 1, .want = 2, .state = &st, .tok_req = tok_req, .mem = m,
                      .route = route_hist, .profile_first = 2, .profile_n = 3, .positions = 4};
    if (!ok(m && moeinf_init(&st, &c) == D2_OK, "moe-infinity: init reads 3 profiling requests")) return;
    ok(st.hist[0 * 8 + 0] == 4 && st.hist[1 * 8 + 4 + 3] == 4 && st.hist[2 * 8 + 0] == 2 && st.hist[2 * 8 + 2] == 2,
       "moe-infinity: the history matrices count tokens per (layer, expert)");
    /* forward step 0, layer 0: request 0's token at expert 2, request 1's at expert 0 */
    uint16_t cur[2] = {2, 0};
    c.cur = cur;
    c.ncur = 2;
    c.ntok = 2;
    c.layer = 0;
    c.fstep = 0;
    ok(moeinf_observe(&c) == D2_OK, "moe-infinity: observe");
    /* request 0: (0,0,1,0) vs rows (4,0,0,0), (0,0,4,0), (2,0,2,0): cosine 0, 1, 1/sqrt 2 */
    is_near(moeinf_similarity(&st, 0, 0), 0, 1e-12, "request 0 vs history 0: cosine 0");
    is_near(moeinf_similarity(&st, 0, 1), 1, 1e-12, "request 0 vs history 1: cosine 1");
    is_near(moeinf_similarity(&st, 0, 2), 0.70710678118654752, 1e-12, "request 0 vs history 2: cosine 1/sqrt(2)");
    ok(st.best[0] == 1 && st.best[1] == 0, "best matches: request 0 -> history 1, request 1 -> history 0 (cosine 1 against 1/sqrt 2 for history 2)");
    uint32_t out[4] = {99, 99, 99, 99}, n = 0;
    int prc = moeinf_predict(&c, out, &n);
    ok(prc == D2_OK && n == 2 && out[0] == 1 && out[1] == 3,
       "layer 1 predicted from the matches' next rows: experts 1 and 3 (got %u: %u %u)", n, n > 0 ? out[0] : 99, n > 1 ? out[1] : 99);
    const moeinf_mem_state *ms = mem_policy_state(m);
    ok(ms->have && ms->prio[4 + 1] == 1 && ms->prio[4 + 3] == 1 && ms->prio[4 + 0] == 0 && ms->prio[0] == 1 && ms->prio[2] == 1,
       "the memory policy was fed the matched rows: layer 1 experts 1 and 3 at 1 use per token, expert 0 at 0");
    /* the cache keeps what the matches predict: layer 1 experts 0, 1, 3
     * resident (0 used last); a load of layer 0 expert 1 evicts expert 0,
     * the one predicted unused, not the least recently used */
    int hit, rc = D2_OK;
    rc |= access_id(m, mem_entry_id(m, 1, 1, 0), &hit);
    rc |= access_id(m, mem_entry_id(m, 1, 3, 0), &hit);
    rc |= access_id(m, mem_entry_id(m, 1, 0, 0), &hit);
    rc |= access_id(m, mem_entry_id(m, 0, 1, 0), &hit);
    ok(rc == D2_OK && mem_entry_state(m, mem_entry_id(m, 1, 0, 0)) == MEM_ABSENT &&
           mem_entry_state(m, mem_entry_id(m, 1, 1, 0)) == MEM_RESIDENT,
       "moe-infinity cache: evicts the predicted-unused expert (layer 1 expert 0), keeps the least recently used predicted one");
    moeinf_fini(&st);
    mem_free(m);
}

/* ---- slicemoe: slice-level hits and the target --------------------------- */

static void test_slice_levels(void)
{
    /* one layer, 4 experts, 3 nested units.  Cached: expert 0 units 0-1,
     * expert 1 unit 0, expert 2 nothing, expert 3 units 0-2. */
    mem *m = mem_of("slicemoe", 1, 4, 3, 100);
    int hit, rc = D2_OK;
    const uint32_t have[][2] = {{0, 0}, {0, 1}, {1, 0}, {3, 0}, {3, 1}, {3, 2}};
    for (size_t i = 0; i < 6; i++) rc |= access_id(m, mem_entry_id(m, 0, have[i][0], have[i][1]), &hit);
    if (!ok(m && rc == D2_OK, "slice: a memory with some slices cached")) return;
    int bits[3] = {2, 3, 4};
    double caps[3] = {0.3, 0.4, 0.3};
    slice_route_state st = {0, 0};
    bitroute_cfg c = {.levels = 3, .level_bits = bits, .caps = caps, .layers = 1, .experts = 4, .nested = 1, .mem = m, .state = &st};
    /* gate weights: expert 2 > expert 0 > expert 1 > expert 3 */
    bitroute_use u0[4] = {{0, 0.3f, 0, 9}, {1, 0.2f, 0, 9}, {2, 0.4f, 0, 9}, {3, 0.1f, 0, 9}}, u[4];
    uint32_t scratch[64];
    memcpy(u, u0, sizeof u);
    rc = slice_assign_target(&c, 0, 0, u, 4, scratch);
    ok(rc == D2_OK && u[0].level == 1 && u[1].level == 0 && u[2].level == 0 && u[3].level == 2,
       "target 0: each expert at what is cached (levels 2, 1, base (a miss), 3); got %u %u %u %u", u[0].level + 1, u[1].level + 1,
       u[2].level + 1, u[3].level + 1);
    /* 7 items, 1 miss (expert 2's base) */
    ok(st.items == 7 && st.misses == 1, "target 0: 7 slice items, 1 miss (got %g, %g)", st.items, st.misses);
    /* target 0.3 from a fresh state: expert 2 (most weight) to level 3
     * would be 3 misses of 9 (0.33 > 0.3), to level 2 is 2 of 8 (0.25): taken;
     * expert 0 to 3: 3 of 9, refused; expert 1 to 3: 4 of 10, to 2: 3 of 9, refused */
    st = (slice_route_state){0, 0};
    memcpy(u, u0, sizeof u);
    rc = slice_assign_target(&c, 0.3, 0, u, 4, scratch);
    ok(rc == D2_OK && u[0].level == 1 && u[1].level == 0 && u[2].level == 1 && u[3].level == 2,
       "target 0.3: expert 2 raised to level 2 only (got %u %u %u %u)", u[0].level + 1, u[1].level + 1, u[2].level + 1, u[3].level + 1);
    ok(st.items == 8 && st.misses == 2, "target 0.3: 8 items, 2 misses: rate 0.25 <= 0.3");
    st = (slice_route_state){0, 0};
    memcpy(u, u0, sizeof u);
    ok(slice_assign_target(&c, 1, 0, u, 4, scratch) == D2_OK && u[0].level == 2 && u[1].level == 2 && u[2].level == 2 && u[3].level == 2,
       "target 1: every expert at the top level");
    /* the slicemoe memory policy beside it is fed token counts for its warmup */
    const slice_mem_state *ms = mem_policy_state(m);
    ok(ms->fed && ms->hot[0] == 4 && ms->hot[1] == 4 && ms->hot[2] == 3 && ms->hot[3] == 4,
       "slice feeds the slicemoe memory policy one count per token use: 3 assignments of one use each, on top of the setup's "
       "base-unit uses (experts 0, 1, 3) counted before the feed");
    mem_free(m);

    /* copies (not nested): the cached copy is a hit at its precision */
    mem *m2 = mem_of("lru", 1, 2, 2, 100);
    rc = access_id(m2, mem_entry_id(m2, 0, 0, 0), &hit); /* expert 0: the low copy cached */
    c.levels = 2;
    c.experts = 2;
    c.nested = 0;
    c.mem = m2;
    st = (slice_route_state){0, 0};
    bitroute_use v[2] = {{0, 0.5f, 0, 9}, {1, 0.5f, 0, 9}};
    ok(rc == D2_OK && slice_assign_target(&c, 0, 0, v, 2, scratch) == D2_OK && v[0].level == 0 && v[1].level == 0 && st.misses == 1,
       "copies, target 0: expert 0 at its cached low copy (a hit), expert 1 at the base (a miss)");
    mem_free(m2);
}

/* the warmup: after the first forward step (L layer steps), the experts the
 * step used most are kept; a cold expert's slice goes before a kept one's,
 * even when the cold one was used more recently */
static void test_slice_warmup(void)
{
    /* 1 layer, 4 experts, 2 units of 1 byte, budget 2: the warmup keeps
     * budget / (layers x base bytes) = 2 experts */
    mem *m = mem_of("slicemoe", 1, 4, 2, 2);
    const slice_mem_state *s = mem_policy_state(m);
    int hit, rc = D2_OK;
    /* forward step 0 (one layer): expert 0 used 3 times, expert 1 twice, expert 2 once */
    const uint32_t uses[] = {0, 1, 0, 1, 0};
    for (size_t i = 0; i < 5; i++) rc |= access_id(m, mem_entry_id(m, 0, uses[i], 0), &hit);
    ok(rc == D2_OK && !s->warm, "slicemoe: no warmup before the first forward step ends");
    mem_step_done(m, 0);
    ok(s->warm && s->keep[0] && s->keep[1] && !s->keep[2] && !s->keep[3], "slicemoe warmup: experts 0 and 1 (the prefill's most used) kept");
    /* resident: experts 0 and 1 bases.  Use expert 2 (evicts the LRU of
     * the kept ones: no cold one is resident), then expert 3: now expert 2's
     * base is cold and goes first though used more recently than the kept one left */
    rc |= access_id(m, mem_entry_id(m, 0, 2, 0), &hit);
    rc |= access_id(m, mem_entry_id(m, 0, 3, 0), &hit);
    ok(rc == D2_OK && mem_entry_state(m, mem_entry_id(m, 0, 2, 0)) == MEM_ABSENT &&
           mem_entry_state(m, mem_entry_id(m, 0, 3, 0)) == MEM_RESIDENT,
       "slicemoe: a cold expert's slice is evicted before a kept expert's");
    ok(mem_entry_state(m, mem_entry_id(m, 0, 0, 0)) == MEM_RESIDENT && mem_entry_state(m, mem_entry_id(m, 0, 1, 0)) == MEM_ABSENT,
       "slicemoe: expert 0 (kept, used last in the prefill) still resident; expert 1 (kept, less recent) went for expert 2");
    mem_free(m);
}

/* ---- the systems on a small configuration --------------------------------- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* 4 layers, 8 experts, top-2, skewed: expert i drawn with weight 1/(i+1)
 * (a fixed hash of request, position and layer, not a simulator choice) */
static int route_skew(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)u;
    static const double cum[8] = {0.3679, 0.5518, 0.6744, 0.7664, 0.8399, 0.9012, 0.9538, 1.0};
    uint64_t h = mix(((uint64_t)req << 40) ^ ((uint64_t)pos << 20) ^ layer);
    uint16_t got[2];
    for (int k = 0; k < 2; k++) {
        for (;;) {
            double x = (double)(h >> 11) / 9007199254740992.0;
            h = mix(h);
            uint16_t i = 0;
            while (i < 7 && x > cum[i]) i++;
            i = (uint16_t)((i + 3 * layer) % 8); /* each layer its own hot experts */
            if (k == 0 || i != got[0]) { got[k] = i; break; }
        }
    }
    e[0] = got[0];
    e[1] = got[1];
    w[0] = 0.6f;
    w[1] = 0.4f;
    if (b) b[0] = b[1] = 0;
    return D2_OK;
}

/* Request types for moe-infinity: every request uses expert 0 at layer 0
 * and 3 at layer 2; at layers 1 and 3 even requests use 2 and 5, odd ones 1
 * and 4.  The served request 0 is even; the profiling requests 1..8 are half
 * each, so the layer-to-layer paths tie (and break to the lower id, wrong
 * for request 0) while its own activation matrix tells it apart. */
static int route_types(void *u, uint32_t req, uint32_t pos, uint32_t layer, uint16_t *e, float *w, uint8_t *b)
{
    (void)u, (void)pos;
    static const uint16_t even[4] = {0, 2, 3, 5}, odd[4] = {0, 1, 3, 4};
    e[0] = req % 2 ? odd[layer] : even[layer];
    w[0] = 1;
    if (b) b[0] = 0;
    return D2_OK;
}

static sim_result *run_small(const char *system, const char *const *sets, int top_k, sim_route_fn route, int64_t budget_levels,
                             int requests, int *rc)
{
    model m;
    param_defaults(&model_params, &m);
    snprintf(m.name, sizeof m.name, "tiny");
    m.layers = 4; m.hidden = 256; m.expert_ffn = 512; m.expert_matrices = 3;
    m.experts = 8; m.top_k = top_k; m.heads = 2; m.kv_heads = 2; m.head_dim = 128; m.vocab = 64;
    device d;
    param_defaults(&device_params, &d);
    snprintf(d.name, sizeof d.name, "testdev");
    d.mem_bytes = 1000000000000LL; d.mem_bw = 1e11; d.fp16_flops = 1e11; d.unified = 1;
    d.host_mem_bytes = d.mem_bytes; d.flash_bw = 1e9; d.flash_lat_ns = 0; d.dequant_rate = 1e12;
    d.page_cache_bytes = 0;
    sim_params p;
    param_defaults(&sim_param_table, &p);
    snprintf(p.policy, sizeof p.policy, "%s", system);
    p.router_overhead = 0; p.transient_fp16 = 0; p.nonexpert_bits = 16;
    p.requests = requests; p.prompt = 4; p.gen = 16;
    p.budget = budget_levels * model_expert_bytes_uniform(&m, 4, p.group);
    for (size_t i = 0; sets && sets[i]; i += 2) {
        char *f = !strcmp(sets[i], "mem") ? p.mem : !strcmp(sets[i], "bitroute") ? p.bitroute : !strcmp(sets[i], "prefetch") ? p.prefetch
                : !strcmp(sets[i], "caps") ? p.caps : NULL;
        if (f) snprintf(f, PARAM_STR_MAX, "%s", sets[i + 1]);
        if (!strcmp(sets[i], "miss_target")) p.miss_target = strtod(sets[i + 1], NULL);
        if (!strcmp(sets[i], "gate_acc")) p.gate_acc = strtod(sets[i + 1], NULL);
    }
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route, .route_user = NULL, .route_has_bits = 0, .route_token = NULL};
    sim_result *r = NULL;
    *rc = sim_run(&in, &r);
    if (*rc) tap_diag("sim_run %s: %s", system, d2_err_msg());
    return r;
}

static double metric(const sim_result *r, const char *name)
{
    double v = -1;
    if (!r || sim_result_metric(r, name, &v)) tap_diag("no metric %s", name);
    return v;
}

static void test_moeinf_system(void)
{
    int rc1, rc2, rc3;
    const char *paths[] = {"prefetch", "paths", NULL};
    const char *lru[] = {"mem", "lru", NULL};
    sim_result *a = run_small("moe-infinity", NULL, 1, route_types, 3, 1, &rc1);
    sim_result *b = run_small("moe-infinity", paths, 1, route_types, 3, 1, &rc2);
    sim_result *c = run_small("moe-infinity", lru, 1, route_types, 3, 1, &rc3);
    if (ok(!rc1 && !rc2 && !rc3 && a && b && c, "moe-infinity runs (own predictor, paths, own predictor with lru)")) {
        double pa = metric(a, "prefetch_accuracy"), pb = metric(b, "prefetch_accuracy");
        ok(pa > 0.9 && pb < 0.5, "moe-infinity: its activation-matrix match predicts request 0's type (accuracy %.3f), the paths tie does not (%.3f)", pa, pb);
        ok(metric(a, "hit_rate") > metric(c, "hit_rate"),
           "moe-infinity: its cache keeps what the matches predict: hit rate %.3f above lru's %.3f", metric(a, "hit_rate"), metric(c, "hit_rate"));
    }
    sim_result_free(a);
    sim_result_free(b);
    sim_result_free(c);
}

static void test_fate_system(void)
{
    int rc1, rc2, rc3;
    const char *int4[] = {"caps", "0/1", NULL};
    const char *nopf[] = {"prefetch", "none", NULL};
    sim_result *a = run_small("fate", NULL, 2, route_skew, 6, 2, &rc1);
    sim_result *b = run_small("fate", int4, 2, route_skew, 6, 2, &rc2);
    sim_result *c = run_small("fate", nopf, 2, route_skew, 6, 2, &rc3);
    if (ok(!rc1 && !rc2 && !rc3 && a && b && c, "fate runs (as is, every expert INT4, no preloading)")) {
        ok(metric(a, "io_gb") < metric(b, "io_gb") && metric(a, "avg_bits") < 4 && metric(b, "avg_bits") == 4,
           "fate: hybrid precision loads fewer bytes (%.6f GB, %.2f bits) than all INT4 (%.6f GB)", metric(a, "io_gb"),
           metric(a, "avg_bits"), metric(b, "io_gb"));
        ok(metric(a, "prefetch_accuracy") > 0.5 && metric(a, "prefetch_used") > 0 && metric(c, "prefetch_loads") == 0,
           "fate: its cross-layer gate preloads are used (accuracy %.3f)", metric(a, "prefetch_accuracy"));
        ok(metric(a, "hit_rate") > metric(c, "hit_rate"), "fate: its preloads raise the hit rate (%.3f, without %.3f)", metric(a, "hit_rate"),
           metric(c, "hit_rate"));
    }
    /* the gate's accuracy is a parameter: all wrong vs all right */
    const char *acc0[] = {"gate_acc", "0", NULL}, *acc1[] = {"gate_acc", "1", NULL};
    int rc4, rc5;
    sim_result *d = run_small("fate", acc0, 2, route_skew, 6, 2, &rc4);
    sim_result *e = run_small("fate", acc1, 2, route_skew, 6, 2, &rc5);
    ok(!rc4 && !rc5 && d && e && metric(e, "prefetch_accuracy") > metric(d, "prefetch_accuracy") + 0.3 &&
           metric(e, "hit_rate") > metric(d, "hit_rate"),
       "fate: sim.gate_acc 1 preloads better than 0 (accuracy %.3f vs %.3f, hit rate %.3f vs %.3f)", metric(e, "prefetch_accuracy"),
       metric(d, "prefetch_accuracy"), metric(e, "hit_rate"), metric(d, "hit_rate"));
    /* the shallow-favouring quotas against plain ARC and LRU over the same row */
    const char *arc[] = {"mem", "arc", NULL}, *lru[] = {"mem", "lru", NULL};
    int rc6, rc7;
    sim_result *f = run_small("fate", arc, 2, route_skew, 6, 2, &rc6);
    sim_result *g = run_small("fate", lru, 2, route_skew, 6, 2, &rc7);
    ok(!rc6 && !rc7 && f && g && metric(a, "hit_rate") > metric(f, "hit_rate") && metric(a, "hit_rate") > metric(g, "hit_rate"),
       "fate: its shallow-favouring quotas hit more (%.4f) than plain arc (%.4f) and lru (%.4f) on the same row", metric(a, "hit_rate"),
       metric(f, "hit_rate"), metric(g, "hit_rate"));
    sim_result_free(f);
    sim_result_free(g);
    sim_result_free(a);
    sim_result_free(b);
    sim_result_free(c);
    sim_result_free(d);
    sim_result_free(e);
}

static void test_slicemoe_system(void)
{
    int rc1, rc2;
    const char *top[] = {"bitroute", "uniform:4", NULL};
    /* nested INT2/3/4 levels of a budget of 6 INT4 experts' worth */
    sim_result *a = run_small("slicemoe", NULL, 2, route_skew, 6, 2, &rc1);
    sim_result *b = run_small("slicemoe", top, 2, route_skew, 6, 2, &rc2);
    if (ok(!rc1 && !rc2 && a && b, "slicemoe runs (as is, every use at the top level)")) {
        ok(metric(a, "hit_rate") > metric(b, "hit_rate") && metric(a, "io_gb") < metric(b, "io_gb"),
           "slicemoe: precision from what is cached hits more (%.3f vs %.3f) and loads less (%.6f vs %.6f GB)", metric(a, "hit_rate"),
           metric(b, "hit_rate"), metric(a, "io_gb"), metric(b, "io_gb"));
        ok(metric(a, "avg_bits") == 2, "slicemoe: %.2f bits per use: with room for 6 INT4 experts its base misses alone "
           "exceed the 0.1 target, so no expert is raised (at the base, as the target 0 run below)", metric(a, "avg_bits"));
    }
    /* room for the whole model (32 experts' levels): once cached, misses
     * are rare and the target lets experts rise to higher precision */
    int rc3;
    sim_result *c = run_small("slicemoe", NULL, 2, route_skew, 40, 2, &rc3);
    ok(!rc3 && c && a && metric(c, "avg_bits") > metric(a, "avg_bits") + 0.1 && 1 - metric(c, "hit_rate") < 1 - metric(a, "hit_rate"),
       "slicemoe: with room for every expert, fewer misses (%.3f) and more bits per use (%.2f vs %.2f)", 1 - metric(c, "hit_rate"),
       metric(c, "avg_bits"), metric(a, "avg_bits"));
    /* the target's ends in closed form: 0 never raises an expert above what
     * is cached, and only base units are ever loaded, so every use is at
     * INT2; 1 raises every expert to the top, every use at INT4 */
    const char *t0[] = {"miss_target", "0", NULL}, *t1[] = {"miss_target", "1", NULL};
    int rc4, rc5;
    sim_result *d = run_small("slicemoe", t0, 2, route_skew, 6, 2, &rc4);
    sim_result *e = run_small("slicemoe", t1, 2, route_skew, 6, 2, &rc5);
    ok(!rc4 && d && metric(d, "avg_bits") == 2, "slicemoe: sim.miss_target 0: every use at 2 bits (got %.3f)", metric(d, "avg_bits"));
    ok(!rc5 && e && metric(e, "avg_bits") == 4, "slicemoe: sim.miss_target 1: every use at 4 bits (got %.3f)", metric(e, "avg_bits"));
    /* between the ends the target moves precision: 0.5 raises some experts, not all */
    const char *t5[] = {"miss_target", "0.5", NULL};
    int rc6;
    sim_result *f = run_small("slicemoe", t5, 2, route_skew, 6, 2, &rc6);
    ok(!rc6 && f && metric(f, "avg_bits") > 2 && metric(f, "avg_bits") < 4, "slicemoe: sim.miss_target 0.5: %.3f bits per use, "
       "strictly between the base and the top", f ? metric(f, "avg_bits") : -1);
    ok(d && e && a && f && metric(d, "io_gb") <= metric(a, "io_gb") && metric(a, "io_gb") < metric(f, "io_gb") &&
           metric(f, "io_gb") < metric(e, "io_gb"),
       "slicemoe: bytes loaded grow with the target (0: %.6f, 0.1: %.6f, 0.5: %.6f, 1: %.6f GB; 0 and 0.1 both at the base here)",
       metric(d, "io_gb"), metric(a, "io_gb"), f ? metric(f, "io_gb") : -1, metric(e, "io_gb"));
    sim_result_free(f);
    sim_result_free(a);
    sim_result_free(b);
    sim_result_free(c);
    sim_result_free(d);
    sim_result_free(e);
}

/* The parts are plug-ins any system can use: each new memory policy,
 * predictor and bit routing under other systems (nested levels, copies, a
 * buffer filling the device); the run's own invariants (memory account,
 * pins, the bound) are checked at every layer step. */
static void test_parts_reusable(void)
{
    static const struct {
        const char *system;
        const char *sets[7];
    } cases[] = {
        {"d2moe-v1", {"mem", "arc", NULL}},
        {"d2moe-v1", {"mem", "fate", NULL}},
        {"d2moe-v1", {"mem", "moe-infinity", "prefetch", "moe-infinity", NULL}},
        {"d2moe-v1", {"mem", "slicemoe", NULL}},
        {"d2moe-v1", {"prefetch", "fate-gate", NULL}},
        {"d2moe-v1", {"bitroute", "slice", NULL}},
        {"edgemoe", {"mem", "arc", NULL}},
        {"edgemoe", {"mem", "fate", "prefetch", "moe-infinity", NULL}},
        {"matryoshka-free", {"bitroute", "slice", "mem", "slicemoe", NULL}},
        {"moqe-dynaio-int4", {"mem", "fate", "prefetch", "fate-gate", NULL}},
        {"moe-infinity", {"mem", "belady", NULL}},
        {"fate", {"mem", "moe-infinity", NULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc;
        sim_result *r = run_small(cases[i].system, cases[i].sets, 2, route_skew, 6, 2, &rc);
        char what[128] = "";
        for (size_t k = 0; cases[i].sets[k]; k += 2)
            snprintf(what + strlen(what), sizeof what - strlen(what), " %s=%s", cases[i].sets[k], cases[i].sets[k + 1]);
        ok(rc == D2_OK && r && !strcmp(sim_result_status(r), "ok") && metric(r, "tokens_generated") == 32,
           "%s with%s runs to the end", cases[i].system, what);
        sim_result_free(r);
    }
}

int main(void)
{
    test_arc_by_hand();
    test_arc_vs_textbook();
    test_arc_bytes();
    test_fate_split();
    test_moeinf_match();
    test_slice_levels();
    test_slice_warmup();
    test_moeinf_system();
    test_fate_system();
    test_slicemoe_system();
    test_parts_reusable();
    return tap_done();
}
