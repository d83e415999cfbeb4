/* mem_arc.c - ARC eviction (Megiddo and Modha, "ARC: A Self-Tuning, Low
 * Overhead Replacement Cache", FAST 2003) as a memory policy (`arc`), and
 * Fate's shallow-favouring cache (`fate`): ARC with per-layer quotas that
 * give early layers more room.  Sizes are bytes, not pages (units of
 * different levels differ in size).  It chooses victims only; the memory
 * (mem.c) evicts them. */
#include "sim/plugins.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>

/* ---- lists ---------------------------------------------------------------- */

static void list_remove(arc_state *s, const mem *m, uint32_t id)
{
    uint8_t l = s->list[id];
    if (l == ARC_NONE) return;
    uint32_t p = s->prev[id], n = s->next[id];
    if (p != ARC_NIL) s->next[p] = n;
    else s->head[l] = n;
    if (n != ARC_NIL) s->prev[n] = p;
    else s->tail[l] = p;
    s->bytes[l] -= mem_entry_bytes(m, id);
    s->list[id] = ARC_NONE;
    s->prev[id] = s->next[id] = ARC_NIL;
}

/* at the MRU end of list l */
static void list_push(arc_state *s, const mem *m, uint32_t id, uint8_t l)
{
    list_remove(s, m, id);
    s->list[id] = l;
    s->prev[id] = ARC_NIL;
    s->next[id] = s->head[l];
    if (s->head[l] != ARC_NIL) s->prev[s->head[l]] = id;
    else s->tail[l] = id;
    s->head[l] = id;
    s->bytes[l] += mem_entry_bytes(m, id);
}

int arc_init(void *st, const mem *m)
{
    arc_state *s = st;
    s->n = mem_layers(m) * mem_experts(m) * mem_units(m);
    s->c = mem_budget(m);
    s->p = 0;
    s->adapted = ARC_NIL;
    s->list = calloc(s->n ? s->n : 1, 1);
    s->fresh = calloc(s->n ? s->n : 1, 1);
    s->prev = malloc((s->n ? s->n : 1) * sizeof *s->prev);
    s->next = malloc((s->n ? s->n : 1) * sizeof *s->next);
    if (!s->list || !s->fresh || !s->prev || !s->next) {
        arc_fini(s);
        D2_ERROR(D2_ENOMEM, "mem arc: out of memory");
    }
    for (uint32_t i = 0; i < s->n; i++) s->prev[i] = s->next[i] = ARC_NIL;
    for (int l = 0; l < ARC_NLISTS; l++) s->head[l] = s->tail[l] = ARC_NIL;
    return D2_OK;
}

void arc_fini(void *st)
{
    arc_state *s = st;
    free(s->list);
    free(s->fresh);
    free(s->prev);
    free(s->next);
    free(s->quota);
    s->list = s->fresh = NULL;
    s->prev = s->next = NULL;
    s->quota = NULL;
}

/* A request for an entry found in a ghost list moves p (ARC's adaptation):
 * a B1 hit says T1 was too small, a B2 hit that T2 was; by the entry's
 * bytes times the ratio of the other ghost list's size to its own, at
 * least 1. */
static void adapt(arc_state *s, const mem *m, uint32_t id, uint8_t from)
{
    double b = (double)mem_entry_bytes(m, id), b1 = (double)s->bytes[ARC_B1], b2 = (double)s->bytes[ARC_B2];
    if (from == ARC_B1) {
        double d = b1 > 0 && b2 > b1 ? b2 / b1 : 1;
        s->p += b * d;
        if (s->p > (double)s->c) s->p = (double)s->c;
    } else if (from == ARC_B2) {
        double d = b2 > 0 && b1 > b2 ? b1 / b2 : 1;
        s->p -= b * d;
        if (s->p < 0) s->p = 0;
    }
}

/* Ghost lists stay within ARC's bounds: |T1| + |B1| <= c, and all four
 * lists <= 2c (bytes; the oldest ghosts go). */
static void trim_ghosts(arc_state *s, const mem *m)
{
    while (s->bytes[ARC_T1] + s->bytes[ARC_B1] > s->c && s->tail[ARC_B1] != ARC_NIL) list_remove(s, m, s->tail[ARC_B1]);
    while (s->bytes[ARC_T1] + s->bytes[ARC_T2] + s->bytes[ARC_B1] + s->bytes[ARC_B2] > 2 * s->c && s->tail[ARC_B2] != ARC_NIL)
        list_remove(s, m, s->tail[ARC_B2]);
}

/* A demand request for id (a use, or a load not made for a prediction) that
 * was in list `from`. */
static void demand(arc_state *s, const mem *m, uint32_t id, uint8_t from)
{
    if (from == ARC_B1 || from == ARC_B2) {
        if (s->adapted != id) adapt(s, m, id, from);
        list_push(s, m, id, ARC_T2);
    } else if (from == ARC_T1 || from == ARC_T2) {
        list_push(s, m, id, ARC_T2);
    } else {
        list_push(s, m, id, ARC_T1);
    }
    s->adapted = ARC_NIL;
    trim_ghosts(s, m);
}

/* Loading from now: a miss (ARC's cases II-IV), or a preload, which joins
 * T1 unreferenced and counts as a request only at its first use. */
void arc_on_insert(void *st, const mem *m, uint32_t id)
{
    arc_state *s = st;
    uint8_t from = s->list[id];
    if (mem_entry_predicted(m, id)) {
        if (s->adapted == id) s->adapted = ARC_NIL;
        s->fresh[id] = (uint8_t)(1 + from);
        list_push(s, m, id, ARC_T1);
        trim_ghosts(s, m);
        return;
    }
    s->fresh[id] = 0;
    demand(s, m, id, from);
}

/* A layer step uses id.  Absent: its load comes (on_insert).  Present: a
 * hit (case I: to T2's MRU end), or the first use of a preload (its
 * request, from the ghost list it had left). */
void arc_on_use(void *st, const mem *m, uint32_t id)
{
    arc_state *s = st;
    if (mem_entry_state(m, id) == MEM_ABSENT) return;
    if (s->fresh[id]) {
        uint8_t from = (uint8_t)(s->fresh[id] - 1);
        s->fresh[id] = 0;
        if (from == ARC_B1 || from == ARC_B2) demand(s, m, id, from);
        else list_push(s, m, id, ARC_T1); /* its first reference */
        return;
    }
    demand(s, m, id, s->list[id]);
}

/* Leaving memory: T1 -> B1, T2 -> B2 (MRU ends); a preload never used
 * leaves no ghost. */
void arc_on_evict(void *st, const mem *m, uint32_t id)
{
    arc_state *s = st;
    uint8_t l = s->list[id];
    if (s->fresh[id] || (l != ARC_T1 && l != ARC_T2)) {
        list_remove(s, m, id);
        s->fresh[id] = 0;
        return;
    }
    list_push(s, m, id, l == ARC_T1 ? ARC_B1 : ARC_B2);
    trim_ghosts(s, m);
}

/* The LRU-most candidate of list l, optionally of one layer, not
 * predicted (ARC_NIL: none). */
static uint32_t lru_candidate(const arc_state *s, const mem *m, uint8_t l, int64_t layer)
{
    for (uint32_t id = s->tail[l]; id != ARC_NIL; id = s->prev[id])
        if (mem_entry_candidate(m, id) && !mem_entry_predicted(m, id) && (layer < 0 || mem_entry_layer(m, id) == (uint32_t)layer)) return id;
    return ARC_NIL;
}

/* ARC's REPLACE among the candidates (of one layer when layer >= 0): the
 * LRU end of T1 when T1 exceeds its target p (or equals it and the
 * incoming entry is a B2 ghost), else of T2; either list when the other has
 * no candidate.  ARC_NIL when no candidate qualifies. */
static uint32_t replace(arc_state *s, const mem *m, uint32_t incoming, int64_t layer)
{
    uint32_t a = lru_candidate(s, m, ARC_T1, layer), b = lru_candidate(s, m, ARC_T2, layer);
    double t1 = (double)s->bytes[ARC_T1];
    int in_b2 = s->list[incoming] == ARC_B2 && !mem_entry_predicted(m, incoming);
    if (a != ARC_NIL && (b == ARC_NIL || t1 > s->p || (in_b2 && t1 == s->p))) return a;
    return b;
}

/* Candidates that are predicted, or in no list: least recently used first
 * (ties: lower id), of one layer when layer >= 0. */
static uint32_t fallback(const mem *m, int64_t layer)
{
    const uint32_t *c;
    uint32_t n, best = ARC_NIL;
    mem_candidates(m, &c, &n);
    for (int pred = 0; pred < 2 && best == ARC_NIL; pred++)
        for (uint32_t i = 0; i < n; i++) {
            if (mem_entry_predicted(m, c[i]) != pred) continue;
            if (layer >= 0 && mem_entry_layer(m, c[i]) != (uint32_t)layer) continue;
            if (best == ARC_NIL || mem_entry_last_use(m, c[i]) < mem_entry_last_use(m, best) ||
                (mem_entry_last_use(m, c[i]) == mem_entry_last_use(m, best) && c[i] < best))
                best = c[i];
        }
    return best;
}

/* ARC's adaptation happens before REPLACE: the first victim asked for an
 * incoming ghost adapts p (on_insert then does not adapt again). */
static void adapt_for(arc_state *s, const mem *m, uint32_t incoming)
{
    if (s->adapted == incoming || mem_entry_predicted(m, incoming)) return;
    uint8_t from = s->list[incoming];
    if (from == ARC_B1 || from == ARC_B2) {
        adapt(s, m, incoming, from);
        s->adapted = incoming;
    }
}

int arc_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    arc_state *s = st;
    adapt_for(s, m, incoming);
    uint32_t v = replace(s, m, incoming, -1);
    *out = v != ARC_NIL ? v : fallback(m, -1);
    return D2_OK;
}

/* ---- fate: shallow-favouring quotas over ARC ------------------------------ */

void fate_quotas(int64_t budget, uint32_t layers, double ratio, int64_t *quota)
{
    if (layers == 0) return;
    double wsum = 0;
    for (uint32_t l = 0; l < layers; l++)
        wsum += layers > 1 ? 1 + (ratio - 1) * (double)(layers - 1 - l) / (double)(layers - 1) : 1;
    int64_t given = 0;
    for (uint32_t l = 0; l < layers; l++) {
        double w = layers > 1 ? 1 + (ratio - 1) * (double)(layers - 1 - l) / (double)(layers - 1) : 1;
        quota[l] = (int64_t)((double)budget * w / wsum + 1e-6); /* exact shares are not lost to rounding */
        if (quota[l] > budget - given) quota[l] = budget - given;
        given += quota[l];
    }
    for (uint32_t l = 0; given < budget; l = (l + 1) % layers, given++) quota[l]++;
}

int fate_mem_init(void *st, const mem *m)
{
    arc_state *s = st;
    D2_TRY(arc_init(st, m));
    s->layers = mem_layers(m);
    s->quota = malloc((s->layers ? s->layers : 1) * sizeof *s->quota);
    if (!s->quota) {
        arc_fini(s);
        D2_ERROR(D2_ENOMEM, "mem fate: out of memory");
    }
    fate_quotas(s->c, s->layers, FATE_SHALLOW_RATIO, s->quota);
    return D2_OK;
}

/* The incoming entry's layer over its quota: evict within that layer (ARC
 * order).  Else from the layer furthest over its own quota (bytes over;
 * ties: the deeper layer).  Else (every layer within its quota) ARC over
 * every layer. */
int fate_mem_victim(void *st, const mem *m, uint32_t incoming, uint32_t *out)
{
    arc_state *s = st;
    adapt_for(s, m, incoming);
    uint32_t li = mem_entry_layer(m, incoming), v = ARC_NIL;
    if (mem_layer_bytes(m, li) + mem_entry_bytes(m, incoming) > s->quota[li]) v = replace(s, m, incoming, li);
    /* layers over their quota, furthest over first: at most one pass per layer */
    int64_t last_over = INT64_MAX;
    uint32_t last_l = 0;
    while (v == ARC_NIL) {
        int64_t over = 0;
        uint32_t pick = ARC_NIL;
        for (uint32_t l = 0; l < s->layers; l++) {
            int64_t o = mem_layer_bytes(m, l) - s->quota[l];
            /* next in the order (over descending, then layer descending) after the last one tried */
            int after = o < last_over || (o == last_over && l < last_l);
            if (o > 0 && after && (pick == ARC_NIL || o > over || (o == over && l > pick))) {
                over = o;
                pick = l;
            }
        }
        if (pick == ARC_NIL) break;
        v = replace(s, m, incoming, pick);
        last_over = over;
        last_l = pick;
    }
    if (v == ARC_NIL) v = replace(s, m, incoming, -1);
    *out = v != ARC_NIL ? v : fallback(m, -1);
    return D2_OK;
}
