/* mem_layerlru.c - a per-layer LRU expert cache (mixtral-offloading, Eliseev
 * and Mazur, arXiv 2312.17238, section 3.1: "we keep k experts of each layer
 * in an LRU cache").  Each MoE layer owns a share budget / layers (k =
 * share / expert size experts); a load into a layer whose share is full
 * evicts that layer's least recently used unit, even when other layers
 * leave the budget room (wants_room).  When a step needs more of a layer
 * than its share (a batched prefill), the layer borrows free room; once the
 * budget is full, a layer over its share gives back first.  Predicted units
 * (speculative loads) go last, as in every policy. */
#include "sim/plugins.h"
#include "core/err.h"

/* the layer's share, bytes */
static int64_t share(const mem *m) { return mem_budget(m) / (int64_t)mem_layers(m); }

/* The least recently used candidate (predicted last, then lower id) of
 * `layer`, or of every layer when layer == UINT32_MAX; UINT32_MAX if none. */
static uint32_t lru_of(const mem *m, uint32_t layer)
{
    const uint32_t *c;
    uint32_t n, best = UINT32_MAX;
    mem_candidates(m, &c, &n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = c[i];
        if (layer != UINT32_MAX && mem_entry_layer(m, id) != layer) continue;
        if (best != UINT32_MAX) {
            int p = mem_entry_predicted(m, id), pb = mem_entry_predicted(m, best);
            if (p > pb) continue;
            if (p == pb) {
                int64_t t = mem_entry_last_use(m, id), tb = mem_entry_last_use(m, best);
                if (t > tb || (t == tb && id > best)) continue;
            }
        }
        best = id;
    }
    return best;
}

int layerlru_wants_room(void *state, const mem *m, uint32_t incoming)
{
    (void)state;
    uint32_t l = mem_entry_layer(m, incoming);
    return mem_layer_bytes(m, l) + mem_entry_bytes(m, incoming) > share(m) && lru_of(m, l) != UINT32_MAX;
}

/* The layer's own least recently used when the layer's share is full (a
 * per-layer cache); else (the budget is full, the layer under its share)
 * the least recently used of the layer furthest over its share, lower
 * layer on ties. */
int layerlru_victim(void *state, const mem *m, uint32_t incoming, uint32_t *out)
{
    uint32_t v = UINT32_MAX;
    if (layerlru_wants_room(state, m, incoming)) v = lru_of(m, mem_entry_layer(m, incoming));
    else {
        int64_t worst = INT64_MIN;
        for (uint32_t x = 0; x < mem_layers(m); x++) {
            int64_t over = mem_layer_bytes(m, x) - share(m);
            if (over > worst) {
                uint32_t cand = lru_of(m, x);
                if (cand != UINT32_MAX) worst = over, v = cand;
            }
        }
    }
    if (v == UINT32_MAX) D2_ERROR(D2_EINTERNAL, "mem layer-lru: asked for a victim with no candidate");
    *out = v;
    return D2_OK;
}
