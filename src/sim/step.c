/* step.c - one layer step: who is served in a forward step and its
 * routing (step_start), bit routing -> items and groups -> hits -> the
 * planner's load order -> preloads for the next layer (step_plan), the
 * admission of loads within the budget (a banker's check over the step's
 * groups), and the step's end (tokens, requests finishing, the bound).  It
 * does not start loads or computes (engine.c). */
#include "sim/sim_int.h"
#include "core/clock.h"
#include "core/prefault.h"
#include "core/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the top_k expert ids of request q's position pos at layer l: each below
 * the model's expert count */
static int check_experts(const run *r, uint32_t q, uint32_t pos, uint32_t l, const uint16_t *e)
{
    for (uint32_t k = 0; k < r->K; k++)
        if (e[k] >= r->E)
            D2_ERROR(D2_EFORMAT, "routing: request %u position %u layer %u: expert %u is not below %u", q, pos, l,
                     (unsigned)e[k], r->E);
    return D2_OK;
}

static int route_one(run *r, uint32_t q, uint32_t pos, uint32_t l, size_t tok)
{
    size_t at = ((size_t)l * r->ntok + tok) * r->K;
    D2_TRY(r->in->route(r->in->route_user, q, pos, l, r->rexp + at, r->rw + at, r->rb + at));
    return check_experts(r, q, pos, l, r->rexp + at);
}

/* every layer of one token from a source that routes a token at once,
 * written by the source straight into the token's column of the
 * [layer][token][top_k] arrays */
static int route_token(run *r, uint32_t q, uint32_t pos, size_t tok)
{
    const uint32_t L = r->L, K = r->K;
    const size_t stride = r->ntok * K, at = tok * K;
    D2_TRY(r->in->route_token(r->in->route_user, q, pos, r->rexp + at, r->rw + at, r->rb + at, stride));
    /* every id below E: one pass for the largest id; the layer by layer
     * check (and its message) only when one is not */
    const uint32_t E = r->E;
    uint32_t big = 0;
    const uint16_t *e = r->rexp + at;
    if (K == 2) { /* the common top-2: the ids or-ed together (a layer's two as one 32-bit word) are at least the
                   * largest, so when they are below E all are (E a power of two: exactly when); else one by one */
        uint32_t any = 0;
        for (uint32_t l = 0; l < L; l++, e += stride) {
            uint32_t two;
            memcpy(&two, e, sizeof two);
            any |= two;
        }
        e = r->rexp + at;
        if (((any | any >> 16) & 0xffffu) >= E)
            for (uint32_t l = 0; l < L; l++, e += stride) big |= (uint32_t)(e[0] >= E) | (uint32_t)(e[1] >= E);
    } else
        for (uint32_t l = 0; l < L; l++, e += stride)
            for (uint32_t k = 0; k < K; k++) big |= e[k] >= E;
    for (uint32_t l = 0; big && l < L; l++) D2_TRY(check_experts(r, q, pos, l, r->rexp + at + l * stride));
    return D2_OK;
}

/* In the source's fast order: for request, for position (a source that
 * routes a token at once), else for position, for layer, for request. */
static int fetch_routing(run *r)
{
    size_t base = (size_t)r->npre * r->P;
    /* the step writes the first L ntok K entries of each array: pages not
     * written before are faulted in at once (half the cost of a fault per
     * page on the VM measured; the paper-size prefill step is 1.8 MB) */
    const size_t used = (size_t)r->L * r->ntok * r->K;
    if (used > r->route_faulted) {
        const size_t from = r->route_faulted;
        prefault(r->rexp + from, (used - from) * sizeof *r->rexp);
        prefault(r->rw + from, (used - from) * sizeof *r->rw);
        prefault(r->rb + from, (used - from) * sizeof *r->rb);
        r->route_faulted = used;
    }
    if (r->in->route_token) {
        for (uint32_t i = 0; i < r->npre; i++)
            for (uint32_t pp = 0; pp < r->P; pp++) D2_TRY(route_token(r, r->pre_q[i], pp, (size_t)pp * r->npre + i));
        for (uint32_t j = 0; j < r->ndec; j++) D2_TRY(route_token(r, r->dec_q[j], r->dec_pos[j], base + j));
    } else {
        for (uint32_t pp = 0; r->npre && pp < r->P; pp++)
            for (uint32_t l = 0; l < r->L; l++)
                for (uint32_t i = 0; i < r->npre; i++) D2_TRY(route_one(r, r->pre_q[i], pp, l, (size_t)pp * r->npre + i));
        for (uint32_t l = 0; r->ndec && l < r->L; l++)
            for (uint32_t j = 0; j < r->ndec; j++) D2_TRY(route_one(r, r->dec_q[j], r->dec_pos[j], l, base + j));
    }
    return D2_OK;
}

/* Which request each token of the forward step belongs to (the order
 * fetch_routing writes the tokens in) */
static void set_tok_req(run *r)
{
    size_t base = (size_t)r->npre * r->P;
    for (uint32_t pp = 0; pp < r->P; pp++)
        for (uint32_t i = 0; i < r->npre; i++) r->tok_req[(size_t)pp * r->npre + i] = r->pre_q[i];
    for (uint32_t j = 0; j < r->ndec; j++) r->tok_req[base + j] = r->dec_q[j];
}

/* The forward step's composition for the step memo: who is in it at which
 * position (the prompt length is in the memo's key) */
static void step_memo_lookup(run *r)
{
    uint32_t *c = r->smemo_comp;
    size_t n = 0;
    c[n++] = r->npre;
    c[n++] = r->ndec;
    for (uint32_t i = 0; i < r->npre; i++) c[n++] = r->pre_q[i];
    for (uint32_t j = 0; j < r->ndec; j++) c[n++] = r->dec_q[j];
    for (uint32_t j = 0; j < r->ndec; j++) c[n++] = r->dec_pos[j];
    r->smemo_ncomp = n;
    r->smemo_hit = stepmemo_have(r->smemo, r->f, c, n);
}

/* ---- the I/O channel and the compute unit -------------------------------- */

#ifdef D2_DEBUG
/* debug builds: the kept sum of the open groups' remaining need against the
 * groups (a disagreement is reported at the step's end) */
void step_rest_check(run *r)
{
    int64_t sum = 0;
    for (uint32_t i = 0; i < r->ngroups; i++) sum += step_group_rest(&r->groups[i]);
    if (sum != r->open_rest) r->bad_rest = 1;
}
#endif

/* step_group_admit when the open groups' need exceeds the room: the
 * banker's check proper */
int step_group_admit_order(run *r, uint32_t g, int64_t bytes, int64_t room)
{
    /* in ascending rem, by insertion as they are collected (the groups
     * holding units are a few of a layer's experts, at most its 8 to 128;
     * qsort's comparison calls cost more here); the order of equal rems
     * cannot change the answer (room only grows) */
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->ngroups; i++) {
        const step_group *x = &r->groups[i];
        int64_t held = x->held + (i == g ? bytes : 0);
        if (!held || !x->left) continue;
        const grp_need v = {x->need - held, held};
        uint32_t k = n++;
        for (; k > 0 && r->gneed[k - 1].rem > v.rem; k--) r->gneed[k] = r->gneed[k - 1];
        r->gneed[k] = v;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (r->gneed[i].rem > room) return 0;
        room += r->gneed[i].held;
    }
    return 1;
}

/* step_pick_load when the queue's head is not admissible (see sim_int.h):
 * wait, or bring the first admissible unit further on to the head. */
int step_pick_other(run *r, int *go)
{
    *go = 0;
    for (uint32_t g = 0; g < r->ngroups; g++)
        if (r->groups[g].left && r->groups[g].held == r->groups[g].need) return D2_OK;
    memset(r->gflag, 0, r->ngroups);
    r->gflag[r->items[r->item_of[r->ioq[r->qhead].entry]].grp] = 1;
    for (uint32_t i = r->qhead + 1; i < r->qtail && !r->ioq[i].prefetch; i++) {
        uint32_t g = r->items[r->item_of[r->ioq[i].entry]].grp;
        if (r->gflag[g]) continue;
        r->gflag[g] = 1;
        const step_item *it = &r->items[r->item_of[r->ioq[i].entry]];
        if (step_group_admit(r, it->grp, r->unit_bytes[it->unit])) {
            io_req t = r->ioq[i];
            memmove(r->ioq + r->qhead + 1, r->ioq + r->qhead, (i - r->qhead) * sizeof *r->ioq);
            r->ioq[r->qhead] = t;
            *go = 1;
            return D2_OK;
        }
    }
    D2_ERROR(D2_EINTERNAL, "sim: layer %u of forward step %u: no load fits the budget and no compute can free room", r->layer, r->f);
}

/* Room for k more loads at the queue's tail: the queue moved to the front
 * of its array, else the array grown.  A D2 status. */
static int queue_room(run *r, size_t k)
{
    if (r->qcap - r->qtail >= k) return D2_OK;
    if (r->qhead > 0) {
        memmove(r->ioq, r->ioq + r->qhead, (r->qtail - r->qhead) * sizeof *r->ioq);
        r->qtail -= r->qhead;
        r->qhead = 0;
    }
    if (k > UINT32_MAX - r->qtail) D2_ERROR(D2_ENOMEM, "sim: out of memory (a load queue of more than 2^32 entries)");
    int rc = VEC_RESERVE(r->ioq, r->qcap, r->qtail + k);
    if (rc != D2_OK) d2_err_prefix("sim: ");
    return rc;
}

static int queue_io(run *r, uint32_t entry, int prefetch, uint32_t layer)
{
    RUN_TRY(queue_room(r, 1));
    r->ioq[r->qtail++] = (io_req){entry, prefetch, layer};
    return D2_OK;
}

/* The predictor sees this layer step's uses; predictions (for the next
 * layer, within the token's pass as EdgeMoE) are queued behind the step's
 * own loads, at the level bit routing chooses for a preload. */
static int issue_prefetch(run *r)
{
    size_t nu = (size_t)r->ntok * r->K;
    prefetch_ctx *c = &r->fc;
    c->layer = r->layer;
    c->fstep = r->f;
    c->ntok = r->ntok;
    c->cur = r->rexp + (size_t)r->layer * nu;
    c->ncur = nu;
    int last = r->layer + 1 >= r->L;
    c->next = last ? NULL : r->rexp + (size_t)(r->layer + 1) * nu;
    c->nnext = last ? 0 : nu;
    c->trans = last ? NULL : r->trans + (size_t)r->layer * r->E * r->E;
    if (r->ft->observe) RUN_TRY(r->ft->observe(c));
    if (last) return D2_OK;
    uint32_t ex[MODEL_MAX_EXPERTS], n = 0;
    RUN_TRY(r->ft->predict(c, ex, &n));
    if (n > c->want) D2_ERROR(D2_EINTERNAL, "sim: predictor %s returned %u experts, more than the %u asked", r->ft->name, n, c->want);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lev;
        if (ex[i] >= r->E) D2_ERROR(D2_EINTERNAL, "sim: predictor %s predicted expert %u of %u", r->ft->name, ex[i], r->E);
        RUN_TRY(bitroute_preload_level(r->bt, &r->bc, r->layer + 1, ex[i], &lev));
        if (lev >= r->U) D2_ERROR(D2_EINTERNAL, "sim: bit routing %s preloads level %u of %u", r->bt->name, lev + 1, r->U);
        for (uint32_t u = r->sys->nested ? 0 : lev; u <= lev; u++) {
            uint32_t id = mem_entry_id(r->mm, r->layer + 1, ex[i], u);
            if (mem_entry_state(r->mm, id) != MEM_ABSENT) continue;
            mem_entry_predict(r->mm, id, 1);
            r->predicted[r->npredicted++] = id;
            RUN_TRY(queue_io(r, id, 1, r->layer + 1));
        }
    }
    return D2_OK;
}

int step_start(run *r)
{
    sim_ns now = des_now(r->ev);
    if (r->layer == 0) { /* a new forward step: who is in it, its tokens' KV cache */
        r->npre = r->ndec = 0;
        sim_ns next = INT64_MAX;
        for (uint32_t q = 0; q < r->R; q++) {
            if (r->finish_ns[q] >= 0) continue;
            if (r->arrive_ns[q] > now) { /* joins a later forward step */
                if (r->arrive_ns[q] < next) next = r->arrive_ns[q];
                continue;
            }
            if (r->gen_cnt[q] == 0) r->pre_q[r->npre++] = q;
            else {
                r->dec_q[r->ndec] = q;
                r->dec_pos[r->ndec++] = r->P + r->gen_cnt[q] - 1;
            }
        }
        if (r->npre + r->ndec == 0) /* nobody to serve: wait for the next arrival */
            return des_event_push(r->ev, next, EV_STEP_START, 0, 0);
        r->ntok = r->npre * r->P + r->ndec;
        r->ctx_sum = (double)r->npre * (double)r->P * ((double)r->P + 1) / 2;
        for (uint32_t j = 0; j < r->ndec; j++) r->ctx_sum += (double)r->dec_pos[j] + 1;
        r->kv_bytes += (int64_t)r->ntok * r->kv_per_token;
        r->fstep_avail = r->f == 0 ? mem_resident_bytes(r->mm) : mem_budget(r->mm);
        if (r->kv_bytes > r->kv_peak) r->kv_peak = r->kv_bytes;
        r->smemo_hit = 0;
        if (r->smemo) step_memo_lookup(r);
        if (!(r->smemo_hit && r->smemo_skip_route)) RUN_TRY(fetch_routing(r)); /* else: nobody reads it */
        set_tok_req(r);
        /* a layer's non-expert work depends on the forward step's tokens
         * only: costed once per forward step */
        r->ne_ns = cost_nonexpert_ns(r->d, r->m, (int)r->p->nonexpert_bits, (int)r->p->kv_bits, r->ntok, r->ctx_sum);
        r->ne_flops = cost_nonexpert_flops(r->m, r->ntok, r->ctx_sum);
        r->ne_stream = cost_nonexpert_stream_bytes(r->m, (int)r->p->nonexpert_bits, (int)r->p->kv_bits, r->ctx_sum);
    }
    mem_set_layer(r->mm, r->layer);
    account_mem(r);
    sim_ns t = r->ne_ns;
    r->fs_ne_flops += r->ne_flops;
    r->fs_stream += r->ne_stream;
    RUN_TRY(account_check_dur(t, "layer's non-expert work"));
    account_emit(r, SIM_OP_NONEXPERT, now, now + t, r->layer, -1, 0, r->ntok, 0, 0, SIM_TIER_NONE, 0);
    r->phase = 0;
    r->comp_busy = 1;
    r->comp_ns += t;
    r->nonexp_ns += t;
    return des_event_after(r->ev, t, EV_NONEXP_DONE, 0, 0);
}

/* The compute cost of an item of unit u used by cnt tokens, its dequant and
 * router parts (ns); through the run's memo per (unit, tokens) when the cost
 * depends on nothing else (not SwiGLU items, whose cost also depends on
 * their final tokens).  A D2 status. */
static int item_cost(run *r, uint32_t u, uint32_t cnt, uint32_t final, step_cost *out)
{
    step_cost *memo = !r->swiglu && cnt <= r->ntok_max ? &r->ccache[(size_t)u * (r->ntok_max + 1) + cnt] : NULL;
    if (memo && memo->t_comp) {
        *out = *memo;
        return D2_OK;
    }
    cost_compute cc = {.total = 0, .stream = 0};
    if (r->swiglu)
        cost_expert_swiglu_item(r->d, r->W, r->m->expert_matrices, r->m->expert_ffn, r->unit_bytes, (int)u + 1,
                                r->unit_bits[u], cnt, final, r->fused, &cc);
    else if (r->fused) /* one launch per expert: on its first level (nested), on every copy */
        cost_expert_fused(r->d, r->W, r->unit_bytes[u], r->unit_bits[u], r->sys->nested && u > 0 ? 1 : r->unit_bits[u], cnt,
                          !r->sys->nested || u == 0, &cc);
    else
        cost_expert(r->d, r->W, r->unit_bytes[u], r->unit_bits[u], cnt, &cc);
    RUN_TRY(account_check_dur(cc.total, "expert compute"));
    out->dequant = cc.dequant;
    out->router = r->bt->is_router ? (sim_ns)ceil(r->p->router_overhead * (double)cc.total) : 0;
    out->t_comp = cc.total + out->router; /* >= 1: 0 marks a memo cell not yet filled */
    out->stream = cc.stream;
    if (memo) *memo = *out;
    return D2_OK;
}

int step_plan(run *r)
{
    /* bit routing of every (token, expert) use of this layer step */
    const size_t n = (size_t)r->ntok * r->K;
    const size_t base = (size_t)r->layer * r->ntok * r->K;
    const uint32_t E = r->E, U = r->U, layer = r->layer;
    const int nested = r->nested;
    r->fs_wt += (double)r->W * (double)n; /* every token-expert use is at least one GEMM of the expert */
    /* B[j][u]: uses of expert j at exactly level (unit) u, and their gate
     * weights' sums gs and sums of squares gs2: decoded here, or read in
     * the memo (Bc, gsc, gs2c: the step's, whichever) */
    uint32_t *B = r->scratch; /* reuse: E*U <= n*... sized at setup */
    const size_t nb = (size_t)E * U;
    double *gs = r->gsum, *gs2 = r->gsum + nb;
    const uint32_t *Bc = B;
    const double *gsc = gs, *gs2c = gs2;
    const uint32_t *mB = NULL;
    const double *mg = NULL, *mg2 = NULL;
    if (r->smemo_hit) stepmemo_get(r->smemo, r->f, layer, &mB, &mg, &mg2);
    if (!r->smemo_hit || !r->smemo_skip_route) {
        const uint16_t *re = r->rexp + base;
        const float *rw = r->rw + base;
        /* gate-weight sums per (expert, level) first, then per level in (expert)
         * order: the per-use chain spreads over the buckets instead of one
         * memory cell per level */
        if (r->bt->expert_levels) { /* a level per expert: the uses counted as they are read */
            uint8_t lv[MODEL_MAX_EXPERTS];
            uint32_t cell[MODEL_MAX_EXPERTS]; /* expert j's bucket: j U + its level */
            RUN_TRY(r->bt->expert_levels(&r->bc, layer, lv));
            for (uint32_t j = 0; j < E; j++) cell[j] = j * U + lv[j];
            memset(B, 0, nb * sizeof *B);
            memset(gs, 0, 2 * nb * sizeof *gs);
#pragma GCC unroll 4
            for (size_t i = 0; i < n; i++) {
                const uint32_t b = cell[re[i]];
                const double w = rw[i];
                B[b]++;
                gs[b] += w;
                gs2[b] += w * w;
            }
        } else if (r->bt->assign_levels) { /* levels from the arrays: the uses are not built */
            uint8_t *lv = (uint8_t *)(void *)r->uses; /* n bytes: within the uses' room */
            RUN_TRY(r->bt->assign_levels(&r->bc, layer, re, rw, r->rb + base, n, lv, r->scratch)); /* scratch: B after */
            memset(B, 0, nb * sizeof *B);
            memset(gs, 0, 2 * nb * sizeof *gs);
#pragma GCC unroll 4
            for (size_t i = 0; i < n; i++) {
                const size_t b = (size_t)re[i] * U + lv[i];
                const double w = rw[i];
                B[b]++;
                gs[b] += w;
                gs2[b] += w * w;
            }
        } else {
            bitroute_use *uses = r->uses;
            const uint8_t *rb = r->rb + base;
            for (size_t i = 0; i < n; i++) uses[i] = (bitroute_use){re[i], rw[i], rb[i], 0};
            RUN_TRY(r->bt->assign(&r->bc, layer, uses, n, r->scratch)); /* scratch: B after */
            memset(B, 0, nb * sizeof *B);
            memset(gs, 0, 2 * nb * sizeof *gs);
            for (size_t i = 0; i < n; i++) { /* uses at exactly (expert, level) */
                const size_t b = (size_t)uses[i].expert * U + uses[i].level;
                const double w = uses[i].weight;
                B[b]++;
                gs[b] += w;
                gs2[b] += w * w;
            }
        }
        if (r->smemo_hit) { /* decoded anyway (a predictor reads the routing, or a debug build): the memo must agree */
            if (memcmp(B, mB, nb * sizeof *B) || memcmp(gs, mg, nb * sizeof *gs) || memcmp(gs2, mg2, nb * sizeof *gs2))
                D2_ERROR(D2_EINTERNAL, "sim: the step memo disagrees with layer %u of forward step %u", layer, r->f);
        } else if (r->smemo) {
            stepmemo_put(r->smemo, r->f, r->smemo_comp, r->smemo_ncomp, layer, B, gs, gs2);
        }
    } else { /* answered by the memo: what this step's decoding and ranking give */
        Bc = mB;
        gsc = mg;
        gs2c = mg2;
    }
    r->held_total = 0;
    r->open_rest = 0;
    r->rhead = r->rtail = 0;
    /* Items in (expert, unit) order; entry ids (mem.h: (layer experts +
     * expert) units + unit) are the step's cells after the layer's first.
     * Each planned as a load; the present ones (and the groups holding
     * them) listed in r->order and r->order2, free until the planner runs.
     * A group is written whole when its items are known: nested, an
     * expert's (its cells are consecutive); copies, each item's.  The uses
     * and gate sums per level are added here too, in cell order (a cell
     * with uses at its level has an item); the uses as integers (exact: a
     * run's uses are far below 2^53). */
    uint64_t uk[POLICY_MAX_LEVELS] = {0};
    double gk[POLICY_MAX_LEVELS], g2k[POLICY_MAX_LEVELS];
    memcpy(gk, r->gate_k, sizeof gk); /* whole arrays: fixed-size copies, no library call */
    memcpy(g2k, r->gate2_k, sizeof g2k);
    const uint32_t ebase = layer * E * U;
    const int64_t *ub = r->unit_bytes;
    const sim_ns *iou = r->io_unit;
    step_item *items = r->items;
    step_group *groups = r->groups;
    plan_item *pi = r->pitems;
    int32_t *item_of = r->item_of;
    mem *mm = r->mm;
    /* the cost memo's row per unit; SwiGLU items are not memoized
     * (item_cost): no count is at most 0 */
    const step_cost *crow[POLICY_MAX_LEVELS];
    for (uint32_t u = 0; u < U; u++) crow[u] = r->ccache + (size_t)u * (r->ntok_max + 1);
    const size_t ntmax = r->swiglu ? 0 : r->ntok_max;
    uint32_t *pres = r->order, *pgrp = r->order2;
    uint32_t nitems = 0, ngroups = 0, npres = 0, npgrp = 0;
    int64_t need = 0, tick = r->tick;
    double stream = 0; /* bytes the items' weight-stream floors read (the bound) */
    uint32_t need_u[POLICY_MAX_LEVELS];
    for (uint32_t j = 0, b = 0; j < E; j++) {
        const uint32_t *nd = Bc + b; /* nd[u]: expert j's tokens that need unit u */
        if (nested) { /* nesting: a use at level k needs units 1..k */
            uint32_t c = 0;
            for (uint32_t u = U; u-- > 0;) need_u[u] = c += Bc[b + u];
            if (!c) { /* no uses of expert j */
                b += U;
                continue;
            }
            nd = need_u;
        }
        step_group g = {.first = nitems};
        int ghit = 0; /* the group has present units */
        for (uint32_t u = 0; u < U; u++, b++) {
            const uint32_t cnt = nd[u];
            if (!cnt) continue;
            const uint32_t fin = Bc[b]; /* tokens whose own level is u */
            if (fin) {
                uk[u] += fin;
                gk[u] += gsc[b];
                g2k[u] += gs2c[b];
            }
            const uint32_t id = ebase + b;
            const int st = mem_entry_state(mm, id);
            const int hit = st != MEM_ABSENT; /* present; a hit if its group opens below */
            const int pred = hit && (st == MEM_LOADING || mem_entry_predicted(mm, id));
            step_cost own;
            const step_cost *sc = cnt <= ntmax ? &crow[u][cnt] : NULL;
            if (!sc || !sc->t_comp) {
                RUN_TRY(item_cost(r, u, cnt, fin, &own));
                sc = &own;
            }
            stream += sc->stream;
            items[nitems] = (step_item){.entry = id, .expert = j, .unit = u, .tokens = cnt, .final = fin, .grp = ngroups,
                                        .t_comp = sc->t_comp, .dequant = sc->dequant, .router = sc->router, .hit = hit,
                                        .pred = pred};
            pi[nitems] = (plan_item){j, u, cnt, iou[u], sc->t_comp, 1};
            if (hit) pres[npres++] = nitems;
            if (nested) {
                if (hit) {
                    g.present += ub[u];
                    g.loading |= st == MEM_LOADING;
                    ghit = 1;
                }
                g.n++;
                g.need += ub[u];
            } else { /* copies: a group per item */
                if (hit) pgrp[npgrp++] = ngroups;
                need += ub[u];
                groups[ngroups++] = (step_group){.first = nitems, .n = 1, .left = 1, .need = ub[u], .present = hit ? ub[u] : 0,
                                                 .loading = st == MEM_LOADING};
            }
            mem_entry_touch(mm, id, tick++);
            item_of[id] = (int32_t)nitems;
            nitems++;
        }
        if (nested && g.n) {
            if (ghit) pgrp[npgrp++] = ngroups;
            need += g.need;
            g.left = g.n;
            groups[ngroups++] = g;
        }
    }
    for (uint32_t k = 0; k < U; k++) r->uses_k[k] += (double)uk[k];
    memcpy(r->gate_k, gk, sizeof gk); /* levels from U on: copied in and out unchanged */
    memcpy(r->gate2_k, g2k, sizeof g2k);
    r->tick = tick;
    r->fstep_need += need;
    r->fs_stream += stream;
    r->nitems = r->remaining = nitems;
    r->ngroups = ngroups;
    /* Which groups hold their present units now (hits).  Groups all present,
     * or with a unit still loading (a preload: at most one), and every group
     * of copies open at once (always safe); then nested groups partly
     * present, in expert order, while every open group can still finish.
     * Any other group is deferred: its present units stay evictable and
     * all its units are planned as loads; a unit still resident when its
     * load comes up is a hit then.  A group opens whole: its present units
     * pinned, then its bytes held (what step_hold_item does unit by unit). */
    uint8_t *open = r->gflag;
    for (uint32_t p = 0; p < npgrp; p++) open[pgrp[p]] = 0;
    for (int pass = 0; pass < (nested ? 2 : 1); pass++) /* copies: every present group opens in pass 0 */
        for (uint32_t p = 0; p < npgrp; p++) {
            const uint32_t g = pgrp[p];
            step_group *x = &groups[g];
            const int64_t present = x->present; /* pinning in pass 0 changes no unit's state */
            if (open[g] || !present) continue;
            if (pass == 0 ? !(present == x->need || x->loading || !nested) : !step_group_admit(r, g, present)) continue;
            open[g] = 1;
            for (uint32_t i = x->first; i < x->first + x->n; i++)
                if (items[i].hit) {
                    mem_entry_pin(mm, items[i].entry);
                    items[i].held = 1;
                }
            const int64_t before = step_group_rest(x);
            x->held += present;
            r->held_total += present;
            r->open_rest += step_group_rest(x) - before;
        }
    /* the present items: hits in held groups (computed first, in item
     * order, those resident ready now), else loads */
    for (uint32_t p = 0; p < npres; p++) {
        const uint32_t i = pres[p];
        step_item *it = &items[i];
        if (it->held) {
            r->hits++;
            if (it->pred) r->pf_used++;
            if (mem_entry_state(r->mm, it->entry) == MEM_RESIDENT) {
                it->state = 1;
                r->ready[r->rtail++] = i;
            }
            pi[i].t_io = 0;
            pi[i].load = 0;
        } else {
            it->hit = 0;
        }
    }
    /* predictions made for this layer are settled now */
    for (uint32_t i = 0; i < r->npredicted; i++) mem_entry_predict(r->mm, r->predicted[i], 0);
    r->npredicted = 0;
    r->qhead = r->qtail = 0; /* drop preloads that have not started */
    /* plan the loads (wall-clock timed: plan_overhead_s) */
    double w0 = clock_mono_s();
    size_t k;
    int prc = r->pt->order(&r->pc, r->pitems, r->nitems, r->order, &k);
    r->plan_wall += clock_mono_s() - w0;
    RUN_TRY(prc);
    if (r->p->plan_gap && k > 0) {
        plan_ctx hc = r->pc;
        size_t kh, ki, ko;
        int found;
        RUN_TRY(plan_find("hebf")->order(&hc, r->pitems, r->nitems, r->order2, &kh));
        sim_ns mh = plan_makespan(r->pitems, r->nitems, r->order2, kh);
        RUN_TRY(plan_find("id-order")->order(&hc, r->pitems, r->nitems, r->order2, &ki));
        sim_ns mi = plan_makespan(r->pitems, r->nitems, r->order2, ki);
        RUN_TRY(plan_optimal(&r->pc, r->pitems, r->nitems, r->order2, &ko, &found));
        if (found) {
            sim_ns mo = plan_makespan(r->pitems, r->nitems, r->order2, ko);
            if (mo > mh) D2_ERROR(D2_EINTERNAL, "sim: optimal plan (%lld ns) worse than hebf (%lld ns)", (long long)mo, (long long)mh);
            double g = (double)mh / (double)mo - 1;
            r->gap_sum += g;
            r->gap_id_sum += (double)mi / (double)mo - 1;
            if (g > r->gap_max) r->gap_max = g;
            r->gap_n++;
        } else {
            r->gap_skip++;
        }
    }
    RUN_TRY(queue_room(r, k));
    {
        io_req *q = r->ioq + r->qtail;
        const uint32_t *ord = r->order;
        for (size_t i = 0; i < k; i++) q[i] = (io_req){items[ord[i]].entry, 0, layer};
        r->qtail += (uint32_t)k;
    }
    return issue_prefetch(r);
}

/* The fastest rate, weights x tokens per second, at which the cost model
 * can do an expert use's W weights x tokens: fp16_flops / 2 (2 FLOPs a
 * weight and token), or a measured SwiGLU rate above it (sim.nested_compute
 * = swiglu, device.swiglu_*_rate_l<k> set; a use does at least W x tokens
 * of gate/up and down work, each part at its own rate or slower). */
static double bound_wt_rate(const run *r)
{
    double fast = r->d->fp16_flops / 2;
    for (int k = 1; r->swiglu && k <= DEVICE_SWIGLU_LEVELS; k++)
        if (cost_swiglu_rates_set(r->d, k)) {
            if (r->d->swiglu_gu_rate[k - 1] > fast) fast = r->d->swiglu_gu_rate[k - 1];
            if (r->d->swiglu_down_rate[k - 1] > fast) fast = r->d->swiglu_down_rate[k - 1];
        }
    return fast;
}

/* The bound (docs/simulator.md, "The bound").
 *
 * Compute: the one compute unit runs every operation of the forward step
 * one after another, each at least its cost-model time (interference only
 * slows it; the router's share only adds).  Each operation's time is at
 * least max(its FLOP time, its memory time): the non-expert work
 * max(tf, tm) + layer overhead with tm = cost_nonexpert_stream_bytes at
 * mem_bw x mem_eff; an expert item's GEMM term max(tf, tm) (+ the cold
 * stream), with tm = cost_weight_stream_bytes at mem_bw x mem_eff (per
 * GEMM: gate/up and down apart for SwiGLU items), under dequantization
 * added before it (per-level kernels) or max'ed with it (fused), plus
 * launches.  A sum of maxima is at least the maximum of the sums, so the
 * step takes at least max(FLOPs at peak, streamed bytes / (mem_bw x
 * mem_eff)); the FLOP side is the step's non-expert FLOPs at peak plus its
 * expert uses (W weights x tokens each) at bound_wt_rate, below every
 * kernel reading's FLOP time (compute_eff <= 1).  The streamed bytes are
 * the cost model's own, summed over the step's items (each (layer,
 * expert, unit) used once, whatever its tokens) and its layers' non-expert
 * work: nothing the model charges at memory speed is counted twice or
 * left at a faster rate.  cost_dur_ns rounds each term up (or to an integer
 * within 1e-9 relative, which the run's bound check allows for).
 *
 * I/O: the units a forward step needs (N bytes, distinct) were either
 * resident when it began (at most the budget M: resident bytes never exceed
 * it, loading ones included; in the first forward step exactly what the
 * system starts with) or are loaded during it, so at least N - M bytes
 * cross the host link, and of those at least N - M - C come from flash (C:
 * the page cache, which held at most C of them when the step began).  Each
 * tier's bytes take at least their slowest stage's bandwidth term
 * (cost_load_floor_ns); the page-cache share is costed at the cheaper of its
 * two ways in.  One I/O channel: the run lasts at least the sum. */
static void bound_fstep(run *r)
{
    const double wt_rate = bound_wt_rate(r), peak = r->d->fp16_flops;
    const double tflops = wt_rate > peak / 2 ? r->fs_ne_flops / peak + r->fs_wt / wt_rate
                                             : (r->fs_ne_flops + 2.0 * r->fs_wt) / peak;
    const double tmem = r->fs_stream / (r->d->mem_bw * r->d->mem_eff);
    r->lb_flops_s += tflops;
    r->lb_mem_s += tmem;
    r->lb_comp_s += tflops > tmem ? tflops : tmem;
    r->fs_ne_flops = r->fs_wt = r->fs_stream = 0;
    int64_t need = r->fstep_need - r->fstep_avail;
    r->fstep_need = 0;
    if (need <= 0) return;
    int64_t flash = need - r->cache_bytes;
    if (flash < 0) flash = 0;
    int64_t cached = need - flash;
    sim_ns tc = 0;
    if (cached > 0) {
        sim_ns hit = cost_load_floor_ns(r->d, cached, 1), miss = cost_load_floor_ns(r->d, cached, 0);
        tc = hit < miss ? hit : miss;
    }
    r->lb_io_ns += (flash > 0 ? cost_load_floor_ns(r->d, flash, 0) : 0) + tc;
}

int step_end(run *r)
{
    /* the step's items are entries of its layer: their range cleared at once */
    if (r->nitems) memset(r->item_of + (size_t)r->layer * r->E * r->U, 0xff, (size_t)r->E * r->U * sizeof *r->item_of);
    r->steps++;
    /* every group is done: none still needs bytes (the admission's kept sum) */
    if (r->open_rest != 0 || r->bad_rest)
        D2_ERROR(D2_EINTERNAL, "sim: layer %u of forward step %u: the open groups' remaining need was kept wrong (%lld bytes left)",
                 r->layer, r->f, (long long)r->open_rest);
    mem_step_done(r->mm, r->layer);
    /* invariants: the constant-cost ones every layer step, the list walks
     * once per forward step (and at the end of the run, run.c) */
    RUN_TRY(r->layer + 1 == r->L ? mem_check(r->mm) : mem_check_quick(r->mm));
    RUN_TRY(des_check(r->ev));
    if (++r->layer == r->L) { /* the forward step is complete: every request in it has a new token */
        sim_ns now = des_now(r->ev);
        bound_fstep(r);
        r->layer = 0;
        r->f++;
        for (uint32_t i = 0; i < r->npre + r->ndec; i++) {
            uint32_t q = i < r->npre ? r->pre_q[i] : r->dec_q[i - r->npre];
            if (r->gen_cnt[q]++ == 0) r->first_ns[q] = now;
            if (r->gen_cnt[q] == r->G) { /* finished: its KV cache (prompt + G-1 fed tokens) is freed */
                r->finish_ns[q] = now;
                r->ndone++;
                r->kv_bytes -= (int64_t)(r->P + r->G - 1) * r->kv_per_token;
            }
        }
        if (r->ndone == r->R) { /* done; preloads still in flight do not count */
            r->done = 1;
            r->end_ns = now;
            return D2_OK;
        }
    }
    return des_event_after(r->ev, 0, EV_STEP_START, 0, 0);
}

