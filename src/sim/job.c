/* job.c - one simulation from the command line's inputs (profile names, a
 * trace path or the generator, "table.key=value" sets, a seed), for the
 * simulate command and for sweep workers that do not go through argv.
 * It opens files; it does not print or touch a database. */
#include "sim/sim.h"
#include "sim/bitroute.h"
#include "sim/readings.h"
#include "core/err.h"
#include "core/fileio.h"
#include "trace/gen.h"
#include "trace/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void sim_result_set_inputs(sim_result *r, const char *model_path, const char *device_path,
                           const char *trace_path, const char *trace_id);
void sim_result_set_reading(sim_result *r, const char *name, const char *settings, const char *path);

static int route_trace(void *user, uint32_t req, uint32_t pos, uint32_t layer,
                       uint16_t *experts, float *weights, uint8_t *bits)
{
    return trace_source_route(user, req, pos, layer, experts, weights, bits);
}

static int route_trace_token(void *user, uint32_t req, uint32_t pos, uint16_t *experts, float *weights, uint8_t *bits,
                             size_t stride)
{
    return trace_source_route_token(user, req, pos, experts, weights, bits, stride);
}

/* Apply one "table.key=value" to whichever table its prefix names; via
 * ("--set" or the reading's file) is recorded in the origins. */
static int apply_set(model *m, device *d, sim_params *p, const char *s, param_origin *mo, param_origin *dor,
                     const char *via)
{
    /* three tables share this --set: a key without its table would be
     * taken by the first that has it (model.name for name=), so it is
     * refused, naming the tables that have it, as sweeps refuse it */
    const char *eq = strchr(s, '='), *dot = strchr(s, '.');
    if (eq && (!dot || dot > eq)) {
        char key[PARAM_STR_MAX], have[160] = "";
        size_t kl = (size_t)(eq - s), hl = 0;
        if (kl >= sizeof key) kl = sizeof key - 1;
        memcpy(key, s, kl);
        key[kl] = '\0';
        const param_table *ts[] = {&model_params, &device_params, &sim_param_table};
        for (size_t i = 0; i < 3 && hl < sizeof have; i++)
            if (param_find(ts[i], key))
                hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%s.%s", hl ? " or " : "", ts[i]->name, key);
        if (have[0]) D2_ERROR(D2_EINVAL, "--set %s: write the table before the key (%s)", s, have);
        D2_ERROR(D2_EINVAL, "--set %s: expected model.KEY=, device.KEY= or sim.KEY=VALUE", s);
    }
    int rc = param_apply_set_from(&model_params, m, s, mo, via);
    if (rc != D2_ENOTFOUND) return rc;
    rc = param_apply_set_from(&device_params, d, s, dor, via);
    if (rc != D2_ENOTFOUND) return rc;
    rc = param_apply_set(&sim_param_table, p, s);
    if (rc != D2_ENOTFOUND) return rc;
    D2_ERROR(D2_EINVAL, "--set %s: expected model.KEY=, device.KEY= or sim.KEY=VALUE", s);
}

/* What resolving reads from files, kept by name for the next job: the
 * last model, device and reading loaded (a grid's neighbouring jobs share
 * them) with the line of each value (for the cross-checks' messages), and
 * the generator's routing shape for the last model name. */
struct sim_job_memo {
    int have_m, have_d, have_rd, have_gen;
    char mname[PARAM_PATH_MAX], dname[PARAM_PATH_MAX], rdname[PARAM_PATH_MAX], gen_model[PARAM_STR_MAX];
    model m;
    param_origin mo;   /* as read: no override recorded (via all NULL), so a copy holds no borrowed pointer */
    device d;
    param_origin dor;
    readings rd;
    trace_shape gen;
};

int sim_job_memo_new(sim_job_memo **out)
{
    if (!(*out = calloc(1, sizeof **out))) D2_ERROR(D2_ENOMEM, "out of memory");
    return D2_OK;
}

void sim_job_memo_free(sim_job_memo *mo) { free(mo); }

/* memo: NULL, or a copy read earlier under the same name (with its origin,
 * when the reader takes one) */
#define MEMO_READ(mo, have, key, field, ofield, read, name, out, origin)          \
    do {                                                                          \
        const char *k_ = (name) ? (name) : "";                                    \
        if ((mo) && (mo)->have && !strcmp((mo)->key, k_)) {                       \
            *(out) = (mo)->field;                                                 \
            *(origin) = (mo)->ofield;                                             \
            break;                                                                \
        }                                                                         \
        D2_TRY(read((out), (name), (origin)));                                    \
        if ((mo) && strlen(k_) < sizeof (mo)->key) {                              \
            snprintf((mo)->key, sizeof (mo)->key, "%s", k_);                      \
            (mo)->field = *(out);                                                 \
            (mo)->ofield = *(origin);                                             \
            (mo)->have = 1;                                                       \
        }                                                                         \
    } while (0)

/* Profiles, then the reading, then the sets: the effective configuration,
 * cross-checked as a whole (a --set can mend a profile's top_k > experts). */
static int resolve(const sim_job *job, sim_job_memo *memo, model *m, device *d, sim_params *p, readings *rd)
{
    char seed[32];
    param_origin mo, dor;
    MEMO_READ(memo, have_m, mname, m, mo, model_read, job->model, m, &mo);
    MEMO_READ(memo, have_d, dname, d, dor, device_read, job->device, d, &dor);
    param_defaults(&sim_param_table, p);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)job->seed);
    D2_TRY(param_set(&sim_param_table, p, "seed", seed, "seed", NULL));
    const char *rn = job->readings ? job->readings : "";
    if (memo && memo->have_rd && !strcmp(memo->rdname, rn)) *rd = memo->rd;
    else {
        D2_TRY(readings_load(rd, job->readings));
        if (memo && strlen(rn) < sizeof memo->rdname) {
            snprintf(memo->rdname, sizeof memo->rdname, "%s", rn);
            memo->rd = *rd;
            memo->have_rd = 1;
        }
    }
    for (size_t i = 0; i < rd->n; i++) D2_TRY(apply_set(m, d, p, rd->set[i], &mo, &dor, rd->path[0] ? rd->path : rd->name));
    for (size_t i = 0; i < job->nsets; i++) D2_TRY(apply_set(m, d, p, job->sets[i], &mo, &dor, "--set"));
    D2_TRY(model_check(m, &mo));
    D2_TRY(device_check(d, &dor));
    return D2_OK;
}

static int resolve_system(const sim_job *job, sim_job_memo *mo, model *m, device *d, sim_params *p, sim_system *s)
{
    readings rd;
    D2_TRY(resolve(job, mo, m, d, p, &rd));
    if (s) {
        D2_TRY(sim_system_resolve(p, s));
        D2_TRY(sim_system_check(s, m, p));
    }
    return D2_OK;
}

int sim_job_resolve(const sim_job *job, model *m, device *d, sim_params *p, sim_system *s)
{
    model mm;
    device dd;
    sim_params pp;
    D2_TRY(resolve_system(job, NULL, &mm, &dd, &pp, s));
    if (m) *m = mm;
    if (d) *d = dd;
    if (p) *p = pp;
    return D2_OK;
}

/* The routing against the model: the same shape (D2_EINVAL naming the
 * trace, or "generator"). */
static int check_shape(const sim_job *job, const model *m, const trace_shape *sh)
{
    if ((int64_t)sh->layers != model_moe_layers(m) || (int64_t)sh->experts != m->experts || (int64_t)sh->top_k != m->top_k)
        D2_ERROR(D2_EINVAL, "%s: routing of %u MoE layers x %u experts, top-%u does not match model %s (%lld x %lld, top-%lld)",
                 job->trace ? job->trace : "generator", sh->layers, sh->experts, sh->top_k, m->name,
                 (long long)model_moe_layers(m), (long long)m->experts, (long long)m->top_k);
    return D2_OK;
}

int sim_job_check(const sim_job *job, sim_job_memo *mo)
{
    model m;
    device d;
    sim_params p;
    sim_system s;
    D2_TRY(resolve_system(job, mo, &m, &d, &p, &s));
    trace_shape sh;
    if (job->trace) {
        trace_source *src;
        D2_TRY(trace_source_open_file(job->trace, &src));
        trace_source_shape(src, &sh);
        trace_source_free(src);
    } else if (mo && mo->have_gen && !strcmp(mo->gen_model, m.name)) {
        sh = mo->gen;
    } else { /* the generator's shape from its preset, without building it */
        gen_params g;
        D2_TRY(gen_preset_resolve(m.name, &g)); /* as trace_source_open_gen */
        sh = (trace_shape){.layers = (uint32_t)g.layers, .experts = (uint32_t)g.experts, .top_k = (uint32_t)g.top_k};
        if (mo && strlen(m.name) < sizeof mo->gen_model) {
            snprintf(mo->gen_model, sizeof mo->gen_model, "%s", m.name);
            mo->gen = sh;
            mo->have_gen = 1;
        }
    }
    D2_TRY(check_shape(job, &m, &sh));
    int arg;
    const bitroute_type *bt = bitroute_find(s.bitroute, &arg);
    if (bt && bt->needs_bits && !sh.has_bits)
        D2_ERROR(D2_EINVAL, "sim.bitroute: \"trace\" needs bit-widths recorded in the trace; %s",
                 job->trace ? "this trace has none" : "the generator records none");
    return D2_OK;
}

int sim_job_files(const sim_job *job, sim_job_memo *mo, sim_job_file_fn fn, void *user)
{
    model m;
    device d;
    sim_params p;
    readings rd;
    char path[PARAM_PATH_MAX];
    D2_TRY(param_profile_path("model", job->model, path, sizeof path));
    D2_TRY(fn("model", path, user));
    D2_TRY(param_profile_path("device", job->device, path, sizeof path));
    D2_TRY(fn("device", path, user));
    D2_TRY(resolve(job, mo, &m, &d, &p, &rd)); /* the reading's file, and the model's name after the sets */
    if (rd.path[0]) D2_TRY(fn("reading", rd.path, user));
    if (job->trace) return fn("trace", job->trace, user);
    /* the generator: trace_source_open_gen reads the preset of the model's name */
    D2_TRY(gen_preset_path(m.name, path, sizeof path));
    return fn("preset", path, user);
}

/* the job's observers: the timeline writer and the caller's */
typedef struct fanout { sim_observer tl; const sim_observer *user; int have_tl; } fanout;
static void fan_op(void *u, const sim_op *op)
{
    fanout *f = u;
    if (f->have_tl) f->tl.op(f->tl.user, op);
    if (f->user && f->user->op) f->user->op(f->user->user, op);
}
static void fan_freed(void *u, sim_ns t, uint32_t layer, uint32_t expert, uint32_t level)
{
    fanout *f = u;
    if (f->user && f->user->unit_freed) f->user->unit_freed(f->user->user, t, layer, expert, level);
}

int sim_job_run(const sim_job *job, sim_result **out)
{
    model m;
    device d;
    sim_params p;
    readings rd;
    char mpath[PARAM_PATH_MAX], dpath[PARAM_PATH_MAX];
    *out = NULL;
    D2_TRY(param_profile_path("model", job->model, mpath, sizeof mpath));
    D2_TRY(param_profile_path("device", job->device, dpath, sizeof dpath));
    /* the profiles by the paths just found: the same files, not looked up again */
    sim_job byp = *job;
    byp.model = mpath;
    byp.device = dpath;
    D2_TRY(resolve(&byp, NULL, &m, &d, &p, &rd));

    trace_source *src = NULL;
    int rc = job->trace ? trace_source_open_file(job->trace, &src)
                        : trace_source_open_gen(m.name, (uint64_t)p.seed, &src);
    if (rc) return rc;
    trace_shape sh;
    trace_source_shape(src, &sh);
    if ((rc = check_shape(job, &m, &sh)) != D2_OK) {
        trace_source_free(src);
        return rc;
    }
    /* the timeline goes to "<file>.tmp", renamed when the run succeeded: a
     * failed run leaves no partial CSV */
    FILE *tl = NULL;
    fileio_out *tlo = NULL;
    if (job->timeline) { /* a FIFO, device or symlink there is refused, never replaced */
        rc = fileio_out_open(job->timeline, &tlo, &tl);
        if (rc) {
            trace_source_free(src);
            return rc;
        }
    }
    sim_input in = {.model = &m, .device = &d, .params = &p, .route = route_trace, .route_user = src,
                    .route_has_bits = sh.has_bits, .route_token = route_trace_token, .route_id = trace_source_id(src)};
    sim_result *r = NULL;
    sim_timeline tlw;
    fanout fo = {.user = job->obs};
    if (tl) {
        sim_timeline_begin(&tlw, tl, &fo.tl);
        fo.have_tl = 1;
    }
    /* no one listening (a sweep job without --timelines): no observer, so the
     * serving loop does not build an operation per load and compute */
    const int want_op = fo.have_tl || (job->obs && job->obs->op), want_freed = job->obs && job->obs->unit_freed;
    sim_observer obs = {.op = want_op ? fan_op : NULL, .unit_freed = want_freed ? fan_freed : NULL, .user = &fo};
    rc = sim_run_observed(&in, &obs, &r);
    if (tlo) {
        if (rc != D2_OK) fileio_out_abort(tlo);
        else if ((rc = fileio_out_commit(tlo)) != D2_OK) {
            sim_result_free(r);
            r = NULL;
        }
    }
    if (rc == D2_OK) {
        char txt[READINGS_TEXT_MAX];
        readings_text(&rd, txt, sizeof txt);
        sim_result_set_inputs(r, mpath, dpath, job->trace, trace_source_id(src));
        sim_result_set_reading(r, rd.name, txt, rd.path);
    }
    trace_source_free(src);
    if (rc) return rc;
    *out = r;
    return D2_OK;
}
