/* opjoin.c - operation records, timeline CSV, and the predicted/real join
 * (see opjoin.h). */
#include "host/opjoin.h"
#include "core/err.h"
#include "core/vec.h"
#include "core/fileio.h"
#include "core/text.h"
#include "sim/sim.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct opjoin_tl {
    opjoin_op *op;
    size_t n, cap;
};

int opjoin_tl_new(opjoin_tl **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) D2_ERROR(D2_ENOMEM, "op records: out of memory");
    return D2_OK;
}

void opjoin_tl_free(opjoin_tl *tl)
{
    if (!tl) return;
    free(tl->op);
    free(tl);
}

int opjoin_tl_add(opjoin_tl *tl, const opjoin_op *op)
{
    if (op->kind != OPJOIN_LOAD && op->kind != OPJOIN_COMPUTE && op->kind != OPJOIN_NONEXPERT)
        D2_ERROR(D2_EINVAL, "op record: unknown kind %d", (int)op->kind);
    if (op->kind == OPJOIN_NONEXPERT ? op->level != 0 : (op->level < 1 || op->level > OPJOIN_MAX_LEVEL))
        D2_ERROR(D2_EINVAL, "op record: level %d out of range", (int)op->level);
    if (op->start_ns < 0 || op->end_ns < op->start_ns || op->end_ns > SIM_NS_MAX || op->step < 0 || op->layer < 0)
        D2_ERROR(D2_EINVAL, "op record: step %d layer %d [%lld, %lld] out of range", (int)op->step, (int)op->layer,
                 (long long)op->start_ns, (long long)op->end_ns);
    D2_TRY(VEC_RESERVE(tl->op, tl->cap, tl->n + 1));
    tl->op[tl->n++] = *op;
    return D2_OK;
}

size_t opjoin_tl_size(const opjoin_tl *tl) { return tl->n; }
const opjoin_op *opjoin_tl_get(const opjoin_tl *tl, size_t i) { return i < tl->n ? &tl->op[i] : NULL; }

static const char *const tl_field[7] = {"start_ns", "end_ns", "queue", "layer", "expert", "level", "tokens"};

/* Field i of a timeline record, s[0..len): a decimal integer lo..hi, all of it */
static int tl_int(const char *name, size_t lineno, int i, const char *s, size_t len, long long lo, long long hi, long long *v)
{
    char buf[24], *end;
    if (len > 0 && len < sizeof buf) {
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        *v = strtoll(buf, &end, 10);
        if ((isdigit((unsigned char)buf[0]) || (buf[0] == '-' && isdigit((unsigned char)buf[1]))) && !*end && !errno &&
            *v >= lo && *v <= hi)
            return D2_OK;
    }
    D2_ERROR(D2_EFORMAT, "%s:%zu: field \"%s\": expected an integer %lld..%lld", name, lineno, tl_field[i], lo, hi);
}

int opjoin_tl_read_csv(FILE *f, const char *name, opjoin_tl *tl)
{
    char line[512];
    size_t lineno = 0;
    int32_t step = 0, prev_layer = -1;
    int opened = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) D2_ERROR(D2_EFORMAT, "%s:%zu: line too long", name, lineno);
        if (lineno == 1 && !strncmp(line, "start_ns", 8)) continue;
        if (line[0] == '\n') continue;
        line[strcspn(line, "\r\n")] = '\0';
        /* the record is the whole line: seven fields, each checked alone */
        const char *fs[7];
        size_t fl[7];
        int nf = 0;
        for (const char *p = line;;) {
            const char *c = strchr(p, ',');
            if (nf < 7) fs[nf] = p, fl[nf] = c ? (size_t)(c - p) : strlen(p);
            nf++;
            if (!c) break;
            p = c + 1;
        }
        if (nf != 7)
            D2_ERROR(D2_EFORMAT, "%s:%zu: expected 7 fields start_ns,end_ns,queue,layer,expert,level,tokens, got %d", name,
                     lineno, nf);
        long long t0, t1, layer, expert, level, tokens;
        /* times up to the simulator's horizon (SIM_NS_MAX, 146 years): a
         * timeline's span and its non-overlapping sums then fit an int64 */
        D2_TRY(tl_int(name, lineno, 0, fs[0], fl[0], 0, SIM_NS_MAX, &t0));
        D2_TRY(tl_int(name, lineno, 1, fs[1], fl[1], t0, SIM_NS_MAX, &t1)); /* start <= end */
        D2_TRY(tl_int(name, lineno, 3, fs[3], fl[3], 0, INT32_MAX, &layer));
        D2_TRY(tl_int(name, lineno, 4, fs[4], fl[4], -1, INT32_MAX, &expert));
        D2_TRY(tl_int(name, lineno, 5, fs[5], fl[5], 0, INT32_MAX, &level));
        D2_TRY(tl_int(name, lineno, 6, fs[6], fl[6], 0, INT32_MAX, &tokens));
        int io = fl[2] == 2 && !memcmp(fs[2], "io", 2), compute = fl[2] == 7 && !memcmp(fs[2], "compute", 7);
        if (!io && !compute) {
            int printable = fl[2] <= 15 && text_ctl_span(fs[2], fl[2]) == fl[2];
            if (printable) D2_ERROR(D2_EFORMAT, "%s:%zu: queue \"%.*s\": expected io or compute", name, lineno, (int)fl[2], fs[2]);
            D2_ERROR(D2_EFORMAT, "%s:%zu: field \"queue\": expected io or compute", name, lineno);
        }
        opjoin_op op = {.layer = (int32_t)layer, .expert = -1, .tokens = (int32_t)tokens, .start_ns = t0, .end_ns = t1};
        if (compute && expert < 0) {
            if (opened && layer <= prev_layer) step++;
            opened = 1;
            prev_layer = (int32_t)layer;
            op.kind = OPJOIN_NONEXPERT;
        } else {
            if (expert < 0) D2_ERROR(D2_EFORMAT, "%s:%zu: expert %lld out of range", name, lineno, expert);
            if (level < 1 || level > OPJOIN_MAX_LEVEL)
                D2_ERROR(D2_EFORMAT, "%s:%zu: level %lld: expected 1..%d", name, lineno, level, OPJOIN_MAX_LEVEL);
            if (!opened) D2_ERROR(D2_EFORMAT, "%s:%zu: expert operation before any layer step (non-expert line)", name, lineno);
            op.kind = io ? OPJOIN_LOAD : OPJOIN_COMPUTE;
            op.expert = (int32_t)expert;
            op.level = (int32_t)level;
        }
        op.step = step;
        D2_TRY(opjoin_tl_add(tl, &op));
    }
    if (ferror(f)) D2_ERROR(D2_EIO, "%s: read error", name);
    return D2_OK;
}

/* ---- ordering ---------------------------------------------------------- */

static int kind_rank(opjoin_kind k) { return k == OPJOIN_NONEXPERT ? 0 : k == OPJOIN_LOAD ? 1 : 2; }

#define CMP(a, b) \
    do {          \
        if ((a) != (b)) return (a) < (b) ? -1 : 1; \
    } while (0)

static int cmp_phase(const void *x, const void *y)
{
    const opjoin_op *a = x, *b = y;
    CMP(a->step, b->step);
    CMP(a->layer, b->layer);
    CMP(kind_rank(a->kind), kind_rank(b->kind));
    CMP(a->start_ns, b->start_ns);
    CMP(a->expert, b->expert);
    CMP(a->level, b->level);
    return 0;
}

static int cmp_key(const opjoin_op *a, const opjoin_op *b)
{
    CMP((int)a->kind, (int)b->kind);
    CMP(a->step, b->step);
    CMP(a->layer, b->layer);
    CMP(a->expert, b->expert);
    CMP(a->level, b->level);
    return 0;
}

static int cmp_join(const void *x, const void *y)
{
    const opjoin_op *a = x, *b = y;
    int c = cmp_key(a, b);
    if (c) return c;
    CMP(a->start_ns, b->start_ns);
    CMP(a->end_ns, b->end_ns);
    return 0;
}

static int cmp_start(const void *x, const void *y)
{
    const opjoin_op *a = x, *b = y;
    CMP(a->start_ns, b->start_ns);
    CMP(a->end_ns, b->end_ns);
    return 0;
}

static int sorted_copy(const opjoin_tl *tl, int (*cmp)(const void *, const void *), opjoin_op **out)
{
    *out = malloc((tl->n ? tl->n : 1) * sizeof **out);
    if (!*out) D2_ERROR(D2_ENOMEM, "op join: out of memory");
    if (tl->n) memcpy(*out, tl->op, tl->n * sizeof **out);
    qsort(*out, tl->n, sizeof **out, cmp);
    return D2_OK;
}

int opjoin_tl_check_file(const char *path, size_t *rows)
{
    if (rows) *rows = 0;
    FILE *f;
    D2_TRY(fileio_open_read(path, FILEIO_TEXT_MAX, &f, NULL));
    char line[256] = "";
    int ok = fgets(line, sizeof line, f) != NULL;
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || strcmp(line, SIM_TIMELINE_HEADER) != 0) {
        fclose(f);
        D2_ERROR(D2_EFORMAT, "%s:1: not a timeline (expected the header " SIM_TIMELINE_HEADER " of 'd2moe simulate --timeline')", path);
    }
    rewind(f);
    opjoin_tl *tl = NULL;
    int rc = opjoin_tl_new(&tl);
    if (!rc) rc = opjoin_tl_read_csv(f, path, tl);
    const size_t n = rc ? 0 : opjoin_tl_size(tl);
    opjoin_tl_free(tl);
    fclose(f);
    if (!rc && n == 0) D2_ERROR(D2_EFORMAT, "%s:2: the timeline has no records", path);
    if (rows) *rows = n;
    return rc;
}

int opjoin_tl_check(const char *path) { return opjoin_tl_check_file(path, NULL); }

int opjoin_tl_write_csv(const opjoin_tl *tl, FILE *f)
{
    opjoin_op *s;
    D2_TRY(sorted_copy(tl, cmp_phase, &s));
    for (size_t i = 0; i < tl->n; i++)
        fprintf(f, "%lld,%lld,%s,%d,%d,%d,%d\n", (long long)s[i].start_ns, (long long)s[i].end_ns,
                s[i].kind == OPJOIN_LOAD ? "io" : "compute", (int)s[i].layer, (int)s[i].expert, (int)s[i].level,
                (int)s[i].tokens);
    free(s);
    return ferror(f) ? D2_EIO : D2_OK;
}

/* ---- the makespan split ------------------------------------------------ */

#define L OPJOIN_MAX_LEVEL
enum { T_COMPUTE = 0, T_WAIT = L, T_HANDOFF = 2 * L, T_NONEXPERT = 3 * L, T_NE_GAP, T_TAIL, T_LOAD, T_IO_IDLE = T_LOAD + L,
       T_FRESH, T_STALL = T_FRESH + L, T_N = T_STALL + L };

static void term_names(opjoin_report *r)
{
    r->nterm = T_N;
    for (int k = 1; k <= L; k++) {
        snprintf(r->term[T_COMPUTE + k - 1].name, sizeof r->term[0].name, "compute_l%d", k);
        snprintf(r->term[T_WAIT + k - 1].name, sizeof r->term[0].name, "wait_l%d", k);
        snprintf(r->term[T_HANDOFF + k - 1].name, sizeof r->term[0].name, "handoff_l%d", k);
        snprintf(r->term[T_LOAD + k - 1].name, sizeof r->term[0].name, "load_l%d", k);
        snprintf(r->term[T_FRESH + k - 1].name, sizeof r->term[0].name, "fresh_l%d", k);
        snprintf(r->term[T_STALL + k - 1].name, sizeof r->term[0].name, "stall_l%d", k);
    }
    snprintf(r->term[T_NONEXPERT].name, sizeof r->term[0].name, "nonexpert");
    snprintf(r->term[T_NE_GAP].name, sizeof r->term[0].name, "nonexpert_gap");
    snprintf(r->term[T_TAIL].name, sizeof r->term[0].name, "tail");
    snprintf(r->term[T_IO_IDLE].name, sizeof r->term[0].name, "io_idle");
    for (int t = 0; t < T_N; t++) r->term[t].in_sum = t < T_LOAD;
}

/* v[T_N] and n[T_N] of one timeline; *makespan */
static int split(const opjoin_tl *tl, int64_t *v, int64_t *n, int64_t *makespan)
{
    memset(v, 0, T_N * sizeof *v);
    memset(n, 0, T_N * sizeof *n);
    *makespan = 0;
    if (!tl->n) return D2_OK;
    opjoin_op *s, *ld;
    D2_TRY(sorted_copy(tl, cmp_start, &s));
    int rc = sorted_copy(tl, cmp_join, &ld); /* loads first (kind 0), by key then start */
    if (rc) { free(s); return rc; }
    size_t nld = 0;
    while (nld < tl->n && ld[nld].kind == OPJOIN_LOAD) nld++;
    int64_t t0 = s[0].start_ns, tend = s[0].end_ns;
    for (size_t i = 0; i < tl->n; i++)
        if (s[i].end_ns > tend) tend = s[i].end_ns;
    *makespan = tend - t0;
    int64_t prev = t0, iprev = t0, ibusy = 0;
    for (size_t i = 0; i < tl->n; i++) {
        const opjoin_op *o = &s[i];
        if (o->kind == OPJOIN_LOAD) {
            /* loads may overlap (a malformed file): their sum checked, the
             * other terms are sums of disjoint spans within the makespan */
            if (__builtin_add_overflow(v[T_LOAD + o->level - 1], o->end_ns - o->start_ns, &v[T_LOAD + o->level - 1])) {
                const int level = (int)o->level; /* o points into s */
                free(s);
                free(ld);
                D2_ERROR(D2_ERANGE, "timeline: level-%d loads sum past %lld ns (overlapping loads)", level, (long long)INT64_MAX);
            }
            n[T_LOAD + o->level - 1]++;
            int64_t b0 = o->start_ns > iprev ? o->start_ns : iprev;
            if (o->end_ns > b0) ibusy += o->end_ns - b0;
            if (o->end_ns > iprev) iprev = o->end_ns;
            continue;
        }
        int64_t gap = o->start_ns > prev ? o->start_ns - prev : 0;
        int64_t b0 = o->start_ns > prev ? o->start_ns : prev;
        int64_t busy = o->end_ns > b0 ? o->end_ns - b0 : 0;
        if (o->kind == OPJOIN_NONEXPERT) {
            v[T_NONEXPERT] += busy;
            v[T_NE_GAP] += gap;
            n[T_NONEXPERT]++;
            n[T_NE_GAP]++;
        } else {
            int k = o->level - 1;
            /* ready: the last load of this expert's levels 1..k in this step that ended by the start */
            int64_t ready = INT64_MIN;
            size_t lo = 0, hi = nld;
            opjoin_op key = {.kind = OPJOIN_LOAD, .step = o->step, .layer = o->layer, .expert = o->expert, .level = 0};
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (cmp_key(&ld[mid], &key) < 0) lo = mid + 1;
                else hi = mid;
            }
            for (size_t j = lo; j < nld && ld[j].step == o->step && ld[j].layer == o->layer && ld[j].expert == o->expert; j++)
                if (ld[j].level <= o->level && ld[j].end_ns <= o->start_ns && ld[j].end_ns > ready) ready = ld[j].end_ns;
            int64_t w = 0;
            if (ready > prev) w = ready - prev < gap ? ready - prev : gap;
            v[T_COMPUTE + k] += busy;
            if (ready != INT64_MIN) { /* its data read in this step: compute on fresh weights */
                v[T_FRESH + k] += busy;
                n[T_FRESH + k]++;
            }
            v[T_WAIT + k] += w;
            v[T_HANDOFF + k] += gap - w;
            n[T_COMPUTE + k]++;
            n[T_WAIT + k]++;
            n[T_HANDOFF + k]++;
        }
        if (o->end_ns > prev) prev = o->end_ns;
    }
    v[T_TAIL] = tend - prev;
    n[T_TAIL] = 1;
    v[T_IO_IDLE] = *makespan - ibusy;
    n[T_IO_IDLE] = 1;
    free(s);
    free(ld);
    return D2_OK;
}

void opjoin_report_init(opjoin_report *r)
{
    memset(r, 0, sizeof *r);
    term_names(r);
}

void opjoin_report_add(opjoin_report *sum, const opjoin_report *r)
{
    for (int t = 0; t < sum->nterm && t < r->nterm; t++) {
        sum->term[t].pred_ns += r->term[t].pred_ns;
        sum->term[t].real_ns += r->term[t].real_ns;
        sum->term[t].n_pred += r->term[t].n_pred;
        sum->term[t].n_real += r->term[t].n_real;
    }
    sum->makespan_pred_ns += r->makespan_pred_ns;
    sum->makespan_real_ns += r->makespan_real_ns;
    sum->matched += r->matched;
    sum->pred_only += r->pred_only;
    sum->real_only += r->real_only;
    sum->pred_only_ns += r->pred_only_ns;
    sum->real_only_ns += r->real_only_ns;
}

int opjoin_join(const opjoin_tl *pred, const opjoin_tl *real, opjoin_report *out)
{
    opjoin_report_init(out);
    int64_t vp[T_N], np[T_N], vr[T_N], nr[T_N];
    D2_TRY(split(pred, vp, np, &out->makespan_pred_ns));
    D2_TRY(split(real, vr, nr, &out->makespan_real_ns));
    for (int t = 0; t < T_N; t++) {
        out->term[t].pred_ns = vp[t];
        out->term[t].real_ns = vr[t];
        out->term[t].n_pred = np[t];
        out->term[t].n_real = nr[t];
    }
    opjoin_op *a, *b;
    D2_TRY(sorted_copy(pred, cmp_join, &a));
    int rc = sorted_copy(real, cmp_join, &b);
    if (rc) { free(a); return rc; }
    size_t i = 0, j = 0;
    int64_t worst = INT64_MIN;
    int over = 0; /* a sum past INT64_MAX (overlapping operations of a malformed file) */
    while (i < pred->n || j < real->n) {
        int c = i == pred->n ? 1 : j == real->n ? -1 : cmp_key(&a[i], &b[j]);
        if (c < 0) {
            out->pred_only++;
            over |= __builtin_add_overflow(out->pred_only_ns, a[i].end_ns - a[i].start_ns, &out->pred_only_ns);
            i++;
        } else if (c > 0) {
            out->real_only++;
            over |= __builtin_add_overflow(out->real_only_ns, b[j].end_ns - b[j].start_ns, &out->real_only_ns);
            j++;
        } else {
            out->matched++;
            const int64_t dp = a[i].end_ns - a[i].start_ns, dr = b[j].end_ns - b[j].start_ns;
            int64_t fdp;
            if (a[i].kind == OPJOIN_LOAD && a[i].level >= 1 && a[i].level <= L &&
                !__builtin_mul_overflow((int64_t)OPJOIN_STALL_FACTOR, dp, &fdp) && dr > fdp) {
                opjoin_term *st = &out->term[T_STALL + a[i].level - 1];
                over |= __builtin_add_overflow(st->pred_ns, dp, &st->pred_ns);
                over |= __builtin_add_overflow(st->real_ns, dr, &st->real_ns);
                st->n_pred++;
                st->n_real++;
            }
            int64_t d = dr - dp;
            if (d > worst) {
                worst = d;
                out->worst_pred = a[i];
                out->worst_real = b[j];
            }
            i++;
            j++;
        }
    }
    free(a);
    free(b);
    if (over) D2_ERROR(D2_ERANGE, "timeline: operation times sum past %lld ns (overlapping operations)", (long long)INT64_MAX);
    return D2_OK;
}

int opjoin_report_term(const opjoin_report *r, const char *name)
{
    for (int t = 0; t < r->nterm; t++)
        if (!strcmp(r->term[t].name, name)) return t;
    return -1;
}

/* ---- the report as metrics --------------------------------------------- */

int opjoin_report_foreach_metric(const opjoin_report *r, opjoin_metric_fn fn, void *user)
{
    int rc = fn("join_makespan_sim_s", (double)r->makespan_pred_ns / 1e9, "s", user);
    if (!rc) rc = fn("join_makespan_real_s", (double)r->makespan_real_ns / 1e9, "s", user);
    for (int t = 0; !rc && t < r->nterm; t++) {
        const opjoin_term *T = &r->term[t];
        if (!T->n_pred && !T->n_real) continue;
        char k[64];
        snprintf(k, sizeof k, "join_%s_sim_s", T->name);
        rc = fn(k, (double)T->pred_ns / 1e9, "s", user);
        snprintf(k, sizeof k, "join_%s_real_s", T->name);
        if (!rc) rc = fn(k, (double)T->real_ns / 1e9, "s", user);
        snprintf(k, sizeof k, "join_%s_sim_ops", T->name);
        if (!rc) rc = fn(k, (double)T->n_pred, "ops", user);
        snprintf(k, sizeof k, "join_%s_real_ops", T->name);
        if (!rc) rc = fn(k, (double)T->n_real, "ops", user);
    }
    if (!rc) rc = fn("join_matched", (double)r->matched, "ops", user);
    if (!rc) rc = fn("join_sim_only", (double)r->pred_only, "ops", user);
    if (!rc) rc = fn("join_real_only", (double)r->real_only, "ops", user);
    if (!rc) rc = fn("join_sim_only_s", (double)r->pred_only_ns / 1e9, "s", user);
    if (!rc) rc = fn("join_real_only_s", (double)r->real_only_ns / 1e9, "s", user);
    return rc;
}

int opjoin_report_set_metric(opjoin_report *r, const char *name, double value)
{
    if (strncmp(name, "join_", 5)) return D2_ENOTFOUND;
    const char *s = name + 5;
    if (!isfinite(value) || value < 0 || value > 9e9)
        D2_ERROR(D2_ERANGE, "op join: metric %s = %g out of range", name, value);
    int64_t ns = llround(value * 1e9), cnt = llround(value);
    const struct { const char *name; int64_t *v; int ns; } fixed[] = {
        {"makespan_sim_s", &r->makespan_pred_ns, 1}, {"makespan_real_s", &r->makespan_real_ns, 1},
        {"matched", &r->matched, 0},                 {"sim_only", &r->pred_only, 0},
        {"real_only", &r->real_only, 0},             {"sim_only_s", &r->pred_only_ns, 1},
        {"real_only_s", &r->real_only_ns, 1},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (!strcmp(s, fixed[i].name)) {
            *fixed[i].v = fixed[i].ns ? ns : cnt;
            return D2_OK;
        }
    static const char *const suffix[4] = {"_sim_s", "_real_s", "_sim_ops", "_real_ops"};
    size_t len = strlen(s);
    for (int k = 0; k < 4; k++) {
        size_t sl = strlen(suffix[k]);
        if (len <= sl || len - sl >= sizeof r->term[0].name || strcmp(s + len - sl, suffix[k])) continue;
        char tn[sizeof r->term[0].name];
        memcpy(tn, s, len - sl);
        tn[len - sl] = 0;
        int t = opjoin_report_term(r, tn);
        if (t < 0) return D2_ENOTFOUND;
        opjoin_term *T = &r->term[t];
        switch (k) {
        case 0: T->pred_ns = ns; break;
        case 1: T->real_ns = ns; break;
        case 2: T->n_pred = cnt; break;
        default: T->n_real = cnt; break;
        }
        return D2_OK;
    }
    return D2_ENOTFOUND;
}
