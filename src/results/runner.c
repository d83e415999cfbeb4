/* runner.c - sweep jobs of kind "simulate": job keys -> sim_job -> sim_run
 * -> run record (params, metrics, inputs, est_ppl).  See runner.h. */
#include "results/runner.h"
#include "core/device.h"
#include "core/err.h"
#include "core/model.h"
#include "core/units.h"
#include "sim/sim.h"
#include "sim/readings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const param_table *table_for(const char *prefix)
{
    if (!strcmp(prefix, "model")) return &model_params;
    if (!strcmp(prefix, "device")) return &device_params;
    if (!strcmp(prefix, "sim")) return &sim_param_table;
    return NULL;
}

int runner_check(const char *key, const char *value, const char *where, void *user)
{
    (void)user;
    if (!strcmp(key, "model")) {
        model m;
        if (model_load(&m, value) != D2_OK) { d2_err_prefix("%s: model: ", where); return D2_EINVAL; }
        return D2_OK;
    }
    if (!strcmp(key, "device")) {
        device d;
        if (device_load(&d, value) != D2_OK) { d2_err_prefix("%s: device: ", where); return D2_EINVAL; }
        return D2_OK;
    }
    if (!strcmp(key, "readings")) {
        readings rd;
        if (readings_load(&rd, value) != D2_OK) { d2_err_prefix("%s: readings: ", where); return D2_EINVAL; }
        return D2_OK;
    }
    if (!strcmp(key, "trace")) {
        if (access(value, R_OK) != 0) D2_ERROR(D2_EINVAL, "%s: trace: cannot read \"%s\"", where, value);
        return D2_OK;
    }
    if (!strcmp(key, "seed")) {
        int64_t s;
        if (units_parse_int64(value, &s) || s < 0) D2_ERROR(D2_EINVAL, "%s: seed: \"%s\" is not a non-negative integer", where, value);
        return D2_OK;
    }
    char prefix[64];
    const char *dot = strchr(key, '.');
    size_t pl = (size_t)(dot - key);
    if (pl >= sizeof prefix) D2_ERROR(D2_EINVAL, "%s: %s: unknown key", where, key);
    memcpy(prefix, key, pl);
    prefix[pl] = '\0';
    const param_table *t = table_for(prefix);
    if (!t) D2_ERROR(D2_EINVAL, "%s: %s: unknown table \"%s\" (model, device or sim)", where, key, prefix);
    if (!param_find(t, dot + 1)) D2_ERROR(D2_EINVAL, "%s: %s: not a %s key", where, key, prefix);
    /* the value must parse and lie in range: try it on a scratch object */
    union { model m; device d; sim_params s; } scratch;
    param_defaults(t, &scratch);
    return param_set(t, &scratch, dot + 1, value, where, NULL);
}

typedef struct fill {
    db_run *run;
    double w2[ACC_MAX_BITS + 1]; /* sum of squared gate weights per bit-width */
    int have_w2;
    char format[64];             /* storage format: nested or separate copies */
} fill;

static int param_cb(const char *key, const char *value, const char *units, void *user)
{
    fill *f = user;
    if (!strcmp(key, "system.format") || !strcmp(key, "system.storage")) snprintf(f->format, sizeof f->format, "%s", value);
    return db_run_param_visit(key, value, units, f->run);
}

static int metric_cb(const char *name, double value, const char *unit, void *user)
{
    fill *f = user;
    /* per bit-width sums of squared gate weights, for est_ppl (see
     * accuracy.h, assumption 4): the simulator's "gate2_bits_<b>" */
    int b;
    if (sscanf(name, "gate2_bits_%d", &b) == 1 && b >= 1 && b <= ACC_MAX_BITS) {
        f->w2[b] = value;
        f->have_w2 = 1;
    }
    return db_run_metric(f->run, name, value, unit);
}

static int input_cb(const char *role, const char *path, const char *id, void *user)
{
    fill *f = user;
    char key[128];
    if (id && *id) {
        snprintf(key, sizeof key, "input.%s_id", role);
        D2_TRY(db_run_param(f->run, key, id));
    }
    if (path && *path) return db_run_input(f->run, role, path);
    return D2_OK;
}

int runner_simulate(const sweep_job *job, db_run *run, void *user)
{
    const runner_ctx *c = user;
    char sets_buf[SWEEP_MAX_AXES][700];
    const char *sets[SWEEP_MAX_AXES];
    size_t n = 0;
    sim_job sj;
    memset(&sj, 0, sizeof sj);
    sj.seed = 1;
    for (size_t i = 0; i < job->n; i++) {
        const char *k = job->key[i], *v = job->value[i];
        if (!strcmp(k, "model")) sj.model = v;
        else if (!strcmp(k, "device")) sj.device = v;
        else if (!strcmp(k, "trace")) sj.trace = v;
        else if (!strcmp(k, "seed")) sj.seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "readings")) sj.readings = v;
        else {
            snprintf(sets_buf[n], sizeof sets_buf[n], "%s=%s", k, v);
            sets[n] = sets_buf[n];
            n++;
        }
    }
    if (!sj.model || !sj.device) D2_ERROR(D2_EINVAL, "job %zu: needs a model and a device", job->index);
    sj.sets = sets;
    sj.nsets = n;
    char tl[4200];
    if (c && c->timeline_dir) {
        snprintf(tl, sizeof tl, "%s/%s.csv", c->timeline_dir, job->hash);
        sj.timeline = tl;
    }
    sim_result *r;
    D2_TRY(sim_job_run(&sj, &r));
    fill f;
    memset(&f, 0, sizeof f);
    f.run = run;
    db_run_seed(run, sj.seed);
    int rc = sim_result_foreach_param(r, param_cb, &f);
    if (rc == D2_OK) rc = sim_result_foreach_metric(r, metric_cb, &f);
    if (rc == D2_OK) rc = sim_result_foreach_input(r, input_cb, &f);
    if (rc == D2_OK) {
        db_run_status(run, sim_result_status(r));
        if (*sim_result_reason(r)) db_run_param(run, "result.reason", sim_result_reason(r));
    }
    if (rc == D2_OK && c && c->acc) {
        double ppl = NAN;
        if (f.have_w2) ppl = accuracy_estimate(c->acc, f.format, f.w2);
        rc = db_run_metric(run, "est_ppl", ppl, "ppl");
    }
    sim_result_free(r);
    return rc;
}
