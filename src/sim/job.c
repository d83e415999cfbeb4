/* job.c - one simulation from the command line's inputs (profile names, a
 * trace path or the generator, "table.key=value" sets, a seed), for the
 * simulate command and for sweep workers that do not go through argv.
 * It opens files; it does not print or touch a database. */
#include "sim/sim.h"
#include "sim/readings.h"
#include "core/err.h"
#include "core/fileio.h"
#include "trace/source.h"

#include <errno.h>
#include <stdio.h>
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
    int rc = param_apply_set_from(&model_params, m, s, mo, via);
    if (rc != D2_ENOTFOUND) return rc;
    rc = param_apply_set_from(&device_params, d, s, dor, via);
    if (rc != D2_ENOTFOUND) return rc;
    rc = param_apply_set(&sim_param_table, p, s);
    if (rc != D2_ENOTFOUND) return rc;
    D2_ERROR(D2_EINVAL, "--set %s: expected model.KEY=, device.KEY= or sim.KEY=VALUE", s);
}

/* Profiles, then the reading, then the sets: the effective configuration,
 * cross-checked as a whole (a --set can mend a profile's top_k > experts). */
static int resolve(const sim_job *job, model *m, device *d, sim_params *p, readings *rd)
{
    char seed[32];
    param_origin mo, dor;
    D2_TRY(model_read(m, job->model, &mo));
    D2_TRY(device_read(d, job->device, &dor));
    param_defaults(&sim_param_table, p);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)job->seed);
    D2_TRY(param_set(&sim_param_table, p, "seed", seed, "seed", NULL));
    D2_TRY(readings_load(rd, job->readings));
    for (size_t i = 0; i < rd->n; i++) D2_TRY(apply_set(m, d, p, rd->set[i], &mo, &dor, rd->path[0] ? rd->path : rd->name));
    for (size_t i = 0; i < job->nsets; i++) D2_TRY(apply_set(m, d, p, job->sets[i], &mo, &dor, "--set"));
    D2_TRY(model_check(m, &mo));
    D2_TRY(device_check(d, &dor));
    return D2_OK;
}

int sim_job_resolve(const sim_job *job, model *m, device *d, sim_params *p, sim_system *s)
{
    model mm;
    device dd;
    sim_params pp;
    readings rd;
    D2_TRY(resolve(job, &mm, &dd, &pp, &rd));
    if (s) D2_TRY(sim_system_resolve(&pp, s));
    if (m) *m = mm;
    if (d) *d = dd;
    if (p) *p = pp;
    return D2_OK;
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
    char mpath[4096], dpath[4096];
    *out = NULL;
    D2_TRY(param_profile_path("model", job->model, mpath, sizeof mpath));
    D2_TRY(param_profile_path("device", job->device, dpath, sizeof dpath));
    D2_TRY(resolve(job, &m, &d, &p, &rd));

    trace_source *src = NULL;
    int rc = job->trace ? trace_source_open_file(job->trace, &src)
                        : trace_source_open_gen(m.name, (uint64_t)p.seed, &src);
    if (rc) return rc;
    trace_shape sh;
    trace_source_shape(src, &sh);
    if ((int64_t)sh.layers != model_moe_layers(&m) || (int64_t)sh.experts != m.experts || (int64_t)sh.top_k != m.top_k) {
        trace_source_free(src);
        D2_ERROR(D2_EINVAL, "%s: routing of %u MoE layers x %u experts, top-%u does not match model %s (%lld x %lld, top-%lld)",
                 job->trace ? job->trace : "generator", sh.layers, sh.experts, sh.top_k, m.name,
                 (long long)model_moe_layers(&m), (long long)m.experts, (long long)m.top_k);
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
        char txt[2048];
        readings_text(&rd, txt, sizeof txt);
        sim_result_set_inputs(r, mpath, dpath, job->trace, trace_source_id(src));
        sim_result_set_reading(r, rd.name, txt, rd.path);
    }
    trace_source_free(src);
    if (rc) return rc;
    *out = r;
    return D2_OK;
}
