/* stepmemo.c - the step memo (see stepmemo.h). */
#include "sim/stepmemo.h"
#include "core/err.h"
#include "core/units.h"

#include <stdlib.h>
#include <string.h>

#define STEPMEMO_DEFAULT_MB 64 /* default bound, MiB */
#define STEPMEMO_ENTRIES 64    /* keys held at once; the least recently opened unused one goes first */

typedef struct fstep {
    uint32_t *comp;  /* composition of the forward step (ncomp words) */
    size_t ncomp;
    uint32_t done;   /* layers recorded (whole: == layers) */
    double *data;    /* [layers][lsz]: gsum[cells], gsum2[cells], counts packed two per double */
} fstep;

struct stepmemo {
    char *key;
    uint32_t layers, cells;
    size_t lsz;      /* doubles per layer record */
    fstep *fs;       /* [nfs], by forward step */
    uint32_t nfs;
    size_t bytes;    /* bytes this entry holds */
    uint64_t opened; /* tick of the last open */
    int users;       /* runs holding it open */
    uint32_t opens;  /* times opened: the first run of a key records nothing (a
                        process that runs one job, `d2moe simulate`, would pay for
                        a memo never read: ~490 page faults, ~5 ms, on the
                        paper-size run on this project's VM) */
};

static stepmemo *tab[STEPMEMO_ENTRIES];
static size_t total, limit;
static int limit_set;
static uint64_t tick, hit_count;

static size_t bound(void)
{
    if (!limit_set) {
        limit_set = 1;
        /* an unreadable value falls back to the default: the memo never changes results */
        limit = units_env_mib("D2MOE_STEP_MEMO_MB", STEPMEMO_DEFAULT_MB);
    }
    return limit;
}

static void ent_free(stepmemo *m)
{
    for (uint32_t f = 0; f < m->nfs; f++) { free(m->fs[f].data); free(m->fs[f].comp); }
    free(m->fs);
    free(m->key);
    total -= m->bytes;
    free(m);
}

/* Free unused entries, least recently opened first, until `need` more
 * bytes fit (keep: the entry asking).  1 when they fit. */
static int make_room(size_t need, const stepmemo *keep)
{
    while (total + need > bound()) {
        int v = -1;
        for (int i = 0; i < STEPMEMO_ENTRIES; i++)
            if (tab[i] && tab[i] != keep && tab[i]->users == 0 && (v < 0 || tab[i]->opened < tab[v]->opened)) v = i;
        if (v < 0) return 0;
        ent_free(tab[v]);
        tab[v] = NULL;
    }
    return 1;
}

void stepmemo_limit(size_t bytes)
{
    limit_set = 1;
    limit = bytes;
    make_room(0, NULL);
}

size_t stepmemo_bytes(void) { return total; }
uint64_t stepmemo_hits(void) { return hit_count; }

int stepmemo_open(const char *key, uint32_t layers, uint32_t cells, stepmemo **out)
{
    *out = NULL;
    if (bound() == 0 || layers == 0 || cells == 0) return D2_OK;
    int slot = -1;
    for (int i = 0; i < STEPMEMO_ENTRIES; i++)
        if (tab[i] && !strcmp(tab[i]->key, key)) {
            if (tab[i]->layers != layers || tab[i]->cells != cells) return D2_OK; /* another shape: not used */
            tab[i]->users++;
            if (tab[i]->opens < UINT32_MAX) tab[i]->opens++;
            tab[i]->opened = ++tick;
            *out = tab[i];
            return D2_OK;
        }
    for (int i = 0; i < STEPMEMO_ENTRIES && slot < 0; i++)
        if (!tab[i]) slot = i;
    if (slot < 0) { /* full: the least recently opened unused entry goes */
        for (int i = 0; i < STEPMEMO_ENTRIES; i++)
            if (tab[i]->users == 0 && (slot < 0 || tab[i]->opened < tab[slot]->opened)) slot = i;
        if (slot < 0) return D2_OK;
        ent_free(tab[slot]);
        tab[slot] = NULL;
    }
    stepmemo *m = calloc(1, sizeof *m);
    if (!m || !(m->key = strdup(key))) { free(m); D2_ERROR(D2_ENOMEM, "sim: out of memory"); }
    m->layers = layers;
    m->cells = cells;
    m->lsz = 2 * (size_t)cells + ((size_t)cells + 1) / 2;
    m->users = 1;
    m->opens = 1;
    m->opened = ++tick;
    tab[slot] = m;
    *out = m;
    return D2_OK;
}

void stepmemo_close(stepmemo *m)
{
    if (m && m->users > 0) m->users--;
}

static int same_comp(const fstep *s, const uint32_t *comp, size_t n)
{
    return s->comp && s->ncomp == n && !memcmp(s->comp, comp, n * sizeof *comp);
}

int stepmemo_have(const stepmemo *m, uint32_t f, const uint32_t *comp, size_t n)
{
    if (!m || f >= m->nfs || !m->fs[f].data || m->fs[f].done != m->layers || !same_comp(&m->fs[f], comp, n)) return 0;
    hit_count++;
    return 1;
}

void stepmemo_get(const stepmemo *m, uint32_t f, uint32_t l, const uint32_t **count, const double **gsum,
                  const double **gsum2)
{
    const double *d = m->fs[f].data + (size_t)l * m->lsz;
    *gsum = d;
    *gsum2 = d + m->cells;
    *count = (const uint32_t *)(const void *)(d + 2 * (size_t)m->cells);
}

void stepmemo_put(stepmemo *m, uint32_t f, const uint32_t *comp, size_t n, uint32_t l, const uint32_t *count,
                  const double *gsum, const double *gsum2)
{
    if (!m || l >= m->layers || m->opens < 2) return;
    if (f >= m->nfs) {
        if (l != 0) return;
        uint32_t nf = f + 1 > 2 * m->nfs ? f + 1 : 2 * m->nfs;
        if (!make_room((size_t)(nf - m->nfs) * sizeof *m->fs, m)) return;
        fstep *fs = realloc(m->fs, (size_t)nf * sizeof *fs);
        if (!fs) return; /* out of memory: the run goes on without recording */
        memset(fs + m->nfs, 0, (size_t)(nf - m->nfs) * sizeof *fs);
        total += (size_t)(nf - m->nfs) * sizeof *fs;
        m->bytes += (size_t)(nf - m->nfs) * sizeof *fs;
        m->fs = fs;
        m->nfs = nf;
    }
    fstep *s = &m->fs[f];
    if (l == 0) {
        if (s->data && s->done == m->layers) return; /* recorded whole by an earlier run: kept */
        if (!s->data) { /* (a part left by a run that stopped inside the step is recorded over) */
            size_t b = (size_t)m->layers * m->lsz * sizeof(double);
            if (!make_room(b, m) || !(s->data = malloc(b))) return;
            total += b;
            m->bytes += b;
        }
        if (!same_comp(s, comp, n)) {
            total -= s->ncomp * sizeof *comp; /* the old composition goes */
            m->bytes -= s->ncomp * sizeof *comp;
            free(s->comp);
            s->ncomp = 0;
            s->done = 0;
            if (!make_room(n * sizeof *comp, m) || !(s->comp = malloc(n * sizeof *comp))) return;
            memcpy(s->comp, comp, n * sizeof *comp);
            s->ncomp = n;
            total += n * sizeof *comp;
            m->bytes += n * sizeof *comp;
        }
        s->done = 0;
    }
    if (!s->data || !same_comp(s, comp, n) || s->done != l) return; /* not this run's recording */
    double *d = s->data + (size_t)l * m->lsz;
    memcpy(d, gsum, m->cells * sizeof *d);
    memcpy(d + m->cells, gsum2, m->cells * sizeof *d);
    memcpy(d + 2 * (size_t)m->cells, count, m->cells * sizeof *count);
    s->done = l + 1;
}
