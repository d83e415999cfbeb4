/* runner.c - sweep jobs of kind "simulate": job keys -> sim_job -> sim_run
 * -> run record (params, metrics, inputs, est_ppl).  See runner.h. */
#include "results/runner.h"
#include "core/device.h"
#include "core/err.h"
#include "core/fileio.h"
#include "core/hash.h"
#include "core/model.h"
#include "core/units.h"
#include "core/suggest.h"
#include "sim/policy.h"
#include "sim/sim.h"
#include "trace/source.h"
#include "trace/trace.h"
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

const char *runner_param_units(const char *key)
{
    const char *dot = strchr(key, '.');
    char prefix[16];
    if (!dot || (size_t)(dot - key) >= sizeof prefix) return "";
    memcpy(prefix, key, (size_t)(dot - key));
    prefix[dot - key] = '\0';
    const param_table *t = table_for(prefix);
    const param_def *d = t ? param_find(t, dot + 1) : NULL;
    return d && d->units ? d->units : "";
}

int runner_readings_load(readings *rd, const char *name_or_path)
{
    if (name_or_path && *name_or_path && strcmp(name_or_path, "none")) {
        char path[PARAM_PATH_MAX];
        if (param_profile_path("reading", name_or_path, path, sizeof path) == D2_OK) {
            FILE *f; /* a FIFO or device: refused, not waited on */
            D2_TRY(fileio_open_read(path, FILEIO_INI_MAX, &f, NULL));
            fclose(f);
        }
    }
    return readings_load(rd, name_or_path);
}

/* A spec value that did not load: the spec's fault (D2_EINVAL, exit 2),
 * unless the machine failed (out of memory, a read error, a bug: their
 * own status, exit 1); the message is prefixed with where and key */
static int value_failed(int rc, const char *where, const char *key)
{
    d2_err_prefix("%s: %s: ", where, key);
    return rc == D2_ENOMEM || rc == D2_EIO || rc == D2_EDB || rc == D2_EINTERNAL ? rc : D2_EINVAL;
}

int runner_check(const char *key, const char *value, const char *where, void *user)
{
    (void)user;
    int rc;
    if (!strcmp(key, "model")) {
        model m;
        return (rc = model_load(&m, value)) != D2_OK ? value_failed(rc, where, key) : D2_OK;
    }
    if (!strcmp(key, "device")) {
        device d;
        return (rc = device_load(&d, value)) != D2_OK ? value_failed(rc, where, key) : D2_OK;
    }
    if (!strcmp(key, "readings")) {
        readings rd;
        return (rc = runner_readings_load(&rd, value)) != D2_OK ? value_failed(rc, where, key) : D2_OK;
    }
    if (!strcmp(key, "trace")) {
        /* opened, not only found: a FIFO, a file that is not a .d2t or a
         * bad header fails here, before any run */
        trace_file *tf;
        if ((rc = trace_file_open(value, &tf)) != D2_OK) return value_failed(rc, where, key);
        trace_file_close(tf);
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
    if (!param_find(t, dot + 1)) {
        const char *names[PARAM_MAX_DEFS];
        size_t n = 0;
        for (size_t i = 0; i < t->n && n < PARAM_MAX_DEFS; i++) names[n++] = t->defs[i].name;
        /* the hint names the whole key, as the user types it; a key with a
         * blank at either end was written "key = value" */
        char hint[200] = "";
        const char *pick = suggest_pick(dot + 1, names, n);
        size_t kl = strlen(key);
        if (kl && (key[kl - 1] == ' ' || key[kl - 1] == '\t' || key[0] == ' ' || key[0] == '\t'))
            snprintf(hint, sizeof hint, " (no blanks around '=': --set %s.KEY=VALUE)", prefix);
        else if (pick)
            snprintf(hint, sizeof hint, " (did you mean '%s.%s'?)", prefix, pick);
        if (!strcmp(prefix, "sim")) D2_ERROR(D2_EINVAL, "%s: %s: not a sim key%s ('d2moe simulate --help' lists them)", where, key, hint);
        D2_ERROR(D2_EINVAL, "%s: %s: not a %s key%s ('d2moe show %s NAME' lists them)", where, key, prefix, hint, prefix);
    }
    if (!strcmp(key, "sim.policy") && !policy_find(value)) {
        const char *names[64];
        size_t n = 0;
        for (size_t i = 0; i < policy_count() && n < 64; i++) names[n++] = policy_at(i)->name;
        char hint[200];
        suggest_hint(value, names, n, hint, sizeof hint);
        D2_ERROR(D2_EINVAL, "%s: sim.policy: \"%s\" is not a named system%s ('d2moe simulate --list' lists them)", where, value, hint);
    }
    if (!strcmp(key, "sim.storage") && *value) {
        int lv;
        if (model_format_levels(value, &lv) != D2_OK) D2_ERROR(D2_EINVAL, "%s: sim.storage: \"%s\" is not a storage format (v1, v2, v1k or v2k)", where, value);
    }
    /* the value must parse and lie in range: try it on a scratch object */
    union { model m; device d; sim_params s; } scratch;
    param_defaults(t, &scratch);
    return param_set_as(t, &scratch, dot + 1, value, where, NULL, key); /* the key as typed: table.key */
}

int runner_trace_repeats(const char *trace, int64_t requests, int64_t positions, double *times, char *why, size_t n)
{
    *times = 1;
    if (n) why[0] = '\0';
    trace_file *f;
    D2_TRY(trace_file_open(trace, &f));
    uint32_t nreq = trace_file_header(f)->requests;
    double t = 1, short_req = 0;
    uint32_t minpos = UINT32_MAX;
    if (nreq > 0 && requests > (int64_t)nreq) t = ceil((double)requests / nreq);
    for (int64_t r = 0; nreq > 0 && r < requests && r < (int64_t)nreq; r++) {
        const trace_req_info *info = trace_file_request(f, (uint32_t)r);
        if (info->positions > 0 && positions > (int64_t)info->positions) {
            short_req++;
            double k = ceil((double)positions / info->positions);
            if (k > t) t = k;
            if (info->positions < minpos) minpos = info->positions;
        }
    }
    trace_file_close(f);
    *times = t;
    if (t > 1 && n) {
        int w = snprintf(why, n, "trace %s has %u requests", trace, nreq);
        if (w > 0 && (size_t)w < n && requests > (int64_t)nreq)
            w += snprintf(why + w, n - (size_t)w, "; the run's %lld requests reuse them", (long long)requests);
        if (w > 0 && (size_t)w < n && short_req > 0)
            snprintf(why + w, n - (size_t)w, "; %.0f of them are shorter (down to %u positions) than the run's %lld, so their routing repeats",
                     short_req, minpos, (long long)positions);
    }
    return D2_OK;
}

typedef struct find_ctx { const char *key; int64_t v; } find_ctx;

static int find_param(const char *key, const char *value, const char *units, void *user)
{
    (void)units;
    find_ctx *c = user;
    if (!strcmp(key, c->key)) units_parse_int64(value, &c->v); /* value lives only during the call */
    return D2_OK;
}

/* a result's integer parameter "table.key" (0 if absent) */
static int64_t result_int(const sim_result *r, const char *key)
{
    find_ctx c = {key, 0};
    sim_result_foreach_param(r, find_param, &c);
    return c.v;
}

typedef struct find_str { const char *key; char v[TRACE_MODEL_NAME_MAX]; } find_str;

static int find_param_str(const char *key, const char *value, const char *units, void *user)
{
    (void)units;
    find_str *c = user;
    if (!strcmp(key, c->key)) snprintf(c->v, sizeof c->v, "%s", value);
    return D2_OK;
}

int runner_result_trace_model(const sim_result *r, const char *trace, char *note, size_t n)
{
    if (n) note[0] = '\0';
    trace_file *f;
    D2_TRY(trace_file_open(trace, &f));
    char rec[TRACE_MODEL_NAME_MAX];
    snprintf(rec, sizeof rec, "%s", trace_file_header(f)->model);
    trace_file_close(f);
    find_str c = {"model.name", ""};
    sim_result_foreach_param(r, find_param_str, &c);
    if (rec[0] && c.v[0] && strcmp(rec, c.v) && n)
        snprintf(note, n, "trace %s was recorded for model %s; replayed on %s (the same layers, experts and top-k)", trace,
                 rec, c.v);
    return D2_OK;
}

int runner_result_trace_repeats(const sim_result *r, const char *trace, double *times, char *why, size_t n)
{
    return runner_trace_repeats(trace, result_int(r, "sim.requests"),
                                result_int(r, "sim.prompt") + result_int(r, "sim.gen"), times, why, n);
}

typedef struct fill {
    db_run *run;
    double w2[ACC_MAX_BITS + 1]; /* sum of squared gate weights per bit-width */
    int have_w2;
    char format[64];             /* storage format: nested or separate copies */
    int kq;                      /* sim.storage names a k-quant nested format (v1k, v2k) */
} fill;

static int param_cb(const char *key, const char *value, const char *units, void *user)
{
    fill *f = user;
    if (!strcmp(key, "system.format") || !strcmp(key, "system.storage")) snprintf(f->format, sizeof f->format, "%s", value);
    if (!strcmp(key, "sim.storage")) f->kq = model_format_is_kq(value);
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

static int plain_metric(const char *name, double v, const char *unit, void *u) { return db_run_metric(u, name, v, unit); }
static int plain_input(const char *role, const char *path, const char *id, void *u)
{
    fill f = {.run = u};
    return input_cb(role, path, id, &f);
}

int runner_fill_run(db_run *run, const sim_result *r)
{
    db_run_seed(run, sim_result_seed(r));
    D2_TRY(sim_result_foreach_param(r, db_run_param_visit, run));
    D2_TRY(sim_result_foreach_metric(r, plain_metric, run));
    D2_TRY(sim_result_foreach_input(r, plain_input, run));
    db_run_status(run, sim_result_status(r));
    if (*sim_result_reason(r)) D2_TRY(db_run_param(run, "result.reason", sim_result_reason(r)));
    return D2_OK;
}

/* A sweep job's keys as a sim_job (its sets written into buf). */
typedef struct job_sets { char buf[SWEEP_MAX_AXES][700]; const char *sets[SWEEP_MAX_AXES]; } job_sets;
static int job_of(const sweep_job *job, sim_job *sj, job_sets *js)
{
    size_t n = 0;
    memset(sj, 0, sizeof *sj);
    sj->seed = 1;
    for (size_t i = 0; i < job->n; i++) {
        const char *k = job->key[i], *v = job->value[i];
        if (!strcmp(k, "model")) sj->model = v;
        else if (!strcmp(k, "device")) sj->device = v;
        else if (!strcmp(k, "trace")) sj->trace = v;
        else if (!strcmp(k, "seed")) sj->seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "readings")) sj->readings = v;
        else {
            snprintf(js->buf[n], sizeof js->buf[n], "%s=%s", k, v);
            js->sets[n] = js->buf[n];
            n++;
        }
    }
    if (!sj->model || !sj->device) D2_ERROR(D2_EINVAL, "job %zu: needs a model and a device", job->index);
    sj->sets = js->sets;
    sj->nsets = n;
    return D2_OK;
}

void runner_error_key(const char *msg, const char *trace, char *key, size_t n, const char **rest)
{
    *rest = msg;
    if (!n) return;
    key[0] = '\0';
    size_t tl = trace ? strlen(trace) : 0;
    if (tl && !strncmp(msg, trace, tl) && msg[tl] == ':') { snprintf(key, n, "trace"); return; }
    if (!strncmp(msg, "generator:", 10)) { snprintf(key, n, "model"); return; }
    if (!strncmp(msg, "--set: ", 7)) msg += 7; /* the profile checks after the sets: "--set: FIELD: ..." */
    size_t k = strcspn(msg, ": =");
    if (k == 0 || k >= n || (msg[k] != ':' && msg[k] != ' ')) return;
    if (msg[k] == ':' && msg[k + 1] >= '0' && msg[k + 1] <= '9') return; /* "FILE:LINE: ...": a file, not a key */
    memcpy(key, msg, k);
    key[k] = '\0';
    if (msg[k] == ':') *rest = msg[k + 1] == ' ' ? msg + k + 2 : msg + k + 1;
}

int runner_check_job(const sweep_job *job, char *key, size_t n, void *user)
{
    sim_job sj;
    job_sets js;
    if (n) key[0] = '\0';
    D2_TRY(job_of(job, &sj, &js));
    int rc = sim_job_check(&sj, user);
    if (rc == D2_OK) return D2_OK;
    char k[128], alt[160], msg[1024];
    const char *rest;
    snprintf(msg, sizeof msg, "%s", d2_err_msg());
    runner_error_key(msg, sj.trace, k, sizeof k, &rest);
    if (k[0] && !strchr(k, '.') && !sweep_job_get(job, k)) { /* a bare field: the model's or the device's */
        snprintf(alt, sizeof alt, "model.%s", k);
        if (!sweep_job_get(job, alt)) snprintf(alt, sizeof alt, "device.%s", k);
        if (sweep_job_get(job, alt)) snprintf(k, sizeof k, "%s", alt);
    }
    if (k[0] && rest != msg) d2_err_set("%s: %s", k, rest); /* "KEY: why", the key in full */
    snprintf(key, n, "%s", k);
    return rc;
}

typedef struct inputs_buf { char *buf; size_t n, off; } inputs_buf;

static int input_line(const char *role, const char *path, void *user)
{
    inputs_buf *b = user;
    char hex[33];
    D2_TRY(hash_file_hex(path, hex));
    int w = snprintf(b->buf + b->off, b->n - b->off, "input.%s=%s\n", role, hex);
    if (w < 0 || (size_t)w >= b->n - b->off) D2_ERROR(D2_ERANGE, "job input list too long");
    b->off += (size_t)w;
    return D2_OK;
}

int runner_job_inputs(const sweep_job *job, char *buf, size_t n, void *user)
{
    sim_job sj;
    job_sets js;
    if (!n) D2_ERROR(D2_ERANGE, "job input list too long");
    buf[0] = '\0';
    D2_TRY(job_of(job, &sj, &js));
    inputs_buf b = {buf, n, 0};
    return sim_job_files(&sj, user, input_line, &b);
}

/* sweep_same_fn: the key's effective value, job by job, with the --set and
 * as the profiles, reading and defaults give it (a reading: by name and
 * settings); a model, device or trace set anew, or a job that does not
 * resolve, counts as a change. */
static int runner_same(const sweep_job *with, const sweep_job *without, const char *key, int *same, void *user)
{
    (void)user;
    *same = 0;
    sim_job a, b;
    job_sets ja, jb;
    if (job_of(with, &a, &ja) != D2_OK || job_of(without, &b, &jb) != D2_OK) return D2_OK;
    if (!strcmp(key, "seed")) {
        *same = a.seed == b.seed;
        return D2_OK;
    }
    if (!strcmp(key, "readings")) { /* the same reading by name and settings (none given: the default) */
        readings ra, rb;
        char ta[READINGS_TEXT_MAX], tb[READINGS_TEXT_MAX];
        if (readings_load(&ra, a.readings) != D2_OK || readings_load(&rb, b.readings) != D2_OK) return D2_OK;
        readings_text(&ra, ta, sizeof ta);
        readings_text(&rb, tb, sizeof tb);
        *same = !strcmp(ra.name, rb.name) && !strcmp(ta, tb);
        return D2_OK;
    }
    const char *dot = strchr(key, '.');
    char prefix[16];
    if (!dot || (size_t)(dot - key) >= sizeof prefix) return D2_OK;
    memcpy(prefix, key, (size_t)(dot - key));
    prefix[dot - key] = '\0';
    const param_table *t = table_for(prefix);
    const param_def *d = t ? param_find(t, dot + 1) : NULL;
    model ma, mb;
    device da, dv;
    sim_params pa, pb;
    if (!d || sim_job_resolve(&a, &ma, &da, &pa, NULL) != D2_OK || sim_job_resolve(&b, &mb, &dv, &pb, NULL) != D2_OK) return D2_OK;
    char va[700], vb[700];
    param_format(d, t == &model_params ? (const void *)&ma : t == &device_params ? (const void *)&da : (const void *)&pa, va, sizeof va);
    param_format(d, t == &model_params ? (const void *)&mb : t == &device_params ? (const void *)&dv : (const void *)&pb, vb, sizeof vb);
    *same = !strcmp(va, vb);
    return D2_OK;
}

int runner_prepare_spec(sweep_spec *s)
{
    /* a --set that changes no job is no override (sweep.h) */
    D2_TRY(sweep_spec_drop_unchanged(s, runner_same, NULL));
    sim_job_memo *memo;
    D2_TRY(sim_job_memo_new(&memo));
    int rc = sweep_spec_check_jobs(s, runner_check_job, memo);
    if (rc == D2_OK) rc = sweep_spec_identify(s, runner_job_inputs, memo);
    sim_job_memo_free(memo);
    return rc;
}

int runner_simulate(const sweep_job *job, db_run *run, void *user)
{
    const runner_ctx *c = user;
    sim_job sj;
    job_sets js;
    D2_TRY(job_of(job, &sj, &js));
    char tl[FILEIO_PATH_MAX];
    if (c && c->timeline_dir) {
        D2_TRY(fileio_pathf(tl, sizeof tl, "%s/%s.csv", c->timeline_dir, job->hash));
        sj.timeline = tl;
    }
    sim_result *r;
    trace_source_memo_record_first(1); /* a sweep worker runs many jobs on each generated routing */
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
    if (rc == D2_OK && sj.trace) {
        /* say it when the trace was repeated to fill the run */
        double times = 1;
        char why[600];
        rc = runner_result_trace_repeats(r, sj.trace, &times, why, sizeof why);
        if (rc == D2_OK) rc = db_run_metric(run, "trace_repeats", times, "times");
        if (rc == D2_OK && times > 1) rc = db_run_param(run, "result.trace_repeated", why);
    }
    if (rc == D2_OK && c && c->acc) {
        double ppl = NAN;
        /* nested levels stored as k-quant super-blocks: their own error table */
        const char *fmt = f.kq && !strcmp(f.format, "nested") ? "nested-k" : f.format;
        if (f.have_w2) ppl = accuracy_estimate(c->acc, fmt, f.w2);
        rc = db_run_metric(run, "est_ppl", ppl, "ppl");
    }
    sim_result_free(r);
    return rc;
}
