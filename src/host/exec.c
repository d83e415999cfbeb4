/* exec.c - real execution of a plan (see exec.h).  Threads: the caller's
 * thread is the I/O queue (pread into buffers of a weight pool, in plan order); one
 * compute coordinator (plus threads-1 helpers that take slices of each
 * item's tokens) runs the compute queue.  All shared state sits under one
 * mutex; the kernels and the reads run outside it.
 *
 * Dataflow of one expert for a token at bit-width level K (SwiGLU): gate and
 * up accumulate level by level (kern_matmul lo = hi = k, incremental), and
 * at the token's last level h = silu(gate) * up goes through down at levels
 * 1..K.  So item k computes gate/up level k for the tokens at >= k and down
 * for the tokens that end at k: the same total work as k items of all three
 * matrices, distributed as the real data dependence requires.
 *
 * What is timed is what a server does per item: the kernels, the SwiGLU
 * epilogue, zeroing a group's accumulators.  The tokens' input activations
 * (drawn from the seed, int8-quantized) and every scratch buffer are made
 * before the timed run: a server gets its inputs from the previous layer
 * and keeps its scratch (docs/log/validation.md, "Harness work out of the
 * items"). */
#define _GNU_SOURCE
#include "host/exec.h"
#include "host/cpupin.h"
#include "host/cpushare.h"
#include "host/hostwatch.h"
#include "host/iobuf.h"
#include "core/err.h"
#include "core/clock.h"
#include "core/vec.h"
#include "host/opjoin.h"
#include "quant/swiglu.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define ALIGN 4096
#define VERIFY_MAX 64
#define EXEC_MAX_LEVELS_POOL 8 /* = KERN_MAX_LEVELS */

static int64_t round_up(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

/* ---- store ---------------------------------------------------------- */

int exec_store_open(exec_store *s, const char *path, uint32_t layers, uint32_t experts, int levels,
                    const kern_shape shape[EXEC_MATRICES], const exec_chunk *chunk)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    if (layers < 1 || experts < 1 || levels < 1 || levels > KERN_MAX_LEVELS)
        D2_ERROR(D2_EINVAL, "%s: bad layout (%u layers, %u experts, %d levels)", path, layers, experts, levels);
    size_t n = (size_t)layers * experts * EXEC_MATRICES * (size_t)levels;
    s->chunk = malloc(n * sizeof *s->chunk);
    if (!s->chunk) D2_ERROR(D2_ENOMEM, "%s: out of memory", path);
    memcpy(s->chunk, chunk, n * sizeof *s->chunk);
    snprintf(s->path, sizeof s->path, "%s", path);
    s->layers = layers;
    s->experts = experts;
    s->levels = levels;
    memcpy(s->shape, shape, sizeof s->shape);
    for (size_t i = 0; i < n; i++)
        if (s->chunk[i].bytes <= 0 || s->chunk[i].off < 0) {
            free(s->chunk);
            s->chunk = NULL;
            D2_ERROR(D2_EFORMAT, "%s: chunk %zu has a bad extent", path, i);
        }
    s->fd = open(path, O_RDONLY | O_DIRECT);
    if (s->fd >= 0) s->direct = 1;
    if (s->fd < 0) s->fd = open(path, O_RDONLY);
    if (s->fd < 0) {
        int e = errno;
        free(s->chunk);
        s->chunk = NULL;
        D2_ERROR(D2_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    /* dirty pages would make the first O_DIRECT reads wait for writeback;
     * clean cached pages would serve buffered reads from memory */
    fdatasync(s->fd);
    posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);
    return D2_OK;
}

void exec_store_close(exec_store *s)
{
    if (s->fd >= 0) close(s->fd);
    free(s->chunk);
    s->fd = -1;
    s->chunk = NULL;
}

const exec_chunk *exec_store_chunk(const exec_store *s, uint32_t layer, uint32_t expert, int matrix, int level)
{
    return &s->chunk[(((size_t)layer * s->experts + expert) * EXEC_MATRICES + (size_t)matrix) * (size_t)s->levels +
                     (size_t)(level - 1)];
}

int64_t exec_store_unit_bytes(const exec_store *s, uint32_t layer, uint32_t expert, int level)
{
    int64_t b = 0;
    for (int m = 0; m < EXEC_MATRICES; m++) b += exec_store_chunk(s, layer, expert, m, level)->bytes;
    return b;
}

/* ---- plan checks and precomputation ---------------------------------- */

static size_t unit_id(const exec_store *s, uint32_t layer, uint32_t expert, uint32_t level)
{
    return ((size_t)layer * s->experts + expert) * (size_t)s->levels + (level - 1);
}

static int op_check(const exec_op *o, const exec_store *s, const char *q, size_t i)
{
    if (o->layer >= s->layers || o->expert >= s->experts || o->level < 1 || (int)o->level > s->levels)
        D2_ERROR(D2_EINVAL, "plan: %s %zu: (layer %u, expert %u, level %u) is outside the model file (%u layers, %u experts, %d levels)",
                 q, i, o->layer, o->expert, o->level, s->layers, s->experts, s->levels);
    return D2_OK;
}

int exec_plan_check(const exec_plan *p, const exec_store *s)
{
    for (size_t i = 0; i < p->n_load; i++) {
        D2_TRY(op_check(&p->load[i], s, "load", i));
        if (i && p->load[i].phase < p->load[i - 1].phase) D2_ERROR(D2_EINVAL, "plan: load %zu: phase goes backwards", i);
    }
    for (size_t i = 0; i < p->n_comp; i++) {
        const exec_op *c = &p->comp[i];
        D2_TRY(op_check(c, s, "compute", i));
        if (i && c->phase < p->comp[i - 1].phase) D2_ERROR(D2_EINVAL, "plan: compute %zu: phase goes backwards", i);
        if (c->tokens < 1 || c->final > c->tokens)
            D2_ERROR(D2_EINVAL, "plan: compute %zu: %u tokens, %u final", i, c->tokens, c->final);
    }
    return D2_OK;
}

/* Derived schedule facts. */
typedef struct sched {
    int64_t *dep_load;     /* [n_comp] loads that must be done first (count), 0 = none */
    size_t *gate;          /* [n_load] computes that must be done before the load starts */
    size_t *free_start;    /* [n_comp + 1] into free_unit */
    size_t *free_unit;     /* units to free after a compute */
    int64_t *unit_bytes;   /* [units] */
    uint32_t *grp;         /* [n_comp] the (phase, expert) group of each compute */
    struct grp_info {
        uint32_t n;                        /* tokens of the group (level 1) */
        uint32_t K;                        /* highest level */
        uint32_t tok[KERN_MAX_LEVELS + 2]; /* tokens at >= level k */
        uint32_t fin[KERN_MAX_LEVELS + 2]; /* tokens ending at level k */
        size_t idx[KERN_MAX_LEVELS + 2];   /* compute index of level k */
    } *gi;
    size_t ngrp;
    size_t *down_start;    /* [n_comp + 1] into down_lvl */
    uint8_t *down_lvl;     /* levels whose ending tokens go through down after a compute */
} sched;

static void sched_free(sched *d)
{
    free(d->dep_load); free(d->gate); free(d->free_start); free(d->free_unit); free(d->unit_bytes);
    free(d->grp); free(d->gi); free(d->down_start); free(d->down_lvl);
}

/* Group the computes by (phase, expert) and find where each level's ending
 * tokens can go through down: after every gate/up level up to theirs is
 * done, i.e. after the last (in compute order) of that group's items 1..j.
 * The simulator may compute a resident higher level before a lower one. */
static int groups_build(const exec_store *s, const exec_plan *p, sched *d)
{
    d->grp = malloc((p->n_comp + 1) * sizeof *d->grp);
    d->gi = calloc(p->n_comp + 1, sizeof *d->gi);
    d->down_start = calloc(p->n_comp + 2, sizeof *d->down_start);
    d->down_lvl = malloc((p->n_comp + 1) * sizeof *d->down_lvl);
    int64_t *cur = malloc(s->experts * sizeof *cur);
    size_t *dpt = malloc((p->n_comp + 1) * sizeof *dpt);
    uint8_t *dlv = malloc((p->n_comp + 1) * sizeof *dlv);
    if (!d->grp || !d->gi || !d->down_start || !d->down_lvl || !cur || !dpt || !dlv) {
        free(cur); free(dpt); free(dlv);
        D2_ERROR(D2_ENOMEM, "plan: out of memory");
    }
    size_t ng = 0, nd = 0;
    uint32_t phase = UINT32_MAX;
    for (size_t c = 0; c < p->n_comp; c++) {
        const exec_op *o = &p->comp[c];
        if (o->phase != phase) {
            phase = o->phase;
            for (uint32_t e = 0; e < s->experts; e++) cur[e] = -1;
        }
        if (cur[o->expert] < 0) cur[o->expert] = (int64_t)ng++;
        size_t g = (size_t)cur[o->expert];
        struct grp_info *G = &d->gi[g];
        if (G->tok[o->level]) {
            free(cur); free(dpt); free(dlv);
            D2_ERROR(D2_EINVAL, "plan: compute %zu: level %u of expert %u computed twice in phase %u", c, o->level, o->expert, o->phase);
        }
        G->tok[o->level] = o->tokens;
        G->fin[o->level] = o->final;
        G->idx[o->level] = c;
        if (o->level > G->K) G->K = o->level;
        d->grp[c] = (uint32_t)g;
    }
    int rc = D2_OK;
    for (size_t g = 0; g < ng && rc == D2_OK; g++) {
        struct grp_info *G = &d->gi[g];
        G->n = G->tok[1];
        size_t last = 0;
        for (uint32_t j = 1; j <= G->K; j++) {
            if (!G->tok[j] || G->tok[j] - G->fin[j] != G->tok[j + 1]) {
                rc = D2_EINVAL;
                d2_err_set("plan: phase %u expert %u: level %u has %u tokens (%u ending there), level %u has %u: not nested",
                           p->comp[G->idx[G->K]].phase, p->comp[G->idx[G->K]].expert, j, G->tok[j], G->fin[j], j + 1,
                           G->tok[j + 1]);
                break;
            }
            if (G->idx[j] > last) last = G->idx[j];
            if (G->fin[j]) { dpt[nd] = last; dlv[nd++] = (uint8_t)j; }
        }
    }
    if (rc == D2_OK) {
        for (size_t i = 0; i < nd; i++) d->down_start[dpt[i] + 1]++;
        for (size_t c = 0; c < p->n_comp; c++) d->down_start[c + 1] += d->down_start[c];
        size_t *pos = malloc((p->n_comp + 1) * sizeof *pos);
        if (!pos) rc = D2_ENOMEM, d2_err_set("plan: out of memory");
        else {
            memcpy(pos, d->down_start, (p->n_comp + 1) * sizeof *pos);
            for (size_t i = 0; i < nd; i++) d->down_lvl[pos[dpt[i]]++] = dlv[i];
            free(pos);
        }
    }
    d->ngrp = ng;
    free(cur); free(dpt); free(dlv);
    return rc;
}

/* A free of unit u after compute c appended to (fu, fc), *nf used, room for
 * *cap_u and *cap_c (core/vec.h: equal unless growing fc failed). */
static int free_push(size_t **fu, size_t **fc, size_t *nf, size_t *cap_u, size_t *cap_c, size_t u, size_t c)
{
    int rc = VEC_RESERVE(*fu, *cap_u, *nf + 1);
    if (rc == D2_OK) rc = VEC_RESERVE(*fc, *cap_c, *nf + 1);
    if (rc != D2_OK) {
        d2_err_prefix("plan: ");
        return rc;
    }
    (*fu)[*nf] = u;
    (*fc)[(*nf)++] = c;
    return D2_OK;
}

static int sched_build(const exec_store *s, const exec_plan *p, sched *d)
{
    size_t units = (size_t)s->layers * s->experts * (size_t)s->levels;
    memset(d, 0, sizeof *d);
    d->dep_load = calloc(p->n_comp + 1, sizeof *d->dep_load);
    d->gate = calloc(p->n_load + 1, sizeof *d->gate);
    d->free_start = calloc(p->n_comp + 1, sizeof *d->free_start);
    d->unit_bytes = calloc(units, sizeof *d->unit_bytes);
    int64_t *last_load = malloc(units * sizeof *last_load);   /* index of the unit's latest load so far */
    int64_t *pending = malloc(units * sizeof *pending);       /* latest compute using it since that load */
    size_t nf = 0, cap_u = 0, cap_c = 0;
    size_t *fu = NULL, *fc = NULL;                            /* unit and compute index of each free (free_push) */
    int rc = D2_OK;
    if (!d->dep_load || !d->gate || !d->free_start || !d->unit_bytes || !last_load || !pending) {
        rc = D2_ENOMEM;
        d2_err_set("plan: out of memory");
        goto out;
    }
    for (size_t u = 0; u < units; u++) {
        last_load[u] = -1;
        pending[u] = -1;
    }
    for (uint32_t l = 0; l < s->layers; l++)
        for (uint32_t e = 0; e < s->experts; e++)
            for (int k = 1; k <= s->levels; k++) d->unit_bytes[unit_id(s, l, e, (uint32_t)k)] = exec_store_unit_bytes(s, l, e, k);
    if ((rc = groups_build(s, p, d))) goto out;
    /* walk both queues phase by phase: loads of a phase, then its computes */
    size_t li = 0, ci = 0;
    while (li < p->n_load || ci < p->n_comp) {
        uint32_t ph = li < p->n_load ? p->load[li].phase : UINT32_MAX;
        if (ci < p->n_comp && p->comp[ci].phase < ph) ph = p->comp[ci].phase;
        for (; li < p->n_load && p->load[li].phase == ph; li++) {
            size_t u = unit_id(s, p->load[li].layer, p->load[li].expert, p->load[li].level);
            if (pending[u] >= 0) { /* the last use before this reload frees it */
                if ((rc = free_push(&fu, &fc, &nf, &cap_u, &cap_c, u, (size_t)pending[u]))) goto out;
                pending[u] = -1;
            }
            last_load[u] = (int64_t)li;
        }
        for (; ci < p->n_comp && p->comp[ci].phase == ph; ci++) {
            const exec_op *c = &p->comp[ci];
            int64_t dep = -1;
            /* units used: its own level (gate/up), and levels 1..j for
             * each level j whose ending tokens go through down here */
            uint32_t top = 0;
            for (size_t q = d->down_start[ci]; q < d->down_start[ci + 1]; q++)
                if (d->down_lvl[q] > top) top = d->down_lvl[q];
            for (uint32_t k = 1; k <= (top > c->level ? top : c->level); k++) {
                if (k != c->level && k > top) continue;
                size_t u = unit_id(s, c->layer, c->expert, k);
                if (last_load[u] < 0) {
                    rc = D2_EINVAL;
                    d2_err_set("plan: compute %zu: level %u of (layer %u, expert %u) is never loaded before it", ci, k,
                               c->layer, c->expert);
                    goto out;
                }
                if (last_load[u] > dep) dep = last_load[u];
                pending[u] = (int64_t)ci;
            }
            d->dep_load[ci] = dep + 1;
        }
    }
    /* units still held after their last use: free them then */
    for (size_t u = 0; u < units; u++)
        if (pending[u] >= 0 && (rc = free_push(&fu, &fc, &nf, &cap_u, &cap_c, u, (size_t)pending[u]))) goto out;
    /* group frees by compute (counting sort) */
    d->free_unit = malloc((nf + 1) * sizeof *d->free_unit);
    if (!d->free_unit) { rc = D2_ENOMEM; d2_err_set("plan: out of memory"); goto out; }
    size_t *cnt = d->free_start;
    for (size_t i = 0; i < nf; i++) cnt[fc[i] + 1]++;
    for (size_t c = 0; c < p->n_comp; c++) cnt[c + 1] += cnt[c];
    size_t *pos = malloc((p->n_comp + 1) * sizeof *pos);
    if (!pos) { rc = D2_ENOMEM; d2_err_set("plan: out of memory"); goto out; }
    memcpy(pos, cnt, (p->n_comp + 1) * sizeof *pos);
    for (size_t i = 0; i < nf; i++) d->free_unit[pos[fc[i]]++] = fu[i];
    free(pos);
    /* gates: a load waits for the computes of earlier phases (and, serial,
     * for every compute that does not need this load or a later one) */
    for (size_t i = 0, c = 0; i < p->n_load; i++) {
        while (c < p->n_comp && p->comp[c].phase < p->load[i].phase) c++;
        size_t g = c;
        if (p->serial) {
            size_t c2 = g;
            while (c2 < p->n_comp && d->dep_load[c2] <= (int64_t)i) c2++;
            g = c2;
        }
        d->gate[i] = g;
    }
out:
    free(last_load); free(pending); free(fu); free(fc);
    if (rc) sched_free(d);
    return rc;
}

/* ---- the run ---------------------------------------------------------- */

typedef struct unit_buf {
    uint8_t *buf;              /* a buffer of the weight pool, NULL when absent */
    int64_t alloc;             /* bytes it needs (the pool's buffer of its level may be larger) */
    int64_t off[EXEC_MATRICES]; /* where each matrix's chunk starts in buf */
} unit_buf;

/* One expert's working state for the (phase, expert) group it computes
 * now.  The arrays are an arena sized for the expert's largest group and
 * allocated (and touched) before the timed run, as a server keeps its
 * scratch; a group only zeroes the part it uses. */
typedef struct tokstate {
    uint32_t phase, n;          /* the group's phase and tokens (level-1 count); n = 0: no group open */
    uint32_t done;              /* tokens finished */
    uint32_t cap;               /* tokens the arena holds */
    const float *x0;            /* token 0's input (hidden floats, the input pool's): for verify */
    float *g, *u, *out, *h;     /* cap x ffn, cap x ffn, cap x hidden, cap x ffn (SwiGLU scratch per token) */
    kern_act **xa;              /* cap: the group's tokens' int8 inputs (pointers into the input pool) */
    kern_act **ha;              /* cap, owned: int8 activations for down */
    int verify_slot;            /* index into verify records, -1 */
} tokstate;

/* Inputs: EXEC_INPUTS token activations drawn from the seed and quantized
 * to int8 before the timed run; token i of a group uses input
 * (mix64(seed, phase, expert) + i) mod EXEC_INPUTS.  A server gets its
 * activations from the previous layer and quantizes a token's once per
 * layer (non-expert work); generating and quantizing them per (expert,
 * group) inside the timed items was harness work the simulator does not
 * model (docs/host.md). */
#define EXEC_INPUTS 256

typedef struct vrec {
    uint32_t layer, expert, level;
    float *x, *out;             /* hidden each */
} vrec;

typedef struct run {
    const exec_store *s;
    const exec_plan *p;
    const exec_opts *o;
    sched d;
    unit_buf *ub;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t loads_done, comps_done;
    uint64_t ev;                /* bumped (atomically, under mu) at every broadcast of cv */
    int64_t held, held_alloc, peak, peak_alloc;
    int comp_blocked;           /* coordinator waits for loads_done >= comp_blocked_on */
    size_t comp_blocked_on;
    int fail;                   /* a thread failed: stop everything */
    int fail_rc;
    char fail_msg[512];
    int64_t t0;
    int64_t *ls, *le, *cs, *ce; /* start/end ns of loads and computes */
    int64_t io_wait_mem;
    int64_t comp_thread_cpu;    /* CPU time of the compute thread over the run, ns */
    int64_t comp_thread_wall;   /* its wall time over the same span, ns */
    /* compute helpers */
    pthread_mutex_t hmu;
    pthread_cond_t hcv, hdone;
    uint64_t gen;               /* item generation handed to helpers */
    int helpers_left;
    int quit;
    size_t cur;                 /* compute index handed to helpers */
    tokstate *cur_ts;
    int nthreads;
    int64_t products;
    tokstate *ts;               /* [experts], the current phase's */
    float *in_x;                /* [EXEC_INPUTS][hidden] input activations */
    kern_act *in_act[EXEC_INPUTS]; /* the same, int8 */
    vrec ver[VERIFY_MAX];
    int nver;
    /* the weight pool: per level, free buffers of that level's largest unit */
    pthread_mutex_t pmu;
    struct pool_level {
        int64_t size;           /* bytes of each buffer */
        void **v;               /* free buffers */
        size_t n, cap;
        uint8_t *arena;         /* the buffers filled before timing, one iobuf (host/iobuf.h); NULL: none */
        size_t arena_bytes;     /* its bytes (what iobuf_alloc was asked for) */
    } pool[EXEC_MAX_LEVELS_POOL];
    int64_t pool_bytes, pool_huge_bytes; /* the arenas' bytes / of them in huge pages (-1: cannot tell) */
    int64_t pool_new;           /* buffers allocated (and zeroed) during the timed run */
} run;

/* Wake the waiters of cv (mu held). */
static void ev_signal(run *R)
{
    __atomic_add_fetch(&R->ev, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&R->cv);
}

/* Wait for the next ev_signal (mu held; held again on return).  Spinning:
 * release mu and poll ev with a pause, so the thread never sleeps. */
static void ev_wait(run *R)
{
    if (R->o->sleep_wait) { pthread_cond_wait(&R->cv, &R->mu); return; }
    uint64_t g = R->ev;
    pthread_mutex_unlock(&R->mu);
    while (__atomic_load_n(&R->ev, __ATOMIC_ACQUIRE) == g) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    pthread_mutex_lock(&R->mu);
}

static void run_fail(run *R, int rc)
{
    pthread_mutex_lock(&R->mu);
    if (!R->fail) {
        R->fail = 1;
        R->fail_rc = rc;
        snprintf(R->fail_msg, sizeof R->fail_msg, "%s", d2_err_msg());
    }
    ev_signal(R);
    pthread_mutex_unlock(&R->mu);
}

static void ts_free(tokstate *t)
{
    for (uint32_t i = 0; t->ha && i < t->cap; i++) kern_act_free(t->ha[i]);
    free(t->g); free(t->u); free(t->out); free(t->h); free(t->xa); free(t->ha);
    memset(t, 0, sizeof *t);
    t->verify_slot = -1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

/* Before the timed run: each expert's arena (its largest group's tokens),
 * the input pool, every page touched. */
static int ts_setup(run *R)
{
    const exec_store *s = R->s;
    const exec_plan *p = R->p;
    const int64_t d = s->shape[0].cols, f = s->shape[0].rows;
    for (size_t ci = 0; ci < p->n_comp; ci++) {
        tokstate *t = &R->ts[p->comp[ci].expert];
        uint32_t n = R->d.gi[R->d.grp[ci]].n;
        if (n > t->cap) t->cap = n;
    }
    for (uint32_t e = 0; e < s->experts; e++) {
        tokstate *t = &R->ts[e];
        if (!t->cap) continue;
        size_t n = t->cap;
        t->g = calloc(n * (size_t)f, sizeof(float));
        t->u = calloc(n * (size_t)f, sizeof(float));
        t->h = calloc(n * (size_t)f, sizeof(float));
        t->out = calloc(n * (size_t)d, sizeof(float));
        t->xa = calloc(n, sizeof *t->xa);
        t->ha = calloc(n, sizeof *t->ha);
        if (!t->g || !t->u || !t->h || !t->out || !t->xa || !t->ha)
            D2_ERROR(D2_ENOMEM, "execute: out of memory for %zu tokens of expert %u", n, e);
        memset(t->g, 1, n * (size_t)f * sizeof(float)); /* touched: calloc may hand out untouched pages */
        memset(t->u, 1, n * (size_t)f * sizeof(float));
        memset(t->h, 1, n * (size_t)f * sizeof(float));
        memset(t->out, 1, n * (size_t)d * sizeof(float));
        for (size_t i = 0; i < n; i++) D2_TRY(kern_act_new(f, s->shape[2].group, &t->ha[i]));
    }
    R->in_x = malloc((size_t)EXEC_INPUTS * (size_t)d * sizeof(float));
    if (!R->in_x) D2_ERROR(D2_ENOMEM, "execute: out of memory for the inputs");
    uint64_t st = mix64(R->o->seed) | 1;
    for (size_t i = 0; i < (size_t)EXEC_INPUTS * (size_t)d; i++) {
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        R->in_x[i] = (float)((double)(st >> 11) * (2.0 / 9007199254740992.0) - 1.0);
    }
    for (int i = 0; i < EXEC_INPUTS; i++) {
        D2_TRY(kern_act_new(d, s->shape[0].group, &R->in_act[i]));
        D2_TRY(kern_act_set(R->in_act[i], R->in_x + (size_t)i * (size_t)d));
    }
    return D2_OK;
}

/* A group opens (timed: what a server does too): its tokens' inputs
 * named, its accumulators zeroed. */
static void ts_open(run *R, tokstate *t, const exec_op *c, uint32_t ntok)
{
    const int64_t d = R->s->shape[0].cols, f = R->s->shape[0].rows;
    t->phase = c->phase;
    t->n = ntok;
    t->done = 0;
    uint64_t base = mix64(R->o->seed ^ ((uint64_t)c->phase << 32) ^ c->expert);
    for (uint32_t i = 0; i < ntok; i++) t->xa[i] = R->in_act[(base + i) % EXEC_INPUTS];
    t->x0 = R->in_x + (size_t)(base % EXEC_INPUTS) * (size_t)d;
    memset(t->g, 0, (size_t)ntok * (size_t)f * sizeof(float));
    memset(t->u, 0, (size_t)ntok * (size_t)f * sizeof(float));
    memset(t->out, 0, (size_t)ntok * (size_t)d * sizeof(float));
}

static void mat_view(run *R, uint32_t layer, uint32_t expert, int matrix, uint32_t levels, kern_mat *m)
{
    memset(m, 0, sizeof *m);
    m->shape = R->s->shape[matrix];
    m->levels = (int)levels;
    for (uint32_t k = 1; k <= levels; k++) { /* a level not held is never read (lo = hi = k for gate/up) */
        unit_buf *u = &R->ub[unit_id(R->s, layer, expert, k)];
        m->chunk[k - 1] = u->buf ? u->buf + u->off[matrix] : NULL;
    }
}

/* The part of compute ci for the group's tokens [a, b): gate/up level k
 * for the tokens at >= k, then down (levels 1..j) for the tokens ending at
 * each level j that becomes complete with this compute. */
static int comp_slice(run *R, size_t ci, tokstate *t, uint32_t a, uint32_t b)
{
    if (a >= b) return D2_OK;
    const exec_op *c = &R->p->comp[ci];
    const exec_store *s = R->s;
    const struct grp_info *G = &R->d.gi[R->d.grp[ci]];
    int64_t d = s->shape[0].cols, f = s->shape[0].rows;
    uint32_t gb = b < c->tokens ? b : c->tokens;
    if (a < gb) {
        kern_mat mg, mu;
        mat_view(R, c->layer, c->expert, 0, c->level, &mg);
        mat_view(R, c->layer, c->expert, 1, c->level, &mu);
        kern_matmul(&mg, (int)c->level, (int)c->level, t->xa + a, gb - a, t->g + (size_t)a * (size_t)f);
        kern_matmul(&mu, (int)c->level, (int)c->level, t->xa + a, gb - a, t->u + (size_t)a * (size_t)f);
    }
    for (size_t q = R->d.down_start[ci]; q < R->d.down_start[ci + 1]; q++) {
        uint32_t j = R->d.down_lvl[q];
        uint32_t fa = G->tok[j] - G->fin[j], fb = G->tok[j];
        if (fa < a) fa = a;
        if (fb > b) fb = b;
        if (fa >= fb) continue;
        for (uint32_t i = fa; i < fb; i++)
            D2_TRY(swiglu_token(t->g + (size_t)i * (size_t)f, t->u + (size_t)i * (size_t)f, f, t->h + (size_t)i * (size_t)f,
                                t->ha[i]));
        kern_mat md;
        mat_view(R, c->layer, c->expert, 2, j, &md);
        kern_matmul(&md, 1, (int)j, t->ha + fa, fb - fa, t->out + (size_t)fa * (size_t)d);
    }
    return D2_OK;
}

static void *helper_main(void *arg)
{
    run *R = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    free(arg);
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&R->hmu);
        while (R->gen == seen && !R->quit) pthread_cond_wait(&R->hcv, &R->hmu);
        if (R->quit) { pthread_mutex_unlock(&R->hmu); return NULL; }
        seen = R->gen;
        size_t ci = R->cur;
        tokstate *t = R->cur_ts;
        pthread_mutex_unlock(&R->hmu);
        uint32_t n = t->n, a = (uint32_t)((uint64_t)n * (uint64_t)id / (uint64_t)R->nthreads),
                 b = (uint32_t)((uint64_t)n * (uint64_t)(id + 1) / (uint64_t)R->nthreads);
        int rc = comp_slice(R, ci, t, a, b);
        if (rc) run_fail(R, rc);
        pthread_mutex_lock(&R->hmu);
        if (--R->helpers_left == 0) pthread_cond_signal(&R->hdone);
        pthread_mutex_unlock(&R->hmu);
    }
}

static int comp_item(run *R, size_t ci)
{
    const exec_op *c = &R->p->comp[ci];
    const struct grp_info *G = &R->d.gi[R->d.grp[ci]];
    tokstate *t = &R->ts[c->expert];
    if (t->n == 0 || t->phase != c->phase) {
        if (G->n > t->cap) D2_ERROR(D2_EINTERNAL, "execute: a group of %u tokens for an arena of %u", G->n, t->cap);
        ts_open(R, t, c, G->n);
        t->verify_slot = -1;
        if (R->o->verify && R->nver < VERIFY_MAX) t->verify_slot = R->nver++;
    }
    if (R->nthreads > 1) {
        pthread_mutex_lock(&R->hmu);
        R->cur = ci;
        R->cur_ts = t;
        R->helpers_left = R->nthreads - 1;
        R->gen++;
        pthread_cond_broadcast(&R->hcv);
        pthread_mutex_unlock(&R->hmu);
    }
    uint32_t b0 = (uint32_t)((uint64_t)t->n / (uint64_t)R->nthreads);
    int rc = comp_slice(R, ci, t, 0, R->nthreads > 1 ? b0 : t->n);
    if (R->nthreads > 1) {
        pthread_mutex_lock(&R->hmu);
        while (R->helpers_left > 0) pthread_cond_wait(&R->hdone, &R->hmu);
        pthread_mutex_unlock(&R->hmu);
    }
    D2_TRY(rc);
    R->products += (int64_t)c->tokens * 2;
    for (size_t q = R->d.down_start[ci]; q < R->d.down_start[ci + 1]; q++) {
        t->done += G->fin[R->d.down_lvl[q]];
        R->products += (int64_t)G->fin[R->d.down_lvl[q]] * R->d.down_lvl[q];
    }
    if (t->done >= t->n) { /* every token finished: keep a sample, release */
        if (t->verify_slot >= 0) {
            vrec *v = &R->ver[t->verify_slot];
            int64_t d = R->s->shape[0].cols;
            v->layer = c->layer;
            v->expert = c->expert;
            v->level = G->K; /* token 0 is at the group's highest level */
            memcpy(v->x, t->x0, (size_t)d * sizeof(float)); /* the buffers were allocated before the run */
            memcpy(v->out, t->out, (size_t)d * sizeof(float));
        }
        t->n = 0; /* closed; the arena stays */
    }
    return D2_OK;
}

/* Where each chunk of a unit goes in its buffer (off[m], at the chunk's
 * first byte) and the bytes the buffer needs; lo/len: the file extent read. */
static int64_t unit_layout(const exec_store *s, uint32_t layer, uint32_t expert, uint32_t level, int64_t off[],
                           int64_t lo[], int64_t len[])
{
    int64_t pos = 0;
    for (int m = 0; m < EXEC_MATRICES; m++) {
        const exec_chunk *ch = exec_store_chunk(s, layer, expert, m, (int)level);
        lo[m] = s->direct ? ch->off / ALIGN * ALIGN : ch->off;
        len[m] = s->direct ? round_up(ch->off + ch->bytes, ALIGN) - lo[m] : ch->bytes;
        off[m] = pos + (ch->off - lo[m]);
        pos += round_up(len[m], s->direct ? ALIGN : 64);
    }
    return pos;
}

/* The weight pool.  A server keeps its expert buffers in a pool of memory
 * it has touched; so does execute: a unit is read into a free buffer of its
 * level and given back when freed, and a buffer new to the pool is zeroed
 * by the CPU before the first read lands in it.  (Measured on this VM: a
 * kernel pass over pages filled only by O_DIRECT DMA, never touched by the
 * CPU, is much slower; with glibc's heap and a prefault the 100M points
 * still grew past the prefaulted memory, docs/host.md.)  With
 * exec_opts.prefault the pool is filled before timing with as many buffers
 * per level as the budget can hold at once (at most the level's units). */
static int pool_init(run *R, int fill)
{
    const exec_store *s = R->s;
    if (s->levels < 1 || s->levels > EXEC_MAX_LEVELS_POOL)
        D2_ERROR(D2_ERANGE, "execute: %d levels, 1..%d", s->levels, EXEC_MAX_LEVELS_POOL);
    const uint32_t K = (uint32_t)s->levels, NL = (uint32_t)s->layers, NE = (uint32_t)s->experts;
    int64_t off[EXEC_MATRICES], lo[EXEC_MATRICES], len[EXEC_MATRICES], minb[EXEC_MAX_LEVELS_POOL];
    size_t units[EXEC_MAX_LEVELS_POOL];
    for (uint32_t k = 0; k < K; k++) { minb[k] = INT64_MAX; units[k] = 0; }
    for (uint32_t l = 0; l < NL; l++)
        for (uint32_t e = 0; e < NE; e++)
            for (uint32_t k = 1; k <= K; k++) {
                int64_t a = unit_layout(s, l, e, k, off, lo, len);
                if (a > R->pool[k - 1].size) R->pool[k - 1].size = a;
                int64_t b = R->d.unit_bytes[unit_id(s, l, e, k)];
                if (b < minb[k - 1]) minb[k - 1] = b;
                units[k - 1]++;
            }
    for (uint32_t k = 0; fill && k < K; k++) {
        size_t want = minb[k] > 0 ? (size_t)(R->o->budget / minb[k]) : units[k];
        if (want > units[k]) want = units[k];
        struct pool_level *P = &R->pool[k];
        P->v = calloc(want ? want : 1, sizeof *P->v);
        if (!P->v) D2_ERROR(D2_ENOMEM, "execute: out of memory for the weight pool");
        P->cap = want ? want : 1;
        if (!want) continue;
        /* one arena of the kind calibrate reads into (host/iobuf.h), the
         * buffers 4 KiB apart in it */
        const size_t slot = (size_t)round_up(P->size, ALIGN);
        if (want > SIZE_MAX / slot || iobuf_alloc(want * slot, (void **)&P->arena) != D2_OK)
            D2_ERROR(D2_ENOMEM, "execute: cannot allocate the weight pool (%zu buffers of %lld bytes for level %u)", want,
                     (long long)P->size, k + 1);
        P->arena_bytes = want * slot;
        int64_t huge;
        if (iobuf_huge_bytes(P->arena, P->arena_bytes, &huge) != D2_OK) R->pool_huge_bytes = -1;
        else if (R->pool_huge_bytes >= 0) R->pool_huge_bytes += huge;
        R->pool_bytes += (int64_t)P->arena_bytes;
        for (size_t i = 0; i < want; i++) P->v[P->n++] = P->arena + i * slot;
    }
    return D2_OK;
}

/* Free a buffer of `level` that is not going back to the pool: the
 * arena's stay until pool_free. */
static void pool_release(run *R, uint32_t level, void *b)
{
    const struct pool_level *P = &R->pool[level - 1];
    if (!b || (P->arena && (uint8_t *)b >= P->arena && (uint8_t *)b < P->arena + P->arena_bytes)) return;
    iobuf_free(b, (size_t)P->size);
}

static void pool_free(run *R)
{
    for (int k = 0; k < EXEC_MAX_LEVELS_POOL; k++) {
        for (size_t i = 0; i < R->pool[k].n; i++) pool_release(R, (uint32_t)k + 1, R->pool[k].v[i]);
        free(R->pool[k].v);
        iobuf_free(R->pool[k].arena, R->pool[k].arena_bytes);
    }
}

/* A buffer for a unit of `level`: a free one, or a new one zeroed by the CPU. */
static int pool_get(run *R, uint32_t level, uint8_t **out)
{
    struct pool_level *P = &R->pool[level - 1];
    void *b = NULL;
    pthread_mutex_lock(&R->pmu);
    if (P->n) b = P->v[--P->n];
    pthread_mutex_unlock(&R->pmu);
    if (!b) { /* zeroed by iobuf_alloc */
        if (iobuf_alloc((size_t)P->size, &b) != D2_OK)
            D2_ERROR(D2_ENOMEM, "execute: cannot allocate %lld bytes", (long long)P->size);
        __atomic_add_fetch(&R->pool_new, 1, __ATOMIC_RELAXED);
    }
    *out = b;
    return D2_OK;
}

/* Give a unit's buffer back to the pool (freed if the list cannot grow). */
static void pool_put(run *R, uint32_t level, uint8_t *b)
{
    struct pool_level *P = &R->pool[level - 1];
    pthread_mutex_lock(&R->pmu);
    if (VEC_RESERVE(P->v, P->cap, P->n + 1) == D2_OK) { P->v[P->n++] = b; b = NULL; }
    pthread_mutex_unlock(&R->pmu);
    pool_release(R, level, b);
}

static void *comp_main(void *arg)
{
    run *R = arg;
    if (cpupin_self(R->o->compute_cpu, NULL) != D2_OK) { /* checked before the run; a failure here is the OS's */
        run_fail(R, D2_EIO);
        return NULL;
    }
    const exec_plan *p = R->p;
    /* The thread's CPU time is read at its start and end only: on this
     * project's VM CLOCK_THREAD_CPUTIME_ID is a system call (~1.3 us), and
     * read around every item it was most of the 3.2-3.6 us between two
     * computes (docs/log/validation.md, "The hand-off was execute's own
     * clock reads"). */
    const int64_t cpu0 = clock_thread_cpu_ns(), wall0 = clock_mono_ns();
    for (size_t i = 0; i < p->n_comp; i++) {
        pthread_mutex_lock(&R->mu);
        while (!R->fail && R->loads_done < (size_t)R->d.dep_load[i]) {
            R->comp_blocked = 1;
            R->comp_blocked_on = (size_t)R->d.dep_load[i];
            ev_signal(R);
            ev_wait(R);
        }
        R->comp_blocked = 0;
        int stop = R->fail;
        pthread_mutex_unlock(&R->mu);
        if (stop) break;
        R->cs[i] = clock_mono_ns() - R->t0;
        int rc = comp_item(R, i);
        R->ce[i] = clock_mono_ns() - R->t0;
        if (rc) { run_fail(R, rc); break; }
        pthread_mutex_lock(&R->mu);
        for (size_t k = R->d.free_start[i]; k < R->d.free_start[i + 1]; k++) {
            unit_buf *u = &R->ub[R->d.free_unit[k]];
            if (u->buf) {
                pool_put(R, (uint32_t)(R->d.free_unit[k] % R->s->levels) + 1, u->buf);
                u->buf = NULL;
                R->held -= R->d.unit_bytes[R->d.free_unit[k]];
                R->held_alloc -= u->alloc;
            }
        }
        R->comps_done = i + 1;
        ev_signal(R);
        pthread_mutex_unlock(&R->mu);
    }
    R->comp_thread_cpu = clock_thread_cpu_ns() - cpu0; /* read by the caller after pthread_join */
    R->comp_thread_wall = clock_mono_ns() - wall0;
    return NULL;
}

/* Read the unit's three chunks into one buffer of the weight pool.  O_DIRECT: each
 * chunk is read as the 4 KiB-aligned extent around it (at most 8 KiB more,
 * counted in peak_alloc_bytes); otherwise exactly, then DONTNEED. */
static int load_unit(run *R, const exec_op *op, unit_buf *u)
{
    const exec_store *s = R->s;
    int64_t lo[EXEC_MATRICES], len[EXEC_MATRICES];
    u->alloc = unit_layout(s, op->layer, op->expert, op->level, u->off, lo, len);
    D2_TRY(pool_get(R, op->level, &u->buf));
    for (int m = 0; m < EXEC_MATRICES; m++) {
        const exec_chunk *ch = exec_store_chunk(s, op->layer, op->expert, m, (int)op->level);
        uint8_t *dst = u->buf + u->off[m] - (ch->off - lo[m]);
        int64_t need = (ch->off - lo[m]) + ch->bytes, done = 0;
        while (done < need) {
            ssize_t n = pread(s->fd, dst + done, (size_t)(len[m] - done), lo[m] + done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = n < 0 ? errno : 0;
                pool_put(R, op->level, u->buf);
                u->buf = NULL;
                if (!e) D2_ERROR(D2_EFORMAT, "%s: file ends inside the chunk at offset %lld", s->path, (long long)ch->off);
                D2_ERROR(D2_EIO, "%s: read at offset %lld: %s", s->path, (long long)(lo[m] + done), strerror(e));
            }
            done += n;
        }
        if (!s->direct) posix_fadvise(s->fd, ch->off, ch->bytes, POSIX_FADV_DONTNEED);
    }
    return D2_OK;
}

static int io_loop(run *R)
{
    const exec_plan *p = R->p;
    for (size_t i = 0; i < p->n_load; i++) {
        const exec_op *op = &p->load[i];
        size_t uid = unit_id(R->s, op->layer, op->expert, op->level);
        int64_t need = R->d.unit_bytes[uid];
        if (need > R->o->budget)
            D2_ERROR(D2_ERANGE, "execute: level %u of (layer %u, expert %u) is %lld bytes, more than the budget %lld",
                     op->level, op->layer, op->expert, (long long)need, (long long)R->o->budget);
        pthread_mutex_lock(&R->mu);
        while (!R->fail && R->comps_done < R->d.gate[i]) ev_wait(R);
        if (R->ub[uid].buf) { /* loaded before and never used since: replace it */
            pool_put(R, op->level, R->ub[uid].buf);
            R->ub[uid].buf = NULL;
            R->held -= need;
            R->held_alloc -= R->ub[uid].alloc;
        }
        int64_t w0 = clock_mono_ns();
        while (!R->fail && R->held + need > R->o->budget) {
            /* room comes only from computes; if none can run, the plan needs more than the budget */
            if (R->comps_done == p->n_comp || (R->comp_blocked && R->comp_blocked_on > i)) {
                pthread_mutex_unlock(&R->mu);
                D2_ERROR(D2_ERANGE, "execute: load %zu (layer %u, expert %u, level %u) needs %lld bytes but %lld of "
                                    "the %lld-byte budget are held by units still needed",
                         i, op->layer, op->expert, op->level, (long long)need, (long long)R->held, (long long)R->o->budget);
            }
            ev_wait(R);
        }
        R->io_wait_mem += clock_mono_ns() - w0;
        if (R->fail) { pthread_mutex_unlock(&R->mu); return D2_OK; }
        R->held += need; /* reserved before the allocation exists: never above budget */
        pthread_mutex_unlock(&R->mu);

        R->ls[i] = clock_mono_ns() - R->t0;
        unit_buf u = {0};
        int rc = load_unit(R, op, &u);
        R->le[i] = clock_mono_ns() - R->t0;
        pthread_mutex_lock(&R->mu);
        if (rc) {
            R->held -= need;
            pthread_mutex_unlock(&R->mu);
            return rc;
        }
        R->ub[uid] = u;
        R->held_alloc += u.alloc;
        if (R->held > R->peak) R->peak = R->held;
        if (R->held_alloc > R->peak_alloc) R->peak_alloc = R->held_alloc;
        if (R->held > R->o->budget) { /* cannot happen: the wait above */
            pthread_mutex_unlock(&R->mu);
            D2_ERROR(D2_EINTERNAL, "execute: %lld expert bytes held, above the budget %lld", (long long)R->held,
                     (long long)R->o->budget);
        }
        R->loads_done = i + 1;
        ev_signal(R);
        pthread_mutex_unlock(&R->mu);
    }
    return D2_OK;
}

/* After the run, untimed: recompute each sampled token in one shot. */
static int verify(run *R, exec_result *r)
{
    const exec_store *s = R->s;
    int64_t d = s->shape[0].cols, f = s->shape[0].rows;
    kern_act *xa = NULL, *ha = NULL;
    float *g = malloc((size_t)f * sizeof *g), *u = malloc((size_t)f * sizeof *u), *h = malloc((size_t)f * sizeof *h);
    float *y = malloc((size_t)d * sizeof *y);
    double *gd = malloc((size_t)f * sizeof *gd), *ud = malloc((size_t)f * sizeof *ud), *yd = malloc((size_t)d * sizeof *yd);
    float *hd = malloc((size_t)f * sizeof *hd);
    int rc = D2_OK;
    if (!g || !u || !h || !y || !gd || !ud || !yd || !hd || kern_act_new(d, s->shape[0].group, &xa) ||
        kern_act_new(f, s->shape[2].group, &ha)) {
        rc = D2_ENOMEM;
        d2_err_set("execute: out of memory verifying");
        goto out;
    }
    for (int v = 0; v < R->nver && rc == D2_OK; v++) {
        vrec *V = &R->ver[v];
        if (!V->x) continue;
        /* the sampled token is token 0: the highest level of its (phase, expert) */
        uint32_t K = V->level;
        unit_buf tmp[KERN_MAX_LEVELS];
        memset(tmp, 0, sizeof tmp);
        kern_mat m[EXEC_MATRICES];
        for (uint32_t k = 1; k <= K && rc == D2_OK; k++) {
            exec_op op = {0, V->layer, V->expert, k, 0, 0};
            rc = load_unit(R, &op, &tmp[k - 1]);
        }
        if (rc == D2_OK) {
            for (int mi = 0; mi < EXEC_MATRICES; mi++) {
                memset(&m[mi], 0, sizeof m[mi]);
                m[mi].shape = s->shape[mi];
                m[mi].levels = (int)K;
                for (uint32_t k = 0; k < K; k++) m[mi].chunk[k] = tmp[k].buf + tmp[k].off[mi];
            }
            /* one shot, levels 1..K, same kernels */
            rc = kern_act_set(xa, V->x);
            memset(g, 0, (size_t)f * sizeof *g);
            memset(u, 0, (size_t)f * sizeof *u);
            memset(y, 0, (size_t)d * sizeof *y);
            if (rc == D2_OK) {
                kern_matvec(&m[0], 1, (int)K, xa, g);
                kern_matvec(&m[1], 1, (int)K, xa, u);
                rc = swiglu_token(g, u, f, h, ha);
            }
            if (rc == D2_OK) {
                kern_matvec(&m[2], 1, (int)K, ha, y);
                double num = 0, den = 0;
                for (int64_t i = 0; i < d; i++) {
                    num = fmax(num, fabs((double)V->out[i] - y[i]));
                    den = fmax(den, fabs((double)y[i]));
                }
                double rel = den > 0 ? num / den : num;
                if (rel > r->verify_max_rel) r->verify_max_rel = rel;
                /* double reference with float activations (no int8) */
                rc = kern_matvec_ref(&m[0], 1, (int)K, V->x, gd);
                if (rc == D2_OK) rc = kern_matvec_ref(&m[1], 1, (int)K, V->x, ud);
                if (rc == D2_OK) {
                    for (int64_t i = 0; i < f; i++) hd[i] = (float)(gd[i] / (1.0 + exp(-gd[i])) * ud[i]);
                    rc = kern_matvec_ref(&m[2], 1, (int)K, hd, yd);
                }
                if (rc == D2_OK) {
                    num = den = 0;
                    for (int64_t i = 0; i < d; i++) {
                        num = fmax(num, fabs((double)V->out[i] - yd[i]));
                        den = fmax(den, fabs(yd[i]));
                    }
                    rel = den > 0 ? num / den : num;
                    if (rel > r->verify_max_rel_ref) r->verify_max_rel_ref = rel;
                    r->verified++;
                }
            }
        }
        for (uint32_t k = 0; k < K; k++)
            if (tmp[k].buf) pool_put(R, k + 1, tmp[k].buf);
    }
out:
    kern_act_free(xa); kern_act_free(ha);
    free(g); free(u); free(h); free(y); free(gd); free(ud); free(yd); free(hd);
    return rc;
}

static int record_ops(const run *R, int64_t first, const exec_opts *o)
{
    const exec_plan *p = R->p;
    uint32_t L = R->s->layers ? R->s->layers : 1;
    opjoin_tl *tl = NULL;
    D2_TRY(opjoin_tl_new(&tl));
    int rc = D2_OK;
    size_t i = 0, j = 0;
    while (rc == D2_OK && (i < p->n_load || j < p->n_comp)) {
        uint32_t ph = i < p->n_load && (j == p->n_comp || p->load[i].phase <= p->comp[j].phase) ? p->load[i].phase
                                                                                                 : p->comp[j].phase;
        int64_t t = INT64_MAX;
        size_t i1 = i, j1 = j;
        for (; i1 < p->n_load && p->load[i1].phase == ph; i1++) t = R->ls[i1] < t ? R->ls[i1] : t;
        for (; j1 < p->n_comp && p->comp[j1].phase == ph; j1++) t = R->cs[j1] < t ? R->cs[j1] : t;
        opjoin_op ne = {.kind = OPJOIN_NONEXPERT, .step = (int32_t)(ph / L), .layer = (int32_t)(ph % L), .expert = -1,
                        .start_ns = t - first, .end_ns = t - first};
        rc = opjoin_tl_add(tl, &ne);
        for (; rc == D2_OK && i < i1; i++) {
            const exec_op *x = &p->load[i];
            opjoin_op op = {OPJOIN_LOAD, (int32_t)(ph / L), (int32_t)x->layer, (int32_t)x->expert, (int32_t)x->level,
                            (int32_t)x->tokens, R->ls[i] - first, R->le[i] - first};
            rc = opjoin_tl_add(tl, &op);
        }
        for (; rc == D2_OK && j < j1; j++) {
            const exec_op *x = &p->comp[j];
            opjoin_op op = {OPJOIN_COMPUTE, (int32_t)(ph / L), (int32_t)x->layer, (int32_t)x->expert, (int32_t)x->level,
                            (int32_t)x->tokens, R->cs[j] - first, R->ce[j] - first};
            rc = opjoin_tl_add(tl, &op);
        }
    }
    if (rc == D2_OK && o->timeline && opjoin_tl_write_csv(tl, o->timeline) != D2_OK) {
        rc = D2_EIO;
        d2_err_set("execute: cannot write the real timeline");
    }
    for (size_t k = 0; rc == D2_OK && o->ops && k < opjoin_tl_size(tl); k++) rc = opjoin_tl_add(o->ops, opjoin_tl_get(tl, k));
    opjoin_tl_free(tl);
    return rc;
}

int exec_run(const exec_store *s, const exec_plan *p, const exec_opts *o, exec_result *r)
{
    memset(r, 0, sizeof *r);
    if (o->threads < 1 || o->threads > 64) D2_ERROR(D2_EINVAL, "execute: threads must be 1..64");
    if (o->budget < 1) D2_ERROR(D2_EINVAL, "execute: budget must be > 0");
    if (s->shape[0].rows != s->shape[1].rows || s->shape[0].cols != s->shape[1].cols ||
        s->shape[2].cols != s->shape[0].rows || s->shape[2].rows != s->shape[0].cols)
        D2_ERROR(D2_EINVAL, "%s: matrices are not gate/up (ffn x hidden) and down (hidden x ffn)", s->path);
    D2_TRY(exec_plan_check(p, s));
    D2_TRY(cpupin_check(o->compute_cpu, "execute: compute CPU"));
    D2_TRY(cpupin_check(o->io_cpu, "execute: I/O CPU"));
    run *R = calloc(1, sizeof *R);
    if (!R) D2_ERROR(D2_ENOMEM, "execute: out of memory");
    R->s = s;
    R->p = p;
    R->o = o;
    R->nthreads = o->threads;
    hostwatch *hw = NULL;
    int rc = sched_build(s, p, &R->d);
    if (rc) { free(R); return rc; }
    size_t units = (size_t)s->layers * s->experts * (size_t)s->levels;
    R->ub = calloc(units, sizeof *R->ub);
    R->ts = calloc(s->experts, sizeof *R->ts);
    R->ls = calloc(p->n_load + 1, sizeof(int64_t));
    R->le = calloc(p->n_load + 1, sizeof(int64_t));
    R->cs = calloc(p->n_comp + 1, sizeof(int64_t));
    R->ce = calloc(p->n_comp + 1, sizeof(int64_t));
    if (!R->ub || !R->ts || !R->ls || !R->le || !R->cs || !R->ce) {
        rc = D2_ENOMEM;
        d2_err_set("execute: out of memory");
        goto out;
    }
    for (uint32_t e = 0; e < s->experts; e++) R->ts[e].verify_slot = -1;
    pthread_mutex_init(&R->mu, NULL);
    pthread_cond_init(&R->cv, NULL);
    pthread_mutex_init(&R->hmu, NULL);
    pthread_cond_init(&R->hcv, NULL);
    pthread_cond_init(&R->hdone, NULL);
    pthread_mutex_init(&R->pmu, NULL);
    if ((rc = pool_init(R, o->prefault))) goto out;
    if ((rc = ts_setup(R))) goto out;
    for (int v = 0; o->verify && v < VERIFY_MAX; v++) {
        const int64_t d = s->shape[0].cols;
        R->ver[v].x = malloc((size_t)d * sizeof(float));
        R->ver[v].out = malloc((size_t)d * sizeof(float));
        if (!R->ver[v].x || !R->ver[v].out) {
            rc = D2_ENOMEM;
            d2_err_set("execute: out of memory");
            goto out;
        }
    }
    if (o->host_watch) {
        if (o->compute_cpu == CPUPIN_NONE || o->io_cpu == CPUPIN_NONE || o->compute_cpu == o->io_cpu)
            snprintf(r->host_watch_note, sizeof r->host_watch_note, "not measured: the compute and I/O threads are not pinned to two CPUs");
        else {
            int cpus[2] = {o->compute_cpu, o->io_cpu};
            int wrc = hostwatch_start(cpus, 2, &hw);
            if (wrc == D2_ENOMEM) { rc = wrc; goto out; }
            if (wrc) snprintf(r->host_watch_note, sizeof r->host_watch_note, "not measured: %s", d2_err_msg());
        }
    }
    pthread_t helpers[64], ct;
    int nh = 0;
    for (int i = 1; i < o->threads; i++) {
        void **a = malloc(2 * sizeof *a);
        if (!a) break;
        a[0] = R;
        a[1] = (void *)(intptr_t)i;
        if (pthread_create(&helpers[nh], NULL, helper_main, a) != 0) { free(a); break; }
        nh++;
    }
    if (nh != o->threads - 1) R->nthreads = nh + 1; /* fewer helpers than asked: the split adapts */
    /* the others' share of the two CPUs (host/cpushare.h): their busy time
     * over the span less this run's threads there (the compute thread on
     * one, this thread's I/O loop and each CPU's watcher) */
    const int pair[2] = {o->compute_cpu, o->io_cpu};
    int64_t busy0[2], busy1[2], io_cpu0 = 0, io_cpu_ns = 0;
    const int others = !nh && o->compute_cpu != CPUPIN_NONE && o->io_cpu != CPUPIN_NONE && o->compute_cpu != o->io_cpu &&
                       cpushare_read(pair, 2, busy0) == D2_OK;
    R->t0 = clock_mono_ns();
    if (pthread_create(&ct, NULL, comp_main, R) != 0) {
        rc = D2_EIO;
        d2_err_set("execute: cannot start the compute thread");
    } else {
        cpupin_saved io_old;
        int io_rc = cpupin_self(o->io_cpu, &io_old);
        io_cpu0 = clock_thread_cpu_ns();
        if (io_rc == D2_OK) io_rc = io_loop(R);
        io_cpu_ns = clock_thread_cpu_ns() - io_cpu0;
        cpupin_restore(&io_old);
        if (io_rc) run_fail(R, io_rc);
        pthread_join(ct, NULL);
    }
    int64_t t_end = clock_mono_ns() - R->t0;
    const int others_read = others && cpushare_read(pair, 2, busy1) == D2_OK;
    hostwatch_stop(hw);
    pthread_mutex_lock(&R->hmu);
    R->quit = 1;
    pthread_cond_broadcast(&R->hcv);
    pthread_mutex_unlock(&R->hmu);
    for (int i = 0; i < nh; i++) pthread_join(helpers[i], NULL);
    if (rc == D2_OK && R->fail) {
        rc = R->fail_rc;
        d2_err_set("%s", R->fail_msg);
    }
    if (rc == D2_OK) {
        int64_t first = p->n_load ? R->ls[0] : (p->n_comp ? R->cs[0] : 0), last = 0;
        for (size_t i = 0; i < p->n_load; i++) {
            r->io_busy_ns += R->le[i] - R->ls[i];
            if (R->le[i] > last) last = R->le[i];
            if (R->ls[i] < first) first = R->ls[i];
        }
        for (size_t i = 0; i < p->n_comp; i++) {
            r->comp_busy_ns += R->ce[i] - R->cs[i];
            if (R->ce[i] > last) last = R->ce[i];
            if (R->cs[i] < first) first = R->cs[i];
        }
        (void)t_end;
        r->makespan_ns = last - first;
        r->comp_idle_ns = r->makespan_ns - r->comp_busy_ns;
        r->comp_thread_cpu_ns = R->comp_thread_cpu;
        r->comp_thread_wall_ns = R->comp_thread_wall;
        r->io_wait_mem_ns = R->io_wait_mem;
        r->loads = (int64_t)p->n_load;
        r->levels = s->levels;
        r->computes = (int64_t)p->n_comp;
        for (size_t i = 0; i < p->n_load; i++)
            r->bytes_read += R->d.unit_bytes[unit_id(s, p->load[i].layer, p->load[i].expert, p->load[i].level)];
        r->peak_expert_bytes = R->peak;
        r->peak_alloc_bytes = R->peak_alloc;
        r->pool_new_buffers = R->pool_new;
        r->pool_bytes = R->pool_bytes;
        r->pool_huge_bytes = R->pool_huge_bytes;
        r->token_products = R->products;
        snprintf(r->io_method, sizeof r->io_method, "%s", s->direct ? "O_DIRECT" : "POSIX_FADV_DONTNEED");
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) r->peak_rss_bytes = (int64_t)ru.ru_maxrss * 1024;
        if (hw) {
            hostwatch_tally t[2];
            for (int k = 0; k < 2 && rc == D2_OK; k++) {
                rc = hostwatch_cpu(hw, k, R->t0 + first, R->t0 + last, &t[k]);
                r->host_late_ns[k] = t[k].late_ns;
                r->host_late_max_ns[k] = t[k].late_max_ns;
                r->host_late_spans[k] = t[k].late;
                r->host_watch_cpu_ns += t[k].cpu_ns;
            }
            if (rc == D2_OK) rc = hostwatch_stopped(hw, R->t0 + first, R->t0 + last, &r->host_stopped_ns, &r->host_stopped_max_ns,
                                                   &r->host_stopped_spans);
            for (size_t i = 0; rc == D2_OK && i < p->n_comp; i++) { /* where the taken time fell: inside which computes */
                hostwatch_tally ti;
                rc = hostwatch_cpu(hw, 0, R->t0 + R->cs[i], R->t0 + R->ce[i], &ti);
                uint32_t lv = p->comp[i].level;
                r->host_in_compute_ns[(lv > EXEC_HOST_LEVELS ? EXEC_HOST_LEVELS : lv) - 1] += ti.late_ns;
            }
            r->host_watched = rc == D2_OK;
        }
        if (others_read) {
            int64_t mine[2] = {R->comp_thread_cpu, io_cpu_ns};
            for (int k = 0; hw && k < 2 && rc == D2_OK; k++) { /* the watchers ran there too */
                hostwatch_tally tw;
                rc = hostwatch_cpu(hw, k, R->t0, R->t0 + t_end, &tw);
                mine[k] += tw.cpu_ns;
            }
            for (int k = 0; k < 2; k++) { /* in [0, the span]: the ticks' rounding can put it outside on a short run */
                int64_t d = busy1[k] - busy0[k] - mine[k];
                r->others_ns[k] = d < 0 ? 0 : d > t_end ? t_end : d;
            }
            r->others_span_ns = t_end;
            r->others_measured = rc == D2_OK;
        }
        if (rc == D2_OK && (o->timeline || o->ops)) rc = record_ops(R, first, o);
        if (rc == D2_OK && o->verify) rc = verify(R, r);
    }
out:
    hostwatch_free(hw);
    if (R->ub)
        for (size_t u = 0; u < units; u++) pool_release(R, (uint32_t)(u % (size_t)s->levels) + 1, R->ub[u].buf);
    pool_free(R);
    if (R->ts)
        for (uint32_t e = 0; e < s->experts; e++) ts_free(&R->ts[e]);
    for (int i = 0; i < EXEC_INPUTS; i++) kern_act_free(R->in_act[i]);
    free(R->in_x);
    for (int v = 0; v < VERIFY_MAX; v++) { free(R->ver[v].x); free(R->ver[v].out); }
    sched_free(&R->d);
    free(R->ub); free(R->ts); free(R->ls); free(R->le); free(R->cs); free(R->ce);
    free(R);
    return rc;
}
