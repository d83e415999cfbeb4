/* plan.c - load-order planners (see plan.h).  HEBF is the paper's greedy
 * (section 4); optimal is an exact dynamic program over the load sets that
 * keep chains ascending, feasible for the step sizes of the paper. */
#include "sim/plan.h"
#include "core/err.h"
#include "core/registry.h"

#include <stdlib.h>
#include <string.h>

sim_ns plan_makespan(const plan_item *it, size_t n, const uint32_t *order, size_t nload)
{
    sim_ns c2 = 0, c1 = 0;
    for (size_t i = 0; i < n; i++)
        if (!it[i].load) c2 += it[i].t_comp;
    for (size_t k = 0; k < nload; k++) {
        const plan_item *x = &it[order[k]];
        c1 += x->t_io;
        c2 = (c2 > c1 ? c2 : c1) + x->t_comp;
    }
    return c2;
}

sim_ns plan_makespan_serial(const plan_item *it, size_t n, const uint32_t *order, size_t nload)
{
    sim_ns t = 0;
    for (size_t i = 0; i < n; i++)
        if (!it[i].load) t += it[i].t_comp;
    for (size_t k = 0; k < nload; k++) t += it[order[k]].t_io + it[order[k]].t_comp;
    return t;
}

/* (expert, unit) as one ordered key */
static inline uint64_t id_key(const plan_item *x) { return (uint64_t)x->expert << 32 | x->unit; }

/* Sort order[0..k) by ascending (expert, unit), stably (insertion sort:
 * steps are small) */
static void ids_sort(const plan_item *it, uint32_t *order, size_t k)
{
    for (size_t i = 1; i < k; i++) {
        const uint32_t v = order[i];
        const uint64_t kv = id_key(&it[v]);
        size_t j = i;
        while (j > 0 && id_key(&it[order[j - 1]]) > kv) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
}

/* ascending (expert, unit); one pass when the items already come in that
 * order (the simulator builds them so) */
static size_t ids_sorted(const plan_item *it, size_t n, uint32_t *order)
{
    size_t k = 0;
    uint64_t prev = 0;
    int sorted = 1;
    for (size_t i = 0; i < n; i++)
        if (it[i].load) {
            const uint64_t key = id_key(&it[i]);
            sorted &= key >= prev;
            prev = key;
            order[k++] = (uint32_t)i;
        }
    if (!sorted) ids_sort(it, order, k);
    return k;
}

static int order_id(plan_ctx *c, const plan_item *it, size_t n, uint32_t *order, size_t *nload)
{
    (void)c;
    *nload = ids_sorted(it, n, order);
    return D2_OK;
}

/* HEBF (paper section 4): one queue per expert holding its needed units in
 * ascending order; repeatedly append, among the queue heads, the one with
 * the highest token count ("hot" = count in this batch).  Our reading for
 * ties, which the paper leaves open: the lower expert id first.  With
 * separate copies (not nested) every unit is its own queue.
 *
 * When every queue's counts are non-increasing (always so in the
 * simulator: a nested unit's count includes the uses of the levels above
 * it), picking the highest head with ties to the lowest queue is a merge of
 * sorted lists, and its output is the id order stably sorted by count,
 * descending: done so (a counting sort when the counts are below 256, as in
 * decode steps; else an insertion sort, steps are small).  Other inputs take
 * the queue scan; both give the same order where both apply (t_sim). */
static int order_hebf(plan_ctx *c, const plan_item *it, size_t n, uint32_t *order, size_t *nload)
{
    /* the loads in id order (chains are contiguous runs in it), whether each
     * chain's counts are non-increasing, and the largest count: in one pass
     * over input that comes in id order, else after sorting */
    int k = 0, sorted_chains = 1, idsorted = 1;
    uint32_t maxt = 0;
    {
        uint64_t prev = 0;
        uint32_t pe = UINT32_MAX, pt = 0;
        for (size_t i = 0; i < n; i++) {
            if (!it[i].load) continue;
            const uint64_t key = id_key(&it[i]);
            const uint32_t e = it[i].expert, t = it[i].tokens;
            idsorted &= key >= prev;
            sorted_chains &= e != pe || t <= pt;
            maxt = t > maxt ? t : maxt;
            prev = key;
            pe = e;
            pt = t;
            order[k++] = (uint32_t)i;
        }
    }
    if (!c->nested) sorted_chains = 1;
    if (!idsorted) { /* the checks again in id order */
        ids_sort(it, order, (size_t)k);
        sorted_chains = 1;
        if (c->nested)
            for (int i = 1; i < k && sorted_chains; i++)
                sorted_chains = it[order[i]].expert != it[order[i - 1]].expert || it[order[i]].tokens <= it[order[i - 1]].tokens;
    }
    if (sorted_chains && k <= 256 && !c->hebf_scan) {
        if (maxt < 256) { /* counts in a small range (decode steps): a counting sort, stable */
            uint32_t pos[257], out[256];
            uint8_t tk[256]; /* maxt - count of each load, in id order */
            memset(pos, 0, (maxt + 2) * sizeof *pos);
            for (int i = 0; i < k; i++) {
                tk[i] = (uint8_t)(maxt - it[order[i]].tokens);
                pos[tk[i] + 1]++;
            }
            for (uint32_t t = 1; t <= maxt + 1; t++) pos[t] += pos[t - 1];
            for (int i = 0; i < k; i++) out[pos[tk[i]]++] = order[i];
            memcpy(order, out, (size_t)k * sizeof *order);
            *nload = (size_t)k;
            return D2_OK;
        }
        for (int i = 1; i < k; i++) {
            uint32_t v = order[i];
            int64_t t = it[v].tokens;
            int j = i;
            while (j > 0 && (int64_t)it[order[j - 1]].tokens < t) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = v;
        }
        *nload = (size_t)k;
        return D2_OK;
    }
    uint32_t stmp[256];
    size_t shead[256], send[256];
    int small = k <= 256;
    uint32_t *tmp = small ? stmp : malloc((size_t)k * sizeof *tmp);
    size_t *head = small ? shead : malloc((size_t)k * sizeof *head), *end = small ? send : malloc((size_t)k * sizeof *end);
    if (!tmp || !head || !end) {
        if (!small) { free(tmp); free(head); free(end); }
        D2_ERROR(D2_ENOMEM, "plan: out of memory");
    }
    size_t nq = 0;
    for (int i = 0; i < k;) {
        int j = i + 1;
        if (c->nested)
            while (j < k && it[order[j]].expert == it[order[i]].expert) j++;
        head[nq] = (size_t)i;
        end[nq++] = (size_t)j;
        i = j;
    }
    /* the heads' token counts in a flat array (an empty queue: -1, never
     * chosen while any queue has a head) */
    int64_t shk[256], *hk = small ? shk : malloc((size_t)(nq ? nq : 1) * sizeof *hk);
    if (!hk) {
        if (!small) { free(tmp); free(head); free(end); }
        D2_ERROR(D2_ENOMEM, "plan: out of memory");
    }
    for (size_t q = 0; q < nq; q++) hk[q] = it[order[head[q]]].tokens;
    for (int out = 0; out < k; out++) {
        size_t best = 0;
        for (size_t q = 1; q < nq; q++) best = hk[q] > hk[best] ? q : best; /* ties: the lower expert id */
        tmp[out] = order[head[best]++];
        hk[best] = head[best] < end[best] ? (int64_t)it[order[head[best]]].tokens : -1;
    }
    if (!small) free(hk);
    memcpy(order, tmp, (size_t)k * sizeof *order);
    if (!small) { free(tmp); free(head); free(end); }
    *nload = (size_t)k;
    return D2_OK;
}

/* Dynamic program, exact for the static model: for a set S of loaded items
 * the I/O queue ends at sum(t_io over S) whatever the order, so the best
 * order of S is the one with the earliest compute end, and
 * C2(S + j) = max(C2(S), C1(S) + t_io(j)) + t_comp(j) is monotone in C2(S).
 * States are the chain-prefix vectors (mixed radix), visited in index order,
 * which is a topological order. */
#define OPT_NOMEM() D2_ERROR(D2_ENOMEM, "plan: optimal: out of memory")
int plan_optimal(const plan_ctx *c, const plan_item *it, size_t n, uint32_t *order, size_t *nload, int *found)
{
    *found = 0;
    *nload = 0;
    uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) OPT_NOMEM();
    int k = (int)ids_sorted(it, n, ids);
    /* chains */
    size_t nq = 0;
    size_t *cstart = malloc((size_t)(k + 1) * sizeof *cstart), *clen = malloc((size_t)(k + 1) * sizeof *clen);
    uint64_t *radix = malloc((size_t)(k + 1) * sizeof *radix);
    if (!cstart || !clen || !radix) { free(ids); free(cstart); free(clen); free(radix); OPT_NOMEM(); }
    for (int i = 0; i < k;) {
        int j = i + 1;
        if (c->nested)
            while (j < k && it[ids[j]].expert == it[ids[i]].expert) j++;
        cstart[nq] = (size_t)i;
        clen[nq++] = (size_t)(j - i);
        i = j;
    }
    uint64_t states = 1;
    for (size_t q = 0; q < nq; q++) {
        radix[q] = states;
        if (states > (uint64_t)c->max_states / (clen[q] + 1) + 1) { states = UINT64_MAX; break; }
        states *= clen[q] + 1;
    }
    if (states == UINT64_MAX || states > (uint64_t)c->max_states) { /* too big: not found, not an error */
        free(ids); free(cstart); free(clen); free(radix);
        return D2_OK;
    }
    sim_ns *best = malloc(states * sizeof *best), *c1 = malloc(states * sizeof *c1);
    uint8_t *from = malloc(states);
    if (!best || !c1 || !from) { free(ids); free(cstart); free(clen); free(radix); free(best); free(c1); free(from); OPT_NOMEM(); }
    sim_ns base = 0;
    for (size_t i = 0; i < n; i++)
        if (!it[i].load) base += it[i].t_comp;
    for (uint64_t s = 0; s < states; s++) best[s] = INT64_MAX;
    best[0] = base;
    c1[0] = 0;
    for (uint64_t s = 0; s < states; s++) {
        if (best[s] == INT64_MAX) continue;
        for (size_t q = 0; q < nq; q++) {
            uint64_t pos = (s / radix[q]) % (clen[q] + 1);
            if (pos == clen[q]) continue;
            const plan_item *x = &it[ids[cstart[q] + pos]];
            uint64_t t = s + radix[q];
            sim_ns l1 = c1[s] + x->t_io;
            sim_ns l2 = (best[s] > l1 ? best[s] : l1) + x->t_comp;
            if (l2 < best[t]) { best[t] = l2; c1[t] = l1; from[t] = (uint8_t)q; }
        }
    }
    /* walk back from the full set */
    uint64_t s = states - 1;
    for (int out = k - 1; out >= 0; out--) {
        size_t q = from[s];
        uint64_t pos = (s / radix[q]) % (clen[q] + 1);
        order[out] = ids[cstart[q] + pos - 1];
        s -= radix[q];
    }
    free(ids); free(cstart); free(clen); free(radix); free(best); free(c1); free(from);
    *nload = (size_t)k;
    *found = 1;
    return D2_OK;
}

static int order_optimal(plan_ctx *c, const plan_item *it, size_t n, uint32_t *order, size_t *nload)
{
    int found;
    D2_TRY(plan_optimal(c, it, n, order, nload, &found));
    if (found) return D2_OK;
    c->fallbacks++;
    return order_hebf(c, it, n, order, nload);
}

static const plan_type plans[] = {
    {.name = "hebf", .summary = "hottest-expert-bit-first: among per-expert level queues, the head with most tokens next (paper sec. 4)",
     .serial = 0, .order = order_hebf},
    {.name = "id-order", .summary = "ascending expert id, then level; loads overlap computes", .serial = 0, .order = order_id},
    {.name = "sequential", .summary = "ascending expert id, then level; load, compute, load, ... with no overlap (paper Fig. 9 b, Fig. 14's first steps)",
     .serial = 1, .order = order_id},
    {.name = "optimal", .summary = "exact minimum makespan of the step by dynamic programming (hebf beyond sim.opt_max_states)",
     .serial = 0, .order = order_optimal},
    {.name = NULL},
};
D2_REGISTRY(plan, plan_type, plans)
