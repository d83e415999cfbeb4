/* pcache.c - the host page cache of pcache.h: intrusive doubly linked lists
 * over an array of files (O(1) moves), shadows in the same array by id.
 * The rules R1-R7 and what is simplified are in pcache.h; this file only
 * implements them and does not know time or cost. */
#include "sim/pcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/registry.h"

#define NIL UINT32_MAX

/* Invariant: a file with list != PCACHE_ABSENT is linked on exactly that
 * list (prev/next are ids or the list's sentinel); absent files have
 * prev = next = NIL. */
typedef struct pcache_file {
    int64_t bytes;      /* size of the file */
    uint64_t shadow;    /* bytes: non-resident age at its last eviction (R5) */
    uint32_t prev, next;/* neighbours on its list, toward head / toward tail */
    uint8_t list;       /* enum pcache_list */
    uint8_t referenced; /* PG_referenced (R1, R2) */
    uint8_t has_shadow; /* evicted and not read since */
} pcache_file;

/* A list: head = most recent, tail = next victim.  Sentinel node ids n
 * (inactive) and n + 1 (active) in f[] close each ring. */
struct pcache {
    const pcache_policy_type *type;
    int64_t cap;       /* bytes */
    uint32_t n;        /* files */
    pcache_file *f;    /* [n + 2]: files, then the two sentinels */
    pcache_stats s;
};

static uint32_t sentinel(const pcache *c, int list) { return c->n + (list == PCACHE_ACTIVE); }

static void list_unlink(pcache *c, uint32_t id)
{
    pcache_file *x = &c->f[id];
    c->f[x->prev].next = x->next;
    c->f[x->next].prev = x->prev;
    if (x->list == PCACHE_ACTIVE) { c->s.bytes_active -= x->bytes; c->s.files_active--; }
    else { c->s.bytes_inactive -= x->bytes; c->s.files_inactive--; }
    x->prev = x->next = NIL;
    x->list = PCACHE_ABSENT;
}

static void list_push_head(pcache *c, int list, uint32_t id)
{
    uint32_t h = sentinel(c, list);
    pcache_file *x = &c->f[id];
    x->prev = h;
    x->next = c->f[h].next;
    c->f[c->f[h].next].prev = id;
    c->f[h].next = id;
    x->list = (uint8_t)list;
    if (list == PCACHE_ACTIVE) { c->s.bytes_active += x->bytes; c->s.files_active++; }
    else { c->s.bytes_inactive += x->bytes; c->s.files_inactive++; }
}

static uint32_t list_tail(const pcache *c, int list) { return c->f[sentinel(c, list)].prev; }

static int64_t resident(const pcache *c) { return c->s.bytes_active + c->s.bytes_inactive; }

static uint64_t int_sqrt(uint64_t x) /* floor(sqrt(x)), as lib/math/int_sqrt.c */
{
    uint64_t r = 0;
    for (uint64_t b = (uint64_t)1 << 62; b; b >>= 2) {
        if (x >= r + b) { x -= r + b; r = (r >> 1) + b; }
        else r >>= 1;
    }
    return r;
}

uint32_t pcache_inactive_ratio(int64_t lru_bytes)
{
    uint64_t gb = lru_bytes > 0 ? (uint64_t)lru_bytes >> 30 : 0;
    return gb ? (uint32_t)int_sqrt(10 * gb) : 1;
}

/* R3: inactive * ratio < active, without overflow: inactive <= (active - 1) / ratio */
static int inactive_is_low(const pcache *c)
{
    int64_t act = c->s.bytes_active, inact = c->s.bytes_inactive;
    if (act <= 0) return 0;
    return inact <= (act - 1) / (int64_t)pcache_inactive_ratio(act + inact);
}

static void evict_tail(pcache *c, int list)
{
    uint32_t v = list_tail(c, list);
    pcache_file *x = &c->f[v];
    list_unlink(c, v);
    x->referenced = 0;
    c->s.evictions++;
}

/* ---- lru ---- */

static void lru_access(pcache *c, uint32_t id, int *hit)
{
    pcache_file *x = &c->f[id];
    if (x->list != PCACHE_ABSENT) {
        list_unlink(c, id);
        list_push_head(c, PCACHE_INACTIVE, id);
        *hit = 1;
        return;
    }
    *hit = 0;
    if (x->bytes > c->cap) { c->s.too_big++; return; }
    while (resident(c) + x->bytes > c->cap) evict_tail(c, PCACHE_INACTIVE);
    list_push_head(c, PCACHE_INACTIVE, id);
}

/* ---- two-list ---- */

static void age(pcache *c, int64_t bytes) { c->s.nonresident_age += (uint64_t)bytes; } /* R6 */

static void two_access(pcache *c, uint32_t id, int *hit)
{
    pcache_file *x = &c->f[id];
    if (x->list != PCACHE_ABSENT) { /* R2 folio_mark_accessed */
        *hit = 1;
        if (!x->referenced) x->referenced = 1;
        else if (x->list == PCACHE_INACTIVE) {
            list_unlink(c, id);
            list_push_head(c, PCACHE_ACTIVE, id);
            x->referenced = 0;
            age(c, x->bytes);
            c->s.activations++;
        }
        return;
    }
    *hit = 0;
    if (x->bytes > c->cap) { c->s.too_big++; return; }
    while (resident(c) + x->bytes > c->cap) { /* R4 */
        if (inactive_is_low(c)) {
            uint32_t d = list_tail(c, PCACHE_ACTIVE);
            list_unlink(c, d);
            list_push_head(c, PCACHE_INACTIVE, d); /* referenced kept */
            c->s.demotions++;
        } else {
            uint32_t v = list_tail(c, PCACHE_INACTIVE); /* not empty: else the list is low */
            c->f[v].shadow = c->s.nonresident_age;   /* R5 */
            c->f[v].has_shadow = 1;
            age(c, c->f[v].bytes);
            evict_tail(c, PCACHE_INACTIVE);
        }
    }
    int list = PCACHE_INACTIVE; /* R1 */
    if (x->has_shadow) {        /* R7 */
        uint64_t dist = c->s.nonresident_age - x->shadow;
        x->has_shadow = 0;
        if (dist <= (uint64_t)c->s.bytes_active) {
            list = PCACHE_ACTIVE;
            age(c, x->bytes);
            c->s.refault_activations++;
        }
    }
    list_push_head(c, list, id);
    x->referenced = 1; /* the faulting read's folio_mark_accessed (R1, R2) */
}

/* ---- table ---- */

static const pcache_policy_type policies[] = {
    {.name = "lru",
     .summary = "strict LRU by bytes: a hit moves the file to the head, a miss evicts from the tail",
     .access = lru_access},
    {.name = "two-list",
     .summary = "Linux's active/inactive file lists: promotion on a second read, "
                "inactive_is_low balance, workingset refault activation",
     .access = two_access},
    {.name = NULL},
};
D2_REGISTRY(pcache_policy, pcache_policy_type, policies)

/* ---- object ---- */

int pcache_new(const char *policy, int64_t capacity_bytes, uint32_t n, const int64_t *bytes_of,
               pcache **out)
{
    if (!out) D2_ERROR(D2_EINVAL, "pcache: no output pointer");
    *out = NULL;
    const pcache_policy_type *t = pcache_policy_find(policy);
    if (!t) {
        char names[128];
        pcache_policy_names(names, sizeof names);
        D2_ERROR(D2_ENOTFOUND, "pcache: unknown policy \"%s\" (known: %s)", policy ? policy : "(null)", names);
    }
    if (capacity_bytes < 0) D2_ERROR(D2_ERANGE, "pcache: capacity %lld bytes must be >= 0", (long long)capacity_bytes);
    if (n > UINT32_MAX - 2) D2_ERROR(D2_ERANGE, "pcache: %u files is too many", n);
    if (n && !bytes_of) D2_ERROR(D2_EINVAL, "pcache: no file sizes");
    for (uint32_t i = 0; i < n; i++)
        if (bytes_of[i] < 0) D2_ERROR(D2_ERANGE, "pcache: file %u: bytes %lld must be >= 0", i, (long long)bytes_of[i]);
    pcache *c = calloc(1, sizeof *c);
    if (!c) D2_ERROR(D2_ENOMEM, "pcache: out of memory");
    c->f = calloc((size_t)n + 2, sizeof *c->f);
    if (!c->f) { free(c); D2_ERROR(D2_ENOMEM, "pcache: out of memory"); }
    c->type = t;
    c->cap = capacity_bytes;
    c->n = n;
    for (uint32_t i = 0; i < n; i++) {
        c->f[i].bytes = bytes_of[i];
        c->f[i].prev = c->f[i].next = NIL;
    }
    for (uint32_t s = n; s < n + 2; s++) c->f[s].prev = c->f[s].next = s; /* empty rings */
    *out = c;
    return D2_OK;
}

void pcache_free(pcache *c)
{
    if (!c) return;
    free(c->f);
    free(c);
}

int pcache_access(pcache *c, uint32_t id, int *hit)
{
    if (!c || !hit) D2_ERROR(D2_EINVAL, "pcache: null argument");
    if (id >= c->n) D2_ERROR(D2_EINVAL, "pcache: file %u out of range (%u files)", id, c->n);
    c->type->access(c, id, hit);
    if (*hit) c->s.hits++;
    else c->s.misses++;
    return D2_OK;
}

void pcache_stats_get(const pcache *c, pcache_stats *out) { *out = c->s; }
const pcache_policy_type *pcache_policy(const pcache *c) { return c->type; }
int64_t pcache_capacity(const pcache *c) { return c->cap; }

int pcache_file_list(const pcache *c, uint32_t id, int *list)
{
    if (id >= c->n) D2_ERROR(D2_EINVAL, "pcache: file %u out of range (%u files)", id, c->n);
    *list = c->f[id].list;
    return D2_OK;
}

int pcache_list_ids(const pcache *c, int list, uint32_t *ids, uint32_t max, uint32_t *count)
{
    if (list != PCACHE_INACTIVE && list != PCACHE_ACTIVE) D2_ERROR(D2_EINVAL, "pcache: no list %d", list);
    uint32_t k = 0, h = sentinel(c, list);
    for (uint32_t i = c->f[h].next; i != h && k <= c->n; i = c->f[i].next, k++)
        if (k < max) ids[k] = i;
    *count = k;
    return D2_OK;
}

static int check_list(const pcache *c, int list, int64_t *bytes, uint32_t *files)
{
    uint32_t h = sentinel(c, list), prev = h, k = 0;
    int64_t b = 0;
    for (uint32_t i = c->f[h].next; i != h; prev = i, i = c->f[i].next) {
        if (i >= c->n) D2_ERROR(D2_EINTERNAL, "pcache: list %d links to %u (not a file)", list, i);
        if (++k > c->n) D2_ERROR(D2_EINTERNAL, "pcache: list %d has a cycle", list);
        const pcache_file *x = &c->f[i];
        if (x->prev != prev) D2_ERROR(D2_EINTERNAL, "pcache: file %u: prev %u, want %u", i, x->prev, prev);
        if (x->list != list) D2_ERROR(D2_EINTERNAL, "pcache: file %u on list %d says %d", i, list, x->list);
        if (x->has_shadow) D2_ERROR(D2_EINTERNAL, "pcache: resident file %u has a shadow", i);
        if (x->bytes > c->cap) D2_ERROR(D2_EINTERNAL, "pcache: file %u larger than the capacity is resident", i);
        b += x->bytes;
    }
    if (c->f[h].prev != prev) D2_ERROR(D2_EINTERNAL, "pcache: list %d tail %u, want %u", list, c->f[h].prev, prev);
    *bytes = b;
    *files = k;
    return D2_OK;
}

int pcache_check(const pcache *c)
{
    int64_t bi, ba;
    uint32_t ni, na, on = 0;
    D2_TRY(check_list(c, PCACHE_INACTIVE, &bi, &ni));
    D2_TRY(check_list(c, PCACHE_ACTIVE, &ba, &na));
    for (uint32_t i = 0; i < c->n; i++) {
        const pcache_file *x = &c->f[i];
        if (x->list > PCACHE_ACTIVE) D2_ERROR(D2_EINTERNAL, "pcache: file %u: bad list %d", i, x->list);
        if (x->list != PCACHE_ABSENT) on++;
        else if (x->prev != NIL || x->next != NIL) D2_ERROR(D2_EINTERNAL, "pcache: absent file %u is linked", i);
    }
    if (on != ni + na) D2_ERROR(D2_EINTERNAL, "pcache: %u files say resident, lists hold %u", on, ni + na);
    if (bi != c->s.bytes_inactive || ni != c->s.files_inactive)
        D2_ERROR(D2_EINTERNAL, "pcache: inactive list holds %lld bytes in %u files, counters say %lld in %u",
                 (long long)bi, ni, (long long)c->s.bytes_inactive, c->s.files_inactive);
    if (ba != c->s.bytes_active || na != c->s.files_active)
        D2_ERROR(D2_EINTERNAL, "pcache: active list holds %lld bytes in %u files, counters say %lld in %u",
                 (long long)ba, na, (long long)c->s.bytes_active, c->s.files_active);
    if (ba + bi > c->cap)
        D2_ERROR(D2_EINTERNAL, "pcache: %lld bytes resident, capacity %lld", (long long)(ba + bi), (long long)c->cap);
    if (c->type->access == lru_access && na)
        D2_ERROR(D2_EINTERNAL, "pcache: lru policy with %u files on the active list", na);
    /* every inserted file is resident or was evicted once */
    if (c->s.misses - c->s.too_big != c->s.evictions + (int64_t)(ni + na))
        D2_ERROR(D2_EINTERNAL, "pcache: %lld insertions, %lld evictions, %u resident",
                 (long long)(c->s.misses - c->s.too_big), (long long)c->s.evictions, ni + na);
    return D2_OK;
}
